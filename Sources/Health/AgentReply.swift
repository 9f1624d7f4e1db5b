/// A feedback agent's reply in the HAProxy agent-check text protocol (as the Loadbalancer.org
/// feedback agent and HAProxy's `agent-check` use it): words separated by spaces, commas or
/// tabs; `NN%` is the node's spare capacity; `up`/`ready` bring it back, `drain` stops new
/// answers while it stays healthy, `maint` is administrative maintenance, `down`, `fail` and
/// `stopped` mark it down; anything after `#` is a comment.
public struct AgentReply: Sendable, Equatable {
    public enum State: String, Sendable, Equatable {
        case up
        case drain
        case maint
        case down
    }

    /// The capacity percentage, when the reply had one (0...100; larger values are capped).
    public var percent: Double?
    /// The state word, when the reply had one (the last one wins).
    public var state: State?
    /// The reason text after a `down`/`fail`/`stopped`, e.g. `#disk full`.
    public var reason: String?

    /// The most octets of a reply that are read.
    public static let maxLength = 512

    /// Why a reply was rejected.
    public enum ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        case empty
        case tooLong(Int)
        case notText
        case unknownWord(String)
        case badPercent(String)

        public var description: String {
            switch self {
            case .empty: return "empty reply"
            case .tooLong(let n): return "reply of \(n) octets is longer than \(AgentReply.maxLength)"
            case .notText: return "reply is not printable text"
            case .unknownWord(let w): return "unknown word '\(w.prefix(32))'"
            case .badPercent(let w): return "bad percentage '\(w.prefix(32))'"
            }
        }
    }

    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> AgentReply {
        guard bytes.count <= maxLength else { throw .tooLong(bytes.count) }
        guard bytes.allSatisfy({ $0 == 9 || $0 == 10 || $0 == 13 || (32...126).contains($0) }) else { throw .notText }
        var text = String(decoding: bytes, as: UTF8.self)
        var comment: String?
        if let hash = text.firstIndex(of: "#") {
            comment = String(text[text.index(after: hash)...]).trimmingCharacters(in: [" ", "\n", "\r", "\t"])
            text = String(text[..<hash])
        }
        // Character-wise "\r\n" is one Character, so split on whitespace as a class.
        let words = text.split(whereSeparator: { $0.isWhitespace || $0 == "," }).map { $0.lowercased() }
        guard !words.isEmpty else { throw .empty }
        var reply = AgentReply()
        for w in words {
            if w.hasSuffix("%") {
                guard let v = Double(w.dropLast()), v >= 0, v.isFinite else { throw .badPercent(w) }
                reply.percent = min(v, 100)
                continue
            }
            switch w {
            case "up", "ready": reply.state = .up
            case "drain": reply.state = .drain
            case "maint": reply.state = .maint
            case "down", "fail", "failed", "stopped":
                reply.state = .down
                reply.reason = comment
            default: throw .unknownWord(w)
            }
        }
        return reply
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
