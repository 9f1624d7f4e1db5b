import Health
import Foundation
import MeridianServer
import Mustache

/// The server-rendered status page at `/`, problems first (issue 19): a summary line, then
/// everything that is not healthy (members down or drained with how long, sites not usable,
/// degraded pools, peers not alive or with another configuration, a failed last reload with its
/// `file:line` errors), then the pools, each folded unless it has a problem. Times are honest:
/// "checked 0.8 s ago", "down since 14:00:58". Plain HTML and CSS (no script); it reloads
/// itself every 5 seconds. Pools and sites carry a sparkline of their answers per second over the
/// last ten minutes (inline SVG); each member links to its form (drain, down, up, weight, with a
/// reason and an expiry) and each override has a remove button, both confirmed on a page of their
/// own (`PageActions`). Members carry `data-member` and `data-state`, problems
/// `data-problem`, for tests and for scraping by hand.
enum StatusPage {
    struct CheckRow { var observer: String; var check: String; var result: String; var reason: String; var at: String; var ago: String; var up: Bool }
    struct ProblemRow { var kind: String; var subject: String; var text: String }
    struct TransitionRow { var at: String; var from: String; var to: String; var reason: String }
    struct MemberRow {
        var id: String; var name: String; var address: String; var state: String; var since: String; var weight: String; var decidedBy: String
        var probers: String; var checks: [CheckRow]; var agents: String; var transitions: [TransitionRow]
        /// The member's form page, `/ui/member?id=` with the id percent-encoded.
        var link: String
    }
    struct SiteRow { var name: String; var note: String; var members: [MemberRow]; var spark: String; var usable: Bool }
    struct PoolRow {
        var name: String; var mode: String; var names: String; var ttl: UInt32; var degraded: Bool; var sites: [SiteRow]
        var open: Bool; var healthy: String; var spark: String
    }
    struct PeerRow { var name: String; var address: String; var state: String; var config: String; var same: Bool }
    struct OverrideRow { var id: String; var member: String; var state: String; var weight: String; var reason: String; var expires: String; var setBy: String }
    struct Page {
        var instance: String; var generation: Int; var healthGeneration: Int; var now: String; var started: String; var policy: String
        var zones: String; var pools: [PoolRow]; var peers: [PeerRow]; var hasPeers: Bool; var overrides: [OverrideRow]; var hasOverrides: Bool
        var summary: String; var allWell: Bool; var problems: [ProblemRow]; var reloadErrors: [String]; var hasReloadErrors: Bool
        /// The CSRF token of the page's forms (`PageActions`).
        var csrf: String
    }

    static let template: MustacheTemplate? = try? MustacheTemplate(string: html)

    /// - Parameters:
    ///   - rates: answers per second per pool and `pool/site` over the last minutes (`AnswerHistory`).
    ///   - csrf: the token the page's forms carry.
    static func render(_ s: ServerStatus, rates: [String: [Double]] = [:], csrf: String = "") -> String {
        guard let template else { return "<!doctype html><title>Meridian</title><p>status page template failed to parse</p>" }
        return template.render(page(s, rates: rates, csrf: csrf))
    }

    static func page(_ s: ServerStatus, rates: [String: [Double]] = [:], csrf: String = "") -> Page {
        let problems = Self.problems(s)
        return Page(
            instance: s.instance, generation: s.generation, healthGeneration: s.healthGeneration, now: time(s.now), started: time(s.startedAt), policy: s.verdictPolicy,
            zones: s.zones.map { z in
                let keys = z.keys.map { "\($0.role) \($0.tag)\($0.signing ? " signing" : $0.published ? " published" : " waiting")" }
                return "\(z.name) (\(z.records) records, serial \(z.serial)\(keys.isEmpty ? "" : ", DNSSEC: " + keys.joined(separator: ", ")))"
            }.joined(separator: ", "),
            pools: s.pools.map { pool($0, now: s.now, rates: rates) }, peers: s.peers.map {
                PeerRow(name: $0.name, address: $0.address, state: $0.state, config: $0.sameConfiguration ? "same" : "DIFFERENT", same: $0.sameConfiguration)
            }, hasPeers: !s.peers.isEmpty,
            overrides: s.overrides.map {
                OverrideRow(id: $0.id, member: $0.member, state: $0.state, weight: $0.weight.map { "\(fmt($0))%" } ?? "", reason: $0.reason,
                            expires: $0.expires ?? "until removed", setBy: $0.setBy)
            }, hasOverrides: !s.overrides.isEmpty,
            summary: summary(problems), allWell: problems.isEmpty, problems: problems,
            reloadErrors: s.lastReload.flatMap { $0.ok ? nil : $0.diagnostics } ?? [], hasReloadErrors: s.lastReload.map { !$0.ok } ?? false,
            csrf: csrf)
    }

