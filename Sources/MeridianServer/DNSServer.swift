import Frontend
import DNSSEC
import Diagnostics
import Atomics
import ConfigurationFiles
import Health
import CPrivileges
import DNSWire
import Dispatch
import Foundation
import GeoTopology
import HealthCheck
import PoolConfig
import NIOConcurrencyHelpers
import Logging
import Metrics
import NIOCore
import NIOExtras
import NIOPosix
import Gossip
import GossipTransport
import Control
import QueryEngine
import Selection
import QueryLog
import ZoneStore

#if canImport(Glibc)
import Glibc
#endif

/// Why the server could not start.
public enum ServerError: Error, CustomStringConvertible {
    case config([Diagnostic])
    case bind(BindError)
    case gossip(String)
    case dnstap(String)

    public var description: String {
        switch self {
        case let .config(d): return d.filter { $0.severity == .error }.map(\.description).joined(separator: "\n")
        case let .bind(e): return e.description
        case let .gossip(m): return m
        case let .dnstap(m): return m
        }
    }
}

/// The DNS front end: loads zones, listens on UDP (one SO_REUSEPORT socket per event loop and
/// address) and TCP, answers from the published snapshot, and reloads on request.
public final class DNSServer: Sendable {
    public let config: ServerConfig
    public let box: SnapshotBox
    let logger: Logger
    /// The listeners and their event loops (the front end).
    let listeners: Listeners
    /// The only writer of `box`, running the control core (health checks, the group, overrides,
    /// reloads, key events) on a loop of its own.
    let supervisor: Supervisor
    let stateWatcher: NIOLockedValueBox<TimerHandle?> = NIOLockedValueBox(nil)
    let transitions: TransitionRecorder
    /// Serializes edits of the admin state file (API requests, dropped overruled lines).
    let stateFileLock = NIOLock()
    /// The patterns of this instance's state file as last loaded.
    let ownPatterns = NIOLockedValueBox<Set<String>>([])
    /// Wall clock, unix seconds.
    let clock: @Sendable () -> Double
    public let startedAt: Double
    let tcpOpenGauge = Gauge(label: "meridian_tcp_connections")
    /// The cluster file as it was at start (an observer's role is fixed for its life).
    let startCluster: ClusterConfig?
    /// The dnstap log (`--dnstap-socket`, `--dnstap-file`), started with the listeners.
    let dnstap: DnstapWriter?

    /// Loads zones, pools, the state file and the cluster file; throws if any has an error.
    public init(config: ServerConfig, logger: Logger, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) throws {
        self.config = config
        self.logger = logger
        self.clock = clock
        startedAt = clock()
        let outcome = ConfigDirectory.load(
            directory: config.zonesDirectory, statePath: config.statePath, engine: config.engine, keysDirectory: config.keysDirectory,
            signing: config.signing, now: UInt32(clamping: Int64(clock())))
        for d in outcome.diagnostics where d.severity == .warning { logger.warning("\(d)") }
        guard let loaded = outcome.configuration else { throw ServerError.config(outcome.diagnostics) }
        let snapshot = loaded.snapshot
        // Every check of the configuration before anything with a thread of its own is made.
        let settings = try Self.groupSettings(config, cluster: loaded.cluster)
        startCluster = loaded.cluster
        let box = SnapshotBox(snapshot)
        self.box = box
        let zones = snapshot.zones
        let source = try Self.checkSource(config, gossip: settings.listen ?? settings.cluster?.peers[config.instanceName].flatMap(GossipAddress.init))
        logger.info("health checks leave from \(source)")
        let transitions = TransitionRecorder(logger: logger, clock: clock)
        self.transitions = transitions
        supervisor = Supervisor(
            box: box, settings: settings, source: source, logger: logger, clock: clock, transitions: transitions,
            load: Self.loader(config: config, logger: logger, clock: clock))
        dnstap = config.dnstap.map { DnstapWriter(settings: $0, logger: logger) }
        let site = loaded.cluster?.placement[config.instanceName]?.site
        let taps = (config.latencyPassive || config.latencyProbes) && site != nil ? LatencyTaps(tcp: config.latencyPassive) : nil
        if let taps, let site {
            supervisor.measureLatency(taps, site: site, prober: config.latencyProbes ? LatencyProber(group: supervisor.loop, source: source) : nil,
                probeRate: config.latencyProbeRate, probeInterval: config.latencyProbeInterval)
        }
        listeners = Listeners(
            box: box,
            settings: FrontendSettings(
                threads: config.threads, udpEngine: config.udpEngine, maxUDPPayload: config.engine.maxUDPPayload, rateLimit: config.rateLimit,
                tcpIdleTimeout: config.tcpIdleTimeout, tcpMaxConnections: config.tcpMaxConnections, tcpMaxPerClient: config.tcpMaxPerClient,
                tcpMaxBufferedBytes: config.tcpMaxBufferedBytes, dnstap: dnstap, latencyTaps: taps),
            logger: logger)
        logger.info("loaded \(zones.zones.count) zones, \(zones.recordCount) records, \(snapshot.pools.runtimes.count) pools from \(config.zonesDirectory)")
        Self.releaseFreedMemory()
    }

