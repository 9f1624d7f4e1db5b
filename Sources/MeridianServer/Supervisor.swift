import Frontend
import Health
import DNSSEC
import DNSWire
import Diagnostics
import Dispatch
import Foundation
import HealthCheck
import Logging
import Metrics
import NIOCore
import NIOPosix
import Gossip
import GossipTransport
import Control
import QueryEngine

/// What a configuration load produced: a snapshot to publish (nil when a file was bad), the
/// cluster file, and every diagnostic.
struct LoadOutcome: Sendable {
    var snapshot: Snapshot?
    var cluster: ClusterConfig?
    var diagnostics: [Diagnostic]
    /// The zones read again, for a reload of some zones; nil: the whole directory.
    var zones: [String]? = nil
}

/// What a load is asked to read: the whole directory (`zones` nil) or some zones, over the
/// snapshot in force (whose health a full load carries, and whose other parts a zone load keeps).
struct LoadRequest: Sendable {
    var zones: [String]?
    var current: Snapshot
}

/// The only writer of the snapshot box, and the shell of the control core. One event loop of
/// its own (never one that answers DNS) runs the `ControlCore` and its two I/O shells: the
/// `ProbeExecutor` and the `GossipTransport` live on the same loop, so a probe result, a gossip
/// packet, an exchange, an admin change, a configuration loaded, the 20 ms clock and a key's
/// timing all reach the core as events in one order, and its directives (probe, send, publish,
/// log, count) are carried out here. A reload's files are read on the `loader` queue and come
/// back as one event, so a reload of any size never delays a health publication, gossip, an
/// answer, the admin API or shutdown; no lock is shared with an event loop.
final class Supervisor: @unchecked Sendable {
    // @unchecked: every `var` below is read and written only on `loop`; the rest is immutable
    // or thread-safe (the box, the gate, loggers, metrics).
    let box: SnapshotBox
    let nodeName: String
    private let loopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let loop: any EventLoop
    /// Every hop onto `loop` from another thread; closed at shutdown, after which work is dropped.
    private let gate: LoopGate
    private let loader = DispatchQueue(label: "meridian.loader")
    /// Where the registers handler runs (it may edit the state file), in order.
    private let stateFileQueue = DispatchQueue(label: "meridian.state-file")
    private let logger: Logger
    private let clock: @Sendable () -> Double
    /// The slow part of a reload (files, zones, keys), run on `loader` with the health in force.
    private let load: @Sendable (LoadRequest) -> LoadOutcome
    private let transitions: TransitionRecorder
    private var core: ControlCore
    private var executor: ProbeExecutor?
    private let transport: GossipTransport?
    /// After a health view was published: the registers, for the state-file adoption (off `loop`).
    private var registersChanged: (@Sendable ([String: Ledger.OverrideEntry]) -> Void)?
    private var reloading = false
    /// How the last reload ended (nil before the first), for `/status` and the page.
    private var lastReload: ServerStatus.ReloadInfo?
    /// What the next load reads: nil when none is asked for, `.some(nil)` for the whole
    /// directory, `.some(zones)` for some zones (requests made while a load runs merge).
    private var pending: [String]?? = nil
    private var waiting: [@Sendable ([Diagnostic]) -> Void] = []
    private var keyClock: UInt32
    private var tasks: [RepeatedTask] = []
    private var flushPending = false
    private var stopped = false
    private var firstRoundWaiters: [EventLoopPromise<Void>] = []
    /// Exchanges started by the directives being carried out (the join waits for them).
    private var exchanges: [EventLoopFuture<Bool>] = []
    private var inconclusive = 0
    private var transitionCount = 0
    private var loggedShortage = false
    private var lastReport: (stats: GroupStats, at: Double)?
    private let started: Double

