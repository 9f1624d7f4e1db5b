import Testing
@testable import ClusterState

@Suite("Admin state file")
struct AdminStateTests {
    @Test func parsesOverridesAndComments() {
        let (o, d) = AdminStateFile.parse("""
            # comment
            www/fra/*   DOWN   # trailing comment

            app/*/app-3 drain
            app/*/app-4 UP 50%
            """, file: "state.txt")
        #expect(d.isEmpty)
        #expect(o.map(\.state) == [.down, .drain, .up])
        #expect(o.map(\.line) == [2, 4, 5])
        #expect(o[2].weightFactor == 0.5)
    }

    @Test(arguments: [("www/fra/* SIDEWAYS", "state must be"), ("www/fra/*", "expected"), ("x UP 150%", "weight must be"), ("x UP 5 6", "expected")])
    func badLines(line: String, message: String) {
        let (o, d) = AdminStateFile.parse("# ok\n" + line, file: "state.txt")
        #expect(o.isEmpty)
        #expect(d.first?.description.hasPrefix("state.txt:2: ") == true)
        #expect(d.first?.message.contains(message) == true)
    }

    @Test func lastMatchWinsAndGlobsMatchIds() {
        let (o, _) = AdminStateFile.parse("www/* DOWN\nwww/fra/a UP 25%\n", file: "s")
        let h = HealthSnapshot(version: 1, overrides: o)
        #expect(h.status(of: "www/iad/b").state == .down)
        #expect(h.status(of: "www/fra/a") == MemberStatus(state: .up, weightFactor: 0.25, source: "admin s:2"))
        #expect(h.status(of: "app/fra/a") == .defaultUp)
    }

    @Test func missingFileMeansNoOverrides() {
        let (o, d) = AdminStateFile.load(path: "/nonexistent/state.txt")
        #expect(o.isEmpty && d.isEmpty)
    }
}
