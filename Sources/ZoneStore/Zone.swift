import DNSWire

/// One name in a zone's tree, packed: its RRsets are `Zone.sets[firstSet ..< firstSet + setCount]`
/// (none for an empty non-terminal, RFC 8020).
public struct ZoneNodeInfo: Sendable {
    public let firstSet: UInt32
    public let setCount: UInt16
    /// NS records at a name below the apex: a zone cut (RFC 1034 4.2.2).
    public let isDelegation: Bool
    /// Index of the node `*.<this name>` (RFC 4592 2.2.1), or -1.
    public let wildcardChild: Int32
    /// The pool that answers this name's addresses (or CNAME), or -1.
    public let pool: Int32
    /// Offset + 1 in `Zone.displayNames` of the name as the zone file wrote it, or 0 when that
    /// is the lowercased key.
    @usableFromInline let display: UInt32
}

/// One RRset (RFC 2181 5), packed: its records are `Zone.records[firstRecord ..< firstRecord + count]`.
public struct ZoneSetInfo: Sendable {
    public let ttl: UInt32
    public let firstRecord: UInt32
    public let count: UInt32
    public let type: UInt16
}

/// One authoritative zone, laid out in a few flat arrays: a name table whose entry `i` is node
/// `i`, the nodes, the RRsets, and every record's RDATA back to back (a 2-octet length, then
/// the uncompressed RDATA). No per-name or per-record object exists, so a million records
/// cost little more than their wire form, and a reload builds one new copy.
public final class Zone: Sendable {
    /// The apex name, uncompressed wire form, lowercased.
    public let origin: [UInt8]
    /// The file the zone was loaded from.
    public let file: String
    /// Lowercased node names; the value of entry `i` is `i`.
    public let table: NameTable
    public let nodes: [ZoneNodeInfo]
    public let sets: [ZoneSetInfo]
    /// Record -> offset in `rdata` of its RDLENGTH.
    @usableFromInline let records: [UInt32]
    @usableFromInline let rdata: [UInt8]
    @usableFromInline let displayNames: [UInt8]
    public let apex: Int
    /// The SOA RRset.
    public let soaSet: Int
    /// TTL of the SOA in negative answers: min(SOA TTL, SOA MINIMUM) (RFC 2308 3).
    public let negativeTTL: UInt32

    init(origin: [UInt8], file: String, table: NameTable, nodes: [ZoneNodeInfo], sets: [ZoneSetInfo], records: [UInt32], rdata: [UInt8], displayNames: [UInt8], apex: Int, soaSet: Int) {
        self.origin = origin
        self.file = file
        self.table = table
        self.nodes = nodes
        self.sets = sets
        self.records = records
        self.rdata = rdata
        self.displayNames = displayNames
        self.apex = apex
        self.soaSet = soaSet
        let soa = sets[soaSet]
        var minimum: UInt32 = 0
        Zone.withRData(records: records, rdata: rdata, Int(soa.firstRecord)) { r in
            guard r.count >= 4 else { return }
            minimum = UInt32(r[r.count - 4]) << 24 | UInt32(r[r.count - 3]) << 16 | UInt32(r[r.count - 2]) << 8 | UInt32(r[r.count - 1])
        }
        negativeTTL = min(soa.ttl, minimum)
    }

    /// The number of records in the zone.
    public var recordCount: Int { records.count }

    /// The earliest Signature Expiration (RFC 4034 3.1.5, octets 8-11 of the RDATA) of the RRSIG
    /// records the zone file holds (a pre-signed zone); nil when it holds none.
    public var earliestSignatureExpiration: UInt32? {
        var earliest: UInt32?
        for s in sets where s.type == 46 {
            for r in Int(s.firstRecord)..<Int(s.firstRecord + s.count) {
                let e: UInt32? = withRData(r) { d in
                    d.count >= 12 ? UInt32(d[8]) << 24 | UInt32(d[9]) << 16 | UInt32(d[10]) << 8 | UInt32(d[11]) : nil
                }
                if let e, earliest.map({ e < $0 }) ?? true { earliest = e }
            }
        }
        return earliest
    }

