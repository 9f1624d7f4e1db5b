import Health
import Foundation
import GeoTopology
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PoolConfig

/// One member to watch: where to check it and how.
public struct MonitorTarget: Sendable, Equatable {
    public var memberID: String
    public var address: IPAddress
    public var checks: [CheckSpec]
    public var agent: AgentSpec?

    public init(memberID: String, address: IPAddress, checks: [CheckSpec], agent: AgentSpec?) {
        self.memberID = memberID
        self.address = address
        self.checks = checks
        self.agent = agent
    }

    /// Every checked or agent-watched member of a pool set.
    public static func targets(for pools: PoolSet) -> [MonitorTarget] {
        pools.pools.flatMap { pool in
            pool.members.compactMap { m -> MonitorTarget? in
                guard (!pool.checks.isEmpty || pool.agent != nil), let a = m.checkAddress else { return nil }
                return MonitorTarget(memberID: m.id, address: a, checks: pool.checks, agent: pool.agent)
            }
        }
    }
}

/// Where the monitor reads wall time: observation times and the age of agent replies
/// (`max_age`). Injectable, so staleness is tested without waiting; the check schedule itself
/// runs on the event loop's timers.
public struct MonitorClock: Sendable {
    public var wall: @Sendable () -> Double

    public init(wall: @escaping @Sendable () -> Double) { self.wall = wall }

    public static let system = MonitorClock { Date().timeIntervalSince1970 }
}

/// Counters of the engine's own work, for benchmarks and the logs.
public struct MonitorStats: Sendable {
    public var checksRun: Int
    public var missedDeadlines: Int
    public var transitions: Int
    /// Results not counted against the member: timeouts while the monitor itself was stalled,
    /// and failures from a local resource shortage.
    public var inconclusive: Int
    /// Of those, failures for a shortage of this host's resources (EMFILE, ENOBUFS, ...).
    public var localShortages: Int = 0
    /// Exec checks that had to wait because `maxExec` were running.
    public var execWaits: Int = 0
}

/// Runs every health check and feedback-agent poll from one event loop: TCP, DNS and agent
/// probes are SwiftNIO channels, HTTP(S) goes through one libcurl multi thread, exec checks
/// are spawned processes; no thread per check. Each (member, check) runs on its own schedule,
/// spread over the interval by jitter; results pass through the rise/fall machine; changes
/// are published (coalesced) as observations for the health snapshot.
public final class HealthMonitor: @unchecked Sendable {
    // @unchecked: every mutable property below is read and written only on `loop` (all entry
    // points hop there with `loop.execute`); the rest is immutable or thread-safe itself
    // (CurlRunner, DispatchQueue, Logger).
    let group: MultiThreadedEventLoopGroup
    let loop: any EventLoop
    let curl: CurlRunner
    /// TCP connect checks on their own epoll thread; nil if it could not start (every TCP check
    /// then fails with the reason, and the log says so once).
    let tcpEngine: TCPCheckEngine?
    /// HTTP(S) checks started in the current wake-up, handed to `curl` together at its end.
    private var httpBatch: [(HTTPCheckRequest, CurlRunner.Completion)] = []
    let execQueue = DispatchQueue(label: "meridian.exec-checks", attributes: .concurrent)
    /// Every hop onto `loop` from another thread (curl, exec, callers) goes through here, and
    /// stops before the loop shuts down: a late completion is dropped, never scheduled on a
    /// dead loop.
    let gate: LoopGate
    /// The most exec checks running at once; more wait here in order (issue: hardening,
    /// finding 3: hung targets must not make the checks behind them look stalled).
    let maxExec: Int
    private var execRunning = 0
    private var execWaiting = CircularBuffer<(argv: [String], timeout: Double, done: @Sendable (ProbeResult) -> Void)>()
    private var execSaturatedLogged = false
    private let execWaitCounter = Counter(label: "meridian_health_exec_waits_total")
    let observer: String
    /// Where checks leave from.
    public let source: CheckSource
    let logger: Logger
    let publish: @Sendable ([String: MemberObservations]) -> Void
    /// How often observations are handed over at most.
    let coalesce: TimeAmount

