import Health
import Testing

@Suite("Region-aware verdicts and probers")
struct RegionTests {
    /// 5 regions x 3 observers: r1..r5, observers r<i>-<j>.
    let regions = RegionMap(Dictionary(uniqueKeysWithValues: (1...5).flatMap { r in (1...3).map { ("r\(r)-\($0)", "r\(r)") } }))
    var observers: [String] { regions.regionOf.keys.sorted() }

    @Test func oneRegionSayingDownIsOutvotedAndThreeAreNot() {
        let r1 = Set(["r1-1", "r1-2", "r1-3"])
        var t = RegionVerdict.tally(observers: observers, down: r1, regions: regions, across: .majority, within: .majority)
        #expect(!t.down && t.downRegions == ["r1"] && t.voting == 5)
        // Each region decides by its own majority: one down observer in each of three regions is no region down.
        t = RegionVerdict.tally(observers: observers, down: ["r1-1", "r2-1", "r3-1"], regions: regions, across: .majority, within: .majority)
        #expect(!t.down && t.downRegions.isEmpty)
        t = RegionVerdict.tally(observers: observers, down: ["r1-1", "r1-2", "r2-1", "r2-2", "r3-2", "r3-3"], regions: regions, across: .majority, within: .majority)
        #expect(t.down && t.downRegions == ["r1", "r2", "r3"])
        // 6 of 15 observers: a plain majority would say up; `any` region down says down.
        t = RegionVerdict.tally(observers: observers, down: r1, regions: regions, across: .any, within: .majority)
        #expect(t.down)
    }

    @Test func aRegionWithNoFreshObserverDoesNotVote() {
        // r4 and r5 have no fresh observers: r1 and r2 down of 3 voting regions is a majority.
        let fresh = observers.filter { !$0.hasPrefix("r4") && !$0.hasPrefix("r5") }
        let t = RegionVerdict.tally(observers: fresh, down: ["r1-1", "r1-2", "r2-1", "r2-3"], regions: regions, across: .majority, within: .majority)
        #expect(t.down && t.voting == 3)
        // Without a region, each instance is a region of its own: the plain policy.
        let plain = RegionVerdict.tally(observers: ["a", "b", "c"], down: ["a", "b"], regions: .none, across: .majority, within: .majority)
        #expect(plain.down && plain.voting == 3)
    }

    @Test func probersArePickedInEveryRegionAndStayPut() {
        let members = (1...200).map { "pool/site/m\($0)" }
        let p = RegionVerdict.probers(members: members, alive: observers, perRegion: 1, regions: regions)
        for m in members {
            #expect(Set(p[m]!.map { regions.region(of: $0) }) == ["r1", "r2", "r3", "r4", "r5"])
        }
        // Each instance of a region gets a share (rendezvous spreads them).
        #expect(Set(p.values.flatMap { $0 }).count == 15)
        // An instance leaving its region moves only its own share, and only within the region.
        let without = RegionVerdict.probers(members: members, alive: observers.filter { $0 != "r1-1" }, perRegion: 1, regions: regions)
        for m in members where !p[m]!.contains("r1-1") { #expect(without[m] == p[m]) }
        for m in members where p[m]!.contains("r1-1") { #expect(without[m]!.first.map { regions.region(of: $0) } == "r1") }
    }
}
