import DNSWire

/// The records of one owner name and type (RFC 2181 5), in wire form.
public struct RRset: Sendable {
    public let type: UInt16
    public let ttl: UInt32
    /// Each record's RDATA, uncompressed.
    public let rdatas: [[UInt8]]
    /// Whether RDATA holds names that are compressed when written (RFC 3597 4).
    public let rdataHasNames: Bool
    /// The whole set ready to copy when its owner is the query name: for each record a
    /// pointer to offset 12 (the question name), TYPE, CLASS, TTL, RDLENGTH, RDATA.
    /// Empty when `rdataHasNames` (such sets are written record by record).
    public let wireAtQName: [UInt8]
    /// Lowercased names whose addresses belong in the additional section (NS, MX, SRV targets).
    public let additionalNames: [[UInt8]]

    public init(type: UInt16, ttl: UInt32, rdatas: [[UInt8]]) {
        self.type = type
        self.ttl = ttl
        self.rdatas = rdatas
        rdataHasNames = RRset.compressibleTypes.contains(type)
        var wire: [UInt8] = []
        if !rdataHasNames {
            for r in rdatas {
                wire += [0xC0, 0x0C, UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
                wire += [UInt8(ttl >> 24), UInt8((ttl >> 16) & 0xFF), UInt8((ttl >> 8) & 0xFF), UInt8(ttl & 0xFF)]
                wire += [UInt8(r.count >> 8), UInt8(r.count & 0xFF)]
                wire += r
            }
        }
        wireAtQName = wire
        var extra: [[UInt8]] = []
        for r in rdatas {
            switch type {
            case RRType.ns: extra.append(Name.lowercased(r))
            case RRType.mx where r.count > 2: extra.append(Name.lowercased(Array(r[2...])))
            case RRType.srv where r.count > 6: extra.append(Name.lowercased(Array(r[6...])))
            default: break
            }
        }
        additionalNames = extra
    }

    /// A copy with another TTL (negative answers use min(SOA TTL, MINIMUM), RFC 2308 3).
    public func with(ttl: UInt32) -> RRset { RRset(type: type, ttl: ttl, rdatas: rdatas) }

    /// The types whose RDATA names may be compressed (RFC 3597 4).
    public static let compressibleTypes: Set<UInt16> = [
        RRType.ns, RRType.md, RRType.mf, RRType.cname, RRType.soa, RRType.mb, RRType.mg, RRType.mr, RRType.ptr,
        RRType.minfo, RRType.mx,
    ]
}

/// One name in a zone's tree: its RRsets, or none for an empty non-terminal (RFC 8020).
public struct ZoneNode: Sendable {
    /// The owner name, uncompressed, case as written in the zone file.
    public let name: [UInt8]
    public let rrsets: [RRset]
    /// NS records at a name below the apex: a zone cut (RFC 1034 4.2.2).
    public let isDelegation: Bool
    /// Index of the node `*.<this name>` (RFC 4592 2.2.1), or -1.
    public let wildcardChild: Int
    /// Index of the CNAME RRset in `rrsets`, or -1.
    public let cnameIndex: Int
    /// The pool that answers this name's addresses (or CNAME), or -1.
    public let pool: Int

    public init(name: [UInt8], rrsets: [RRset], isDelegation: Bool, wildcardChild: Int, pool: Int = -1) {
        self.name = name
        self.rrsets = rrsets
        self.isDelegation = isDelegation
        self.wildcardChild = wildcardChild
        cnameIndex = rrsets.firstIndex { $0.type == RRType.cname } ?? -1
        self.pool = pool
    }

    /// The RRset of `type`, if any.
    @inlinable
    public func rrset(_ type: UInt16) -> RRset? {
        for r in rrsets where r.type == type { return r }
        return nil
    }
}

/// One authoritative zone: its nodes in a name table keyed by lowercased wire name.
public final class Zone: Sendable {
    /// The apex name, uncompressed wire form, lowercased.
    public let origin: [UInt8]
    public let nodes: [ZoneNode]
    public let table: NameTable
    public let apex: Int
    /// The SOA RRset as it is answered to SOA queries.
    public let soa: RRset
    /// The SOA RRset for negative answers: TTL = min(SOA TTL, SOA MINIMUM) (RFC 2308 3).
    public let negativeSOA: RRset
    /// The file the zone was loaded from.
    public let file: String

    init(origin: [UInt8], nodes: [ZoneNode], table: NameTable, apex: Int, soa: RRset, file: String) {
        self.origin = origin
        self.nodes = nodes
        self.table = table
        self.apex = apex
        self.soa = soa
        let r = soa.rdatas[0]
        let minimum = r.count >= 4 ? UInt32(r[r.count - 4]) << 24 | UInt32(r[r.count - 3]) << 16 | UInt32(r[r.count - 2]) << 8 | UInt32(r[r.count - 1]) : 0
        negativeSOA = soa.with(ttl: min(soa.ttl, minimum))
        self.file = file
    }

    /// The number of records in the zone.
    public var recordCount: Int { nodes.reduce(0) { $0 + $1.rrsets.reduce(0) { $0 + $1.rdatas.count } } }

    /// The SOA serial (RFC 1035 3.3.13: the 32-bit field 20 octets before the end).
    public var serial: UInt32 {
        let r = soa.rdatas[0]
        guard r.count >= 20 else { return 0 }
        let i = r.count - 20
        return UInt32(r[i]) << 24 | UInt32(r[i + 1]) << 16 | UInt32(r[i + 2]) << 8 | UInt32(r[i + 3])
    }

    /// The node of a lowercased wire name, if it exists (with records or as an empty non-terminal).
    public func node(_ name: [UInt8]) -> ZoneNode? {
        table.find(name).map { nodes[$0] }
    }
}

/// A name whose addresses a pool answers, from a pool file.
public struct NameBinding: Sendable {
    /// Uncompressed wire name.
    public var name: [UInt8]
    public var pool: Int
    /// The pool answers CNAME targets: nothing else may live at the name.
    public var answersCNAME: Bool
    public var file: String
    public var line: Int

    public init(name: [UInt8], pool: Int, answersCNAME: Bool, file: String, line: Int) {
        self.name = name
        self.pool = pool
        self.answersCNAME = answersCNAME
        self.file = file
        self.line = line
    }
}

/// All zones served at once: the zone data part of a server snapshot.
public final class ZoneSet: Sendable {
    public let zones: [Zone]
    /// Lowercased apex name -> index in `zones`.
    public let apexTable: NameTable

    public init(zones: [Zone]) {
        self.zones = zones
        apexTable = NameTable(zones.enumerated().map { ($0.element.origin, $0.offset) })
    }

    /// The number of records in all zones.
    public var recordCount: Int { zones.reduce(0) { $0 + $1.recordCount } }
}
