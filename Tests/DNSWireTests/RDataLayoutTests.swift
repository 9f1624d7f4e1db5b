import Testing
@testable import DNSWire

/// The one table of names inside RDATA (issue: DNSSEC, structure first).
@Suite("RDATA layout and canonical form")
struct RDataLayoutTests {
    let example = Name.parse("Mail.Example.TEST.")!

    func written(_ type: UInt16, _ rdata: [UInt8], owner: [UInt8]) -> [UInt8] {
        let buffer = MessageBuffer()
        var w = MessageWriter(buffer: buffer, limit: 65535)
        for _ in 0..<12 { w.u8(0) }
        let ok = owner.withUnsafeBytes { o in rdata.withUnsafeBytes { w.record(owner: .name(o), type: type, ttl: 60, rdata: $0) } }
        #expect(ok)
        return Array(w.bytes)
    }

    @Test func mxTargetIsCompressedAgainstTheOwnerAndSrvIsNot() {
        let owner = Name.parse("example.test.")!
        let mx = written(RRType.mx, [0, 10] + Name.parse("mail.example.test.")!, owner: owner)
        // Owner at 12, then TYPE..RDLENGTH, then preference 10, "mail", pointer to offset 12.
        #expect(Array(mx.suffix(9)) == [0, 10, 4, 0x6D, 0x61, 0x69, 0x6C, 0xC0, 12])
        let srvRData: [UInt8] = [0, 1, 0, 2, 0, 80] + Name.parse("mail.example.test.")!
        let srv = written(RRType.srv, srvRData, owner: owner)
        // RFC 2782: the SRV target is never compressed.
        #expect(Array(srv.suffix(srvRData.count)) == srvRData)
    }

    @Test func theTableCoversTheTypesThatHoldNames() {
        #expect(RDataLayout.of(RRType.a) == nil && RDataLayout.of(RRType.txt) == nil)
        #expect(RDataLayout.of(RRType.ns)?.additionalTarget == true && RDataLayout.of(RRType.srv)?.additionalTarget == true)
        #expect(RDataLayout.of(RRType.srv)?.compressible == false && RDataLayout.of(RRType.cname)?.compressible == true)
        #expect(RDataLayout.of(RRType.soa)?.shape == .names(prefix: 0, count: 2))
        #expect(RDataLayout.of(RRType.rrsig)?.shape == .names(prefix: 18, count: 1))
    }

    @Test func canonicalFormLowercasesNamesOnlyWhereRFC4034Says() {
        let mx: [UInt8] = [0, 10] + example
        #expect(Canonical.rdata(type: RRType.mx, mx) == [0, 10] + Name.lowercased(example))
        // RFC 6840 5.1: NSEC's next name keeps its case.
        let nsec = example + [0, 1, 0x40]
        #expect(Canonical.rdata(type: RRType.nsec, nsec) == nsec)
        // TXT holds no name: left alone even if it looks like one.
        let txt: [UInt8] = [3, 0x41, 0x42, 0x43]
        #expect(Canonical.rdata(type: RRType.txt, txt) == txt)
        // NAPTR: the replacement after three character-strings.
        let naptr: [UInt8] = [0, 1, 0, 2, 1, 0x55, 0, 0] + example
        #expect(Canonical.rdata(type: RRType.naptr, naptr) == [0, 1, 0, 2, 1, 0x55, 0, 0] + Name.lowercased(example))
        // Malformed RDATA is returned as it is rather than trapping.
        #expect(Canonical.rdata(type: RRType.mx, [0]) == [0])
    }

    @Test func canonicalOrderIsOctetOrderShorterFirst() {
        let sets: [[UInt8]] = [[1, 2, 3], [1, 2], [0, 9, 9], [1, 2, 2]]
        #expect(Canonical.ordered(sets) == [[0, 9, 9], [1, 2], [1, 2, 2], [1, 2, 3]])
    }

    @Test func sameRDataIgnoresCaseOnlyInsideNames() {
        let a: [UInt8] = [0, 10] + example
        let b: [UInt8] = [0, 10] + Name.lowercased(example)
        #expect(a.withUnsafeBytes { x in b.withUnsafeBytes { Canonical.sameRData(type: RRType.mx, x, $0) } })
        #expect(![UInt8]([1, 0x41]).withUnsafeBytes { x in [UInt8]([1, 0x61]).withUnsafeBytes { Canonical.sameRData(type: RRType.txt, x, $0) } })
    }
}
