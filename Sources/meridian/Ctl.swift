import AdminAPI
import ArgumentParser
import HealthCheck
import Control
import Health
import Foundation
import MeridianServer
import QueryEngine

/// `meridian ctl`: the admin API from the command line, with readable tables (or `--json`).
struct Ctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk to a running server's admin API: status, stats, peers, keys, drain, undrain, override, overrides, reload, explain.",
        subcommands: [CtlStatus.self, CtlStats.self, CtlPeers.self, CtlKeys.self, CtlDrain.self, CtlUndrain.self, CtlOverride.self, CtlOverrides.self,
                      CtlReload.self, CtlExplain.self])
}

/// Where the API is and how to get in. Given before the subcommand (`ctl --server URL status`)
/// or after it; `reorder` moves them after it, where ArgumentParser reads them.
struct CtlOptions: ParsableArguments {
    /// The options that take a value, and the flags.
    static let valued: Set<String> = ["--server", "--token-file", "--cacert"]
    static let flags: Set<String> = ["--json"]

    /// `ctl [options] SUBCOMMAND [args]` -> `ctl SUBCOMMAND [options] [args]`; other command
    /// lines as they are.
    static func reorder(_ argv: [String]) -> [String] {
        guard argv.first == "ctl" else { return argv }
        var moved: [String] = []
        var i = 1
        while i < argv.count {
            let a = argv[i]
            let name = String(a.prefix(while: { $0 != "=" }))
            if valued.contains(name) {
                let takesNext = !a.contains("=") && i + 1 < argv.count
                moved += takesNext ? [a, argv[i + 1]] : [a]
                i += takesNext ? 2 : 1
            } else if flags.contains(a) {
                moved.append(a)
                i += 1
            } else {
                break
            }
        }
        guard !moved.isEmpty, i < argv.count else { return argv }
        return ["ctl", argv[i]] + moved + argv[(i + 1)...]
    }

    @Option(name: .customLong("server"), help: "The admin API's URL (default: $MERIDIAN_ADMIN_URL, else http://127.0.0.1:8053).")
    var serverOption: String?

    /// The API's URL: the option, else $MERIDIAN_ADMIN_URL, else the default listen address.
    var server: String {
        serverOption ?? ProcessInfo.processInfo.environment["MERIDIAN_ADMIN_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:8053"
    }

    @Option(name: .long, help: "File with the admin token (default: $MERIDIAN_ADMIN_TOKEN, if set).")
    var tokenFile: String?

    @Option(name: .long, help: "CA certificate (PEM) to verify an HTTPS admin API with.")
    var cacert: String?

    @Flag(name: .long, help: "Print the API's JSON instead of a table.")
    var json = false

    func token() throws -> String? {
        if let tokenFile {
            // The server's own parser: the same file, the same rules (the first token is sent).
            do { return try AdminTokenFile.load(path: tokenFile).first } catch { throw ValidationError(error.description) }
        }
        return ProcessInfo.processInfo.environment["MERIDIAN_ADMIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Performs a request; prints the API's error and exits non-zero on a failure status.
    func call(_ method: String, _ path: String, body: [String: Any]? = nil) throws -> Data {
        let data = body.flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]) }
        let reply = try AdminHTTP.request(method: method, url: server + path, token: try token(), body: data, cacert: cacert)
        guard (200..<300).contains(reply.status) else {
            let message = (try? JSONSerialization.jsonObject(with: reply.body) as? [String: Any])?["error"] as? String
                ?? String(decoding: reply.body, as: UTF8.self)
            FileHandle.standardError.write(Data("meridian ctl: \(method) \(path): HTTP \(reply.status): \(message)\n".utf8))
            throw ExitCode(reply.status == 401 ? 3 : 1)
        }
        return reply.body
    }

