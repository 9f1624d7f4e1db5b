import Foundation
import Health
import Diagnostics
import Testing
@testable import Gossip

@Suite("Gossip wire format")
struct WireTests {
    let keys = GossipKeys(keys: [[UInt8](repeating: 7, count: 32)])
    let updates: [Update] = [
        .alive(name: "ns1", address: "127.0.0.1:7946", incarnation: 5, digest: 9), .suspect(name: "ns2", incarnation: 3, by: "ns1"),
        .dead(name: "ns3", incarnation: 4, by: "ns2", left: true), .data(key: "k", bytes: [1, 2, 3]),
    ]

    @Test(arguments: [Message.ping(seq: 1, target: "ns2"), .ack(seq: 2), .pingReq(seq: 3, target: "ns3", address: "[::1]:7946"), .gossip])
    func packetsRoundTrip(message: Message) throws {
        let p = Packet(message, updates: updates)
        var w = ByteWriter()
        p.encodeBody(&w)
        var r = ByteReader(w.bytes)
        #expect(try Packet.decodeBody(&r) == p)
        #expect(r.remaining == 0)
    }

    @Test func ledgerEntriesRoundTrip() throws {
        let entries: [Ledger.Entry] = [
            .check(Ledger.CheckEntry(observer: "ns1", member: "www/fra/192.0.2.11", check: "http:80/", up: false, reason: "HTTP 503", definition: 42, version: HLC(millis: 9, counter: 2), withdrawn: true)),
            .agent(Ledger.AgentEntry(observer: "ns2", member: "app/x/y", state: .drain, weightFactor: 0.75, detail: "75% drain", definition: 1, version: HLC(millis: 10))),
            .agent(Ledger.AgentEntry(observer: "ns2", member: "app/x/z", state: nil, weightFactor: nil, detail: "", definition: 1, version: HLC(millis: 10), withdrawn: true)),
            .override(Ledger.OverrideEntry(pattern: "www/*", state: .down, weightFactor: nil, origin: "ns3", source: "state.txt:3", version: HLC(millis: 11), removed: true)),
            .override(Ledger.OverrideEntry(
                pattern: "app/*/a", state: .drain, weightFactor: 0.5, origin: "ns1", source: "api", version: HLC(millis: 12), reason: "kernel update",
                expiresMillis: 1_796_100_000_000)),
        ]
        for e in entries { #expect(try LedgerCodec.decode(LedgerCodec.encode(e)) == e) }
        // Lives, and results that carry the life they were written in.
        let lived: [Ledger.Entry] = [
            .life(Ledger.LifeEntry(observer: "ns1", boot: 1_796_000_000_123, version: HLC(millis: 13))),
            .check(Ledger.CheckEntry(observer: "ns1", member: "m", check: "tcp:80", up: true, reason: "ok", definition: 1, version: HLC(millis: 14), boot: 77)),
            .agent(Ledger.AgentEntry(observer: "ns1", member: "m", state: .up, weightFactor: 0.5, detail: "50%", definition: 1, version: HLC(millis: 15), boot: 77)),
        ]
        for e in lived { #expect(try LedgerCodec.decode(LedgerCodec.encode(e)) == e) }
        // Type 8: latency rows (issue 20), IPv4 /24 and IPv6 /48; 37 and 40 octets with a 3-octet name.
        let latency: [Ledger.Entry] = [
            .latency(Ledger.LatencyEntry(observer: "ns1", prefix: LatencyPrefix(v6: false, bits: 0xC63364), site: "ams", rttMicros: 12_345, samples: 9, version: HLC(millis: 16), boot: 77)),
            .latency(Ledger.LatencyEntry(observer: "ns1", prefix: LatencyPrefix(v6: true, bits: 0x2001_0db8_0007), site: "iad", rttMicros: 0, samples: 0, version: HLC(millis: 17), boot: 77)),
        ]
        for e in latency { #expect(try LedgerCodec.decode(LedgerCodec.encode(e)) == e) }
        #expect(LedgerCodec.encode(latency[0]).count == 37)
        var bad = LedgerCodec.encode(latency[0])
        bad[5] = 5  // family 5
        #expect(throws: DecodeError.self) { try LedgerCodec.decode(bad) }
        #expect(throws: DecodeError.self) { try LedgerCodec.decode(Array(LedgerCodec.encode(latency[1]).dropLast())) }
        // A check from a peer that predates lives (type 1) reads with boot 0.
        var v1 = ByteWriter()
        v1.u8(1); v1.str8("ns9"); v1.str16("m"); v1.str8("c"); v1.u8(1); v1.str8("ok"); v1.u64(1); v1.u64(HLC(millis: 5).raw)
        #expect(try LedgerCodec.decode(v1.bytes) == .check(Ledger.CheckEntry(observer: "ns9", member: "m", check: "c", up: true, reason: "ok", definition: 1, version: HLC(millis: 5))))
        // An older peer's override (type 3: no reason, no expiry) still reads.
        var old = ByteWriter()
        old.u8(3); old.str16("www/*"); old.u8(1); old.u16(0xFFFF); old.u8(0); old.str8("ns9"); old.str8("s:1"); old.u64(HLC(millis: 5).raw)
        #expect(try LedgerCodec.decode(old.bytes) == .override(Ledger.OverrideEntry(pattern: "www/*", state: .down, weightFactor: nil, origin: "ns9", source: "s:1", version: HLC(millis: 5))))
        let state = FullState(members: Array(updates.prefix(3)), entries: entries.map(LedgerCodec.encode))
        #expect(try FullState.decode(state.encode()) == state)
    }

    @Test func envelopeAuthenticatesAndRotates() throws {
        let env = Envelope(kind: .packet, sender: "ns1", timeMillis: 1000, seq: 77, body: [9, 9])
        let sealed = env.seal(with: keys)
        #expect(try Envelope.open(sealed, keys: keys) == env)
        // A rotation: the receiver holds the new key first and the old one second.
        let rotated = GossipKeys(keys: [[UInt8](repeating: 8, count: 32), [UInt8](repeating: 7, count: 32)])
        #expect(try Envelope.open(sealed, keys: rotated) == env)
        #expect(throws: Envelope.OpenError.badMAC) { try Envelope.open(sealed, keys: GossipKeys(keys: [[UInt8](repeating: 8, count: 32)])) }
        #expect(throws: Envelope.OpenError.badMAC) { try Envelope.open(sealed, keys: .insecureKey) }
        var flipped = sealed
        flipped[10] ^= 1
        #expect(throws: Envelope.OpenError.badMAC) { try Envelope.open(flipped, keys: keys) }
        #expect(throws: Envelope.OpenError.tooShort) { try Envelope.open([0x4D, 0x47], keys: keys) }
        #expect(throws: Envelope.OpenError.badMagic) { try Envelope.open([UInt8](repeating: 0, count: 80), keys: keys) }
    }

    @Test func replayGuardRejectsReplaysAndStaleMessages() {
        var g = ReplayGuard(maxSkewMillis: 1000)
        #expect((try? g.admit(sender: "a", seq: 100, timeMillis: 5000, nowMillis: 5000)) != nil)
        #expect(throws: ReplayGuard.Rejection.replayed) { try g.admit(sender: "a", seq: 100, timeMillis: 5000, nowMillis: 5000) }
        // Out of order within the window is fine, once.
        #expect((try? g.admit(sender: "a", seq: 102, timeMillis: 5000, nowMillis: 5000)) != nil)
        #expect((try? g.admit(sender: "a", seq: 101, timeMillis: 5000, nowMillis: 5000)) != nil)
        #expect(throws: ReplayGuard.Rejection.replayed) { try g.admit(sender: "a", seq: 101, timeMillis: 5000, nowMillis: 5000) }
        // Too far behind the window.
        #expect((try? g.admit(sender: "a", seq: 500, timeMillis: 5000, nowMillis: 5000)) != nil)
        #expect(throws: ReplayGuard.Rejection.replayed) { try g.admit(sender: "a", seq: 300, timeMillis: 5000, nowMillis: 5000) }
        #expect(throws: ReplayGuard.Rejection.stale) { try g.admit(sender: "b", seq: 1, timeMillis: 1000, nowMillis: 5000) }
        #expect(throws: ReplayGuard.Rejection.stale) { try g.admit(sender: "b", seq: 1, timeMillis: 9000, nowMillis: 5000) }
    }

    @Test func mutatedMessagesNeverTrap() {
        var rng = SplitMix64(seed: 99)
        var w = ByteWriter()
        Packet(.pingReq(seq: 1, target: "ns2", address: "127.0.0.2:7946"), updates: updates).encodeBody(&w)
        let body = w.bytes
        let entry = LedgerCodec.encode(.check(Ledger.CheckEntry(observer: "a", member: "m", check: "c", up: true, reason: "r", definition: 1, version: HLC(millis: 1))))
        let state = FullState(members: updates.prefix(2).map { $0 }, entries: [entry]).encode()
        var decoded = 0
        for i in 0..<30_000 {
            var b = [body, entry, state][i % 3]
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                switch rng.next() % 3 {
                case 0: if !b.isEmpty { b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next()) }
                case 1: b = Array(b.prefix(Int(rng.next() % UInt64(b.count + 1))))
                default: b.append(UInt8(truncatingIfNeeded: rng.next()))
                }
            }
            var r = ByteReader(b)
            switch i % 3 {
            case 0: if (try? Packet.decodeBody(&r)) != nil { decoded += 1 }
            case 1: if (try? LedgerCodec.decode(b)) != nil { decoded += 1 }
            default: if (try? FullState.decode(b)) != nil { decoded += 1 }
            }
        }
        #expect(decoded < 30_000)
    }

    @Test func lyingCountsAreRejectedBeforeAllocation() {
        var w = ByteWriter()
        w.u16(0)
        w.u32(UInt32.max)
        #expect(throws: DecodeError.self) { try FullState.decode(w.bytes) }
    }
}

@Suite("Cluster file")
struct ClusterFileTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// The example cluster file and the cluster-file examples in Zones/README.md parse.
    @Test func examplesParse() throws {
        let (config, diags) = ClusterConfig.load(path: Self.repoRoot + "/Zones/cluster.yaml")
        #expect(diags.isEmpty, "\(diags)")
        #expect(config?.peers.keys.sorted() == ["ns1", "ns2", "ns3"] && config?.probers == 2)
        let text = try String(contentsOfFile: Self.repoRoot + "/Zones/README.md", encoding: .utf8)
        let blocks = text.components(separatedBy: "```yaml\n").dropFirst().map { $0.components(separatedBy: "```")[0] }.filter { $0.hasPrefix("peers:") }
        #expect(!blocks.isEmpty)
        for b in blocks {
            let (c, d) = ClusterConfig.parse(b, file: "README")
            #expect(c != nil && d.isEmpty, "\(d)")
        }
    }

