import Health
import Gossip

/// A moment as the core sees it: monotonic seconds (SWIM's timers) and wall milliseconds
/// (ledger versions). The shell reads both clocks; a simulator makes both up.
public struct GroupTime: Sendable, Equatable {
    public var monotonic: Double
    public var wallMillis: UInt64

    public init(monotonic: Double, wallMillis: UInt64) {
        self.monotonic = monotonic
        self.wallMillis = wallMillis
    }
}

/// What the core asks its shell to do.
public enum GroupEffect: Sendable, Equatable {
    /// Send a gossip datagram (sealed by the shell) to a gossip address.
    case send(Packet, to: String)
    /// Open a state exchange with a peer: send `request`, hand the reply (or the failure) back
    /// with `exchanged(peer:address:reply:sender:now:)`.
    case exchange(peer: String, address: String, request: FullState)
    /// The fold's inputs changed: hand them to the supervisor.
    case publish(HealthInputs)
    /// This instance now probes these members.
    case assign(Set<String>)
    /// A line for the log.
    case log(GroupLog)
    /// A message or entry was refused: count it by reason and log it once per peer and reason.
    case dropped(reason: String, from: String, detail: String)
    /// A peer was forgotten (dead past `forgetAfter`): the shell drops its replay window.
    case forgot(peer: String)
    /// The number of live members (this instance included) changed.
    case live(Int)
}

/// A log line of the core.
public struct GroupLog: Sendable, Equatable {
    public enum Level: Sendable, Equatable { case info, notice, warning }
    public var level: Level
    public var message: String

    public init(_ level: Level, _ message: String) {
        self.level = level
        self.message = message
    }
}

/// The group's control core as one pure value: SWIM membership, the health ledger and its
/// lives, which members this instance probes (rendezvous among the alive, with hand-over),
/// anti-entropy bookkeeping (one exchange per peer at a time, pushes that wait for it), and
/// when to publish the fold's inputs. Events in, effects out; time is passed in and the only
/// randomness is SWIM's seeded generator, so a simulator drives a whole group of these with no
/// sockets and no sleeps (`Tests/ControlTests/GroupSimulator.swift`). `ControlCore` holds it.
public struct GroupCore: Sendable {
    public let name: String
    /// This life's boot id (its start time in milliseconds).
    public let boot: UInt64
    public private(set) var cluster: ClusterConfig?
    public private(set) var swim: SWIM?
    public private(set) var ledger = Ledger()
    private var clock = HybridClock()
    public private(set) var definitions: [String: UInt64] = [:]
    public private(set) var digest: UInt64 = 0
    /// The members this instance probes, and every member's probers.
    public private(set) var probing: Set<String> = []
    public private(set) var probers: [String: [String]] = [:]
    /// Something the fold reads changed since the last `flush`.
    public private(set) var dirty = false
    private var forgotten = Set<String>()
    /// Each peer's state when it last changed, to see it come back.
    private var peerStates: [String: PeerState] = [:]
    private var loggedDigests = Set<String>()
    /// Exchanges under way: peer -> the writers whose entries that exchange pushes.
    private var inFlight: [String: Set<String>] = [:]
    /// Writers whose entries go to a peer once its exchange under way is done.
    private var pendingPush: [String: Set<String>] = [:]
    private var lastHousekeeping = 0.0
    /// Peers back alive (or first seen) whose state this instance has not had from them since:
    /// peer -> when. Until an exchange with the peer (or its life entry) arrives they neither
    /// probe nor count: gossip can say a restarted peer is alive before its new life is known
    /// here, and its previous life's results would count again meanwhile.
    private var confirming: [String: Double] = [:]
    /// How long a peer waits for that at most (its exchanges may be blocked while gossip passes).
    public static let confirmWithin = 10.0
    private var stopped = false
    /// Latency entries merged since the last publication (published at most once a second).
    private var latencyDirty = false
    private var lastLatencyPublish = -Double.infinity
    /// The wall time of the latest event (the latency map's age cutoff).
    private var wallMillis: UInt64 = 0
    /// Latency entries alone make a new publication at most this often.
    public static let latencyPublishInterval = 1.0
    /// Latency entries too old to count are dropped this often.
    public static let latencyPruneInterval = 60.0
    private var lastLatencyPrune = 0.0
    /// How long a dead peer's observations are kept as a last resort.
    public let forgetAfter: Double

