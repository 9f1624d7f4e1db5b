#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Diagnostics
import DNSWire

/// Turns one zone's records into a `Zone`, after the semantic checks an operator expects
/// before a zone goes live: SOA and NS at the apex, no out-of-zone data, CNAME alone at its
/// name (RFC 1034 3.6.2, RFC 2181 10.1), nothing but glue below a zone cut (RFC 1034 4.2.1),
/// one TTL per RRset (RFC 2181 5.2).
enum ZoneBuilder {
    static func build(_ acc: ZoneAccumulator, file: String, bindings: [NameBinding]) -> (zone: Zone?, diagnostics: [Diagnostic]) {
        var a = ZoneAssembly(acc: acc, file: file)
        return a.run(bindings: bindings)
    }
}

/// One build: the accumulator's records grouped by owner (a counting sort on owner numbers,
/// so no per-owner collections), each owner's records grouped by type in first-seen order,
/// checked, and written out as the zone's node, RRset and record arrays.
struct ZoneAssembly {
    let acc: ZoneAccumulator
    let file: String
    let originText: String
    var diags: [Diagnostic]
    /// Owners with records: ids below this number.
    let owners: Int
    /// Record numbers grouped by owner, then by type.
    var order: [UInt32] = []
    /// Owner -> its first position in `order`; one more entry than owners.
    var ownerStart: [UInt32] = []
    var isCut: [Bool] = []
    var anyCut = false
    var apexId = -1
    var sets: [ZoneSetInfo] = []
    var records: [UInt32] = []
    /// Owner -> (first set, set count).
    var nodeSets: [(UInt32, UInt16)] = []
    var soaSet = -1
    var scratch: [UInt32] = []
    var emittedTypes: [UInt16] = []

    init(acc: ZoneAccumulator, file: String) {
        self.acc = acc
        self.file = file
        originText = Name.text(acc.origin)
        diags = acc.rejected
        owners = acc.names.count
    }

    mutating func run(bindings: [NameBinding]) -> (zone: Zone?, diagnostics: [Diagnostic]) {
        groupByOwner()
        acc.recOwner = []
        for o in 0..<owners { groupByType(o) }
        apexId = acc.names.find(acc.origin) ?? -1
        checkApex()
        markCuts()
        sets.reserveCapacity(acc.count)
        records.reserveCapacity(acc.count)
        nodeSets.reserveCapacity(owners)
        for o in 0..<owners { checkAndEmit(o) }
        order = []
        ownerStart = []
        acc.recType = []
        acc.recTTL = []
        let pools = bind(bindings)
        if diags.contains(where: { $0.severity == .error }) { return (nil, diags) }
        addEmptyNonTerminals()
        let zone = finish(pools: pools)
        if let zone { checkDanglingTargets(zone) }
        return (zone, diags)
    }

    /// Counting sort of the records by owner number; records keep file order within an owner.
    mutating func groupByOwner() {
        var start = [UInt32](repeating: 0, count: owners + 1)
        for r in 0..<acc.count { start[Int(acc.recOwner[r]) + 1] += 1 }
        for i in 0..<owners { start[i + 1] += start[i] }
        var next = start
        order = [UInt32](repeating: 0, count: acc.count)
        for r in 0..<acc.count {
            let o = Int(acc.recOwner[r])
            order[Int(next[o])] = UInt32(r)
            next[o] += 1
        }
        ownerStart = start
    }

    /// Puts owner `o`'s records in runs of one type each, types in first-seen order.
    mutating func groupByType(_ o: Int) {
        let lo = Int(ownerStart[o]), hi = Int(ownerStart[o + 1])
        guard hi - lo > 1 else { return }
        scratch.removeAll(keepingCapacity: true)
        emittedTypes.removeAll(keepingCapacity: true)
        for i in lo..<hi { scratch.append(order[i]) }
        var out = lo
        if scratch.count > 32, Set(scratch.map { acc.recType[Int($0)] }).count > 32 {
            // Many types at one name: a stable sort by first position keeps this linear-ish.
            var first: [UInt16: Int] = [:]
            for (i, r) in scratch.enumerated() where first[acc.recType[Int(r)]] == nil { first[acc.recType[Int(r)]] = i }
            let sorted = scratch.enumerated().sorted { (first[acc.recType[Int($0.element)]] ?? 0, $0.offset) < (first[acc.recType[Int($1.element)]] ?? 0, $1.offset) }
            for (_, r) in sorted { order[out] = r; out += 1 }
            return
        }
        for r in scratch {
            let t = acc.recType[Int(r)]
            if emittedTypes.contains(t) { continue }
            emittedTypes.append(t)
            for s in scratch where acc.recType[Int(s)] == t {
                order[out] = s
                out += 1
            }
        }
    }