    @Test func parsesPeersPolicyProbersAndTimings() throws {
        let (c, d) = ClusterConfig.parse("""
            peers:
              ns1: 127.0.0.1:7946
              ns2: "[::1]:7947"
            verdict: any
            probers: all
            timings: {probe_interval: 0.5, probe_timeout: 0.2, gossip_interval: 0.1}
            """, file: "cluster.yaml")
        #expect(d.isEmpty)
        let config = try #require(c)
        #expect(config.peers == ["ns1": "127.0.0.1:7946", "ns2": "[::1]:7947"])
        #expect(config.verdict == .any && config.probers == nil)
        #expect(config.settings.probeInterval == 0.5 && config.settings.gossipInterval == 0.1)
    }

    @Test func peersCarrySiteRegionAndRoleAndTheVerdictCanBeByRegion() throws {
        let (c, d) = ClusterConfig.parse("""
            peers:
              ns1: {address: 10.0.1.1:7946, site: fra, region: eu}
              ns2: {address: 10.0.2.1:7946, region: us}
              probe-syd: {address: 10.0.9.1:7946, region: apac, role: observer}
              ns4: 10.0.4.1:7946
            verdict: {regions: {policy: majority, within: all}}
            probers_per_region: 2
            """, file: "cluster.yaml")
        #expect(d.isEmpty, "\(d)")
        let config = try #require(c)
        #expect(config.peers["probe-syd"] == "10.0.9.1:7946" && config.peers["ns4"] == "10.0.4.1:7946")
        #expect(config.placement["ns1"] == PeerPlacement(site: "fra", region: "eu") && config.placement["ns4"] == nil)
        #expect(config.role(of: "probe-syd") == .observer && config.role(of: "ns1") == .server)
        #expect(config.verdict == .regions(across: .majority, within: .all) && config.probersPerRegion == 2)
        #expect(config.regions.region(of: "ns2") == "us" && config.regions.region(of: "ns4") == "instance:ns4")
    }

