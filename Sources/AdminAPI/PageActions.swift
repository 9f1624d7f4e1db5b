import Crypto
import Foundation
import Health
import HTTPTypes
import Hummingbird
import MeridianServer

/// Drain, undrain and override from the status page (issue 19), as HAProxy's admin mode
/// allows, without a script: a member's page (`GET /ui/member?id=`) holds a form; posting it
/// shows what it would do and how many members it matches, and asks again; only the second
/// post (with `confirm=yes`) changes anything, through the same `setOverride` and
/// `removeOverride` as `POST /overrides`. A reason is required.
///
/// The browser sends the token itself (HTTP Basic), so another site's form could post with
/// it: every form carries a CSRF token, an HMAC of the credential under a per-process secret,
/// and a post is refused unless it carries the right one and its `Origin` and
/// `Sec-Fetch-Site` (when the browser sends them) say it came from this page.
struct PageActions: Sendable {
    let secret: [UInt8] = (0..<32).map { _ in UInt8.random(in: 0...255) }

    /// The CSRF token of the credential a request presented ("" without tokens).
    func csrf(for request: Request) -> String {
        let credential = AuthMiddleware<BasicRequestContext>.token(request.headers[.authorization]) ?? ""
        let mac = HMAC<SHA256>.authenticationCode(for: Data("meridian-page-csrf\u{0}\(credential)".utf8), using: SymmetricKey(data: secret))
        return mac.prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    /// Refuses a post that is not from this server's own page.
    func checkOrigin(_ request: Request, form: [String: String]) throws {
        guard let given = form["csrf"], AuthMiddleware<BasicRequestContext>.constantTimeEqual(given, csrf(for: request)) else {
            throw HTTPError(.forbidden, message: "the form's CSRF token is missing or wrong: open the page again and resubmit")
        }
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!], !["same-origin", "none"].contains(site) {
            throw HTTPError(.forbidden, message: "a cross-site form post is refused (Sec-Fetch-Site: \(site))")
        }
        if let origin = request.headers[HTTPField.Name("Origin")!], let host = request.head.authority,
           origin != "http://\(host)" && origin != "https://\(host)" {
            throw HTTPError(.forbidden, message: "a form post from another origin is refused (Origin: \(origin))")
        }
    }

    /// An `application/x-www-form-urlencoded` body: at most 16 fields, each at most 1,024 octets.
    static func form(_ body: ByteBuffer) throws -> [String: String] {
        let text = String(buffer: body)
        var out: [String: String] = [:]
        let pairs = text.split(separator: "&", omittingEmptySubsequences: true)
        guard pairs.count <= 16 else { throw HTTPError(.badRequest, message: "too many form fields") }
        for pair in pairs {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String? { s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
            guard let k = decode(kv[0]), let v = kv.count == 2 ? decode(kv[1]) : "", k.utf8.count <= 64, v.utf8.count <= 1024 else {
                throw HTTPError(.badRequest, message: "a form field is malformed or too long")
            }
            out[k] = v
        }
        return out
    }

    /// The override a form describes, read by the same rules as `POST /overrides`.
    static func override(_ form: [String: String], now: Double) throws -> AdminOverride {
        guard let member = form["member"], !member.isEmpty else { throw HTTPError(.badRequest, message: "name the member (a POOL/SITE/NAME glob)") }
        guard let reason = form["reason"]?.trimmingCharacters(in: .whitespaces), !reason.isEmpty else {
            throw HTTPError(.badRequest, message: "give a reason: it is kept with the override and shown to every operator")
        }
        var body: [String: Any] = ["member": member, "state": form["state"] ?? "", "reason": reason]
        if let w = form["weight"], !w.isEmpty {
            guard let n = Double(w) else { throw HTTPError(.badRequest, message: "weight must be a percentage from 0 to 100") }
            body["weight"] = n
        }
        if let e = form["expires_in"], !e.isEmpty { body["expires_in"] = e }
        return try OverrideRequest.parse(try JSONSerialization.data(withJSONObject: body), now: now)
    }

    static func html(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
        let page = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Meridian</title><style>"
            + "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222} .warn{background:#fff3e0;padding:.5em} .err{background:#fdecea;padding:.5em}"
            + "label{display:block;margin:.4em 0} button{margin-top:.6em}</style></head><body>\(body)<p><a href=\"/\">back to the status page</a></p></body></html>"
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: page)))
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
    }

    static func hidden(_ fields: [String: String]) -> String {
        fields.sorted { $0.key < $1.key }.map { "<input type=\"hidden\" name=\"\(escape($0.key))\" value=\"\(escape($0.value))\">" }.joined()
    }

    /// The member's form: state, weight, reason, expiry.
    static func memberPage(_ m: ServerStatus.MemberInfo, csrf: String) -> String {
        """
        <h1>Member \(escape(m.id))</h1>
        <p>now <b>\(escape(m.state))</b>, weight \(m.effectiveWeight), decided by \(escape(m.decidedBy))</p>
        <form method="post" action="/ui/override" id="override-form">\(hidden(["csrf": csrf]))
        <label>members (a POOL/SITE/NAME glob) <input name="member" value="\(escape(m.id))" size="40"></label>
        <label>state <select name="state"><option value="drain">drain (no new answers)</option><option value="down">down</option><option value="up">up (force)</option></select></label>
        <label>weight, percent (optional) <input name="weight" size="5"></label>
        <label>reason (required) <input name="reason" required size="40"></label>
        <label>expires in (optional: 30m, 2h, 1d) <input name="expires_in" size="8"></label>
        <button type="submit">review…</button></form>
        """
    }

    /// What a post would do, with a button that does it.
    static func confirmPage(title: String, what: String, action: String, fields: [String: String]) -> String {
        var f = fields
        f["confirm"] = "yes"
        return "<h1>\(escape(title))</h1><p class=\"warn\" id=\"confirm-text\">\(escape(what))</p>"
            + "<form method=\"post\" action=\"\(action)\" id=\"confirm-form\">\(hidden(f))<button type=\"submit\" id=\"confirm\">yes, do it</button></form>"
    }
}
