import DNSWire
import QueryEngine
import Testing
import ZoneStore

/// One expected answer: rcode, AA, and the records of each section as text.
struct Case: CustomTestStringConvertible, Sendable {
    var name: String
    var type: UInt16
    var rcode: UInt16 = RCode.noError
    var aa = true
    var answer: [String] = []
    var authority: [String] = []
    var additional: [String]? = nil
    var testDescription: String { "\(name) \(RRType.name(type))" }
}

let soa = "example.test. SOA"

@Suite("Answers from zone data")
struct AnswerTests {
    static let cases: [Case] = [
        Case(name: "www.example.test.", type: RRType.a, answer: ["www.example.test. A 192.0.2.80", "www.example.test. A 192.0.2.81"]),
        Case(name: "example.test.", type: RRType.aaaa, answer: ["example.test. AAAA 2001:db8:0:0:0:0:0:1"]),
        Case(name: "included.example.test.", type: RRType.a, answer: ["included.example.test. A 192.0.2.77"]),
        // NODATA and NXDOMAIN carry the SOA (RFC 2308).
        Case(name: "www.example.test.", type: RRType.aaaa, authority: [soa]),
        Case(name: "nothere.example.test.", type: RRType.a, rcode: RCode.nxDomain, authority: [soa]),
        // Empty non-terminal: NODATA, not NXDOMAIN (RFC 8020).
        Case(name: "b.ent.example.test.", type: RRType.a, authority: [soa]),
        Case(name: "ent.example.test.", type: RRType.txt, authority: [soa]),
        Case(name: "x.b.ent.example.test.", type: RRType.a, rcode: RCode.nxDomain, authority: [soa]),
        // CNAME followed in-zone (RFC 1034 4.3.2), chains, and qtype CNAME answered directly.
        Case(name: "alias.example.test.", type: RRType.a, answer: ["alias.example.test. CNAME www.example.test.", "www.example.test. A 192.0.2.80", "www.example.test. A 192.0.2.81"]),
        Case(name: "chain1.example.test.", type: RRType.a, answer: ["chain1.example.test. CNAME chain2.example.test.", "chain2.example.test. CNAME www.example.test.", "www.example.test. A 192.0.2.80", "www.example.test. A 192.0.2.81"]),
        Case(name: "alias.example.test.", type: RRType.cname, answer: ["alias.example.test. CNAME www.example.test."]),
        Case(name: "alias.example.test.", type: RRType.aaaa, answer: ["alias.example.test. CNAME www.example.test."], authority: [soa]),
        Case(name: "external.example.test.", type: RRType.a, answer: ["external.example.test. CNAME www.example.net."]),
        Case(name: "dangling.example.test.", type: RRType.a, rcode: RCode.nxDomain, answer: ["dangling.example.test. CNAME nothere.example.test."], authority: [soa]),
        Case(name: "tochild.example.test.", type: RRType.a, answer: ["tochild.example.test. CNAME www.sub.example.test.", "www.sub.example.test. A 192.0.2.211"]),
        // Wildcards (RFC 4592): synthesized with the query name, not for existing names, NODATA.
        Case(name: "foo.wild.example.test.", type: RRType.a, answer: ["foo.wild.example.test. A 192.0.2.99"]),
        Case(name: "a.b.wild.example.test.", type: RRType.txt, answer: ["a.b.wild.example.test. TXT"]),
        Case(name: "exists.wild.example.test.", type: RRType.a, answer: ["exists.wild.example.test. A 192.0.2.98"]),
        Case(name: "exists.wild.example.test.", type: RRType.txt, authority: [soa]),
        Case(name: "foo.wild.example.test.", type: RRType.mx, authority: [soa]),
        Case(name: "wild.example.test.", type: RRType.a, authority: [soa]),
        Case(name: "x.wcname.example.test.", type: RRType.a, answer: ["x.wcname.example.test. CNAME www.example.test.", "www.example.test. A 192.0.2.80", "www.example.test. A 192.0.2.81"]),
        // Referrals: NS in authority, glue in additional, AA clear.
        Case(name: "deleg.example.test.", type: RRType.a, aa: false, authority: ["deleg.example.test. NS ns.deleg.example.test.", "deleg.example.test. NS ns.other.example.net."], additional: ["ns.deleg.example.test. A 192.0.2.200"]),
        Case(name: "www.deleg.example.test.", type: RRType.aaaa, aa: false, authority: ["deleg.example.test. NS ns.deleg.example.test.", "deleg.example.test. NS ns.other.example.net."], additional: ["ns.deleg.example.test. A 192.0.2.200"]),
        Case(name: "ns.deleg.example.test.", type: RRType.a, aa: false, authority: ["deleg.example.test. NS ns.deleg.example.test.", "deleg.example.test. NS ns.other.example.net."], additional: ["ns.deleg.example.test. A 192.0.2.200"]),
        // DS is answered by the parent side of the cut (RFC 4035 3.1.4.1).
        Case(name: "deleg.example.test.", type: RRType.ds, answer: ["deleg.example.test. DS"]),
        Case(name: "sub.example.test.", type: RRType.ds, answer: ["sub.example.test. DS"]),
        Case(name: "x.deleg.example.test.", type: RRType.ds, aa: false, authority: ["deleg.example.test. NS ns.deleg.example.test.", "deleg.example.test. NS ns.other.example.net."], additional: ["ns.deleg.example.test. A 192.0.2.200"]),
        // The child zone is served: its data wins over the parent's delegation.
        Case(name: "www.sub.example.test.", type: RRType.a, answer: ["www.sub.example.test. A 192.0.2.211"]),
        Case(name: "sub.example.test.", type: RRType.soa, answer: ["sub.example.test. SOA"]),
        Case(name: "nope.sub.example.test.", type: RRType.a, rcode: RCode.nxDomain, authority: ["sub.example.test. SOA"]),
        // Additional section processing for NS, MX and SRV.
        Case(name: "example.test.", type: RRType.ns, answer: ["example.test. NS ns1.example.test.", "example.test. NS ns2.example.test."], additional: ["ns1.example.test. A 192.0.2.53", "ns2.example.test. A 192.0.2.54", "ns2.example.test. AAAA 2001:db8:0:0:0:0:0:54"]),
        Case(name: "example.test.", type: RRType.mx, answer: ["example.test. MX 10 mail.example.test."], additional: ["mail.example.test. A 192.0.2.25"]),
        Case(name: "_sip._tcp.example.test.", type: RRType.srv, answer: ["_sip._tcp.example.test. SRV"], additional: ["sip.example.test. A 192.0.2.60"]),
        // Other types.
        Case(name: "caa.example.test.", type: RRType.caa, answer: ["caa.example.test. CAA"]),
        Case(name: "ptr.example.test.", type: RRType.ptr, answer: ["ptr.example.test. PTR www.example.test."]),
        Case(name: "naptr.example.test.", type: RRType.naptr, answer: ["naptr.example.test. NAPTR"]),
        Case(name: "unknown.example.test.", type: 65280, answer: ["unknown.example.test. TYPE65280"]),
        // ANY: one RRset (RFC 8482).
        Case(name: "www.example.test.", type: RRType.any, answer: ["www.example.test. A 192.0.2.80", "www.example.test. A 192.0.2.81"]),
        Case(name: "b.ent.example.test.", type: RRType.any, authority: [soa]),
        // Outside every zone: REFUSED.
        Case(name: "www.example.net.", type: RRType.a, rcode: RCode.refused, aa: false),
        Case(name: ".", type: RRType.ns, rcode: RCode.refused, aa: false),
    ]