    private let passiveSamples = Counter(label: "meridian_latency_samples_total", dimensions: [("source", "tcp")])
    private let apiSamples = Counter(label: "meridian_latency_samples_total", dimensions: [("source", "api")])
    /// A batch of probes went unanswered and was logged (once, until one is answered).
    private var probesUnansweredLogged = false
    private let probeSamples = Counter(label: "meridian_latency_samples_total", dimensions: [("source", "probe")])
    private let probesSent = Dictionary(uniqueKeysWithValues: LatencyProber.Method.allCases.map {
        ($0, Counter(label: "meridian_latency_probes_total", dimensions: [("result", $0.rawValue)]))
    })
    private let latencyNetworks = Gauge(label: "meridian_latency_networks")
    private let latencyEntries = Gauge(label: "meridian_latency_entries")
    private let reloadsOK = Counter(label: "meridian_reloads_total", dimensions: [("result", "ok")])
    private let reloadsFailed = Counter(label: "meridian_reloads_total", dimensions: [("result", "failed")])
    private let reloadTime = Gauge(label: "meridian_config_last_reload_success_timestamp_seconds")
    private let reloadGood = Gauge(label: "meridian_config_last_reload_successful")
    private let configGauge = Gauge(label: "meridian_config_generation")
    private let healthGauge = Gauge(label: "meridian_health_generation")
    private let downCounter = Counter(label: "meridian_health_transitions_total", dimensions: [("to", "down")])
    private let upCounter = Counter(label: "meridian_health_transitions_total", dimensions: [("to", "up")])
    private let localShortageCounter = Counter(label: "meridian_health_local_shortages_total")
    private let membersGauge = Gauge(label: "meridian_gossip_live_members")
    private let peerGauges = Dictionary(uniqueKeysWithValues: ["alive", "suspect", "dead", "left"].map {
        ($0, Gauge(label: "meridian_gossip_peers", dimensions: [("state", $0)]))
    })
    private let differentGauge = Gauge(label: "meridian_gossip_peers_different_configuration")

    /// The clock the core sees: monotonic seconds and wall milliseconds.
    private var now: GroupTime {
        GroupTime(monotonic: Double(NIODeadline.now().uptimeNanoseconds) / 1e9, wallMillis: Expiry.millis(clock()))
    }

    init(
        box: SnapshotBox, settings: GroupSettings, source: CheckSource, logger: Logger, clock: @escaping @Sendable () -> Double,
        transitions: TransitionRecorder, load: @escaping @Sendable (LoadRequest) -> LoadOutcome
    ) {
        self.box = box
        self.logger = logger
        self.clock = clock
        self.transitions = transitions
        self.load = load
        nodeName = settings.nodeName
        loop = loopGroup.next()
        gate = LoopGate(loop)
        started = clock()
        keyClock = UInt32(clamping: Int64(clock()))
        let s = box.load()
        let wall = Expiry.millis(clock())
        let listen = settings.cluster == nil ? nil : (settings.listen ?? settings.cluster?.peers[settings.nodeName].flatMap(GossipAddress.init))
        let group = GroupCore(
            name: settings.nodeName, boot: wall, cluster: settings.cluster, address: listen?.description,
            incarnation: UInt64(clock()), seed: UInt64.random(in: 1...UInt64.max), forgetAfter: settings.forgetAfter,
            now: GroupTime(monotonic: Double(NIODeadline.now().uptimeNanoseconds) / 1e9, wallMillis: wall))
        core = ControlCore(group: group, healthVersion: s.pools.health.version)
        let loop = self.loop
        transport = listen.map {
            GossipTransport(nodeName: settings.nodeName, listen: $0, keys: settings.keys, pushPullTimeout: settings.pushPullTimeout, loop: loop, logger: logger)
        }
        transport?.trust(peers: settings.cluster?.peers ?? [:])
        configGauge.record(s.configGeneration)
        healthGauge.record(s.pools.health.version)
        reloadTime.record(started)
        reloadGood.record(1)
        transitions.observe(s)
        executor = ProbeExecutor(logger: logger, loop: loop, source: source) { [weak self] event in self?.probed(event) }
    }

    /// This life's boot id.
    var boot: UInt64 { core.group.boot }
    /// The gossip address, or nil for a lone instance.
    var gossipAddress: GossipAddress? { transport?.listen }

    // MARK: Start and stop

