import Health
import PoolConfig
import Selection
import Testing

/// Issue 20: `healthy_if: K of N` and `depends_on`.
@Suite("Calculated checks and dependencies")
struct CalculatedChecksTests {
    static let yaml = """
        pools:
          uplinks:
            names: [uplinks.gslb.test.]
            sites:
              fra: {members: [{name: router, address: 10.9.0.1}]}
            checks:
              - {type: tcp, port: 179}
          www:
            names: [www.gslb.test.]
            healthy_if: 2 of 3
            sites:
              fra: {members: [192.0.2.1, 192.0.2.2], depends_on: [uplinks/fra/router]}
              ams: {members: [192.0.2.3]}
            order: {default: [fra, ams]}
            checks:
              - {type: tcp, port: 80}
              - {type: tcp, port: 443}
              - {type: http, port: 80, path: /health}
        """

    func pools() throws -> PoolSet {
        let (set, diags) = PoolFileParser.parse(files: [("/tmp/c.yaml", Self.yaml)])
        return try #require(set, "\(diags)")
    }

    /// One observer's results: `failing` of www's three checks fail; the router up or not.
    func health(failing: Int, member: String = "www/fra/192.0.2.1", routerUp: Bool = true, overrides: [AdminOverride] = []) -> HealthSnapshot {
        let checks = (0..<3).map { CheckObservation(check: "check\($0)", up: $0 >= failing, reason: $0 >= failing ? "ok" : "refused", observer: "ns1", version: 1, at: 0) }
        let router = CheckObservation(check: "tcp:179", up: routerUp, reason: routerUp ? "ok" : "refused", observer: "ns1", version: 1, at: 0)
        return HealthSnapshot(version: 1, overrides: overrides, observations: [member: MemberObservations(checks: checks), "uplinks/fra/router": MemberObservations(checks: [router])])
    }

    @Test func kOfNChecksDecide() throws {
        let p = try pools()
        #expect(p.pools[1].healthyIf == 2)
        var s = PoolsRuntime.statuses(p.pools, health: health(failing: 1))
        #expect(s["www/fra/192.0.2.1"]?.state == .up)
        s = PoolsRuntime.statuses(p.pools, health: health(failing: 2))
        #expect(s["www/fra/192.0.2.1"]?.state == .down)
        #expect(s["www/fra/192.0.2.1"]?.source.contains("1 of 3 checks pass, healthy_if 2 of 3") == true, "\(s["www/fra/192.0.2.1"]!.source)")
    }

    @Test func aMemberGoesDownWithWhatItDependsOnAndTheReasonChainSaysWhy() throws {
        let p = try pools()
        let s = PoolsRuntime.statuses(p.pools, health: health(failing: 0, routerUp: false))
        for m in ["www/fra/192.0.2.1", "www/fra/192.0.2.2"] {
            #expect(s[m]?.state == .down)
            #expect(s[m]?.source.hasPrefix("depends on uplinks/fra/router, which is down (check tcp:179: refused") == true, "\(s[m]!.source)")
        }
        #expect(s["www/ams/192.0.2.3"]?.state == .up)
        // The runtime answers from ams.
        let rt = PoolsRuntime(pools: p, plans: PoolsRuntime.plans(for: p), health: health(failing: 0, routerUp: false))
        let www = rt.runtimes[1]
        #expect(!www.siteUsable[0] && www.siteUsable[1])
        // An operator's override on the member still wins.
        let forced = AdminOverride(pattern: "www/fra/*", state: .up, reason: "router is fine", file: "api", line: 0)
        let o = PoolsRuntime.statuses(p.pools, health: health(failing: 0, routerUp: false, overrides: [forced]))
        #expect(o["www/fra/192.0.2.1"]?.state == .up)
    }

    @Test(arguments: [
        ("healthy_if: 4 of 3", "healthy_if must be 'K of N'"),
        ("healthy_if: two of 3", "healthy_if must be 'K of N'"),
        ("depends_on: [nope/x/y]", "depends_on: no member 'nope/x/y'"),
        ("depends_on: [www/fra/192.0.2.1]", "depends_on forms a loop"),
        ("depends_on: web", "depends_on must be a list"),
    ])
    func badDependenciesAndThresholdsAreRefused(line: String, message: String) {
        let text = Self.yaml.replacingOccurrences(of: "    healthy_if: 2 of 3\n", with: "    \(line)\n")
        let (set, diags) = PoolFileParser.parse(files: [("/tmp/c.yaml", text)])
        #expect(set == nil)
        #expect(diags.contains { $0.message.contains(message) && $0.line > 0 }, "\(diags)")
    }
}
