import GeoTopology
import Health
import PoolConfig
import Testing
@testable import Control
@testable import Gossip

/// One lone `ControlCore` on a manual clock: the monitor book, the group core and the health
/// publication as one value.
@Suite("The control core")
struct ControlCoreTests {
    static let check = CheckSpec(kind: .tcp, port: 80, interval: 1, timeout: 0.5, rise: 1, fall: 2, initialUp: true, line: 1)
    static let targets = ["p/s/a", "p/s/b"].map { MonitorTarget(memberID: $0, address: IPAddress("192.0.2.1")!, checks: [check], agent: nil) }

    static func at(_ ms: UInt64) -> GroupTime { GroupTime(monotonic: Double(ms) / 1000, wallMillis: 1_000_000 + ms) }

    static func lone() -> (ControlCore, [ControlDirective]) {
        let group = GroupCore(name: "ns1", boot: 1, cluster: nil, address: nil, incarnation: 1, seed: 1, now: at(0))
        var core = ControlCore(group: group, healthVersion: 3)
        let out = core.start(targets: targets, digest: 1, now: at(0))
        return (core, out)
    }

    static func views(_ out: [ControlDirective]) -> [HealthSnapshot] {
        out.compactMap { if case let .publish(v, _) = $0 { return v } else { return nil } }
    }

    @Test func startHandsTheExecutorEveryMemberOfALoneInstance() {
        let (core, out) = Self.lone()
        let probes = out.compactMap { if case let .probe(t, e) = $0 { return (t, e) } else { return nil } }
        #expect(probes.count == 1 && probes[0].0 == Self.targets && probes[0].1 == core.epoch)
        #expect(core.needsFlush)
    }

    /// Results pass through rise/fall in the book; a burst of them is one publication, with
    /// the next health version.
    @Test func resultsFoldIntoOnePublicationPerFlush() {
        var (core, _) = Self.lone()
        #expect(Self.views(core.flush(now: Self.at(10))).count == 1)
        var out: [ControlDirective] = []
        for ms in [20, 30] as [UInt64] {
            out += core.checkDone(epoch: core.epoch, member: 0, check: 0, result: .failure("refused"), elapsed: 0.01, now: Self.at(ms))
        }
        #expect(Self.views(out).isEmpty)
        #expect(out.contains { if case .count(.wentDown) = $0 { return true } else { return false } })
        let views = Self.views(core.flush(now: Self.at(50)))
        #expect(views.count == 1 && views[0].version == 5)
        #expect(views[0].status(of: "p/s/a").state == .down && views[0].status(of: "p/s/b").state == .up)
        #expect(core.flush(now: Self.at(70)).isEmpty)
    }

    /// A result for an earlier probe list (its indices point into another list) is dropped.
    @Test func resultsOfAnEarlierEpochAreDropped() {
        var (core, _) = Self.lone()
        let old = core.epoch
        let fewer = [Self.targets[1]]
        let out = core.configure(targets: fewer, digest: 2, cluster: nil, now: Self.at(10))
        #expect(out.contains { if case let .probe(t, e) = $0 { return t == fewer && e == old + 1 } else { return false } })
        _ = core.flush(now: Self.at(20))
        for ms in [30, 40] as [UInt64] {
            #expect(core.checkDone(epoch: old, member: 0, check: 0, result: .failure("refused"), elapsed: 0.01, now: Self.at(ms)).isEmpty)
        }
        #expect(!core.needsFlush)
        #expect(core.checkDone(epoch: core.epoch, member: 5, check: 0, result: .success(), elapsed: 0.01, now: Self.at(50)).isEmpty)
    }

    /// A shortage of this host and a late failure are counted, never recorded against the member.
    @Test func inconclusiveResultsAreCountedNotRecorded() {
        var (core, _) = Self.lone()
        _ = core.flush(now: Self.at(10))
        let shortage = core.checkDone(epoch: core.epoch, member: 0, check: 0, result: .localFailure("EMFILE"), elapsed: 0.01, now: Self.at(20))
        #expect(shortage.contains { if case .count(.localShortage) = $0 { return true } else { return false } })
        let late = core.checkDone(epoch: core.epoch, member: 0, check: 0, result: .failure("timeout"), elapsed: 5, now: Self.at(30))
        #expect(late.contains { if case .count(.late) = $0 { return true } else { return false } })
        #expect(!core.needsFlush)
        #expect(core.book.members[0].checks[0].machine.isUp)
    }

    /// An override expires at its time by the core's clock: the tick after it publishes a view
    /// without it, and nothing else has to happen.
    @Test func anOverrideExpiresOnTheTick() {
        var (core, _) = Self.lone()
        _ = core.flush(now: Self.at(10))
        let setAt = Double(Self.at(20).wallMillis) / 1000
        let o = AdminOverride(pattern: "p/s/a", state: .drain, reason: "test", expires: setAt + 2, setAt: setAt, file: "state.txt", line: 1)
        _ = core.recordOverrides([o], now: Self.at(20))
        #expect(Self.views(core.flush(now: Self.at(40))).first?.status(of: "p/s/a").state == .drain)
        #expect(Self.views(core.tick(now: Self.at(1_900))).isEmpty)
        let expired = Self.views(core.tick(now: Self.at(2_030)))
        #expect(expired.count == 1 && expired[0].status(of: "p/s/a").state == .up)
        #expect(Self.views(core.tick(now: Self.at(2_050))).isEmpty)
    }
}