    /// The octets the zone's arrays hold, for memory accounting.
    public var byteCount: Int {
        table.byteCount + nodes.count * MemoryLayout<ZoneNodeInfo>.stride + sets.count * MemoryLayout<ZoneSetInfo>.stride
            + records.count * 4 + rdata.count + displayNames.count
    }

    /// The SOA serial (RFC 1035 3.3.13: the 32-bit field 20 octets before the end).
    public var serial: UInt32 {
        withRData(Int(sets[soaSet].firstRecord)) { r in
            guard r.count >= 20 else { return 0 }
            let i = r.count - 20
            return UInt32(r[i]) << 24 | UInt32(r[i + 1]) << 16 | UInt32(r[i + 2]) << 8 | UInt32(r[i + 3])
        }
    }

    /// The RRset of `type` at node `node`, if any.
    @inlinable
    public func set(node: Int, type: UInt16) -> Int? {
        let n = nodes[node]
        let first = Int(n.firstSet)
        for s in first..<first + Int(n.setCount) where sets[s].type == type { return s }
        return nil
    }

    /// Calls `body` with record `record`'s RDATA.
    @inlinable
    public func withRData<T>(_ record: Int, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        Zone.withRData(records: records, rdata: rdata, record, body)
    }

    @usableFromInline
    static func withRData<T>(records: [UInt32], rdata: [UInt8], _ record: Int, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        rdata.withUnsafeBytes { a in
            let at = Int(records[record])
            let length = Int(a[at]) << 8 | Int(a[at + 1])
            return body(UnsafeRawBufferPointer(rebasing: a[at + 2..<at + 2 + length]))
        }
    }

    /// Calls `body` with node `node`'s name as the zone file wrote it.
    @inlinable
    public func withName<T>(node: Int, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        let d = Int(nodes[node].display)
        if d == 0 { return table.withKey(node, body) }
        return displayNames.withUnsafeBytes { a in
            let length = Int(a[d - 1])
            return body(UnsafeRawBufferPointer(rebasing: a[d..<d + length]))
        }
    }

    /// Node `i` as a value with copied arrays, for tests and tools (not the query path).
    public func nodeView(_ i: Int) -> ZoneNode {
        let n = nodes[i]
        let rrsets = (Int(n.firstSet)..<Int(n.firstSet) + Int(n.setCount)).map { s in
            let info = sets[s]
            return RRset(type: info.type, ttl: info.ttl,
                         rdatas: (Int(info.firstRecord)..<Int(info.firstRecord) + Int(info.count)).map { r in withRData(r) { Array($0) } })
        }
        return ZoneNode(name: withName(node: i) { Array($0) }, rrsets: rrsets, isDelegation: n.isDelegation,
                        wildcardChild: Int(n.wildcardChild), pool: Int(n.pool))
    }

    /// The node of a lowercased wire name, if it exists (with records or as an empty
    /// non-terminal), as a value for tests and tools.
    public func node(_ name: [UInt8]) -> ZoneNode? {
        table.find(name).map(nodeView)
    }
}

/// The records of one owner name and type, copied out of a `Zone` for tests and tools.
public struct RRset: Sendable, Equatable {
    public let type: UInt16
    public let ttl: UInt32
    /// Each record's RDATA, uncompressed.
    public let rdatas: [[UInt8]]

    public init(type: UInt16, ttl: UInt32, rdatas: [[UInt8]]) {
        self.type = type
        self.ttl = ttl
        self.rdatas = rdatas
    }
}

/// One name of a zone copied out of a `Zone`, for tests and tools.
public struct ZoneNode: Sendable {
    public let name: [UInt8]
    public let rrsets: [RRset]
    public let isDelegation: Bool
    public let wildcardChild: Int
    public let pool: Int

    public init(name: [UInt8], rrsets: [RRset], isDelegation: Bool, wildcardChild: Int, pool: Int = -1) {
        self.name = name
        self.rrsets = rrsets
        self.isDelegation = isDelegation
        self.wildcardChild = wildcardChild
        self.pool = pool
    }

    /// The RRset of `type`, if any.
    public func rrset(_ type: UInt16) -> RRset? {
        rrsets.first { $0.type == type }
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
