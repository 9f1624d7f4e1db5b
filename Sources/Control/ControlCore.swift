import Gossip
import GeoTopology
import Health
import PoolConfig

/// What the control core asks its shells to do.
public enum ControlDirective: Sendable {
    /// Send a gossip datagram (sealed by the transport) to a gossip address.
    case send(Packet, to: String)
    /// Open a state exchange with a peer; its end comes back as `exchanged`.
    case exchange(peer: String, address: String, request: FullState)
    /// Run these members' checks and agent polls from now on, numbered `epoch`: results of an
    /// earlier epoch are dropped (their indices refer to another list).
    case probe([MonitorTarget], epoch: Int)
    /// A new health view for the snapshot, and the override registers it came from.
    case publish(HealthSnapshot, registers: [String: Ledger.OverrideEntry])
    /// A log line.
    case log(GroupLog)
    /// Something to count.
    case count(ControlCount)
    /// A message or entry was refused: count it by reason and log it once per peer and reason.
    case dropped(reason: String, from: String, detail: String)
    /// A peer was forgotten: the transport drops its replay window.
    case forgot(peer: String)
    /// The number of live members (this instance included) changed.
    case live(Int)
}

/// What the core counts (the shell turns them into metrics).
public enum ControlCount: Sendable, Equatable {
    case wentDown, wentUp
    /// A failure that said nothing about the member: completed long after its timeout.
    case late
    /// A failure for a shortage of this host's resources (logged once by the shell).
    case localShortage(reason: String)
}

/// The control plane as one pure value: the monitor book (rise/fall, the inconclusive rules,
/// agent `max_age`), the group core (SWIM, the ledger and its lives, probe planning with
/// hand-over, anti-entropy), and the health publication (the one fold, `HealthFold`, and
/// override expiry). Events in, directives out; time comes with every event and the only
/// randomness is SWIM's seeded generator, so a simulator runs a whole group of these with no
/// sockets and no sleeps. The supervisor is its only shell: it runs the core on one event loop
/// and is the only writer of the snapshot.
public struct ControlCore: Sendable {
    public private(set) var group: GroupCore
    public private(set) var book: MonitorBook
    /// This instance's latency measurements.
    public private(set) var latency: LatencyBook
    /// Which queried resolvers are probed for latency, and when.
    public private(set) var probes: LatencyProbePlan
    /// Every checked member of the configuration.
    public private(set) var targets: [MonitorTarget] = []
    /// This instance's share of them (all of them until the group has said).
    public private(set) var share: [MonitorTarget] = []
    /// The number of the probe list in force.
    public private(set) var epoch = 0
    /// The members the group assigned here; nil until it has.
    private var mine: Set<String>?
    /// The book changed since its observations last went to the ledger.
    public private(set) var observationsDirty = false
    /// The fold's inputs last published.
    public private(set) var inputs: HealthInputs?
    /// The health version last published (the snapshot's health generation).
    public private(set) var healthVersion: Int
    /// The first instant an override of the published registers expires.
    public private(set) var nextExpiry: UInt64?

    public init(group: GroupCore, healthVersion: Int, latencySettings: LatencyBook.Settings = .init()) {
        self.group = group
        book = MonitorBook(observer: group.name)
        latency = LatencyBook(settings: latencySettings)
        probes = LatencyProbePlan()
        self.healthVersion = healthVersion
    }

    /// Something waits for `flush` (the shell arms one coalescing timer for it).
    public var needsFlush: Bool { observationsDirty || group.dirty }
    /// Every check and agent of this instance's share has a first result.
    public var allObserved: Bool { book.allObserved }

    // MARK: Events

    /// Starts this life with the configuration's checked members.
    public mutating func start(targets: [MonitorTarget], digest: UInt64, now: GroupTime) -> [ControlDirective] {
        self.targets = targets
        var out: [ControlDirective] = []
        reshare(now: now, &out)
        translate(group.start(definitions: Self.definitions(targets), digest: digest, now: now), now: now, &out)
        return out
    }

    /// Cold start: an exchange with every configured peer.
    public mutating func join(now: GroupTime) -> [ControlDirective] { run(now) { $0.join(now: now) } }

    /// The clock (every 20 ms): SWIM's timers, housekeeping, and overrides expiring.
    public mutating func tick(now: GroupTime) -> [ControlDirective] {
        var out = run(now) { $0.tick(now: now) }
        let t = Self.seconds(now)
        let rows = latency.isDue(now: t) ? latency.due(now: t, members: group.live.count) : []
        if !rows.isEmpty { translate(group.recordLatency(rows, now: now), now: now, &out) }
        if let e = nextExpiry, now.wallMillis >= e, let inputs { publish(inputs, now: now, &out) }
        return out
    }

