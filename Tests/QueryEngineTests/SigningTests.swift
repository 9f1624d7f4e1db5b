import CLDNS
import DNSSEC
import DNSWire
import Foundation
import QueryEngine
import Testing
import ZoneStore

/// Verifies every RRset in the answer and authority sections of a response with libldns
/// (`ldns_verify_rrsig_keylist_time`) against `keys` at `time`. Returns how many RRsets verified
/// and the ones that carry no RRSIG; a signature that does not verify is recorded as a failure.
func ldnsVerify(_ wire: [UInt8], keys: [ZoneKey], at time: UInt32, sourceLocation: SourceLocation = #_sourceLocation) -> (verified: Int, unsigned: [String]) {
    var pktp: UnsafeMutablePointer<ldns_pkt>? = nil
    guard wire.withUnsafeBytes({ ldns_wire2pkt(&pktp, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), $0.count) }) == LDNS_STATUS_OK,
          let p = pktp else {
        Issue.record("libldns cannot parse the response", sourceLocation: sourceLocation)
        return (0, [])
    }
    defer { ldns_pkt_free(p) }
    let keyList = ldns_rr_list_new()
    defer { ldns_rr_list_deep_free(keyList) }
    for k in keys {
        var rr: UnsafeMutablePointer<ldns_rr>? = nil
        let text = "\(Name.text(k.zone)) 3600 IN DNSKEY \(k.flags) 3 \(k.key.algorithm.rawValue) \(Data(k.key.publicKey).base64EncodedString())"
        if ldns_rr_new_frm_str(&rr, text, 3600, nil, nil) == LDNS_STATUS_OK { ldns_rr_list_push_rr(keyList, rr) }
    }
    var verified = 0
    var unsigned: [String] = []
    for section in [ldns_pkt_answer(p), ldns_pkt_authority(p)] {
        let n = ldns_rr_list_rr_count(section)
        var done: [(UnsafeMutablePointer<ldns_rdf>, ldns_rr_type)] = []
        for i in 0..<n {
            guard let rr = ldns_rr_list_rr(section, i) else { continue }
            let type = ldns_rr_get_type(rr)
            if type == LDNS_RR_TYPE_RRSIG { continue }
            let owner = ldns_rr_owner(rr)
            if done.contains(where: { ldns_dname_compare($0.0, owner) == 0 && $0.1 == type }) { continue }
            done.append((owner!, type))
            let set = ldns_rr_list_new()
            defer { ldns_rr_list_deep_free(set) }
            var sigs: [UnsafeMutablePointer<ldns_rr>] = []
            for j in 0..<n {
                guard let other = ldns_rr_list_rr(section, j), ldns_dname_compare(ldns_rr_owner(other), owner) == 0 else { continue }
                if ldns_rr_get_type(other) == type { ldns_rr_list_push_rr(set, ldns_rr_clone(other)) }
                if ldns_rr_get_type(other) == LDNS_RR_TYPE_RRSIG, ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(other)) == type { sigs.append(other) }
            }
            let text = "\(String(cString: ldns_rdf2str(owner))) \(type.rawValue)"
            if sigs.isEmpty { unsigned.append(text); continue }
            for sig in sigs {
                let good = ldns_rr_list_new()
                let status = ldns_verify_rrsig_keylist_time(set, sig, keyList, time_t(time), good)
                ldns_rr_list_free(good)
                if status == LDNS_STATUS_OK {
                    verified += 1
                } else {
                    Issue.record("RRSIG over \(text) does not verify: \(String(cString: ldns_get_errorstr_by_id(status)))", sourceLocation: sourceLocation)
                }
            }
        }
    }
    return (verified, unsigned)
}

/// Signed answers (issue: DNSSEC): every response checked by libldns against the keys.
@Suite("Signed answers")
struct SigningTests {
    static let now: UInt32 = 1_800_000_000
    let csk = ZoneKey(zone: Name.parse("example.test.")!, flags: 257, key: .generate(.ecdsaP256SHA256))
    let subKey = ZoneKey(zone: Name.parse("sub.example.test.")!, flags: 257, key: .generate(.ed25519))

    func snapshot(keys: [ZoneKey]? = nil, zones: ZoneSet = fixtureZones) -> Snapshot {
        Snapshot(zones: zones, keys: keys ?? [csk, subKey], now: Self.now)
    }

