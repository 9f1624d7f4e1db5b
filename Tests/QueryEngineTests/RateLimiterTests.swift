import DNSSEC
import DNSWire
import GeoTopology
import Testing
@testable import QueryEngine
import ZoneStore

@Suite("Response rate limiting")
struct RateLimiterTests {
    let client = IPAddress("192.0.2.10")!
    let www = RateClass(kind: .answer, name: RateClass.name(zone: 0, node: 7))

    @Test func tokensPerSecondThenSlipEveryNth() {
        var l = RateLimiter(config: RateLimitConfig(responsesPerSecond: 5, slip: 2))
        let k = l.key(client: client, rateClass: www)
        let first = (0..<11).map { _ in l.decide(key: k, now: 100) }
        #expect(first == [.send, .send, .send, .send, .send, .drop, .slip, .drop, .slip, .drop, .slip])
        // The next second refills, without saving up unused seconds.
        #expect((0..<6).map { _ in l.decide(key: k, now: 101) } == [.send, .send, .send, .send, .send, .drop])
        #expect((0..<6).map { _ in l.decide(key: k, now: 200) }.filter { $0 == .send }.count == 5)
    }

    @Test func slipZeroDropsAllAndOneTruncatesAll() {
        var drop = RateLimiter(config: RateLimitConfig(responsesPerSecond: 1, slip: 0))
        var tc = RateLimiter(config: RateLimitConfig(responsesPerSecond: 1, slip: 1))
        let k = drop.key(client: client, rateClass: www)
        let k2 = tc.key(client: client, rateClass: www)
        #expect((0..<4).map { _ in drop.decide(key: k, now: 1) } == [.send, .drop, .drop, .drop])
        #expect((0..<4).map { _ in tc.decide(key: k2, now: 1) } == [.send, .slip, .slip, .slip])
    }

    @Test func keysSharePerPrefixAndClass() {
        let l = RateLimiter(config: RateLimitConfig(responsesPerSecond: 5))
        func key(_ c: IPAddress, _ kind: ResponseKind, _ zone: Int, _ node: Int) -> UInt64 {
            l.key(client: c, rateClass: RateClass(kind: kind, name: RateClass.name(zone: zone, node: node)))
        }
        #expect(key(client, .answer, 0, 1) == key(IPAddress("192.0.2.200")!, .answer, 0, 1))
        #expect(key(client, .answer, 0, 1) != key(IPAddress("192.0.3.10")!, .answer, 0, 1))
        #expect(key(client, .answer, 0, 1) != key(client, .answer, 0, 2))
        #expect(key(client, .answer, 0, 1) != key(client, .answer, 1, 1))
        #expect(key(client, .answer, 0, 1) != key(client, .nodata, 0, 1))
        #expect(key(client, .wildcard, 0, 1) != key(client, .answer, 0, 1))
        // Errors: one budget per prefix whatever the name.
        #expect(key(IPAddress("2001:db8:0:1::1")!, .error, 0, 1) == key(IPAddress("2001:db8:0:ff::9")!, .error, 3, 4))
        // 0.0.0.0/24 and ::/56 are different clients.
        #expect(key(IPAddress("0.0.0.1")!, .error, 0, 0) != key(IPAddress("::1")!, .error, 0, 0))
        // Another limiter draws another secret: nobody can compute the keys offline.
        #expect(RateLimiter(config: l.config).key(client: client, rateClass: www) != l.key(client: client, rateClass: www))
    }

