/// Where the group's instances are: each observer's region (the cluster file's peer `region`),
/// for verdicts judged by region and probers chosen per region. An instance with no region
/// is a region of its own (named after it), so a group without regions behaves as before.
public struct RegionMap: Sendable, Equatable {
    public var regionOf: [String: String]

    public init(_ regionOf: [String: String] = [:]) { self.regionOf = regionOf }

    public static let none = RegionMap()

    public func region(of observer: String) -> String { regionOf[observer] ?? "instance:\(observer)" }

    public var isEmpty: Bool { regionOf.isEmpty }
}

/// The region-aware verdict (`verdict: {regions: {policy: majority, within: majority}}`), as
/// Route 53 and NS1 judge by regional quorums: each region decides by its own observers with
/// `within`, and the member is down when the regions that say down make `across` of the
/// regions that vote. A region with no fresh observer (none whose observations count now) has
/// no vote, so a region cut off from the group neither takes members down nor keeps them up.
public enum RegionVerdict {
    public struct Tally: Sendable, Equatable {
        public var down: Bool
        /// Regions that say down, and regions that voted.
        public var downRegions: [String]
        public var voting: Int
    }

    public static func tally(observers: [String], down: Set<String>, regions: RegionMap, across: VerdictPolicy, within: VerdictPolicy) -> Tally {
        var byRegion: [String: [String]] = [:]
        for o in observers { byRegion[regions.region(of: o), default: []].append(o) }
        let downRegions = byRegion.filter { _, members in
            within.isDown(down: members.filter(down.contains).count, voters: members.count)
        }.keys.sorted()
        return Tally(down: across.isDown(down: downRegions.count, voters: byRegion.count), downRegions: downRegions, voting: byRegion.count)
    }

    /// Who probes each member when probers are chosen per region: the rendezvous choice of
    /// `perRegion` among each region's alive instances, all regions together (sorted by region).
    public static func probers(members: some Sequence<String>, alive: [String], perRegion: Int, regions: RegionMap) -> [String: [String]] {
        var byRegion: [String: [String]] = [:]
        for a in alive { byRegion[regions.region(of: a), default: []].append(a) }
        let ordered = byRegion.keys.sorted().map { byRegion[$0]!.sorted() }
        var out: [String: [String]] = [:]
        for m in members { out[m] = ordered.flatMap { Rendezvous.choose(member: m, from: $0, count: perRegion) } }
        return out
    }
}