    /// Asks with DO=1 at `now` and returns the response octets and the outcome.
    func signedAsk(_ name: String, _ type: UInt16, snapshot s: Snapshot, do dnssec: Bool = true, transport: Transport = .udp,
                   payload: UInt16 = 4096, scratch: QueryScratch = QueryScratch(), now: UInt32 = SigningTests.now) throws -> ([UInt8], DecodedMessage, QueryOutcome) {
        let q = makeQuery(name, type, opt: OPTSpec(payload: payload, dnssecOK: dnssec))
        let buffer = scratch.buffer
        buffer.nowSeconds = now
        let o = q.withUnsafeBytes { QueryProcessor.respond(to: $0, transport: transport, snapshot: s, scratch: scratch) }
        let r = Array(UnsafeRawBufferPointer(rebasing: buffer.storage[0..<o.length]))
        let d = try DecodedMessage.decode(r)
        try crossCheck(r, d)
        return (r, d, o)
    }

    @Test(arguments: ["www.example.test.", "example.test.", "_sip._tcp.example.test.", "multi.example.test.", "naptr.example.test."])
    func staticAnswersAreSignedAndVerify(name: String) throws {
        let s = snapshot()
        for type in [RRType.a, RRType.srv, RRType.txt, RRType.naptr, RRType.ns, RRType.mx] {
            let (r, d, _) = try signedAsk(name, type, snapshot: s)
            let v = ldnsVerify(r, keys: [csk], at: Self.now)
            #expect(v.unsigned.isEmpty, "\(name) \(type): \(v.unsigned)")
            #expect(v.verified >= 1, "\(name) \(type) \(d)")
        }
    }

    @Test func cnameChainAndWildcardAreSignedAsTheNamesAsked() throws {
        let s = snapshot()
        let (r1, d1, _) = try signedAsk("chain1.example.test.", RRType.a, snapshot: s)
        #expect(d1.answer.filter { $0.type == RRType.rrsig }.count == 3)
        #expect(ldnsVerify(r1, keys: [csk], at: Self.now) == (3, []))
        // A wildcard answer is signed for the name asked (Labels = its labels): an exact
        // answer to a validator, which needs no proof that no closer name exists.
        let (r2, d2, _) = try signedAsk("anything.wild.example.test.", RRType.a, snapshot: s)
        let sig = try #require(d2.answer.first { $0.type == RRType.rrsig })
        #expect(sig.rdata[3] == 4)
        #expect(ldnsVerify(r2, keys: [csk], at: Self.now) == (1, []))
    }

    @Test func nxdomainIsCompactDenial() throws {
        let (r, d, _) = try signedAsk("nothere.example.test.", RRType.a, snapshot: snapshot())
        // RFC 9824: NOERROR, SOA and an NSEC at the name asked listing NXNAME, both signed.
        #expect(d.rcode == RCode.noError && d.answer.isEmpty)
        let nsec = try #require(d.authority.first { $0.type == RRType.nsec })
        #expect(nsec.name == Name.parse("nothere.example.test.")!)
        let next = Array(nsec.rdata.prefix(2 + nsec.name.count))
        #expect(next == [1, 0] + Name.parse("nothere.example.test.")!)
        #expect(TypeBitmap.decode(Array(nsec.rdata[next.count...])) == [RRType.rrsig, RRType.nsec, CompactDenial.nxname])
        #expect(ldnsVerify(r, keys: [csk], at: Self.now) == (2, []))
        // Without DO the answer is the plain NXDOMAIN.
        let (_, plain, _) = try signedAsk("nothere.example.test.", RRType.a, snapshot: snapshot(), do: false)
        #expect(plain.rcode == RCode.nxDomain && !plain.authority.contains { $0.type == RRType.rrsig || $0.type == RRType.nsec })
    }

    @Test func nodataListsTheTypesThatExistButNotTheOneAsked() throws {
        let (r, d, _) = try signedAsk("www.example.test.", RRType.aaaa, snapshot: snapshot())
        let nsec = try #require(d.authority.first { $0.type == RRType.nsec })
        let types = TypeBitmap.decode(Array(nsec.rdata[(nsec.name.count + 2)...]))
        #expect(types == [RRType.a, RRType.rrsig, RRType.nsec])
        #expect(ldnsVerify(r, keys: [csk], at: Self.now) == (2, []))
        // An empty non-terminal: only RRSIG and NSEC.
        let (r2, d2, _) = try signedAsk("b.ent.example.test.", RRType.a, snapshot: snapshot())
        let ent = try #require(d2.authority.first { $0.type == RRType.nsec })
        #expect(TypeBitmap.decode(Array(ent.rdata[(ent.name.count + 2)...])) == [RRType.rrsig, RRType.nsec])
        #expect(ldnsVerify(r2, keys: [csk], at: Self.now).unsigned.isEmpty)
    }

