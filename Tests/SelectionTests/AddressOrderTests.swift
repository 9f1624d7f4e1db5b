import Health
import DNSWire
import GeoTopology
import PoolConfig
import Selection
import Testing

/// The first address of a site's answer follows the members' effective weights: most clients
/// use the first address, so this is where weights and agent feedback reach them.
@Suite("Address order inside a site")
struct AddressOrderTests {
    func pool(order: String = "weighted") -> String {
        """
        pools:
          api:
            names: [api.example.test.]
            address_order: \(order)
            sites:
              fra:
                members:
                  - {name: a, address: 192.0.2.41, weight: 100}
                  - {name: b, address: 192.0.2.42, weight: 100}
                  - {name: c, address: 192.0.2.43, weight: 50}
              iad: {members: [198.51.100.1]}
            order: {default: [fra, iad]}

        """
    }

    /// Pearson's chi-squared statistic of observed counts against expected shares.
    func chiSquared(_ counts: [String: Int], _ expected: [String: Double], total: Int) -> Double {
        expected.reduce(0) { sum, e in
            let exp = e.value * Double(total)
            let obs = Double(counts[e.key] ?? 0)
            return sum + (obs - exp) * (obs - exp) / exp
        }
    }

    func firstCounts(_ rt: PoolsRuntime, n: Int, answers: Int = 3, client: (Int) -> String) -> [String: Int] {
        let buffer = MessageBuffer(seed: 12345)
        var counts: [String: Int] = [:]
        for i in 0..<n {
            let a = ask(rt, "api", client(i), buffer: buffer)
            #expect(a.addresses.count == answers && Set(a.addresses).count == answers)
            counts[a.addresses[0], default: 0] += 1
        }
        return counts
    }

    @Test func firstAddressSharesFollowWeights() throws {
        let rt = try runtime(pool())
        let n = 20_000
        let counts = firstCounts(rt, n: n) { _ in "192.0.2.1" }
        let chi = chiSquared(counts, ["192.0.2.41": 0.4, "192.0.2.42": 0.4, "192.0.2.43": 0.2], total: n)
        // 2 degrees of freedom: 13.82 is the 0.1% critical value. A fixed order gives ~30,000.
        #expect(chi < 13.82, "chi-squared \(chi), counts \(counts)")
    }

    @Test func agentAndAdminFactorsMoveTheShares() throws {
        // b at half weight through an admin override (the agent's factor folds the same way).
        let rt = try runtime(pool(), overrides: "api/fra/b UP 50%\napi/fra/c DRAIN\n")
        let n = 20_000
        let counts = firstCounts(rt, n: n, answers: 2) { _ in "192.0.2.1" }
        // c drains: it gets no answers at all; a:b = 100:50.
        #expect(counts["192.0.2.43"] == nil)
        let chi = chiSquared(counts, ["192.0.2.41": 2.0 / 3, "192.0.2.42": 1.0 / 3], total: n)
        #expect(chi < 10.83, "chi-squared \(chi), counts \(counts)")
    }

    @Test func stickyGivesEachSubnetOneFirstAddressAndSplitsSubnetsByWeight() throws {
        let rt = try runtime(pool(order: "sticky"))
        var firsts: [String: Int] = [:]
        for i in 0..<4000 {
            let client = "10.\(i / 256).\(i % 256).7"
            let a = ask(rt, "api", client)
            let b = ask(rt, "api", "10.\(i / 256).\(i % 256).200", buffer: MessageBuffer(seed: UInt64(i) + 1))
            #expect(a.addresses == b.addresses)
            #expect(a.outcome.scope == 24)
            firsts[a.addresses[0], default: 0] += 1
        }
        let chi = chiSquared(firsts, ["192.0.2.41": 0.4, "192.0.2.42": 0.4, "192.0.2.43": 0.2], total: 4000)
        #expect(chi < 13.82, "chi-squared \(chi), counts \(firsts)")
    }

    @Test func fixedKeepsThePoolFileOrder() throws {
        let rt = try runtime(pool(order: "fixed"))
        for i in 0..<50 { #expect(ask(rt, "api", "192.0.2.\(i)", buffer: MessageBuffer(seed: UInt64(i) + 1)).addresses == ["192.0.2.41", "192.0.2.42", "192.0.2.43"]) }
    }

    @Test func explainShowsTheShares() throws {
        let rt = try runtime(pool())
        let (_, lines) = Selector.explain(pools: rt, pool: 0, qtype: RRType.a, client: IPAddress("192.0.2.1")!, buffer: MessageBuffer(seed: 1))
        #expect(lines.contains { $0.contains("first-address shares by effective weight: 192.0.2.41 40.0%, 192.0.2.42 40.0%, 192.0.2.43 20.0%") }, "\(lines)")
    }

    @Test func badAddressOrderIsAFileLineError() {
        let (set, diags) = PoolFileParser.parse(files: [("/tmp/p.yaml", pool(order: "random"))])
        #expect(set == nil)
        #expect(diags.first?.description.hasPrefix("/tmp/p.yaml:4: address_order must be one of weighted, sticky, fixed") == true, "\(diags)")
    }
}
