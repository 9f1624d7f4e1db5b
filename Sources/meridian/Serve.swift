import QueryLog
import Frontend
import AdminAPI
import ArgumentParser
import Health
import DNSWire
import Foundation
import GeoTopology
import Logging
import MeridianServer
import Metrics
import Gossip
import GossipTransport
import Control
import PoolConfig
import Prometheus
import QueryEngine

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the zones in a directory over UDP and TCP. SIGHUP reloads them; a bad file keeps the old data serving.")

    @Option(name: .long, help: "A YAML file of serve options (`zones: /etc/meridian/zones`, `listen: [0.0.0.0:53]`, `rrl-rate: 50`); options on the command line override it.")
    var config: String?

    @Option(name: .long, help: "Directory with the zone files (NAME.zone) and pool files (*.yaml).")
    var zones = "Zones"

    @Option(name: .long, help: "Admin state file: forced UP/DOWN/DRAIN per member, watched for changes.")
    var state: String?

    @Option(name: .long, help: "How long the first round of health checks may take before answering anyway (5, 500ms, 30s, 2m).")
    var startupTimeout = Seconds(5)

    @Option(name: [.customLong("node-name"), .customLong("instance-name")], help: "This instance's name in health observations and to its peers (default: the host name).")
    var nodeName: String?

    @Option(name: .long, help: "Where gossip listens, IP:PORT (default: this node's address in the zones directory's cluster.yaml).")
    var gossipListen: String?

    @OptionGroup var key: GossipKeyOptions

    @Option(name: .long, help: "Address to listen on, HOST:PORT or [V6]:PORT; repeat for several.")
    var listen: [String] = ["127.0.0.1:5300", "[::1]:5300"]

    @Option(name: .long, help: "Event loops and UDP sockets per address (default: one per core).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: "Largest UDP response in octets, whatever the client offers (512-65535).")
    var maxUdpSize = 1232

    @Option(name: .long, help: "How long an idle TCP connection is kept (10, 30s, 2m).")
    var tcpIdleTimeout = Seconds(10)

    @Option(name: .long, help: "Most TCP connections open at once.")
    var tcpMaxConnections = 1024

    @Option(name: .long, help: "Most TCP connections from one client prefix (/24 for IPv4, /56 for IPv6).")
    var tcpMaxPerClient = 64

    @Option(name: .long, help: "Most octets buffered per TCP connection, each way.")
    var tcpMaxBuffer = 262_144

    @Option(name: .long, help: "Response rate limit: UDP responses per second per client prefix, kind and name (0: off).")
    var rrlRate = 0

    @Option(name: .long, help: "Every Nth rate-limited response is sent truncated so real clients retry over TCP (0: drop all).")
    var rrlSlip = 2

    @Option(name: .long, help: "IPv4 client prefix length that shares a rate limit budget.")
    var rrlIpv4Prefix = 24

    @Option(name: .long, help: "IPv6 client prefix length that shares a rate limit budget.")
    var rrlIpv6Prefix = 56

    @Option(name: .long, help: "Rate limit buckets per event loop (a power of two).")
    var rrlTableSize = 65536

    @Option(name: .long, help: "DNS Cookie secrets (RFC 7873/9018): one or two 16-octet keys in hex, one per line, the first signs; share it between instances behind one address. Default: a random secret per start.")
    var cookieSecretFile: String?

    @Option(name: .long, help: "Truncate UDP answers larger than this many octets (TC=1) unless the query carries a valid server cookie, so spoofed sources cannot draw large answers (512-65535; default: no limit).")
    var cookielessUdpMax: Int?

    @Flag(name: .long, help: "Do not answer DNS Cookies.")
    var noCookies = false

    @Option(name: .long, help: "NSID to return to queries that ask (RFC 5001), as text.")
    var nsid: String?

    @Option(name: .long, help: "Answer for CH TXT id.server and hostname.bind.")
    var identity: String?

    @Option(name: .long, help: "Answer for CH TXT version.bind and version.server (off by default).")
    var versionString: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @Option(name: .long, help: "Log lines as text or as JSON objects, one per line (json).")
    var logFormat = "text"

    @Option(name: .long, help: "Where the admin HTTP API listens (status, explain, overrides, reload, /metrics, the status page), HOST:PORT.")
    var adminListen = "127.0.0.1:8053"

    @Flag(name: .long, help: "Do not start the admin HTTP API.")
    var noAdmin = false

    @Option(name: .long, help: "Bearer token(s) for the admin API, one per line (two during a rotation); required on a non-loopback address.")
    var adminTokenFile: String?

    @Option(name: .long, help: "PEM certificate chain for HTTPS on the admin API (with --admin-tls-key).")
    var adminTlsCert: String?

    @Option(name: .long, help: "PEM private key for HTTPS on the admin API.")
    var adminTlsKey: String?

    @Option(name: .long, help: "What answers UDP: batch (a thread per socket, recvmmsg/sendmmsg) or nio (SwiftNIO channels).")
    var udpEngine = "batch"

    @Option(name: .long, help: ArgumentHelp(
        "An address health checks and agent polls leave from (once per family); default: this instance's gossip or first listen address.",
        valueName: "IP"))
    var checkSource: [String] = []

    @Flag(name: .long, help: "Reload when files in the zones directory change (debounced; a bad file keeps the old data serving).")
    var watch = false

    @Option(name: .long, help: "When started as root: switch to this user (and its group) once the sockets are bound.")
    var user: String?

    @Option(name: .long, help: "DNSSEC: directory of key files (K<zone>+<alg>+<tag>.key/.private, as `meridian keygen` writes them); zones with an active key are signed online.")
    var keys: String?

    @Option(name: .long, help: "DNSSEC: how long each signature is valid (14d).")
    var signatureValidity = Seconds(14 * 86_400)

    @Option(name: .long, help: "DNSSEC: how far before now a signature's inception is set (1h; validators' clocks lag).")
    var signatureInceptionOffset = Seconds(3_600)

    @Option(name: .long, help: "DNSSEC: a cached signature is made again when less than this is left of it (3d).")
    var signatureRefresh = Seconds(3 * 86_400)

    @Option(name: .long, help: "DNSSEC: TTL of the DNSKEY, CDS and CDNSKEY sets (1h).")
    var dnskeyTtl = Seconds(3_600)

    @Option(name: .long, help: "DNSSEC: signatures cached per answering thread.")
    var signatureCacheSize = 20_000

    @Option(name: .long, help: "dnstap: the UNIX socket of a Frame Streams reader (fstrm_capture, a collector) to send the query log to; reconnected to when it goes away.")
    var dnstapSocket: String?

    @Option(name: .long, help: "dnstap: a file to write the query log to in Frame Streams format (truncated at start; read it with dnstap-ldns -r).")
    var dnstapFile: String?

    @Option(name: .long, help: "dnstap: log one query in N, per answering thread (1: every query).")
    var dnstapSample = 1

    @Option(name: .long, help: "dnstap: which messages to log: both, queries (AUTH_QUERY) or responses (AUTH_RESPONSE).")
    var dnstapMessages = "both"

    @Option(name: .long, help: "dnstap: the identity in each message (default: the host name).")
    var dnstapIdentity: String?

    @Option(name: .long, help: "dnstap: frames each answering thread may have waiting for the writer; more are dropped and counted.")
    var dnstapQueue = 16_384

    @Option(name: .long, help: "Latency: measure the round-trip time of DNS-over-TCP connections (TCP_INFO) for order: latency pools: on or off. Only an instance cluster.yaml gives a site measures.")
    var latencyPassive = "on"

    @Option(name: .long, help: "Latency: probe the busiest resolvers that query this instance (a DNS query to their port 53, else a TCP connect), at most --latency-probe-rate a second, each network at most every 5 minutes: on or off. Only an instance cluster.yaml gives a site probes.")
    var latencyProbes = "on"

    @Option(name: .long, help: "Latency: active probes per second, on average (1-100).")
    var latencyProbeRate = 5.0

    @Option(name: .long, help: "Latency: the least time between two probes of one network, in seconds (1-86400).")
    var latencyProbeInterval = 300.0

    /// Every option is checked before anything starts, with a message naming it (issue:
    /// hardening, finding 7): out-of-range values used to overflow at start or on the answer path.
    func validate() throws {
        func check(_ ok: Bool, _ message: @autoclosure () -> String) throws {
            if !ok { throw ValidationError(message()) }
        }
        try check(Logger.Level(rawValue: logLevel) != nil, "--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        try check(!listen.isEmpty, "give at least one --listen address")
        for l in listen { try check(ListenAddress(l) != nil, "bad --listen address \(l): use HOST:PORT or [V6]:PORT") }
        try check((1...256).contains(threads), "--threads must be from 1 to 256, not \(threads)")
        try check((512...65535).contains(maxUdpSize), "--max-udp-size must be from 512 to 65535, not \(maxUdpSize)")
        try check((1...3600).contains(tcpIdleTimeout.value) && tcpIdleTimeout.value.rounded() == tcpIdleTimeout.value, "--tcp-idle-timeout must be from 1 to 3600 whole seconds, not \(tcpIdleTimeout)")
        try check((1...1_000_000).contains(tcpMaxConnections), "--tcp-max-connections must be from 1 to 1000000, not \(tcpMaxConnections)")
        try check((0...1_000_000).contains(rrlRate), "--rrl-rate must be from 0 (off) to 1000000, not \(rrlRate)")
        try check((0...100).contains(rrlSlip), "--rrl-slip must be from 0 to 100, not \(rrlSlip)")
        try check((8...32).contains(rrlIpv4Prefix), "--rrl-ipv4-prefix must be from 8 to 32, not \(rrlIpv4Prefix)")
        try check((16...128).contains(rrlIpv6Prefix), "--rrl-ipv6-prefix must be from 16 to 128, not \(rrlIpv6Prefix)")
        try check((1024...(1 << 22)).contains(rrlTableSize) && rrlTableSize & (rrlTableSize - 1) == 0, "--rrl-table-size must be a power of two from 1024 to 4194304")
        try check((1...1_000_000).contains(tcpMaxPerClient), "--tcp-max-per-client must be from 1 to 1000000, not \(tcpMaxPerClient)")
        try check((65_537...67_108_864).contains(tcpMaxBuffer), "--tcp-max-buffer must be from 65537 to 67108864 octets, not \(tcpMaxBuffer)")
        try check((0...300).contains(startupTimeout.value), "--startup-timeout must be from 0 to 300 seconds, not \(startupTimeout)")
        if let cookielessUdpMax {
            try check((512...65535).contains(cookielessUdpMax), "--cookieless-udp-max must be from 512 to 65535, not \(cookielessUdpMax)")
            try check(!noCookies, "--cookieless-udp-max needs cookies (drop --no-cookies)")
        }
        if let nsid { try check((1...EngineConfig.maxNSID).contains(nsid.utf8.count), "--nsid must be 1 to \(EngineConfig.maxNSID) octets, not \(nsid.utf8.count)") }
        if let identity { try check(identity.utf8.count <= 255, "--identity must be at most 255 octets (one TXT string)") }
        if let versionString { try check(versionString.utf8.count <= 255, "--version-string must be at most 255 octets (one TXT string)") }
        if let nodeName { try check(ClusterConfig.isValidName(nodeName), "--node-name must be 1-64 letters, digits, '.', '-' or '_'") }
        if let gossipListen { try check(GossipAddress(gossipListen) != nil, "bad --gossip-listen \(gossipListen): use IP:PORT or [V6]:PORT") }
        try check(["text", "json"].contains(logFormat), "--log-format must be text or json")
        try check(UDPEngine(rawValue: udpEngine) != nil, "--udp-engine must be batch or nio")
        try check(ListenAddress(adminListen) != nil, "bad --admin-listen \(adminListen): use HOST:PORT or [V6]:PORT")
        try check((adminTlsCert == nil) == (adminTlsKey == nil), "--admin-tls-cert and --admin-tls-key go together")
        if let user { try check(!user.isEmpty && user.utf8.count <= 64, "--user must name a user") }
        for s in checkSource { try check(IPAddress(s) != nil, "--check-source \(s) is not an IP address") }
        try check(Set(checkSource.compactMap { IPAddress($0)?.family }).count == checkSource.count, "--check-source: give at most one address per family")
        try check((3_600...(366 * 86_400)).contains(signatureValidity.value), "--signature-validity must be from 3600 s to 366 days, not \(signatureValidity)")
        try check((0...86_400).contains(signatureInceptionOffset.value), "--signature-inception-offset must be at most 86400 s, not \(signatureInceptionOffset)")
        try check((0...(signatureValidity.value / 2)).contains(signatureRefresh.value), "--signature-refresh must be at most half of --signature-validity")
        try check((1...604_800).contains(dnskeyTtl.value), "--dnskey-ttl must be from 1 to 604800 s, not \(dnskeyTtl)")
        try check((16...10_000_000).contains(signatureCacheSize), "--signature-cache-size must be from 16 to 10000000, not \(signatureCacheSize)")
        try check(dnstapSocket == nil || dnstapFile == nil, "--dnstap-socket and --dnstap-file: give one")
        try check(["on", "off"].contains(latencyPassive), "--latency-passive must be on or off, not '\(latencyPassive)'")
        try check(["on", "off"].contains(latencyProbes), "--latency-probes must be on or off, not '\(latencyProbes)'")
        try check((1...100).contains(latencyProbeRate), "--latency-probe-rate must be 1-100, not \(latencyProbeRate)")
        try check((1...86_400).contains(latencyProbeInterval), "--latency-probe-interval must be 1-86400 seconds, not \(latencyProbeInterval)")
        try check((1...1_000_000).contains(dnstapSample), "--dnstap-sample must be from 1 to 1000000, not \(dnstapSample)")
        try check(["both", "queries", "responses"].contains(dnstapMessages), "--dnstap-messages must be both, queries or responses")
        try check((16...(1 << 22)).contains(dnstapQueue), "--dnstap-queue must be from 16 to 4194304 frames, not \(dnstapQueue)")
        if let dnstapSocket { try check(dnstapSocket.utf8.count < 108, "--dnstap-socket: a UNIX socket path is at most 107 octets") }
        if let keys {
            var isDir: ObjCBool = false
            try check(FileManager.default.fileExists(atPath: keys, isDirectory: &isDir) && isDir.boolValue, "--keys \(keys) is not a directory")
        }
    }

    /// The dnstap options as settings; nil without a socket or file.
    var dnstapSettings: DnstapSettings? {
        let destination: DnstapSettings.Destination
        if let dnstapSocket { destination = .socket(dnstapSocket) } else if let dnstapFile { destination = .file(dnstapFile) } else { return nil }
        return DnstapSettings(
            destination: destination, sampleEvery: dnstapSample, queries: dnstapMessages != "responses", responses: dnstapMessages != "queries",
            identity: dnstapIdentity ?? ProcessInfo.processInfo.hostName, version: "Meridian \(BuildInfo.version)", queueFrames: dnstapQueue)
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let json = logFormat == "json"
        LoggingSystem.bootstrap { label in
            if json { return JSONLogHandler(label: label, level: level) }
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "meridian")
        // Every metric is made after this, so all of them reach /metrics.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(DescribedMetricsFactory(registry: registry))
        Gauge(label: "meridian_build_info", dimensions: [("version", BuildInfo.version), ("commit", BuildInfo.commit)]).record(1)
        var admin: AdminConfig?
        if !noAdmin, let a = ListenAddress(adminListen) {
            var c = AdminConfig(host: a.host, port: a.port, tlsCertificate: adminTlsCert, tlsKey: adminTlsKey)
            if let adminTokenFile {
                do { c.tokens = try AdminTokenFile.load(path: adminTokenFile) } catch { throw ValidationError(error.description) }
            }
            guard !c.tokens.isEmpty || c.isLoopback else { throw ValidationError(AdminConfigError.needsToken(a.host).description) }
            admin = c
        }
        var addresses: [ListenAddress] = []
        for l in listen {
            guard let a = ListenAddress(l) else { throw ValidationError("bad listen address \(l): use HOST:PORT or [V6]:PORT") }
            addresses.append(a)
        }
        var cookies: CookieConfig
        if noCookies {
            cookies = CookieConfig(secrets: [])
        } else if let cookieSecretFile {
            do { cookies = try CookieSecretFile.load(path: cookieSecretFile) } catch {
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                throw ExitCode(1)
            }
        } else {
            var rng = SystemRandomNumberGenerator()
            cookies = CookieConfig(secrets: [(0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }])
        }
        cookies.cookielessUDPLimit = cookielessUdpMax
        let engine = EngineConfig(
            maxUDPPayload: maxUdpSize,
            identity: ServerIdentity(nsid: nsid.map { Array($0.utf8) }, identity: identity, version: versionString), cookies: cookies)
        var config = ServerConfig(
            zonesDirectory: zones, statePath: state, startupCheckTimeout: startupTimeout.value,
            instanceName: nodeName ?? ProcessInfo.processInfo.hostName, listen: addresses, threads: threads, tcpIdleTimeout: Int64(tcpIdleTimeout.value),
            tcpMaxConnections: tcpMaxConnections, tcpMaxPerClient: tcpMaxPerClient, tcpMaxBufferedBytes: tcpMaxBuffer, engine: engine,
            gossipListen: gossipListen, gossipKeyFile: key.gossipKeyFile, gossipInsecure: key.gossipInsecure,
            rateLimit: RateLimitConfig(responsesPerSecond: rrlRate, slip: rrlSlip, ipv4Prefix: rrlIpv4Prefix, ipv6Prefix: rrlIpv6Prefix, tableSize: rrlTableSize),
            watchZones: watch, udpEngine: UDPEngine(rawValue: udpEngine) ?? .batch, keysDirectory: keys,
            signing: SigningPolicy(validity: UInt32(signatureValidity.value), inceptionOffset: UInt32(signatureInceptionOffset.value),
                                   refresh: UInt32(signatureRefresh.value), dnskeyTTL: UInt32(dnskeyTtl.value), cacheEntries: signatureCacheSize),
            checkSource: checkSource, dnstap: dnstapSettings)
        config.latencyPassive = latencyPassive == "on"
        config.latencyProbes = latencyProbes == "on"
        config.latencyProbeRate = latencyProbeRate
        config.latencyProbeInterval = latencyProbeInterval
        let server: DNSServer
        do { server = try DNSServer(config: config, logger: logger) } catch {
            // Once, in the log's format (a JSON line with --log-format json).
            logger.critical("\(error)")
            throw ExitCode(1)
        }
        var adminServer: AdminServer?
        do {
            try await server.start()
            if let admin {
                let a = try AdminServer(server: server, config: admin, registry: registry, logger: logger)
                let port = try await a.start()
                adminServer = a
                logger.info("admin API on \(admin.tlsCertificate == nil ? "http" : "https")://\(ListenAddress(host: admin.host, port: port))\(admin.tokens.isEmpty ? " (no token: loopback only)" : "")")
            }
            if let user { try Privileges.drop(to: user, logger: logger) }
        } catch {
            logger.critical("\(error)")
            await adminServer?.shutdown()
            await server.shutdown()
            throw ExitCode(1)
        }
        // SIGTERM/SIGINT: the admin API stops first, then the DNS server; SIGHUP reloads.
        await server.runUntilSignalled(alongside: adminServer.map { a in [StoppableService { await a.shutdown() }] } ?? [])
    }
}

