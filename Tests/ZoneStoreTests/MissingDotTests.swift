import Diagnostics
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
}
