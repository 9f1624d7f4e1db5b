import Diagnostics
import DNSWire
import Foundation

/// Turns one zone's records into a `Zone`, after the semantic checks an operator expects
/// before a zone goes live: SOA and NS at the apex, no out-of-zone data, CNAME alone at its
/// name (RFC 1034 3.6.2, RFC 2181 10.1), nothing but glue below a zone cut (RFC 1034 4.2.1),
/// one TTL per RRset (RFC 2181 5.2).
public enum ZoneBuilder {
    public static func build(origin: [UInt8], records: [ZoneRecord], file: String, bindings: [NameBinding] = []) -> (zone: Zone?, diagnostics: [Diagnostic]) {
        var diags: [Diagnostic] = []
        let originLower = Name.lowercased(origin)
        let originText = Name.text(origin)
        func error(_ r: ZoneRecord, _ m: String) { diags.append(Diagnostic(file: r.file, line: r.line, m)) }

        // Group by owner (lowercased) and type, keeping first-seen order.
        var ownerOrder: [[UInt8]] = []
        var owners: [NameKey: (name: [UInt8], types: [UInt16], records: [UInt16: [ZoneRecord]])] = [:]
        for r in records {
            guard r.rrclass == RRClass.in else {
                error(r, "class \(r.rrclass) is not IN: only IN zones are served")
                continue
            }
            let key = Name.lowercased(r.owner)
            guard Name.isSubdomain(key, of: originLower) else {
                error(r, "\(Name.text(r.owner)) is out of zone (not at or below \(originText))")
                continue
            }
            if r.type == RRType.opt || r.type == RRType.axfr || r.type == RRType.ixfr || r.type == RRType.any {
                error(r, "\(RRType.name(r.type)) is not a record type that can be served")
                continue
            }
            let k = NameKey(key)
            if owners[k] == nil {
                ownerOrder.append(key)
                owners[k] = (r.owner, [], [:])
            }
            if owners[k]!.records[r.type] == nil { owners[k]!.types.append(r.type) }
            owners[k]!.records[r.type, default: []].append(r)
        }

        // Apex checks.
        let apexRecords = owners[NameKey(originLower)]?.records ?? [:]
        let firstLine = records.first.map { ($0.file, $0.line) } ?? (file, 1)
        if apexRecords[RRType.soa] == nil {
            diags.append(Diagnostic(file: firstLine.0, line: firstLine.1, "no SOA record at the apex \(originText)"))
        } else if apexRecords[RRType.soa]!.count > 1 {
            error(apexRecords[RRType.soa]![1], "more than one SOA record at the apex")
        }
        if apexRecords[RRType.ns] == nil {
            diags.append(Diagnostic(file: firstLine.0, line: firstLine.1, "no NS records at the apex \(originText)"))
        }
        if let ds = apexRecords[RRType.ds]?.first { error(ds, "DS at the apex belongs in the parent zone") }

        // Zone cuts: NS below the apex.
        let cuts = Set(ownerOrder.filter { $0 != originLower && owners[NameKey($0)]!.records[RRType.ns] != nil }.map(NameKey.init))

        for key in ownerOrder {
            let o = owners[NameKey(key)]!
            if o.records[RRType.soa] != nil && key != originLower {
                error(o.records[RRType.soa]![0], "SOA record at \(Name.text(o.name)), not at the apex")
            }
            if let cnames = o.records[RRType.cname] {
                if cnames.count > 1 { error(cnames[1], "more than one CNAME at \(Name.text(o.name))") }
                for t in o.types where t != RRType.cname && t != RRType.rrsig && t != RRType.nsec {
                    error(o.records[t]![0], "\(RRType.name(t)) beside a CNAME at \(Name.text(o.name)) (a CNAME must be alone at its name)")
                }
            }
            // Below (or at) a zone cut only glue may appear.
            var ancestor = key
            var atCut = true
            while ancestor != originLower {
                if cuts.contains(NameKey(ancestor)) {
                    let allowed: Set<UInt16> = atCut ? [RRType.ns, RRType.ds, RRType.a, RRType.aaaa, RRType.rrsig, RRType.nsec] : [RRType.a, RRType.aaaa]
                    for t in o.types where !allowed.contains(t) {
                        error(o.records[t]![0], "\(RRType.name(t)) at \(Name.text(o.name)) is \(atCut ? "at" : "below") the delegation to \(Name.text(owners[NameKey(ancestor)]!.name)) and is not glue")
                    }
                    if !atCut { break }
                }
                ancestor = Array(ancestor[(Int(ancestor[0]) + 1)...])
                atCut = false
            }
            // One TTL per RRset.
            for t in o.types {
                let rs = o.records[t]!
                if let differing = rs.first(where: { $0.ttl != rs[0].ttl }) {
                    diags.append(Diagnostic(file: differing.file, line: differing.line, severity: .warning,
                        "TTL \(differing.ttl) differs from \(rs[0].ttl) in the \(RRType.name(t)) set of \(Name.text(o.name)); the lowest is used (RFC 2181 5.2)"))
                }
            }
        }
        // Pool bindings: the pool owns the name's addresses (or, for CNAME pools, the whole name).
        var poolOf: [NameKey: Int] = [:]
        for b in bindings {
            let key = Name.lowercased(b.name)
            let here = Name.text(b.name)
            func bindError(_ m: String) { diags.append(Diagnostic(file: b.file, line: b.line, m)) }
            var ancestor = key
            var belowCut = false
            while ancestor != originLower {
                if cuts.contains(NameKey(ancestor)) { belowCut = true }
                ancestor = Array(ancestor[(Int(ancestor[0]) + 1)...])
            }
            if belowCut {
                bindError("\(here) is at or below a delegation in \(originText): it cannot be bound to a pool")
                continue
            }
            if key == originLower && b.answersCNAME {
                bindError("\(here) is the zone apex: a CNAME pool cannot answer there")
                continue
            }
            if let o = owners[NameKey(key)] {
                let clashing = b.answersCNAME ? o.types : o.types.filter { $0 == RRType.a || $0 == RRType.aaaa || $0 == RRType.cname }
                for t in clashing {
                    let r = o.records[t]![0]
                    bindError("\(here) is bound to a pool, but \((r.file as NSString).lastPathComponent):\(r.line) has a static \(RRType.name(t)) record there")
                }
                if !clashing.isEmpty { continue }
            }
            poolOf[NameKey(key)] = b.pool
        }
        if diags.contains(where: { $0.severity == .error }) { return (nil, diags) }

        // Nodes, with empty non-terminals between each owner and the apex (RFC 8020).
        var nodeNames: [[UInt8]] = []
        var nodeIndex: [NameKey: Int] = [:]
        func addNode(_ key: [UInt8]) {
            let k = NameKey(key)
            guard nodeIndex[k] == nil else { return }
            nodeIndex[k] = nodeNames.count
            nodeNames.append(key)
            if key != originLower { addNode(Array(key[(Int(key[0]) + 1)...])) }
        }
        addNode(originLower)
        for key in ownerOrder { addNode(key) }
        for key in poolOf.keys.map(\.bytes).sorted(by: { $0.lexicographicallyPrecedes($1) }) { addNode(key) }

        var nodes: [ZoneNode] = []
        var soa: RRset?
        for key in nodeNames {
            var rrsets: [RRset] = []
            var display = key
            let k = NameKey(key)
            if let o = owners[k] {
                display = o.name
                for t in o.types {
                    var seen = Set<NameKey>()
                    var rdatas: [[UInt8]] = []
                    for r in o.records[t]! where seen.insert(NameKey(canonical(type: t, rdata: r.rdata))).inserted { rdatas.append(r.rdata) }
                    let set = RRset(type: t, ttl: o.records[t]!.map(\.ttl).min()!, rdatas: rdatas)
                    if t == RRType.soa && key == originLower { soa = set }
                    rrsets.append(set)
                }
            } else {
                // Keep the case of the deeper owners for empty non-terminals' display name.
                display = key
            }
            let wildcard = nodeIndex[NameKey([1, UInt8(ascii: "*")] + key)] ?? -1
            if let b = bindings.first(where: { Name.lowercased($0.name) == key }), owners[k] == nil { display = b.name }
            nodes.append(ZoneNode(name: display, rrsets: rrsets, isDelegation: cuts.contains(k), wildcardChild: wildcard, pool: poolOf[k] ?? -1))
        }
        let table = NameTable(nodeNames.enumerated().map { ($0.element, $0.offset) })
        let zone = Zone(origin: originLower, nodes: nodes, table: table, apex: 0, soa: soa!, file: file)
        return (zone, diags)
    }

    /// RDATA compared for duplicates: names inside compressible types compare without case.
    static func canonical(type: UInt16, rdata: [UInt8]) -> [UInt8] {
        switch type {
        case RRType.ns, RRType.cname, RRType.ptr: return Name.lowercased(rdata)
        default: return rdata
        }
    }
}

/// A wire name (or any octets) as a dictionary key, hashed in one call over its bytes:
/// `[UInt8]`'s own `Hashable` feeds the hasher one octet at a time, which was a sixth of the
/// time to load a million-record zone.
struct NameKey: Hashable {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    func hash(into hasher: inout Hasher) { bytes.withUnsafeBytes { hasher.combine(bytes: $0) } }
    static func == (a: NameKey, b: NameKey) -> Bool { a.bytes == b.bytes }
}
