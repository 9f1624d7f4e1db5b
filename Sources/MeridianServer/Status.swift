import Frontend
import Atomics
import Health
import HealthCheck
import DNSSEC
import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import Gossip
import GossipTransport
import Control
import QueryEngine
import Selection
import DNSWire
import ZoneStore

/// The transitions of every member, published as an immutable value: the API reads it
/// without a lock.
final class TransitionHistory: AtomicReference, Sendable {
    let byMember: [String: [Transition]]
    init(_ byMember: [String: [Transition]]) { self.byMember = byMember }
}

/// Watches every published snapshot (on the supervisor's queue, its only caller): records
/// member transitions (logged, counted, kept for `/status`) and sets the per-member and
/// per-pool gauges.
final class TransitionRecorder: @unchecked Sendable {
    // @unchecked: `log` is used only by `observe`, which only the supervisor's queue calls;
    // readers see `history`, an atomic reference to an immutable value.
    private var log = TransitionLog()
    private let history = ManagedAtomic(TransitionHistory([:]))
    private let logger: Logger
    private let clock: @Sendable () -> Double

    init(logger: Logger, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.logger = logger
        self.clock = clock
    }

    /// The configuration and key state the zone gauges were last set for.
    private var gauged: (config: Int, epochs: [UInt64?])?

    func observe(_ snapshot: Snapshot) {
        let epochs = snapshot.signers.map { $0?.epoch }
        if gauged.map({ $0.config != snapshot.configGeneration || $0.epochs != epochs }) ?? true {
            gauged = (snapshot.configGeneration, epochs)
            recordConfiguration(snapshot)
        }
        var statuses: [String: MemberStatus] = [:]
        var pools: [String: String] = [:]
        for rt in snapshot.pools.runtimes {
            var counts: [HealthState: Int] = [:]
            for (m, member) in rt.pool.members.enumerated() {
                statuses[member.id] = rt.status[m]
                pools[member.id] = rt.pool.name
                counts[rt.status[m].state, default: 0] += 1
                let dims = [("pool", rt.pool.name), ("member", member.id)]
                Gauge(label: "meridian_member_weight_factor", dimensions: dims).record(rt.status[m].weightFactor)
                Gauge(label: "meridian_member_effective_weight", dimensions: dims).record(rt.effectiveWeight[m])
            }
            for state in HealthState.allCases {
                Gauge(label: "meridian_members", dimensions: [("pool", rt.pool.name), ("state", state.rawValue)]).record(counts[state] ?? 0)
            }
            for (s, site) in rt.pool.sites.enumerated() {
                Gauge(label: "meridian_site_usable", dimensions: [("pool", rt.pool.name), ("site", site.name)]).record(rt.siteUsable[s] ? 1 : 0)
            }
        }
        let changes = log.observe(statuses, at: clock())
        if !changes.isEmpty || log.history.count != history.load(ordering: .relaxed).byMember.count {
            history.store(TransitionHistory(log.history), ordering: .releasing)
        }
        for (id, t) in changes {
            logger.notice("\(id): \(t.from) -> \(t.to) (\(t.reason))")
            Counter(label: "meridian_member_transitions_total", dimensions: [("pool", pools[id] ?? "-"), ("to", t.to)]).increment()
        }
    }

    /// What changes only with the configuration or the keys' timing: each zone's signature
    /// expiry, and every pool's transition counters made at zero.
    private func recordConfiguration(_ snapshot: Snapshot) {
        for rt in snapshot.pools.runtimes {
            for to in HealthState.allCases {
                Counter(label: "meridian_member_transitions_total", dimensions: [("pool", rt.pool.name), ("to", to.rawValue)]).increment(by: 0)
            }
        }
        let now = UInt32(clamping: Int64(clock()))
        for z in snapshot.zones.zones {
            let online = snapshot.keys.contains { $0.zone == z.origin }
            let expiry: Double?
            if online {
                expiry = ZoneSigner.signsUntil(apex: z.origin, keys: snapshot.keys, now: now).map(Double.init) ?? .infinity
            } else {
                expiry = z.earliestSignatureExpiration.map(Double.init)
            }
            guard let expiry else { continue }
            Gauge(label: "meridian_dnssec_signature_expiry_timestamp_seconds", dimensions: [("zone", Name.text(z.origin))]).record(expiry)
        }
    }

