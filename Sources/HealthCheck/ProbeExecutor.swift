import Control
import Health
import Foundation
import GeoTopology
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PoolConfig

/// Counters of the engine's own work, for benchmarks and the logs.
public struct MonitorStats: Sendable {
    public var checksRun = 0
    /// Checks that started more than 10% of their interval (at least 50 ms) late.
    public var missedDeadlines = 0
    /// Exec checks that had to wait because `maxExec` were running.
    public var execWaits = 0
}

/// A probe that finished, for the control core (`ControlCore.checkDone` and the agent events).
/// `member` and `check` index the probe list numbered `epoch`.
public enum ProbeEvent: Sendable {
    case checkDone(epoch: Int, member: Int, check: Int, result: ProbeResult, elapsed: Double)
    case agentReplied(epoch: Int, member: Int, AgentReply)
    case agentFailed(epoch: Int, member: Int, String)
}

/// Runs the checks and agent polls the control core hands it (`run(_:epoch:)`) on one event
/// loop: TCP through the epoll engine, DNS and agent probes as SwiftNIO channels, HTTP(S)
/// through one libcurl multi thread, exec checks as spawned processes; no thread per check.
/// Each (member, check) runs on its own schedule, spread over the interval by jitter, and every
/// completion goes to `sink` on the loop as a `ProbeEvent`. What a result means (rise/fall, the
/// inconclusive rules, agent age) is the core's `MonitorBook`, not this.
public final class ProbeExecutor: @unchecked Sendable {
    // @unchecked: every mutable property below is read and written only on `loop` (all entry
    // points hop there with `loop.execute`); the rest is immutable or thread-safe itself
    // (CurlRunner, DispatchQueue, Logger).
    /// The loop group this executor made (nil when it runs on a loop it was given).
    let group: MultiThreadedEventLoopGroup?
    let loop: any EventLoop
    let curl: CurlRunner
    /// TCP connect checks on their own epoll thread; nil if it could not start (every TCP check
    /// then fails with the reason, and the log says so once).
    let tcpEngine: TCPCheckEngine?
    /// HTTP(S) checks started in the current wake-up, handed to `curl` together at its end.
    private var httpBatch: [(HTTPCheckRequest, CurlRunner.Completion)] = []
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
    /// Where checks leave from.
    public let source: CheckSource
    let logger: Logger
    let sink: @Sendable (ProbeEvent) -> Void

    /// What a check's probe needs, worked out once per configuration rather than per check
    /// (the policy side of the check is the core's `MonitorBook`).
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

    /// The probe list in force and its number.
    private var targets: [MonitorTarget] = []
    private var epoch = 0
    /// Per member and check (as `targets`), how to probe it; per member, its agent's address.
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
    private var stats = MonitorStats()
    private var stopped = false
    /// Counters by (check type, result) and by transition, made once: creating a metric per
    /// result would cost more than the check.
    private let checkCounters: [CheckKind: (ok: Counter, fail: Counter)] = Dictionary(uniqueKeysWithValues: CheckKind.allCases.map { kind in
        (kind, (Counter(label: "meridian_health_checks_total", dimensions: [("type", kind.rawValue), ("result", "ok")]),
                Counter(label: "meridian_health_checks_total", dimensions: [("type", kind.rawValue), ("result", "fail")])))
    })
    /// Check duration from when the check started running, per type (a Prometheus histogram).
    private let checkTimers: [CheckKind: Metrics.Timer] = Dictionary(uniqueKeysWithValues: CheckKind.allCases.map {
        ($0, Metrics.Timer(label: "meridian_health_check_duration_seconds", dimensions: [("type", $0.rawValue)]))
    })

    private func countCheck(_ kind: CheckKind, ok: Bool, seconds: Double) {
        guard let c = checkCounters[kind] else { return }
        (ok ? c.ok : c.fail).increment()
        checkTimers[kind]?.recordNanoseconds(Int64(max(0, min(seconds, 3600)) * 1e9))
    }

    /// - Parameters:
    ///   - loop: where to run (the supervisor's loop); nil: a loop of its own.
    ///   - sink: hears every completed probe, on the loop.
    public init(
        logger: Logger, loop: (any EventLoop)? = nil, maxExec: Int = 16, source: CheckSource = CheckSource(),
        sink: @escaping @Sendable (ProbeEvent) -> Void
    ) {
        self.source = source
        self.maxExec = max(1, maxExec)
        if let loop {
            group = nil
            self.loop = loop
        } else {
            let g = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            group = g
            self.loop = g.next()
        }
        // Completions of one pass of curl's loop come back to this loop in one hop.
        let gate = LoopGate(self.loop)
        self.gate = gate
        curl = CurlRunner { batch in gate.execute { for (done, result) in batch { done(result) } } }
        tcpEngine = TCPCheckEngine(source: source) { batch in gate.execute { for (done, result) in batch { done(result) } } }
        self.logger = logger
        self.sink = sink
    }

    /// Runs `targets` from now on, as probe list `epoch` (what the core's `.probe` says).
    public func run(_ targets: [MonitorTarget], epoch: Int) {
        if loop.inEventLoop { apply(targets, epoch: epoch) } else { gate.execute { self.apply(targets, epoch: epoch) } }
    }

