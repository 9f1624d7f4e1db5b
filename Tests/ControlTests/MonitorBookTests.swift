import Health
import GeoTopology
import PoolConfig
import Testing
@testable import Control

/// The monitor's policy on a manual clock: no sockets, no event loop, no waiting.
@Suite("Monitor book")
struct MonitorBookTests {
    static let check = CheckSpec(kind: .tcp, port: 80, interval: 1, timeout: 0.5, rise: 2, fall: 2, initialUp: true, line: 1)
    static let agent = AgentSpec(port: 3333, send: nil, interval: 2, timeout: 1, maxAge: 30, line: 2)

    func book() -> MonitorBook {
        var b = MonitorBook(observer: "ns1")
        b.configure([MonitorTarget(memberID: "p/s/a", address: IPAddress("192.0.2.1")!, checks: [Self.check], agent: Self.agent)], wallNow: 0)
        return b
    }

    /// "Never marks a member down because Meridian itself was busy": a failure that completes
    /// well after its timeout (here 0.5 s + 0.25 s of grace) is not counted toward `fall`, nor is
    /// a failure for a shortage of this host; timely failures are.
    @Test func lateAndLocalFailuresNeverCountTowardFall() {
        var b = book()
        #expect(b.checkDone(member: 0, check: 0, result: .success("connected"), elapsed: 0.01, wallNow: 1) == .recorded(nil, first: true))
        for t in 2..<10 {
            #expect(b.checkDone(member: 0, check: 0, result: .failure("connect: timed out"), elapsed: 0.76, wallNow: Double(t)) == .late)
            #expect(b.checkDone(member: 0, check: 0, result: .localFailure("connect: EMFILE"), elapsed: 0.01, wallNow: Double(t)) == .localShortage)
        }
        #expect(b.members[0].checks[0].machine.isUp && b.members[0].checks[0].machine.failures == 0)
        // Just inside the grace, failures count: two of them (fall 2) take the member down.
        #expect(b.checkDone(member: 0, check: 0, result: .failure("connect: timed out"), elapsed: 0.74, wallNow: 10) == .recorded(nil, first: false))
        #expect(b.checkDone(member: 0, check: 0, result: .failure("refused"), elapsed: 0.01, wallNow: 11) == .recorded(.wentDown, first: false))
        let obs = b.observations()["p/s/a"]!.checks[0]
        #expect(!obs.up && obs.reason == "refused" && obs.at == 11 && !obs.provisional)
    }

    /// An agent's last good reply holds for `max_age`, then the static weight applies again.
    @Test func agentRepliesLastMaxAge() throws {
        var b = book()
        #expect(b.observations()["p/s/a"]!.checks[0].provisional)
        var change = b.agentReplied(member: 0, try AgentReply.parse(Array("40%".utf8)), wallNow: 100)
        #expect(change.published && b.observations()["p/s/a"]!.agent?.weightFactor == 0.4)
        change = b.agentFailed(member: 0, "connection refused", wallNow: 110)
        // The detail now says the last reply failed, but state and weight hold: not news.
        #expect(change.newError && !change.published && !change.wentStale)
        #expect(b.observations()["p/s/a"]!.agent?.weightFactor == 0.4)
        #expect(b.observations()["p/s/a"]!.agent?.detail.contains("last reply failed") == true)
        #expect(!b.agentFailed(member: 0, "connection refused", wallNow: 120).newError)
        change = b.agentFailed(member: 0, "connection refused", wallNow: 130.5)
        #expect(change.wentStale && change.published && b.observations()["p/s/a"]!.agent == nil)
        change = b.agentReplied(member: 0, try AgentReply.parse(Array("90% drain".utf8)), wallNow: 131)
        #expect(change.recovered && change.published && b.observations()["p/s/a"]!.agent?.state == .drain)
    }

    /// An agent wandering inside the dead band is not news (the ledger would not take it, so
    /// it must not cost a flush either); leaving it, or reaching 0, is.
    @Test func agentWanderingInsideTheDeadBandIsNotNews() throws {
        var b = book()
        #expect(b.agentReplied(member: 0, try AgentReply.parse(Array("50%".utf8)), wallNow: 100).published)
        for (i, p) in ["52%", "48%", "54%", "51%"].enumerated() {
            let c = b.agentReplied(member: 0, try AgentReply.parse(Array(p.utf8)), wallNow: 101 + Double(i))
            #expect(!c.published, "\(p)")
        }
        #expect(b.observations()["p/s/a"]!.agent?.weightFactor == 0.51)
        #expect(b.agentReplied(member: 0, try AgentReply.parse(Array("56%".utf8)), wallNow: 110).published)
        #expect(b.agentReplied(member: 0, try AgentReply.parse(Array("0%".utf8)), wallNow: 111).published)
    }

    /// A new configuration keeps the state of checks defined as before, and only those.
    @Test func reconfigurationKeepsUnchangedChecks() {
        var b = book()
        _ = b.checkDone(member: 0, check: 0, result: .failure("refused"), elapsed: 0.01, wallNow: 1)
        let other = CheckSpec(kind: .tcp, port: 81, interval: 1, timeout: 0.5, rise: 2, fall: 2, initialUp: true, line: 1)
        b.configure([
            MonitorTarget(memberID: "p/s/a", address: IPAddress("192.0.2.1")!, checks: [Self.check, other], agent: nil),
            MonitorTarget(memberID: "p/s/b", address: IPAddress("192.0.2.2")!, checks: [Self.check], agent: nil),
        ], wallNow: 5)
        #expect(!b.members[0].checks[0].machine.isUp && !b.members[0].checks[1].machine.observed && !b.members[1].checks[0].machine.observed)
        #expect(!b.allObserved)
        b.configure([MonitorTarget(memberID: "p/s/a", address: IPAddress("192.0.2.9")!, checks: [Self.check], agent: nil)], wallNow: 6)
        #expect(!b.members[0].checks[0].machine.observed)  // a new address is a new member
    }
}