    /// Starts the core with the configuration's checked members and
    /// this instance's state-file overrides; `registers` hears of every published view's
    /// override registers (off the loop); then binds the gossip sockets.
    func start(
        targets: [MonitorTarget], digest: UInt64, overrides: [AdminOverride]?, registers: @escaping @Sendable ([String: Ledger.OverrideEntry]) -> Void
    ) async throws {
        let handlers = GossipHandlers(
            received: { [weak self] packet, sender, from in self?.received(packet, sender: sender, from: from) },
            exchanged: { [weak self] peer, address, reply, sender in self?.exchanged(peer: peer, address: address, reply: reply, sender: sender) },
            serve: { [weak self] request, sender, origin in self?.serve(request: request, sender: sender, origin: origin) })
        try await loop.submit { [self] in
            registersChanged = registers
            transport?.attach(handlers)
            if let overrides { run(core.recordOverrides(overrides, now: now)) }
            run(core.start(targets: targets, digest: digest, now: now))
            tasks.append(loop.scheduleRepeatedTask(initialDelay: .milliseconds(20), delay: .milliseconds(20)) { [weak self] _ in self?.tick() })
            tasks.append(loop.scheduleRepeatedTask(initialDelay: .zero, delay: .seconds(1)) { [weak self] _ in
                guard let self else { return }
                latencyNetworks.record(core.latency.prefixCount)
                latencyEntries.record(core.group.ledger.latencyCount)
            })
            if let transport {
                lastReport = (transport.stats, now.monotonic)
                tasks.append(loop.scheduleRepeatedTask(initialDelay: .seconds(30), delay: .seconds(30)) { [weak self] _ in self?.report() })
                tasks.append(loop.scheduleRepeatedTask(initialDelay: .zero, delay: .seconds(1)) { [weak self] _ in self?.recordPeers() })
            }
        }.get()
        // Bound only once the core has started: its new life is in the ledger before any peer
        // can exchange with it, so no peer ever sees it alive with its previous life's results.
        try await transport?.start()
    }

    /// Cold start: an exchange with every configured peer, waiting until each answered or
    /// failed, or `timeout` passed. Returns how many answered.
    func join(timeout: Double) async -> Int {
        guard transport != nil else { return 0 }
        let futures: [EventLoopFuture<Bool>] = (try? await loop.submit { [self] () -> [EventLoopFuture<Bool>] in
            exchanges = []
            run(core.join(now: now))
            defer { exchanges = [] }
            return exchanges
        }.get()) ?? []
        let done = loop.makePromise(of: [Result<Bool, any Error>].self)
        EventLoopFuture.whenAllComplete(futures, on: loop).cascade(to: done)
        let deadline = loop.scheduleTask(in: .milliseconds(Int64(timeout * 1000))) { done.succeed([]) }
        let results = (try? await done.futureResult.get()) ?? []
        deadline.cancel()
        return results.filter { (try? $0.get()) == true }.count
    }

    /// Completes when every check and agent of this instance's share has a first result, or
    /// after `timeout`; returns the share's size.
    func firstRound(timeout: Double) async -> Int {
        let f: EventLoopFuture<Void>? = try? await loop.submit { [self] in
            let p = loop.makePromise(of: Void.self)
            if core.allObserved { p.succeed() } else {
                firstRoundWaiters.append(p)
                loop.scheduleTask(in: .milliseconds(Int64(timeout * 1000))) { p.succeed() }
            }
            return p.futureResult
        }.get()
        try? await f?.get()
        return (try? await loop.submit { self.core.share.count }.get()) ?? 0
    }

    /// Publishes the merged view before returning (start-up: before the first answer).
    func publishNow() async {
        try? await loop.submit { [self] in run(core.publishNow(now: now)) }.get()
    }

    /// Leaves the group, stops the checks and the clock; reload requests still waiting are
    /// answered.
    func shutdown() async {
        let stats = try? await executor?.currentStats().get()
        try? await loop.submit { [self] in
            stopped = true
            for t in tasks { t.cancel() }
            tasks = []
            let w = waiting
            waiting = []
            for reply in w { reply([Diagnostic(file: "-", line: 0, "the server is shutting down")]) }
            if transport != nil { carryOut(core.leave(now: now)) }
            if let stats, !core.targets.isEmpty {
                let seconds = max(clock() - started, 1)
                logger.info("health checks: \(stats.checksRun) run in \(Int(seconds)) s (\(Int(Double(stats.checksRun) / seconds))/s), \(stats.missedDeadlines) missed deadlines, \(inconclusive) inconclusive (monitor stalled or short of resources), \(transitionCount) transitions")
            }
        }.get()
        await transport?.shutdown()
        await executor?.shutdown()
        gate.close()
        executor = nil
        try? await loopGroup.shutdownGracefully()
    }

    // MARK: Events from other threads

