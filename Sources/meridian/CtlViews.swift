import AdminAPI
import ArgumentParser
import Foundation
import Health
import MeridianServer

/// `meridian ctl peers`: the group as this instance sees it.
struct CtlPeers: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "peers", abstract: "The group's peers: state, incarnation, and whether their pool configuration is the same.")
    @OptionGroup var api: CtlOptions

    func run() throws {
        let data = try api.call("GET", "/status")
        let s = try api.decode(ServerStatus.self, data)
        if api.json {
            let out = try JSONEncoder().encode(s.peers)
            return api.printJSON(out)
        }
        guard !s.peers.isEmpty else { return print("\(s.instance) is alone (no cluster.yaml in \(s.zonesDirectory))") }
        var rows: [[String]] = [["PEER", "ADDRESS", "STATE", "INCARNATION", "POOL CONFIGURATION"]]
        for p in s.peers { rows.append([p.name, p.address, p.state.uppercased(), String(p.incarnation), p.sameConfiguration ? "same" : "DIFFERENT"]) }
        Table.print(rows)
    }
}

/// `meridian ctl keys`: each zone's DNSSEC keys, their state and next timing event, and with
/// `--ds` the DS records to give the parent.
struct CtlKeys: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "keys", abstract: "DNSSEC keys per zone: role, tag, state, next rollover event; --ds prints the DS records for the parent.")
    @OptionGroup var api: CtlOptions

    @Flag(name: .long, help: "Print the DS records of the zones' KSKs and CSKs, for the parent zone.")
    var ds = false

    func run() throws {
        let data = try api.call("GET", "/status")
        let s = try api.decode(ServerStatus.self, data)
        if api.json {
            let out = try JSONEncoder().encode(s.zones.map { ZoneKeys(zone: $0.name, keys: $0.keys) })
            return api.printJSON(out)
        }
        if ds {
            for z in s.zones { for k in z.keys { if let d = k.ds { print(d) } } }
            return
        }
        var rows: [[String]] = [["ZONE", "ROLE", "TAG", "ALGORITHM", "STATE", "NEXT EVENT"]]
        for z in s.zones {
            for k in z.keys {
                let state = k.signing ? "signing" : k.published ? "published" : "waiting"
                rows.append([z.name, k.role, String(k.tag), String(k.algorithm), state, Self.nextEvent(k, now: s.now)])
            }
        }
        if rows.count == 1 { return print("no zone is signed (serve --keys DIR)") }
        Table.print(rows)
    }

    struct ZoneKeys: Encodable {
        var zone: String
        var keys: [ServerStatus.KeyInfo]
    }

    /// The key's next timing event after `now`: "activate 2026-12-10T00:00:00Z (in 6 d)".
    static func nextEvent(_ k: ServerStatus.KeyInfo, now: Double) -> String {
        let events: [(String, UInt32?)] = [("publish", k.publish), ("activate", k.activate), ("inactive", k.inactive), ("delete", k.delete)]
        guard let (name, at) = events.compactMap({ e in e.1.map { (e.0, Double($0)) } }).filter({ $0.1 > now }).min(by: { $0.1 < $1.1 }) else { return "-" }
        return "\(name) \(AdminStateFile.time(at)) (in \(Self.span(at - now)))"
    }

    static func span(_ s: Double) -> String {
        if s < 120 { return "\(Int(s)) s" }
        if s < 7200 { return "\(Int(s / 60)) min" }
        if s < 172_800 { return "\(Int(s / 3600)) h" }
        return "\(Int(s / 86400)) d"
    }
}

/// `meridian ctl stats`: queries per second by response code and answers per second by pool and
/// site, from two readings of `/metrics` `--interval` apart.
struct CtlStats: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Queries per second by response code, answers per second by pool and site (two readings of /metrics).")
    @OptionGroup var api: CtlOptions

    @Option(name: .long, help: "Time between the two readings (1s, 500ms, 5s).")
    var interval = Seconds(1)

    func validate() throws {
        guard (0.1...60).contains(interval.value) else { throw ValidationError("--interval must be from 100ms to 60s") }
    }

    func run() throws {
        let first = MetricsText.parse(try api.call("GET", "/metrics"))
        let start = Date()
        Thread.sleep(forTimeInterval: interval.value)
        let second = MetricsText.parse(try api.call("GET", "/metrics"))
        let seconds = max(0.001, Date().timeIntervalSince(start))
        func rates(_ name: String, by labels: [String]) -> [(String, Double)] {
            var out: [String: Double] = [:]
            for (series, value) in second where series.name == name {
                let before = first.first { $0.key == series }?.value ?? 0
                out[labels.map { series.labels[$0] ?? "" }.joined(separator: "/"), default: 0] += max(0, value - before) / seconds
            }
            return out.sorted { $0.value > $1.value }
        }
        let rcodes = rates("meridian_queries_total", by: ["rcode"])
        let pools = rates("meridian_pool_answers_total", by: ["pool", "site"])
        if api.json {
            let object: [String: Any] = ["seconds": seconds, "queries_per_second": rcodes.reduce(0) { $0 + $1.1 },
                                         "rcodes": Dictionary(uniqueKeysWithValues: rcodes), "pools": Dictionary(uniqueKeysWithValues: pools)]
            return api.printJSON(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
        }
        print(String(format: "%.1f queries/s over %.1f s", rcodes.reduce(0) { $0 + $1.1 }, seconds))
        var rows: [[String]] = [["RCODE", "PER SECOND"]]
        for (rcode, r) in rcodes { rows.append([rcode, String(format: "%.1f", r)]) }
        Table.print(rows)
        var poolRows: [[String]] = [["POOL/SITE", "ANSWERS PER SECOND"]]
        for (key, r) in pools { poolRows.append([key, String(format: "%.1f", r)]) }
        if poolRows.count > 1 { Table.print(poolRows) }
    }
}