    public func currentStats() -> EventLoopFuture<MonitorStats> { loop.submit { self.stats } }

    /// A monitor dropped without `shutdown()` (a start-up error) still ends its runners'
    /// threads, which hold the runners until they have.
    deinit {
        curl.stop()
        tcpEngine?.requestStop()
    }

    public func shutdown() async {
        try? await loop.submit {
            self.stopped = true
            self.due.removeAll()
            self.armed?.task.cancel()
            self.armed = nil
        }.get()
        curl.stop()
        tcpEngine?.stop()
        gate.close()
        try? await group?.shutdownGracefully()
    }

    // MARK: - On the loop

    private func apply(_ targets: [MonitorTarget], epoch: Int) {
        guard !stopped else { return }
        self.targets = targets
        self.epoch = epoch
        probes = targets.map { t in
            t.checks.map { spec in
                CheckProbe(regex: spec.bodyRegex.flatMap { try? NSRegularExpression(pattern: $0) }, prepared: PreparedProbe(spec, address: t.address, source: source))
            }
        }
        agentTargets = targets.map { t in t.agent.flatMap { try? socketAddress(t.address, $0.port) } }
        due.removeAll()
        let now = NIODeadline.now().uptimeNanoseconds
        for i in targets.indices {
            for j in targets[i].checks.indices {
                // The first round runs within the first quarter second (or interval), spread out.
                let spread = min(targets[i].checks[j].interval, 0.25)
                due.insert(.init(at: now + UInt64(random.uniform(0, spread) * 1e9), member: Int32(i), check: Int32(j)))
            }
            if let spec = targets[i].agent {
                due.insert(.init(at: now + UInt64(random.uniform(0, min(spec.interval, 0.25)) * 1e9), member: Int32(i), check: DueQueue.agent))
            }
        }
        arm()
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
        let gen = epoch
        let spec = targets[i].checks[j]
        let started = NIODeadline.now().uptimeNanoseconds
        if started > dueAt, started - dueAt > UInt64(max(0.05, spec.interval * 0.1) * 1e9) { stats.missedDeadlines += 1 }
        stats.checksRun += 1
        probe(spec, probes[i][j]) { [self] result in
            guard gen == epoch, !stopped else { return }
            let began = max(started, result.startedAt ?? started)
            let elapsed = Double(NIODeadline.now().uptimeNanoseconds - began) / 1e9
            countCheck(spec.kind, ok: result.ok, seconds: elapsed)
            sink(.checkDone(epoch: gen, member: i, check: j, result: result, elapsed: elapsed))
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
            httpBatch.append((request, { r in done(ProbeExecutor.evaluate(r, expect: expect, body: body, regex: regexBox.regex)) }))
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
            let gate = self.gate
            execProbe(command: job.argv, timeout: job.timeout) { result in
                gate.execute { [self] in
                    execRunning -= 1
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

    // MARK: Agents

    private func pollAgent(_ i: Int, due dueAt: UInt64) {
        let gen = epoch
        guard let spec = targets[i].agent else { return }
        stats.checksRun += 1
        guard let target = agentTargets[i] else {
            sink(.agentFailed(epoch: gen, member: i, "bad address \(targets[i].address)"))
            reschedule(i, DueQueue.agent, previous: dueAt, interval: spec.interval)
            return
        }
        readReply(group: loop, target: target, source: source.bindAddress(for: target), send: spec.send, timeout: spec.timeout, limit: AgentReply.maxLength)
            .whenComplete { [self] r in
                guard gen == epoch, !stopped else { return }
                switch r {
                case .success(let bytes):
                    do throws(AgentReply.ParseError) {
                        sink(.agentReplied(epoch: gen, member: i, try AgentReply.parse(bytes)))
                    } catch {
                        sink(.agentFailed(epoch: gen, member: i, "\(error)"))
                    }
                case .failure(let e):
                    sink(.agentFailed(epoch: gen, member: i, describe(e)))
                }
                reschedule(i, DueQueue.agent, previous: dueAt, interval: spec.interval)
            }
    }
}

/// Carries a compiled regular expression into curl's completion.
struct RegexBox: @unchecked Sendable {
    // @unchecked: NSRegularExpression is immutable once compiled and documented thread-safe.
    let regex: NSRegularExpression?
    init(_ r: NSRegularExpression?) { regex = r }
}

/// Runs work on an event loop until closed; after `close()`, work is dropped rather than
/// scheduled on a loop that is shutting down (which SwiftNIO reports, and will make a crash).
/// It is for threads that are not the loop's (curl's, the TCP engine's, the loader, the admin
/// API): the loop itself runs its work directly and never takes the gate's lock.
public final class LoopGate: Sendable {
    let loop: any EventLoop
    private let open = NIOLockedValueBox(true)

    public init(_ loop: any EventLoop) { self.loop = loop }

    public func execute(_ body: @escaping @Sendable () -> Void) { submit(body) }

    /// Hands `body` to the loop; false once the gate is closed (the work is dropped).
    @discardableResult
    public func submit(_ body: @escaping @Sendable () -> Void) -> Bool {
        open.withLockedValue { isOpen in
            if isOpen { loop.execute(body) }
            return isOpen
        }
    }

    public func close() { open.withLockedValue { $0 = false } }
}
