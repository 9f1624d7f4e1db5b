import DNSSEC
import ArgumentParser
import ConfigurationFiles
import Health
import DNSWire
import Foundation
import GeoTopology
import Logging
import MeridianServer
import Gossip
import GossipTransport
import Control
import PoolConfig
import QueryEngine
import Selection
import ZoneStore

@main
struct Meridian: AsyncParsableCommand {
    // No default subcommand: `meridian` alone prints this help, rather than serving ./Zones.
    static let configuration = CommandConfiguration(
        commandName: "meridian",
        abstract: "An authoritative GSLB DNS server.",
        version: Version.text,
        subcommands: [Serve.self, Check.self, Explain.self, Ctl.self, KeyGen.self, Version.self]
    )

    /// ArgumentParser's main, after `serve --config FILE` is expanded into options.
    static func main() async {
        var args = Array(CommandLine.arguments.dropFirst())
        // The manual generator asks for the commands' description: ArgumentParser's own main.
        if args.contains("--experimental-dump-help") { return await Self.main(args) }
        do {
            args = CtlOptions.reorder(try ServeConfigFile.expand(args))
            var command = try parseAsRoot(args)
            if var a = command as? any AsyncParsableCommand {
                try await a.run()
            } else {
                try command.run()
            }
        } catch {
            // With --log-format json, even what stops the start is one JSON line.
            if let i = args.firstIndex(of: "--log-format"), i + 1 < args.count, args[i + 1] == "json", exitCode(for: error) != .success {
                JSONLogHandler(label: "meridian", level: .critical).log(event: LogEvent(
                    level: .critical, message: "\(message(for: error))", metadata: nil, source: "meridian", file: #fileID, function: #function, line: #line))
                Foundation.exit(exitCode(for: error).rawValue)
            }
            exit(withError: error)
        }
    }
}

/// `meridian version` (and `meridian --version`): the version and the git commit built.
struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version and the git commit this binary was built from.")

    static var text: String { "meridian \(BuildInfo.version) (commit \(BuildInfo.commit))" }

    func run() { print(Self.text) }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate the zone and pool files in a directory with the server's own loader; prints file:line: message and exits non-zero on errors.")

    @Argument(help: "Directory with the zone and pool files.")
    var path = "Zones"

    @Option(name: .long, help: "Also validate this admin state file.")
    var state: String?

    @Flag(name: .long, help: "Treat warnings as errors.")
    var strict = false

    @Option(name: .long, help: "Also validate the DNSSEC key files in this directory against the zones.")
    var keys: String?

    @Option(name: .long, help: "Validate this serve configuration file (every option, as serve would take it) and the zones, state and keys it names.")
    var config: String?

    func run() throws {
        var path = self.path, state = self.state, keys = self.keys
        if let config {
            // As serve reads it: the file's options, then serve's own checks of every value.
            let serve: Serve
            do {
                serve = try Serve.parse(Array(try ServeConfigFile.expand(["serve", "--config", config]).dropFirst()))
            } catch {
                print(Serve.message(for: error))
                print("\(config): configuration refused")
                throw ExitCode(1)
            }
            path = serve.zones
            state = state ?? serve.state
            keys = keys ?? serve.keys
        }
        let outcome = ConfigDirectory.load(directory: path, statePath: state, keysDirectory: keys, now: UInt32(Date().timeIntervalSince1970))
        let diagnostics = outcome.diagnostics
        for d in diagnostics { print(d) }
        let errors = diagnostics.filter { $0.severity == .error }
        let failed = !errors.isEmpty || (strict && !diagnostics.isEmpty)
        if failed {
            let n = strict ? diagnostics.count : errors.count
            print("\(path): \(n) problem\(n == 1 ? "" : "s") found")
            throw ExitCode(1)
        }
        if let c = outcome.configuration {
            let s = c.snapshot
            let group = c.cluster.map { ", a group of \($0.peers.count) (\($0.peers.keys.sorted().joined(separator: ", ")))" } ?? ""
            print("\(path): \(s.zones.zones.count) zones, \(s.zones.recordCount) records, \(s.pools.runtimes.count) pools\(group) OK")
        }
    }
}

/// The gossip key options `serve` and `explain --peer` share.
struct GossipKeyOptions: ParsableArguments {
    @Option(name: .long, help: "Gossip key file: one or two base64 keys (the first signs); see `meridian keygen`.")
    var gossipKeyFile: String?

