import GeoTopology
import Health
import Testing
@testable import Control

/// Issue 20: latency measurements, kept by the book and spread by the group.
@Suite("Latency book and its spread")
struct LatencyTests {
    static let net = LatencyPrefix(v6: false, bits: 0xC63364)  // 198.51.100.0/24
    static let other = LatencyPrefix(v6: false, bits: 0xCB0071)  // 203.0.113.0/24

    @Test func samplesAverageAndOnlyNewsIsPublished() {
        var book = LatencyBook()
        for i in 0..<8 { book.record(LatencySample(prefix: Self.net, site: "ams", rttMs: i % 2 == 0 ? 38 : 42), now: Double(i)) }
        var rows = book.due(now: 10)
        #expect(rows.count == 1)
        #expect(abs(Double(rows[0].rttMicros) / 1000 - 40) < 1.5, "\(rows)")
        #expect(rows[0].samples == 8)
        // Within the dead band (2 ms and 10%): nothing to say, until the sample count doubles.
        book.record(LatencySample(prefix: Self.net, site: "ams", rttMs: 41), now: 11)
        #expect(book.due(now: 16).isEmpty)
        // A move past it is news.
        for i in 0..<30 { book.record(LatencySample(prefix: Self.net, site: "ams", rttMs: 90), now: 17 + Double(i) * 0.01) }
        rows = book.due(now: 22)
        #expect(rows.count == 1 && rows[0].rttMicros > 70_000, "\(rows)")
        // Not more often than publishEvery.
        book.record(LatencySample(prefix: Self.net, site: "iad", rttMs: 5), now: 22.5)
        #expect(book.due(now: 23).isEmpty)
        #expect(book.due(now: 27).count == 1)
    }

    /// Active probes go only to addresses that queried, busiest network first, each network at
    /// most once per `every`, and never faster than `perSecond` however many networks query.
    @Test func probesAimAtQueriedAddressesAtABoundedRate() {
        var s = LatencyProbePlan.Settings()
        s.perSecond = 2
        s.every = 300
        s.candidates = 4
        var plan = LatencyProbePlan(settings: s)
        var book = LatencyBook()
        let nets = (1...5).map { LatencyPrefix(v6: false, bits: 0x0A0000 | UInt64($0)) }
        let address = { (i: Int) in IPAddress("10.0.\(i).7")! }
        // Networks 1-4 queried (1 the most); network 5 only posted measurements (no address).
        for i in 0..<4 { book.seen(nets[i], count: Double(40 - 10 * i), now: 0, address: address(i + 1)) }
        book.record(LatencySample(prefix: nets[4], site: "ams", rttMs: 9), now: 0)
        book.seen(nets[4], count: 100, now: 0)
        var first = plan.due(book, now: 1)
        #expect(first.map(\.0) == [nets[0], nets[1]])
        #expect(first.map(\.1) == [address(1), address(2)])
        // Half a second on: one more (the third busiest queried network), then nothing new.
        first = plan.due(book, now: 1.5)
        #expect(first.map(\.0) == [nets[2]])
        #expect(plan.due(book, now: 3).isEmpty, "only the 4 busiest are candidates, each probed once per 300 s")
        // Network 4 (outside the top 4) is never probed; network 5 (the busiest) has no queried address.
        var probed: [LatencyPrefix] = []
        for t in stride(from: 4.0, to: 299, by: 1) { probed += plan.due(book, now: t).map(\.0) }
        #expect(probed.isEmpty)
        // After `every`, the same networks again.
        #expect(plan.due(book, now: 302).map(\.0) == [nets[0], nets[1]])
        // A flood of queried networks: still at most perSecond a second.
        var flood = LatencyBook()
        for i in 0..<1000 { flood.seen(LatencyPrefix(v6: false, bits: UInt64(i)), count: 1, now: 0, address: IPAddress("10.1.\(i % 250).1")!) }
        s.candidates = 1000
        var floodPlan = LatencyProbePlan(settings: s)
        let total = stride(from: 0.0, to: 60, by: 1).reduce(0) { $0 + floodPlan.due(flood, now: $1).count }
        #expect(total <= 2 * 60 + 2)
        #expect(total >= 2 * 59)
    }

    /// The group's latency rows share one octet budget per member: a member of 3 publishes
    /// up to 32 rows every 5 s, one of 1,000 about one row every 2 minutes.
    @Test func aMembersShareOfRowsShrinksWithTheGroup() {
        func published(members: Int, seconds: Int) -> Int {
            var book = LatencyBook()
            for i in 0..<2000 { book.record(LatencySample(prefix: LatencyPrefix(v6: false, bits: UInt64(i)), site: "ams", rttMs: 10), now: 0) }
            return stride(from: 0, to: seconds, by: 1).reduce(0) { $0 + book.due(now: Double($1), members: members).count }
        }
        #expect(published(members: 3, seconds: 60) == 12 * 32)
        let big = published(members: 1000, seconds: 600)
        let share = LatencyBook.groupRowsPerSecond(LatencyBook.Settings(), members: 1000) / 1000 * 600
        #expect(abs(Double(big) - share) <= 1, "\(big) rows against a share of \(share)")
        #expect(big >= 4 && big <= 7)
    }

