import Diagnostics
import Foundation

/// One logical entry of a master file (RFC 1035 5.1): a record or a directive, with the
/// parentheses, comments and line breaks of its text removed.
struct ZoneEntry {
    var file: String
    var line: Int
    /// The entry began with white space: the owner is the previous record's (RFC 1035 5.1).
    var blankOwner: Bool
    var text: String
}

/// Splits master-file text into entries. It knows only the file's lexical rules (quotes,
/// `\` escapes, `;` comments, `(` `)` continuation); record syntax is libldns's job.
enum ZoneFileReader {
    static func entries(of text: String, file: String) throws(Diagnostic) -> [ZoneEntry] {
        var result: [ZoneEntry] = []
        var current: [UInt8] = []
        var line = 1
        var entryLine = 1
        var depth = 0
        var inQuote = false
        var blankOwner = false
        var atLineStart = true
        var comment = false
        let bytes = Array(text.utf8)
        var i = 0

        func finish() {
            let t = String(decoding: current, as: UTF8.self).trimmingCharacters(in: .whitespaces)
            if !t.isEmpty { result.append(ZoneEntry(file: file, line: entryLine, blankOwner: blankOwner, text: t)) }
            current.removeAll(keepingCapacity: true)
        }

        while i < bytes.count {
            let c = bytes[i]
            if atLineStart && depth == 0 && !inQuote {
                finish()
                entryLine = line
                blankOwner = c == UInt8(ascii: " ") || c == UInt8(ascii: "\t")
                atLineStart = false
            }
            if comment {
                if c == UInt8(ascii: "\n") {
                    comment = false
                } else {
                    i += 1
                    continue
                }
            }
            switch c {
            case UInt8(ascii: "\\"):
                current.append(c)
                if i + 1 < bytes.count {
                    if bytes[i + 1] == UInt8(ascii: "\n") { line += 1 }
                    current.append(bytes[i + 1])
                    i += 1
                }
            case UInt8(ascii: "\""):
                inQuote.toggle()
                current.append(c)
            case UInt8(ascii: ";") where !inQuote:
                comment = true
            case UInt8(ascii: "(") where !inQuote:
                depth += 1
                current.append(UInt8(ascii: " "))
            case UInt8(ascii: ")") where !inQuote:
                guard depth > 0 else { throw Diagnostic(file: file, line: line, "unbalanced ')'") }
                depth -= 1
                current.append(UInt8(ascii: " "))
            case UInt8(ascii: "\n"):
                if inQuote { throw Diagnostic(file: file, line: line, "unterminated quoted string") }
                line += 1
                if depth == 0 { atLineStart = true } else { current.append(UInt8(ascii: " ")) }
            case UInt8(ascii: "\r"):
                break
            case UInt8(ascii: "\t"):
                current.append(inQuote ? c : UInt8(ascii: " "))
            default:
                current.append(c)
            }
            i += 1
        }
        if inQuote { throw Diagnostic(file: file, line: line, "unterminated quoted string") }
        if depth > 0 { throw Diagnostic(file: file, line: entryLine, "unbalanced '(' (missing ')')") }
        finish()
        return result
    }

    /// Splits an entry's text at white space outside quotes (for directives).
    static func fields(_ text: String) -> [String] {
        var out: [String] = []
        var cur = ""
        var inQuote = false
        var escape = false
        for ch in text {
            if escape {
                cur.append(ch)
                escape = false
                continue
            }
            if ch == "\\" {
                escape = true
                cur.append(ch)
            } else if ch == "\"" {
                inQuote.toggle()
                cur.append(ch)
            } else if ch == " " && !inQuote {
                if !cur.isEmpty { out.append(cur) }
                cur = ""
            } else {
                cur.append(ch)
            }
        }
        if !cur.isEmpty { out.append(cur) }
        return out
    }
}