    /// What a check's probe needs, worked out once per configuration rather than per check
    /// (the policy side of the check is in `book`).
    struct CheckProbe {
        let regex: NSRegularExpression?
        let prepared: PreparedProbe
    }

    /// A check's target in the form its probe uses.
    enum PreparedProbe {
        case tcp(IPAddress, Int)
        case dns(SocketAddress)
        case http(HTTPCheckRequest)
        case exec([String])
        case invalid(String)

        init(_ spec: CheckSpec, address: IPAddress, source: CheckSource) {
            switch spec.kind {
            case .tcp:
                self = .tcp(address, spec.port)
            case .dns:
                do { self = .dns(try socketAddress(address, spec.port)) } catch { self = .invalid("bad address: \(error)") }
            case .exec:
                self = .exec(spec.command.map {
                    $0.replacingOccurrences(of: "{address}", with: address.description).replacingOccurrences(of: "{port}", with: String(spec.port))
                })
            case .http, .https:
                let literal = address.family == .v6 ? "[\(address)]" : address.description
                let urlHost = spec.sni ?? spec.host ?? literal
                let resolve = urlHost == literal ? nil : "\(urlHost):\(spec.port):\(literal)"
                self = .http(HTTPCheckRequest(
                    url: "\(spec.kind.rawValue)://\(urlHost):\(spec.port)\(spec.path)", resolve: resolve,
                    hostHeader: spec.host.flatMap { $0 == urlHost ? nil : $0 }, method: spec.method, timeout: spec.timeout,
                    verifyTLS: spec.verifyTLS, clientCert: spec.clientCert, clientKey: spec.clientKey, keepAlive: spec.keepAlive,
                    source: source.address(for: address.family)?.description))
            }
        }
    }

    /// The policy: rise/fall, reasons, agent replies and their age, the observations.
    private var book: MonitorBook
    /// Per member and check (as `book.members`), how to probe it; per member, its agent's address.
    private var probes: [[CheckProbe]] = []
    private var agentTargets: [SocketAddress?] = []
    /// When each check and agent poll runs next, and the one timer armed for the first of them.
    private var due = DueQueue()
    private var armed: (at: UInt64, task: Scheduled<Void>)?
    /// Entries due within this much of a wake-up run in it, so checks spread over the interval
    /// share timer wake-ups (at most about 1/grain of them a second).
    private let grain: UInt64 = 2_000_000
    private var random = JitterRandom(seed: UInt64.random(in: 1...UInt64.max))
    /// TCP checks started in the current wake-up, handed to `tcpEngine` together at its end.
    private var tcpBatch: [(IPAddress, Int, Double, TCPCheckEngine.Completion)] = []
    private var generation = 0
    private var dirty = false
    private var publishPending = false
    private var stats = MonitorStats(checksRun: 0, missedDeadlines: 0, transitions: 0, inconclusive: 0)
    private var firstRoundWaiters: [EventLoopPromise<Void>] = []
    private var stopped = false
    private let clock: MonitorClock
    private let started: Double
    /// Counters by (check type, result) and by transition, made once: creating a metric per
    /// result would cost more than the check.
    private let checkCounters: [CheckKind: (ok: Counter, fail: Counter)] = Dictionary(uniqueKeysWithValues: CheckKind.allCases.map { kind in
        (kind, (Counter(label: "meridian_health_checks_total", dimensions: [("type", kind.rawValue), ("result", "ok")]),
                Counter(label: "meridian_health_checks_total", dimensions: [("type", kind.rawValue), ("result", "fail")])))
    })
    private let downCounter = Counter(label: "meridian_health_transitions_total", dimensions: [("to", "down")])
    private let localShortageCounter = Counter(label: "meridian_health_local_shortages_total")
    private var loggedShortage = false
    private let upCounter = Counter(label: "meridian_health_transitions_total", dimensions: [("to", "up")])

