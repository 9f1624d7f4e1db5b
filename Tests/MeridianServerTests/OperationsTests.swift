import Health
import Foundation
import Testing
@testable import MeridianServer
@testable import Frontend

@Suite("Member transitions")
struct TransitionLogTests {
    @Test func recordsChangesKeepsTheLastFewAndForgetsRemovedMembers() {
        var log = TransitionLog(limit: 3)
        let up = MemberStatus(state: .up, source: "check tcp:80: ok")
        let down = MemberStatus(state: .down, source: "check tcp:80: refused")
        #expect(log.observe(["a": up, "b": up], at: 1).isEmpty)  // the first view is not a change
        let first = log.observe(["a": down, "b": up], at: 2)
        #expect(first.count == 1 && first[0].member == "a" && first[0].transition == Transition(at: 2, from: "up", to: "down", reason: "check tcp:80: refused"))
        // A weight change is not a transition.
        #expect(log.observe(["a": down, "b": MemberStatus(state: .up, weightFactor: 0.5, source: "agent 50%")], at: 3).isEmpty)
        for t in 4..<10 { _ = log.observe(["a": t % 2 == 0 ? up : down, "b": up], at: Double(t)) }
        #expect(log.history["a"]?.count == 3 && log.history["a"]?.last?.at == 9)
        _ = log.observe(["b": up], at: 10)
        #expect(log.history["a"] == nil)
    }
}

@Suite("State file edits")
struct StateFileEditTests {
    let text = "# drains for the kernel update\nwww/fra/* DOWN\napp/*/app-3 DRAIN   # by hand\n"

    @Test func settingReplacesTheLineForThePatternAndKeepsTheRest() {
        let o = AdminOverride(pattern: "app/*/app-3", state: .up, weightFactor: 0.5, reason: "back", setAt: 100, file: "api", line: 0)
        let edited = StateFileEdit.setting(o, in: text, file: "s")
        #expect(edited == "# drains for the kernel update\nwww/fra/* DOWN\napp/*/app-3 UP 50% set=1970-01-01T00:01:40Z reason=\"back\"\n")
        let added = StateFileEdit.setting(AdminOverride(pattern: "x", state: .down, file: "api", line: 0), in: text, file: "s")
        #expect(added == text + "x DOWN\n")
        #expect(StateFileEdit.setting(AdminOverride(pattern: "x", state: .down, file: "api", line: 0), in: "", file: "s") == "x DOWN\n")
    }

    @Test func removingDropsOnlyThosePatterns() {
        let (t, n) = StateFileEdit.removing(["www/fra/*", "nope"], from: text, file: "s")
        #expect(n == 1 && t == "# drains for the kernel update\napp/*/app-3 DRAIN   # by hand\n")
    }

    @Test func writeIsAtomicAndRequestsAreValidated() throws {
        let path = NSTemporaryDirectory() + "meridian-edit-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).txt"
        defer { unlink(path) }
        try StateFileEdit.write("a DOWN\n", to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "a DOWN\n")
        #expect(throws: OverrideError.self) { try StateFileEdit.write("x", to: "/nonexistent-dir/state.txt") }
        func invalid(_ o: AdminOverride) -> Bool {
            do { try StateFileEdit.validate(o, now: 1000) } catch { return true }
            return false
        }
        #expect(invalid(AdminOverride(pattern: "", state: .down, file: "", line: 0)))
        #expect(invalid(AdminOverride(pattern: "a b", state: .down, file: "", line: 0)))
        #expect(invalid(AdminOverride(pattern: "a", state: .down, expires: 999, file: "", line: 0)))
        #expect(invalid(AdminOverride(pattern: "a", state: .down, reason: "two\nlines", file: "", line: 0)))
        #expect(invalid(AdminOverride(pattern: "a", state: .down, weightFactor: 1.5, file: "", line: 0)))
        #expect(!invalid(AdminOverride(pattern: "www/*/a-?", state: .drain, weightFactor: 0, reason: "ok", expires: 2000, file: "", line: 0)))
    }
}

@Suite("Reload requests")
struct ReloadRequestTests {
    /// Requests made while a load runs merge into one load: the whole directory wins over
    /// zones, zone lists join without repeats.
    @Test func requestsMerge() {
        #expect(Supervisor.merge(nil, nil) == .some(nil))
        #expect(Supervisor.merge(nil, ["a."]) == .some(["a."]))
        #expect(Supervisor.merge(.some(["a."]), ["b.", "a."]) == .some(["a.", "b."]))
        #expect(Supervisor.merge(.some(["a."]), nil) == .some(nil))
        #expect(Supervisor.merge(.some(nil), ["a."]) == .some(nil))
    }
}
