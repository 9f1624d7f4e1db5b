import Health
import DNSWire
import GeoTopology
import PoolConfig

/// Receives the reasons behind a decision. The query path uses `NoRecording`, which the
/// compiler removes; `meridian explain` uses `TextRecording`.
public protocol DecisionRecorder {
    /// Whether notes are kept: work done only to produce notes is skipped when not.
    static var isRecording: Bool { get }
    mutating func note(_ text: @autoclosure () -> String)
}

public struct NoRecording: DecisionRecorder {
    /// One byte of storage: a value of an empty type has no address of its own (every one
    /// shares a fixed one), so ThreadSanitizer saw every query's `inout` recorder as the same
    /// variable written from several threads. The optimiser still removes it.
    private var unused: UInt8 = 0
    public init() {}
    public static var isRecording: Bool { false }
    @inline(__always) public mutating func note(_ text: @autoclosure () -> String) {}
}

public struct TextRecording: DecisionRecorder {
    public static var isRecording: Bool { true }
    public var lines: [String] = []
    public init() {}
    public mutating func note(_ text: @autoclosure () -> String) { lines.append(text()) }
}

/// What a pool answered.
public enum PoolAnswer: Sendable, Equatable {
    /// This many addresses of the query's family, their RDATA back to back in
    /// `MessageBuffer.answerRData` (4 or 16 octets each), in answer order. The caller writes
    /// them as the RRset (and a signer sees the set before it is written).
    case addresses(Int)
    /// No records for this type: NOERROR with the SOA.
    case nodata
    /// A CNAME to this member's target is to be written (pool, member).
    case cname(pool: Int, member: Int)
}

/// Which way a pool answered, for the answers-by-pool-and-site metric.
public enum AnswerRoute: UInt8, Sendable, Equatable, CaseIterable {
    /// From one site (multi-site order or active-active draw).
    case site
    /// Direct-to-node: healthy nodes across sites.
    case nodes
    /// Nothing usable; `when_all_down: fail-open` answered every member.
    case failOpen
    /// Nothing usable; NODATA by policy (or too many fallbacks).
    case allDownNodata
    /// Nothing usable; the pool's static fallback addresses.
    case staticAddresses

    public var label: String {
        switch self {
        case .site: return "site"
        case .nodes: return "nodes"
        case .failOpen: return "all-down-fail-open"
        case .allDownNodata: return "all-down-nodata"
        case .staticAddresses: return "all-down-static"
        }
    }
}

/// A decision: the answer and the ECS scope prefix it depends on (RFC 7871 7.2.1), and where
/// it came from: the pool that answered (after any `fallback` hops), its site (-1 for none),
/// and the route.
public struct SelectionOutcome: Sendable, Equatable {
    public var answer: PoolAnswer
    public var scope: Int
    public var pool: Int = -1
    public var site: Int = -1
    public var route: AnswerRoute = .site
    /// The bound pool had nothing usable and handed the query to its fallback pool.
    public var fellBack = false
}

/// Chooses a pool's answer for one query: a pure function of (query type, client address,
/// configuration, health) plus, for weighted shuffles, the caller's random state. It hands back
/// what it chose (addresses in the buffer's answer list, or a CNAME member), never records:
/// writing them is the answer path's, with DNSWire.
public enum Selector {
    /// The most `when_all_down: fallback` hops followed.
    static let maxFallbacks = 4

    /// Chooses the answer to `qtype` (A or AAAA) from pool `pool` for `client`.
    public static func answer(pools: PoolsRuntime, pool: Int, qtype: UInt16, client: IPAddress, buffer: MessageBuffer) -> SelectionOutcome {
        var rec = NoRecording()
        return select(pools: pools, pool: pool, qtype: qtype, client: client, buffer: buffer, recorder: &rec, depth: 0)
    }