    /// More new local entries than this at once (a first round of checks, a hand-over) go to
    /// every live peer in an exchange instead of the gossip queue: gossip would send each of
    /// them to 3 peers for 4 x log10(n+1) ticks, about 11 to a packet, and take minutes.
    public static let bulkEntries = 32

    /// - Parameters:
    ///   - address: this instance's gossip address (nil for a lone instance: no SWIM).
    ///   - incarnation: above any earlier run's (the shell uses its start time in seconds).
    public init(
        name: String, boot: UInt64, cluster: ClusterConfig?, address: String?, incarnation: UInt64, seed: UInt64, forgetAfter: Double = 60,
        now: GroupTime
    ) {
        self.name = name
        self.boot = boot
        self.cluster = cluster
        self.forgetAfter = forgetAfter
        if let cluster, let address {
            swim = SWIM(
                name: name, address: address, incarnation: incarnation, digest: 0, seeds: cluster.peers, settings: cluster.settings, seed: seed,
                now: now.monotonic)
        }
        lastHousekeeping = now.monotonic
    }

    /// This instance and the peers held alive whose current state this instance has had.
    public var alive: [String] {
        guard let s = swim else { return [name] }
        return confirming.isEmpty ? s.alive : s.alive.filter { confirming[$0] == nil }
    }
    /// This instance and the peers not known dead (suspected ones included).
    public var live: [String] { swim?.live ?? [name] }

    // MARK: Events

    /// Starts this life: the members to check and the configuration's digest. The new life is
    /// recorded first, so the join's exchanges carry it.
    public mutating func start(definitions: [String: UInt64], digest: UInt64, now: GroupTime) -> [GroupEffect] {
        self.definitions = definitions
        self.digest = digest
        swim?.setDigest(digest)
        _ = ledger.recordLife(observer: name, boot: boot, clock: &clock, wallMillis: now.wallMillis)
        var out: [GroupEffect] = []
        reassign(&out)
        dirty = true
        return out
    }

    /// Cold start: an exchange with every configured peer.
    public mutating func join(now: GroupTime) -> [GroupEffect] {
        var out: [GroupEffect] = []
        for (peer, address) in (swim?.seeds ?? [:]).sorted(by: { $0.key < $1.key }) { pushPull(peer: peer, address: address, &out) }
        return out
    }

    /// The protocol's clock (every 20 ms in the shell); housekeeping once a second.
    public mutating func tick(now: GroupTime) -> [GroupEffect] {
        guard !stopped else { return [] }
        wallMillis = now.wallMillis
        if latencyDirty && now.monotonic - lastLatencyPublish >= Self.latencyPublishInterval {
            latencyDirty = false
            dirty = true
        }
        var out: [GroupEffect] = []
        if var s = swim {
            let d = s.tick(now: now.monotonic)
            swim = s
            handle(d, now: now, &out)
        }
        if now.monotonic - lastHousekeeping >= 1 {
            lastHousekeeping = now.monotonic
            housekeeping(now: now, &out)
        }
        return out
    }

    /// Publishes the fold's inputs if anything changed (the shell calls it 20 ms after the
    /// first change, so a burst of changes is one publication).
    public mutating func flush(now: GroupTime) -> [GroupEffect] {
        guard dirty, !stopped else { return [] }
        wallMillis = now.wallMillis
        var out: [GroupEffect] = []
        reassign(&out)
        dirty = false
        latencyDirty = false
        lastLatencyPublish = now.monotonic
        out.append(.publish(inputs))
        return out
    }

    /// A gossip packet from `sender` at gossip address `from` (opened and decoded by the shell).
    public mutating func received(_ packet: Packet, sender: String, from: String, now: GroupTime) -> [GroupEffect] {
        guard !stopped, var s = swim else { return [] }
        let d = s.receive(packet, sender: sender, from: from, now: now.monotonic)
        swim = s
        var out: [GroupEffect] = []
        handle(d, now: now, &out)
        return out
    }

