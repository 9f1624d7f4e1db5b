import Foundation

/// Everything the instances of one group know about member health, as a replicated state:
/// per (observer, member, check) the observer's latest result, per (observer, member) its
/// feedback agent's latest reply, and per pattern the admin override register. Each entry is
/// written by one writer (its observer, or any instance for overrides) and versioned with an
/// `HLC`; merging keeps the higher version, so any two ledgers that saw the same entries are
/// equal, whatever the order (a state-based CRDT: per-key last-writer-wins registers).
///
/// A pure value: no clock of its own, no I/O. The caller passes wall time and its clock.
public struct Ledger: Sendable, Equatable {
    /// One observer's current result for one check of one member.
    public struct CheckEntry: Sendable, Equatable {
        public var observer: String
        public var member: String
        public var check: String
        public var up: Bool
        public var reason: String
        /// The observer's hash of the member's definition (address, checks, agent): results
        /// count only where it equals this instance's own.
        public var definition: UInt64
        public var version: HLC
        /// The observer no longer probes this member (a tombstone).
        public var withdrawn: Bool
        /// The check's initial state, not a result (see `CheckObservation.provisional`).
        public var provisional: Bool
        /// The observer's life that wrote it (see `LifeEntry`); 0 from peers that predate lives.
        public var boot: UInt64

        public init(
            observer: String, member: String, check: String, up: Bool, reason: String, definition: UInt64, version: HLC, withdrawn: Bool = false,
            provisional: Bool = false, boot: UInt64 = 0
        ) {
            self.provisional = provisional
            self.boot = boot
            self.observer = observer
            self.member = member
            self.check = check
            self.up = up
            self.reason = reason
            self.definition = definition
            self.version = version
            self.withdrawn = withdrawn
        }
    }

    /// One observer's latest usable feedback-agent reply for one member.
    public struct AgentEntry: Sendable, Equatable {
        public var observer: String
        public var member: String
        public var state: AgentReply.State?
        public var weightFactor: Double?
        public var detail: String
        public var definition: UInt64
        public var version: HLC
        /// No usable reply any more (stale, or no longer probed): a tombstone.
        public var withdrawn: Bool
        /// The observer's life that wrote it (see `LifeEntry`); 0 from peers that predate lives.
        public var boot: UInt64

        public init(
            observer: String, member: String, state: AgentReply.State?, weightFactor: Double?, detail: String, definition: UInt64, version: HLC,
            withdrawn: Bool = false, boot: UInt64 = 0
        ) {
            self.boot = boot
            self.observer = observer
            self.member = member
            self.state = state
            self.weightFactor = weightFactor
            self.detail = detail
            self.definition = definition
            self.version = version
            self.withdrawn = withdrawn
        }
    }

    /// An admin override register: the last write for a pattern wins, on every instance.
    public struct OverrideEntry: Sendable, Equatable {
        public var pattern: String
        public var state: HealthState
        public var weightFactor: Double?
        /// The instance where it was set, and where (`state.txt:3`).
        public var origin: String
        public var source: String
        public var version: HLC
        /// Removed (a tombstone), so an older write arriving late cannot bring it back.
        public var removed: Bool
        /// Why it was set (at most `AdminStateFile.maxReason` octets).
        public var reason: String
        /// Unix time in milliseconds after which it no longer applies; 0: never.
        public var expiresMillis: UInt64

        public init(
            pattern: String, state: HealthState, weightFactor: Double?, origin: String, source: String, version: HLC, removed: Bool = false,
            reason: String = "", expiresMillis: UInt64 = 0
        ) {
            self.pattern = pattern
            self.state = state
            self.weightFactor = weightFactor
            self.origin = origin
            self.source = source
            self.version = version
            self.removed = removed
            self.reason = reason
            self.expiresMillis = expiresMillis
        }

        /// In force at `nowMillis`: not removed and not expired (`Expiry`, the one rule).
        public func isLive(atMillis nowMillis: UInt64) -> Bool {
            !removed && Expiry.isLive(expiresMillis: expiresMillis, nowMillis: nowMillis)
        }