    /// The same decision with its reasons, for `meridian explain`.
    public static func explain(
        pools: PoolsRuntime, pool: Int, qtype: UInt16, client: IPAddress, buffer: MessageBuffer
    ) -> (SelectionOutcome, [String]) {
        var rec = TextRecording()
        let o = select(pools: pools, pool: pool, qtype: qtype, client: client, buffer: buffer, recorder: &rec, depth: 0)
        return (o, rec.lines)
    }

    static func select<R: DecisionRecorder>(
        pools: PoolsRuntime, pool index: Int, qtype: UInt16, client: IPAddress,
        buffer: MessageBuffer, recorder rec: inout R, depth: Int
    ) -> SelectionOutcome {
        let rt = pools.runtimes[index]
        let plan = rt.plan
        let shape = plan.shape
        let fam = familyIndex(qtype)
        rec.note("pool \(plan.pool.name) (\(shape.mode.rawValue)), TTL \(rt.ttl)\(rt.degraded ? " (degraded: a member is down)" : "")")
        var scope = 0
        var oi = 0
        var tied = 0
        let order: [Int]
        if let lat = rt.latency, let rule = shape.latency {
            let (li, order_) = latencyOrder(lat, rule: rule, plan: plan, pools: pools, client: client, scope: &scope, oi: &oi, recorder: &rec)
            order = order_
            if li >= 0 { tied = lat.tied[li] }
        } else {
            oi = orderIndex(plan: plan, runtime: pools, client: client, scope: &scope, recorder: &rec)
            order = plan.orders[oi]
        }
        rec.note("site order: \(order.map { plan.pool.sites[$0].name }.joined(separator: ", "))")
        // Every site and member, for explain only: never walked on the query path.
        for s in order where R.isRecording {
            let pool = plan.pool
            let site = pool.sites[s]
            rec.note("  site \(site.name)\(site.backup ? " (backup)" : ""): \(rt.siteUsable[s] ? "usable" : "NOT usable"), \(rt.siteHealthy[s])/\(site.members.count) healthy, min_up \(site.minUp)")
            for m in site.members {
                rec.note("    \(pool.members[m].id): \(rt.status[m]), weight \(pool.members[m].weight) -> \(rt.effectiveWeight[m])")
            }
        }

        switch shape.mode {
        case .multiSite:
            if tied > 1, let s = drawTied(rt, order, tied, rng: &buffer.random) {
                rec.note("answer from site \(plan.pool.sites[s].name): drawn by weight among the \(tied) sites within the latency tolerance")
                let a = site(rt, s, fam: fam, pool: index, client: client, scope: &scope, rng: &buffer.random, buffer: buffer, recorder: &rec)
                return SelectionOutcome(answer: a, scope: scope, pool: index, site: s)
            }
            for s in order where rt.siteUsable[s] {
                rec.note("answer from site \(plan.pool.sites[s].name): the first usable site in the order")
                let a = site(rt, s, fam: fam, pool: index, client: client, scope: &scope, rng: &buffer.random, buffer: buffer, recorder: &rec)
                return SelectionOutcome(answer: a, scope: scope, pool: index, site: s)
            }
        case .activeActive:
            let table = rt.activeByOrder[oi]
            if tied > 0 {
                if let s = drawTied(rt, order, tied, rng: &buffer.random) ?? order.first(where: { rt.siteUsable[$0] }) {
                    rec.note("answer from site \(plan.pool.sites[s].name): by latency (\(tied) site(s) within the tolerance share by weight)")
                    let a = site(rt, s, fam: fam, pool: index, client: client, scope: &scope, rng: &buffer.random, buffer: buffer, recorder: &rec)
                    return SelectionOutcome(answer: a, scope: scope, pool: index, site: s)
                }
            } else if !table.isEmpty {
                let s = Int(table.draw(&buffer.random))
                rec.note("answer from site \(plan.pool.sites[s].name): weighted draw over \(table.items.map { plan.pool.sites[Int($0)].name }.joined(separator: ", "))")
                let a = site(rt, s, fam: fam, pool: index, client: client, scope: &scope, rng: &buffer.random, buffer: buffer, recorder: &rec)
                return SelectionOutcome(answer: a, scope: scope, pool: index, site: s)
            }
        case .direct:
            var key: UInt64 = 0
            if shape.method == .consistentHash {
                let prefix = client.family == .v4 ? shape.hashPrefixV4 : shape.hashPrefixV6
                key = subnetKey(client.truncated(to: prefix).bytes, family: fam)
                scope = max(scope, prefix)
                rec.note("consistent hash of \(client.truncated(to: prefix))/\(prefix)")
            }
            var count = 0
            let picks = buffer.picks
            if shape.siteAffinity {
                for s in order where count < shape.maxAnswers {
                    let before = count
                    take(rt.pickBySite[fam][s], method: shape.method, key: key, max: shape.maxAnswers, picks: picks, count: &count, rng: &buffer.random)
                    if count > before { rec.note("took \(count - before) from site \(plan.pool.sites[s].name) (site affinity)") }
                }
            } else {
                take(rt.pickAll[fam], method: shape.method, key: key, max: shape.maxAnswers, picks: picks, count: &count, rng: &buffer.random)
            }
            if count > 0 {
                rec.note("answer \(count) of \(rt.pickAll[fam].alias.items.count) answerable node(s) by \(shape.method.rawValue)")
                var n = 0
                for i in 0..<count {
                    n = rt.memberRData[Int(picks[i])].withUnsafeBytes { put($0, size: fam == 0 ? 4 : 16, after: n, buffer: buffer) }
                }
                return SelectionOutcome(answer: .addresses(n), scope: scope, pool: index, route: .nodes)
            }
            if !rt.pickAll[fam].isEmpty || !rt.pickAll[1 - fam].isEmpty {
                rec.note("no answerable node of this address family: NODATA")
                return SelectionOutcome(answer: .nodata, scope: scope, pool: index, route: .nodes)
            }
        }

        // Nothing usable.
        switch shape.allDown {
        case .failOpen:
            rec.note("nothing usable: fail-open, answering every member")
            if shape.isCNAME, let s = order.first, let m = plan.pool.sites[s].members.first {
                return SelectionOutcome(answer: .cname(pool: index, member: m), scope: scope, pool: index, route: .failOpen)
            }
            return SelectionOutcome(answer: list(rt.allRData[fam], fam: fam, buffer: buffer), scope: scope, pool: index, route: .failOpen)
        case .nodata:
            rec.note("nothing usable: NODATA by policy")
            return SelectionOutcome(answer: .nodata, scope: scope, pool: index, route: .allDownNodata)
        case .addresses:
            rec.note("nothing usable: static fallback addresses")
            return SelectionOutcome(answer: list(rt.staticRData[fam], fam: fam, buffer: buffer), scope: scope, pool: index, route: .staticAddresses)
        case .fallbackPool(let next):
            guard depth < maxFallbacks else {
                rec.note("nothing usable and too many fallbacks: NODATA")
                return SelectionOutcome(answer: .nodata, scope: scope, pool: index, route: .allDownNodata)
            }
            rec.note("nothing usable: falling back to pool \(pools.runtimes[next].pool.name)")
            var o = select(pools: pools, pool: next, qtype: qtype, client: client, buffer: buffer, recorder: &rec, depth: depth + 1)
            o.scope = max(o.scope, scope)
            o.fellBack = true
            return o
        }
    }

