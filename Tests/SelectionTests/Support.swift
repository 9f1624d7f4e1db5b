import Health
import DNSWire
import Foundation
import GeoTopology
import PoolConfig
import Selection
import Testing

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
let geoPath = repoRoot + "/GeoData/test.mmdb"

/// Parses pool YAML (with `geoip:` pointing at the test database) into runtime tables.
func runtime(_ yaml: String, overrides: String = "", sourceLocation: SourceLocation = #_sourceLocation) throws -> PoolsRuntime {
    let text = "geoip: \(geoPath)\n" + yaml
    let (set, diags) = PoolFileParser.parse(files: [("/tmp/test.yaml", text)])
    let pools = try #require(set, "\(diags)", sourceLocation: sourceLocation)
    let (o, odiags) = AdminStateFile.parse(overrides, file: "state.txt")
    #expect(odiags.isEmpty, sourceLocation: sourceLocation)
    return PoolsRuntime(pools: pools, plans: PoolsRuntime.plans(for: pools), health: HealthSnapshot(version: 1, overrides: o))
}

struct Answer {
    var addresses: [String]
    var outcome: SelectionOutcome
    var ttl: UInt32?
}

/// Runs one selection and reads back the addresses written.
func ask(_ rt: PoolsRuntime, _ pool: String, _ client: String, qtype: UInt16 = RRType.a, buffer: MessageBuffer = MessageBuffer(seed: 7)) -> Answer {
    let index = rt.pools.pool(named: pool)!
    let o = Selector.answer(pools: rt, pool: index, qtype: qtype, client: IPAddress(client)!, buffer: buffer)
    var out: [String] = []
    var ttl: UInt32?
    if case .addresses(let n) = o.answer {
        ttl = rt.runtimes[o.pool].ttl
        let size = qtype == RRType.aaaa ? 16 : 4
        for i in 0..<n {
            var b = SIMD16<UInt8>(repeating: 0)
            for j in 0..<size { b[j] = buffer.answerRData[i * size + j] }
            out.append(IPAddress(family: qtype == RRType.aaaa ? .v6 : .v4, bytes: b).description)
        }
    }
    return Answer(addresses: out, outcome: o, ttl: ttl)
}

let threeSites = """
    regions:
      office: [10.2.7.0/24, "2001:db8:2:7::/64"]
    pools:
      www:
        names: [www.example.test.]
        ttl: 30
        degraded_ttl: 5
        sites:
          fra: {location: [50.1, 8.7], members: [192.0.2.11, 192.0.2.12, "2001:db8:f::11"]}
          iad: {location: [39.0, -77.5], members: [198.51.100.21, 198.51.100.22]}
          nrt: {location: [35.7, 139.7], min_up: 100%, members: [203.0.113.31, 203.0.113.32]}
          dr: {backup: true, members: [192.0.2.99]}
        order:
          topology: {office: [fra, iad]}
          geo:
            continent:EU: [fra, iad]
            continent:NA: [iad, fra]
            country:JP: [nrt, iad]
            subdivision:US-CA: [nrt, iad]
          default: [fra, iad, nrt]

    """