    func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        do { return try JSONDecoder().decode(type, from: data) } catch {
            FileHandle.standardError.write(Data("meridian ctl: unexpected reply from \(server): \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    func printJSON(_ data: Data) {
        print(String(decoding: data, as: UTF8.self))
    }
}

/// The admin API client: HealthCheck's libcurl wrapper (`CurlRequest`), one request at a time.
enum AdminHTTP {
    struct Reply {
        var status: Int
        var body: Data
    }

    static func request(method: String, url: String, token: String?, body: Data?, cacert: String?, timeout: Int = 15) throws -> Reply {
        var headers: [String] = []
        if let token { headers.append("Authorization: Bearer \(token)") }
        if body != nil { headers.append("Content-Type: application/json") }
        do {
            let r = try CurlRequest.perform(method: method, url: url, headers: headers, body: body.map { [UInt8]($0) }, cacert: cacert, timeout: timeout)
            return Reply(status: r.status, body: Data(r.body))
        } catch {
            // Not a usage error: say what could not be reached, and exit 2.
            FileHandle.standardError.write(Data("meridian ctl: cannot reach \(url): \(error.description)\n".utf8))
            throw ExitCode(2)
        }
    }
}

struct CtlStatus: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Pools, sites and members with their state, weight and what decided it.")
    @OptionGroup var api: CtlOptions

    func run() throws {
        let data = try api.call("GET", "/status")
        if api.json { return api.printJSON(data) }
        let s = try api.decode(ServerStatus.self, data)
        print("\(s.instance): configuration generation \(s.generation), health generation \(s.healthGeneration), verdict policy \(s.verdictPolicy), \(s.zones.count) zone(s), \(s.pools.count) pool(s)")
        for p in s.peers { print("peer \(p.name) \(p.address) \(p.state)\(p.sameConfiguration ? "" : " (DIFFERENT pool configuration)")") }
        var rows: [[String]] = [["MEMBER", "ADDRESS", "STATE", "WEIGHT", "DECIDED BY"]]
        for pool in s.pools {
            for site in pool.sites {
                for m in site.members {
                    rows.append([m.id, m.address ?? "", m.state.uppercased(), Table.number(m.effectiveWeight), m.decidedBy])
                }
            }
        }
        Table.print(rows)
        if !s.overrides.isEmpty { CtlOverrides.printTable(s.overrides) }
    }
}

struct CtlOverrides: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "overrides", abstract: "The overrides in force in the group.")
    @OptionGroup var api: CtlOptions

    func run() throws {
        let data = try api.call("GET", "/overrides")
        if api.json { return api.printJSON(data) }
        Self.printTable(try api.decode([OverrideInfo].self, data))
    }

    static func printTable(_ list: [OverrideInfo]) {
        var rows: [[String]] = [["ID", "MEMBERS", "STATE", "WEIGHT", "EXPIRES", "SET BY", "REASON"]]
        for o in list {
            rows.append([o.id, "\(o.member) (\(o.matches))", o.state.uppercased(), o.weight.map { Table.number($0) + "%" } ?? "-", o.expires ?? "-", o.setBy, o.reason])
        }
        Table.print(rows)
    }
}

/// The override options shared by drain and override.
struct OverrideOptions: ParsableArguments {
    @Option(name: .long, help: "Why (shown in status and on the page).")
    var reason: String?

    @Option(name: .customLong("for"), help: "How long until it lapses by itself (3600, 30m, 2h, 7d).")
    var duration: Seconds?

    @Option(name: .long, help: "When it lapses: an RFC 3339 UTC time (2026-12-01T06:00:00Z).")
    var until: String?

    func fields() -> [String: Any] {
        var f: [String: Any] = [:]
        if let reason { f["reason"] = reason }
        if let duration { f["expires_in"] = duration.value }
        if let until { f["expires"] = until }
        return f
    }
}

struct CtlDrain: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "drain", abstract: "Drain members (a POOL/SITE/NAME glob): no new answers, still counted as up.")
    @OptionGroup var api: CtlOptions
    @Argument(help: "Member-id glob, e.g. app/*/app-3.") var member: String
    @OptionGroup var options: OverrideOptions

    func run() throws {
        var body = options.fields()
        body["member"] = member
        body["state"] = "drain"
        let data = try api.call("POST", "/overrides", body: body)
        if api.json { return api.printJSON(data) }
        let o = try api.decode(OverrideInfo.self, data)
        print("\(o.member): DRAIN (\(o.matches) member(s), id \(o.id)\(o.expires.map { ", until \($0)" } ?? ""))")
    }
}

struct CtlUndrain: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "undrain", abstract: "Remove the override for a member glob (drain or any other), in the whole group.")
    @OptionGroup var api: CtlOptions
    @Argument(help: "The member-id glob the override was set for.") var member: String

    func run() throws {
        let data = try api.call("DELETE", "/overrides/\(AdminOverride.id(of: member))")
        if api.json { return api.printJSON(data) }
        print("\(member): override removed")
    }
}

