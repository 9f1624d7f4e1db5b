import Health
import Testing
@testable import Gossip
@testable import Control

/// Issue 20: verdicts by regional quorum, under the group simulator. 5 regions x 3 instances,
/// one prober per region for each member.
@Suite("Region-aware verdicts in a group")
struct RegionScenarioTests {
    static let members = (1...6).map { "www/s\($0 % 2)/m\($0)" }

    static func group(verdict: VerdictPolicy, seed: UInt64 = 20) -> GroupSimulator {
        GroupSimulator(count: 15, members: members, seed: seed) { c in
            for (i, n) in c.peers.keys.sorted(by: { Int($0.dropFirst())! < Int($1.dropFirst())! }).enumerated() {
                c.placement[n] = PeerPlacement(region: "r\(i / 3 + 1)")
            }
            c.verdict = verdict
            c.probers = nil
            c.probersPerRegion = 1
        }
    }

    static func region(_ r: Int) -> [String] { (1...3).map { "n\((r - 1) * 3 + $0)" } }

    @Test func aRegionCutOffFromTheBackendsOrFromTheGroupTakesNothingDownElsewhere() {
        var sim = Self.group(verdict: .regions(across: .majority, within: .majority))
        #expect(sim.run(for: 10, until: { s in s.serving.count == 15 && Self.members.allSatisfy { s.all($0, .up) } }) != nil)
        // Every member is probed in every region, by one instance there.
        for m in Self.members {
            let probers = sim.cores["n1"]!.group.probers[m] ?? []
            #expect(Set(probers.map { sim.cluster.regions.region(of: $0) }) == ["r1", "r2", "r3", "r4", "r5"], "\(m): \(probers)")
        }
        // r1 loses its way to the backends but still gossips: 1 of 5 regions says down.
        sim.cutFromBackends = Set(Self.region(1))
        sim.run(for: 5, every: { s in
            for m in Self.members { #expect(s.all(m, .up), "\(m) went down with r1 cut off from the backends") }
        })
        // r1 is cut off from everything: the other regions keep every member up.
        let rest = (2...5).flatMap(Self.region)
        sim.partition(Self.region(1), rest)
        sim.run(for: 10, every: { s in
            for m in Self.members { #expect(s.all(m, .up, among: rest), "\(m) went down outside r1") }
        })
        // A backend that really dies is down everywhere outside r1 (4 of 4 voting regions).
        sim.backends[Self.members[0]] = false
        let took = sim.run(for: 10, until: { s in s.all(Self.members[0], .down, among: rest) })
        #expect(took != nil && took! < 3, "took \(took ?? -1) s")
        #expect(Self.members.dropFirst().allSatisfy { sim.all($0, .up, among: rest) })
        #expect(sim.views["n4"]!.status(of: Self.members[0]).source.contains("4 of 4 regions say down"), "\(sim.views["n4"]!.status(of: Self.members[0]).source)")
    }

    @Test func withoutRegionsTheSameCutTakesEveryMemberDown() {
        // The contrast: `any` observer saying down is enough, so r1's lost uplink takes the
        // members down on every instance.
        var sim = Self.group(verdict: .any)
        #expect(sim.run(for: 10, until: { s in s.serving.count == 15 && Self.members.allSatisfy { s.all($0, .up) } }) != nil)
        sim.cutFromBackends = Set(Self.region(1))
        #expect(sim.run(for: 5, until: { s in Self.members.allSatisfy { s.all($0, .down) } }) != nil)
    }
}
