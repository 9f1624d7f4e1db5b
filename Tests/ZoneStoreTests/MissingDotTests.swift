import Diagnostics
import DNSWire
import Testing
import ZoneStore

/// Issue 18, finding 9: a target written without its final dot passed `check`, even `--strict`.
@Suite struct MissingDotTests {
    @Test func aTargetThatRepeatsTheOriginIsAWarning() {
        let text = """
            $TTL 300
            @ SOA ns1 hostmaster 1 3600 600 604800 60
            @ NS ns1
            ns1 A 192.0.2.1
            www CNAME web.gslb.example.com
            mail MX 10 mx.gslb.example.com
            ok CNAME web.gslb.example.com.
            web A 192.0.2.2

            """
        let r = ZoneLoader.load(text: text, origin: "gslb.example.com.", file: "t.zone")
        let warnings = r.diagnostics.filter { $0.severity == .warning }.map(\.description)
        #expect(warnings == [
            "t.zone:5: warning: CNAME target web.gslb.example.com.gslb.example.com. repeats the origin gslb.example.com.: is the final dot missing?",
            "t.zone:6: warning: MX target mx.gslb.example.com.gslb.example.com. repeats the origin gslb.example.com.: is the final dot missing?",
        ])
        #expect(r.zone != nil)
    }

    /// The second half: an in-zone target that is no name of the zone (and no wildcard's)
    /// answers NXDOMAIN; pool names, wildcards and names below a cut are not dangling.
    @Test func anInZoneTargetThatDoesNotExistIsAWarning() {
        let text = """
            $TTL 300
            @ SOA ns1 hostmaster 1 3600 600 604800 60
            @ NS ns1
            @ MX 10 mial
            ns1 A 192.0.2.1
            www CNAME wbe
            _sip._tcp SRV 0 0 5060 sip
            pooled CNAME app
            wild CNAME x.apps
            *.apps A 192.0.2.3
            far CNAME host.deleg
            deleg NS ns.elsewhere.example.
            out CNAME web.example.net.
            ent CNAME b.a
            c.b.a A 192.0.2.4

            """
        let bindings = [NameBinding(name: Name.parse("app.gslb.example.com.")!, pool: 0, answersCNAME: false, file: "pools.yaml", line: 3)]
        let r = ZoneLoader.load(text: text, origin: "gslb.example.com.", file: "t.zone", bindings: bindings)
        let warnings = r.diagnostics.filter { $0.severity == .warning }.map(\.description)
        #expect(warnings.sorted() == [
            "t.zone:4: warning: MX target mial.gslb.example.com. does not exist in gslb.example.com. (it answers NXDOMAIN)",
            "t.zone:6: warning: CNAME target wbe.gslb.example.com. does not exist in gslb.example.com. (it answers NXDOMAIN)",
            "t.zone:7: warning: SRV target sip.gslb.example.com. does not exist in gslb.example.com. (it answers NXDOMAIN)",
        ])
        #expect(r.zone != nil)
    }
}