    /// Everything not healthy, most serious first: a failed reload, unusable sites and degraded
    /// pools, members down then drained, peers not alive or configured differently.
    static func problems(_ s: ServerStatus) -> [ProblemRow] {
        var out: [ProblemRow] = []
        if let r = s.lastReload, !r.ok {
            out.append(ProblemRow(kind: "reload", subject: "reload", text: "the last reload failed at \(time(r.at)) (\(ago(s.now - r.at))); the configuration before it keeps serving"))
        }
        for p in s.pools {
            for site in p.sites where !site.usable {
                out.append(ProblemRow(kind: "site", subject: "\(p.name)/\(site.name)", text: "site \(site.name) of pool \(p.name) is not usable: \(site.healthy) of \(site.members.count) members healthy"))
            }
            if p.degraded { out.append(ProblemRow(kind: "pool", subject: p.name, text: "pool \(p.name) is degraded")) }
        }
        for state in ["down", "drain"] {
            for p in s.pools {
                for site in p.sites {
                    for m in site.members where m.state == state {
                        out.append(ProblemRow(kind: "member-\(state)", subject: m.id, text: "\(m.id) is \(state)\(since(m, now: s.now)) (\(m.decidedBy))"))
                    }
                }
            }
        }
        for peer in s.peers where peer.state != "alive" || !peer.sameConfiguration {
            let what = peer.state != "alive" ? "is \(peer.state)" : "has a different pool configuration"
            out.append(ProblemRow(kind: "peer", subject: peer.name, text: "peer \(peer.name) (\(peer.address)) \(what)"))
        }
        return out
    }

    /// The one line at the top: "all healthy", or the problems counted by kind.
    static func summary(_ problems: [ProblemRow]) -> String {
        guard !problems.isEmpty else { return "All healthy: every member up, every site usable, every peer alive and alike." }
        let kinds: [(String, String, String)] = [
            ("reload", "last reload failed", "last reload failed"), ("site", "site not usable", "sites not usable"),
            ("pool", "pool degraded", "pools degraded"), ("member-down", "member down", "members down"),
            ("member-drain", "member drained", "members drained"), ("peer", "peer not well", "peers not well"),
        ]
        return kinds.compactMap { kind, one, many in
            let n = problems.filter { $0.kind == kind }.count
            return n == 0 ? nil : kind == "reload" ? one : "\(n) \(n == 1 ? one : many)"
        }.joined(separator: " · ")
    }

    /// " since 14:00:58 (3 min ago)" from the member's last transition into its state.
    static func since(_ m: ServerStatus.MemberInfo, now: Double) -> String {
        guard let t = m.transitions.last(where: { $0.to == m.state }) else { return "" }
        return " since \(time(t.at)) (\(ago(now - t.at)))"
    }

    /// "0.8 s ago", "12 s ago", "3 min ago", "2 h ago".
    static func ago(_ seconds: Double) -> String {
        let s = max(0, seconds)
        if s < 10 { return String(format: "%.1f s ago", s) }
        if s < 120 { return "\(Int(s)) s ago" }
        if s < 7200 { return "\(Int(s / 60)) min ago" }
        return "\(Int(s / 3600)) h ago"
    }