        /// As the state file and the API show it.
        public var adminOverride: AdminOverride {
            AdminOverride(
                pattern: pattern, state: state, weightFactor: weightFactor, reason: reason,
                expires: expiresMillis == 0 ? nil : Double(expiresMillis) / 1000, setAt: Double(version.millis) / 1000,
                file: "\(origin) \(source)", line: 0)
        }
    }

    /// An observer's current life: the boot id it took when it started (its start time in
    /// milliseconds). Results written in an earlier life never count once a later life is
    /// known, so an instance that crashed and came back cannot vote with what it saw before
    /// the crash; a restart writes its new life before it joins, so the group hears of it in
    /// the first exchange.
    public struct LifeEntry: Sendable, Equatable {
        public var observer: String
        public var boot: UInt64
        public var version: HLC

        public init(observer: String, boot: UInt64, version: HLC) {
            self.observer = observer
            self.boot = boot
            self.version = version
        }
    }

    public enum Entry: Sendable, Equatable {
        case check(CheckEntry)
        case agent(AgentEntry)
        case override(OverrideEntry)
        case life(LifeEntry)
        case latency(LatencyEntry)

        /// Spread with fewer retransmissions (`SWIM.broadcast(lean:)`): latency rows are many,
        /// refreshed, and not urgent; health, overrides and lives are few and decide answers now.
        public var gossipsLean: Bool {
            if case .latency = self { return true }
            return false
        }

        public var version: HLC {
            switch self {
            case .check(let e): return e.version
            case .agent(let e): return e.version
            case .override(let e): return e.version
            case .life(let e): return e.version
            case .latency(let e): return e.version
            }
        }

        /// Who wrote it: the observer, or the override's origin.
        public var writer: String {
            switch self {
            case .check(let e): return e.observer
            case .agent(let e): return e.observer
            case .override(let e): return e.origin
            case .life(let e): return e.observer
            case .latency(let e): return e.observer
            }
        }

        /// What a newer entry replaces (for de-duplicating a send queue).
        public var key: String {
            switch self {
            case .check(let e): return "c\u{0}\(e.observer)\u{0}\(e.member)\u{0}\(e.check)"
            case .agent(let e): return "a\u{0}\(e.observer)\u{0}\(e.member)"
            case .override(let e): return "o\u{0}\(e.pattern)"
            case .life(let e): return "l\u{0}\(e.observer)"
            case .latency(let e): return "t\u{0}\(e.observer)\u{0}\(e.prefix.key)\u{0}\(e.site)"
            }
        }
    }

    /// Bounds on what one writer can make this ledger hold.
    public struct Limits: Sendable, Equatable {
        /// Check plus agent entries per observer.
        public var entriesPerObserver: Int
        public var overrides: Int
        /// How far ahead of local wall time a version may be (a forged or badly skewed clock
        /// must not pin a register forever).
        public var maxFutureMillis: UInt64

        /// Observers whose life is held.
        public var lives: Int
        /// Latency entries per observer (client networks x sites it measured).
        public var latencyPerObserver: Int = 20_000

        public init(entriesPerObserver: Int = 200_000, overrides: Int = 10_000, maxFutureMillis: UInt64 = 60_000, lives: Int = 4096) {
            self.lives = lives
            self.entriesPerObserver = entriesPerObserver
            self.overrides = overrides
            self.maxFutureMillis = maxFutureMillis
        }
    }

    /// Why an entry was not taken.
    public enum Rejection: Error, Sendable, Equatable, CustomStringConvertible {
        case future(writer: String, aheadMillis: UInt64)
        case full(writer: String)
        case badValue(writer: String, what: String)

        public var description: String {
            switch self {
            case let .future(w, ms): return "\(w): version \(ms) ms in the future"
            case let .full(w): return "\(w): too many entries"
            case let .badValue(w, what): return "\(w): \(what)"
            }
        }
    }

    struct CheckKey: Hashable, Sendable { var observer, member, check: String }
    struct AgentKey: Hashable, Sendable { var observer, member: String }
    struct LatencyKey: Hashable, Sendable {
        var observer: String
        var prefix: LatencyPrefix
        var site: String
    }