    func transitions(of id: String) -> [Transition] { history.load(ordering: .acquiring).byMember[id] ?? [] }
}

/// What `/status` returns: the instance, its configuration, and every pool, site and member
/// with its state, what decided it, what each observer sees and the recent transitions.
public struct ServerStatus: Sendable, Codable {
    public struct ZoneInfo: Sendable, Codable {
        public var name: String; public var file: String; public var records: Int; public var serial: UInt32
        /// The zone's DNSSEC keys (none: served unsigned).
        public var keys: [KeyInfo] = []
    }
    /// A DNSSEC key: its tag, algorithm and role, whether it is in the DNSKEY set and signs now,
    /// and its timing (UNIX seconds) from the key file.
    public struct KeyInfo: Sendable, Codable {
        public var tag: UInt16; public var algorithm: UInt8; public var role: String
        public var published: Bool; public var signing: Bool
        public var publish: UInt32?; public var activate: UInt32?; public var inactive: UInt32?; public var delete: UInt32?
        public var file: String
        /// The DS record for the parent (KSKs and CSKs), in presentation form.
        public var ds: String?
    }
    public struct PeerInfo: Sendable, Codable {
        public var name: String; public var address: String; public var state: String; public var incarnation: UInt64
        public var sameConfiguration: Bool
    }
    public struct CheckInfo: Sendable, Codable {
        public var observer: String; public var check: String; public var up: Bool; public var reason: String; public var at: Double
        public var initial: Bool
    }
    public struct AgentInfo: Sendable, Codable { public var observer: String; public var detail: String; public var at: Double }
    public struct MemberInfo: Sendable, Codable {
        public var id: String; public var name: String; public var address: String?
        public var state: String; public var weight: Double; public var weightFactor: Double; public var effectiveWeight: Double
        public var decidedBy: String; public var probers: [String]
        public var checks: [CheckInfo]; public var agents: [AgentInfo]; public var transitions: [Transition]
    }
    public struct SiteInfo: Sendable, Codable {
        public var name: String; public var backup: Bool; public var usable: Bool; public var healthy: Int; public var members: [MemberInfo]
    }
    public struct PoolInfo: Sendable, Codable {
        public var name: String; public var mode: String; public var names: [String]; public var ttl: UInt32; public var degraded: Bool
        public var sites: [SiteInfo]
    }

    public var instance: String
    /// Configurations loaded (start and each reload that was accepted).
    public var generation: Int
    /// Health views published since start (each change of any member's observations or of an override).
    public var healthGeneration: Int
    public var startedAt: Double
    public var now: Double
    public var zonesDirectory: String
    public var files: [String]
    public var statePath: String?
    public var verdictPolicy: String
    public var zones: [ZoneInfo]
    public var peers: [PeerInfo]
    public var pools: [PoolInfo]
    public var overrides: [OverrideInfo]
    /// How the last reload ended (nil before the first): a failed one keeps the configuration
    /// before it serving, and its first 20 errors are here as `file:line: message`.
    public var lastReload: ReloadInfo?

    /// The group's latency map (`order: latency`): how many networks, and the first entries
    /// by network.
    public var latency: LatencyInfo? = nil

    public struct LatencyInfo: Sendable, Codable {
        public var networks: Int
        public var entries: [LatencyEntryInfo]
        /// Entries left out of `entries` (at most `LatencyInfo.shown` are listed).
        public var omitted: Int
        public static let shown = 500
    }

    public struct LatencyEntryInfo: Sendable, Codable {
        public var network: String; public var site: String; public var rttMs: Double; public var samples: Double; public var observers: Int
    }

    public struct ReloadInfo: Sendable, Codable {
        public var ok: Bool
        public var at: Double
        public var diagnostics: [String]
    }
}