    /// This instance's own check and agent results.
    public mutating func recordLocal(_ observations: [String: MemberObservations], now: GroupTime) -> [GroupEffect] {
        let entries = ledger.recordLocal(
            observer: name, boot: boot, observations: observations, definitions: definitions, clock: &clock, wallMillis: now.wallMillis)
        var out: [GroupEffect] = []
        spread(entries, &out)
        return out
    }

    /// This instance's latency rows (from its `LatencyBook`): always through the gossip queue,
    /// never a bulk exchange, so they add a bounded number of bytes per second.
    public mutating func recordLatency(_ rows: [LatencyRow], now: GroupTime) -> [GroupEffect] {
        wallMillis = now.wallMillis
        let entries = ledger.recordLatency(observer: name, boot: boot, rows: rows, clock: &clock, wallMillis: now.wallMillis)
        guard !entries.isEmpty else { return [] }
        for e in entries { swim?.broadcast(data: e.key, bytes: LedgerCodec.encode(e), lean: e.gossipsLean) }
        latencyDirty = true
        return []
    }

    /// This instance's admin state file, as registers for the whole group.
    public mutating func recordOverrides(_ overrides: [AdminOverride], now: GroupTime) -> [GroupEffect] {
        var out: [GroupEffect] = []
        spread(ledger.recordOverrides(origin: name, overrides: overrides, clock: &clock, wallMillis: now.wallMillis), &out)
        return out
    }

    /// Removes the group's override for `pattern`, whoever set it (a tombstone written here).
    public mutating func removeOverride(pattern: String, now: GroupTime) -> (removed: Bool, effects: [GroupEffect]) {
        guard let e = ledger.removeOverride(pattern: pattern, origin: name, clock: &clock, wallMillis: now.wallMillis) else { return (false, []) }
        var out: [GroupEffect] = []
        spread([e], &out)
        return (true, out)
    }

    /// A reload: new members, digest, or peer list.
    public mutating func configure(definitions: [String: UInt64], digest: UInt64, cluster: ClusterConfig?, now: GroupTime) -> [GroupEffect] {
        self.definitions = definitions
        self.digest = digest
        if let cluster, self.cluster != nil {
            self.cluster = cluster
            swim?.setSeeds(cluster.peers, now: now.monotonic)
        }
        swim?.setDigest(digest)
        var out: [GroupEffect] = []
        reassign(&out)
        dirty = true
        return out
    }

    /// An exchange this core asked for ended: `reply` from `sender`, or nil when it failed.
    public mutating func exchanged(peer: String, address: String, reply: FullState?, sender: String?, now: GroupTime) -> [GroupEffect] {
        guard let push = inFlight.removeValue(forKey: peer) else { return [] }
        guard let reply, let sender, !stopped else {
            pendingPush[peer] = nil
            return []
        }
        var out: [GroupEffect] = []
        merge(reply, sender: sender, address: address, now: now, &out)
        confirm(sender)
        var missing = push.isEmpty ? ledger.differing(from: reply.summaries) : []
        missing.formUnion(pendingPush.removeValue(forKey: peer) ?? [])
        if !missing.isEmpty { pushPull(peer: peer, address: address, push: missing, &out) }
        return out
    }

    /// A peer's exchange request (`request`, merged here) or an explain query (nil): the reply.
    public mutating func serve(request: FullState?, sender: String, origin: String, now: GroupTime) -> (reply: FullState, effects: [GroupEffect]) {
        var out: [GroupEffect] = []
        var writers: Set<String>?
        if let request {
            let address = request.members.lazy.compactMap { u -> String? in
                if case let .alive(n, a, _, _) = u, n == sender { return a }
                return nil
            }.first
            merge(request, sender: sender, address: address ?? origin, now: now, &out)
            confirm(sender)
            writers = ledger.differing(from: request.summaries)
        }
        return (localState(writers: writers), out)
    }

    /// Leaves the group (peers hear it at once instead of suspecting).
    public mutating func leave(now: GroupTime) -> [GroupEffect] {
        var out: [GroupEffect] = []
        if var s = swim {
            let d = s.leave(now: now.monotonic)
            swim = s
            handle(d, now: now, &out)
        }
        stopped = true
        return out
    }

    // MARK: What the shell reads

    /// The fold's inputs now.
    public var inputs: HealthInputs {
        HealthFold.inputs(ledger: ledger, alive: Set(alive), probers: probers, definitions: definitions, policy: cluster?.verdict ?? .majority,
                          regions: cluster?.regions ?? .none, nowMillis: wallMillis)
    }