    /// The latency order for the client's network (index into `lat.orders`, or -1 with the
    /// fallback order). The answer depends on the /24 or /48 either way: `scope` widens to it.
    static func latencyOrder<R: DecisionRecorder>(
        _ lat: LatencyOrders, rule: LatencyRule, plan: PoolPlan, pools: PoolsRuntime, client: IPAddress, scope: inout Int, oi: inout Int,
        recorder rec: inout R
    ) -> (Int, [Int]) {
        scope = max(scope, client.family == .v4 ? LatencyPrefix.v4Length : LatencyPrefix.v6Length)
        let key = LatencyIndex.key(of: client)
        let row = pools.latencyIndex.row(key)
        let li = row >= 0 ? Int(lat.byRow[row]) : -1
        if R.isRecording { noteLatency(rule: rule, plan: plan, pools: pools, key: key, used: li >= 0, recorder: &rec) }
        if li >= 0 { return (li, lat.orders[li]) }
        oi = rule.fallback == .geo ? orderIndex(plan: plan, runtime: pools, client: client, scope: &scope, recorder: &rec) : 0
        return (-1, plan.orders[oi])
    }

    /// Explain's view of the latency table entries for the client's network.
    static func noteLatency<R: DecisionRecorder>(rule: LatencyRule, plan: PoolPlan, pools: PoolsRuntime, key: UInt64, used: Bool, recorder rec: inout R) {
        let prefix = LatencyPrefix(v6: key >> 63 == 1, bits: key)
        let cells = pools.health.latency.cells[prefix] ?? [:]
        let listed = plan.pool.sites.compactMap { site in
            cells[site.name].map { "\(site.name) \(String(format: "%.1f", $0.rttMs)) ms (\(Int($0.samples)) samples, \(Int($0.observers)) observer(s))" }
        }
        rec.note("latency from \(prefix): \(listed.isEmpty ? "no measurements" : listed.joined(separator: ", ")); tolerance \(rule.toleranceMs) ms, min_samples \(rule.minSamples)")
        if !used { rec.note("no site has \(rule.minSamples) samples from \(prefix): fallback \(rule.fallback.rawValue)") }
    }