    private(set) var checks: [CheckKey: CheckEntry] = [:]
    private(set) var agents: [AgentKey: AgentEntry] = [:]
    public private(set) var overrides: [String: OverrideEntry] = [:]
    /// Observer -> its latest known life.
    public private(set) var lives: [String: LifeEntry] = [:]
    /// Latency measurements, per observer, client network and site.
    var latency: [LatencyKey: LatencyEntry] = [:]
    var latencyCounts: [String: Int] = [:]
    private var counts: [String: Int] = [:]
    public let limits: Limits

    public init(limits: Limits = Limits()) { self.limits = limits }

    public var entryCount: Int { checks.count + agents.count + overrides.count + lives.count + latency.count }
    /// Latency entries held.
    public var latencyCount: Int { latency.count }

    // MARK: Merging

    /// Takes an entry if it is newer than what is held for its key. Returns whether anything
    /// changed; throws (and changes nothing) for an entry that breaks a limit.
    @discardableResult
    public mutating func merge(_ entry: Entry, nowMillis: UInt64) throws(Rejection) -> Bool {
        if entry.version.millis > nowMillis, entry.version.millis - nowMillis > limits.maxFutureMillis {
            throw .future(writer: entry.writer, aheadMillis: entry.version.millis - nowMillis)
        }
        switch entry {
        case .check(let e):
            let k = CheckKey(observer: e.observer, member: e.member, check: e.check)
            if let old = checks[k] { guard e.version > old.version else { return false } } else { try admit(e.observer) }
            checks[k] = e
        case .agent(let e):
            if let f = e.weightFactor, !(f >= 0 && f <= 1) { throw .badValue(writer: e.observer, what: "agent weight \(f)") }
            let k = AgentKey(observer: e.observer, member: e.member)
            if let old = agents[k] { guard e.version > old.version else { return false } } else { try admit(e.observer) }
            agents[k] = e
        case .override(let e):
            if let f = e.weightFactor, !(f >= 0 && f <= 1) { throw .badValue(writer: e.origin, what: "override weight \(f)") }
            if let old = overrides[e.pattern] {
                // Ties (same version from two origins) go to the larger origin name, so every
                // instance picks the same one.
                guard e.version > old.version || (e.version == old.version && e.origin > old.origin) else { return false }
            } else if overrides.count >= limits.overrides {
                throw .full(writer: e.origin)
            }
            overrides[e.pattern] = e
        case .life(let e):
            if let old = lives[e.observer] {
                // A later boot wins whatever the versions say; the same boot by version.
                guard e.boot > old.boot || (e.boot == old.boot && e.version > old.version) else { return false }
            } else if lives.count >= limits.lives {
                throw .full(writer: e.observer)
            }
            lives[e.observer] = e
        case .latency(let e):
            // Too old to count: not taken, so pruned entries do not come back from a peer.
            guard Self.isFresh(e, nowMillis: nowMillis) else { return false }
            let k = LatencyKey(observer: e.observer, prefix: e.prefix, site: e.site)
            if let old = latency[k] {
                guard e.version > old.version else { return false }
            } else {
                let n = latencyCounts[e.observer, default: 0]
                guard n < limits.latencyPerObserver else { throw .full(writer: e.observer) }
                guard e.site.utf8.count <= 64, !e.site.isEmpty else { throw .badValue(writer: e.observer, what: "latency site name") }
                latencyCounts[e.observer] = n + 1
            }
            latency[k] = e
        }
        return true
    }

    /// Whether a result written in life `boot` of `observer` counts: it does unless a later
    /// life of that observer is known.
    public func isCurrent(observer: String, boot: UInt64) -> Bool {
        guard let life = lives[observer] else { return true }
        return boot >= life.boot
    }

    private mutating func admit(_ observer: String) throws(Rejection) {
        let n = counts[observer, default: 0]
        guard n < limits.entriesPerObserver else { throw .full(writer: observer) }
        counts[observer] = n + 1
    }

