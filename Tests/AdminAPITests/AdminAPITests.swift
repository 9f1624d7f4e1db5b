import Foundation
import Hummingbird
import MeridianServer
import Testing
@testable import AdminAPI

@Suite("Admin API pieces")
struct AdminAPITests {
    @Test func tokensFromBearerAndBasicHeaders() {
        #expect(AuthMiddleware<BasicRequestContext>.token("Bearer abcdefghijklmnop") == "abcdefghijklmnop")
        let basic = Data("admin:abcdefghijklmnop".utf8).base64EncodedString()
        #expect(AuthMiddleware<BasicRequestContext>.token("Basic \(basic)") == "abcdefghijklmnop")
        #expect(AuthMiddleware<BasicRequestContext>.token("Basic !!!") == nil)
        #expect(AuthMiddleware<BasicRequestContext>.token(nil) == nil)
        #expect(AuthMiddleware<BasicRequestContext>.constantTimeEqual("secret-token-123", "secret-token-123"))
        #expect(!AuthMiddleware<BasicRequestContext>.constantTimeEqual("secret-token-123", "secret-token-124"))
        #expect(!AuthMiddleware<BasicRequestContext>.constantTimeEqual("secret", "secret-token-123"))
    }

    @Test func tokenFile() throws {
        #expect(try AdminTokenFile.parse("# current\nabcdefghijklmnopqrst\nqrstuvwxyzabcdefgh # old\n", file: "t") == ["abcdefghijklmnopqrst", "qrstuvwxyzabcdefgh"])
        #expect(throws: AdminConfigError.self) { try AdminTokenFile.parse("short\n", file: "t") }
        #expect(throws: AdminConfigError.self) { try AdminTokenFile.parse("# none\n", file: "t") }
        #expect(AdminConfig(host: "127.0.0.2").isLoopback && AdminConfig(host: "::1").isLoopback && !AdminConfig(host: "0.0.0.0").isLoopback)
    }

    @Test func overrideRequests() throws {
        let o = try OverrideRequest.parse(Data(#"{"member":"app/*/a","state":"DRAIN","weight":25,"reason":"r","expires_in":60}"#.utf8), now: 1000)
        #expect(o.pattern == "app/*/a" && o.state == .drain && o.weightFactor == 0.25 && o.reason == "r" && o.expires == 1060)
        let e = try OverrideRequest.parse(Data(#"{"member":"x","state":"down","expires":"2026-12-01T04:40:00Z"}"#.utf8), now: 0)
        #expect(e.expires == 1_796_100_000)
        for bad in [#"{"state":"down"}"#, #"{"member":"x","state":"maybe"}"#, #"{"member":"x","state":"up","weight":101}"#,
                    #"{"member":"x","state":"up","expires":"tomorrow"}"#, #"{"member":"x","state":"up","expires_in":-1}"#, "not json"] {
            #expect(throws: HTTPError.self) { try OverrideRequest.parse(Data(bad.utf8), now: 0) }
        }
    }

    @Test func statusPageShowsMembersWithTheirStateAndEscapesText() throws {
        let json = """
            {"instance":"ns1","generation":7,"healthGeneration":42,"startedAt":1796000000,"now":1796000100,"zonesDirectory":"Zones","files":[],
             "verdictPolicy":"majority","zones":[],"peers":[],"overrides":[],
             "pools":[{"name":"www","mode":"multi-site","names":["www.example."],"ttl":30,"degraded":true,"sites":[
               {"name":"fra","backup":false,"usable":false,"healthy":0,"members":[
                 {"id":"www/fra/a","name":"a","address":"192.0.2.1","state":"down","weight":100,"weightFactor":1,"effectiveWeight":0,
                  "decidedBy":"check http:80/: <script>","probers":["ns1"],"checks":[],"agents":[],
                  "transitions":[{"at":1796000000,"from":"up","to":"down","reason":"HTTP 503"}]}]}]}]}
            """
        let status = try JSONDecoder().decode(ServerStatus.self, from: Data(json.utf8))
        let html = StatusPage.render(status)
        #expect(html.contains(#"data-member="www/fra/a" data-state="down""#))
        #expect(html.contains("&lt;script&gt;") && !html.contains("<script>"))
        #expect(html.contains("up → down") && html.contains("http-equiv=\"refresh\""))
        #expect(html.contains("configuration generation 7") && html.contains("health generation 42"))
    }
}

@Suite("Status page actions and sparklines")
struct PageActionTests {
    @Test func formsAreDecodedAndBounded() throws {
        var b = ByteBuffer(string: "member=lb%2Fa%2F192.0.2.1&state=drain&reason=kernel+update&weight=")
        let form = try PageActions.form(b)
        #expect(form == ["member": "lb/a/192.0.2.1", "state": "drain", "reason": "kernel update", "weight": ""])
        b = ByteBuffer(string: (0..<17).map { "f\($0)=1" }.joined(separator: "&"))
        #expect(throws: HTTPError.self) { try PageActions.form(b) }
        b = ByteBuffer(string: "a=%ZZ")
        #expect(throws: HTTPError.self) { try PageActions.form(b) }
        #expect(throws: HTTPError.self) { try PageActions.override(["member": "lb/*", "state": "drain", "reason": "  "], now: 0) }
        let o = try PageActions.override(["member": "lb/*", "state": "down", "reason": "r", "weight": "50", "expires_in": "2h"], now: 1000)
        #expect(o.state == .down && o.weightFactor == 0.5 && o.expires == 1000 + 7200 && o.reason == "r")
    }

    @Test func theCSRFTokenFollowsTheCredential() {
        let a = PageActions()
        func request(_ auth: String?) -> Request {
            var head = HTTPRequest(method: .post, scheme: "http", authority: "h", path: "/ui/override")
            if let auth { head.headerFields[.authorization] = auth }
            return Request(head: head, body: .init(buffer: ByteBuffer()))
        }
        let one = a.csrf(for: request("Bearer one"))
        #expect(one.count == 32 && one == a.csrf(for: request("Basic " + Data("x:one".utf8).base64EncodedString())))
        #expect(one != a.csrf(for: request("Bearer two")) && one != PageActions().csrf(for: request("Bearer one")))
        #expect(throws: HTTPError.self) { try a.checkOrigin(request("Bearer one"), form: ["csrf": "00"]) }
        #expect(throws: Never.self) { try a.checkOrigin(request("Bearer one"), form: ["csrf": one]) }
    }

    @Test func ratesComeFromCounterDifferencesAndResets() async {
        let h = AnswerHistory(interval: 10, samples: 3)
        func series(_ v: Double) -> [MetricsText.Series: Double] {
            [MetricsText.Series(name: "meridian_pool_answers_total", labels: ["pool": "lb", "site": "a", "route": "site", "fallback": "no"]): v,
             MetricsText.Series(name: "meridian_pool_answers_total", labels: ["pool": "lb", "site": "-", "route": "all-down-nodata", "fallback": "no"]): 0]
        }
        await h.record(series(0), at: 0)
        #expect(await h.rates().isEmpty)
        await h.record(series(100), at: 10)
        await h.record(series(300), at: 20)
        await h.record(series(50), at: 30)  // a reset: 50 new answers
        let r = await h.rates()
        #expect(r["lb"] == [20, 5] && r["lb/a"] == [20, 5] && r["lb/-"] == nil)
        #expect(Sparkline.svg([1, 2]).contains("<polyline") && Sparkline.svg([]).contains("no rate yet"))
    }
}