    /// The coalescing timer fired: the book's observations go to the ledger, and the fold's
    /// inputs are published if anything changed.
    public mutating func flush(now: GroupTime) -> [ControlDirective] {
        var out: [ControlDirective] = []
        recordObservations(now: now, &out)
        translate(group.flush(now: now), now: now, &out)
        return out
    }

    public mutating func received(_ packet: Packet, sender: String, from: String, now: GroupTime) -> [ControlDirective] {
        run(now) { $0.received(packet, sender: sender, from: from, now: now) }
    }

    public mutating func exchanged(peer: String, address: String, reply: FullState?, sender: String?, now: GroupTime) -> [ControlDirective] {
        run(now) { $0.exchanged(peer: peer, address: address, reply: reply, sender: sender, now: now) }
    }

    /// A peer's exchange request or an explain query: the reply.
    public mutating func serve(request: FullState?, sender: String, origin: String, now: GroupTime) -> (reply: FullState, directives: [ControlDirective]) {
        let (reply, effects) = group.serve(request: request, sender: sender, origin: origin, now: now)
        var out: [ControlDirective] = []
        translate(effects, now: now, &out)
        return (reply, out)
    }

    /// A configuration loaded: new members, digest, or peer list.
    public mutating func configure(targets: [MonitorTarget], digest: UInt64, cluster: ClusterConfig?, now: GroupTime) -> [ControlDirective] {
        self.targets = targets
        var out: [ControlDirective] = []
        reshare(now: now, &out)
        translate(group.configure(definitions: Self.definitions(targets), digest: digest, cluster: cluster, now: now), now: now, &out)
        return out
    }

    /// Check `check` of member `member` of probe list `epoch` finished.
    public mutating func checkDone(epoch: Int, member: Int, check: Int, result: ProbeResult, elapsed: Double, now: GroupTime) -> [ControlDirective] {
        guard epoch == self.epoch, book.members.indices.contains(member), book.members[member].checks.indices.contains(check) else { return [] }
        let outcome = book.checkDone(member: member, check: check, result: result, elapsed: elapsed, wallNow: Self.seconds(now))
        let m = book.members[member]
        let c = m.checks[check]
        switch outcome {
        case .localShortage: return [.count(.localShortage(reason: result.reason))]
        case .late: return [.count(.late)]
        case let .recorded(transition, first):
            var out: [ControlDirective] = []
            let after = { (n: Int, what: String) in first ? "the first check" : "\(n) \(what)" }
            switch transition {
            case .wentDown?:
                out.append(.log(GroupLog(.warning, "\(m.target.memberID) down: \(c.spec.label) \(result.reason) after \(after(c.machine.failures, "failures"))")))
                out.append(.count(.wentDown))
            case .wentUp?:
                out.append(.log(GroupLog(.notice, "\(m.target.memberID) up: \(c.spec.label) \(result.reason) after \(after(c.machine.successes, "successes"))")))
                out.append(.count(.wentUp))
            case nil: break
            }
            if transition != nil || first { observationsDirty = true }
            return out
        }
    }

    /// Member `member`'s agent replied.
    public mutating func agentReplied(epoch: Int, member: Int, _ reply: AgentReply, now: GroupTime) -> [ControlDirective] {
        guard epoch == self.epoch, book.members.indices.contains(member) else { return [] }
        let change = book.agentReplied(member: member, reply, wallNow: Self.seconds(now))
        var out: [ControlDirective] = []
        if change.recovered { out.append(.log(GroupLog(.notice, "\(book.members[member].target.memberID) agent answers again"))) }
        agentChanged(member, change, &out)
        return out
    }

    /// Member `member`'s agent could not be read.
    public mutating func agentFailed(epoch: Int, member: Int, _ message: String, now: GroupTime) -> [ControlDirective] {
        guard epoch == self.epoch, book.members.indices.contains(member) else { return [] }
        let change = book.agentFailed(member: member, message, wallNow: Self.seconds(now))
        var out: [ControlDirective] = []
        if change.newError, let a = book.members[member].agent {
            out.append(.log(GroupLog(
                .warning, "\(book.members[member].target.memberID) agent: \(message); keeping the last good reply for up to \(Int(a.spec.maxAge)) s")))
        }
        agentChanged(member, change, &out)
        return out
    }

    /// This instance's admin state file, as registers for the whole group.
    public mutating func recordOverrides(_ overrides: [AdminOverride], now: GroupTime) -> [ControlDirective] {
        run(now) { $0.recordOverrides(overrides, now: now) }
    }

    /// Removes the group's override for `pattern`, whoever set it.
    public mutating func removeOverride(pattern: String, now: GroupTime) -> (removed: Bool, directives: [ControlDirective]) {
        let (removed, effects) = group.removeOverride(pattern: pattern, now: now)
        var out: [ControlDirective] = []
        translate(effects, now: now, &out)
        return (removed, out)
    }

