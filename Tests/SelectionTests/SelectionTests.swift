import Health
import DNSWire
import GeoTopology
import PoolConfig
import Selection
import Testing

@Suite("Multi-site selection")
struct MultiSiteTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var client: String
        var overrides: String = ""
        var qtype: UInt16 = RRType.a
        var expect: [String]
        var scope: Int
        var testDescription: String { "\(client) \(overrides.replacingOccurrences(of: "\n", with: "; "))" }
    }

    static let cases: [Case] = [
        // GeoIP continent and country rules; the scope is the MMDB network's prefix.
        Case(client: "10.1.0.9", expect: ["192.0.2.11", "192.0.2.12"], scope: 16),
        // The office /24 sits inside this /16: the answer holds for the client's /22 only.
        Case(client: "10.2.0.9", expect: ["198.51.100.21", "198.51.100.22"], scope: 22),
        Case(client: "10.3.0.9", expect: ["203.0.113.31", "203.0.113.32"], scope: 16),
        // Subdivision beats country and continent.
        Case(client: "10.6.1.1", expect: ["203.0.113.31", "203.0.113.32"], scope: 16),
        // Topology overrides GeoIP: 10.2.7.0/24 is NA by GeoIP but the office region says fra.
        Case(client: "10.2.7.1", expect: ["192.0.2.11", "192.0.2.12"], scope: 24),
        // Unknown clients get the default order; 7 bits tell 8.0.0.0/7 apart from 10.x.
        Case(client: "8.8.8.8", expect: ["192.0.2.11", "192.0.2.12"], scope: 7),
        // IPv6 clients and AAAA answers.
        Case(client: "2001:db8:3::5", expect: ["203.0.113.31", "203.0.113.32"], scope: 48),
        Case(client: "2001:db8:1::5", qtype: RRType.aaaa, expect: ["2001:db8:f::11"], scope: 48),
        Case(client: "2001:db8:2:7::1", expect: ["192.0.2.11", "192.0.2.12"], scope: 64),
        // Failover: a site with every member down is skipped.
        Case(client: "10.1.0.9", overrides: "www/fra/* DOWN", expect: ["198.51.100.21", "198.51.100.22"], scope: 16),
        // One member down: the site stays (min_up 1) and answers the healthy one.
        Case(client: "10.1.0.9", overrides: "www/fra/192.0.2.11 DOWN", expect: ["192.0.2.12"], scope: 16),
        // Drain: healthy for min_up, but not answered.
        Case(client: "10.1.0.9", overrides: "www/fra/192.0.2.12 DRAIN", expect: ["192.0.2.11"], scope: 16),
        // min_up 100%: one of two down makes nrt unusable.
        Case(client: "10.3.0.9", overrides: "www/nrt/203.0.113.31 DOWN", expect: ["198.51.100.21", "198.51.100.22"], scope: 16),
        // The backup site only when every other site is unusable.
        Case(client: "10.3.0.9", overrides: "www/fra/* DOWN\nwww/iad/* DOWN\nwww/nrt/* DOWN", expect: ["192.0.2.99"], scope: 16),
        Case(client: "10.1.0.9", overrides: "www/fra/* DOWN\nwww/iad/* DOWN", expect: ["203.0.113.31", "203.0.113.32"], scope: 16),
        Case(client: "10.3.0.9", overrides: "www/iad/* DOWN\nwww/nrt/* DOWN", expect: ["192.0.2.11", "192.0.2.12"], scope: 16),
        // Fail-open (default): everything down answers every member.
        Case(client: "10.1.0.9", overrides: "www/* DOWN", expect: ["192.0.2.11", "192.0.2.12", "198.51.100.21", "198.51.100.22", "203.0.113.31", "203.0.113.32", "192.0.2.99"], scope: 16),
        // The last matching override wins.
        Case(client: "10.1.0.9", overrides: "www/* DOWN\nwww/fra/192.0.2.12 UP", expect: ["192.0.2.12"], scope: 16),
    ]

    @Test(arguments: cases)
    func selects(_ c: Case) throws {
        let rt = try runtime(threeSites, overrides: c.overrides)
        let a = ask(rt, "www", c.client, qtype: c.qtype)
        #expect(a.addresses == c.expect)
        #expect(a.outcome.scope == c.scope)
    }

    @Test func degradedTTL() throws {
        #expect(ask(try runtime(threeSites), "www", "10.1.0.9").ttl == 30)
        #expect(ask(try runtime(threeSites, overrides: "www/nrt/203.0.113.31 DOWN"), "www", "10.1.0.9").ttl == 5)
        // Drain is maintenance, not a failure.
        #expect(ask(try runtime(threeSites, overrides: "www/nrt/203.0.113.31 DRAIN"), "www", "10.1.0.9").ttl == 30)
    }

    static let nearYAML = """
        pools:
          near:
            names: [near.example.test.]
            sites:
              fra: {location: [50.1, 8.7], members: [192.0.2.11]}
              iad: {location: [39.0, -77.5], members: [198.51.100.21]}
              nrt: {location: [35.7, 139.7], members: [203.0.113.31]}
            order: {nearest: true}
        """

    @Test func nearestOrdersByDistance() throws {
        let rt = try runtime(Self.nearYAML)
        #expect(ask(rt, "near", "10.7.0.1").addresses == ["192.0.2.11"])  // London
        #expect(ask(rt, "near", "10.4.0.1").addresses == ["198.51.100.21"])  // Sao Paulo: Ashburn is nearer than Frankfurt
        #expect(ask(rt, "near", "10.5.0.1").addresses == ["203.0.113.31"])  // Sydney
        #expect(ask(rt, "near", "10.6.0.1").addresses == ["198.51.100.21"])  // Mountain View
        let failover = try runtime(Self.nearYAML, overrides: "near/nrt/* DOWN")
        // Sydney: Tokyo is down; Ashburn (about 15,700 km) is nearer than Frankfurt (about 16,500 km).
        #expect(ask(failover, "near", "10.5.0.1").addresses == ["198.51.100.21"])
    }

    @Test func clientIndependentPoolsHaveScopeZero() throws {
        let rt = try runtime("""
            pools:
              plain:
                names: [plain.example.test.]
                sites: {a: {members: [192.0.2.1]}, b: {members: [192.0.2.2]}}
            """)
        let a = ask(rt, "plain", "10.1.0.1")
        #expect(a.addresses == ["192.0.2.1"] && a.outcome.scope == 0)
    }
}

