/// Why a gossip message could not be read. Every read is bounds-checked: a short, long or
/// malformed message ends here, never in a trap.
public enum DecodeError: Error, Sendable, Equatable, CustomStringConvertible {
    case truncated(what: String)
    case tooLong(what: String, length: Int)
    case badValue(what: String)
    case trailing(Int)

    public var description: String {
        switch self {
        case .truncated(let w): return "truncated at \(w)"
        case let .tooLong(w, n): return "\(w) of \(n) octets is too long"
        case .badValue(let w): return "bad \(w)"
        case .trailing(let n): return "\(n) octets after the end"
        }
    }
}

/// Appends big-endian integers and length-prefixed strings.
struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { bytes.append(UInt8(v >> 8)); bytes.append(UInt8(v & 0xFF)) }
    mutating func u32(_ v: UInt32) { for s in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8((v >> UInt32(s)) & 0xFF)) } }
    mutating func u64(_ v: UInt64) { for s in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((v >> UInt64(s)) & 0xFF)) } }
    /// A string of at most 255 octets (longer ones are cut at a character boundary).
    mutating func str8(_ s: String) {
        let b = ByteWriter.cut(s, 255)
        u8(UInt8(b.count))
        bytes += b
    }
    /// A string of at most 65,535 octets.
    mutating func str16(_ s: String) {
        let b = ByteWriter.cut(s, 65535)
        u16(UInt16(b.count))
        bytes += b
    }
    mutating func blob16(_ b: [UInt8]) {
        u16(UInt16(min(b.count, 65535)))
        bytes += b.prefix(65535)
    }

    static func cut(_ s: String, _ limit: Int) -> [UInt8] {
        var out: [UInt8] = []
        for ch in s {
            let u = Array(String(ch).utf8)
            if out.count + u.count > limit { break }
            out += u
        }
        return out
    }
}

/// Reads what `ByteWriter` wrote, checking every length against what is left.
struct ByteReader {
    let bytes: [UInt8]
    private(set) var offset: Int

    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    mutating func take(_ n: Int, _ what: String) throws(DecodeError) -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else { throw .truncated(what: what) }
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }

    mutating func u8(_ what: String) throws(DecodeError) -> UInt8 { try take(1, what).first ?? 0 }
    mutating func u16(_ what: String) throws(DecodeError) -> UInt16 {
        try take(2, what).reduce(0) { ($0 << 8) | UInt16($1) }
    }
    mutating func u32(_ what: String) throws(DecodeError) -> UInt32 {
        try take(4, what).reduce(0) { ($0 << 8) | UInt32($1) }
    }
    mutating func u64(_ what: String) throws(DecodeError) -> UInt64 {
        try take(8, what).reduce(0) { ($0 << 8) | UInt64($1) }
    }
    mutating func str8(_ what: String, max: Int = 255) throws(DecodeError) -> String {
        let n = Int(try u8(what))
        return try string(n, what, max: max)
    }
    mutating func str16(_ what: String, max: Int) throws(DecodeError) -> String {
        let n = Int(try u16(what))
        return try string(n, what, max: max)
    }
    mutating func blob16(_ what: String, max: Int) throws(DecodeError) -> [UInt8] {
        let n = Int(try u16(what))
        guard n <= max else { throw .tooLong(what: what, length: n) }
        return Array(try take(n, what))
    }

    private mutating func string(_ n: Int, _ what: String, max: Int) throws(DecodeError) -> String {
        guard n <= max else { throw .tooLong(what: what, length: n) }
        let raw = try take(n, what)
        guard let s = String(validating: raw, as: UTF8.self) else { throw .badValue(what: "\(what) (not UTF-8)") }
        return s
    }
}