    @Test(arguments: cases)
    func answer(_ c: Case) throws {
        let r = try ask(c.name, c.type)
        #expect(RCode.name(r.rcode) == RCode.name(c.rcode))
        #expect(r.aa == c.aa)
        #expect(!r.tc && !r.ra && r.rd)
        #expect(r.answerText == c.answer)
        #expect(r.authorityText == c.authority)
        if let extra = c.additional { #expect(r.additionalText == extra) }
    }

    @Test func negativeTTLIsMinOfSOATTLAndMinimum() throws {
        let r = try ask("nothere.example.test.", RRType.a)
        #expect(r.authority.first?.ttl == 300)
        let child = try ask("nope.sub.example.test.", RRType.a)
        #expect(child.authority.first?.ttl == 60)
    }

    @Test func cnameLoopStops() throws {
        let r = try ask("loop1.example.test.", RRType.a)
        #expect(r.rcode == RCode.noError)
        #expect(r.answer.count == 12)
        #expect(r.answer.allSatisfy { $0.type == RRType.cname })
    }

    @Test func questionIsEchoedWithItsCase() throws {
        let q = makeQuery("wWw.ExAmPlE.tEsT.", RRType.a, id: 0xBEEF)
        let r = try DecodedMessage.decode(try #require(respond(q)))
        #expect(r.id == 0xBEEF)
        #expect(Name.text(r.questionName) == "wWw.ExAmPlE.tEsT.")
        #expect(r.answer.count == 2)
    }

    @Test func rdClearedStaysCleared() throws {
        let q = makeQuery("www.example.test.", RRType.a, flags: 0)
        let r = try DecodedMessage.decode(try #require(respond(q)))
        #expect(!r.rd && !r.ra && r.aa)
    }
}