@Suite("All-down policies")
struct AllDownTests {
    static func pools(_ policy: String) -> String {
        """
        pools:
          p:
            names: [p.example.test.]
            when_all_down: \(policy)
            sites: {a: {members: [192.0.2.1, "2001:db8::1"]}}
          other:
            names: [other.example.test.]
            sites: {b: {members: [198.51.100.9]}}
        """
    }

    @Test func failOpen() throws {
        let a = ask(try runtime(Self.pools("fail-open"), overrides: "p/* DOWN"), "p", "10.1.0.1")
        #expect(a.addresses == ["192.0.2.1"] && a.ttl == 10)
    }

    @Test func nodata() throws {
        #expect(ask(try runtime(Self.pools("nodata"), overrides: "p/* DOWN"), "p", "10.1.0.1").outcome.answer == .nodata)
    }

    @Test func fallbackPool() throws {
        #expect(ask(try runtime(Self.pools("{fallback: other}"), overrides: "p/* DOWN"), "p", "10.1.0.1").addresses == ["198.51.100.9"])
        // A fallback that is down too fails open in its own way.
        #expect(ask(try runtime(Self.pools("{fallback: other}"), overrides: "p/* DOWN\nother/* DOWN"), "p", "10.1.0.1").addresses == ["198.51.100.9"])
    }

    @Test func staticAddresses() throws {
        let rt = try runtime(Self.pools("{addresses: [203.0.113.200, \"2001:db8::200\"]}"), overrides: "p/* DRAIN")
        #expect(ask(rt, "p", "10.1.0.1").addresses == ["203.0.113.200"])
        #expect(ask(rt, "p", "10.1.0.1", qtype: RRType.aaaa).addresses == ["2001:db8::200"])
    }
}

