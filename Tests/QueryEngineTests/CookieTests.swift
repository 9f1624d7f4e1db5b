import DNSWire
import GeoTopology
import Testing
@testable import QueryEngine

@Suite("DNS Cookies (RFC 7873, RFC 9018)")
struct CookieTests {
    static func hex(_ s: String) -> [UInt8] {
        stride(from: 0, to: s.count, by: 2).map { i in
            UInt8(s[s.index(s.startIndex, offsetBy: i)..<s.index(s.startIndex, offsetBy: i + 2)], radix: 16)!
        }
    }

    let secret = CookieTests.hex("e5e973e5a6b2a43f48e7dc849e37bfcf")
    let clientCookie = CookieTests.hex("2464c4abcf10c957")
    let resolver = IPAddress("198.51.100.100")!
    /// RFC 9018 Appendix A.1: Wed Jun 5 10:53:05 UTC 2019.
    let when: UInt32 = 1_559_731_985

    @Test func sipHashReferenceVector() {
        // SipHash-2-4 paper, Appendix A: key 00..0f, message 00..0e.
        var input = SipHash.Input()
        for b in 0..<15 { input.append(UInt8(b)) }
        #expect(SipHash.hash24(key: (0..<16).map(UInt8.init), input) == 0xa129_ca61_49be_45e5)
    }