    /// A draw by site share among the usable of the first `tied` sites of `order`, or nil.
    static func drawTied(_ rt: PoolRuntime, _ order: [Int], _ tied: Int, rng: inout UInt64) -> Int? {
        var total = 0.0
        for i in 0..<min(tied, order.count) { total += rt.siteShare[order[i]] }
        guard total > 0 else { return nil }
        var r = Double(Random.next(&rng) >> 11) * 0x1.0p-53 * total
        for i in 0..<min(tied, order.count) {
            let w = rt.siteShare[order[i]]
            guard w > 0 else { continue }
            if r < w { return order[i] }
            r -= w
        }
        return order[0..<min(tied, order.count)].last { rt.siteShare[$0] > 0 }
    }

    /// Topology first, then GeoIP, then the default order; widens `scope` to the bits used.
    static func orderIndex<R: DecisionRecorder>(plan: PoolPlan, runtime: PoolsRuntime, client: IPAddress, scope: inout Int, recorder rec: inout R) -> Int {
        if plan.shape.usesTopology {
            let m = runtime.topology.match(client)
            scope = max(scope, m.scope)
            if m.value >= 0 {
                let o = plan.regionOrder[m.value]
                rec.note("client \(client) is in topology region \(runtime.pools.regions[m.value].name) (/\(m.prefix))\(o >= 0 ? ": order rule topology.\(runtime.pools.regions[m.value].name)" : ", which has no order rule")")
                if o >= 0 { return Int(o) }
            } else {
                rec.note("client \(client) is in no topology region")
            }
        }
        if plan.shape.usesGeo, let geo = runtime.geo {
            let m = geo.match(client)
            scope = max(scope, m.prefix)
            if m.info >= 0 {
                let o = plan.geoOrder[m.info]
                rec.note("GeoIP: \(geo.infos[m.info]) (network /\(m.prefix)): \(plan.geoRule(for: geo.infos[m.info]))")
                if o >= 0 { return Int(o) }
            } else {
                rec.note("GeoIP: no data for \(client)")
            }
        }
        rec.note("default order")
        return 0
    }