    /// Every entry, for a full-state exchange (push-pull).
    public func entries() -> [Entry] {
        checks.values.map(Entry.check) + agents.values.map(Entry.agent) + overrides.values.map(Entry.override) + lives.values.map(Entry.life)
            + latency.values.map(Entry.latency)
    }

    /// What a writer's entries amount to, for anti-entropy: two ledgers hold the same entries of
    /// a writer (keys and versions) exactly when their summaries are equal (up to a 64-bit
    /// hash collision).
    public struct Summary: Sendable, Equatable {
        public var count: UInt32
        public var hash: UInt64

        public init(count: UInt32, hash: UInt64) {
            self.count = count
            self.hash = hash
        }
    }

    /// Per writer, its entries' count and the XOR of each entry's (key, version) hash: order
    /// independent, so equal ledgers give equal summaries.
    public func summaries() -> [String: Summary] {
        var out: [String: Summary] = [:]
        func add(_ e: Entry) {
            let h = StableHash.mix(StableHash.of(e.key) ^ e.version.raw)
            var s = out[e.writer] ?? Summary(count: 0, hash: 0)
            s.count &+= 1
            s.hash ^= h
            out[e.writer] = s
        }
        for e in checks.values { add(.check(e)) }
        for e in agents.values { add(.agent(e)) }
        for e in overrides.values { add(.override(e)) }
        for e in lives.values { add(.life(e)) }
        for e in latency.values { add(.latency(e)) }
        return out
    }

    /// The entries of some writers.
    public func entries(writtenBy writers: Set<String>) -> [Entry] {
        checks.values.filter { writers.contains($0.observer) }.map(Entry.check)
            + agents.values.filter { writers.contains($0.observer) }.map(Entry.agent)
            + overrides.values.filter { writers.contains($0.origin) }.map(Entry.override)
            + lives.values.filter { writers.contains($0.observer) }.map(Entry.life)
            + latency.values.filter { writers.contains($0.observer) }.map(Entry.latency)
    }

    /// The writers whose entries differ between this ledger and one summarized by `other`.
    public func differing(from other: [String: Summary]) -> Set<String> {
        let mine = summaries()
        return Set(mine.keys).union(other.keys).filter { mine[$0] != other[$0] }
    }

    /// Drops everything an observer wrote (it is dead or left the group); returns how many.
    /// Overrides stay: they belong to the group, not to the instance that set them; so does
    /// its life, so results of that life arriving late never count again.
    @discardableResult
    public mutating func forget(observer: String) -> Int {
        let before = checks.count + agents.count + latency.count
        checks = checks.filter { $0.key.observer != observer }
        agents = agents.filter { $0.key.observer != observer }
        latency = latency.filter { $0.key.observer != observer }
        counts[observer] = nil
        latencyCounts[observer] = nil
        return before - checks.count - agents.count - latency.count
    }

    /// The observers with entries here.
    public var observers: Set<String> { Set(counts.keys) }

    // MARK: Local writes

