import DNSWire
import Metrics
import PoolConfig
import QueryEngine
import Selection

/// Counts answers per (transport, rcode, qtype) in plain integers on one event loop and hands
/// the totals to swift-metrics once a second, so the query path touches no shared state.
final class QueryMetrics {
    static let qtypes: [UInt16] = [
        RRType.a, RRType.ns, RRType.cname, RRType.soa, RRType.ptr, RRType.mx, RRType.txt, RRType.aaaa, RRType.srv,
        RRType.naptr, RRType.ds, RRType.caa, RRType.any,
    ]
    static let rcodes: [UInt16] = [RCode.noError, RCode.formErr, RCode.servFail, RCode.nxDomain, RCode.notImp, RCode.refused, RCode.badVers]
    static let otherQtype = qtypes.count
    static let otherRcode = rcodes.count
    static let cells = (qtypes.count + 1) * (rcodes.count + 1)

    let transport: String
    private var counts: [Int]
    private var dropped = 0
    private var truncated = 0
    private var counters: [Int: Counter] = [:]
    private let droppedCounter: Counter
    private let truncatedCounter: Counter
    private let factory: any MetricsFactory

    init(transport: String, factory: any MetricsFactory = MetricsSystem.factory) {
        self.transport = transport
        self.factory = factory
        counts = [Int](repeating: 0, count: QueryMetrics.cells)
        droppedCounter = Counter(label: "meridian_queries_dropped_total", dimensions: [("transport", transport)], factory: factory)
        truncatedCounter = Counter(label: "meridian_responses_truncated_total", dimensions: [("transport", transport)], factory: factory)
        signaturesMadeCounter = Counter(label: "meridian_dnssec_signatures_total", dimensions: [("source", "made")], factory: factory)
        signatureHitsCounter = Counter(label: "meridian_dnssec_signatures_total", dimensions: [("source", "cache")], factory: factory)
        rrlDroppedCounter = Counter(label: "meridian_rrl_responses_total", dimensions: [("action", "dropped")], factory: factory)
        rrlSlippedCounter = Counter(label: "meridian_rrl_responses_total", dimensions: [("action", "slipped")], factory: factory)
        // Every label set exists from the start, at zero (a rate over a series that appears
        // with its first increment misses that increment).
        for i in 0..<QueryMetrics.cells { counters[i] = queryCounter(i) }
    }

    private func queryCounter(_ i: Int) -> Counter {
        let r = i / (QueryMetrics.qtypes.count + 1)
        let q = i % (QueryMetrics.qtypes.count + 1)
        return Counter(
            label: "meridian_queries_total",
            dimensions: [
                ("transport", transport),
                ("rcode", r < QueryMetrics.rcodes.count ? RCode.name(QueryMetrics.rcodes[r]) : "other"),
                ("qtype", q < QueryMetrics.qtypes.count ? RRType.name(QueryMetrics.qtypes[q]) : "other"),
            ], factory: factory)
    }

    @inline(__always)
    static func qtypeIndex(_ t: UInt16) -> Int {
        switch t {
        case RRType.a: return 0
        case RRType.ns: return 1
        case RRType.cname: return 2
        case RRType.soa: return 3
        case RRType.ptr: return 4
        case RRType.mx: return 5
        case RRType.txt: return 6
        case RRType.aaaa: return 7
        case RRType.srv: return 8
        case RRType.naptr: return 9
        case RRType.ds: return 10
        case RRType.caa: return 11
        case RRType.any: return 12
        default: return otherQtype
        }
    }

    @inline(__always)
    static func rcodeIndex(_ r: UInt16) -> Int {
        switch r {
        case 0...5: return Int(r)
        case RCode.badVers: return 6
        default: return otherRcode
        }
    }

    private var rrlDropped = 0
    private var rrlSlipped = 0
    private var signaturesMade = 0
    private var signatureHits = 0
    private let signaturesMadeCounter: Counter
    private let signatureHitsCounter: Counter
    private let rrlDroppedCounter: Counter
    private let rrlSlippedCounter: Counter

    /// A response held back by rate limiting: dropped, or sent truncated (slip).
    @inline(__always)
    func rateLimited(slipped: Bool) {
        if slipped { rrlSlipped += 1 } else { rrlDropped += 1 }
    }

    @inline(__always)
    func record(_ o: QueryOutcome, snapshot: Snapshot) {
        if o.dropped {
            dropped += 1
            return
        }
        if o.truncated { truncated += 1 }
        counts[QueryMetrics.rcodeIndex(o.rcode) * (QueryMetrics.qtypes.count + 1) + QueryMetrics.qtypeIndex(o.qtype)] += 1
        if o.pool.pool >= 0 { recordPool(o.pool, snapshot: snapshot) }
        signaturesMade &+= o.signaturesMade
        signatureHits &+= o.signatureHits
    }