    static func pool(_ p: ServerStatus.PoolInfo, now: Double, rates: [String: [Double]] = [:]) -> PoolRow {
        let members = p.sites.flatMap(\.members)
        let troubled = p.degraded || p.sites.contains { !$0.usable } || members.contains { $0.state != "up" }
        return PoolRow(name: p.name, mode: p.mode, names: p.names.joined(separator: ", "), ttl: p.ttl, degraded: p.degraded, sites: p.sites.map { site in
            SiteRow(
                name: site.name, note: "\(site.usable ? "usable" : "NOT usable"), \(site.healthy)/\(site.members.count) healthy\(site.backup ? ", backup" : "")",
                members: site.members.map { member($0, now: now) },
                spark: Sparkline.svg(rates[AnswerHistory.key(pool: p.name, site: site.name)] ?? []), usable: site.usable)
        }, open: troubled, healthy: "\(members.filter { $0.state == "up" }.count)/\(members.count) up",
        spark: Sparkline.svg(rates[AnswerHistory.key(pool: p.name)] ?? []))
    }

    static func member(_ m: ServerStatus.MemberInfo, now: Double) -> MemberRow {
        MemberRow(
            id: m.id, name: m.name, address: m.address ?? "", state: m.state, since: since(m, now: now),
            weight: m.weightFactor == 1 ? fmt(m.effectiveWeight) : "\(fmt(m.effectiveWeight)) (x\(fmt(m.weightFactor)))",
            decidedBy: m.decidedBy, probers: m.probers.joined(separator: ", "),
            checks: m.checks.map {
                CheckRow(observer: $0.observer, check: $0.check, result: $0.up ? "up" : "down", reason: $0.reason, at: time($0.at), ago: ago(now - $0.at), up: $0.up)
            },
            agents: m.agents.map { "\($0.observer): \($0.detail)" }.joined(separator: "; "),
            transitions: m.transitions.suffix(5).reversed().map { TransitionRow(at: time($0.at), from: $0.from, to: $0.to, reason: $0.reason) },
            link: "/ui/member?id=" + (m.id.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? m.id))
    }

    static func fmt(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(format: "%.2f", v) }

    /// RFC 3339 UTC to the second, as the state file and the API write times.
    static func time(_ t: Double) -> String { AdminStateFile.time(t.rounded(.down)) }

