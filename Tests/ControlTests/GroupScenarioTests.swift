import Health
import Testing
@testable import Gossip
@testable import Control

/// The whole group driven through `ControlCore` by `GroupSimulator`: no sockets, no sleeps, one
/// seed. Each step asserts every running instance's published view (issue 17).
@Suite("A group of control cores under a simulated network")
struct GroupScenarioTests {
    static let members = ["www/a/m1", "www/a/m2", "www/b/m3", "www/b/m4"]

    @Test func partitionOverrideReloadRestartAndExpiry() throws {
        var sim = GroupSimulator(count: 5, members: Self.members, seed: 2026)
        // 1. The group forms; every instance sees every member up, each member probed by two.
        #expect(sim.run(for: 5, until: { s in s.running.allSatisfy { s.cores[$0]!.group.live.count == 5 } && s.running.allSatisfy { s.views[$0] != nil } }) != nil)
        sim.run(for: 1)
        for m in Self.members {
            #expect(sim.all(m, .up), "\(m)")
            #expect(sim.running.filter { sim.assigned[$0]?.contains(m) == true }.count == 2, "\(m) probers")
        }

        // 2. A backend dies: every instance drops it.
        sim.backends["www/a/m1"] = false
        let dropped = sim.run(for: 3, until: { $0.all("www/a/m1", .down) })
        #expect(dropped != nil && dropped! < 1.0, "took \(dropped ?? -1) s")

        // 3. A 1|4 partition, and a backend dies during it. The lone side stops counting on the
        //    peers it suspects and probes the member itself (finding 7: with suspected peers
        //    counting, it had not dropped it after 10 s; now about 3 s).
        sim.partition(["n1"], ["n2", "n3", "n4", "n5"])
        sim.run(for: 0.3)
        sim.backends["www/a/m2"] = false
        let majority = ["n2", "n3", "n4", "n5"]
        let lone = sim.run(for: 10, until: { $0.all("www/a/m2", .down, among: ["n1"]) })
        #expect(lone != nil && lone! < 3.5, "lone side took \(lone ?? -1) s")
        #expect(sim.run(for: 3, until: { $0.all("www/a/m2", .down, among: majority) }) != nil)

        // 4. An override set on the majority side, expiring in 6 s, reaches that side only.
        sim.override(at: "n2", pattern: "www/b/m3", state: .drain, expiresIn: 6)
        let expires = sim.now + 6
        #expect(sim.run(for: 1, until: { $0.all("www/b/m3", .drain, among: majority) }) != nil)
        #expect(sim.state("www/b/m3", at: "n1") == .up)

        // 5. The partition heals: n1 hears of the override. Its setter then dies; the override
        //    still expires everywhere at its time (finding 5), with nobody left who set it.
        sim.heal()
        #expect(sim.run(for: 5, until: { $0.all("www/b/m3", .drain) }) != nil)
        sim.kill("n2")
        sim.run(for: max(0, expires - sim.now - 0.05), every: { s in
            for n in s.serving { #expect(s.state("www/b/m3", at: n) == .drain, "\(n) dropped the override before it expired") }
        })
        sim.run(for: 0.1)
        #expect(sim.all("www/b/m3", .up))

        // 6. Every instance reloads a configuration with one more member: it is probed and up
        //    everywhere; the members that were down stay down.
        var defs = sim.definitions
        defs["www/b/m5"] = 1
        sim.backends["www/b/m5"] = true
        sim.reload(defs, digest: 8)
        #expect(sim.run(for: 3, until: { s in s.running.contains { s.assigned[$0]?.contains("www/b/m5") == true }
                && s.running.allSatisfy { s.views[$0]?.observations["www/b/m5"]?.checks.isEmpty == false } }) != nil)
        #expect(sim.all("www/b/m5", .up) && sim.all("www/a/m1", .down) && sim.all("www/a/m2", .down),
                "\(sim.running.map { "\($0): m2 \(sim.state("www/a/m2", at: $0)) \(sim.views[$0]?.observations["www/a/m2"].map { "\($0)" } ?? "-")" })")

        // 7. A prober of m4 is killed, then m4 dies; the prober restarts long after. Nothing it
        //    saw before its crash counts again: no instance ever serves m4 (finding 2).
        let prober = try #require(sim.running.first { sim.assigned[$0]?.contains("www/b/m4") == true })
        sim.kill(prober)
        sim.backends["www/b/m4"] = false
        #expect(sim.run(for: 5, until: { $0.all("www/b/m4", .down) }) != nil)
        sim.run(for: 8)  // the prober is declared dead, its results stay as the last known
        sim.start(prober)
        sim.run(for: 3, every: { s in
            for n in s.serving {
                #expect(s.state("www/b/m4", at: n) == .down, "\(n) served the dead m4 at \(s.now): \(s.views[n]?.observations["www/b/m4"].map { "\($0)" } ?? "no observations"); prober \(prober); assigned \(s.running.filter { s.assigned[$0]?.contains("www/b/m4") == true }); probers at n \(s.cores[n]!.group.probers["www/b/m4"] ?? []); entries \(s.cores[n]!.group.ledger.entries().filter { if case .check(let c) = $0 { return c.member == "www/b/m4" } else { return false } }); lives \(s.cores[n]!.group.ledger.lives.mapValues(\.boot)); alive at n \(s.cores[n]!.group.alive)")
            }
        })
        #expect(sim.serving.count == 4 && sim.serving.allSatisfy { sim.cores[$0]!.group.live.count == 4 })
    }

    /// A burst of changes is one publication: the core publishes on `flush`, not per change.
    @Test func aBurstOfResultsIsOnePublication() {
        var core = GroupCore(
            name: "ns1", boot: 1, cluster: nil, address: nil, incarnation: 1, seed: 1, now: GroupTime(monotonic: 0, wallMillis: 1_000))
        _ = core.start(definitions: ["p/s/a": 1, "p/s/b": 1], digest: 1, now: GroupTime(monotonic: 0, wallMillis: 1_000))
        var publications = 0
        for i in 0..<10 {
            let obs = ["p/s/a": MemberObservations(checks: [CheckObservation(check: "c", up: i % 2 == 0, reason: "r", observer: "ns1", version: 0, at: 0)], agent: nil)]
            for e in core.recordLocal(obs, now: GroupTime(monotonic: 0.001 * Double(i), wallMillis: 1_000 + UInt64(i))) {
                if case .publish = e { publications += 1 }
            }
        }
        #expect(publications == 0 && core.dirty)
        let out = core.flush(now: GroupTime(monotonic: 0.02, wallMillis: 1_020))
        #expect(out.filter { if case .publish = $0 { return true } else { return false } }.count == 1)
        #expect(core.flush(now: GroupTime(monotonic: 0.04, wallMillis: 1_040)).isEmpty)
    }

    /// A restarted instance's join exchange carries its new life: the peer that serves it
    /// learns that the instance is alive and which life is current in the same exchange. (The
    /// join used to push no entries, so a survivor counted the restarted prober's result from
    /// before its crash until the second exchange: seen by test_control.py 2 runs in 5.)
    @Test func aJoinExchangeCarriesTheNewLife() throws {
        let cluster = ClusterConfig(peers: ["n1": "10.0.0.1:7946", "n2": "10.0.0.2:7946"], verdict: .majority, probers: 2, settings: SWIMSettings())
        let t = GroupTime(monotonic: 0, wallMillis: 1_800_000_000_000)
        var core = GroupCore(name: "n1", boot: 42, cluster: cluster, address: "10.0.0.1:7946", incarnation: 7, seed: 1, now: t)
        _ = core.start(definitions: ["p/s/a": 1], digest: 1, now: t)
        let requests = core.join(now: t).compactMap { if case let .exchange(_, _, r) = $0 { return r } else { return nil } }
        #expect(requests.count == 1)
        let entries = try requests[0].entries.map { try LedgerCodec.decode($0) }
        #expect(entries.contains { if case let .life(l) = $0 { return l.observer == "n1" && l.boot == 42 } else { return false } })
    }
}