    @Test func dnskeyAndCDSAtTheApexAreSignedByTheKSK() throws {
        let zsk = ZoneKey(zone: Name.parse("example.test.")!, flags: 256, key: .generate(.ed25519))
        let s = snapshot(keys: [csk, zsk])
        let (r, d, _) = try signedAsk("example.test.", RRType.dnskey, snapshot: s)
        #expect(Set(d.answer.filter { $0.type == RRType.dnskey }.map(\.rdata)) == [csk.dnskey, zsk.dnskey])
        let sigs = d.answer.filter { $0.type == RRType.rrsig }
        #expect(sigs.count == 1 && sigs[0].rdata[16] == UInt8(csk.tag >> 8) && sigs[0].rdata[17] == UInt8(csk.tag & 0xFF))
        #expect(ldnsVerify(r, keys: [csk], at: Self.now) == (1, []))
        // Data is signed by the ZSK alone.
        let (r2, d2, _) = try signedAsk("www.example.test.", RRType.a, snapshot: s)
        let sig = try #require(d2.answer.first { $0.type == RRType.rrsig })
        #expect(sig.rdata[16] == UInt8(zsk.tag >> 8) && sig.rdata[17] == UInt8(zsk.tag & 0xFF))
        #expect(ldnsVerify(r2, keys: [zsk], at: Self.now) == (1, []))
        let (_, cds, _) = try signedAsk("example.test.", RRType.cds, snapshot: s)
        #expect(cds.answer.first { $0.type == RRType.cds }?.rdata == csk.ds)
    }

