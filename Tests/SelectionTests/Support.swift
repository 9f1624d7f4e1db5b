import ClusterState
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
    var w = MessageWriter(buffer: buffer, limit: 65535)
    for _ in 0..<12 { w.u8(0) }
    let o = Selector.answer(pools: rt, pool: index, qtype: qtype, client: IPAddress(client)!, owner: nil, writer: &w, buffer: buffer)
    var out: [String] = []
    var ttl: UInt32?
    let bytes = Array(w.bytes)
    var pos = 12
    while pos < bytes.count {
        let type = UInt16(bytes[pos + 2]) << 8 | UInt16(bytes[pos + 3])
        ttl = UInt32(bytes[pos + 6]) << 24 | UInt32(bytes[pos + 7]) << 16 | UInt32(bytes[pos + 8]) << 8 | UInt32(bytes[pos + 9])
        let len = Int(bytes[pos + 10]) << 8 | Int(bytes[pos + 11])
        var b = SIMD16<UInt8>(repeating: 0)
        for i in 0..<len { b[i] = bytes[pos + 12 + i] }
        out.append(IPAddress(family: type == RRType.a ? .v4 : .v6, bytes: b).description)
        pos += 12 + len
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