    @Test func samplesDecayAndARowNobodyMeasuresIsWithdrawn() {
        var s = LatencyBook.Settings()
        s.halfLife = 60
        var book = LatencyBook(settings: s)
        book.record(LatencySample(prefix: Self.net, site: "ams", rttMs: 20), now: 0)
        #expect(book.due(now: 5).first?.samples == 1)
        // After two half-lives the one sample weighs 0.25: withdrawn (samples 0) and forgotten.
        let rows = book.due(now: 125)
        #expect(rows == [LatencyRow(prefix: Self.net, site: "ams", rttMicros: 0, samples: 0)])
        #expect(book.prefixCount == 0)
    }

    @Test func theNetworksKeptAreBoundedByQueryVolume() {
        var s = LatencyBook.Settings()
        s.maxPrefixes = 2
        var book = LatencyBook(settings: s)
        let nets = (1...3).map { LatencyPrefix(v6: false, bits: UInt64($0)) }
        book.seen(nets[0], count: 100, now: 0)
        book.seen(nets[1], count: 50, now: 0)
        book.record(LatencySample(prefix: nets[0], site: "ams", rttMs: 1), now: 0)
        book.record(LatencySample(prefix: nets[1], site: "ams", rttMs: 1), now: 0)
        // A network queried less than every kept one is not taken; one queried more evicts the least.
        book.record(LatencySample(prefix: nets[2], site: "ams", rttMs: 1), now: 0)
        #expect(book.prefixCount == 2)
        #expect(Set(book.due(now: 10).map(\.prefix)) == [nets[0], nets[1]])
        book.seen(nets[2], count: 500, now: 11)
        book.record(LatencySample(prefix: nets[2], site: "ams", rttMs: 1), now: 11)
        #expect(book.prefixCount == 2)
        #expect(Set(book.due(now: 20).map(\.prefix)) == [nets[2]])
        #expect(book.busiest(1, now: 20) == [nets[2]])
        // Bogus values are not taken.
        for bad in [-1.0, .nan, .infinity, 20_000] { book.record(LatencySample(prefix: nets[2], site: "ams", rttMs: bad), now: 21) }
        book.record(LatencySample(prefix: nets[2], site: "", rttMs: 3), now: 21)
        #expect(book.due(now: 30).isEmpty)
    }

    @Test func theLedgerCombinesObserversBySamples() throws {
        var ledger = Ledger()
        var clock = HybridClock()
        _ = ledger.recordLatency(observer: "ns1", boot: 1, rows: [LatencyRow(prefix: Self.net, site: "ams", rttMicros: 10_000, samples: 3)], clock: &clock, wallMillis: 1000)
        _ = ledger.recordLatency(observer: "ns2", boot: 1, rows: [LatencyRow(prefix: Self.net, site: "ams", rttMicros: 30_000, samples: 1)], clock: &clock, wallMillis: 1000)
        let cell = try #require(ledger.latencyTable(nowMillis: 2000).cells[Self.net]?["ams"])
        #expect(abs(cell.rttMs - 15) < 1e-9 && cell.samples == 4 && cell.observers == 2)
        // Too old: not counted.
        #expect(ledger.latencyTable(nowMillis: 1000 + Ledger.latencyMaxAgeMillis + 1).isEmpty)
        // A dead observer's entries go with its other results.
        ledger.forget(observer: "ns2")
        #expect(ledger.latencyTable(nowMillis: 2000).cells[Self.net]?["ams"]?.observers == 1)
        // Entries too old to count are pruned (they would fill the observer's bound), and the
        // same entry from a peer is not taken back.
        let old = try #require(ledger.entries().first { if case .latency = $0 { return true } else { return false } })
        let late = 1000 + Ledger.latencyMaxAgeMillis + 1
        #expect(ledger.pruneLatency(nowMillis: late) == 1)
        #expect(ledger.latencyCount == 0)
        #expect(try ledger.merge(old, nowMillis: late) == false)
        #expect(try ledger.merge(old, nowMillis: 2000) == true)
    }

    @Test func everyInstanceHoldsTheSameLatencyMap() {
        var sim = GroupSimulator(count: 5, members: ["www/ams/m1"], seed: 7)
        #expect(sim.run(for: 10, until: { $0.serving.count == 5 }) != nil)
        sim.measure(at: "n1", (0..<6).map { _ in LatencySample(prefix: Self.net, site: "ams", rttMs: 12) })
        sim.measure(at: "n2", (0..<6).map { _ in LatencySample(prefix: Self.net, site: "iad", rttMs: 48) })
        sim.measure(at: "n3", (0..<6).map { _ in LatencySample(prefix: Self.other, site: "iad", rttMs: 7) })
        let took = sim.run(for: 15, until: { s in
            s.serving.allSatisfy { n in
                let t = s.views[n]!.latency
                return t.cells[Self.net]?["ams"]?.samples == 6 && t.cells[Self.net]?["iad"]?.samples == 6 && t.cells[Self.other]?["iad"] != nil
            }
        })
        #expect(took != nil, "the latency map did not reach every instance")
        #expect(took.map { $0 < 8 } == true, "took \(took ?? -1) s (publishEvery 5 s + spread)")
        let maps = Set(sim.serving.map { "\(sim.views[$0]!.latency.cells.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.sorted { $0.key < $1.key })" })" })
        #expect(maps.count == 1, "\(maps)")
    }
}