    /// Check duration from when the check started running, per type (a Prometheus histogram).
    private let checkTimers: [CheckKind: Metrics.Timer] = Dictionary(uniqueKeysWithValues: CheckKind.allCases.map {
        ($0, Metrics.Timer(label: "meridian_health_check_duration_seconds", dimensions: [("type", $0.rawValue)]))
    })

    private func countCheck(_ kind: CheckKind, ok: Bool, seconds: Double) {
        guard let c = checkCounters[kind] else { return }
        (ok ? c.ok : c.fail).increment()
        checkTimers[kind]?.recordNanoseconds(Int64(max(0, min(seconds, 3600)) * 1e9))
    }

    public init(
        observer: String, logger: Logger, coalesce: TimeAmount = .milliseconds(50), clock: MonitorClock = .system, maxExec: Int = 16,
        source: CheckSource = CheckSource(), publish: @escaping @Sendable ([String: MemberObservations]) -> Void
    ) {
        self.source = source
        self.maxExec = max(1, maxExec)
        self.clock = clock
        started = clock.wall()
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        self.loop = loop
        // Completions of one pass of curl's loop come back to this loop in one hop.
        let gate = LoopGate(loop)
        self.gate = gate
        curl = CurlRunner { batch in gate.execute { for (done, result) in batch { done(result) } } }
        tcpEngine = TCPCheckEngine(source: source) { batch in gate.execute { for (done, result) in batch { done(result) } } }
        self.observer = observer
        book = MonitorBook(observer: observer)
        self.logger = logger
        self.coalesce = coalesce
        self.publish = publish
    }

    /// Starts (or restarts with new targets) the checks. State is kept for members and checks
    /// that did not change.
    public func update(targets: [MonitorTarget]) {
        gate.execute { self.apply(targets) }
    }

    /// Completes when every check and agent has a first result, or after `timeout`.
    public func firstRound(timeout: Double) -> EventLoopFuture<Void> {
        loop.submit {
            let p = self.loop.makePromise(of: Void.self)
            if self.allObserved() { p.succeed() } else {
                self.firstRoundWaiters.append(p)
                self.loop.scheduleTask(in: .milliseconds(Int64(timeout * 1000))) { p.succeed() }
            }
            return p.futureResult
        }.flatMap { $0 }
    }

    /// The current observations (including initial states for members not checked yet).
    public func observations() -> EventLoopFuture<[String: MemberObservations]> {
        loop.submit { self.snapshot() }
    }

    public func currentStats() -> EventLoopFuture<MonitorStats> { loop.submit { self.stats } }

    /// A monitor dropped without `shutdown()` (a start-up error) still ends its runners'
    /// threads, which hold the runners until they have.
    deinit {
        curl.stop()
        tcpEngine?.requestStop()
    }

    public func shutdown() async {
        let started = self.started
        try? await loop.submit {
            if !self.book.members.isEmpty {
                let seconds = self.clock.wall() - started
                self.logger.info("health checks: \(self.stats.checksRun) run in \(Int(seconds)) s (\(Int(Double(self.stats.checksRun) / max(seconds, 1)))/s), \(self.stats.missedDeadlines) missed deadlines, \(self.stats.inconclusive) inconclusive (monitor stalled), \(self.stats.transitions) transitions")
            }
            self.stopped = true
            self.due.removeAll()
            self.armed?.task.cancel()
            self.armed = nil
        }.get()
        curl.stop()
        tcpEngine?.stop()
        gate.close()
        try? await group.shutdownGracefully()
    }

    // MARK: - On the loop

