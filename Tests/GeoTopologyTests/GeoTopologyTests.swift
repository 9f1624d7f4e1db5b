import Foundation
import Testing
@testable import GeoTopology

let geoData = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("GeoData/test.mmdb").path

@Suite("Addresses and prefixes")
struct AddressTests {
    @Test func parseAndFormat() {
        #expect(IPAddress("192.0.2.1")?.description == "192.0.2.1")
        #expect(IPAddress("2001:DB8::1")?.description == "2001:db8::1")
        #expect(IPAddress("300.1.1.1") == nil)
        #expect(IPAddress("10.1.2.3")!.truncated(to: 20).description == "10.1.0.0")
        #expect(IPAddress("2001:db8:ffff::1")!.truncated(to: 36).description == "2001:db8:f000::")
    }

    @Test func cidrs() {
        #expect(CIDR("10.1.0.0/16")!.contains(IPAddress("10.1.200.3")!))
        #expect(!CIDR("10.1.0.0/16")!.contains(IPAddress("10.2.0.1")!))
        #expect(!CIDR("10.1.0.0/16")!.contains(IPAddress("::a01:1")!))
        #expect(CIDR("10.1.2.0/8") == nil)  // host bits set
        #expect(CIDR("10.0.0.0/33") == nil)
        #expect(CIDR("192.0.2.7")?.prefix == 32)
        #expect(CIDR("2001:db8::/32")?.description == "2001:db8::/32")
    }
}

@Suite("Prefix trie")
struct PrefixTrieTests {
    @Test func longestPrefixWins() {
        var t = PrefixTrie()
        t.insert(CIDR("10.0.0.0/8")!, value: 1)
        t.insert(CIDR("10.1.0.0/16")!, value: 2)
        t.insert(CIDR("10.1.2.0/24")!, value: 3)
        t.insert(CIDR("2001:db8::/32")!, value: 4)
        t.insert(CIDR("2001:db8:1::/48")!, value: 5)
        #expect(t.lookup(IPAddress("10.1.2.3")!)! == (3, 24))
        #expect(t.lookup(IPAddress("10.1.3.3")!)! == (2, 16))
        #expect(t.lookup(IPAddress("10.9.9.9")!)! == (1, 8))
        #expect(t.lookup(IPAddress("11.0.0.1")!) == nil)
        #expect(t.lookup(IPAddress("2001:db8:1::9")!)! == (5, 48))
        #expect(t.lookup(IPAddress("2001:db8:2::9")!)! == (4, 32))
        #expect(t.lookup(IPAddress("2001:db9::1")!) == nil)
    }

    @Test func defaultRouteAndDuplicates() {
        var t = PrefixTrie()
        #expect(t.insert(CIDR("0.0.0.0/0")!, value: 7) == nil)
        #expect(t.insert(CIDR("0.0.0.0/0")!, value: 8) == 7)
        #expect(t.lookup(IPAddress("1.2.3.4")!)! == (7, 0))
    }

    @Test func matchesALinearScanOnRandomPrefixes() {
        var rng = SystemRandomNumberGenerator()
        var cidrs: [CIDR] = []
        var t = PrefixTrie()
        for i in 0..<300 {
            var b = SIMD16<UInt8>(repeating: 0)
            for j in 0..<4 { b[j] = UInt8.random(in: 0...255, using: &rng) }
            let c = CIDR(address: IPAddress(family: .v4, bytes: b), prefix: Int.random(in: 4...28, using: &rng))
            if t.insert(c, value: i) == nil { cidrs.append(c) }
        }
        for _ in 0..<2000 {
            var b = SIMD16<UInt8>(repeating: 0)
            for j in 0..<4 { b[j] = UInt8.random(in: 0...255, using: &rng) }
            let a = IPAddress(family: .v4, bytes: b)
            let best = cidrs.filter { $0.contains(a) }.max { $0.prefix < $1.prefix }
            #expect(t.lookup(a)?.prefix == best?.prefix)
        }
    }
}

@Suite("GeoIP database")
struct GeoDatabaseTests {
    @Test func looksUpContinentCountrySubdivisionAndLocation() throws {
        let db = try GeoDatabase(path: geoData)
        let (i, prefix) = try #require(db.lookup(IPAddress("10.2.3.4")!))
        #expect(prefix == 16)
        #expect(db.infos[i] == GeoInfo(continent: "NA", country: "US", subdivision: "VA", latitude: 39.0, longitude: -77.5))
        let (j, p6) = try #require(db.lookup(IPAddress("2001:db8:3::1")!))
        #expect(p6 == 48 && db.infos[j].country == "JP")
        let (k, _) = try #require(db.lookup(IPAddress("10.6.0.1")!))
        #expect(db.infos[k].subdivision == "CA")
        #expect(db.lookup(IPAddress("8.8.8.8")!) == nil)
    }

    @Test func missingFileIsAnError() {
        #expect(throws: GeoError.self) { try GeoDatabase(path: "/nonexistent.mmdb") }
    }

    @Test func distances() {
        // Frankfurt to Ashburn is about 6,500 km.
        let d = greatCircleKm(50.1, 8.7, 39.0, -77.5)
        #expect(d > 6400 && d < 6700)
    }
}
