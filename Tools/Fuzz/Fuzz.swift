// libFuzzer entry point for Meridian's input decoders (issue: hardening, "Proof"). Built by
// Tools/fuzz.sh with `-sanitize=fuzzer,address`; MERIDIAN_FUZZ picks the decoder:
//   packet  query bytes through the whole answer path (UDP and TCP limits), with pools, the
//           zone signed (DNSSEC: DO=1 inputs reach signing, the cache and compact denial)
//   zone    zone file text through the loader and its semantic checks
//   pool    pool file YAML through the parser and validation
//   state   admin state file text
//   agent   a feedback agent's reply
//   gossip  an envelope, a SWIM packet, a ledger entry and a push-pull state
// Every input must come back as a value or an error: a trap is a finding.
import Health
import DNSSEC
import DNSWire
import Foundation
import GeoTopology
import Gossip
import PoolConfig
import QueryEngine
import ZoneStore

enum Fuzz {
    static let mode = ProcessInfo.processInfo.environment["MERIDIAN_FUZZ"] ?? "packet"
    /// libFuzzer calls from one thread; the replay runner too.
    nonisolated(unsafe) static let scratch = QueryScratch(seed: 1)
    static let keys = GossipKeys(keys: [[UInt8](repeating: 7, count: 32)])

    /// Zones and pools from Tests/Fixtures and Zones (found from this file's place in the repo).
    static let snapshot: Snapshot = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let outcome = SnapshotBuilder.build(directory: root + "/Zones", config: EngineConfig(cookies: CookieConfig(secrets: [[UInt8](repeating: 1, count: 16)])))
        guard let s = outcome.snapshot else { return Snapshot(zones: ZoneSet(zones: [])) }
        // Fixed private keys (deterministic runs): Ed25519 for one zone, P-256 for the rest.
        let keys = s.zones.zones.enumerated().compactMap { i, z -> ZoneKey? in
            let raw = (1...32).map { UInt8($0 &+ i) }
            return (try? SigningKey(algorithm: i == 0 ? .ed25519 : .ecdsaP256SHA256, raw: raw)).map { ZoneKey(zone: z.origin, flags: 257, key: $0) }
        }
        return Snapshot(zones: s.zones, pools: s.pools, config: s.config, generation: s.generation, keys: keys, now: 1_700_000_000)
    }()

    static func run(_ data: UnsafeRawBufferPointer) {
        let bytes = Array(data)
        let text = String(decoding: bytes, as: UTF8.self)
        switch mode {
        case "packet":
            scratch.buffer.nowSeconds = 1_700_000_000
            for transport in [Transport.udp, .tcp] {
                _ = QueryProcessor.respond(to: data, transport: transport, snapshot: snapshot, scratch: scratch, client: IPAddress("192.0.2.1")!)
            }
            _ = try? DecodedMessage.decode(bytes)
        case "zone":
            _ = ZoneLoader.load(text: text, origin: "example.test.", file: "fuzz.zone")
        case "pool":
            _ = PoolFileParser.parse(files: [("/tmp/fuzz.yaml", text)])
            _ = ClusterConfig.parse(text, file: "cluster.yaml")
        case "state":
            _ = AdminStateFile.parse(text, file: "state.txt")
        case "agent":
            _ = try? AgentReply.parse(bytes)
        case "gossip":
            if let env = try? Envelope.open(bytes, keys: keys) { _ = env.body.count }
            _ = try? FuzzGossip.decode(bytes)
        default:
            break
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    Fuzz.run(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}

#if !FUZZING
/// Without libFuzzer (an ordinary build): replays the files named as arguments, e.g. a corpus
/// or a crash input, through the decoder MERIDIAN_FUZZ picks.
@main
enum Replay {
    static func main() {
        var n = 0
        for path in CommandLine.arguments.dropFirst() {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: path)).map { $0.map { path + "/" + $0 } } ?? [path]
            for f in files {
                guard let data = FileManager.default.contents(atPath: f) else { continue }
                data.withUnsafeBytes { Fuzz.run($0) }
                n += 1
            }
        }
        print("meridian-fuzz: \(Fuzz.mode): \(n) inputs replayed, no trap")
    }
}
#endif

#if FUZZING
/// libFuzzer's driver (LLVM 11 and later), called from the entry point SwiftPM links.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

/// SwiftPM links an executable with `main` aliased to `<product>_main`.
@_cdecl("meridian_fuzz_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v) { data, size in fuzzTestOneInput(data, size) }
}
#endif