    /// Records this instance's own observations: entries whose result changed get a new
    /// version, entries for checks no longer reported are withdrawn. Returns the new entries
    /// (to gossip).
    public mutating func recordLocal(
        observer: String, boot: UInt64 = 0, observations: [String: MemberObservations], definitions: [String: UInt64], clock: inout HybridClock,
        wallMillis: UInt64
    ) -> [Entry] {
        var out: [Entry] = []
        var seenChecks = Set<CheckKey>()
        var seenAgents = Set<AgentKey>()
        for (member, obs) in observations {
            let def = definitions[member] ?? 0
            for c in obs.checks where c.observer == observer {
                let k = CheckKey(observer: observer, member: member, check: c.check)
                seenChecks.insert(k)
                if let old = checks[k], !old.withdrawn, old.boot == boot, old.up == c.up, old.reason == c.reason, old.definition == def,
                   old.provisional == c.provisional { continue }
                let e = CheckEntry(
                    observer: observer, member: member, check: c.check, up: c.up, reason: c.reason, definition: def, version: clock.tick(wallMillis: wallMillis),
                    provisional: c.provisional, boot: boot)
                if (try? merge(.check(e), nowMillis: wallMillis)) == true { out.append(.check(e)) }
            }
            if let a = obs.agents.first(where: { $0.observer == observer }) {
                let k = AgentKey(observer: observer, member: member)
                seenAgents.insert(k)
                if let old = agents[k], !old.withdrawn, old.boot == boot, old.definition == def,
                   !AgentDeadBand.isNews(old: (old.state, old.weightFactor), new: (a.state, a.weightFactor)) { continue }
                let e = AgentEntry(
                    observer: observer, member: member, state: a.state, weightFactor: a.weightFactor, detail: a.detail, definition: def,
                    version: clock.tick(wallMillis: wallMillis), boot: boot)
                if (try? merge(.agent(e), nowMillis: wallMillis)) == true { out.append(.agent(e)) }
            }
        }
        for (k, old) in checks where k.observer == observer && !old.withdrawn && !seenChecks.contains(k) {
            var e = old
            e.withdrawn = true
            e.version = clock.tick(wallMillis: wallMillis)
            checks[k] = e
            out.append(.check(e))
        }
        for (k, old) in agents where k.observer == observer && !old.withdrawn && !seenAgents.contains(k) {
            var e = old
            e.withdrawn = true
            e.version = clock.tick(wallMillis: wallMillis)
            agents[k] = e
            out.append(.agent(e))
        }
        return out
    }

    /// Records the start of this instance's life `boot` (its start time in milliseconds, later
    /// than any earlier life's). Returns the entry to gossip.
    public mutating func recordLife(observer: String, boot: UInt64, clock: inout HybridClock, wallMillis: UInt64) -> [Entry] {
        let e = LifeEntry(observer: observer, boot: boot, version: clock.tick(wallMillis: wallMillis))
        return (try? merge(.life(e), nowMillis: wallMillis)) == true ? [.life(e)] : []
    }

    /// Records this instance's admin state file: a pattern set or changed gets a new register
    /// value; a pattern this instance had set and the file no longer has is removed (a
    /// tombstone). Later lines get later versions, so among matching patterns the file's order
    /// still holds. Returns the new entries (to gossip).
    public mutating func recordOverrides(origin: String, overrides list: [AdminOverride], clock: inout HybridClock, wallMillis: UInt64) -> [Entry] {
        var out: [Entry] = []
        var last: [String: AdminOverride] = [:]
        for o in list { last[o.pattern] = o }
        for o in list where last[o.pattern] == o {
            let source = "\((o.file as NSString).lastPathComponent):\(o.line)"
            let expires = o.expires.map { UInt64(max(0, min(($0 * 1000).rounded(), 1e15))) } ?? 0
            var reason = o.reason
            while reason.utf8.count > AdminStateFile.maxReason { reason.removeLast() }
            if let old = overrides[o.pattern], !old.removed, old.state == o.state, old.weightFactor == o.weightFactor, old.source == source,
               old.reason == reason, old.expiresMillis == expires { continue }
            // A line that says when it was set keeps that time as its version: after a restart
            // it does not outrank a removal or a change the group made since.
            let version: HLC
            if let setAt = o.setAt {
                version = HLC(millis: UInt64(max(0, min((setAt * 1000).rounded(), Double(HLC.maxMillis)))))
                if let old = overrides[o.pattern], old.version >= version { continue }
                clock.observe(version)
            } else {
                version = clock.tick(wallMillis: wallMillis)
            }
            let e = OverrideEntry(
                pattern: o.pattern, state: o.state, weightFactor: o.weightFactor, origin: origin, source: source, version: version,
                reason: reason, expiresMillis: expires)
            if (try? merge(.override(e), nowMillis: wallMillis)) == true { out.append(.override(e)) }
        }
        for (pattern, old) in overrides.sorted(by: { $0.key < $1.key }) where old.origin == origin && !old.removed && last[pattern] == nil {
            var e = old
            e.removed = true
            e.version = clock.tick(wallMillis: wallMillis)
            overrides[pattern] = e
            out.append(.override(e))
        }
        return out
    }