    private func apply(_ targets: [MonitorTarget]) {
        generation += 1
        book.configure(targets, wallNow: clock.wall())
        probes = targets.map { t in
            t.checks.map { spec in
                CheckProbe(regex: spec.bodyRegex.flatMap { try? NSRegularExpression(pattern: $0) }, prepared: PreparedProbe(spec, address: t.address, source: source))
            }
        }
        agentTargets = targets.map { t in t.agent.flatMap { try? socketAddress(t.address, $0.port) } }
        due.removeAll()
        let now = NIODeadline.now().uptimeNanoseconds
        for i in book.members.indices {
            for j in book.members[i].checks.indices {
                // The first round runs within the first quarter second (or interval), spread out.
                let spread = min(book.members[i].checks[j].spec.interval, 0.25)
                due.insert(.init(at: now + UInt64(random.uniform(0, spread) * 1e9), member: Int32(i), check: Int32(j)))
            }
            if let spec = book.members[i].agent?.spec {
                due.insert(.init(at: now + UInt64(random.uniform(0, min(spec.interval, 0.25)) * 1e9), member: Int32(i), check: DueQueue.agent))
            }
        }
        arm()
        markDirty()
    }

    /// Keeps one timer armed for the first entry of `due`.
    private func arm() {
        guard !stopped, let first = due.first else { return }
        if let armed, armed.at <= first.at { return }
        armed?.task.cancel()
        let at = first.at
        armed = (at, loop.scheduleTask(deadline: NIODeadline.uptimeNanoseconds(at)) { [self] in
            armed = nil
            wake()
        })
    }

    /// Runs everything due now (within `grain`), then re-arms.
    private func wake() {
        guard !stopped else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        while let e = due.popDue(by: now + grain) {
            if e.check == DueQueue.agent {
                pollAgent(Int(e.member), due: e.at)
            } else {
                run(Int(e.member), Int(e.check), due: e.at)
            }
        }
        if !httpBatch.isEmpty {
            curl.submit(httpBatch)
            httpBatch.removeAll(keepingCapacity: true)
        }
        if !tcpBatch.isEmpty {
            tcpEngine?.submit(tcpBatch)
            tcpBatch.removeAll(keepingCapacity: true)
        }
        arm()
    }

    private func reschedule(_ i: Int, _ j: Int32, previous: UInt64, interval: Double) {
        let next = DueQueue.next(after: previous, interval: interval, now: NIODeadline.now().uptimeNanoseconds, random: &random)
        due.insert(.init(at: next, member: Int32(i), check: j))
        arm()
    }

    private func run(_ i: Int, _ j: Int, due dueAt: UInt64) {
        let gen = generation
        let spec = book.members[i].checks[j].spec
        let started = NIODeadline.now().uptimeNanoseconds
        if started > dueAt, started - dueAt > UInt64(max(0.05, spec.interval * 0.1) * 1e9) { stats.missedDeadlines += 1 }
        stats.checksRun += 1
        probe(spec, probes[i][j]) { [self] result in
            guard gen == generation, !stopped else { return }
            let began = max(started, result.startedAt ?? started)
            let elapsed = Double(NIODeadline.now().uptimeNanoseconds - began) / 1e9
            countCheck(spec.kind, ok: result.ok, seconds: elapsed)
            record(i, j, book.checkDone(member: i, check: j, result: result, elapsed: elapsed, wallNow: clock.wall()), result)
            reschedule(i, Int32(j), previous: dueAt, interval: spec.interval)
        }
    }

    /// Runs one probe; `done` is called on `loop`.
    private func probe(_ spec: CheckSpec, _ run: CheckProbe, _ done: @escaping @Sendable (ProbeResult) -> Void) {
        let loop = self.loop
        switch run.prepared {
        case .invalid(let reason):
            done(.failure(reason))
        case .tcp(let address, let port):
            if tcpEngine == nil { return done(.localFailure("the TCP check engine could not start (epoll or eventfd failed)")) }
            tcpBatch.append((address, port, spec.timeout, done))
        case .dns(let target):
            dnsProbe(group: loop, target: target, source: source.bindAddress(for: target), name: spec.queryName, qtype: spec.queryType, expectRcode: spec.expectRcode, expectAnswer: spec.expectAnswer, timeout: spec.timeout)
                .whenComplete { done((try? $0.get()) ?? .failure("probe error")) }
        case .exec(let argv):
            execWaiting.append((argv, spec.timeout, done))
            startExecs()
        case .http(let request):
            let expect = spec.expectStatus
            let body = spec.bodyContains
            let regexBox = RegexBox(run.regex)
            httpBatch.append((request, { r in done(HealthMonitor.evaluate(r, expect: expect, body: body, regex: regexBox.regex)) }))
        }
    }

