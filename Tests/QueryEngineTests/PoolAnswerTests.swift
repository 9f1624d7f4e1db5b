import Health
import DNSWire
import Foundation
import QueryEngine
import Testing
import ZoneStore

func poolSnapshot(state: String? = nil) throws -> Snapshot {
    var statePath: String?
    if let state {
        statePath = FileManager.default.temporaryDirectory.appendingPathComponent("state-\(UUID()).txt").path
        try state.write(toFile: statePath!, atomically: true, encoding: .utf8)
    }
    let o = SnapshotBuilder.build(directory: fixtures + "/pools", statePath: statePath)
    return try #require(o.snapshot, "\(o.diagnostics)")
}

func ecsOption(_ a: [UInt8], _ prefix: UInt8, family: UInt16 = 1) -> (UInt16, [UInt8]) {
    (8, [0, UInt8(family), prefix, 0] + a)
}

/// Asks with a packet source address.
func askFrom(_ source: String, _ name: String, _ type: UInt16, opt: OPTSpec? = nil, snapshot: Snapshot) throws -> DecodedMessage {
    let q = makeQuery(name, type, opt: opt)
    let scratch = QueryScratch()
    let buffer = scratch.buffer
    let outcome = q.withUnsafeBytes {
        QueryProcessor.respond(to: $0, transport: .udp, snapshot: snapshot, scratch: scratch, client: IPAddressFrom(source))
    }
    let r = Array(UnsafeRawBufferPointer(rebasing: buffer.storage[0..<outcome.length]))
    let decoded = try DecodedMessage.decode(r)
    try crossCheck(r, decoded)
    return decoded
}

import GeoTopology
func IPAddressFrom(_ s: String) -> IPAddress { IPAddress(s)! }

/// The ECS scope prefix in a response's OPT record.
func scope(_ m: DecodedMessage) -> UInt8? {
    guard let o = m.opt, o.rdata.count >= 8, o.rdata[1] == 8 else { return nil }
    return o.rdata[7]
}

@Suite("Pool answers in the engine")
struct PoolAnswerTests {
    @Test func sourceAddressPicksTheSite() throws {
        let s = try poolSnapshot()
        #expect(try askFrom("10.1.0.1", "www.gslb.test.", RRType.a, snapshot: s).answerText == ["www.gslb.test. A 192.0.2.11"])
        #expect(try askFrom("10.2.0.1", "www.gslb.test.", RRType.a, snapshot: s).answerText == ["www.gslb.test. A 198.51.100.21"])
        #expect(try askFrom("172.16.9.9", "www.gslb.test.", RRType.a, snapshot: s).answerText == ["www.gslb.test. A 198.51.100.21"])
        #expect(try askFrom("10.1.0.1", "www.gslb.test.", RRType.aaaa, snapshot: s).answerText == ["www.gslb.test. AAAA 2001:db8:f:0:0:0:0:11"])
    }

    @Test func ecsOverridesTheSourceAndSetsTheScope() throws {
        let s = try poolSnapshot()
        // The resolver is in Frankfurt, the client subnet in Ashburn.
        let r = try askFrom("10.1.0.1", "www.gslb.test.", RRType.a, opt: OPTSpec(options: [ecsOption([10, 2, 0], 24)]), snapshot: s)
        #expect(r.answerText == ["www.gslb.test. A 198.51.100.21"])
        #expect(scope(r) == 16)
        // IPv6 ECS.
        let v6 = try askFrom("10.2.0.1", "www.gslb.test.", RRType.a, opt: OPTSpec(options: [ecsOption([0x20, 0x01, 0x0d, 0xb8, 0, 1], 48, family: 2)]), snapshot: s)
        #expect(v6.answerText == ["www.gslb.test. A 192.0.2.11"] && scope(v6) == 48)
        // ECS /0: the resolver's own address decides, and the scope is 0 (RFC 7871 7.1.2).
        let zero = try askFrom("10.2.0.1", "www.gslb.test.", RRType.a, opt: OPTSpec(options: [ecsOption([], 0)]), snapshot: s)
        #expect(zero.answerText == ["www.gslb.test. A 198.51.100.21"] && scope(zero) == 0)
        // A pool that does not depend on the client: scope 0.
        let plain = try askFrom("10.1.0.1", "plain.gslb.test.", RRType.a, opt: OPTSpec(options: [ecsOption([10, 2, 0], 24)]), snapshot: s)
        #expect(plain.answerText == ["plain.gslb.test. A 192.0.2.77"] && scope(plain) == 0)
    }