    func serverCookieWire(client: IPAddress, now: UInt32, config: CookieConfig) -> [UInt8] {
        let (head, hash) = clientCookie.withUnsafeBytes { ServerCookie.make($0, client: client, now: now, config: config) }
        var out: [UInt8] = []
        for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8((head >> UInt64(s)) & 0xFF)) }
        for s in stride(from: 0, through: 56, by: 8) { out.append(UInt8((hash >> UInt64(s)) & 0xFF)) }
        return out
    }

    @Test func rfc9018AppendixA1() {
        let config = CookieConfig(secrets: [secret])
        #expect(serverCookieWire(client: resolver, now: when, config: config) == CookieTests.hex("010000005cf79f111f8130c3eee29480"))
        let full = clientCookie + CookieTests.hex("010000005cf79f111f8130c3eee29480")
        full.withUnsafeBytes { c in
            #expect(ServerCookie.isValid(c, client: resolver, now: when + 100, config: config))
            #expect(!ServerCookie.isValid(c, client: IPAddress("198.51.100.101")!, now: when, config: config))  // another client
            #expect(!ServerCookie.isValid(c, client: resolver, now: when + 3601, config: config))  // too old
            #expect(!ServerCookie.isValid(c, client: resolver, now: when - 301, config: config))  // too far ahead
            // A rotation: the old secret second still validates.
            #expect(ServerCookie.isValid(c, client: resolver, now: when, config: CookieConfig(secrets: [CookieTests.hex("00112233445566778899aabbccddeeff"), secret])))
            #expect(!ServerCookie.isValid(c, client: resolver, now: when, config: CookieConfig(secrets: [CookieTests.hex("00112233445566778899aabbccddeeff")])))
        }
    }

    func run(_ cookie: [UInt8], now: UInt32, enabled: Bool = true) throws -> (DecodedMessage, QueryOutcome) {
        let snap = Snapshot(zones: fixtureZones, config: EngineConfig(cookies: CookieConfig(secrets: enabled ? [secret] : [])))
        let q = makeQuery("www.example.test.", RRType.a, opt: OPTSpec(options: [(EDNSOptionCode.cookie, cookie)]))
        let scratch = QueryScratch()
        let buffer = scratch.buffer
        buffer.nowSeconds = now
        let outcome = q.withUnsafeBytes { QueryProcessor.respond(to: $0, transport: .udp, snapshot: snap, scratch: scratch, client: resolver) }
        let r = try DecodedMessage.decode(Array(UnsafeRawBufferPointer(rebasing: buffer.storage[0..<outcome.length])))
        return (r, outcome)
    }

    func cookieOption(_ m: DecodedMessage) -> [UInt8]? {
        guard let opt = m.opt else { return nil }
        var i = 0
        while i + 4 <= opt.rdata.count {
            let code = UInt16(opt.rdata[i]) << 8 | UInt16(opt.rdata[i + 1])
            let len = Int(opt.rdata[i + 2]) << 8 | Int(opt.rdata[i + 3])
            if code == EDNSOptionCode.cookie { return Array(opt.rdata[(i + 4)..<(i + 4 + len)]) }
            i += 4 + len
        }
        return nil
    }

    @Test func clientCookieGetsAServerCookieThatThenValidates() throws {
        let (first, o1) = try run(clientCookie, now: when)
        #expect(first.rcode == RCode.noError && !first.answer.isEmpty && !o1.cookieValid)
        let cookie = try #require(cookieOption(first))
        #expect(cookie == clientCookie + CookieTests.hex("010000005cf79f111f8130c3eee29480"))
        let (second, o2) = try run(cookie, now: when + 60)
        #expect(second.rcode == RCode.noError && !second.answer.isEmpty && o2.cookieValid)
        #expect(cookieOption(second)?.prefix(8) == clientCookie[...])
    }

    @Test func badServerCookieGetsBADCOOKIEAndAFreshOne() throws {
        let forged = clientCookie + CookieTests.hex("010000005cf79f1100000000deadbeef")
        let (r, o) = try run(forged, now: when)
        #expect(r.rcode == RCode.badCookie && r.answer.isEmpty && !o.cookieValid)
        #expect(cookieOption(r) == clientCookie + CookieTests.hex("010000005cf79f111f8130c3eee29480"))
        // An hour and more later the good one is stale too.
        let stale = clientCookie + CookieTests.hex("010000005cf79f111f8130c3eee29480")
        #expect(try run(stale, now: when + 4000).0.rcode == RCode.badCookie)
    }

    @Test(arguments: [0, 5, 9, 12, 15, 41])
    func malformedCookieIsFORMERR(length: Int) throws {
        let (r, _) = try run([UInt8](repeating: 7, count: length), now: when)
        #expect(r.rcode == RCode.formErr)
    }

    /// With `--cookieless-udp-max`, a large UDP answer goes only to a client that proved its
    /// address with a valid server cookie; the others get TC=1 (and the cookie to come back with).
    @Test func cookielessLargeAnswersAreTruncated() throws {
        let config = CookieConfig(secrets: [secret], cookielessUDPLimit: 512)
        let snap = Snapshot(zones: fixtureZones, config: EngineConfig(maxUDPPayload: 4096, cookies: config))
        func ask(_ options: [(UInt16, [UInt8])]) throws -> DecodedMessage {
            let q = makeQuery("big.example.test.", RRType.txt, opt: OPTSpec(payload: 4096, options: options))
            let scratch = QueryScratch()
            let buffer = scratch.buffer
            buffer.nowSeconds = when
            let outcome = q.withUnsafeBytes { QueryProcessor.respond(to: $0, transport: .udp, snapshot: snap, scratch: scratch, client: resolver) }
            return try DecodedMessage.decode(Array(UnsafeRawBufferPointer(rebasing: buffer.storage[0..<outcome.length])))
        }
        let noCookie = try ask([])
        #expect(noCookie.tc && noCookie.answer.isEmpty)
        let first = try ask([(EDNSOptionCode.cookie, clientCookie)])
        #expect(first.tc)
        let cookie = try #require(cookieOption(first))
        let second = try ask([(EDNSOptionCode.cookie, cookie)])
        #expect(!second.tc && second.answer.count == 12)
    }

    @Test func offMeansNoCookieInTheAnswer() throws {
        let (r, _) = try run(clientCookie, now: when, enabled: false)
        #expect(r.rcode == RCode.noError && cookieOption(r) == nil)
    }

    @Test func secretFile() throws {
        let c = try CookieSecretFile.parse("# current\ne5e973e5a6b2a43f48e7dc849e37bfcf\n00112233445566778899AABBCCDDEEFF # old\n", file: "s")
        #expect(c.secrets.count == 2 && c.secrets[0] == secret)
        #expect(throws: CookieSecretFile.LoadError.self) { try CookieSecretFile.parse("abc\n", file: "s") }
        #expect(throws: CookieSecretFile.LoadError.self) { try CookieSecretFile.parse("", file: "s") }
    }
}