    /// The runs of one type in owner `o`'s records: (type, range in `order`).
    func typeRuns(_ o: Int) -> [(type: UInt16, range: Range<Int>)] {
        var runs: [(type: UInt16, range: Range<Int>)] = []
        var i = Int(ownerStart[o])
        let hi = Int(ownerStart[o + 1])
        while i < hi {
            let t = acc.recType[Int(order[i])]
            var j = i + 1
            while j < hi && acc.recType[Int(order[j])] == t { j += 1 }
            runs.append((t, i..<j))
            i = j
        }
        return runs
    }

    func record(_ i: Int) -> Int { Int(order[i]) }

    mutating func checkApex() {
        let runs = apexId >= 0 ? typeRuns(apexId) : []
        let firstPlace = acc.count > 0 ? acc.place(0) : (file, 1)
        if let soa = runs.first(where: { $0.type == RRType.soa }) {
            if soa.range.count > 1 { diags.append(acc.diagnostic(record(soa.range.lowerBound + 1), "more than one SOA record at the apex")) }
        } else {
            diags.append(Diagnostic(file: firstPlace.file, line: firstPlace.line, "no SOA record at the apex \(originText)"))
        }
        if !runs.contains(where: { $0.type == RRType.ns }) {
            diags.append(Diagnostic(file: firstPlace.file, line: firstPlace.line, "no NS records at the apex \(originText)"))
        }
        if let ds = runs.first(where: { $0.type == RRType.ds }) {
            diags.append(acc.diagnostic(record(ds.range.lowerBound), "DS at the apex belongs in the parent zone"))
        }
    }

    /// Zone cuts: NS below the apex.
    mutating func markCuts() {
        isCut = [Bool](repeating: false, count: owners)
        for o in 0..<owners where o != apexId && typeRuns(o).contains(where: { $0.type == RRType.ns }) {
            isCut[o] = true
            anyCut = true
        }
    }

    /// Owner `o`'s own checks, then its RRsets into `sets` and `records`.
    mutating func checkAndEmit(_ o: Int) {
        let runs = typeRuns(o)
        let acc = self.acc
        let here = { Name.text(acc.ownerName(o)) }
        if o != apexId, let soa = runs.first(where: { $0.type == RRType.soa }) {
            diags.append(acc.diagnostic(record(soa.range.lowerBound), "SOA record at \(here()), not at the apex"))
        }
        if let cname = runs.first(where: { $0.type == RRType.cname }) {
            if cname.range.count > 1 { diags.append(acc.diagnostic(record(cname.range.lowerBound + 1), "more than one CNAME at \(here())")) }
            for run in runs where run.type != RRType.cname && run.type != RRType.rrsig && run.type != RRType.nsec {
                diags.append(acc.diagnostic(record(run.range.lowerBound), "\(RRType.name(run.type)) beside a CNAME at \(here()) (a CNAME must be alone at its name)"))
            }
        }
        if anyCut { checkGlue(o, runs) }
        checkTargets(runs)
        nodeSets.append((UInt32(sets.count), UInt16(clamping: runs.count)))
        for run in runs { emit(run, owner: o) }
    }

    /// The classic missing final dot: `www CNAME web.gslb.example.com` is
    /// `web.gslb.example.com.gslb.example.com.`, legal and almost never meant. A target that
    /// ends in the origin twice is a warning, as named-checkzone and kzonecheck users expect
    /// (issue 18, finding 9).
    mutating func checkTargets(_ runs: [(type: UInt16, range: Range<Int>)]) {
        guard acc.origin.count > 1 else { return }
        let doubled = Array(acc.origin.dropLast()) + acc.origin
        for run in runs {
            let at: Int
            switch run.type {
            case RRType.cname, RRType.ns, RRType.dname, RRType.ptr: at = 0
            case RRType.mx: at = 2
            case RRType.srv: at = 6
            default: continue
            }
            for i in run.range {
                let r = record(i)
                let target = acc.withRData(r) { d in d.count > at ? Name.lowercased(Array(d[at...])) : [] }
                guard Self.endsWith(target, doubled) else { continue }
                diags.append(acc.diagnostic(r, severity: .warning,
                    "\(RRType.name(run.type)) target \(Name.text(target)) repeats the origin \(Name.text(acc.origin)): is the final dot missing?"))
                break
            }
        }
    }

