import CLDNS
import CZoneStream
import DNSWire
import Foundation

/// One logical entry of a master file, or why it could not be read.
enum LexedEntry {
    /// The entry's text as libldns cleaned it (comments dropped, parentheses joined), valid
    /// until the next call to `EntryLexer.next()`; `line` is where the entry starts.
    case entry(line: Int, text: UnsafePointer<CChar>)
    case failure(line: Int, message: String)
}

/// Walks a master file's entries with libldns's own lexer (`ldns_fget_token_l_st`, the reader
/// inside `ldns_rr_new_frm_fp_l`) over a `FILE` that keeps only a window of the file in memory
/// (`meridian_zone_stream`). It keeps the line count itself from the bytes each call consumed:
/// libldns counts a comment line into the next entry and loses the newline after a stray `)`,
/// and a diagnostic must name the entry's first line.
struct EntryLexer {
    let fp: UnsafeMutablePointer<FILE>
    let stream: UnsafeMutablePointer<meridian_zone_stream>
    private var buffer: UnsafeMutablePointer<CChar>? = nil
    private var limit = 0
    private var offset = 0
    private var linesBefore = 0
    private var done = false

    init(fp: UnsafeMutablePointer<FILE>, stream: UnsafeMutablePointer<meridian_zone_stream>) {
        self.fp = fp
        self.stream = stream
    }

    /// The next entry, or nil at the end of the file.
    mutating func next() -> LexedEntry? {
        while !done {
            let start = offset
            meridian_zone_stream_discard(stream, start)
            let status = ldns_fget_token_l_st(fp, &buffer, &limit, 0, LDNS_PARSE_SKIP_SPACE, nil)
            let total = stream.pointee.total
            let end = min(max(Int(ftell(fp)), start), total)
            let window = meridian_zone_stream_bytes(stream, start, end)
            let consumed = UnsafeBufferPointer(start: window, count: window == nil ? 0 : end - start)
            let line = firstLine(consumed)
            linesBefore += consumed.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
            offset = end
            if feof(fp) != 0 || ferror(fp) != 0 || end == start { done = true }
            if stream.pointee.error != 0 {
                return .failure(line: line, message: "cannot read the file (\(String(cString: strerror(stream.pointee.error))))")
            }
            if status == LDNS_STATUS_SYNTAX_EMPTY { continue }
            guard status == LDNS_STATUS_OK, let text = buffer else {
                let why = String(cString: ldns_get_errorstr_by_id(status))
                return .failure(line: line, message: why.prefix(1).lowercased() + why.dropFirst())
            }
            if let problem = Self.parenthesisProblem(consumed) { return .failure(line: line, message: problem) }
            if Self.isBlank(text) { continue }
            return .entry(line: line, text: UnsafePointer(text))
        }
        return nil
    }

    /// Frees libldns's entry buffer.
    mutating func release() {
        free(buffer)
        buffer = nil
    }

    static func isBlank(_ text: UnsafePointer<CChar>) -> Bool {
        var i = 0
        while text[i] == 0x20 || text[i] == 0x09 { i += 1 }
        return text[i] == 0
    }

    /// The line of the first byte consumed that is not white space or a comment.
    private func firstLine(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var line = linesBefore + 1
        var i = 0
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0D: i += 1
            case 0x0A: line += 1; i += 1
            case UInt8(ascii: ";"): while i < bytes.count && bytes[i] != 0x0A { i += 1 }
            default: return line
            }
        }
        return line
    }

    /// libldns 1.8.3 accepts parentheses left open at the end of the file and ends an entry
    /// early at a `)` with no `(`; both are errors here. Scans only entries holding one.
    private static func parenthesisProblem(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        guard bytes.contains(where: { $0 == UInt8(ascii: "(") || $0 == UInt8(ascii: ")") }) else { return nil }
        var depth = 0
        var quoted = false
        var comment = false
        var escaped = false
        for c in bytes {
            if comment {
                if c == 0x0A { comment = false }
                continue
            }
            if escaped {
                escaped = false
                continue
            }
            switch c {
            case UInt8(ascii: "\\"): escaped = true
            case UInt8(ascii: "\""): quoted.toggle()
            case UInt8(ascii: ";") where !quoted: comment = true
            case UInt8(ascii: "(") where !quoted: depth += 1
            case UInt8(ascii: ")") where !quoted:
                depth -= 1
                if depth < 0 { return "unbalanced ')'" }
            default: break
            }
        }
        return depth > 0 ? "unbalanced '(' (missing ')')" : nil
    }
}