    /// Answers one site: its answerable members of the family, the first one drawn by
    /// effective weight (per answer, or per client subnet for `sticky`) and the rest after it
    /// in turn; or a CNAME to its first member.
    static func site<R: DecisionRecorder>(
        _ rt: PoolRuntime, _ s: Int, fam: Int, pool: Int, client: IPAddress, scope: inout Int, rng: inout UInt64,
        buffer: MessageBuffer, recorder rec: inout R
    ) -> PoolAnswer {
        let shape = rt.plan.shape
        if shape.isCNAME { return .cname(pool: pool, member: rt.siteFirstMember[s]) }
        let table = rt.siteOrder[fam][s]
        let items = table.items
        guard items.count > 1, shape.addressOrder != .fixed else {
            if R.isRecording && items.count > 1 { rec.note("addresses in pool-file order (address_order: fixed)") }
            return list(rt.siteRData[fam][s], fam: fam, buffer: buffer)
        }
        var first: Int32
        if shape.addressOrder == .sticky {
            let prefix = client.family == .v4 ? shape.hashPrefixV4 : shape.hashPrefixV6
            var key = subnetKey(client.truncated(to: prefix).bytes, family: fam) | 1
            first = table.draw(&key)
            scope = max(scope, prefix)
        } else {
            first = table.draw(&rng)
        }
        if R.isRecording {
            let total = items.reduce(0.0) { $0 + rt.effectiveWeight[Int($1)] }
            let shares = items.map { "\(rt.pool.members[Int($0)].address.map(\.description) ?? "?") \(String(format: "%.1f", 100 * rt.effectiveWeight[Int($0)] / max(total, 1e-9)))%" }
            rec.note("first-address shares by effective weight: \(shares.joined(separator: ", ")); \(rt.pool.addressOrder == .sticky ? "this subnet's draw" : "this answer's draw") puts \(rt.pool.members[Int(first)].address.map(\.description) ?? "?") first")
        }
        var start = 0
        while start < items.count && items[start] != first { start += 1 }
        var n = 0
        for i in 0..<items.count {
            let m = Int(items[(start + i) % items.count])
            n = rt.memberRData[m].withUnsafeBytes { put($0, size: fam == 0 ? 4 : 16, after: n, buffer: buffer) }
        }
        return .addresses(n)
    }

    /// A precomputed list of addresses (RDATA back to back) as the answer.
    static func list(_ rdata: [UInt8], fam: Int, buffer: MessageBuffer) -> PoolAnswer {
        if rdata.isEmpty { return .nodata }
        return .addresses(rdata.withUnsafeBytes { put($0, size: fam == 0 ? 4 : 16, after: 0, buffer: buffer) })
    }

    /// Appends addresses of `size` octets each to the buffer's answer list after the first
    /// `count`; returns the new count. A list longer than the buffer (more than any message
    /// can hold) is cut at its end.
    @inline(__always)
    static func put(_ rdata: UnsafeRawBufferPointer, size: Int, after count: Int, buffer: MessageBuffer) -> Int {
        let room = buffer.answerRData.count / size - count
        let n = min(rdata.count / size, room)
        guard n > 0, let from = rdata.baseAddress, let to = buffer.answerRData.baseAddress else { return count }
        (to + count * size).copyMemory(from: from, byteCount: n * size)
        return count + n
    }

    /// Adds distinct members from a table to `picks` until `max`.
    @inline(__always)
    static func take(_ t: PickTable, method: SelectionMethod, key: UInt64, max k: Int, picks: UnsafeMutablePointer<Int32>, count: inout Int, rng: inout UInt64) {
        let items = t.alias.items
        guard !items.isEmpty else { return }
        func add(_ m: Int32) {
            for i in 0..<count where picks[i] == m { return }
            picks[count] = m
            count += 1
        }
        let target = min(k, count + items.count)
        if method == .consistentHash, let ring = t.ring, !ring.isEmpty {
            var i = ring.start(for: key)
            var steps = 0
            while count < target && steps < ring.pointCount {
                add(ring.item(at: i))
                i += 1
                if i == ring.pointCount { i = 0 }
                steps += 1
            }
        } else {
            var attempts = 0
            while count < target && attempts < 4 * k {
                add(t.alias.draw(&rng))
                attempts += 1
            }
            var i = 0
            while count < target && i < items.count {
                add(items[i])
                i += 1
            }
        }
    }
}