    @Test func referralsCarryTheDSOrItsDenial() throws {
        let s = snapshot()
        let (r, d, _) = try signedAsk("www.deleg.example.test.", RRType.a, snapshot: s)
        #expect(d.authority.contains { $0.type == RRType.ds } && d.authority.contains { $0.type == RRType.rrsig })
        // The NS set at a cut is not signed (RFC 4035 2.2); the DS is.
        #expect(ldnsVerify(r, keys: [csk], at: Self.now) == (1, ["deleg.example.test. 2"]))
        let z = ZoneLoader.load(text: "$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nkid NS ns.kid\nns.kid A 192.0.2.2\n", origin: "example.test.")
        let zones = ZoneSet(zones: [try #require(z.zone)])
        let (r2, d2, _) = try signedAsk("a.kid.example.test.", RRType.a, snapshot: snapshot(zones: zones))
        let nsec = try #require(d2.authority.first { $0.type == RRType.nsec })
        #expect(TypeBitmap.decode(Array(nsec.rdata[(nsec.name.count + 2)...])) == [RRType.ns, RRType.rrsig, RRType.nsec])
        #expect(ldnsVerify(r2, keys: [csk], at: Self.now).verified == 1)
    }

    @Test func poolAnswersAreSignedOncePerAddressSet() throws {
        let o = SnapshotBuilder.build(directory: fixtures + "/pools")
        let base = try #require(o.snapshot)
        let key = ZoneKey(zone: Name.parse("gslb.test.")!, flags: 257, key: .generate(.ecdsaP256SHA256))
        let s = Snapshot(zones: base.zones, pools: base.pools, keys: [key], now: Self.now)
        let scratch = QueryScratch(seed: 3)
        let (r, _, first) = try signedAsk("www.gslb.test.", RRType.a, snapshot: s, scratch: scratch)
        #expect(first.signaturesMade == 1 && first.signatureHits == 0)
        #expect(ldnsVerify(r, keys: [key], at: Self.now) == (1, []))
        for _ in 0..<20 {
            let (r2, _, again) = try signedAsk("www.gslb.test.", RRType.a, snapshot: s, scratch: scratch)
            #expect(again.signaturesMade == 0 && again.signatureHits == 1)
            #expect(ldnsVerify(r2, keys: [key], at: Self.now).verified == 1)
        }
        // A pool CNAME and the answer it leads to are both signed.
        let (r3, d3, _) = try signedAsk("cdn.gslb.test.", RRType.a, snapshot: s, scratch: scratch)
        #expect(d3.answer.contains { $0.type == RRType.cname })
        #expect(ldnsVerify(r3, keys: [key], at: Self.now).unsigned.isEmpty)
    }

    @Test func signaturesAreMadeAgainBeforeTheyExpire() throws {
        let s = snapshot()
        let scratch = QueryScratch()
        _ = try signedAsk("www.example.test.", RRType.a, snapshot: s, scratch: scratch)
        let (_, _, soon) = try signedAsk("www.example.test.", RRType.a, snapshot: s, scratch: scratch, now: Self.now + 10 * 86_400)
        #expect(soon.signatureHits == 1)
        // Less than `refresh` (3 days) of the 14-day validity left: signed anew, valid from then.
        let later = Self.now + 12 * 86_400
        let (r, d, after) = try signedAsk("www.example.test.", RRType.a, snapshot: s, scratch: scratch, now: later)
        #expect(after.signaturesMade == 1)
        let sig = try #require(d.answer.first { $0.type == RRType.rrsig })
        let inception = UInt32(sig.rdata[12]) << 24 | UInt32(sig.rdata[13]) << 16 | UInt32(sig.rdata[14]) << 8 | UInt32(sig.rdata[15])
        #expect(inception == later - 3_600)
        #expect(ldnsVerify(r, keys: [csk], at: later) == (1, []))
    }

    @Test func aSignedAnswerThatDoesNotFitIsTruncatedWhole() throws {
        let (_, d, o) = try signedAsk("big.example.test.", RRType.txt, snapshot: snapshot(), payload: 512)
        #expect(o.truncated && d.answer.isEmpty)
        let (r, tcp, _) = try signedAsk("big.example.test.", RRType.txt, snapshot: snapshot(), transport: .tcp)
        #expect(tcp.answer.contains { $0.type == RRType.rrsig })
        #expect(ldnsVerify(r, keys: [csk], at: Self.now) == (1, []))
    }

    @Test func keyTimingDecidesWhoSigns() throws {
        var old = ZoneKey(zone: Name.parse("example.test.")!, flags: 256, key: .generate(.ecdsaP256SHA256))
        old.timing = KeyTiming(publish: 0, activate: 0, inactive: Self.now + 100, delete: Self.now + 200)
        var new = ZoneKey(zone: Name.parse("example.test.")!, flags: 256, key: .generate(.ecdsaP256SHA256))
        new.timing = KeyTiming(publish: Self.now - 100, activate: Self.now + 100)
        let keys = [csk, old, new]
        let before = Snapshot(zones: fixtureZones, keys: keys, now: Self.now)
        #expect(before.signers[0]?.dataSigners.map(\.tag) == [old.tag])
        #expect(Set(before.signers[0]?.dnskeys ?? []) == [csk.dnskey, old.dnskey, new.dnskey])
        #expect(!before.keyStateChanged(since: Self.now, now: Self.now + 99))
        #expect(before.keyStateChanged(since: Self.now, now: Self.now + 100))
        let after = before.resigned(at: Self.now + 100, generation: 2)
        #expect(after.signers[0]?.dataSigners.map(\.tag) == [new.tag])
        let gone = before.resigned(at: Self.now + 200, generation: 3)
        #expect(Set(gone.signers[0]?.dnskeys ?? []) == [csk.dnskey, new.dnskey])
        // Unsigned when no key is active.
        var dormant = csk
        dormant.timing = KeyTiming(publish: Self.now + 1000, activate: Self.now + 1000)
        #expect(Snapshot(zones: fixtureZones, keys: [dormant], now: Self.now).signers[0] == nil)
    }
}

@Suite("Signing configuration")
struct SigningConfigurationTests {
    func directory(zone: String) throws -> (String, String) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("signcfg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: base + "/zones", withIntermediateDirectories: true)
        try zone.write(toFile: base + "/zones/example.test.zone", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: base + "/keys", withIntermediateDirectories: true)
        return (base + "/zones", base + "/keys")
    }

    @Test func keysForUnservedZonesAndOfflineSignaturesAreErrors() throws {
        let zone = "$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n"
        let (zones, keys) = try directory(zone: zone)
        defer { try? FileManager.default.removeItem(atPath: (zones as NSString).deletingLastPathComponent) }
        _ = try KeyFiles.write(ZoneKey(zone: Name.parse("example.test.")!, flags: 257, key: .generate(.ecdsaP256SHA256)), directory: keys)
        let ok = SnapshotBuilder.build(directory: zones, keysDirectory: keys, now: 1_800_000_000)
        #expect(ok.errors.isEmpty && ok.snapshot?.signers.first??.dataSigners.count == 1, "\(ok.diagnostics)")
        _ = try KeyFiles.write(ZoneKey(zone: Name.parse("other.test.")!, flags: 257, key: .generate(.ed25519)), directory: keys)
        let unserved = SnapshotBuilder.build(directory: zones, keysDirectory: keys, now: 1_800_000_000)
        #expect(unserved.snapshot == nil && unserved.errors.contains { $0.message.contains("other.test., which is not a served zone") }, "\(unserved.diagnostics)")
        let (zones2, keys2) = try directory(zone: zone + "@ NSEC ns.example.test. A NS SOA\n")
        defer { try? FileManager.default.removeItem(atPath: (zones2 as NSString).deletingLastPathComponent) }
        _ = try KeyFiles.write(ZoneKey(zone: Name.parse("example.test.")!, flags: 257, key: .generate(.ecdsaP256SHA256)), directory: keys2)
        let offline = SnapshotBuilder.build(directory: zones2, keysDirectory: keys2, now: 1_800_000_000)
        #expect(offline.snapshot == nil && offline.errors.contains { $0.message.contains("holds NSEC records") }, "\(offline.diagnostics)")
    }
}