    /// Starts waiting exec checks while fewer than `maxExec` run; reports a saturated pool
    /// once per episode (log) and every wait (metric, stats).
    private func startExecs() {
        if execRunning >= maxExec, !execWaiting.isEmpty {
            stats.execWaits += 1
            execWaitCounter.increment()
            if !execSaturatedLogged {
                execSaturatedLogged = true
                logger.warning("exec checks saturated: \(execRunning) running (the most at once), \(execWaiting.count) waiting; they run in turn and are timed from their start (hung targets?)")
            }
        }
        while execRunning < maxExec, let job = execWaiting.popFirst() {
            execRunning += 1
            let begun = NIODeadline.now().uptimeNanoseconds
            let gate = self.gate
            execProbe(command: job.argv, timeout: job.timeout, queue: execQueue) { r in
                gate.execute { [self] in
                    execRunning -= 1
                    var result = r
                    result.startedAt = begun
                    job.done(result)
                    if execSaturatedLogged && execWaiting.isEmpty && execRunning < maxExec / 2 {
                        execSaturatedLogged = false
                        logger.notice("exec checks no longer saturated")
                    }
                    startExecs()
                }
            }
        }
    }

    static func evaluate(_ r: HTTPCheckResult, expect: [Int], body: String?, regex: NSRegularExpression?) -> ProbeResult {
        if let e = r.error { return r.local ? .localFailure(e) : .failure(e) }
        guard expect.contains(r.status) else { return .failure("HTTP \(r.status)") }
        let text = String(decoding: r.body, as: UTF8.self)
        if let body, !text.contains(body) { return .failure("HTTP \(r.status), body lacks '\(body.prefix(40))'") }
        if let regex, regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) == nil {
            return .failure("HTTP \(r.status), body does not match /\(regex.pattern.prefix(40))/")
        }
        return .success("HTTP \(r.status)")
    }

    /// Logs and counts what the book made of a result.
    private func record(_ i: Int, _ j: Int, _ outcome: MonitorBook.Outcome, _ result: ProbeResult) {
        let id = book.members[i].target.memberID
        let check = book.members[i].checks[j]
        switch outcome {
        case .localShortage:
            // This host ran short (descriptors, buffers, ports): the member is not to blame.
            stats.inconclusive += 1
            stats.localShortages += 1
            localShortageCounter.increment()
            if !loggedShortage {
                loggedShortage = true
                logger.error("health checks failing for lack of local resources (\(result.reason)): not counted against members; raise RLIMIT_NOFILE or lower the check load (logged once)")
            }
            return
        case .late:
            // The timeout may have fired before a completed connection was even looked at:
            // this loop was stalled (an overloaded machine); the result says nothing.
            stats.inconclusive += 1
            return
        case let .recorded(transition, first):
            switch transition {
            case .wentDown?:
                stats.transitions += 1
                logger.warning("\(id) down: \(check.spec.label) \(result.reason) after \(first ? "the first check" : "\(check.machine.failures) failures")")
                downCounter.increment()
            case .wentUp?:
                stats.transitions += 1
                logger.notice("\(id) up: \(check.spec.label) \(result.reason) after \(first ? "the first check" : "\(check.machine.successes) successes")")
                upCounter.increment()
            case nil:
                break
            }
            if transition != nil || first { markDirty() }
            resolveFirstRound()
        }
    }

    // MARK: Agents

    private func pollAgent(_ i: Int, due dueAt: UInt64) {
        let gen = generation
        guard let spec = book.members[i].agent?.spec else { return }
        stats.checksRun += 1
        guard let target = agentTargets[i] else {
            agentError(i, "bad address \(book.members[i].target.address)")
            reschedule(i, DueQueue.agent, previous: dueAt, interval: spec.interval)
            return
        }
        readReply(group: loop, target: target, source: source.bindAddress(for: target), send: spec.send, timeout: spec.timeout, limit: AgentReply.maxLength)
            .whenComplete { [self] r in
                guard gen == generation, !stopped else { return }
                switch r {
                case .success(let bytes):
                    do throws(AgentReply.ParseError) {
                        agentReply(i, try AgentReply.parse(bytes))
                    } catch {
                        agentError(i, "\(error)")
                    }
                case .failure(let e):
                    agentError(i, describe(e))
                }
                reschedule(i, DueQueue.agent, previous: dueAt, interval: spec.interval)
            }
    }

    private func agentReply(_ i: Int, _ reply: AgentReply) {
        let change = book.agentReplied(member: i, reply, wallNow: clock.wall())
        if change.recovered { logger.notice("\(book.members[i].target.memberID) agent answers again") }
        agentChanged(i, change)
    }

    private func agentError(_ i: Int, _ message: String) {
        let change = book.agentFailed(member: i, message, wallNow: clock.wall())
        if change.newError, let a = book.members[i].agent {
            logger.warning("\(book.members[i].target.memberID) agent: \(message); keeping the last good reply for up to \(Int(a.spec.maxAge)) s")
        }
        agentChanged(i, change)
    }

    private func agentChanged(_ i: Int, _ change: MonitorBook.AgentChange) {
        if change.wentStale, let a = book.members[i].agent {
            logger.warning("\(book.members[i].target.memberID) agent: no good reply for \(Int(a.spec.maxAge)) s, static weight applies")
        }
        if change.published { markDirty() }
        resolveFirstRound()
    }

    // MARK: Publication

    private func allObserved() -> Bool { book.allObserved }

    private func resolveFirstRound() {
        guard !firstRoundWaiters.isEmpty, allObserved() else { return }
        let waiters = firstRoundWaiters
        firstRoundWaiters = []
        for w in waiters { w.succeed() }
    }

    private func markDirty() {
        dirty = true
        guard !publishPending else { return }
        publishPending = true
        loop.scheduleTask(in: coalesce) { [self] in
            publishPending = false
            guard dirty, !stopped else { return }
            dirty = false
            publish(snapshot())
        }
    }

    private func snapshot() -> [String: MemberObservations] { book.observations() }
}