/// The fields before a record's type that libldns reads: whether the owner is left blank
/// (the entry starts with white space), and the TTL token, which libldns takes only as the
/// field after the owner when it starts with a digit.
struct LeadingFields {
    var blankOwner: Bool
    var ttlToken: String?

    init(_ text: UnsafePointer<CChar>) {
        func isSpace(_ c: CChar) -> Bool { c == 0x20 || c == 0x09 }
        var i = 0
        blankOwner = isSpace(text[0])
        if !blankOwner {
            while text[i] != 0 && !isSpace(text[i]) {
                i += text[i] == 0x5C && text[i + 1] != 0 ? 2 : 1
            }
        }
        while isSpace(text[i]) { i += 1 }
        guard text[i] >= 0x30 && text[i] <= 0x39 else { return }
        var token: [UInt8] = []
        while text[i] != 0 && !isSpace(text[i]) {
            token.append(UInt8(bitPattern: text[i]))
            i += 1
        }
        ttlToken = String(decoding: token, as: UTF8.self)
    }

    /// libldns 1.8.3 ends an entry at a newline inside quotes and loads the rest as data;
    /// an odd number of unescaped quotes is an error here.
    static func unterminatedQuote(_ text: UnsafePointer<CChar>) -> String? {
        var quoted = false
        var i = 0
        while text[i] != 0 {
            if text[i] == 0x5C && text[i + 1] != 0 {
                i += 2
                continue
            }
            if text[i] == 0x22 { quoted.toggle() }
            i += 1
        }
        return quoted ? "unterminated quoted string" : nil
    }
}

/// TTL text (RFC 1035 5.1; BIND's units `1h30m`, `2d`, `1w`) read with checked arithmetic:
/// `ldns_str2period` wraps at 2^32 and stops quietly at a stray character (`1x` is 1), and a
/// TTL above 2^31 - 1 is to be read as zero (RFC 2181 8), so both are rejected.
enum TTLText {
    static let max = UInt32(Int32.max)

    static func seconds(_ s: String) -> UInt32? {
        var total: UInt64 = 0
        var num: UInt64 = 0
        var sawDigit = false
        var sawUnit = false
        for ch in s.utf8 {
            if ch >= 0x30 && ch <= 0x39 {
                num = num * 10 + UInt64(ch - 0x30)
                sawDigit = true
                guard num <= UInt64(max) else { return nil }
                continue
            }
            guard sawDigit, let unit = unit(ch) else { return nil }
            total += num * unit
            guard total <= UInt64(max) else { return nil }
            num = 0
            sawDigit = false
            sawUnit = true
        }
        guard sawDigit || sawUnit else { return nil }
        total += num
        return total <= UInt64(max) ? UInt32(total) : nil
    }

    static func unit(_ ch: UInt8) -> UInt64? {
        switch ch | 0x20 {
        case UInt8(ascii: "s"): return 1
        case UInt8(ascii: "m"): return 60
        case UInt8(ascii: "h"): return 3600
        case UInt8(ascii: "d"): return 86400
        case UInt8(ascii: "w"): return 604800
        default: return nil
        }
    }
}

/// RDATA shapes the answer path relies on: libldns accepts the RFC 3597 form `\# 0` (and any
/// other length) for every type, so a CNAME, NS or SOA with no data would load and then be
/// served malformed. Types not listed are opaque data and pass.
enum RdataCheck {
    static func problem(type: UInt16, rdata: UnsafeRawBufferPointer) -> String? {
        switch type {
        case RRType.a: return rdata.count == 4 ? nil : "RDATA must be 4 octets, not \(rdata.count)"
        case RRType.aaaa: return rdata.count == 16 ? nil : "RDATA must be 16 octets, not \(rdata.count)"
        case RRType.ns, RRType.cname, RRType.ptr, RRType.dname:
            return nameEnd(rdata, at: 0) == rdata.count ? nil : "RDATA must be exactly one domain name"
        case RRType.mx:
            return rdata.count > 2 && nameEnd(rdata, at: 2) == rdata.count ? nil : "RDATA must be a preference and a domain name"
        case RRType.srv:
            return rdata.count > 6 && nameEnd(rdata, at: 6) == rdata.count ? nil : "RDATA must be priority, weight, port and a target name"
        case RRType.soa:
            guard let m = nameEnd(rdata, at: 0), let r = nameEnd(rdata, at: m), rdata.count - r == 20 else {
                return "RDATA must be two domain names and five 32-bit numbers"
            }
            return nil
        case RRType.txt: return rdata.isEmpty ? "RDATA must hold at least one character-string" : nil
        default: return nil
        }
    }

    static func nameEnd(_ b: UnsafeRawBufferPointer, at start: Int) -> Int? { RDataLayout.nameEnd(b, at: start) }
}