    /// The slow half of a reload, run on the supervisor's loader queue: every file of the
    /// configuration directory read and checked, nothing published.
    static func loader(config: ServerConfig, logger: Logger, clock: @escaping @Sendable () -> Double) -> @Sendable (LoadRequest) -> LoadOutcome {
        { request in
            let now = UInt32(clamping: Int64(clock()))
            let outcome: ConfigDirectory.Outcome
            if let zones = request.zones {
                outcome = ConfigDirectory.reloadZones(zones, of: request.current, now: now)
            } else {
                outcome = ConfigDirectory.load(
                    directory: config.zonesDirectory, engine: config.engine, keysDirectory: config.keysDirectory, signing: config.signing,
                    health: request.current.pools.health, now: now)
            }
            for d in outcome.diagnostics { d.severity == .error ? logger.error("\(d)") : logger.warning("\(d)") }
            return LoadOutcome(
                snapshot: outcome.configuration?.snapshot, cluster: outcome.configuration?.cluster, diagnostics: outcome.diagnostics,
                zones: request.zones)
        }
    }

    /// Where checks leave from: `--check-source` when given; else the instance's own address of
    /// each family, its gossip address first, then its first listen address (a wildcard is
    /// no address: the route chooses).
    static func checkSource(_ config: ServerConfig, gossip: GossipAddress?) throws -> CheckSource {
        var source = CheckSource()
        if !config.checkSource.isEmpty {
            for text in config.checkSource {
                guard let a = IPAddress(text) else { throw ServerError.config([Diagnostic(file: "--check-source", line: 0, "\(text) is not an IP address")]) }
                guard source.address(for: a.family) == nil else {
                    throw ServerError.config([Diagnostic(file: "--check-source", line: 0, "give at most one address per family")])
                }
                if a.family == .v4 { source.v4 = a } else { source.v6 = a }
            }
            return source
        }
        for host in [gossip?.host].compactMap({ $0 }) + config.listen.map(\.host) {
            guard let a = IPAddress(host), a != IPAddress("0.0.0.0"), a != IPAddress("::") else { continue }
            if a.family == .v4, source.v4 == nil { source.v4 = a }
            if a.family == .v6, source.v6 == nil { source.v6 = a }
        }
        return source
    }

    /// The group settings from the cluster file (if any) and the gossip options.
    static func groupSettings(_ config: ServerConfig, cluster: ClusterConfig?) throws -> GroupSettings {
        let path = (config.zonesDirectory as NSString).appendingPathComponent(ConfigDirectory.clusterFile)
        guard let cluster else { return GroupSettings(nodeName: config.instanceName, cluster: nil) }
        guard ClusterConfig.isValidName(config.instanceName) else {
            throw ServerError.gossip("node name '\(config.instanceName)' must be 1-64 letters, digits, '.', '-' or '_' (--node-name)")
        }
        var listen: GossipAddress?
        if let l = config.gossipListen {
            guard let a = GossipAddress(l) else { throw ServerError.gossip("bad --gossip-listen \(l): use IP:PORT or [V6]:PORT") }
            listen = a
        } else if cluster.peers[config.instanceName] == nil {
            throw ServerError.gossip(GroupError.notInClusterFile(node: config.instanceName, file: path).description)
        }
        let keys: GossipKeys
        if let file = config.gossipKeyFile {
            do { keys = try GossipKeys.load(path: file) } catch { throw ServerError.gossip("\(error)") }
        } else if config.gossipInsecure {
            keys = .insecureKey
        } else {
            throw ServerError.gossip("\(path) makes this instance gossip: give --gossip-key-file (or --gossip-insecure to run unauthenticated)")
        }
        return GroupSettings(nodeName: config.instanceName, cluster: cluster, listen: listen, keys: keys)
    }

    /// The pool configuration's digest that peers compare: every member and every check.
    public static func digest(_ pools: PoolSet, _ targets: [MonitorTarget]) -> UInt64 {
        let members = pools.pools.flatMap(\.members).map { "\($0.id)=\($0.address.map(\.description) ?? "-")" }.sorted()
        // How results become a state (healthy_if, depends_on) is part of it: peers that differ
        // there would answer differently from the same results.
        let rules = Dependencies.map(pools.pools).map { "\($0.key)<\($0.value.joined(separator: ","))" }.sorted()
            + pools.pools.compactMap { p in p.healthyIf.map { "\(p.name) healthy_if \($0)" } }.sorted()
        return StableHash.of((members + targets.map(\.definition).sorted() + rules).joined(separator: "\n"))
    }

