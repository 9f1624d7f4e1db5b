import Diagnostics
import DNSWire
import Foundation
import Testing
import ZoneStore
@testable import PoolConfig

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

func parse(_ yaml: String, file: String = "/tmp/p.yaml") -> (PoolSet?, [Diagnostic]) {
    PoolFileParser.parse(files: [(file, yaml)])
}

@Suite("Pool files")
struct PoolFileTests {
    @Test func examplePoolsLoad() {
        let (set, diags) = PoolFileParser.load(directory: repoRoot + "/Zones")
        #expect(diags.isEmpty, "\(diags)")
        #expect(set?.pools.map(\.name) == ["www", "near", "app", "api", "cdn", "web"])
        #expect(set?.pools.first { $0.name == "cdn" }?.isCNAME == true)
        #expect(set?.geo != nil)
    }

    /// Every YAML example in Zones/README.md parses and validates, so the docs cannot rot.
    @Test func readmeExamplesParse() throws {
        let text = try String(contentsOfFile: repoRoot + "/Zones/README.md", encoding: .utf8)
        let blocks = text.components(separatedBy: "```yaml\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        #expect(blocks.count >= 4)
        // Cluster-file examples (`peers:` first) are checked by the Peers tests.
        for (i, block) in blocks.enumerated() where !block.hasPrefix("peers:") {
            let (set, diags) = parse(block, file: repoRoot + "/Zones/README-example-\(i).yaml")
            #expect(set != nil, "README example \(i): \(diags)")
            #expect(diags.isEmpty, "README example \(i): \(diags)")
        }
    }

    @Test func defaultsAndShorthands() throws {
        let (set, d) = parse("""
            pools:
              p:
                names: [p.example.test.]
                members: [192.0.2.1, "2001:db8::1", {name: third, address: 192.0.2.3, weight: 7}]
            """)
        let p = try #require(set?.pools.first, "\(d)")
        #expect(p.mode == .multiSite && p.ttl == 30 && p.degradedTTL == 10 && p.sites.map(\.name) == ["default"])
        #expect(p.members.map(\.id) == ["p/default/192.0.2.1", "p/default/2001:db8::1", "p/default/third"])
        #expect(p.members[2].weight == 7)
        #expect(p.order.defaultOrder == [0])
        #expect(p.allDown == .failOpen)
    }

    struct Bad: Sendable, CustomTestStringConvertible {
        var yaml: String
        var line: Int
        var message: String
        var testDescription: String { message }
    }

    static let bad: [Bad] = [
        Bad(yaml: "pools:\n  p:\n    names: [p.example.test.]\n    colour: blue\n    members: [192.0.2.1]\n", line: 4, message: "unknown key 'colour' in pool 'p'"),
        Bad(yaml: "pools:\n  p:\n    names: [p.example.test.]\n    members: [192.0.2.300]\n", line: 4, message: "bad member '192.0.2.300'"),
        Bad(yaml: "pools:\n  p:\n    names: [p.example.test.]\n    members: [{address: 192.0.2.1, weight: 0}]\n", line: 4, message: "weight 0 is out of range 1...10000"),
        Bad(yaml: "pools:\n  p:\n    names: [p.example.test.]\n    sites: {a: {members: [192.0.2.1]}}\n    order: {default: [b]}\n", line: 5, message: "no site 'b' in pool 'p'"),
        Bad(yaml: "pools:\n  p:\n    names: [p.example.test.]\n    sites: {a: {members: [192.0.2.1]}}\n    order:\n      topology: {nowhere: [a]}\n", line: 6, message: "no region 'nowhere' is defined"),
        Bad(yaml: "pools:\n  p:\n    names: [p.example.test.]\n    members: [192.0.2.1]\n    when_all_down: {fallback: q}\n", line: 5, message: "no pool 'q'"),
        Bad(yaml: "pools:\n  p:\n    names: [p.example.test.]\n    members: [192.0.2.1]\n  q:\n    names: [p.example.test.]\n    members: [192.0.2.2]\n", line: 6, message: "bound to pool 'p' already"),
        Bad(yaml: "pools:\n  p:\n    names: [p.example.test]\n    members: [192.0.2.1]\n", line: 3, message: "bad name 'p.example.test'"),
        Bad(yaml: "pools:\n  p:\n    names: [p.example.test.]\n    sites: {a: {members: [192.0.2.1]}}\n    order:\n      geo: {continent:EU: [a]}\n", line: 6, message: "needs a GeoIP database"),
        Bad(yaml: "pools:\n  p:\n    names: [p.example.test.]\n    ttl: 99999999\n    members: [192.0.2.1]\n", line: 4, message: "ttl 99999999 is out of range"),
        Bad(yaml: "pools:\n  p:\n    names: [p.example.test.]\n    members: [192.0.2.1]\n    min_up: 150%\n", line: 5, message: "min_up must be a count"),
        Bad(yaml: "pools:\n  p:\n    names: [p.example.test.]\n    members: [192.0.2.1, www.example.net.]\n", line: 2, message: "mixes addresses and CNAME targets"),
        Bad(yaml: "pools:\n  p:\n    names: [p.example.test.]\n    members: [192.0.2.1, 192.0.2.1]\n", line: 4, message: "appears twice"),
        Bad(yaml: "regions:\n  r: [10.1.2.0/8]\n", line: 2, message: "bad network '10.1.2.0/8'"),
        Bad(yaml: "regions:\n  r: [10.0.0.0/8]\n  s: [10.0.0.0/8]\n", line: 3, message: "is in region 's' and in region 'r'"),
        Bad(yaml: "pools:\n  p: [\n", line: 3, message: "YAML:"),
        Bad(yaml: "pools:\n  p:\n    names: [p.example.test.]\n    members: [192.0.2.1]\n    when_all_down: {fallback: q}\n  q:\n    names: [q.example.test.]\n    members: [192.0.2.2]\n    when_all_down: {fallback: p}\n", line: 2, message: "fallbacks form a loop"),
        Bad(yaml: "pools:\n  p:\n    names: [p.example.test.]\n    mode: weird\n    members: [192.0.2.1]\n", line: 4, message: "mode must be one of"),
    ]

    @Test(arguments: bad)
    func errorsNameFileAndLine(_ c: Bad) {
        let (set, diags) = parse(c.yaml)
        #expect(set == nil)
        let hit = diags.first { $0.message.contains(c.message) }
        #expect(hit != nil, "\(diags)")
        #expect(hit?.line == c.line, "\(diags)")
        #expect(hit?.description.hasPrefix("/tmp/p.yaml:\(c.line): ") == true)
    }

    @Test func minUp() {
        #expect(MinUp.count(2).satisfied(healthy: 2, total: 3))
        #expect(!MinUp.count(2).satisfied(healthy: 1, total: 3))
        #expect(MinUp.count(5).satisfied(healthy: 2, total: 2))  // never more than the site has
        #expect(MinUp.fraction(0.5).satisfied(healthy: 2, total: 3))
        #expect(!MinUp.fraction(0.5).satisfied(healthy: 1, total: 3))
    }
}
