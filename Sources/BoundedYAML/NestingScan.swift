/// An estimate of how deep a YAML text nests, from its octets alone, in constant stack: it
/// never under-counts (so a text it passes cannot nest deeper than its figure), and for the
/// files an operator writes it is a small multiple of the real depth.
///
/// Per line, outside quoted scalars, comments and block scalars (`|`, `>`), the estimate is
/// two levels for each open indentation (a mapping and a sequence can share one column), one
/// for each block indicator on the line (`- `, `? `, `: `, as in `- - key: x`), plus the open
/// flow collections (`[`, `{`, YAML 1.2 section 7.4), which carry over lines.
enum NestingScan {
    /// The first line (1-based) whose estimate passes `limit`; nil when none does.
    static func firstLine(deeperThan limit: Int, in text: String) -> Int? {
        var text = text
        text.makeContiguousUTF8()
        return text.utf8.withContiguousStorageIfAvailable { all -> Int? in
            var scan = State()
            var start = 0
            var lineNumber = 0
            while start <= all.count {
                var end = start
                while end < all.count && all[end] != UInt8(ascii: "\n") { end += 1 }
                lineNumber += 1
                if scan.line(UnsafeBufferPointer(rebasing: all[start..<end])) > limit { return lineNumber }
                start = end + 1
            }
            return nil
        } ?? nil
    }

    /// What carries from one line to the next.
    struct State {
        var indents: [Int] = []
        var flow = 0
        var inSingle = false
        var inDouble = false
        /// Inside a block scalar whose parent line is indented this much.
        var blockParent: Int?

        /// The estimate for one line (without its newline).
        mutating func line(_ b: UnsafeBufferPointer<UInt8>) -> Int {
            var indent = 0
            while indent < b.count && b[indent] == UInt8(ascii: " ") { indent += 1 }
            let blank = indent == b.count || b[indent] == UInt8(ascii: "\r") || b[indent] == UInt8(ascii: "#")
            if let parent = blockParent {
                if blank || indent > parent { return 2 * indents.count }
                blockParent = nil
            }
            let continuing = flow > 0 || inSingle || inDouble
            if blank && !continuing { return 2 * indents.count }
            if !continuing {
                while let last = indents.last, last > indent { indents.removeLast() }
                if indents.last != indent { indents.append(indent) }
            }
            var indicators = 0
            var deepestFlow = flow
            var tokenStart = true
            var i = indent
            while i < b.count {
                let c = b[i]
                let next: UInt8 = i + 1 < b.count ? b[i + 1] : UInt8(ascii: " ")
                let spaceNext = next == UInt8(ascii: " ") || next == UInt8(ascii: "\t") || next == UInt8(ascii: "\r")
                if inDouble {
                    if c == UInt8(ascii: "\\") { i += 1 } else if c == UInt8(ascii: "\"") { inDouble = false }
                } else if inSingle {
                    if c == UInt8(ascii: "'") { if next == UInt8(ascii: "'") { i += 1 } else { inSingle = false } }
                } else if c == UInt8(ascii: "#") && (i == 0 || b[i - 1] == UInt8(ascii: " ") || b[i - 1] == UInt8(ascii: "\t")) {
                    break
                } else if tokenStart && c == UInt8(ascii: "\"") {
                    inDouble = true
                } else if tokenStart && c == UInt8(ascii: "'") {
                    inSingle = true
                } else if tokenStart && (c == UInt8(ascii: "[") || c == UInt8(ascii: "{")) {
                    flow += 1
                    deepestFlow = max(deepestFlow, flow)
                } else if flow > 0 && (c == UInt8(ascii: "]") || c == UInt8(ascii: "}")) {
                    flow -= 1
                } else if flow == 0 && spaceNext && (c == UInt8(ascii: ":") || (tokenStart && (c == UInt8(ascii: "-") || c == UInt8(ascii: "?")))) {
                    indicators += 1
                } else if flow == 0 && tokenStart && (c == UInt8(ascii: "|") || c == UInt8(ascii: ">")) && Self.blockHeader(b, from: i) {
                    blockParent = indent
                    break
                }
                tokenStart = c == UInt8(ascii: " ") || c == UInt8(ascii: "\t")
                    || (flow > 0 && (c == UInt8(ascii: "[") || c == UInt8(ascii: "{") || c == UInt8(ascii: ",") || c == UInt8(ascii: ":")))
                    || (c == UInt8(ascii: "-") && spaceNext)
                i += 1
            }
            return 2 * indents.count + indicators + deepestFlow
        }

        /// Whether `b[i...]` is a block scalar header: `|` or `>`, chomping and indentation
        /// indicators, then only spaces or a comment (YAML 1.2 section 8.1.1).
        static func blockHeader(_ b: UnsafeBufferPointer<UInt8>, from i: Int) -> Bool {
            var j = i + 1
            while j < b.count, b[j] == UInt8(ascii: "+") || b[j] == UInt8(ascii: "-") || (b[j] >= UInt8(ascii: "1") && b[j] <= UInt8(ascii: "9")) { j += 1 }
            while j < b.count, b[j] == UInt8(ascii: " ") || b[j] == UInt8(ascii: "\t") || b[j] == UInt8(ascii: "\r") { j += 1 }
            return j == b.count || b[j] == UInt8(ascii: "#")
        }
    }
}
