/// Why a message could not be decoded. Each case carries the octet offset where decoding stopped.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The message ended inside a field; `needed` octets were expected at `offset`.
    case truncated(offset: Int, needed: Int)
    /// A name's uncompressed form exceeded 255 octets (RFC 1035 2.3.4).
    case nameTooLong(offset: Int)
    /// A compression pointer did not point strictly backwards, or too many were chained (RFC 1035 4.1.4).
    case badPointer(offset: Int, target: Int)
    /// A label type other than 00 (normal) or 11 (pointer): the extended label types that
    /// RFC 6891 5 deprecates, which is also how a length octet over 63 reads (RFC 1035 2.3.4).
    case badLabelType(offset: Int, octet: UInt8)
    /// A message count or length field is inconsistent with the message (e.g. QDCOUNT != 1).
    case badCount(field: String, value: Int)
    /// More than one OPT record, or an OPT record not at the root (RFC 6891 6.1.1).
    case badOPT(offset: Int, reason: String)
    /// A malformed EDNS option (RFC 7871 6 for Client Subnet).
    case badOption(code: UInt16, reason: String)

    public var description: String {
        switch self {
        case let .truncated(offset, needed): return "message truncated at offset \(offset) (\(needed) more octets needed)"
        case let .nameTooLong(offset): return "name longer than 255 octets at offset \(offset)"
        case let .badPointer(offset, target): return "bad compression pointer at offset \(offset) to \(target)"
        case let .badLabelType(offset, octet): return "unsupported label type 0x\(String(octet, radix: 16)) at offset \(offset)"
        case let .badCount(field, value): return "bad \(field) \(value)"
        case let .badOPT(offset, reason): return "bad OPT record at offset \(offset): \(reason)"
        case let .badOption(code, reason): return "bad EDNS option \(code): \(reason)"
        }
    }
}
