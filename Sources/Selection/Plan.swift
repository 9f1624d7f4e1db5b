import GeoTopology
import PoolConfig

/// The health-independent part of a pool's selection: every distinct site order, and which
/// order each topology region and each GeoIP location gets. Built once per configuration.
public final class PoolPlan: Sendable {
    public let pool: Pool
    /// The settings the query path reads, without the pool's arrays and strings.
    public let shape: PoolShape
    /// Complete site orders (listed sites, then the other primary sites, then backups);
    /// `orders[0]` is the default order.
    public let orders: [[Int]]
    /// How many leading sites of each order were listed by the rule (active-active prefers them).
    public let listedCount: [Int]
    /// Region index -> order index, or -1.
    public let regionOrder: [Int32]
    /// GeoIP location index -> order index, or -1.
    public let geoOrder: [Int32]

    public init(pool: Pool, regions: [Region], geo: GeoDatabase?) {
        self.pool = pool
        shape = PoolShape(pool)
        var orders: [[Int]] = []
        var listed: [Int] = []
        var index: [[Int]: Int] = [:]
        let primaries = pool.order.defaultOrder + pool.sites.indices.filter { !pool.sites[$0].backup && !pool.order.defaultOrder.contains($0) }
        let backups = pool.sites.indices.filter { pool.sites[$0].backup }
        func intern(_ rule: [Int]) -> Int32 {
            var full = rule
            for s in primaries where !full.contains(s) { full.append(s) }
            for s in backups where !full.contains(s) { full.append(s) }
            if let i = index[full] { return Int32(i) }
            index[full] = orders.count
            orders.append(full)
            listed.append(rule.count)
            return Int32(orders.count - 1)
        }
        _ = intern(pool.order.defaultOrder)
        regionOrder = regions.indices.map { r in pool.order.topology[r].map { intern($0) } ?? -1 }
        var geoOrder: [Int32] = []
        if let geo, pool.order.usesGeo {
            for info in geo.infos {
                if let o = pool.order.subdivisions["\(info.country)-\(info.subdivision)"] {
                    geoOrder.append(intern(o))
                } else if let o = pool.order.countries[info.country] {
                    geoOrder.append(intern(o))
                } else if let o = pool.order.continents[info.continent] {
                    geoOrder.append(intern(o))
                } else if pool.order.nearest, let la = info.latitude, let lo = info.longitude {
                    let located = pool.sites.indices.filter { !pool.sites[$0].backup && pool.sites[$0].latitude != nil }
                    let sorted = located.sorted {
                        greatCircleKm(la, lo, pool.sites[$0].latitude!, pool.sites[$0].longitude!)
                            < greatCircleKm(la, lo, pool.sites[$1].latitude!, pool.sites[$1].longitude!)
                    }
                    geoOrder.append(intern(sorted))
                } else {
                    geoOrder.append(-1)
                }
            }
        }
        self.geoOrder = geoOrder
        self.orders = orders
        listedCount = listed
    }

    /// Which GeoIP rule a location matches, for explain.
    public func geoRule(for info: GeoInfo) -> String {
        if pool.order.subdivisions["\(info.country)-\(info.subdivision)"] != nil { return "order rule subdivision:\(info.country)-\(info.subdivision)" }
        if pool.order.countries[info.country] != nil { return "order rule country:\(info.country)" }
        if pool.order.continents[info.continent] != nil { return "order rule continent:\(info.continent)" }
        if pool.order.nearest, info.latitude != nil { return "nearest sites first" }
        return "no rule: default order"
    }

    /// Whether the answer can depend on where the client is.
    public var dependsOnClient: Bool {
        pool.order.usesTopology || pool.order.usesGeo || pool.order.latency != nil || (pool.mode == .direct && pool.method == .consistentHash)
    }
}

/// A pool's scalar settings, copied out of `Pool` once per configuration. Reading `Pool`
/// itself on the query path copies a struct of arrays, strings and dictionaries, one reference
/// count up and down for each; these fields copy nothing.
public struct PoolShape: Sendable {
    public let mode: PoolMode
    public let method: SelectionMethod
    public let hashPrefixV4: Int
    public let hashPrefixV6: Int
    public let siteAffinity: Bool
    public let maxAnswers: Int
    public let isCNAME: Bool
    public let addressOrder: AddressOrder
    public let usesTopology: Bool
    public let usesGeo: Bool
    public let allDown: AllDownPolicy
    public let latency: LatencyRule?

    init(_ pool: Pool) {
        latency = pool.order.latency
        mode = pool.mode
        method = pool.method
        hashPrefixV4 = pool.hashPrefixV4
        hashPrefixV6 = pool.hashPrefixV6
        siteAffinity = pool.siteAffinity
        maxAnswers = pool.maxAnswers
        isCNAME = pool.isCNAME
        addressOrder = pool.addressOrder
        usesTopology = pool.order.usesTopology
        usesGeo = pool.order.usesGeo
        allDown = pool.allDown
    }
}