    /// Drains the answer path's passive latency records once a second: each is a sample from
    /// the connection's network to this instance's `site`.
    func measureLatency(_ taps: LatencyTaps, site: String, prober: LatencyProber?, probeRate: Double, probeInterval: Double) {
        loop.execute { [self] in
            var plan = LatencyProbePlan.Settings()
            plan.perSecond = probeRate
            plan.every = probeInterval
            core.probe(with: plan)
            tasks.append(loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [weak self] _ in
                self?.drainLatency(taps, site: site, prober: prober)
            })
        }
        if taps.tcp { logger.info("latency: measuring DNS-over-TCP round trips to site \(site) (--latency-passive on)") }
        if prober != nil { logger.info("latency: probing the busiest resolvers that query this instance (--latency-probes on)") }
    }

    /// On the loop, once a second: the taps' records into the book, then the probes due.
    private func drainLatency(_ taps: LatencyTaps, site: String, prober: LatencyProber?) {
        let drained = taps.drain()
        passiveSamples.increment(by: Int64(drained.rtts.count))
        if !drained.rtts.isEmpty {
            core.measured(drained.rtts.map { LatencySample(prefix: LatencyPrefix($0.0), site: site, rttMs: Double($0.1) / 1000) }, now: now)
        }
        let peers = drained.rtts.map { (LatencyPrefix($0.0), $0.0) }
        core.sighted(peers, per: 0, now: now)
        core.sighted(drained.sightings.map { (LatencyPrefix($0), $0) }, per: Double(LatencyTaps.sightEvery), now: now)
        guard let prober else { return }
        let targets = core.probeTargets(now: now)
        guard !targets.isEmpty else { return }
        prober.probe(targets).hop(to: loop).whenSuccess { [self] results in
            for r in results { probesSent[r.method]?.increment() }
            let answered = results.contains { $0.rttMs != nil }
            if !answered, !probesUnansweredLogged {
                probesUnansweredLogged = true
                logger.notice("latency: \(results.count) probes, none answered on port 53 by DNS or TCP (filtered, or the check source cannot reach them); counted in meridian_latency_probes_total{result=\"none\"}")
            } else if answered, probesUnansweredLogged {
                probesUnansweredLogged = false
                logger.notice("latency: probes are answered again")
            }
            let samples = results.compactMap { r in r.rttMs.map { LatencySample(prefix: r.prefix, site: site, rttMs: $0) } }
            probeSamples.increment(by: Int64(samples.count))
            core.measured(samples, now: now)
        }
    }

    /// Latency measurements for the book (they reach the group at its next publication).
    func measured(_ samples: [LatencySample]) {
        guard !samples.isEmpty else { return }
        apiSamples.increment(by: Int64(samples.count))
        gate.execute { [self] in core.measured(samples, now: now) }
    }

    /// This instance's admin state file, as registers for the whole group.
    func recordOverrides(_ overrides: [AdminOverride]) {
        gate.execute { [self] in run(core.recordOverrides(overrides, now: now)) }
    }

    /// Removes the group's override for `pattern`, whichever instance set it.
    func removeOverride(pattern: String) async -> Bool {
        (try? await loop.submit { [self] in
            let (removed, d) = core.removeOverride(pattern: pattern, now: now)
            run(d)
            return removed
        }.get()) ?? false
    }

    /// Every peer this instance knows (not itself), sorted by name.
    func peerList() async -> [Peer] { (try? await loop.submit { self.core.group.peers }.get()) ?? [] }

    /// How the last reload ended, nil before the first.
    func lastReloadInfo() async -> ServerStatus.ReloadInfo? { (try? await loop.submit { self.lastReload }.get()) ?? nil }

    /// Loads the configuration again (off every loop) and publishes it if every file is valid;
    /// `reply` gets the diagnostics. Requests made while a load runs are served by one more
    /// load after it, so a burst of them costs two loads, not one each.
    func requestReload(zones: [String]? = nil, _ reply: (@Sendable ([Diagnostic]) -> Void)? = nil) {
        let accepted = gate.submit { [self] in
            guard !stopped else {
                reply?([Diagnostic(file: "-", line: 0, "the server is shutting down")])
                return
            }
            if let reply { waiting.append(reply) }
            pending = Self.merge(pending, zones)
            if !reloading { startLoad() }
        }
        if !accepted { reply?([Diagnostic(file: "-", line: 0, "the server is shutting down")]) }
    }

    /// Two requests as one load: the whole directory if either asks for it, else both zone lists.
    static func merge(_ pending: [String]??, _ zones: [String]?) -> [String]?? {
        guard let pending else { return .some(zones) }
        guard let held = pending, let zones else { return .some(nil) }
        return .some(held + zones.filter { !held.contains($0) })
    }

    /// The same, awaited.
    func reload(zones: [String]? = nil) async -> [Diagnostic] {
        await withCheckedContinuation { c in requestReload(zones: zones) { c.resume(returning: $0) } }
    }

    // MARK: On `loop`

    private func probed(_ event: ProbeEvent) {
        guard !stopped else { return }
        switch event {
        case let .checkDone(epoch, member, check, result, elapsed):
            run(core.checkDone(epoch: epoch, member: member, check: check, result: result, elapsed: elapsed, now: now))
        case let .agentReplied(epoch, member, reply): run(core.agentReplied(epoch: epoch, member: member, reply, now: now))
        case let .agentFailed(epoch, member, message): run(core.agentFailed(epoch: epoch, member: member, message, now: now))
        }
        if !firstRoundWaiters.isEmpty, core.allObserved {
            let w = firstRoundWaiters
            firstRoundWaiters = []
            for p in w { p.succeed() }
        }
    }

    private func received(_ packet: Packet, sender: String, from: String) {
        guard !stopped else { return }
        run(core.received(packet, sender: sender, from: from, now: now))
    }

    private func exchanged(peer: String, address: String, reply: FullState?, sender: String?) {
        guard !stopped else { return }
        run(core.exchanged(peer: peer, address: address, reply: reply, sender: sender, now: now))
    }

    private func serve(request: FullState?, sender: String, origin: String) -> FullState? {
        guard !stopped else { return nil }
        let (reply, d) = core.serve(request: request, sender: sender, origin: origin, now: now)
        run(d)
        return reply
    }

    /// The 20 ms clock: the core's timers and expiry, and once a second the keys' timing.
    private func tick() {
        guard !stopped else { return }
        run(core.tick(now: now))
        let second = UInt32(clamping: Int64(clock()))
        guard second != keyClock else { return }
        let then = keyClock
        keyClock = second
        let current = box.load()
        guard current.keyStateChanged(since: then, now: second) else { return }
        let next = current.resigned(at: second, generation: current.generation + 1)
        write(next)
        let tags = next.signers.compactMap { $0 }.map { "\(Name.text($0.apex)) signing with \($0.dataSigners.map(\.tag)), DNSKEY \($0.dnskeys.map(KeyTag.of))" }
        logger.info("key timing changed: \(tags.joined(separator: "; "))")
    }

    /// Carries out directives, then arms the one coalescing timer if the core waits for a flush.
    private func run(_ directives: [ControlDirective]) {
        carryOut(directives)
        guard core.needsFlush, !flushPending, !stopped else { return }
        // One publication for a burst of changes: 20 ms after the first.
        flushPending = true
        loop.scheduleTask(in: .milliseconds(20)) { [self] in
            flushPending = false
            guard !stopped else { return }
            run(core.flush(now: now))
        }
    }

    private func carryOut(_ directives: [ControlDirective]) {
        for d in directives {
            switch d {
            case let .send(p, to): transport?.send(p, to: to)
            case let .exchange(peer, address, request):
                if let transport { exchanges.append(transport.exchange(peer: peer, address: address, request: request)) }
            case let .probe(targets, epoch): executor?.run(targets, epoch: epoch)
            case let .publish(health, registers): publish(health, registers: registers)
            case .log(let line):
                switch line.level {
                case .info: logger.info("\(line.message)")
                case .notice: logger.notice("\(line.message)")
                case .warning: logger.warning("\(line.message)")
                }
            case .count(let c): count(c)
            case let .dropped(reason, from, detail): transport?.drop(reason, from: from, detail: detail)
            case .forgot(let peer): transport?.forget(peer)
            case .live(let n): membersGauge.record(n)
            }
        }
    }

    private func count(_ c: ControlCount) {
        switch c {
        case .wentDown:
            transitionCount += 1
            downCounter.increment()
        case .wentUp:
            transitionCount += 1
            upCounter.increment()
        case .late:
            inconclusive += 1
        case .localShortage(let reason):
            // This host ran short (descriptors, buffers, ports): the member is not to blame.
            inconclusive += 1
            localShortageCounter.increment()
            if !loggedShortage {
                loggedShortage = true
                logger.error("health checks failing for lack of local resources (\(reason)): not counted against members; raise RLIMIT_NOFILE or lower the check load (logged once)")
            }
        }
    }

    private func publish(_ health: HealthSnapshot, registers: [String: Ledger.OverrideEntry]) {
        let current = box.load()
        write(current.with(pools: current.pools.with(health: health), generation: current.generation + 1))
        // Off the loop: the handler may edit the state file.
        if let handler = registersChanged { stateFileQueue.async { handler(registers) } }
    }

    private func startLoad() {
        reloading = true
        let zones = pending ?? nil
        pending = nil
        let replies = waiting
        waiting = []
        let request = LoadRequest(zones: zones, current: box.load())
        loader.async { [self, load] in
            let outcome = load(request)
            let accepted = gate.submit { [self] in finish(outcome, replies: replies) }
            if !accepted { for reply in replies { reply(outcome.diagnostics) } }
        }
    }

    private func finish(_ outcome: LoadOutcome, replies: [@Sendable ([Diagnostic]) -> Void]) {
        reloading = false
        if stopped {
            for reply in replies { reply(outcome.diagnostics) }
            return
        }
        if let next = outcome.snapshot {
            let current = box.load()
            let health = core.fold(now: now) ?? current.pools.health
            let published = next.with(pools: next.pools.with(health: health), generation: current.generation + 1, configGeneration: current.configGeneration + 1)
            write(published)
            reloadsOK.increment()
            lastReload = ServerStatus.ReloadInfo(ok: true, at: clock(), diagnostics: Array(outcome.diagnostics.prefix(20).map(\.description)))
            reloadTime.record(clock())
            reloadGood.record(1)
            if let zones = outcome.zones {
                logger.info("reloaded zone(s) \(zones.joined(separator: ", ")): \(published.zones.recordCount) records in all (configuration generation \(published.configGeneration))")
                return finishReplies(outcome, replies)
            }
            let targets = MonitorTarget.targets(for: published.pools.pools)
            run(core.configure(targets: targets, digest: DNSServer.digest(published.pools.pools, targets), cluster: outcome.cluster, now: now))
            if let cluster = outcome.cluster { transport?.trust(peers: cluster.peers) }
            logger.info("reloaded \(published.zones.zones.count) zones, \(published.zones.recordCount) records, \(published.pools.runtimes.count) pools (configuration generation \(published.configGeneration))")
        } else {
            reloadsFailed.increment()
            reloadGood.record(0)
            let errors = outcome.diagnostics.filter { $0.severity == .error }
            lastReload = ServerStatus.ReloadInfo(ok: false, at: clock(), diagnostics: Array(errors.prefix(20).map(\.description)))
            logger.error("reload failed with \(outcome.diagnostics.filter { $0.severity == .error }.count) errors, keeping the current configuration")
        }
        finishReplies(outcome, replies)
    }

    private func finishReplies(_ outcome: LoadOutcome, _ replies: [@Sendable ([Diagnostic]) -> Void]) {
        for reply in replies { reply(outcome.diagnostics) }
        if pending != nil || !waiting.isEmpty { startLoad() }
    }

    /// A line every 30 s: what gossip cost since the last one (for operators without a
    /// metrics scraper, and the benchmark).
    private func report() {
        guard let transport, let last = lastReport else { return }
        let stats = transport.stats
        let t = now.monotonic
        let secs = max(t - last.at, 0.001)
        let out = stats.bytesOut - last.stats.bytesOut
        let inn = stats.bytesIn - last.stats.bytesIn
        logger.info("gossip: \(Int(secs)) s: \(stats.packetsOut - last.stats.packetsOut) packets and \(stats.pushPulls - last.stats.pushPulls) push-pulls, \(out) octets out (\(Int(Double(out) / secs)) B/s), \(inn) in (\(Int(Double(inn) / secs)) B/s), \(core.group.live.count) live, \(core.group.ledger.entryCount) entries, updates sent: \(stats.updatesOut.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value - (last.stats.updatesOut[$0.key] ?? 0))" }.joined(separator: " "))")
        lastReport = (stats, t)
    }

    /// The peer gauges, once a second: peers by state, and live peers whose pool
    /// configuration differs from this instance's (a digest of 0 is not known yet).
    private func recordPeers() {
        let peers = core.group.peers
        for state in [PeerState.alive, .suspect, .dead, .left] {
            peerGauges[state.rawValue]?.record(peers.filter { $0.state == state }.count)
        }
        let mine = core.group.digest
        differentGauge.record(peers.filter { $0.state.isLive && $0.digest != 0 && $0.digest != mine }.count)
    }

    private func write(_ snapshot: Snapshot) {
        box.publish(snapshot)
        transitions.observe(snapshot)
        configGauge.record(snapshot.configGeneration)
        healthGauge.record(snapshot.pools.health.version)
    }
}
