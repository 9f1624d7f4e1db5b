import Atomics
import Health
import DNSSEC
import DNSWire
import Diagnostics
import Dispatch
import Foundation
import HealthCheck
import Logging
import Metrics
import Peers
import QueryEngine

/// What a configuration load produced: a snapshot to publish (nil when a file was bad), the
/// cluster file, and every diagnostic.
struct LoadOutcome: Sendable {
    var snapshot: Snapshot?
    var cluster: ClusterConfig?
    var diagnostics: [Diagnostic]
}

/// The only writer of the snapshot box. Everything that changes what the answer path reads
/// arrives here as an event on one serial queue, off every event loop: a health view from the
/// group, a configuration loaded (or rejected), a key's timing passing, an override expiring.
/// Loading is done by the `loader` queue, so a reload of any size never delays a health
/// publication, gossip, an answer, the admin API or shutdown; and no lock is shared with an
/// event loop (the group's loop hands views over with one `async`).
final class Supervisor: @unchecked Sendable {
    // @unchecked: every `var` below is read and written only on `queue`; the rest is
    // immutable or thread-safe (the box, atomics, loggers, metrics).
    let box: SnapshotBox
    let queue = DispatchQueue(label: "meridian.supervisor")
    private let loader = DispatchQueue(label: "meridian.loader")
    /// Where the registers handler runs (it may edit the state file), in order.
    private let stateFileQueue = DispatchQueue(label: "meridian.state-file")
    private let logger: Logger
    private let clock: @Sendable () -> Double
    /// The slow part of a reload (files, zones, keys), run on `loader` with the health in force.
    private let load: @Sendable (HealthSnapshot) -> LoadOutcome
    /// After a configuration was published (on `queue`): hand the new members to the monitor and the group.
    private let loaded: @Sendable (Snapshot, ClusterConfig?) -> Void
    /// After a health view was published: the registers, for the state-file adoption (off `queue`).
    private var registersChanged: (@Sendable ([String: Ledger.OverrideEntry]) -> Void)?
    private let transitions: TransitionRecorder

    private var inputs: HealthInputs?
    private var nextExpiry: UInt64?
    private var reloading = false
    private var again = false
    private var waiting: [@Sendable ([Diagnostic]) -> Void] = []
    private var keyClock: UInt32
    private var timer: (any DispatchSourceTimer)?
    private var stopped = false
    /// Views handed in; a view is published only if no newer one is queued behind it.
    private let viewSeq = ManagedAtomic<Int>(0)

    private let reloadsOK = Counter(label: "meridian_reloads_total", dimensions: [("result", "ok")])
    private let reloadsFailed = Counter(label: "meridian_reloads_total", dimensions: [("result", "failed")])
    private let configGauge = Gauge(label: "meridian_config_generation")
    private let healthGauge = Gauge(label: "meridian_health_generation")

    init(
        box: SnapshotBox, logger: Logger, clock: @escaping @Sendable () -> Double, transitions: TransitionRecorder,
        load: @escaping @Sendable (HealthSnapshot) -> LoadOutcome, loaded: @escaping @Sendable (Snapshot, ClusterConfig?) -> Void
    ) {
        self.box = box
        self.logger = logger
        self.clock = clock
        self.transitions = transitions
        self.load = load
        self.loaded = loaded
        keyClock = UInt32(clamping: Int64(clock()))
        let s = box.load()
        configGauge.record(s.configGeneration)
        healthGauge.record(s.pools.health.version)
        transitions.observe(s)
    }

    /// Starts the clock: key timing and override expiry, checked every `interval` milliseconds;
    /// `registers` hears of every published view's override registers (off the queue).
    func start(intervalMillis: Int = 250, registers: @escaping @Sendable ([String: Ledger.OverrideEntry]) -> Void) {
        queue.async { [self] in
            registersChanged = registers
            let t = DispatchSource.makeTimerSource(queue: queue)
            t.schedule(deadline: .now() + .milliseconds(intervalMillis), repeating: .milliseconds(intervalMillis))
            t.setEventHandler { [self] in tick() }
            t.resume()
            timer = t
        }
    }

    /// Stops the clock; reload requests still waiting are answered.
    func stop() {
        queue.sync {
            stopped = true
            timer?.cancel()
            timer = nil
            let w = waiting
            waiting = []
            for reply in w { reply([Diagnostic(file: "-", line: 0, "the server is shutting down")]) }
        }
    }

    // MARK: Events

    /// A new group view (from the group's event loop): folded and published.
    func publish(_ view: HealthInputs) {
        let n = viewSeq.wrappingIncrementThenLoad(ordering: .relaxed)
        queue.async { [self] in
            guard n == viewSeq.load(ordering: .relaxed), !stopped else { return }
            inputs = view
            publishHealth()
        }
    }