    // MARK: The view selection reads

    /// The overrides in force at `nowMillis` (not removed, not expired), oldest first (a later
    /// matching one wins).
    public func adminOverrides(nowMillis: UInt64) -> [AdminOverride] {
        HealthFold.overrides(overrides, nowMillis: nowMillis)
    }

    /// Removes the override for `pattern`, whoever set it: a tombstone written by `origin`.
    /// Returns the entry to gossip, or nil when there is no live override for it.
    public mutating func removeOverride(pattern: String, origin: String, clock: inout HybridClock, wallMillis: UInt64) -> Entry? {
        guard var e = overrides[pattern], !e.removed else { return nil }
        e.removed = true
        e.origin = origin
        e.source = "removed"
        e.version = clock.tick(wallMillis: wallMillis)
        overrides[pattern] = e
        return .override(e)
    }

    /// Per member of this instance's configuration (`definitions`), the observations that
    /// count, from observers with the same member definition, best tier first:
    /// 1. its current probers that are live;
    /// 2. else any live observer (a hand-over: whoever probed it before keeps counting until
    ///    a new prober has reported, so there is no gap);
    /// 3. else the last results of observers that are no longer live (kept until they are
    ///    forgotten), rather than nothing: a member that was down does not come back up just
    ///    because its prober died;
    /// 4. else provisional entries (checks' initial states), from anyone.
    public func view(live: Set<String>, probers: [String: [String]], definitions: [String: UInt64]) -> [String: MemberObservations] {
        var checksBy: [String: [CheckEntry]] = [:]
        var agentsBy: [String: [AgentEntry]] = [:]
        for e in checks.values where !e.withdrawn && definitions[e.member] == e.definition && isCurrent(observer: e.observer, boot: e.boot) {
            checksBy[e.member, default: []].append(e)
        }
        for e in agents.values where !e.withdrawn && definitions[e.member] == e.definition && isCurrent(observer: e.observer, boot: e.boot) {
            agentsBy[e.member, default: []].append(e)
        }
        var out: [String: MemberObservations] = [:]
        for member in definitions.keys {
            let assigned = Set(probers[member] ?? [])
            let cs = checksBy[member] ?? []
            let ags = agentsBy[member] ?? []
            var o = MemberObservations(probers: probers[member] ?? [])
            let real = cs.filter { !$0.provisional }
            let tiers: [(String) -> Bool] = [{ assigned.contains($0) && live.contains($0) }, { live.contains($0) }, { _ in true }]
            for (i, keep) in (tiers + [{ _ in true }]).enumerated() {
                let c = (i < 3 ? real : cs).filter { keep($0.observer) }
                let a = i < 3 ? ags.filter { keep($0.observer) } : []
                guard !c.isEmpty || !a.isEmpty else { continue }
                o.checks = c.sorted { ($0.observer, $0.check) < ($1.observer, $1.check) }.map {
                    CheckObservation(
                        check: $0.check, up: $0.up, reason: $0.reason, observer: $0.observer, version: $0.version.raw, at: Double($0.version.millis) / 1000,
                        provisional: $0.provisional)
                }
                o.agents = a.sorted { $0.observer < $1.observer }.map {
                    AgentObservation(state: $0.state, weightFactor: $0.weightFactor, detail: $0.detail, observer: $0.observer, at: Double($0.version.millis) / 1000)
                }
                break
            }
            if !o.checks.isEmpty || !o.agents.isEmpty || !o.probers.isEmpty { out[member] = o }
        }
        return out
    }

    /// Per member, the observers that have a current (not withdrawn, this life's) result for it.
    public func reporters() -> [String: Set<String>] {
        var out: [String: Set<String>] = [:]
        for e in checks.values where !e.withdrawn && isCurrent(observer: e.observer, boot: e.boot) { out[e.member, default: []].insert(e.observer) }
        for e in agents.values where !e.withdrawn && isCurrent(observer: e.observer, boot: e.boot) { out[e.member, default: []].insert(e.observer) }
        return out
    }
}