    // MARK: Answers by pool and site

    /// The pool and site names of the snapshot generation being counted, and the strides.
    private var poolGeneration = -1
    private var poolNames: [String] = []
    private var siteNames: [[String]] = []
    private var siteStride = 1
    private var poolCounts: [Int] = []
    private var poolCounters: [String: Counter] = [:]
    private static let routes = AnswerRoute.allCases.count

    @inline(__always)
    private func recordPool(_ p: PoolAnswerSource, snapshot: Snapshot) {
        if snapshot.generation != poolGeneration { relayout(snapshot) }
        let i = ((Int(p.pool) * siteStride + Int(p.site) + 1) * Self.routes + Int(p.route.rawValue)) * 2 + (p.fellBack ? 1 : 0)
        if i >= 0 && i < poolCounts.count { poolCounts[i] += 1 }
    }

    /// A new snapshot: hand over what the old one counted, then size the table for the new.
    private func relayout(_ snapshot: Snapshot) {
        flushPools()
        let pools = snapshot.pools.pools.pools
        poolGeneration = snapshot.generation
        poolNames = pools.map(\.name)
        siteNames = pools.map { $0.sites.map(\.name) }
        siteStride = (siteNames.map(\.count).max() ?? 0) + 1
        poolCounts = [Int](repeating: 0, count: pools.count * siteStride * Self.routes * 2)
        makeExpectedPoolCounters(pools)
    }

    /// The label sets each pool can answer with, made at zero: its sites (or its nodes), its
    /// all-down policy, and the same as a fallback when another pool falls back to it.
    private func makeExpectedPoolCounters(_ pools: [Pool]) {
        var targets = Set<Int>()
        for p in pools { if case .fallbackPool(let next) = p.allDown { targets.insert(next) } }
        for (i, p) in pools.enumerated() {
            var cells: [(String, AnswerRoute)] = p.mode == .direct ? [("-", .nodes)] : p.sites.map { ($0.name, .site) }
            switch p.allDown {
            case .failOpen: cells.append(("-", .failOpen))
            case .nodata: cells.append(("-", .allDownNodata))
            case .addresses: cells.append(("-", .staticAddresses))
            case .fallbackPool: break
            }
            for fellBack in targets.contains(i) ? [false, true] : [false] {
                for (site, route) in cells { _ = poolCounter(pool: p.name, site: site, route: route, fellBack: fellBack) }
            }
        }
    }

    private func poolCounter(pool: String, site: String, route: AnswerRoute, fellBack: Bool) -> Counter {
        let key = "\(pool)\u{0}\(site)\u{0}\(route.label)\u{0}\(fellBack)"
        if let c = poolCounters[key] { return c }
        let counter = Counter(
            label: "meridian_pool_answers_total",
            dimensions: [("pool", pool), ("site", site), ("route", route.label), ("fallback", fellBack ? "yes" : "no")],
            factory: factory)
        poolCounters[key] = counter
        return counter
    }

    private func flushPools() {
        for i in 0..<poolCounts.count where poolCounts[i] > 0 {
            let fellBack = i % 2 == 1
            let route = AnswerRoute.allCases[(i / 2) % Self.routes]
            let siteSlot = (i / 2 / Self.routes) % siteStride
            let pool = i / 2 / Self.routes / siteStride
            guard pool < poolNames.count else { continue }
            let site = siteSlot == 0 ? "-" : (siteSlot - 1 < siteNames[pool].count ? siteNames[pool][siteSlot - 1] : "-")
            poolCounter(pool: poolNames[pool], site: site, route: route, fellBack: fellBack).increment(by: poolCounts[i])
            poolCounts[i] = 0
        }
    }

    /// Hands the counts gathered since the last flush to swift-metrics; with the snapshot in
    /// force, the counters of pools it added are made (at zero) too.
    func flush(snapshot: Snapshot? = nil) {
        if let snapshot, snapshot.generation != poolGeneration { relayout(snapshot) }
        flushPools()
        if rrlDropped > 0 { rrlDroppedCounter.increment(by: rrlDropped); rrlDropped = 0 }
        if rrlSlipped > 0 { rrlSlippedCounter.increment(by: rrlSlipped); rrlSlipped = 0 }
        if signaturesMade > 0 { signaturesMadeCounter.increment(by: signaturesMade); signaturesMade = 0 }
        if signatureHits > 0 { signatureHitsCounter.increment(by: signatureHits); signatureHits = 0 }
        for i in 0..<counts.count where counts[i] > 0 {
            let counter = counters[i] ?? queryCounter(i)
            counters[i] = counter
            counter.increment(by: counts[i])
            counts[i] = 0
        }
        if dropped > 0 {
            droppedCounter.increment(by: dropped)
            dropped = 0
        }
        if truncated > 0 {
            truncatedCounter.increment(by: truncated)
            truncated = 0
        }
    }
}