    @Test func otherTypesComeFromTheZone() throws {
        let s = try poolSnapshot()
        let txt = try askFrom("10.1.0.1", "www.gslb.test.", RRType.txt, snapshot: s)
        #expect(txt.answer.count == 1 && txt.answer[0].type == RRType.txt)
        let mx = try askFrom("10.1.0.1", "www.gslb.test.", RRType.mx, snapshot: s)
        #expect(mx.answer.isEmpty && mx.rcode == RCode.noError && mx.authority.first?.type == RRType.soa)
        let any = try askFrom("10.1.0.1", "www.gslb.test.", RRType.any, snapshot: s)
        #expect(any.answerText == ["www.gslb.test. A 192.0.2.11"])
        // A name with no static records at all exists too (no NXDOMAIN).
        #expect(try askFrom("10.1.0.1", "plain.gslb.test.", RRType.txt, snapshot: s).rcode == RCode.noError)
    }

    @Test func cnameIntoAPoolName() throws {
        let s = try poolSnapshot()
        let r = try askFrom("10.2.0.1", "alias.gslb.test.", RRType.a, snapshot: s)
        #expect(r.answerText == ["alias.gslb.test. CNAME www.gslb.test.", "www.gslb.test. A 198.51.100.21"])
    }

    @Test func cnamePools() throws {
        let s = try poolSnapshot()
        let r = try askFrom("10.1.0.1", "cdn.gslb.test.", RRType.a, snapshot: s)
        #expect(r.answerText == ["cdn.gslb.test. CNAME edge-a.cdn.example.net."])
        let chain = try askFrom("10.1.0.1", "tocdn.gslb.test.", RRType.aaaa, snapshot: s)
        #expect(chain.answerText == ["tocdn.gslb.test. CNAME cdn.gslb.test.", "cdn.gslb.test. CNAME edge-a.cdn.example.net."])
        // Primary down: the backup target, which is a pool name in our zone, is followed.
        let down = try poolSnapshot(state: "cdn/a/* DOWN\n")
        let b = try askFrom("10.1.0.1", "cdn.gslb.test.", RRType.a, snapshot: down)
        #expect(b.answerText == ["cdn.gslb.test. CNAME www.gslb.test.", "www.gslb.test. A 192.0.2.11"])
        #expect(try askFrom("10.1.0.1", "cdn.gslb.test.", RRType.cname, snapshot: s).answer.count == 1)
    }

    @Test func adminStateFailsOver() throws {
        let s = try poolSnapshot(state: "www/fra/* DOWN\n")
        #expect(try askFrom("10.1.0.1", "www.gslb.test.", RRType.a, snapshot: s).answerText == ["www.gslb.test. A 198.51.100.21"])
    }

    @Test func bindingErrorsNameThePoolFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pools-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nstatic A 192.0.2.2\nsub NS ns.sub\nns.sub A 192.0.2.3\n"
            .write(toFile: dir + "/z.test.zone", atomically: true, encoding: .utf8)
        let cases: [(String, String)] = [
            ("    names: [www.other.test.]\n", "not in any served zone"),
            ("    names: [static.z.test.]\n", "has a static A record there"),
            ("    names: [x.sub.z.test.]\n", "at or below a delegation"),
        ]
        for (names, message) in cases {
            try "pools:\n  p:\n\(names)    members: [192.0.2.9]\n".write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
            let o = SnapshotBuilder.build(directory: dir)
            #expect(o.snapshot == nil)
            let e = o.errors.first
            #expect(e?.message.contains(message) == true, "\(o.diagnostics)")
            #expect(e?.file.hasSuffix("p.yaml") == true && e?.line == 3)
        }
    }
}