    /// Binds every listener. Port 0 picks one free port, used for all sockets of that address.
    /// Returns the addresses actually bound. Before the first answer: the peers' state is
    /// pulled (bounded by the start-up timeout), then this instance's share of the checks
    /// runs one round, so it never answers from an empty view because it just started.
    @discardableResult
    public func start() async throws -> [ListenAddress] {
        do throws(DnstapError) { try dnstap?.start() } catch { throw ServerError.dnstap(error.description) }
        watchFiles()
        let snapshot = box.load()
        let all = MonitorTarget.targets(for: snapshot.pools.pools)
        var overrides: [AdminOverride]?
        if let path = config.statePath {
            let (loaded, diags) = AdminStateFile.load(path: path)
            if !diags.contains(where: { $0.severity == .error }) {
                ownPatterns.withLockedValue { $0 = Set(loaded.map(\.pattern)) }
                overrides = loaded
            }
        }
        do {
            try await supervisor.start(
                targets: all, digest: Self.digest(snapshot.pools.pools, all), overrides: overrides,
                registers: { [weak self] registers in self?.adoptGroupOverrides(registers) })
        } catch {
            throw ServerError.gossip("\(error)")
        }
        let started = NIODeadline.now()
        if let address = supervisor.gossipAddress {
            let answered = await supervisor.join(timeout: config.startupCheckTimeout)
            let ms = (NIODeadline.now() - started).nanoseconds / 1_000_000
            logger.info("gossip: joined as \(config.instanceName) on \(address): \(answered) peers answered in \(ms) ms")
        }
        if !all.isEmpty {
            let mine = await supervisor.firstRound(timeout: config.startupCheckTimeout)
            let ms = (NIODeadline.now() - started).nanoseconds / 1_000_000
            logger.info("first round of health checks: \(mine) of \(all.count) members checked here, ready in \(ms) ms")
        }
        // The merged view now, not after the coalescing delay.
        await supervisor.publishNow()
        let view = box.load().pools
        let statuses = PoolsRuntime.statuses(view.pools.pools, health: view.health)
        let down = all.filter { statuses[$0.memberID]?.state == .down }.count
        if !all.isEmpty { logger.info("health view: \(down) of \(all.count) checked members down") }
        if observer {
            logger.notice("\(config.instanceName) is an observer (cluster.yaml role: observer): it checks and gossips, and serves no DNS")
            return []
        }
        do {
            return try await listeners.start(config.listen)
        } catch {
            throw ServerError.bind(error)
        }
    }

    /// Whether the cluster file makes this instance an observer (at start).
    var observer: Bool { startCluster?.role(of: config.instanceName) == .observer }

    /// Reloads zones, pools, the cluster file and the state file (off every event loop) and
    /// publishes them only if every file is valid; otherwise the current data keeps serving
    /// and the errors are returned. A changed peer list in the cluster file takes effect at once.
    @discardableResult
    public func reload() async -> [Diagnostic] {
        let diagnostics = await supervisor.reload()
        guard !diagnostics.contains(where: { $0.severity == .error }) else { return diagnostics }
        return diagnostics + reloadState()
    }

    /// Reads the named zones' files again and nothing else (pools, keys, the cluster and state
    /// files and the other zones stay); publishes only if they are valid.
    public func reload(zones: [String]) async -> [Diagnostic] {
        await supervisor.reload(zones: zones)
    }

    /// Starts a reload and returns at once (signals, the file watcher).
    public func requestReload() {
        supervisor.requestReload { [weak self] diagnostics in
            guard let self, !diagnostics.contains(where: { $0.severity == .error }) else { return }
            self.reloadState()
        }
    }

    /// Re-reads the admin state file and hands its overrides to the group (which spreads them
    /// to its peers and publishes the new view); a bad file is logged and the current
    /// overrides stay.
    @discardableResult
    public func reloadState() -> [Diagnostic] {
        guard let path = config.statePath else { return [] }
        let (overrides, diags) = AdminStateFile.load(path: path)
        for d in diags { d.severity == .error ? logger.error("\(d)") : logger.warning("\(d)") }
        guard !diags.contains(where: { $0.severity == .error }) else {
            logger.error("state file rejected, keeping the current overrides")
            return diags
        }
        ownPatterns.withLockedValue { $0 = Set(overrides.map(\.pattern)) }
        supervisor.recordOverrides(overrides)
        logger.info("state file \(path): \(overrides.count) overrides")
        return diags
    }