    @Test(arguments: [
        ("peers:\n  ns1: {address: 10.0.0.1:1, role: watcher}\n", 2, "role must be server or observer"),
        ("peers:\n  ns1: {region: eu}\n", 2, "needs an address"),
        ("peers:\n  ns1: {address: 10.0.0.1:1, colour: red}\n", 2, "unknown key 'colour'"),
        ("peers:\n  ns1: 10.0.0.1:1\nverdict: {regions: {policy: most}}\n", 3, "verdict must be"),
        ("peers:\n  ns1: 10.0.0.1:1\nverdict: {regions: {policy: majority}}\n", 1, "needs peers with a region"),
        ("peers:\n  ns1: {address: 10.0.0.1:1, region: eu}\nprobers_per_region: 0\n", 3, "probers_per_region must be"),
        ("peers:\n  ns1: localhost:7946\n", 2, "address must be"),
        ("peers:\n  ns1: 127.0.0.1:7946\n  ns2: 127.0.0.1:7946\n", 3, "same address"),
        ("peers:\n  \"bad name\": 127.0.0.1:1\n", 2, "peer name"),
        ("peers: {}\nverdict: most\n", 2, "verdict must be"),
        ("peers: {}\nprobers: 0\n", 2, "probers must be"),
        ("peers: {}\ncolour: blue\n", 2, "unknown key"),
        ("verdict: any\n", 1, "no 'peers'"),
        ("peers: {}\ntimings: {probe_interval: 0.1, probe_timeout: 0.5}\n", 2, "shorter than"),
        ("peers: [\n", 2, "YAML"),
    ])
    func badFiles(text: String, line: Int, message: String) {
        let (c, d) = ClusterConfig.parse(text, file: "cluster.yaml")
        #expect(c == nil)
        #expect(d.first?.file == "cluster.yaml" && d.first?.line == line, "\(d)")
        #expect(d.first?.message.contains(message) == true, "\(d)")
    }
}

@Suite("Message size bound")
struct MessageSizeTests {
    @Test func theLargestPacketFitsTheLimit() {
        let long = String(repeating: "n", count: Limits.name)
        let address = "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535"
        var s = SWIM(name: long, address: address, incarnation: 1, digest: 0, seeds: [:], seed: 3, now: 0)
        for i in 0..<400 { s.broadcast(data: "k\(i)", bytes: [UInt8](repeating: 1, count: 20 + i % 200)) }
        // A ping-req with the longest target and address, carrying as many updates as fit.
        let d = s.receive(Packet(.pingReq(seq: 1, target: long + "x", address: address)), sender: long, from: address, now: 0)
        guard case let .send(p, _)? = d.first else { Issue.record("no ping sent"); return }
        let withLongest = Packet(.pingReq(seq: .max, target: long, address: address), updates: p.updates)
        var w = ByteWriter()
        withLongest.encodeBody(&w)
        let sealed = Envelope(kind: .packet, sender: long, timeMillis: .max, seq: .max, body: w.bytes).seal(with: .insecureKey)
        #expect(!p.updates.isEmpty)
        #expect(sealed.count <= Limits.packet, "\(sealed.count) octets")
    }
}
