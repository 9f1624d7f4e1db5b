import DNSWire
import GeoTopology
import Testing
@testable import QueryEngine

@Suite("Response rate limiting")
struct RateLimiterTests {
    let client = IPAddress("192.0.2.10")!

    @Test func tokensPerSecondThenSlipEveryNth() {
        var l = RateLimiter(config: RateLimitConfig(responsesPerSecond: 5, slip: 2))
        let k = l.key(client: client, kind: .answer, nameHash: 42)
        let first = (0..<11).map { _ in l.decide(key: k, now: 100) }
        #expect(first == [.send, .send, .send, .send, .send, .drop, .slip, .drop, .slip, .drop, .slip])
        // The next second refills, without saving up unused seconds.
        #expect((0..<6).map { _ in l.decide(key: k, now: 101) } == [.send, .send, .send, .send, .send, .drop])
        #expect((0..<6).map { _ in l.decide(key: k, now: 200) }.filter { $0 == .send }.count == 5)
    }

    @Test func slipZeroDropsAllAndOneTruncatesAll() {
        var drop = RateLimiter(config: RateLimitConfig(responsesPerSecond: 1, slip: 0))
        var tc = RateLimiter(config: RateLimitConfig(responsesPerSecond: 1, slip: 1))
        let k = drop.key(client: client, kind: .answer, nameHash: 1)
        #expect((0..<4).map { _ in drop.decide(key: k, now: 1) } == [.send, .drop, .drop, .drop])
        #expect((0..<4).map { _ in tc.decide(key: k, now: 1) } == [.send, .slip, .slip, .slip])
    }

    @Test func keysSharePerPrefixAndKind() {
        let l = RateLimiter(config: RateLimitConfig(responsesPerSecond: 5))
        #expect(l.key(client: client, kind: .answer, nameHash: 1) == l.key(client: IPAddress("192.0.2.200")!, kind: .answer, nameHash: 1))
        #expect(l.key(client: client, kind: .answer, nameHash: 1) != l.key(client: IPAddress("192.0.3.10")!, kind: .answer, nameHash: 1))
        #expect(l.key(client: client, kind: .answer, nameHash: 1) != l.key(client: client, kind: .answer, nameHash: 2))
        // NXDOMAIN and errors: one budget per prefix whatever the name (random-subdomain floods).
        #expect(l.key(client: client, kind: .nxdomain, nameHash: 1) == l.key(client: client, kind: .nxdomain, nameHash: 2))
        #expect(l.key(client: IPAddress("2001:db8:0:1::1")!, kind: .error, nameHash: 0) == l.key(client: IPAddress("2001:db8:0:ff::9")!, kind: .error, nameHash: 0))
    }

    @Test func offMeansATinyTable() {
        let l = RateLimiter(config: RateLimitConfig())
        #expect(!l.config.enabled)
    }

    @Test func classifiesResponses() {
        func response(rcode: UInt8, aa: Bool, answers: UInt8, name: [UInt8]) -> [UInt8] {
            [0, 1, 0x80 | (aa ? 0x04 : 0), rcode, 0, 1, 0, answers, 0, 0, 0, 0] + name + [0, 1, 0, 1]
        }
        let www: [UInt8] = [3, 0x77, 0x77, 0x77, 4, 0x74, 0x65, 0x73, 0x74, 0]
        let WWW: [UInt8] = [3, 0x57, 0x57, 0x57, 4, 0x74, 0x65, 0x73, 0x74, 0]
        func c(_ b: [UInt8]) -> (kind: ResponseKind, nameHash: UInt64, questionEnd: Int)? { b.withUnsafeBytes { RateLimiter.classify($0) } }
        #expect(c(response(rcode: 0, aa: true, answers: 1, name: www))?.kind == .answer)
        #expect(c(response(rcode: 0, aa: true, answers: 0, name: www))?.kind == .nodata)
        #expect(c(response(rcode: 0, aa: false, answers: 0, name: www))?.kind == .referral)
        #expect(c(response(rcode: 3, aa: true, answers: 0, name: www))?.kind == .nxdomain)
        #expect(c(response(rcode: 5, aa: false, answers: 0, name: www))?.kind == .error)
        #expect(c(response(rcode: 0, aa: true, answers: 1, name: www))?.nameHash == c(response(rcode: 0, aa: true, answers: 1, name: WWW))?.nameHash)
        #expect(c(response(rcode: 0, aa: true, answers: 1, name: www))?.questionEnd == 12 + www.count + 4)
        #expect(c([0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9, 1]) == nil)  // a cut name
    }
}