    /// Whether wire name `name` ends, at a label boundary, with the wire name `suffix`.
    static func endsWith(_ name: [UInt8], _ suffix: [UInt8]) -> Bool {
        var i = 0
        while i < name.count {
            if name.count - i == suffix.count { return name[i...].elementsEqual(suffix) }
            if name.count - i < suffix.count || name[i] == 0 { return false }
            i += Int(name[i]) + 1
        }
        return false
    }

    /// Below (or at) a zone cut only glue may appear.
    mutating func checkGlue(_ o: Int, _ runs: [(type: UInt16, range: Range<Int>)]) {
        var ancestor = acc.names.key(o)
        var atCut = true
        while ancestor != acc.origin && ancestor.count > 1 {
            if let a = acc.names.find(ancestor), isCut[a] {
                let allowed: Set<UInt16> = atCut ? [RRType.ns, RRType.ds, RRType.a, RRType.aaaa, RRType.rrsig, RRType.nsec] : [RRType.a, RRType.aaaa]
                for run in runs where !allowed.contains(run.type) {
                    diags.append(acc.diagnostic(record(run.range.lowerBound), "\(RRType.name(run.type)) at \(Name.text(acc.ownerName(o))) is \(atCut ? "at" : "below") the delegation to \(Name.text(acc.ownerName(a))) and is not glue"))
                }
                if !atCut { break }
            }
            ancestor = Array(ancestor[(Int(ancestor[0]) + 1)...])
            atCut = false
        }
    }

    /// One RRset: duplicates dropped (RFC 2181 5), the lowest TTL, a warning for differing TTLs.
    mutating func emit(_ run: (type: UInt16, range: Range<Int>), owner o: Int) {
        let firstRecord = records.count
        let first = record(run.range.lowerBound)
        var ttl = acc.recTTL[first]
        var warned = false
        var seen: Set<NameKey>? = run.range.count > 64 ? [] : nil
        for i in run.range {
            let r = record(i)
            if acc.recTTL[r] != acc.recTTL[first] && !warned {
                warned = true
                diags.append(acc.diagnostic(r, severity: .warning,
                    "TTL \(acc.recTTL[r]) differs from \(acc.recTTL[first]) in the \(RRType.name(run.type)) set of \(Name.text(acc.ownerName(o))); the lowest is used (RFC 2181 5.2)"))
            }
            ttl = min(ttl, acc.recTTL[r])
            if seen != nil {
                let key = NameKey(acc.withRData(r) { Canonical.rdata(type: run.type, $0) })
                if seen?.insert(key).inserted == true { records.append(acc.recData[r]) }
            } else if !isDuplicate(r, type: run.type, since: firstRecord) {
                records.append(acc.recData[r])
            }
        }
        if run.type == RRType.soa && o == apexId { soaSet = sets.count }
        sets.append(ZoneSetInfo(ttl: ttl, firstRecord: UInt32(firstRecord), count: UInt32(records.count - firstRecord),
                                type: run.type))
    }

    /// Whether record `r` repeats one already kept in this set (a linear scan: sets of more
    /// than 64 records use a hash set instead).
    func isDuplicate(_ r: Int, type: UInt16, since firstRecord: Int) -> Bool {
        let kept = firstRecord..<records.count
        return acc.data.withUnsafeBytes { a in
            func rdata(_ at: UInt32) -> UnsafeRawBufferPointer {
                let i = Int(at)
                return UnsafeRawBufferPointer(rebasing: a[i + 2..<i + 2 + (Int(a[i]) << 8 | Int(a[i + 1]))])
            }
            let mine = rdata(acc.recData[r])
            let names = RDataLayout.of(type)?.canonicalLowercase == true
            return kept.contains { k in
                let other = rdata(records[k])
                guard other.count == mine.count else { return false }
                return names ? Canonical.sameRData(type: type, other, mine) : other.elementsEqual(mine)
            }
        }
    }

