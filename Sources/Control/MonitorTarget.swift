import Health
import GeoTopology
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

/// The outcome of one probe: success, or failure with a short reason.
public struct ProbeResult: Sendable, Equatable {
    public var ok: Bool
    public var reason: String
    /// The probe failed for a shortage on this host (no file descriptors, buffers, memory or
    /// ephemeral ports): it says nothing about the member and is never counted against it.
    public var local = false
    /// When the probe really began (uptime nanoseconds), if later than when it was due: an
    /// exec check that waited for a free slot is timed from its start, not from its turn.
    public var startedAt: UInt64?

    public init(ok: Bool, reason: String, local: Bool = false, startedAt: UInt64? = nil) {
        self.ok = ok
        self.reason = reason
        self.local = local
        self.startedAt = startedAt
    }

    public static func success(_ r: String = "ok") -> ProbeResult { ProbeResult(ok: true, reason: r) }
    public static func failure(_ r: String) -> ProbeResult { ProbeResult(ok: false, reason: r) }
    public static func localFailure(_ r: String) -> ProbeResult { ProbeResult(ok: false, reason: r, local: true) }
}