/// Carries a compiled regular expression into curl's completion.
struct RegexBox: @unchecked Sendable {
    // @unchecked: NSRegularExpression is immutable once compiled and documented thread-safe.
    let regex: NSRegularExpression?
    init(_ r: NSRegularExpression?) { regex = r }
}

extension MonitorTarget {
    /// A text that is equal on two instances exactly when they check this member the same way:
    /// its id, address and every check and agent setting, but not the line numbers.
    public var definition: String {
        func fields(_ value: Any) -> String {
            Mirror(reflecting: value).children.filter { $0.label != "line" }.map { "\($0.label ?? "")=\($0.value)" }.joined(separator: ",")
        }
        return "\(memberID)|\(address)|\(checks.map(fields).joined(separator: ";"))|\(agent.map(fields) ?? "-")"
    }

    /// `definition` hashed the same way in every process (peers compare it).
    public var definitionHash: UInt64 { StableHash.of(definition) }
}

/// Runs work on an event loop until closed; after `close()`, work is dropped rather than
/// scheduled on a loop that is shutting down (which SwiftNIO reports, and will make a crash).
public final class LoopGate: Sendable {
    let loop: any EventLoop
    private let open = NIOLockedValueBox(true)

    public init(_ loop: any EventLoop) { self.loop = loop }

    public func execute(_ body: @escaping @Sendable () -> Void) {
        open.withLockedValue { if $0 { loop.execute(body) } }
    }

    public func close() { open.withLockedValue { $0 = false } }
}