    static let html = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
        <title>Meridian {{instance}}</title>
        <style>
        body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
        h1{font-size:1.4em;margin:0 0 .2em} h2{font-size:1.15em;margin:1.4em 0 .3em} h3{font-size:1em;margin:.8em 0 .2em;color:#444}
        table{border-collapse:collapse;width:100%;margin-bottom:.5em} th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
        th{background:#f4f4f4} .meta{color:#666} small{color:#666}
        .state{font-weight:bold;border-radius:3px;padding:1px 6px;color:#fff}
        .state-up{background:#2e7d32} .state-down{background:#c62828} .state-drain{background:#ef6c00}
        tr.member-down td{background:#fdecea} tr.member-drain td{background:#fff3e0}
        .ok{color:#2e7d32} .fail{color:#c62828} .degraded{color:#c62828;font-weight:bold}
        #summary{font-size:1.1em;font-weight:bold;padding:.4em .6em;border-radius:4px;margin:.4em 0}
        #summary.well{background:#e8f5e9;color:#1b5e20} #summary.ill{background:#fdecea;color:#b71c1c}
        #problems li{margin:.15em 0} #problems .problem-member-drain,#problems .problem-peer{color:#e65100} #problems li{color:#b71c1c}
        details.pool>summary{cursor:pointer;font-size:1.15em;font-weight:bold;margin:1em 0 .3em}
        pre.reload{background:#fdecea;padding:.4em;white-space:pre-wrap} svg.spark{vertical-align:middle} .peer{font-weight:bold;border-radius:3px;padding:1px 6px;color:#fff} .peer-alive{background:#2e7d32} .peer-suspect{background:#ef6c00} .peer-dead,.peer-left{background:#c62828} form.remove{margin:0}
        </style></head><body>
        <h1>Meridian <span id="instance">{{instance}}</span></h1>
        <p id="summary" class="{{#allWell}}well{{/allWell}}{{^allWell}}ill{{/allWell}}">{{summary}}</p>
        {{^allWell}}<ul id="problems">{{#problems}}<li class="problem-{{kind}}" data-problem="{{kind}}" data-subject="{{subject}}">{{text}}</li>{{/problems}}</ul>{{/allWell}}
        {{#hasReloadErrors}}<pre class="reload" id="reload-errors">{{#reloadErrors}}{{.}}
        {{/reloadErrors}}</pre>{{/hasReloadErrors}}
        <p class="meta">configuration generation {{generation}} · health generation {{healthGeneration}} · verdict policy {{policy}} · started {{started}} · page made {{now}} (reloads every 5 s)</p>
        <p class="meta">zones: {{zones}}</p>
        {{#hasPeers}}<h2>Peers</h2>
        <table><tr><th>peer</th><th>address</th><th>state</th><th>pool configuration</th></tr>
        {{#peers}}<tr data-peer="{{name}}"><td>{{name}}</td><td>{{address}}</td><td><span class="peer peer-{{state}}">{{state}}</span></td><td><span class="{{#same}}ok{{/same}}{{^same}}fail{{/same}}">{{config}}</span></td></tr>{{/peers}}
        </table>{{/hasPeers}}
        {{#hasOverrides}}<h2>Overrides</h2>
        <table><tr><th>id</th><th>members</th><th>state</th><th>weight</th><th>reason</th><th>expires</th><th>set by</th><th></th></tr>
        {{#overrides}}<tr data-override="{{id}}"><td>{{id}}</td><td>{{member}}</td><td><span class="state state-{{state}}">{{state}}</span></td><td>{{weight}}</td><td>{{reason}}</td><td>{{expires}}</td><td>{{setBy}}</td>
        <td><form method="post" action="/ui/override/remove" class="remove"><input type="hidden" name="id" value="{{id}}"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">remove…</button></form></td></tr>{{/overrides}}
        </table>{{/hasOverrides}}
        {{#pools}}<details class="pool" data-pool="{{name}}"{{#open}} open{{/open}}><summary>Pool {{name}} <small>{{healthy}} · {{mode}} · {{names}} · TTL {{ttl}}</small>{{#degraded}} <span class="degraded">degraded</span>{{/degraded}} <span class="pool-rate" data-pool-rate="{{name}}">{{{spark}}}</span></summary>
        {{#sites}}<h3>Site {{name}} <small class="{{#usable}}ok{{/usable}}{{^usable}}fail{{/usable}}">{{note}}</small> <span class="site-rate">{{{spark}}}</span></h3>
        <table><tr><th>member</th><th>address</th><th>state</th><th>weight</th><th>decided by</th><th>checks (observer: result, reason, time)</th><th>agent</th><th>recent transitions</th></tr>
        {{#members}}<tr class="member member-{{state}}" data-member="{{id}}" data-state="{{state}}"><td>{{name}}<br><small>{{id}}</small><br><a class="change" href="{{link}}">drain / override…</a></td><td>{{address}}</td>
        <td><span class="state state-{{state}}">{{state}}</span><br><small>{{since}}</small></td><td>{{weight}}</td><td>{{decidedBy}}<br><small>probers: {{probers}}</small></td>
        <td>{{#checks}}<div><b>{{observer}}</b>: {{check}} <span class="{{#up}}ok{{/up}}{{^up}}fail{{/up}}">{{result}}</span> ({{reason}}) <small>checked {{ago}}, {{at}}</small></div>{{/checks}}</td>
        <td>{{agents}}</td>
        <td>{{#transitions}}<div><small>{{at}}</small> {{from}} → {{to}} <small>({{reason}})</small></div>{{/transitions}}</td></tr>{{/members}}
        </table>{{/sites}}</details>{{/pools}}
        </body></html>
        """
}
