import DNSSEC
import DNSWire
import Foundation
import QueryEngine
import Testing
import ZoneStore

/// `SnapshotBuilder.reloadZones`: one zone read again, nothing else (`meridian ctl reload ZONE`).
@Suite("Reloading one zone")
struct ZoneReloadTests {
    /// A directory with two zones (a child zone served separately) and a pool bound in each.
    func directory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("zonereload-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nold A 192.0.2.2\n".write(toFile: dir + "/a.test.zone", atomically: true, encoding: .utf8)
        try "$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n".write(toFile: dir + "/sub.a.test.zone", atomically: true, encoding: .utf8)
        try "$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n".write(toFile: dir + "/b.test.zone", atomically: true, encoding: .utf8)
        try "pools:\n  p:\n    names: [www.a.test., www.sub.a.test., www.b.test.]\n    members: [192.0.2.9]\n"
            .write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    func answers(_ name: String, _ s: Snapshot) throws -> [String] {
        try askFrom("10.1.0.1", name, RRType.a, snapshot: s).answerText
    }

    @Test func onlyTheNamedZoneIsReadAgain() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try #require(SnapshotBuilder.build(directory: dir).snapshot)
        // The zone gains a name, another zone is broken and the pool file changes: only the
        // named zone's change is taken, the broken file is not read.
        try "$TTL 60\n@ SOA ns h 2 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nold A 192.0.2.2\nnew A 192.0.2.3\n".write(toFile: dir + "/a.test.zone", atomically: true, encoding: .utf8)
        try "broken\n".write(toFile: dir + "/b.test.zone", atomically: true, encoding: .utf8)
        try "pools:\n  p:\n    names: [www.a.test.]\n    members: [192.0.2.10]\n".write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let o = SnapshotBuilder.reloadZones(["A.test"], of: first, now: 0)
        let next = try #require(o.snapshot, "\(o.diagnostics)")
        #expect(try answers("new.a.test.", next) == ["new.a.test. A 192.0.2.3"])
        #expect(next.zones.zones.map { "\(Name.text($0.origin)) \($0.serial)" } == ["a.test. 2", "b.test. 1", "sub.a.test. 1"])
        // Pool names keep their pool in the reloaded zone and in the child zone; the pool is the old one.
        #expect(try answers("www.a.test.", next) == ["www.a.test. A 192.0.2.9"])
        #expect(try answers("www.sub.a.test.", next) == ["www.sub.a.test. A 192.0.2.9"])
        #expect(try answers("www.b.test.", next) == ["www.b.test. A 192.0.2.9"])
        #expect(next.configGeneration == first.configGeneration)
    }

    @Test func aBadZoneFileOrAnUnknownZoneIsRefusedWithItsReason() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try #require(SnapshotBuilder.build(directory: dir).snapshot)
        let unknown = SnapshotBuilder.reloadZones(["c.test."], of: first, now: 0)
        #expect(unknown.snapshot == nil)
        #expect(unknown.errors.first?.message.contains("c.test. is not a served zone (zones: a.test., b.test., sub.a.test.)") == true, "\(unknown.diagnostics)")
        #expect(SnapshotBuilder.reloadZones(["bad..name"], of: first, now: 0).errors.first?.message.contains("not a domain name") == true)
        try "$TTL 60\n@ SOA ns h 2 2 3 4 5\n@ NS ns\nx A 999.1.1.1\n".write(toFile: dir + "/a.test.zone", atomically: true, encoding: .utf8)
        let bad = SnapshotBuilder.reloadZones(["a.test."], of: first, now: 0)
        #expect(bad.snapshot == nil)
        #expect(bad.errors.contains { $0.file.hasSuffix("a.test.zone") && $0.line == 4 }, "\(bad.diagnostics)")
        // A static name where a pool is bound is refused as at a full load.
        try "$TTL 60\n@ SOA ns h 2 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.7\n".write(toFile: dir + "/a.test.zone", atomically: true, encoding: .utf8)
        #expect(SnapshotBuilder.reloadZones(["a.test."], of: first, now: 0).errors.first?.message.contains("static A record") == true)
    }

    @Test func signingEndsWhenNoKeyIsActive() {
        let apex = Name.parse("example.test.")!
        var a = ZoneKey(zone: apex, flags: 257, key: .generate(.ed25519))
        a.timing = KeyTiming(publish: 0, activate: 0, inactive: 1000, delete: 2000)
        var b = ZoneKey(zone: apex, flags: 257, key: .generate(.ed25519))
        b.timing = KeyTiming(publish: 500, activate: 900, inactive: 3000)
        #expect(ZoneSigner.signsUntil(apex: apex, keys: [a, b], now: 100) == 3000)
        #expect(ZoneSigner.signsUntil(apex: apex, keys: [a], now: 100) == 1000)
        #expect(ZoneSigner.signsUntil(apex: apex, keys: [a], now: 1500) == 1500)
        b.timing.inactive = nil
        #expect(ZoneSigner.signsUntil(apex: apex, keys: [a, b], now: 100) == nil)
    }

    @Test func thePreSignedZonesEarliestExpirationIsRead() {
        let text = "$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\n"
            + "@ RRSIG SOA 13 2 60 20270101000000 20261201000000 1 example.test. AAAA\n"
            + "@ RRSIG NS 13 2 60 20261215000000 20261201000000 1 example.test. AAAA\n"
        let z = ZoneLoader.load(text: text, origin: "example.test.").zone
        #expect(z?.earliestSignatureExpiration == 1_797_292_800)
        #expect(ZoneLoader.load(text: "$TTL 60\n@ SOA ns h 1 2 3 4 5\n", origin: "x.").zone?.earliestSignatureExpiration == nil)
    }
}