struct CtlOverride: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "override", abstract: "Force members UP, DOWN or DRAIN, optionally with a weight.")
    @OptionGroup var api: CtlOptions
    @Argument(help: "Member-id glob.") var member: String
    @Argument(help: "UP, DOWN or DRAIN.") var state: String
    @Option(name: .long, help: "Weight in percent (0-100).") var weight: Double?
    @OptionGroup var options: OverrideOptions

    func run() throws {
        var body = options.fields()
        body["member"] = member
        body["state"] = state.lowercased()
        if let weight { body["weight"] = weight }
        let data = try api.call("POST", "/overrides", body: body)
        if api.json { return api.printJSON(data) }
        let o = try api.decode(OverrideInfo.self, data)
        print("\(o.member): \(o.state.uppercased())\(o.weight.map { " at \(Table.number($0))%" } ?? "") (\(o.matches) member(s), id \(o.id))")
    }
}

struct CtlReload: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Reload zones and pools (or only the zones named); prints file:line errors, the old configuration keeps serving on error.")
    @OptionGroup var api: CtlOptions
    @Argument(help: "Zones to read again, alone: pools, keys, the cluster and state files and the other zones stay as they are. None: the whole directory.")
    var zones: [String] = []

    func run() throws {
        let query = zones.isEmpty ? "" : "?" + zones.map { "zone=" + ($0.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))) ?? $0) }.joined(separator: "&")
        let body = try AdminHTTP.request(method: "POST", url: api.server + "/reload" + query, token: try api.token(), body: nil, cacert: api.cacert)
        if api.json { api.printJSON(body.body) }
        guard body.status == 200 || body.status == 422,
              let r = try? JSONSerialization.jsonObject(with: body.body) as? [String: Any] else {
            FileHandle.standardError.write(Data("meridian ctl: POST /reload: HTTP \(body.status): \(String(decoding: body.body, as: UTF8.self))\n".utf8))
            throw ExitCode(body.status == 401 ? 3 : 1)
        }
        if !api.json {
            for d in r["diagnostics"] as? [String] ?? [] { print(d) }
            print((r["ok"] as? Bool) == true ? "reloaded: configuration generation \(r["generation"] ?? "?")" : "reload failed: the old configuration keeps serving")
        }
        if (r["ok"] as? Bool) != true { throw ExitCode(1) }
    }
}

struct CtlExplain: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "explain", abstract: "How the running server answers NAME for a client, and why (its live health view).")
    @OptionGroup var api: CtlOptions
    @Argument(help: "The name asked for.") var name: String
    @Argument(help: "The query type.") var type = "A"
    @Option(name: .long, help: "The client's (or resolver's) address.") var client: String
    @Option(name: .long, help: "An EDNS Client Subnet, e.g. 10.2.0.0/24.") var ecs: String?

    func run() throws {
        var items = [URLQueryItem(name: "name", value: name), URLQueryItem(name: "type", value: type), URLQueryItem(name: "client", value: client)]
        if let ecs { items.append(URLQueryItem(name: "ecs", value: ecs)) }
        var c = URLComponents()
        c.queryItems = items
        let data = try api.call("GET", "/explain" + (c.percentEncodedQuery.map { "?" + $0.replacingOccurrences(of: "+", with: "%2B") } ?? ""))
        if api.json { return api.printJSON(data) }
        let e = try api.decode(Explanation.self, data)
        print("query: \(e.query) \(e.qtype) from \(e.client)\(e.ecs.map { " with ECS \($0)" } ?? "")")
        if let pool = e.pool { print("bound to pool \(pool) (\(e.binding ?? "")); selecting for \(e.selectingFor ?? e.client)") } else { print("not bound to a pool: answered from zone data") }
        for l in e.trace { print("  \(l)") }
        print("answer: \(e.rcode)\(e.authoritative ? ", authoritative" : "")")
        for r in e.answer { print("  \(r)") }
        for r in e.authority { print("  authority: \(r)") }
        if let scope = e.ecsScope { print("ECS scope: /\(scope)") }
    }
}

/// Column-aligned text tables.
enum Table {
    static func print(_ rows: [[String]]) {
        guard let first = rows.first else { return }
        var widths = [Int](repeating: 0, count: first.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        for r in rows {
            let line = r.enumerated().map { i, c in i == r.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            Swift.print(line.joined(separator: "  "))
        }
    }

    static func number(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(format: "%.2f", v) }
}
