/// Header field access (RFC 1035 4.1.1). The header is 12 octets:
/// ID, flags (QR|Opcode|AA|TC|RD|RA|Z|AD|CD|RCODE), QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT.
public enum Header {
    public static let qr: UInt16 = 0x8000
    public static let aa: UInt16 = 0x0400
    public static let tc: UInt16 = 0x0200
    public static let rd: UInt16 = 0x0100
    public static let ra: UInt16 = 0x0080
    /// AD (RFC 4035 3.2.3) and CD (RFC 4035 3.2.2).
    public static let ad: UInt16 = 0x0020
    public static let cd: UInt16 = 0x0010

    @inline(__always)
    public static func u16(_ m: UnsafeRawBufferPointer, _ at: Int) -> UInt16 {
        UInt16(m[at]) << 8 | UInt16(m[at + 1])
    }

    @inline(__always)
    public static func u32(_ m: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(m[at]) << 24 | UInt32(m[at + 1]) << 16 | UInt32(m[at + 2]) << 8 | UInt32(m[at + 3])
    }

    public static func id(_ m: UnsafeRawBufferPointer) -> UInt16 { u16(m, 0) }
    public static func flags(_ m: UnsafeRawBufferPointer) -> UInt16 { u16(m, 2) }
    public static func opcode(_ m: UnsafeRawBufferPointer) -> UInt8 { UInt8((u16(m, 2) >> 11) & 0xF) }
    public static func qdcount(_ m: UnsafeRawBufferPointer) -> Int { Int(u16(m, 4)) }
    public static func ancount(_ m: UnsafeRawBufferPointer) -> Int { Int(u16(m, 6)) }
    public static func nscount(_ m: UnsafeRawBufferPointer) -> Int { Int(u16(m, 8)) }
    public static func arcount(_ m: UnsafeRawBufferPointer) -> Int { Int(u16(m, 10)) }
}

/// The question of a query (RFC 1035 4.1.2), located in the message it was read from.
public struct Question: Sendable, Equatable {
    /// Offset just past QCLASS: the question is octets 12..<end of the message.
    public var end: Int
    /// Length of the uncompressed name.
    public var nameLength: Int
    public var type: UInt16
    public var qclass: UInt16

    public init(end: Int, nameLength: Int, type: UInt16, qclass: UInt16) {
        self.end = end
        self.nameLength = nameLength
        self.type = type
        self.qclass = qclass
    }
}

/// The EDNS Client Subnet option (RFC 7871 6): FAMILY, SOURCE PREFIX-LENGTH,
/// SCOPE PREFIX-LENGTH and ADDRESS truncated to the source prefix.
public struct ClientSubnet: Sendable, Equatable {
    /// 1 = IPv4, 2 = IPv6 (IANA address family numbers).
    public var family: UInt16
    public var sourcePrefix: UInt8
    public var scopePrefix: UInt8
    /// The address, zero-padded to 16 octets (IPv4 in the first 4).
    public var address: SIMD16<UInt8>

    public init(family: UInt16, sourcePrefix: UInt8, scopePrefix: UInt8, address: SIMD16<UInt8>) {
        self.family = family
        self.sourcePrefix = sourcePrefix
        self.scopePrefix = scopePrefix
        self.address = address
    }

    /// Octets of ADDRESS on the wire: ceil(source prefix / 8).
    public var addressLength: Int { (Int(sourcePrefix) + 7) / 8 }

    /// Parses and validates the option data (RFC 7871 6, 7.1.1): a known family, a source
    /// prefix no longer than the family's address, a zero scope in queries, ADDRESS exactly
    /// ceil(source/8) octets with the bits past the source prefix zero.
    public static func parse(_ data: UnsafeRawBufferPointer) throws(WireError) -> ClientSubnet {
        let code = EDNSOptionCode.clientSubnet
        guard data.count >= 4 else { throw .badOption(code: code, reason: "shorter than 4 octets") }
        let family = Header.u16(data, 0)
        let source = data[2]
        let scope = data[3]
        let maxBits: Int
        switch family {
        case 1: maxBits = 32
        case 2: maxBits = 128
        default: throw .badOption(code: code, reason: "unknown family \(family)")
        }
        guard Int(source) <= maxBits else { throw .badOption(code: code, reason: "source prefix \(source) too long") }
        guard scope == 0 else { throw .badOption(code: code, reason: "non-zero scope prefix in a query") }
        let addressLength = (Int(source) + 7) / 8
        guard data.count - 4 == addressLength else {
            throw .badOption(code: code, reason: "address is \(data.count - 4) octets, source prefix \(source) needs \(addressLength)")
        }
        var address = SIMD16<UInt8>(repeating: 0)
        for i in 0..<addressLength { address[i] = data[4 + i] }
        if source % 8 != 0 {
            let mask = UInt8(0xFF) >> (source % 8)
            guard address[addressLength - 1] & mask == 0 else {
                throw .badOption(code: code, reason: "address bits set beyond the source prefix")
            }
        }
        return ClientSubnet(family: family, sourcePrefix: source, scopePrefix: 0, address: address)
    }
}