    /// Hands the heap the zone loader freed back to the system (malloc keeps it otherwise: a
    /// million-record zone leaves 615 MB resident where 376 MB are in use). Only after the first
    /// load, before anything is served: trimming takes the allocator's lock for as long as it walks
    /// the heap, and after a reload, with queries running, that showed as answers delayed by up
    /// to 1.5 s.
    static func releaseFreedMemory() {
        _ = meridian_release_free_memory()
    }

    /// A file's modification time, size and inode; empty when it cannot be read.
    static func signature(_ path: String) -> [Int] {
        var st = stat()
        guard stat(path, &st) == 0 else { return [] }
        return [Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec), Int(st.st_size), Int(st.st_ino)]
    }

    /// Polls the state file (every `statePollMilliseconds`) and the configuration's GeoIP
    /// database (every second) for changes of modification time, size or inode: a changed
    /// state file is handed to the group, a changed database reloads the configuration (which
    /// opens a private copy of it; a half-written file fails to open and the old data stays).
    func watchFiles() {
        let statePath = config.statePath
        let interval = config.statePollMilliseconds
        let lastState = NIOLockedValueBox(statePath.map(Self.signature) ?? [])
        let geoPath = { [box] in box.load().pools.pools.geo?.path }
        let lastGeo = NIOLockedValueBox<(path: String?, signature: [Int])>((geoPath(), geoPath().map(Self.signature) ?? []))
        let ticks = NIOLockedValueBox(0)
        let zones = ZoneWatch(directory: config.zonesDirectory, settle: config.watchSettleMilliseconds, enabled: config.watchZones)
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "meridian.file-watch"))
        timer.schedule(deadline: .now() + .milliseconds(interval), repeating: .milliseconds(interval))
        timer.setEventHandler { [self] in
            if let statePath {
                let now = Self.signature(statePath)
                if lastState.withLockedValue({ old in defer { old = now }; return old != now }) { reloadState() }
            }
            if zones.changed(nowMillis: Int(clock() * 1000)) {
                logger.notice("\(config.zonesDirectory) changed: reloading")
                requestReload()
            }
            let tick = ticks.withLockedValue { t in
                t += 1
                return t
            }
            guard tick * interval % 1000 < interval else { return }
            tcpOpenGauge.record(listeners.tcpSlots.connections)
            guard let path = geoPath() else { return }
            let now = Self.signature(path)
            let changed = lastGeo.withLockedValue { old in
                defer { old = (path, now) }
                return old.path == path && old.signature != now
            }
            if changed {
                logger.notice("GeoIP database \(path) changed: reloading the configuration")
                requestReload()
            }
        }
        timer.resume()
        stateWatcher.withLockedValue { $0 = TimerHandle(timer: timer) }
    }

    /// Closes every listener and stops the event loops.
    public func shutdown() async {
        stateWatcher.withLockedValue {
            $0?.timer.cancel()
            $0 = nil
        }
        await listeners.shutdown()
        dnstap?.stop()
        await supervisor.shutdown()
    }

}


/// Holds the state-file timer so the server can cancel it at shutdown.
struct TimerHandle: @unchecked Sendable {
    // @unchecked: a dispatch source may be cancelled from any thread (libdispatch guarantees
    // it); the handle is only ever used to call `cancel()`.
    let timer: any DispatchSourceTimer
}

/// `--watch`: the zones directory's files (name, modification time, size, inode), polled by
/// the file watcher; a change is reported once the directory has stayed unchanged for
/// `settle` milliseconds (a `git pull` or an editor writes several files, or one file twice).
final class ZoneWatch: Sendable {
    let directory: String
    let settle: Int
    let enabled: Bool
    private let state: NIOLockedValueBox<(loaded: [String: [Int]], seen: [String: [Int]], since: Int)>

    init(directory: String, settle: Int, enabled: Bool) {
        self.directory = directory
        self.settle = settle
        self.enabled = enabled
        let now = enabled ? Self.signature(directory) : [:]
        state = NIOLockedValueBox((now, now, 0))
    }

    static func signature(_ directory: String) -> [String: [Int]] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var out: [String: [Int]] = [:]
        for n in names where !n.hasPrefix(".") {
            out[n] = DNSServer.signature((directory as NSString).appendingPathComponent(n))
        }
        return out
    }

    /// True once per settled change.
    func changed(nowMillis: Int) -> Bool {
        guard enabled else { return false }
        let now = Self.signature(directory)
        return state.withLockedValue { s in
            if now != s.seen {
                s.seen = now
                s.since = nowMillis
                return false
            }
            guard now != s.loaded, nowMillis - s.since >= settle else { return false }
            s.loaded = now
            return true
        }
    }
}