    @Test func wordSipHashIsSipHash24() {
        let key = (0..<16).map(UInt8.init)
        var input = SipHash.Input()
        for b in 0..<24 { input.append(UInt8(b)) }
        func le(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(at + $1) << UInt64(8 * $1) } }
        #expect(SipHash.hash24(k0: le(0), k1: le(8), le(0), le(8), le(16)) == SipHash.hash24(key: key, input))
    }

    /// Keys that land in one set, found by trying names (the test knows the secret; an
    /// attacker does not).
    func colliding(_ l: RateLimiter, count: Int) -> [UInt64] {
        let first = l.key(client: client, rateClass: www)
        let set = (first >> 32) & 255
        var out = [first]
        var node = 0
        while out.count < count {
            node += 1
            let k = l.key(client: client, rateClass: RateClass(kind: .answer, name: RateClass.name(zone: 1, node: node)))
            if (k >> 32) & 255 == set { out.append(k) }
        }
        return out
    }

    @Test func alternatingCollidingKeysNeverMintTokens() {
        // 1024 buckets: 256 sets of 4.
        var l = RateLimiter(config: RateLimitConfig(responsesPerSecond: 10, slip: 0, tableSize: 1024), secret: (1, 2))
        for n in [2, 4, 5, 8] {
            let keys = colliding(l, count: n)
            let second = UInt32(1000 + n)
            var sent = [Int](repeating: 0, count: n)
            for round in 0..<1000 {
                let i = round % n
                if l.decide(key: keys[i], now: second) == .send { sent[i] += 1 }
            }
            // The victim (keys[0]) never gets more than the set's budget in a second, and the
            // set as a whole no more than its four buckets' worth; before, a key that differed
            // reset the bucket to full, and 1,000 of 1,000 went out.
            #expect(sent[0] <= 10 * RateLimiter.ways, "\(n) keys: \(sent)")
            #expect(sent.reduce(0, +) <= 10 * RateLimiter.ways, "\(n) keys: \(sent)")
            if n <= RateLimiter.ways { #expect(sent == [Int](repeating: 10, count: n)) }
        }
    }

    @Test func aBucketIdleThisSecondIsTakenAtAFullBudget() {
        var l = RateLimiter(config: RateLimitConfig(responsesPerSecond: 3, slip: 0, tableSize: 1024), secret: (5, 6))
        let keys = colliding(l, count: 8)
        for k in keys[0..<4] { _ = (0..<5).map { _ in l.decide(key: k, now: 1) } }
        // A second later, new keys in the same set start with a full budget.
        for k in keys[4..<8] { #expect((0..<4).map { _ in l.decide(key: k, now: 2) } == [.send, .send, .send, .drop]) }
    }

    @Test func theWholeTableIsUsed() {
        var l = RateLimiter(config: RateLimitConfig(responsesPerSecond: 3, tableSize: 1024))
        for i in 0..<20_000 {
            let c = IPAddress(family: .v4, bytes: SIMD16(UInt8(i >> 8), UInt8(i & 0xFF), UInt8(i % 7), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
            _ = l.decide(key: l.key(client: c, rateClass: www), now: 9)
        }
        // Every bucket of every set holds a key (the key's low bit forced to 1 left half unused).
        #expect(l.used == 1024)
    }

    @Test func offMeansATinyTable() {
        let l = RateLimiter(config: RateLimitConfig())
        #expect(!l.config.enabled)
        #expect(l.used == 0)
    }
}

/// The responder gives every response its class (what Knot's RRL classes key by).
@Suite("Rate-limiting classes of responses")
struct RateClassTests {
    let keys = [ZoneKey(zone: Name.parse("example.test.")!, flags: 257, key: .generate(.ed25519))]

    func rateClass(_ name: String, _ type: UInt16 = RRType.a, signed: Bool = false) -> RateClass {
        let s = signed ? Snapshot(zones: fixtureZones, keys: keys, now: SigningTests.now) : Snapshot(zones: fixtureZones)
        let scratch = QueryScratch()
        scratch.buffer.nowSeconds = SigningTests.now
        let q = makeQuery(name, type, opt: OPTSpec(dnssecOK: signed))
        return q.withUnsafeBytes { QueryProcessor.respond(to: $0, transport: .udp, snapshot: s, scratch: scratch) }.rateClass
    }

    @Test(arguments: [false, true])
    func denialsShareTheZone(signed: Bool) {
        let a = rateClass("nope-1.example.test.", signed: signed)
        let b = rateClass("x.nope-2.example.test.", RRType.txt, signed: signed)
        // Unsigned NXDOMAIN and signed NOERROR/NXNAME alike.
        #expect(a.kind == .nxdomain)
        #expect(a == b)
        #expect(a != rateClass("nope.sub.example.test.", signed: signed))
    }

    @Test func wildcardAnswersShareTheWildcard() {
        let a = rateClass("one.wild.example.test.")
        #expect(a.kind == .wildcard)
        #expect(a == rateClass("two.three.wild.example.test."))
        // NODATA under the wildcard too.
        #expect(rateClass("four.wild.example.test.", RRType.mx) == RateClass(kind: .wildcard, name: a.name))
        #expect(rateClass("exists.wild.example.test.").kind == .answer)
    }

    @Test func referralsShareTheCut() {
        let a = rateClass("host.deleg.example.test.")
        #expect(a.kind == .referral)
        #expect(a == rateClass("other.deep.deleg.example.test."))
    }

    @Test func answersAndNodataByTheNameAsked() {
        let www = rateClass("www.example.test.")
        #expect(www.kind == .answer)
        #expect(rateClass("WWW.example.test.") == www)
        #expect(rateClass("www.example.test.", RRType.mx) == RateClass(kind: .nodata, name: www.name))
        #expect(rateClass("mail.example.test.") != www)
        #expect(rateClass("www.not-served.example.") == .error)
    }
}