    @Flag(name: .long, help: "Gossip without a key file: messages are not authenticated.")
    var gossipInsecure = false
}

struct KeyGen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Print a new gossip key; with --zone, write a DNSSEC key for the zone and print its DS record.",
        discussion: """
            Without --zone: a random gossip key (32 octets, base64) for a --gossip-key-file.
            With --zone: K<zone>+<alg>+<tag>.key and .private in --dir (BIND's format, so BIND, Knot and \
            ldns read them), and the DS record to give the parent zone for a CSK or KSK. Times \
            (--publish, --activate, --inactive, --delete) are YYYYMMDDHHMMSS (UTC), "now", or now plus \
            an offset such as +30d, +12h, +90m or +45s; a rollover is a second key whose times follow the first's.
            """)

    @Option(name: .long, help: "The zone the DNSSEC key is for (e.g. gslb.example.com).")
    var zone: String?

    @Option(name: .long, help: "Directory the key files are written to (keep it out of git).")
    var dir = "keys"

    @Option(name: .long, help: "13 (ECDSAP256SHA256) or 15 (ED25519).")
    var algorithm = "13"

    @Option(name: .long, help: "csk (signs everything), ksk (signs the DNSKEY set) or zsk (signs the rest).")
    var role = "csk"

    @Option(name: .long, help: "When the key enters the DNSKEY set (default: now).")
    var publish: String?

    @Option(name: .long, help: "When it starts signing (default: now).")
    var activate: String?

    @Option(name: .long, help: "When it stops signing.")
    var inactive: String?

    @Option(name: .long, help: "When it leaves the DNSKEY set.")
    var delete: String?

    func run() throws {
        guard let zone else {
            var rng = SystemRandomNumberGenerator()
            let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
            print("# Meridian gossip key: every instance of a group needs it. Add a second line during a rotation.")
            print(Data(key).base64EncodedString())
            return
        }
        let now = UInt32(Date().timeIntervalSince1970)
        guard let apex = Name.parse(zone.hasSuffix(".") ? zone : zone + ".") else { throw ValidationError("bad --zone \(zone)") }
        let alg: DNSSECAlgorithm
        switch algorithm.lowercased() {
        case "13", "ecdsap256sha256": alg = .ecdsaP256SHA256
        case "15", "ed25519": alg = .ed25519
        default: throw ValidationError("--algorithm must be 13 (ECDSAP256SHA256) or 15 (ED25519)")
        }
        guard ["csk", "ksk", "zsk"].contains(role) else { throw ValidationError("--role must be csk, ksk or zsk") }
        func when(_ s: String?, _ option: String) throws -> UInt32? {
            guard let s else { return nil }
            guard let t = KeyGen.time(s, now: now) else { throw ValidationError("\(option) must be YYYYMMDDHHMMSS, now, or +N followed by d, h, m or s") }
            return t
        }
        let timing = KeyTiming(created: now, publish: try when(publish, "--publish") ?? now, activate: try when(activate, "--activate") ?? now,
                               inactive: try when(inactive, "--inactive"), delete: try when(delete, "--delete"))
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let key = ZoneKey(zone: apex, flags: role == "zsk" ? 256 : 257, key: .generate(alg), timing: timing)
        let base = try KeyFiles.write(key, directory: dir)
        print("# \(role.uppercased()) \(key.tag) for \(Name.text(key.zone)): \(base).key, \(base).private")
        if key.isSEP {
            print("# the DS record for the parent zone:")
            print(key.dsText)
        }
    }

    /// YYYYMMDDHHMMSS, "now", or "+N" with a unit (d, h, m, s) after `now`.
    static func time(_ s: String, now: UInt32) -> UInt32? {
        if s == "now" { return now }
        if s.hasPrefix("+"), let unit = s.last, let n = UInt32(s.dropFirst().dropLast()) {
            let scale: UInt32? = ["d": 86_400, "h": 3_600, "m": 60, "s": 1][unit]
            guard let scale else { return nil }
            let (product, o1) = n.multipliedReportingOverflow(by: scale)
            let (sum, o2) = now.addingReportingOverflow(product)
            return o1 || o2 ? nil : sum
        }
        return KeyFiles.time(s)
    }
}

struct Explain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show how the server would answer NAME for a client, and why: region, site order, member states, answer, TTL, ECS scope.")

    @Argument(help: "The name asked for.")
    var name: String

    @Argument(help: "The query type: A, AAAA, ANY, TXT, ...")
    var type = "A"

    @Option(name: .long, help: "The client's (or resolver's) address.")
    var client: String

    @Option(name: .long, help: "An EDNS Client Subnet the query carries, e.g. 10.2.0.0/24.")
    var ecs: String?

    @Option(name: .long, help: "Directory with the zone and pool files.")
    var zones = "Zones"

    @Option(name: .long, help: "Admin state file to apply.")
    var state: String?

    @Option(name: .long, help: "A running instance's gossip address (IP:PORT): explain with its live, merged health view.")
    var peer: String?

    @OptionGroup var key: GossipKeyOptions

    func run() async throws {
        let outcome = ConfigDirectory.load(directory: zones, statePath: state, now: UInt32(Date().timeIntervalSince1970))
        guard let configuration = outcome.configuration else {
            for d in outcome.errors { print(d) }
            throw ExitCode(1)
        }
        var snapshot = configuration.snapshot
        if let peer {
            snapshot = try await LiveView.apply(
                peer: peer, keyFile: key.gossipKeyFile, insecure: key.gossipInsecure, cluster: configuration.cluster, to: snapshot)
        }
        let e: Explanation
        do { e = try Explainer.explain(snapshot: snapshot, name: name, type: type, client: client, ecs: ecs) } catch {
            throw ValidationError(error.description)
        }
        print("query: \(e.query) \(e.qtype) from \(e.client)\(e.ecs.map { " with ECS \($0)" } ?? "")")
        if let pool = e.pool, let binding = e.binding, let selecting = e.selectingFor {
            print("bound to pool \(pool) (\(binding)); selecting for \(selecting)")
            let definition = snapshot.pools.pools.pools.first { $0.name == pool }
            if let definition, (!definition.checks.isEmpty || definition.agent != nil) && peer == nil {
                print("note: explain runs offline: live check and agent results are not included, members count as up unless --state says otherwise (--peer shows a running group's view)")
            }
            if peer != nil, let definition { LiveView.printMembers(of: definition, health: snapshot.pools.health) }
            for l in e.trace { print("  \(l)") }
        } else {
            print("not bound to a pool: answered from zone data")
        }
        print("answer: \(e.rcode)\(e.authoritative ? ", authoritative" : "")")
        for r in e.answer { print("  \(r)") }
        for r in e.authority { print("  authority: \(r)") }
        if let scope = e.ecsScope, let ecs = e.ecs {
            print("ECS scope: /\(scope) (source /\(ecs.split(separator: "/").last ?? ""))")
        } else if e.ecs == nil {
            print("ECS scope: (no ECS in the query)")
        }
    }
}