@Suite("Direct-to-node selection")
struct DirectTests {
    static func nodes(_ n: Int, method: String, maxAnswers: Int = 2, weights: (Int) -> Int = { _ in 100 }) -> String {
        var s = """
            pools:
              app:
                names: [app.example.test.]
                mode: direct
                method: \(method)
                max_answers: \(maxAnswers)
                members:

            """
        for i in 0..<n { s += "      - {name: n\(i), address: 10.\(100 + i / 65536).\((i / 256) % 256).\(i % 256), weight: \(weights(i))}\n" }
        return s
    }

    @Test func weightedShuffleFollowsWeights() throws {
        let rt = try runtime(Self.nodes(2, method: "weighted-shuffle", maxAnswers: 1, weights: { $0 == 0 ? 300 : 100 }))
        let buffer = MessageBuffer(seed: 12345)
        var first = 0
        let draws = 20_000
        for _ in 0..<draws where ask(rt, "app", "10.1.0.1", buffer: buffer).addresses == ["10.100.0.0"] { first += 1 }
        let share = Double(first) / Double(draws)
        #expect(abs(share - 0.75) < 0.02, "share \(share)")
    }

    @Test func weightedShuffleGivesDistinctNodes() throws {
        let rt = try runtime(Self.nodes(5, method: "weighted-shuffle", maxAnswers: 3))
        let buffer = MessageBuffer(seed: 1)
        for _ in 0..<500 {
            let a = ask(rt, "app", "10.1.0.1", buffer: buffer).addresses
            #expect(a.count == 3 && Set(a).count == 3)
        }
        // Asking for more than there are answers all of them.
        #expect(ask(try runtime(Self.nodes(2, method: "weighted-shuffle", maxAnswers: 5)), "app", "10.1.0.1").addresses.count == 2)
    }

    @Test func downAndDrainedNodesAreNotAnswered() throws {
        let rt = try runtime(Self.nodes(3, method: "weighted-shuffle", maxAnswers: 3), overrides: "app/*/n0 DOWN\napp/*/n1 DRAIN")
        #expect(ask(rt, "app", "10.1.0.1").addresses == ["10.100.0.2"])
        // A 0% weight factor takes a node out of answers without marking it down.
        let zero = try runtime(Self.nodes(3, method: "weighted-shuffle", maxAnswers: 3), overrides: "app/*/n2 UP 0%")
        #expect(Set(ask(zero, "app", "10.1.0.1").addresses) == ["10.100.0.0", "10.100.0.1"])
    }

    @Test func consistentHashIsStableAcrossInstances() throws {
        let a = try runtime(Self.nodes(20, method: "consistent-hash"))
        let b = try runtime(Self.nodes(20, method: "consistent-hash"))
        for i in 0..<200 {
            let client = "10.\(i % 7).\(i).9"
            let x = ask(a, "app", client)
            #expect(x.addresses == ask(b, "app", client).addresses)
            #expect(x.addresses.count == 2 && Set(x.addresses).count == 2)
            // Same /24, same nodes.
            #expect(x.addresses == ask(a, "app", "10.\(i % 7).\(i).200").addresses)
            #expect(x.outcome.scope == 24)
        }
    }

    @Test func removingOneNodeMovesAboutOneNth() throws {
        let n = 50
        let all = try runtime(Self.nodes(n, method: "consistent-hash", maxAnswers: 1))
        let less = try runtime(Self.nodes(n, method: "consistent-hash", maxAnswers: 1), overrides: "app/*/n17 DOWN")
        var moved = 0
        var onRemoved = 0
        let subnets = 10_000
        for i in 0..<subnets {
            let client = "11.\(i / 256).\(i % 256).1"
            let before = ask(all, "app", client).addresses
            let after = ask(less, "app", client).addresses
            if before == ["10.100.0.17"] { onRemoved += 1 }
            if before != after { moved += 1 }
        }
        // Exactly the removed node's clients move, and they are about 1/N of all.
        #expect(moved == onRemoved, "moved \(moved) of \(subnets), \(onRemoved) were on the removed node")
        #expect(Double(moved) / Double(subnets) > 0.5 / Double(n) && Double(moved) / Double(subnets) < 2.0 / Double(n))
    }