    /// Every peer (not this instance), sorted by name.
    public var peers: [Peer] { (swim?.peers.values).map { $0.sorted { $0.name < $1.name } } ?? [] }

    // MARK: Policy

    private mutating func handle(_ directives: [Directive], now: GroupTime, _ out: inout [GroupEffect]) {
        var membership = false
        for d in directives {
            switch d {
            case let .send(p, to): out.append(.send(p, to: to))
            case let .pushPull(peer, address): pushPull(peer: peer, address: address, &out)
            case .changed(let p):
                membership = true
                noteChange(p, now: now, &out)
            case .data(let bytes): mergeData(bytes, now: now, &out)
            case .refuted(let i): out.append(.log(GroupLog(.notice, "gossip: refuted a suspicion of this instance (incarnation \(i))")))
            }
        }
        if membership {
            out.append(.live(swim?.live.count ?? 1))
            reassign(&out)
            dirty = true
        }
    }

    private mutating func noteChange(_ p: Peer, now: GroupTime, _ out: inout [GroupEffect]) {
        let before = peerStates.updateValue(p.state, forKey: p.name)
        if p.state != .alive { confirming[p.name] = nil }
        switch p.state {
        case .alive:
            forgotten.remove(p.name)
            if before != .alive { confirming[p.name] = now.monotonic }
            // Back from a suspicion, a death or a partition (or first seen): what either side
            // wrote meanwhile, gossip may have dropped; one exchange of summaries mends it now
            // rather than at the next periodic exchange.
            if before != .alive { pushPull(peer: p.name, address: p.address, &out) }
            out.append(.log(GroupLog(.notice, "gossip: peer \(p.name) is alive (\(p.address), incarnation \(p.incarnation))")))
            if p.digest != digest, loggedDigests.insert("\(p.name)/\(p.digest)").inserted {
                out.append(.log(GroupLog(
                    .warning, "gossip: peer \(p.name) has a different pool configuration: its observations count only for members defined the same way")))
            }
        case .suspect: out.append(.log(GroupLog(.warning, "gossip: peer \(p.name) is suspected (no answer to direct or indirect probes)")))
        case .dead: out.append(.log(GroupLog(.warning, "gossip: peer \(p.name) is dead")))
        case .left: out.append(.log(GroupLog(.notice, "gossip: peer \(p.name) left the group")))
        }
    }

    private mutating func spread(_ entries: [Ledger.Entry], _ out: inout [GroupEffect]) {
        guard !entries.isEmpty else { return }
        if let s = swim {
            if entries.count > Self.bulkEntries {
                for p in s.peers.values.sorted(by: { $0.name < $1.name }) where p.state.isLive {
                    pushPull(peer: p.name, address: p.address, push: [name], &out)
                }
            } else {
                for e in entries { swim?.broadcast(data: e.key, bytes: LedgerCodec.encode(e), lean: e.gossipsLean) }
            }
        }
        dirty = true
    }

    private mutating func mergeData(_ bytes: [UInt8], now: GroupTime, _ out: inout [GroupEffect]) {
        do {
            let e = try LedgerCodec.decode(bytes)
            if try ledger.merge(e, nowMillis: now.wallMillis) {
                clock.observe(e.version)
                if case .life(let l) = e { confirm(l.observer) }
                // Epidemic spread: what was news here is news to others.
                swim?.broadcast(data: e.key, bytes: bytes, lean: e.gossipsLean)
                if case .latency = e { latencyDirty = true } else { dirty = true }
            }
        } catch let e as DecodeError {
            out.append(.dropped(reason: "malformed entry", from: "gossip", detail: "\(e)"))
        } catch {
            out.append(.dropped(reason: "rejected entry", from: "gossip", detail: "\(error)"))
        }
    }

