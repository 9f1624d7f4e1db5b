/// When an override stops applying: the one expiry rule, for state-file lines, registers and
/// the API alike. An override with expiry E applies at every time before E and at none from E on.
public enum Expiry {
    /// In force at `nowMillis`; `expiresMillis` 0 means "until removed".
    @inline(__always)
    public static func isLive(expiresMillis: UInt64, nowMillis: UInt64) -> Bool {
        expiresMillis == 0 || nowMillis < expiresMillis
    }

    /// Milliseconds from unix seconds, clamped to what a register holds.
    public static func millis(_ seconds: Double) -> UInt64 {
        guard seconds.isFinite, seconds > 0 else { return 0 }
        return UInt64(min((seconds * 1000).rounded(), Double(HLC.maxMillis)))
    }
}

/// What the group knows, ready to fold: per member the observations that count (from
/// `Ledger.view`), every override register, and the verdict policy. The gossip shell makes it;
/// the supervisor folds it (`HealthFold.snapshot`) into the health selection reads.
public struct HealthInputs: Sendable, Equatable {
    public var observations: [String: MemberObservations]
    /// Every override register, removed ones included: who wrote each pattern last.
    public var registers: [String: Ledger.OverrideEntry]
    public var policy: VerdictPolicy
    public var regions: RegionMap
    public var latency: LatencyTable

    public init(
        observations: [String: MemberObservations] = [:], registers: [String: Ledger.OverrideEntry] = [:], policy: VerdictPolicy = .majority,
        regions: RegionMap = .none, latency: LatencyTable = .empty
    ) {
        self.regions = regions
        self.latency = latency
        self.observations = observations
        self.registers = registers
        self.policy = policy
    }
}

/// The one fold of "ledger + alive peers + probers + overrides + now" into a `HealthSnapshot`.
/// The server, `/status`, `explain --peer` and the simulator all call these functions, so they
/// cannot disagree about who probes a member, which results count or whether an override
/// has expired.
public enum HealthFold {
    /// Who probes each member: the rendezvous choice among the instances that are alive (this
    /// one and the peers SWIM holds alive). A suspected peer is not among them, so its share
    /// is probed by an alive instance from the next check on rather than after the suspicion
    /// ends in death.
    public static func probers(members: some Sequence<String>, alive: [String], count: Int?, perRegion: Int? = nil, regions: RegionMap = .none) -> [String: [String]] {
        if let perRegion { return RegionVerdict.probers(members: members, alive: alive, perRegion: perRegion, regions: regions) }
        let sorted = alive.sorted()
        var out: [String: [String]] = [:]
        for m in members { out[m] = Rendezvous.choose(member: m, from: sorted, count: count) }
        return out
    }

    /// The inputs of the fold from a ledger: observations of the members of `definitions` from
    /// the `alive` observers' current lives (`Ledger.view`), and every register.
    public static func inputs(
        ledger: Ledger, alive: Set<String>, probers: [String: [String]], definitions: [String: UInt64], policy: VerdictPolicy, regions: RegionMap = .none,
        nowMillis: UInt64 = 0
    ) -> HealthInputs {
        HealthInputs(
            observations: ledger.view(live: alive, probers: probers, definitions: definitions), registers: ledger.overrides, policy: policy,
            regions: regions, latency: ledger.latencyTable(nowMillis: nowMillis))
    }

    /// The overrides in force at `nowMillis`, oldest first (a later matching one wins).
    public static func overrides(_ registers: [String: Ledger.OverrideEntry], nowMillis: UInt64) -> [AdminOverride] {
        registers.values.filter { $0.isLive(atMillis: nowMillis) }.sorted { $0.version < $1.version }.map(\.adminOverride)
    }

    /// The health view at `nowMillis`.
    public static func snapshot(_ inputs: HealthInputs, nowMillis: UInt64, version: Int) -> HealthSnapshot {
        HealthSnapshot(
            version: version, overrides: overrides(inputs.registers, nowMillis: nowMillis), observations: inputs.observations, policy: inputs.policy,
            registers: inputs.registers, regions: inputs.regions, latency: inputs.latency)
    }

    /// The next time after `nowMillis` at which an override in force expires (the fold must
    /// run again then), or nil.
    public static func nextExpiry(_ registers: [String: Ledger.OverrideEntry], nowMillis: UInt64) -> UInt64? {
        registers.values.filter { $0.isLive(atMillis: nowMillis) && $0.expiresMillis != 0 }.map(\.expiresMillis).min()
    }
}

/// Which changes of a feedback agent's reply are news for the group. An agent reports its
/// spare capacity every few seconds and it wanders by a point or two; each wander would be a
/// new replicated entry sent to every peer. Only a move of more than `points` percentage
/// points, a change of state word, or reaching or leaving 0 (no new answers) is news: what the
/// group holds is then never more than `points` away from what the agent says.
public enum AgentDeadBand {
    public static let points = 5.0

    public static func isNews(old: (AgentReply.State?, Double?), new: (AgentReply.State?, Double?)) -> Bool {
        if old.0 != new.0 { return true }
        switch (old.1, new.1) {
        case (nil, nil): return false
        case (nil, _), (_, nil): return true
        case let (a?, b?):
            if (a == 0) != (b == 0) { return true }
            return abs(a - b) * 100 > points
        }
    }
}