    /// Publishes the merged view now (start-up: before the first answer), whether or not
    /// anything changed since the last publication.
    public mutating func publishNow(now: GroupTime) -> [ControlDirective] {
        var out = flush(now: now)
        let published = out.contains { if case .publish = $0 { return true } else { return false } }
        if !published { publish(group.inputs, now: now, &out) }
        return out
    }

    /// Latency measurements taken in (passive, probes, `POST /measurements`); they go to the
    /// group at the book's next publication.
    public mutating func measured(_ samples: [LatencySample], now: GroupTime) {
        for s in samples { latency.record(s, now: Self.seconds(now)) }
    }

    /// Sampled sources of queries answered here: each stands for `per` queries from its network.
    public mutating func sighted(_ sources: [(LatencyPrefix, IPAddress)], per: Double, now: GroupTime) {
        for (prefix, address) in sources { latency.seen(prefix, count: per, now: Self.seconds(now), address: address) }
    }

    /// Probing with other settings (the shell's options), from now on.
    public mutating func probe(with settings: LatencyProbePlan.Settings) { probes = LatencyProbePlan(settings: settings) }

    /// The queried resolvers to probe now (the shell probes them and hands back `measured`).
    public mutating func probeTargets(now: GroupTime) -> [(LatencyPrefix, IPAddress)] {
        probes.due(latency, now: Self.seconds(now))
    }

    /// Leaves the group.
    public mutating func leave(now: GroupTime) -> [ControlDirective] { run(now) { $0.leave(now: now) } }

    /// The health view now, for a configuration about to be published (the next version).
    public mutating func fold(now: GroupTime) -> HealthSnapshot? {
        guard let inputs else { return nil }
        healthVersion += 1
        return HealthFold.snapshot(inputs, nowMillis: now.wallMillis, version: healthVersion)
    }

    // MARK: Policy

    /// Member id -> definition hash, what peers compare.
    public static func definitions(_ targets: [MonitorTarget]) -> [String: UInt64] {
        Dictionary(targets.map { ($0.memberID, $0.definitionHash) }, uniquingKeysWith: { a, _ in a })
    }

    static func seconds(_ now: GroupTime) -> Double { Double(now.wallMillis) / 1000 }

    private mutating func run(_ now: GroupTime, _ body: (inout GroupCore) -> [GroupEffect]) -> [ControlDirective] {
        let effects = body(&group)
        var out: [ControlDirective] = []
        translate(effects, now: now, &out)
        return out
    }

    private mutating func translate(_ effects: [GroupEffect], now: GroupTime, _ out: inout [ControlDirective]) {
        for e in effects {
            switch e {
            case let .send(p, to): out.append(.send(p, to: to))
            case let .exchange(peer, address, request): out.append(.exchange(peer: peer, address: address, request: request))
            case .publish(let inputs): publish(inputs, now: now, &out)
            case .assign(let members):
                mine = members
                reshare(now: now, &out)
            case .log(let line): out.append(.log(line))
            case let .dropped(reason, from, detail): out.append(.dropped(reason: reason, from: from, detail: detail))
            case .forgot(let peer): out.append(.forgot(peer: peer))
            case .live(let n): out.append(.live(n))
            }
        }
    }

    /// This instance's share of the members changed (or the members did): the book keeps the
    /// state of checks defined as before, and the executor gets the new list.
    private mutating func reshare(now: GroupTime, _ out: inout [ControlDirective]) {
        let next = mine.map { m in targets.filter { m.contains($0.memberID) } } ?? targets
        guard next != share || epoch == 0 else { return }
        share = next
        book.configure(next, wallNow: Self.seconds(now))
        epoch += 1
        observationsDirty = true
        out.append(.probe(next, epoch: epoch))
    }

    private mutating func agentChanged(_ member: Int, _ change: MonitorBook.AgentChange, _ out: inout [ControlDirective]) {
        if change.wentStale, let a = book.members[member].agent {
            out.append(.log(GroupLog(.warning, "\(book.members[member].target.memberID) agent: no good reply for \(Int(a.spec.maxAge)) s, static weight applies")))
        }
        if change.published { observationsDirty = true }
    }

    private mutating func recordObservations(now: GroupTime, _ out: inout [ControlDirective]) {
        guard observationsDirty else { return }
        observationsDirty = false
        translate(group.recordLocal(book.observations(), now: now), now: now, &out)
    }

    private mutating func publish(_ inputs: HealthInputs, now: GroupTime, _ out: inout [ControlDirective]) {
        self.inputs = inputs
        healthVersion += 1
        nextExpiry = HealthFold.nextExpiry(inputs.registers, nowMillis: now.wallMillis)
        out.append(.publish(HealthFold.snapshot(inputs, nowMillis: now.wallMillis, version: healthVersion), registers: inputs.registers))
    }
}