/// What a query's OPT pseudo-record says (RFC 6891 6.1.2, 6.1.3).
public struct EDNS: Sendable, Equatable {
    /// Requestor's UDP payload size, as sent (RFC 6891 6.2.3).
    public var udpPayload: UInt16
    /// EDNS version (RFC 6891 6.1.3).
    public var version: UInt8
    /// The DO bit (RFC 3225).
    public var dnssecOK: Bool
    /// The query carried an NSID option (RFC 5001 2.1).
    public var nsidRequested: Bool
    /// A valid Client Subnet option, if present (RFC 7871).
    public var clientSubnet: ClientSubnet?
    /// Where the COOKIE option's data starts in the message, and its length: 8 (a client
    /// cookie) or 16 to 40 (with a server cookie) (RFC 7873 4); 0 when absent.
    public var cookieOffset: Int = 0
    public var cookieLength: Int = 0

    public init(udpPayload: UInt16, version: UInt8, dnssecOK: Bool, nsidRequested: Bool, clientSubnet: ClientSubnet?) {
        self.udpPayload = udpPayload
        self.version = version
        self.dnssecOK = dnssecOK
        self.nsidRequested = nsidRequested
        self.clientSubnet = clientSubnet
    }

    public var hasCookie: Bool { cookieLength > 0 }
}

/// Decoding of queries: question first, then the rest of the message for the OPT record.
public enum QueryParser {
    /// Reads the single question at offset 12; the lowercased name goes to `nameOut`
    /// (at least 255 octets).
    public static func question(
        _ m: UnsafeRawBufferPointer, nameOut: UnsafeMutableRawBufferPointer
    ) throws(WireError) -> Question {
        let (nameEnd, nameLength) = try Name.read(m, at: WireLimits.headerLength, into: nameOut)
        guard nameEnd + 4 <= m.count else { throw .truncated(offset: nameEnd, needed: 4) }
        return Question(end: nameEnd + 4, nameLength: nameLength, type: Header.u16(m, nameEnd), qclass: Header.u16(m, nameEnd + 2))
    }

    /// Walks the answer, authority and additional sections after the question, checking every
    /// record's bounds, and returns the OPT record's content if there is one.
    ///
    /// Throws for counts that run past the end of the message, for more than one OPT record,
    /// for an OPT not owned by the root (RFC 6891 6.1.1), and for a malformed option that the
    /// server interprets (Client Subnet, RFC 7871). Unknown options are ignored (RFC 6891 6.1.2).
    /// - Returns: the EDNS content (nil without OPT) and whether the OPT record itself was
    ///   well formed so that a FORMERR reply may carry OPT.
    public static func edns(_ m: UnsafeRawBufferPointer, after question: Question) throws(WireError) -> EDNS? {
        var pos = question.end
        let an = Header.ancount(m)
        let ns = Header.nscount(m)
        let ar = Header.arcount(m)
        var result: EDNS? = nil
        for index in 0..<(an + ns + ar) {
            let owner = pos
            pos = try Name.skip(m, at: pos)
            guard pos + 10 <= m.count else { throw .truncated(offset: pos, needed: 10) }
            let type = Header.u16(m, pos)
            let rdlength = Int(Header.u16(m, pos + 8))
            let rdata = pos + 10
            guard rdata + rdlength <= m.count else { throw .truncated(offset: rdata, needed: rdlength) }
            if type == RRType.opt {
                guard index >= an + ns else { throw .badOPT(offset: owner, reason: "OPT outside the additional section") }
                guard result == nil else { throw .badOPT(offset: owner, reason: "more than one OPT record") }
                guard m[owner] == 0 else { throw .badOPT(offset: owner, reason: "owner is not the root") }
                let payload = Header.u16(m, pos + 2)
                let ttl = Header.u32(m, pos + 4)
                var edns = EDNS(
                    udpPayload: payload, version: UInt8((ttl >> 16) & 0xFF), dnssecOK: ttl & 0x8000 != 0,
                    nsidRequested: false, clientSubnet: nil)
                var o = rdata
                let optEnd = rdata + rdlength
                var sawECS = false
                while o < optEnd {
                    guard o + 4 <= optEnd else { throw .badOPT(offset: o, reason: "option header runs past the record") }
                    let code = Header.u16(m, o)
                    let len = Int(Header.u16(m, o + 2))
                    guard o + 4 + len <= optEnd else { throw .badOPT(offset: o, reason: "option \(code) runs past the record") }
                    switch code {
                    case EDNSOptionCode.nsid:
                        edns.nsidRequested = true
                    case EDNSOptionCode.cookie:
                        // RFC 7873 5.2.2: a client cookie alone (8) or with a server cookie of 8 to
                        // 32 octets; anything else, or a second COOKIE, is FORMERR.
                        guard edns.cookieLength == 0 else { throw .badOption(code: code, reason: "more than one COOKIE option") }
                        guard len == 8 || (16...40).contains(len) else { throw .badOption(code: code, reason: "COOKIE of \(len) octets") }
                        edns.cookieOffset = o + 4
                        edns.cookieLength = len
                    case EDNSOptionCode.clientSubnet:
                        guard !sawECS else { throw .badOption(code: code, reason: "more than one Client Subnet option") }
                        sawECS = true
                        edns.clientSubnet = try ClientSubnet.parse(UnsafeRawBufferPointer(rebasing: m[(o + 4)..<(o + 4 + len)]))
                    default:
                        break
                    }
                    o += 4 + len
                }
                result = edns
            }
            pos = rdata + rdlength
        }
        return result
    }
}
