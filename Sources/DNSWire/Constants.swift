/// Resource record TYPE values (RFC 1035 3.2.2 and the registries that extend it).
public enum RRType {
    public static let a: UInt16 = 1
    public static let ns: UInt16 = 2
    public static let md: UInt16 = 3
    public static let mf: UInt16 = 4
    public static let cname: UInt16 = 5
    public static let soa: UInt16 = 6
    public static let mb: UInt16 = 7
    public static let mg: UInt16 = 8
    public static let mr: UInt16 = 9
    public static let ptr: UInt16 = 12
    public static let hinfo: UInt16 = 13
    public static let minfo: UInt16 = 14
    public static let mx: UInt16 = 15
    public static let txt: UInt16 = 16
    public static let aaaa: UInt16 = 28
    public static let srv: UInt16 = 33
    public static let naptr: UInt16 = 35
    public static let dname: UInt16 = 39
    public static let opt: UInt16 = 41
    public static let ds: UInt16 = 43
    public static let rrsig: UInt16 = 46
    public static let nsec: UInt16 = 47
    public static let dnskey: UInt16 = 48
    /// Child DS and child DNSKEY (RFC 7344).
    public static let cds: UInt16 = 59
    public static let cdnskey: UInt16 = 60
    public static let caa: UInt16 = 257
    /// QTYPEs (RFC 1035 3.2.3, RFC 1995).
    public static let ixfr: UInt16 = 251
    public static let axfr: UInt16 = 252
    public static let mailb: UInt16 = 253
    public static let maila: UInt16 = 254
    public static let any: UInt16 = 255

    /// The mnemonics of the types Meridian names (RFC 1035 3.2.2 and the RFCs of each type):
    /// the one table `name(_:)` and `value(_:)` read, so every mnemonic one prints the other reads.
    static let mnemonics: [UInt16: String] = [
        a: "A", ns: "NS", cname: "CNAME", soa: "SOA", ptr: "PTR", hinfo: "HINFO", mx: "MX", txt: "TXT", aaaa: "AAAA", srv: "SRV",
        naptr: "NAPTR", opt: "OPT", ds: "DS", rrsig: "RRSIG", nsec: "NSEC", dnskey: "DNSKEY", cds: "CDS", cdnskey: "CDNSKEY", caa: "CAA",
        ixfr: "IXFR", axfr: "AXFR", any: "ANY",
    ]
    static let byMnemonic: [String: UInt16] = Dictionary(uniqueKeysWithValues: mnemonics.map { ($0.value, $0.key) })

    /// Mnemonic for logs, metrics and tests; `TYPEnnn` (RFC 3597 5) for the rest.
    public static func name(_ type: UInt16) -> String { mnemonics[type] ?? "TYPE\(type)" }

    /// The type a mnemonic from `name(_:)` (or `TYPEnnn`, RFC 3597 5) stands for, in any case;
    /// for tools and files, not the query path.
    public static func value(_ mnemonic: String) -> UInt16? {
        let upper = mnemonic.uppercased()
        if upper.hasPrefix("TYPE"), let n = UInt16(upper.dropFirst(4)) { return n }
        return byMnemonic[upper]
    }
}

/// CLASS values (RFC 1035 3.2.4, 3.2.5).
public enum RRClass {
    public static let `in`: UInt16 = 1
    public static let ch: UInt16 = 3
    public static let hs: UInt16 = 4
    public static let none: UInt16 = 254
    public static let any: UInt16 = 255
}

/// OPCODE values (RFC 1035 4.1.1, RFC 1996, RFC 2136).
public enum Opcode {
    public static let query: UInt8 = 0
    public static let iquery: UInt8 = 1
    public static let status: UInt8 = 2
    public static let notify: UInt8 = 4
    public static let update: UInt8 = 5
}

/// RCODE values (RFC 1035 4.1.1; BADVERS from RFC 6891 9 is an extended RCODE of 16).
public enum RCode {
    public static let noError: UInt16 = 0
    public static let formErr: UInt16 = 1
    public static let servFail: UInt16 = 2
    public static let nxDomain: UInt16 = 3
    public static let notImp: UInt16 = 4
    public static let refused: UInt16 = 5
    public static let badVers: UInt16 = 16
    /// RFC 7873 8: a bad or missing server cookie.
    public static let badCookie: UInt16 = 23

    /// Mnemonic for logs and metrics.
    public static func name(_ rcode: UInt16) -> String {
        switch rcode {
        case noError: return "NOERROR"
        case formErr: return "FORMERR"
        case servFail: return "SERVFAIL"
        case nxDomain: return "NXDOMAIN"
        case notImp: return "NOTIMP"
        case refused: return "REFUSED"
        case badVers: return "BADVERS"
        case badCookie: return "BADCOOKIE"
        default: return "RCODE\(rcode)"
        }
    }
}

/// EDNS(0) option codes (RFC 6891 6.1.2 and the IANA registry).
public enum EDNSOptionCode {
    /// RFC 5001.
    public static let nsid: UInt16 = 3
    /// RFC 7871.
    public static let clientSubnet: UInt16 = 8
    /// RFC 7873.
    public static let cookie: UInt16 = 10
}

/// Wire-format limits (RFC 1035 2.3.4, 4.2.1; RFC 6891 6.2.5).
public enum WireLimits {
    public static let maxLabelLength = 63
    public static let maxNameLength = 255
    public static let headerLength = 12
    public static let minUDPPayload = 512
    public static let maxMessageLength = 65535
    /// The largest number of compression pointers followed in one name before it is rejected.
    public static let maxPointerHops = 64
}
