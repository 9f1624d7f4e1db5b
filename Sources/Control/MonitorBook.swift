import Health
import PoolConfig

/// The health monitor's policy as one value: per member its checks' rise/fall machines and
/// reasons, its agent's last good reply, and the rules that turn a completed probe or an agent
/// reply into an observation: a failure of this host (a resource shortage) and a failure that
/// completed long after its timeout (the monitor's own loop was stalled) are inconclusive and
/// never count toward `fall`; an agent's reply counts for `max_age` after it arrived. Time is
/// passed in; `ControlCore` holds it, and `ProbeExecutor` (HealthCheck) runs the probes.
public struct MonitorBook: Sendable {
    public struct Check: Sendable, Equatable {
        public let spec: CheckSpec
        public var machine: RiseFall
        public var reason = "not checked yet"
        public var version: UInt64 = 0
        /// Wall time of the last change of state (or of the first result).
        public var changedAt: Double
    }

    public struct Agent: Sendable, Equatable {
        public let spec: AgentSpec
        public var state: AgentReply.State?
        public var percent: Double?
        public var lastGood: Double?
        public var lastError: String?
        public var observed = false
        /// The observation now (what `observations()` reports).
        public var published: AgentObservation?
        /// The observation when a change was last reported as news (`AgentDeadBand`): wandering
        /// within the dead band of it is not news, as the ledger does not take it either.
        public var reported: AgentObservation?
    }

    public struct Member: Sendable, Equatable {
        public let target: MonitorTarget
        public var checks: [Check]
        public var agent: Agent?
    }

    /// What one completed probe meant.
    public enum Outcome: Sendable, Equatable {
        /// Counted: a transition, if it caused one; `first` for a check's first result.
        case recorded(RiseFall.Transition?, first: Bool)
        /// A failure of this host (descriptors, buffers, memory, ports): not the member's.
        case localShortage
        /// A failure that completed well after its timeout: this monitor was stalled.
        case late
    }

    /// What an agent event changed.
    public struct AgentChange: Sendable, Equatable {
        /// The observation changed beyond the dead band, or its state did: record it.
        public var published = false
        /// The agent answers again after an error.
        public var recovered = false
        /// A new error message (log it once).
        public var newError = false
        /// No good reply for `max_age`: the static weight applies again.
        public var wentStale = false
    }

    public let observer: String
    public private(set) var members: [Member] = []

    public init(observer: String) { self.observer = observer }

    /// The grace after a timeout beyond which a failure is taken as a stall of this monitor.
    public static func lateAfter(timeout: Double) -> Double { timeout + max(0.1, timeout * 0.5) }

    /// A new set of targets; checks and agents defined as before (same spec and address) keep
    /// their state.
    public mutating func configure(_ targets: [MonitorTarget], wallNow: Double) {
        var old: [String: Member] = [:]
        for m in members { old[m.target.memberID] = m }
        members = targets.map { t in
            let previous = old[t.memberID].flatMap { $0.target.address == t.address ? $0 : nil }
            let checks = t.checks.map { spec in
                previous?.checks.first { $0.spec == spec }
                    ?? Check(spec: spec, machine: RiseFall(rise: spec.rise, fall: spec.fall, initialUp: spec.initialUp), changedAt: wallNow)
            }
            var agent = t.agent.map { Agent(spec: $0) }
            if let a = t.agent, let p = previous?.agent, p.spec == a { agent = p }
            return Member(target: t, checks: checks, agent: agent)
        }
    }

    /// Check `j` of member `i` finished with `result`, `elapsed` seconds after it began.
    public mutating func checkDone(member i: Int, check j: Int, result: ProbeResult, elapsed: Double, wallNow: Double) -> Outcome {
        if !result.ok, result.local { return .localShortage }
        var c = members[i].checks[j]
        if !result.ok, elapsed > Self.lateAfter(timeout: c.spec.timeout) { return .late }
        let first = !c.machine.observed
        let transition = c.machine.record(success: result.ok)
        if transition != nil || first {
            c.version += 1
            c.changedAt = wallNow
            c.reason = !result.ok || transition != nil ? result.reason : "ok"
        } else if !result.ok {
            c.reason = result.reason
        }
        members[i].checks[j] = c
        return .recorded(transition, first: first)
    }

    /// Member `i`'s agent replied.
    public mutating func agentReplied(member i: Int, _ reply: AgentReply, wallNow: Double) -> AgentChange {
        guard var a = members[i].agent else { return AgentChange() }
        var change = AgentChange()
        change.recovered = a.lastError != nil
        a.lastError = nil
        if let s = reply.state { a.state = s }
        if let p = reply.percent { a.percent = p }
        a.lastGood = wallNow
        a.observed = true
        members[i].agent = a
        return refresh(i, wallNow: wallNow, change)
    }

    /// Member `i`'s agent could not be read (`message` says why).
    public mutating func agentFailed(member i: Int, _ message: String, wallNow: Double) -> AgentChange {
        guard var a = members[i].agent else { return AgentChange() }
        var change = AgentChange()
        change.newError = a.lastError != message
        a.lastError = message
        a.observed = true
        members[i].agent = a
        return refresh(i, wallNow: wallNow, change)
    }

    /// The agent observation at `wallNow`: the last good reply while younger than `max_age`.
    private mutating func refresh(_ i: Int, wallNow: Double, _ change: AgentChange) -> AgentChange {
        guard var a = members[i].agent else { return change }
        var change = change
        var obs: AgentObservation?
        if let good = a.lastGood, wallNow - good <= a.spec.maxAge {
            let detail = [a.percent.map { "\(Int($0))%" }, a.state.map(\.rawValue), a.lastError.map { "last reply failed: \($0)" }]
                .compactMap { $0 }.joined(separator: " ")
            obs = AgentObservation(state: a.state, weightFactor: a.percent.map { $0 / 100 }, detail: detail, observer: observer, at: good)
        }
        if obs != a.published {
            change.wentStale = a.published != nil && obs == nil
            a.published = obs
            let news = switch (a.reported, obs) {
            case (nil, nil): false
            case (nil, _), (_, nil): true
            case let (old?, new?): AgentDeadBand.isNews(old: (old.state, old.weightFactor), new: (new.state, new.weightFactor))
            }
            if news {
                change.published = true
                a.reported = obs
            }
        }
        members[i].agent = a
        return change
    }

    /// Every check and agent has a first result.
    public var allObserved: Bool {
        members.allSatisfy { m in m.checks.allSatisfy(\.machine.observed) && (m.agent?.observed ?? true) }
    }

    /// This instance's observations of every member (checks not run yet as their initial state,
    /// marked provisional).
    public func observations() -> [String: MemberObservations] {
        var out: [String: MemberObservations] = [:]
        for m in members {
            let checks = m.checks.map { c in
                CheckObservation(
                    check: c.spec.label, up: c.machine.isUp,
                    reason: c.machine.observed ? c.reason : "initial state \(c.spec.initialUp ? "up" : "down") (not checked yet)",
                    observer: observer, version: c.version, at: c.changedAt, provisional: !c.machine.observed)
            }
            out[m.target.memberID] = MemberObservations(checks: checks, agent: m.agent?.published)
        }
        return out
    }
}
