import CLDNS
import DNSWire
import Foundation
import Testing
@testable import DNSSEC

func b64(_ s: String) -> [UInt8] { Array(Data(base64Encoded: s)!) }
func hex(_ s: String) -> [UInt8] {
    let d = Array(s.filter { !$0.isWhitespace }.utf8)
    return stride(from: 0, to: d.count, by: 2).map { UInt8(String(decoding: d[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
}

/// Verifies an RRSIG over an RRset with libldns (`ldns_verify_rrsig_keylist`), from presentation
/// text: an implementation that is not ours judges every signature.
func ldnsVerifies(rrset: [String], rrsig: String, dnskey: String) -> Bool {
    let set = ldns_rr_list_new()
    let keys = ldns_rr_list_new()
    let good = ldns_rr_list_new()
    defer {
        ldns_rr_list_deep_free(set)
        ldns_rr_list_deep_free(keys)
        ldns_rr_list_free(good)
    }
    func rr(_ text: String) -> UnsafeMutablePointer<ldns_rr>? {
        var out: UnsafeMutablePointer<ldns_rr>? = nil
        return ldns_rr_new_frm_str(&out, text, 3600, nil, nil) == LDNS_STATUS_OK ? out : nil
    }
    for r in rrset { guard let x = rr(r) else { return false }; ldns_rr_list_push_rr(set, x) }
    guard let k = rr(dnskey), let sig = rr(rrsig) else { return false }
    defer { ldns_rr_free(sig) }
    ldns_rr_list_push_rr(keys, k)
    return ldns_verify_rrsig_keylist(set, sig, keys, good) == LDNS_STATUS_OK
}

@Suite("DNSSEC keys and signatures")
struct DNSSECTests {
    @Test func rfc6605P256KeyTagDSAndPublishedSignature() throws {
        let key = try SigningKey(algorithm: .ecdsaP256SHA256, raw: b64("GU6SnQ/Ou+xC5RumuIUIuJZteXT2z0O/ok1s38Et6mQ="))
        #expect(key.publicKey == b64("GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA=="))
        let zk = ZoneKey(zone: Name.parse("example.net.")!, flags: 257, key: key)
        #expect(zk.tag == 55648)
        #expect(zk.ds == [0xD9, 0x60, 13, 2] + hex("b4c8c1fe2e7477127b27115656ad6256f424625bf5c1e2770ce6d6e37df61d17"))
        // RFC 6605 6.1: the published RRSIG verifies over the data this code builds.
        let owner = Name.parse("www.example.net.")!
        let head = RRSIG.header(type: RRType.a, algorithm: 13, labels: RRSIG.labels(of: owner), ttl: 3600,
                                expiration: 1_284_026_679, inception: 1_281_607_479, tag: 55648, signer: zk.zone)
        let data = RRSIG.signedData(header: head, owner: owner, type: RRType.a, ttl: 3600, rdatas: [[192, 0, 2, 1]])
        let published = b64("qx6wLYqmh+l9oCKTN6qIc+bw6ya+KJ8oMz0YP107epXAyGmt+3SNruPFKG7tZoLBLlUzGGus7ZwmwWep666VCw==")
        #expect(SigningKey.verify(algorithm: .ecdsaP256SHA256, publicKey: key.publicKey, signature: published, data: data))
        // ECDSA signatures are randomized: ours differ from the RFC's but verify the same way.
        let ours = try key.sign(data)
        #expect(ours.count == 64 && ours != published)
        #expect(SigningKey.verify(algorithm: .ecdsaP256SHA256, publicKey: key.publicKey, signature: ours, data: data))
        #expect(!SigningKey.verify(algorithm: .ecdsaP256SHA256, publicKey: key.publicKey, signature: ours, data: data + [0]))
    }

    @Test func rfc8080Ed25519IsReproducedExactly() throws {
        let key = try SigningKey(algorithm: .ed25519, raw: b64("ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI="))
        #expect(key.publicKey == b64("l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4="))
        let zk = ZoneKey(zone: Name.parse("example.com.")!, flags: 257, key: key)
        #expect(zk.tag == 3613)
        #expect(zk.ds == [0x0E, 0x1D, 15, 2] + hex("3aa5ab37efce57f737fc1627013fee07bdf241bd10f3b1964ab55c78e79a304b"))
        let owner = Name.parse("example.com.")!
        let mx = [0, 10] + Name.parse("mail.example.com.")!
        let head = RRSIG.header(type: RRType.mx, algorithm: 15, labels: RRSIG.labels(of: owner), ttl: 3600,
                                expiration: 1_440_021_600, inception: 1_438_207_200, tag: 3613, signer: zk.zone)
        let data = RRSIG.signedData(header: head, owner: owner, type: RRType.mx, ttl: 3600, rdatas: [mx])
        #expect(data == hex("""
            00 0f 0f 02 00 00 0e 10 55 d4 fc 60 55 b9 4c e0 0e 1d 07 65 78 61 6d 70 6c 65 03 63 6f 6d 00 07 65 78 61 6d 70 6c 65
            03 63 6f 6d 00 00 0f 00 01 00 00 0e 10 00 14 00 0a 04 6d 61 69 6c 07 65 78 61 6d 70 6c 65 03 63 6f 6d 00
            """))
        // EdDSA is deterministic (RFC 8032 5.1.6): the example's signature, octet for octet, as
        // corrected by RFC 8080 erratum 4935 (the printed one is not over this data).
        #expect(try key.sign(data) == b64("oL9krJun7xfBOIWcGHi7mag5/hdZrKWw15jPGrHpjQeRAvTdszaPD+QLs3fx8A4M3e23mRZ9VrbpMngwcrqNAg=="))
    }

    @Test(arguments: DNSSECAlgorithm.allCases)
    func signaturesVerifyWithLibldns(algorithm: DNSSECAlgorithm) throws {
        let zk = ZoneKey(zone: Name.parse("Example.TEST.")!, flags: 256, key: .generate(algorithm))
        let now = UInt32(Date().timeIntervalSince1970)
        // Records given out of canonical order and with mixed case in names: the signature
        // covers the canonical form (RFC 4034 6), which libldns rebuilds on its own.
        let owner = Name.parse("WWW.example.test.")!
        let ns1 = Name.parse("NS2.Example.test.")!, ns2 = Name.parse("ns1.example.test.")!
        let sig = try RRSIG.make(owner: owner, type: RRType.ns, ttl: 300, rdatas: [ns1, ns2], key: zk, inception: now - 3600, expiration: now + 86400)
        let text = "WWW.example.test. 300 IN RRSIG NS \(algorithm.rawValue) 3 300 \(KeyFiles.time(now + 86400)) \(KeyFiles.time(now - 3600)) \(zk.tag) example.test. \(Data(sig[(sig.count - 64)...]).base64EncodedString())"
        let dnskey = "example.test. 300 IN DNSKEY 256 3 \(algorithm.rawValue) \(Data(zk.key.publicKey).base64EncodedString())"
        #expect(ldnsVerifies(rrset: ["WWW.example.test. 300 IN NS NS2.Example.test.", "WWW.example.test. 300 IN NS ns1.example.test."], rrsig: text, dnskey: dnskey))
        #expect(!ldnsVerifies(rrset: ["WWW.example.test. 300 IN NS ns3.example.test."], rrsig: text, dnskey: dnskey))
        // Wildcard owners: the Labels field leaves out the `*` (RFC 4034 3.1.3).
        #expect(RRSIG.labels(of: Name.parse("*.w.example.test.")!) == 3)
        #expect(RRSIG.labels(of: [0]) == 0)
    }

    @Test func typeBitmapOfRFC4034Section4_3() {
        let map = TypeBitmap.encode([RRType.a, RRType.mx, RRType.rrsig, RRType.nsec, 1234])
        #expect(map == [0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1B] + [UInt8](repeating: 0, count: 26) + [0x20])
        #expect(TypeBitmap.decode(map) == [RRType.a, RRType.mx, RRType.rrsig, RRType.nsec, 1234])
        #expect(TypeBitmap.decode([0, 0]) == nil && TypeBitmap.decode([0, 40] + [UInt8](repeating: 0, count: 40)) == nil)
    }

    @Test func compactDenialNamesTheImmediateSuccessor() {
        let owner = Name.parse("nx.example.test.")!
        let rdata = CompactDenial.nsec(owner: owner, types: [CompactDenial.nxname])
        #expect(Array(rdata.prefix(owner.count + 2)) == [1, 0] + owner)
        #expect(TypeBitmap.decode(Array(rdata[(owner.count + 2)...])) == [RRType.rrsig, RRType.nsec, CompactDenial.nxname])
    }

    @Test func keyFilesRoundTripInBINDFormat() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let timing = KeyTiming(created: 1_700_000_000, publish: 1_700_000_000, activate: 1_700_003_600, inactive: 1_800_000_000, delete: 1_800_086_400)
        let k = ZoneKey(zone: Name.parse("example.test.")!, flags: 257, key: .generate(.ed25519), timing: timing)
        let base = try KeyFiles.write(k, directory: dir)
        #expect(base.hasSuffix(String(format: "Kexample.test.+015+%05d", Int(k.tag))))
        var info = stat()
        #expect(stat(base + ".private", &info) == 0 && info.st_mode & 0o077 == 0)
        let (keys, diags) = KeyFiles.load(directory: dir)
        #expect(diags.isEmpty, "\(diags)")
        #expect(keys.count == 1 && keys[0].tag == k.tag && keys[0].dnskey == k.dnskey && keys[0].timing == timing)
        // libldns reads the public file as BIND would.
        let text = try String(contentsOfFile: base + ".key", encoding: .utf8).split(separator: "\n").last.map(String.init) ?? ""
        var rr: UnsafeMutablePointer<ldns_rr>? = nil
        #expect(ldns_rr_new_frm_str(&rr, text, 3600, nil, nil) == LDNS_STATUS_OK)
        #expect(ldns_calc_keytag(rr) == k.tag)
        ldns_rr_free(rr)
    }

    @Test func badKeyFilesAreFileLineErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let k = ZoneKey(zone: Name.parse("example.test.")!, flags: 256, key: .generate(.ecdsaP256SHA256))
        let base = try KeyFiles.write(k, directory: dir)
        let other = SigningKey.generate(.ecdsaP256SHA256)
        try "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: \(Data(other.raw).base64EncodedString())\n"
            .write(toFile: base + ".private", atomically: true, encoding: .utf8)
        #expect(KeyFiles.load(directory: dir).diagnostics.first?.description.contains("does not match the public key") == true)
        try "Private-key-format: v1.3\nAlgorithm: 8 (RSASHA256)\nPrivateKey: AAAA\n".write(toFile: base + ".private", atomically: true, encoding: .utf8)
        #expect(KeyFiles.load(directory: dir).diagnostics.first?.description.contains(":2: algorithm 8 is not supported") == true)
        try "Private-key-format: v1.3\nAlgorithm: 13\nPrivateKey: \(Data(k.key.raw).base64EncodedString())\nActivate: 2026-11-30\n".write(toFile: base + ".private", atomically: true, encoding: .utf8)
        #expect(KeyFiles.load(directory: dir).diagnostics.first?.description.contains(":4: Activate must be YYYYMMDDHHMMSS") == true)
    }

    @Test func timingDecidesPublishingAndSigning() {
        let t = KeyTiming(publish: 100, activate: 200, inactive: 300, delete: 400)
        #expect(!t.isPublished(at: 99) && t.isPublished(at: 100) && t.isPublished(at: 399) && !t.isPublished(at: 400))
        #expect(!t.isActive(at: 199) && t.isActive(at: 200) && !t.isActive(at: 300))
        #expect(KeyTiming().isActive(at: 0))
        #expect(KeyFiles.time("20100909100439") == 1_284_026_679 && KeyFiles.time(1_284_026_679) == "20100909100439")
        #expect(KeyFiles.time("20101309100439") == nil && KeyFiles.time("2010") == nil)
    }
}