    /// Forgets the observations of peers dead or gone for `forgetAfter`.
    private mutating func housekeeping(now: GroupTime, _ out: inout [GroupEffect]) {
        if now.monotonic - lastLatencyPrune >= Self.latencyPruneInterval {
            lastLatencyPrune = now.monotonic
            if ledger.pruneLatency(nowMillis: now.wallMillis) > 0 { latencyDirty = true }
        }
        guard let s = swim else { return }
        for (peer, since) in confirming where now.monotonic - since >= Self.confirmWithin { confirm(peer) }
        for p in s.peers.values.sorted(by: { $0.name < $1.name })
        where !p.state.isLive && p.incarnation > 0 && now.monotonic - p.since > forgetAfter && !forgotten.contains(p.name) {
            forgotten.insert(p.name)
            let n = ledger.forget(observer: p.name)
            out.append(.forgot(peer: p.name))
            if n > 0 {
                out.append(.log(GroupLog(.notice, "gossip: forgot \(n) observations of \(p.name), \(p.state.rawValue) for \(Int(now.monotonic - p.since)) s")))
                dirty = true
            }
        }
        reassign(&out)
    }

    /// `peer`'s current state arrived: it probes and counts again.
    private mutating func confirm(_ peer: String) {
        guard confirming.removeValue(forKey: peer) != nil else { return }
        dirty = true
    }

    /// Which members this instance probes: those whose rendezvous probers (among the alive)
    /// include it, plus those it probed until now whose new probers have not reported yet (no gap).
    private mutating func reassign(_ out: inout [GroupEffect]) {
        var mine = Set<String>()
        var map: [String: [String]] = [:]
        if cluster == nil {
            mine = Set(definitions.keys)
        } else {
            map = HealthFold.probers(
                members: definitions.keys, alive: alive, count: cluster?.probers, perRegion: cluster?.probersPerRegion, regions: cluster?.regions ?? .none)
            let reporters = ledger.reporters()
            for (member, chosen) in map {
                if chosen.contains(name) || (probing.contains(member) && !(reporters[member] ?? []).contains(where: { chosen.contains($0) })) {
                    mine.insert(member)
                }
            }
        }
        if map != probers {
            probers = map
            dirty = true
        }
        guard mine != probing else { return }
        let gained = mine.subtracting(probing).count
        let lost = probing.subtracting(mine).count
        probing = mine
        if cluster != nil { out.append(.log(GroupLog(.info, "gossip: this instance probes \(mine.count) of \(definitions.count) members (+\(gained) -\(lost))"))) }
        out.append(.assign(mine))
    }

    /// Starts an exchange with a peer unless one is under way (its pushes then wait for it).
    private mutating func pushPull(peer: String, address: String, push: Set<String> = [], _ out: inout [GroupEffect]) {
        guard !stopped else { return }
        if inFlight[peer] != nil {
            if !push.isEmpty { pendingPush[peer, default: []].formUnion(push) }
            return
        }
        inFlight[peer] = push
        out.append(.exchange(peer: peer, address: address, request: localState(writers: push)))
    }

    /// This instance's state for the other side of an exchange: members, the ledger summary,
    /// and the entries of `writers` (nil: every entry, for a query).
    private func localState(writers: Set<String>?) -> FullState {
        var entries = writers.map { ledger.entries(writtenBy: $0) } ?? ledger.entries()
        // This instance's life always goes along (one small entry): the other side must learn
        // of it in the same exchange that tells it this instance is alive, or it would count
        // this instance's previous life's results until the next exchange.
        if let life = ledger.lives[name], writers?.contains(name) == false { entries.append(.life(life)) }
        return FullState(members: swim?.fullState() ?? [], entries: entries.map(LedgerCodec.encode), summaries: ledger.summaries())
    }

    /// Merges a peer's members and entries.
    private mutating func merge(_ state: FullState, sender: String, address: String, now: GroupTime, _ out: inout [GroupEffect]) {
        guard var s = swim else { return }
        let d = s.merge(state: state.members, from: sender, address: address, now: now.monotonic)
        swim = s
        var rejected = 0
        for raw in state.entries {
            guard let e = try? LedgerCodec.decode(raw) else {
                rejected += 1
                continue
            }
            do {
                if try ledger.merge(e, nowMillis: now.wallMillis) {
                    clock.observe(e.version)
                    dirty = true
                }
            } catch {
                rejected += 1
            }
        }
        if rejected > 0 { out.append(.dropped(reason: "rejected entries", from: sender, detail: "\(rejected) in a state of \(state.entries.count)")) }
        handle(d, now: now, &out)
    }
}