    /// Pool bindings: the pool owns the name's addresses (or, for CNAME pools, the whole name).
    /// Returns node -> pool; a bound name without records becomes a node.
    mutating func bind(_ bindings: [NameBinding]) -> [Int: Int] {
        var poolOf: [Int: Int] = [:]
        for b in bindings {
            let key = Name.lowercased(b.name)
            let here = Name.text(b.name)
            func bindError(_ m: String) { diags.append(Diagnostic(file: b.file, line: b.line, m)) }
            var ancestor = key
            var belowCut = false
            while ancestor != acc.origin && ancestor.count > 1 {
                if let a = acc.names.find(ancestor), a < owners, isCut[a] { belowCut = true }
                ancestor = Array(ancestor[(Int(ancestor[0]) + 1)...])
            }
            if belowCut {
                bindError("\(here) is at or below a delegation in \(originText): it cannot be bound to a pool")
                continue
            }
            if key == acc.origin && b.answersCNAME {
                bindError("\(here) is the zone apex: a CNAME pool cannot answer there")
                continue
            }
            if let o = acc.names.find(key), o < owners {
                let runs = typeRunsOfSets(o)
                let clashing = b.answersCNAME ? runs : runs.filter { $0.type == RRType.a || $0.type == RRType.aaaa || $0.type == RRType.cname }
                for run in clashing {
                    let (f, l) = run.place
                    bindError("\(here) is bound to a pool, but \(lastPathComponent(f)):\(l) has a static \(RRType.name(run.type)) record there")
                }
                if !clashing.isEmpty { continue }
            }
            guard let id = key.withUnsafeBytes({ acc.names.intern($0) }) else { continue }
            if id >= owners, acc.ownerCase[id] == nil, key != b.name { acc.ownerCase[id] = b.name }
            poolOf[id] = b.pool
        }
        return poolOf
    }

    /// Owner `o`'s sets after emission, each with where its first record was written.
    func typeRunsOfSets(_ o: Int) -> [(type: UInt16, place: (String, Int))] {
        guard o < nodeSets.count else { return [] }
        let (first, count) = nodeSets[o]
        return (Int(first)..<Int(first) + Int(count)).map { s in
            let info = sets[s]
            let rec = firstRecordNumber(ofSet: s)
            return (info.type, rec.map(acc.place) ?? (file, 0))
        }
    }

    /// The accumulator's record number of set `s`'s first record.
    func firstRecordNumber(ofSet s: Int) -> Int? {
        let at = records[Int(sets[s].firstRecord)]
        return acc.recData.firstIndex(of: at)
    }

    func lastPathComponent(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }

    /// Empty non-terminals between each name and the apex (RFC 8020).
    mutating func addEmptyNonTerminals() {
        var id = 0
        while id < acc.names.count {
            var key = acc.names.key(id)
            while key != acc.origin && key.count > 1 {
                key = Array(key[(Int(key[0]) + 1)...])
                if acc.names.find(key) != nil { break }
                _ = key.withUnsafeBytes { acc.names.intern($0) }
            }
            id += 1
        }
    }

    /// The zone's arrays; the accumulator's RDATA arena becomes the zone's as it is.
    mutating func finish(pools: [Int: Int]) -> Zone? {
        let count = acc.names.count
        var wildcard = [Int32](repeating: -1, count: count)
        for id in 0..<count {
            acc.names.withKey(id) { k in
                guard k.count > 2, k[0] == 1, k[1] == UInt8(ascii: "*") else { return }
                if let parent = acc.names.find(UnsafeRawBufferPointer(rebasing: k[2...])) { wildcard[parent] = Int32(id) }
            }
        }
        var display: [UInt8] = []
        var nodes: [ZoneNodeInfo] = []
        nodes.reserveCapacity(count)
        for id in 0..<count {
            var d: UInt32 = 0
            if let name = acc.ownerCase[id] {
                display.append(UInt8(name.count))
                d = UInt32(truncatingIfNeeded: display.count)
                display += name
            }
            let (first, n) = id < nodeSets.count ? nodeSets[id] : (UInt32(sets.count), 0)
            nodes.append(ZoneNodeInfo(firstSet: first, setCount: n, isDelegation: id < owners && isCut[id],
                                      wildcardChild: wildcard[id], pool: Int32(pools[id] ?? -1), display: d))
        }
        guard apexId >= 0, soaSet >= 0 else { return nil }
        let data = acc.data
        acc.data = []
        return Zone(origin: acc.origin, file: file, table: NameTable(acc.names), nodes: nodes, sets: sets, records: records,
                    rdata: data, displayNames: display, apex: apexId, soaSet: soaSet)
    }
}

/// A wire name (or any octets) as a dictionary key, hashed in one call over its bytes:
/// `[UInt8]`'s own `Hashable` feeds the hasher one octet at a time.
struct NameKey: Hashable {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    func hash(into hasher: inout Hasher) { bytes.withUnsafeBytes { hasher.combine(bytes: $0) } }
    static func == (a: NameKey, b: NameKey) -> Bool { a.bytes == b.bytes }
}
