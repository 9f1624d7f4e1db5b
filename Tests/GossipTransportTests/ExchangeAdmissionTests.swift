@testable import GossipTransport
import Testing

@Suite("Exchange listener admission")
struct ExchangeAdmissionTests {
    @Test func peersHaveTheirOwnShare() {
        var a = ExchangeAdmission(peers: ["127.0.1.1", "::1"])
        // Every other source together fills its pool...
        var others: [ExchangeAdmission.Source] = []
        for i in 0..<20 { if let s = a.admit("192.0.2.\(i)") { others.append(s) } }
        #expect(others.count == ExchangeAdmission.others)
        // ...and the peers still get theirs, whatever the text form of their address.
        for _ in 0..<ExchangeAdmission.perPeer { #expect(a.admit("127.0.1.1") == .peer("127.0.1.1")) }
        #expect(a.admit("127.0.1.1") == nil)
        #expect(a.admit("0:0:0::1") == .peer("::1"))
        // A closed connection gives its slot back.
        a.release(others[0])
        #expect(a.admit("198.51.100.1") != nil)
    }

    @Test func oneOtherSourceGetsAFewAndIPv6CountsByThe64() {
        var a = ExchangeAdmission()
        #expect(a.admit("192.0.2.1") != nil)
        #expect(a.admit("192.0.2.1") != nil)
        #expect(a.admit("192.0.2.1") == nil)
        #expect(a.admit("2001:db8:1:2::1") == .other("2001:db8:1:2::/64"))
        #expect(a.admit("2001:db8:1:2:ffff::9") != nil)
        #expect(a.admit("2001:db8:1:2:aaaa::7") == nil)
        #expect(a.admit("2001:db8:1:3::1") != nil)
        #expect(a.held == 5)
    }

    @Test func framesFromOthersAreSmall() {
        #expect(ExchangeAdmission.frameLimit(.other("x")) == 64 * 1024)
        #expect(ExchangeAdmission.frameLimit(.peer("x")) > 16 * 1024 * 1024)
    }

    @Test func theClusterFileDecidesWhoIsAPeer() {
        var a = ExchangeAdmission(peers: ["127.0.1.1"])
        a.trust(["127.0.1.2"])
        #expect(a.admit("127.0.1.1") == .other("127.0.1.1"))
        #expect(a.admit("127.0.1.2") == .peer("127.0.1.2"))
    }
}
