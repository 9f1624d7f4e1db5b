import Health
import DNSWire
import GeoTopology
import PoolConfig

/// Address family index used by the tables: 0 = IPv4 (A), 1 = IPv6 (AAAA).
@inline(__always)
func familyIndex(_ qtype: UInt16) -> Int { qtype == RRType.aaaa ? 1 : 0 }

/// The members one pick can choose from in one family, with their draw tables.
public struct PickTable: Sendable {
    public let alias: AliasTable
    public let ring: HashRing?
    public var isEmpty: Bool { alias.isEmpty }
}

/// A pool combined with one health snapshot: who is answerable, which sites are usable, and
/// every answer pre-encoded. Built when either changes, never on the query path.
public final class PoolRuntime: Sendable {
    public let plan: PoolPlan
    /// The pool's definition. A computed copy of a struct of arrays: fine for explain, status
    /// and tables, not for the query path (which reads `plan.shape`).
    public var pool: Pool { plan.pool }
    public let status: [MemberStatus]
    /// Static weight x weight factor for answerable (up) members, else 0.
    public let effectiveWeight: [Double]
    /// Members of each site that count as healthy for `min_up` (up or drain).
    public let siteHealthy: [Int]
    public let siteUsable: [Bool]
    /// Any member down.
    public let degraded: Bool
    public let ttl: UInt32
    /// Per member: its address's RDATA (4 or 16 octets, RFC 1035 3.4.1, RFC 3596 2.2), or
    /// empty for CNAME members.
    public let memberRData: [[UInt8]]
    /// [family][site]: the site's answerable members' RDATA back to back.
    public let siteRData: [[[UInt8]]]
    /// [family][site]: the site's answerable members of the family, weighted by effective
    /// weight: draws the first address of an answer.
    public let siteOrder: [[AliasTable]]
    /// [family]: every member's RDATA (fail-open).
    public let allRData: [[UInt8]]
    /// [family]: `when_all_down: addresses` RDATA.
    public let staticRData: [[UInt8]]
    /// [family]: all answerable members (direct mode).
    public let pickAll: [PickTable]
    /// [family][site]: answerable members per site (direct mode with site affinity).
    public let pickBySite: [[PickTable]]
    /// Active-active: per order index, usable sites weighted by weight x healthy share.
    public let activeByOrder: [AliasTable]
    /// Per site, the first answerable member (CNAME pools), or -1.
    public let siteFirstMember: [Int]
    /// Per site, its share of a draw among sites (active-active, and sites tied by latency):
    /// weight x answerable fraction (0 when the site is not usable).
    public let siteShare: [Double]
    /// Site orders by latency from each network of `PoolsRuntime.latencyIndex` (pools with
    /// `order: latency`).
    public let latency: LatencyOrders?

    /// - Parameter statuses: every member's status by id, dependencies applied
    ///   (`PoolsRuntime.statuses`); nil: from `health` alone.
    public init(plan: PoolPlan, health: HealthSnapshot, statuses: [String: MemberStatus]? = nil, latency: LatencyOrders? = nil) {
        self.plan = plan
        self.latency = latency
        let pool = plan.pool
        let status = pool.members.map { statuses?[$0.id] ?? PoolsRuntime.ownStatus($0.id, pool: pool, health: health) }
        self.status = status
        let weight = pool.members.indices.map { status[$0].state == .up ? pool.members[$0].weight * status[$0].weightFactor : 0 }
        effectiveWeight = weight
        let healthy = pool.sites.map { site in site.members.filter { status[$0].state != .down }.count }
        siteHealthy = healthy
        let answerable = pool.sites.map { site in site.members.filter { weight[$0] > 0 } }
        siteUsable = pool.sites.indices.map { pool.sites[$0].minUp.satisfied(healthy: healthy[$0], total: pool.sites[$0].members.count) && !answerable[$0].isEmpty }
        degraded = status.contains { $0.state == .down }
        let ttl = degraded ? pool.degradedTTL : pool.ttl
        self.ttl = ttl

        func record(_ a: IPAddress) -> [UInt8] { a.octets }
        let records = pool.members.map { $0.address.map(record) ?? [] }
        memberRData = records
        func fam(_ m: Int) -> Int { pool.members[m].address?.family == .v6 ? 1 : 0 }
        siteRData = (0..<2).map { f in answerable.map { $0.filter { fam($0) == f }.flatMap { records[$0] } } }
        siteOrder = (0..<2).map { f in
            answerable.map { members in
                let m = members.filter { fam($0) == f }
                return AliasTable(items: m.map(Int32.init), weights: m.map { weight[$0] })
            }
        }
        allRData = (0..<2).map { f in pool.members.indices.filter { pool.members[$0].address != nil && fam($0) == f }.flatMap { records[$0] } }
        if case .addresses(let list) = pool.allDown {
            staticRData = (0..<2).map { f in list.filter { ($0.family == .v6 ? 1 : 0) == f }.flatMap(record) }
        } else {
            staticRData = [[], []]
        }
        func table(_ members: [Int]) -> PickTable {
            let items = members.map(Int32.init)
            let w = members.map { weight[$0] }
            let ring = pool.method == .consistentHash
                ? HashRing(items: items, ids: members.map { pool.members[$0].id }, weights: w, capacity: pool.members.count) : nil
            return PickTable(alias: AliasTable(items: items, weights: w), ring: ring)
        }
        if pool.mode == .direct {
            pickAll = (0..<2).map { f in table(answerable.flatMap { $0 }.filter { fam($0) == f }) }
            pickBySite = pool.siteAffinity ? (0..<2).map { f in answerable.map { table($0.filter { fam($0) == f }) } } : [[], []]
        } else {
            pickAll = []
            pickBySite = [[], []]
        }
        let usableSites = siteUsable
        let share = pool.sites.indices.map { s in
            usableSites[s] ? pool.sites[s].weight * Double(answerable[s].count) / Double(max(pool.sites[s].members.count, 1)) : 0
        }
        siteShare = share
        if pool.mode == .activeActive {
            let usable = siteUsable
            activeByOrder = plan.orders.indices.map { o in
                let order = plan.orders[o]
                let preferred = order.prefix(plan.listedCount[o]).filter { usable[$0] && !pool.sites[$0].backup }
                let primaries = order.filter { usable[$0] && !pool.sites[$0].backup }
                let candidates = !preferred.isEmpty ? preferred : !primaries.isEmpty ? primaries : order.filter { usable[$0] }
                return AliasTable(
                    items: candidates.map(Int32.init),
                    weights: candidates.map { share[$0] })
            }
        } else {
            activeByOrder = []
        }
        siteFirstMember = answerable.map { $0.first ?? -1 }
    }
}