extension DNSServer {
    /// Everything `/status` shows, from the snapshot in force and the group's view.
    public func status() async -> ServerStatus {
        let snapshot = box.load()
        let health = snapshot.pools.health
        let digest = Self.digest(snapshot.pools.pools, MonitorTarget.targets(for: snapshot.pools.pools))
        let peerList = await supervisor.peerList()
        let lastReload = await supervisor.lastReloadInfo()
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: config.zonesDirectory)) ?? [])
            .filter { !$0.hasPrefix(".") }.sorted().map { (config.zonesDirectory as NSString).appendingPathComponent($0) }
        return ServerStatus(
            instance: supervisor.nodeName, generation: snapshot.configGeneration, healthGeneration: health.version, startedAt: startedAt, now: clock(),
            zonesDirectory: config.zonesDirectory, files: files, statePath: config.statePath, verdictPolicy: "\(health.policy)",
            zones: snapshot.zones.zones.map { .init(name: Name.text($0.origin), file: $0.file, records: $0.recordCount, serial: $0.serial, keys: keyInfo($0.origin, snapshot)) },
            peers: peerList.map { .init(name: $0.name, address: $0.address, state: $0.state.rawValue, incarnation: $0.incarnation, sameConfiguration: $0.digest == digest) },
            pools: snapshot.pools.runtimes.map { poolInfo($0, health: health) },
            overrides: overrides(), lastReload: lastReload, latency: Self.latencyInfo(health.latency))
    }

    static func latencyInfo(_ table: LatencyTable) -> ServerStatus.LatencyInfo {
        var entries: [ServerStatus.LatencyEntryInfo] = []
        var total = 0
        for (prefix, sites) in table.cells.sorted(by: { $0.key < $1.key }) {
            for (site, c) in sites.sorted(by: { $0.key < $1.key }) {
                total += 1
                if entries.count < ServerStatus.LatencyInfo.shown {
                    entries.append(.init(network: prefix.description, site: site, rttMs: (c.rttMs * 10).rounded() / 10, samples: c.samples, observers: c.observers))
                }
            }
        }
        return .init(networks: table.cells.count, entries: entries, omitted: total - entries.count)
    }

    /// The keys of zone `apex` as the snapshot's signer uses them now.
    func keyInfo(_ apex: [UInt8], _ snapshot: Snapshot) -> [ServerStatus.KeyInfo] {
        let now = UInt32(clamping: Int64(clock()))
        let keys = snapshot.keys.filter { $0.zone == apex }
        let hasZSK = keys.contains { !$0.isSEP }
        return keys.map { k in
            ServerStatus.KeyInfo(
                tag: k.tag, algorithm: k.key.algorithm.rawValue, role: k.isSEP ? (hasZSK ? "KSK" : "CSK") : "ZSK",
                published: k.timing.isPublished(at: now), signing: k.timing.isActive(at: now),
                publish: k.timing.publish, activate: k.timing.activate, inactive: k.timing.inactive, delete: k.timing.delete, file: k.file,
                ds: k.isSEP ? k.dsText : nil)
        }
    }

    func poolInfo(_ rt: PoolRuntime, health: HealthSnapshot) -> ServerStatus.PoolInfo {
        let pool = rt.pool
        let sites = pool.sites.enumerated().map { s, site in
            ServerStatus.SiteInfo(
                name: site.name, backup: site.backup, usable: rt.siteUsable[s], healthy: rt.siteHealthy[s],
                members: site.members.map { memberInfo(rt, $0, health: health) })
        }
        return ServerStatus.PoolInfo(
            name: pool.name, mode: pool.mode.rawValue, names: pool.names.map(Name.text), ttl: rt.ttl, degraded: rt.degraded, sites: sites)
    }

    func memberInfo(_ rt: PoolRuntime, _ m: Int, health: HealthSnapshot) -> ServerStatus.MemberInfo {
        let member = rt.pool.members[m]
        let obs = health.observations[member.id]
        return ServerStatus.MemberInfo(
            id: member.id, name: member.name, address: member.address?.description ?? member.target.map(Name.text),
            state: rt.status[m].state.rawValue, weight: member.weight, weightFactor: rt.status[m].weightFactor,
            effectiveWeight: rt.effectiveWeight[m], decidedBy: rt.status[m].source, probers: obs?.probers ?? [],
            checks: (obs?.checks ?? []).map { .init(observer: $0.observer, check: $0.check, up: $0.up, reason: $0.reason, at: $0.at, initial: $0.provisional) },
            agents: (obs?.agents ?? []).map { .init(observer: $0.observer, detail: $0.detail, at: $0.at) },
            transitions: transitions.transitions(of: member.id))
    }
}