    @Test func consistentHashHonoursWeights() throws {
        let rt = try runtime(Self.nodes(2, method: "consistent-hash", maxAnswers: 1, weights: { $0 == 0 ? 300 : 100 }))
        var first = 0
        for i in 0..<8000 where ask(rt, "app", "12.\(i / 256).\(i % 256).1").addresses == ["10.100.0.0"] { first += 1 }
        #expect(abs(Double(first) / 8000 - 0.75) < 0.05)
    }

    @Test func siteAffinityPrefersTheClientsSite() throws {
        let rt = try runtime("""
            pools:
              app:
                names: [app.example.test.]
                mode: direct
                max_answers: 3
                site_affinity: true
                sites:
                  fra: {members: [192.0.2.21, 192.0.2.22]}
                  iad: {members: [198.51.100.31, 198.51.100.32]}
                order:
                  geo: {continent:EU: [fra, iad], continent:NA: [iad, fra]}
            """)
        let eu = ask(rt, "app", "10.1.0.1").addresses
        #expect(Set(eu.prefix(2)) == ["192.0.2.21", "192.0.2.22"] && eu.count == 3 && eu[2].hasPrefix("198.51.100."))
        let na = ask(rt, "app", "10.2.0.1").addresses
        #expect(Set(na.prefix(2)) == ["198.51.100.31", "198.51.100.32"])
    }

    @Test func tenThousandNodes() throws {
        let rt = try runtime(Self.nodes(10_000, method: "consistent-hash", maxAnswers: 2))
        let a = ask(rt, "app", "10.1.2.3")
        #expect(a.addresses.count == 2)
        let s = try runtime(Self.nodes(10_000, method: "weighted-shuffle", maxAnswers: 4))
        #expect(Set(ask(s, "app", "10.1.2.3").addresses).count == 4)
    }
}

@Suite("Active-active selection")
struct ActiveActiveTests {
    static let yaml = """
        regions:
          office: [172.16.0.0/16]
        pools:
          api:
            names: [api.example.test.]
            mode: active-active
            sites:
              one: {weight: 3, members: [192.0.2.41, 192.0.2.42]}
              two: {weight: 1, members: [198.51.100.41, 198.51.100.42]}
            order:
              topology: {office: [two]}
        """

    @Test func spreadsByWeight() throws {
        let rt = try runtime(Self.yaml)
        let buffer = MessageBuffer(seed: 99)
        var one = 0
        for _ in 0..<10_000 where ask(rt, "api", "10.1.0.1", buffer: buffer).addresses.first?.hasPrefix("192.0.2.") == true { one += 1 }
        #expect(abs(Double(one) / 10_000 - 0.75) < 0.02)
    }

    @Test func capacityFollowsHealth() throws {
        // Half of site one down: 3 x 1/2 against 1 -> 60%.
        let rt = try runtime(Self.yaml, overrides: "api/one/192.0.2.42 DOWN")
        let buffer = MessageBuffer(seed: 5)
        var one = 0
        for _ in 0..<10_000 where ask(rt, "api", "10.1.0.1", buffer: buffer).addresses == ["192.0.2.41"] { one += 1 }
        #expect(abs(Double(one) / 10_000 - 0.6) < 0.02)
    }

    @Test func topologyPreferenceAndSpillover() throws {
        let rt = try runtime(Self.yaml)
        for _ in 0..<50 { #expect(ask(rt, "api", "172.16.3.4").addresses == ["198.51.100.41", "198.51.100.42"]) }
        let down = try runtime(Self.yaml, overrides: "api/two/* DOWN")
        #expect(ask(down, "api", "172.16.3.4").addresses == ["192.0.2.41", "192.0.2.42"])
    }
}