    /// Publishes a view before returning (start-up: the first merged view before the first answer).
    func publishNow(_ view: HealthInputs) async {
        viewSeq.wrappingIncrement(ordering: .relaxed)
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            queue.async { [self] in
                inputs = view
                publishHealth()
                c.resume()
            }
        }
    }

    /// Loads the configuration again (off every loop) and publishes it if every file is valid;
    /// `reply` gets the diagnostics. Requests made while a load runs are served by one more
    /// load after it, so a burst of them costs two loads, not one each.
    func requestReload(_ reply: (@Sendable ([Diagnostic]) -> Void)? = nil) {
        queue.async { [self] in
            guard !stopped else {
                reply?([Diagnostic(file: "-", line: 0, "the server is shutting down")])
                return
            }
            if let reply { waiting.append(reply) }
            if reloading {
                again = true
            } else {
                startLoad()
            }
        }
    }

    /// The same, awaited.
    func reload() async -> [Diagnostic] {
        await withCheckedContinuation { c in requestReload { c.resume(returning: $0) } }
    }

    // MARK: On `queue`

    private func startLoad() {
        reloading = true
        again = false
        let replies = waiting
        waiting = []
        let health = box.load().pools.health
        loader.async { [self, load] in
            let outcome = load(health)
            queue.async { [self] in finish(outcome, replies: replies) }
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
            let health = inputs.map { HealthFold.snapshot($0, nowMillis: Expiry.millis(clock()), version: current.pools.health.version + 1) }
                ?? current.pools.health
            let published = next.with(pools: next.pools.with(health: health), generation: current.generation + 1, configGeneration: current.configGeneration + 1)
            write(published)
            reloadsOK.increment()
            loaded(published, outcome.cluster)
            logger.info("reloaded \(published.zones.zones.count) zones, \(published.zones.recordCount) records, \(published.pools.runtimes.count) pools (configuration generation \(published.configGeneration))")
        } else {
            reloadsFailed.increment()
            logger.error("reload failed with \(outcome.diagnostics.filter { $0.severity == .error }.count) errors, keeping the current configuration")
        }
        for reply in replies { reply(outcome.diagnostics) }
        if again || !waiting.isEmpty { startLoad() }
    }

    private func publishHealth() {
        guard let inputs else { return }
        let now = Expiry.millis(clock())
        let current = box.load()
        let health = HealthFold.snapshot(inputs, nowMillis: now, version: current.pools.health.version + 1)
        nextExpiry = HealthFold.nextExpiry(inputs.registers, nowMillis: now)
        write(current.with(pools: current.pools.with(health: health), generation: current.generation + 1))
        // Off the queue: the handler may edit the state file.
        if let handler = registersChanged {
            let registers = inputs.registers
            stateFileQueue.async { handler(registers) }
        }
    }

    private func tick() {
        guard !stopped else { return }
        if let e = nextExpiry, Expiry.millis(clock()) >= e { publishHealth() }
        let now = UInt32(clamping: Int64(clock()))
        guard now != keyClock else { return }
        let then = keyClock
        keyClock = now
        let current = box.load()
        guard current.keyStateChanged(since: then, now: now) else { return }
        let next = current.resigned(at: now, generation: current.generation + 1)
        write(next)
        let tags = next.signers.compactMap { $0 }.map { "\(Name.text($0.apex)) signing with \($0.dataSigners.map(\.tag)), DNSKEY \($0.dnskeys.map(KeyTag.of))" }
        logger.info("key timing changed: \(tags.joined(separator: "; "))")
    }

    private func write(_ snapshot: Snapshot) {
        box.publish(snapshot)
        transitions.observe(snapshot)
        configGauge.record(snapshot.configGeneration)
        healthGauge.record(snapshot.pools.health.version)
    }
}

/// Every checked member of the configuration and the ones this instance probes: changed only
/// on the supervisor's queue, read anywhere (an immutable value behind an atomic reference).
final class TargetBook: Sendable {
    final class Value: AtomicReference, Sendable {
        let all: [MonitorTarget]
        /// nil until the group has said (every member is probed here until then).
        let mine: Set<String>?
        init(all: [MonitorTarget], mine: Set<String>?) {
            self.all = all
            self.mine = mine
        }
        var share: [MonitorTarget] { mine.map { m in all.filter { m.contains($0.memberID) } } ?? all }
    }

    private let value: ManagedAtomic<Value>

    init(all: [MonitorTarget]) { value = ManagedAtomic(Value(all: all, mine: nil)) }

    var all: [MonitorTarget] { value.load(ordering: .acquiring).all }
    var mineCount: Int { value.load(ordering: .acquiring).share.count }

    /// The group's new assignment; returns this instance's share.
    func assign(_ mine: Set<String>) -> [MonitorTarget] {
        let v = Value(all: value.load(ordering: .acquiring).all, mine: mine)
        value.store(v, ordering: .releasing)
        return v.share
    }

    /// A new configuration's members; returns this instance's share of them.
    func replace(_ all: [MonitorTarget]) -> [MonitorTarget] {
        let v = Value(all: all, mine: value.load(ordering: .acquiring).mine)
        value.store(v, ordering: .releasing)
        return v.share
    }
}
