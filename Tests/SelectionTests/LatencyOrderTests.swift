import DNSWire
import GeoTopology
import Health
import PoolConfig
import Selection
import Testing

/// Issue 20: `order: {latency: {...}}`.
@Suite("Latency order")
struct LatencyOrderTests {
    static func yaml(mode: String = "multi-site", tolerance: Int = 10, fallback: String = "default") -> String {
        """
        pools:
          www:
            names: [www.gslb.test.]
            mode: \(mode)
            sites:
              ams: {members: [192.0.2.1]}
              iad: {members: [192.0.2.2]}
              nrt: {members: [192.0.2.3]}
              dr: {backup: true, members: [192.0.2.9]}
            order:
              default: [nrt, iad, ams]
              latency: {tolerance_ms: \(tolerance), min_samples: 5, fallback: \(fallback)}
        """
    }

    static let net = LatencyPrefix(IPAddress("198.51.100.0")!)

    static func table(_ rtts: [String: (Double, Double)], prefix: LatencyPrefix = net) -> LatencyTable {
        LatencyTable(cells: [prefix: rtts.mapValues { LatencyCell(rttMs: $0.0, samples: $0.1, observers: 1) }])
    }

    func runtime(_ yaml: String, _ table: LatencyTable, overrides: [AdminOverride] = []) throws -> PoolsRuntime {
        let (set, diags) = PoolFileParser.parse(files: [("/tmp/l.yaml", yaml)])
        let pools = try #require(set, "\(diags)")
        return PoolsRuntime(pools: pools, plans: PoolsRuntime.plans(for: pools), health: HealthSnapshot(version: 1, overrides: overrides, latency: table))
    }

    @Test func theLowestLatencySiteAnswersAndTheScopeIsTheMeasuredNetwork() throws {
        let rt = try runtime(Self.yaml(), Self.table(["ams": (80, 9), "iad": (12, 9), "nrt": (40, 9)]))
        let a = ask(rt, "www", "198.51.100.77")
        #expect(a.addresses == ["192.0.2.2"])
        #expect(a.outcome.scope == 24)
        let (_, notes) = Selector.explain(pools: rt, pool: 0, qtype: 1, client: IPAddress("198.51.100.77")!, buffer: MessageBuffer(seed: 1))
        #expect(notes.contains { $0.contains("latency from 198.51.100.0/24") && $0.contains("iad 12.0 ms (9 samples") }, "\(notes)")
    }

    @Test func aDownSiteGivesWayToTheNextByLatency() throws {
        let down = [AdminOverride(pattern: "www/iad/*", state: .down, file: "t", line: 1)]
        let rt = try runtime(Self.yaml(), Self.table(["ams": (80, 9), "iad": (12, 9), "nrt": (40, 9)]), overrides: down)
        #expect(ask(rt, "www", "198.51.100.77").addresses == ["192.0.2.3"])
    }

    @Test func anUnmeasuredNetworkGetsTheFallbackAndStillTheScopeOfTheNetwork() throws {
        let rt = try runtime(Self.yaml(), Self.table(["iad": (12, 9)]))
        let a = ask(rt, "www", "203.0.113.5")
        #expect(a.addresses == ["192.0.2.3"], "the default order starts with nrt")
        #expect(a.outcome.scope == 24)
    }

    @Test func tooFewSamplesDoNotCount() throws {
        let rt = try runtime(Self.yaml(), Self.table(["iad": (12, 4), "ams": (30, 5)]))
        #expect(ask(rt, "www", "198.51.100.1").addresses == ["192.0.2.1"], "iad has 4 of 5 samples: ams is the only measured site")
    }

    @Test func sitesWithinTheToleranceShareByWeight() throws {
        let rt = try runtime(Self.yaml(tolerance: 10), Self.table(["ams": (20, 9), "iad": (14, 9), "nrt": (90, 9)]))
        let buffer = MessageBuffer(seed: 3)
        var counts: [String: Int] = [:]
        for _ in 0..<4000 { counts[ask(rt, "www", "198.51.100.1", buffer: buffer).addresses.first ?? "-", default: 0] += 1 }
        // Equal weights: about half each (4000 draws, 5 sigma is about 160); nrt never.
        #expect(abs((counts["192.0.2.1"] ?? 0) - 2000) < 160, "\(counts)")
        #expect(abs((counts["192.0.2.2"] ?? 0) - 2000) < 160, "\(counts)")
        #expect(counts["192.0.2.3"] == nil)
        // A tolerance of 5 ms separates them: iad only.
        let strict = try runtime(Self.yaml(tolerance: 5), Self.table(["ams": (20, 9), "iad": (14, 9), "nrt": (90, 9)]))
        for _ in 0..<50 { #expect(ask(strict, "www", "198.51.100.1", buffer: buffer).addresses == ["192.0.2.2"]) }
    }

    @Test func activeActiveDrawsAmongTheTiedSites() throws {
        let rt = try runtime(Self.yaml(mode: "active-active", tolerance: 10), Self.table(["ams": (20, 9), "iad": (25, 9), "nrt": (90, 9)]))
        let buffer = MessageBuffer(seed: 5)
        var seen = Set<String>()
        for _ in 0..<200 { seen.insert(ask(rt, "www", "198.51.100.1", buffer: buffer).addresses.first ?? "-") }
        #expect(seen == ["192.0.2.1", "192.0.2.2"])
    }

    @Test func ipv6NetworksAreKeptPer48() throws {
        let p6 = LatencyPrefix(IPAddress("2001:db8:7::")!)
        #expect(p6.description == "2001:db8:7::/48")
        let rt = try runtime(Self.yaml(), Self.table(["ams": (5, 9), "iad": (50, 9)], prefix: p6))
        let a = ask(rt, "www", "2001:db8:7:99::1")
        #expect(a.addresses == ["192.0.2.1"])
        #expect(a.outcome.scope == 48)
    }

    @Test(arguments: [
        ("latency: {tolerance_ms: -1}", "tolerance_ms must be a number"),
        ("latency: {min_samples: 0}", "min_samples 0 is out of range"),
        ("latency: {fallback: nearest}", "fallback must be one of geo, default"),
        ("latency: {speed: 1}", "speed"),
    ])
    func badRulesAreRefused(rule: String, message: String) {
        let text = """
            pools:
              www:
                names: [www.gslb.test.]
                sites:
                  ams: {members: [192.0.2.1]}
                order:
                  \(rule)
            """
        let (set, diags) = PoolFileParser.parse(files: [("/tmp/l.yaml", text)])
        #expect(set == nil)
        #expect(diags.contains { $0.description.contains(message) }, "\(diags)")
    }

    @Test func aDirectPoolNeedsSiteAffinity() {
        let text = """
            pools:
              www:
                names: [www.gslb.test.]
                mode: direct
                sites:
                  ams: {members: [192.0.2.1]}
                order:
                  latency: {}
            """
        let (_, diags) = PoolFileParser.parse(files: [("/tmp/l.yaml", text)])
        #expect(diags.contains { $0.description.contains("needs site_affinity") }, "\(diags)")
    }
}