/// Every pool's runtime, built together for one (configuration, health) pair.
public final class PoolsRuntime: Sendable {
    public let pools: PoolSet
    public let plans: [PoolPlan]
    public let runtimes: [PoolRuntime]
    public let health: HealthSnapshot
    /// `pools.topology` and `pools.geo` as fields of their own: the query path reads them here
    /// rather than copying the `PoolSet` struct (and counting a reference for each of its arrays).
    public let topology: PrefixTrie
    public let geo: GeoDatabase?
    /// The group's latency map, indexed for the query path (empty when no pool orders by latency).
    public let latencyIndex: LatencyIndex

    public init(pools: PoolSet, plans: [PoolPlan], health: HealthSnapshot) {
        self.pools = pools
        let usesLatency = plans.contains { $0.shape.latency != nil }
        let index = usesLatency ? LatencyIndex(health.latency.cells.keys.sorted()) : .empty
        latencyIndex = index
        topology = pools.topology
        geo = pools.geo
        self.plans = plans
        self.health = health
        let statuses = Self.statuses(pools.pools, health: health)
        runtimes = plans.map { plan in
            let orders = plan.shape.latency.map { LatencyOrders(pool: plan.pool, rule: $0, index: index, table: health.latency) }
            return PoolRuntime(plan: plan, health: health, statuses: statuses, latency: orders)
        }
    }

    /// A member's status from its own observations and overrides (its pool's `healthy_if`).
    static func ownStatus(_ id: String, pool: Pool, health: HealthSnapshot) -> MemberStatus {
        health.status(of: id, healthyIf: pool.healthyIf.map { (k: $0, n: pool.checks.count) })
    }

    /// Every member's status, `depends_on` applied: a member whose dependency is down is down,
    /// with the chain as the reason (its own override still wins: an operator's word is final).
    /// The pool files were checked for loops; a depth bound keeps this total anyway.
    public static func statuses(_ pools: [Pool], health: HealthSnapshot) -> [String: MemberStatus] {
        var own: [String: MemberStatus] = [:]
        for p in pools { for m in p.members { own[m.id] = ownStatus(m.id, pool: p, health: health) } }
        let deps = Dependencies.map(pools)
        guard !deps.isEmpty else { return own }
        var done: [String: MemberStatus] = [:]
        func resolve(_ id: String, depth: Int) -> MemberStatus {
            if let s = done[id] { return s }
            var s = own[id] ?? .defaultUp
            if depth < 64, s.state != .down, !health.overrides.contains(where: { $0.matches(id) }) {
                for d in deps[id] ?? [] {
                    let ds = resolve(d, depth: depth + 1)
                    if ds.state == .down {
                        s = MemberStatus(state: .down, weightFactor: s.weightFactor, source: "depends on \(d), which is down (\(ds.source))")
                        break
                    }
                }
            }
            done[id] = s
            return s
        }
        for id in own.keys { _ = resolve(id, depth: 0) }
        return done
    }

    /// Plans for a pool set (health-independent).
    public static func plans(for pools: PoolSet) -> [PoolPlan] {
        pools.pools.map { PoolPlan(pool: $0, regions: pools.regions, geo: pools.geo) }
    }

    /// The same configuration with another health snapshot.
    public func with(health: HealthSnapshot) -> PoolsRuntime {
        PoolsRuntime(pools: pools, plans: plans, health: health)
    }

    public static let empty = PoolsRuntime(pools: .empty, plans: [], health: .allUp)
}
