// The answer function alone, no sockets: builds the snapshot from a zones directory, then
// answers the same queries N times each. Run under callgrind (Tools/bench-callgrind.py) its
// instruction counts choose between designs where timings on two shared cores cannot.
//
// Usage: meridian-answer-bench ZONES_DIR N QUERY...   QUERY = "name type" or "name type ECS-prefix"
// With DNSTAP=1 each answer is also logged as dnstap would be (the query and the response
// encoded and pushed to a ring) and the writer's side is done in-line (the ring popped, the
// frames appended to a 64 KiB batch), without the write system call.
import DNSWire
import Foundation
import GeoTopology
import Health
import Logging
import QueryEngine
import QueryLog

func query(_ spec: String) -> [UInt8]? {
    let f = spec.split(separator: " ").map(String.init)
    guard f.count >= 2, let name = Name.parse(f[0]), let type = RRType.value(f[1]) else { return nil }
    var q: [UInt8] = [0x12, 0x34, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 1] + name + [UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
    var options: [UInt8] = []
    if f.count == 3, let subnet = CIDR(f[2]) {
        let octets = Array(subnet.address.octets.prefix((subnet.prefix + 7) / 8))
        let body: [UInt8] = [0, subnet.address.family == .v4 ? 1 : 2, UInt8(subnet.prefix), 0] + octets
        options = [0, 8, 0, UInt8(body.count)] + body
    }
    q += [0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, UInt8(options.count >> 8), UInt8(options.count & 0xFF)] + options
    return q
}

let args = CommandLine.arguments
guard args.count >= 4, let n = Int(args[2]) else {
    FileHandle.standardError.write("usage: meridian-answer-bench ZONES_DIR N QUERY...\n".data(using: .utf8)!)
    exit(2)
}
let outcome = SnapshotBuilder.build(directory: args[1])
guard let built = outcome.snapshot else {
    for d in outcome.diagnostics { FileHandle.standardError.write("\(d)\n".data(using: .utf8)!) }
    exit(1)
}
// LATENCY=N: a latency map of N /24 networks (11.0.0.0/24 up), RTTs to fra, iad and nrt
// spread over 5-150 ms, for pools with `order: latency` (Tools/bench-callgrind.py).
let latencyNetworks = Int(ProcessInfo.processInfo.environment["LATENCY"] ?? "0") ?? 0
var snapshot = built
if latencyNetworks > 0 {
    var cells: [LatencyPrefix: [String: LatencyCell]] = [:]
    var r: UInt64 = 7
    for i in 0..<latencyNetworks {
        var row: [String: LatencyCell] = [:]
        for site in ["fra", "iad", "nrt"] {
            r = r &* 6364136223846793005 &+ 1442695040888963407
            row[site] = LatencyCell(rttMs: 5 + Double(r >> 33 % 145), samples: 20, observers: 3)
        }
        cells[LatencyPrefix(v6: false, bits: 0x0B0000 + UInt64(i))] = row
    }
    let health = HealthSnapshot(version: 2, latency: LatencyTable(cells: cells))
    snapshot = SnapshotBuilder.rebuildHealth(of: built, health: health, generation: 2)
}
let queries = args[3...].compactMap(query)
guard queries.count == args.count - 3 else {
    FileHandle.standardError.write("a query is not \"name type [prefix]\"\n".data(using: .utf8)!)
    exit(2)
}
let scratch = QueryScratch(seed: 1)
let buffer = scratch.buffer
let client = IPAddress("127.0.0.1")!
var answered = 0
let tap = ProcessInfo.processInfo.environment["DNSTAP"] == "1"
    ? DnstapWriter(settings: DnstapSettings(destination: .file("/dev/null"), identity: "bench", version: "Meridian"), logger: Logger(label: "bench")).makeTap()
    : nil
var batch: [UInt8] = []
batch.reserveCapacity(70_000)
let clientOctets: [UInt8] = [127, 0, 0, 1]
let start = DispatchTime.now().uptimeNanoseconds
for _ in 0..<n {
    for q in queries {
        let r = q.withUnsafeBytes { QueryProcessor.respond(to: $0, transport: .udp, snapshot: snapshot, scratch: scratch, client: client) }
        if !r.dropped && r.length > 12 { answered += 1 }
        if let tap {
            q.withUnsafeBytes { query in
                clientOctets.withUnsafeBytes { c in
                    tap.log(query: query, response: UnsafeRawBufferPointer(rebasing: buffer.storage[0..<r.length]), client: c, port: 53_000, tcp: false)
                }
            }
            while let f = tap.ring.pop() {
                batch += f
                if batch.count >= 64 << 10 { batch.removeAll(keepingCapacity: true) }
            }
        }
    }
}
let elapsed = DispatchTime.now().uptimeNanoseconds - start
print("\(answered) answers, \(Double(elapsed) / Double(max(answered, 1))) ns each")
