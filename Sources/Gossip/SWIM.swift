import Foundation

/// Timings and sizes of the membership protocol. The defaults are memberlist's LAN profile
/// (probe 1 s, timeout 500 ms, 3 indirect probes, suspicion multiplier 4 and cap 6x, gossip
/// every 200 ms to 3 peers, 4 x log10(n+1) retransmits, push-pull every 30 s).
public struct SWIMSettings: Sendable, Equatable {
    public var probeInterval = 1.0
    public var probeTimeout = 0.5
    public var indirectChecks = 3
    public var suspicionMult = 4.0
    public var suspicionMaxMult = 6.0
    public var gossipInterval = 0.2
    public var gossipFanout = 3
    public var retransmitMult = 4
    public var pushPullInterval = 30.0
    /// How often configured peers that are not alive are contacted again (push-pull), so a
    /// healed partition or a restarted peer rejoins.
    public var rejoinInterval = 5.0
    /// How many of those are contacted each time, picked at random: one exchange with any
    /// member of the other side heals a partition, and a cold start of n instances would
    /// otherwise open n - 1 exchanges each (n squared in all).
    public var rejoinFanout = 3
    /// Lifeguard's local health multiplier cap: a node that misses its own deadlines (an
    /// overloaded machine) stretches its probe interval and timeout up to this factor + 1.
    public var maxHealth = 8
    /// Dead peers still receive gossip this long, so they learn they were declared dead.
    public var gossipToDeadFor = 10.0
    /// Dead peers that are not in the cluster file are forgotten after this long.
    public var reapAfter = 300.0
    /// Octets of updates one packet may carry. The envelope (at most 117 octets with a 64-octet
    /// sender) and the message header (at most 120, a ping-req with a 64-octet target and an
    /// IPv6 address) come on top, within `Limits.packet` (1,400).
    public var updateBudget = 1100
    /// The most updates waiting to be sent; the most-sent are dropped beyond it.
    public var queueLimit = 16384
    /// Packets of distinct updates one gossip tick may send to each peer it picks, when the
    /// queue holds more than one packet's worth (a burst: many members failed at once).
    public var packetsPerTick = 8

    public init() {}
}

/// A peer's membership state (SWIM with suspicion): alive < suspect < dead at one incarnation.
public enum PeerState: String, Sendable, Equatable {
    case alive, suspect, dead, left

    /// Counts as a member of the group (probes, holds a share of the checks).
    public var isLive: Bool { self == .alive || self == .suspect }
}

/// What one instance knows of another.
public struct Peer: Sendable, Equatable {
    public var name: String
    public var address: String
    public var incarnation: UInt64
    public var state: PeerState
    /// When it entered `state` (the core's clock).
    public var since: Double
    /// Its pool configuration digest.
    public var digest: UInt64
}

/// What the core asks its shell to do.
public enum Directive: Sendable, Equatable {
    /// Send a packet to a gossip address.
    case send(Packet, to: String)
    /// Exchange full state with a peer over TCP.
    case pushPull(peer: String, address: String)
    /// A peer's state, address or digest changed.
    case changed(Peer)
    /// A data update arrived (for the ledger).
    case data([UInt8])
    /// This instance refuted a suspicion of itself.
    case refuted(incarnation: UInt64)
}

/// The SWIM membership protocol (Das, Gupta, Motivala 2002) with suspicion, incarnation
/// numbers and Lifeguard's local health multiplier and confirmation-scaled suspicion timeout
/// (Dadgar et al. 2017), plus memberlist's separate fast gossip tick and push-pull
/// anti-entropy. A pure value: time comes in as `now` (seconds, monotonic), randomness from a
/// seeded generator, and every effect goes out as a `Directive`. No sockets, no timers.
public struct SWIM: Sendable {
    public let name: String
    public private(set) var address: String
    public private(set) var incarnation: UInt64
    public private(set) var digest: UInt64
    public let settings: SWIMSettings
    public private(set) var peers: [String: Peer] = [:]
    /// Configured peers (name -> address), contacted again while not alive.
    public private(set) var seeds: [String: String] = [:]
    /// Lifeguard's local health multiplier (0 = healthy).
    public private(set) var health = 0

    struct Probe: Sendable {
        var target: String
        var seq: UInt32
        var timeoutAt: Double
        var endAt: Double
        var indirectSent = false
    }

    struct Relay: Sendable {
        var requester: String
        var seq: UInt32
        var expires: Double
    }

    struct Suspicion: Sendable {
        var start: Double
        var confirmations: Set<String>
        var min: Double
        var max: Double
        var k: Int

        /// Lifeguard: the timeout shrinks from `max` toward `min` with independent confirmations.
        var timeout: Double {
            guard k > 0 else { return min }
            let c = Double(confirmations.count)
            return Swift.max(min, max - (max - min) * log(c + 1) / log(Double(k) + 1))
        }
    }

    struct Queued: Sendable {
        var update: Update
        var transmits: Int
        var id: UInt64
        var lean = false
    }

    private var rng: SplitMix64
    private var probe: Probe?
    private var probeOrder: [String] = []
    private var probeIndex = 0
    private var relays: [UInt32: Relay] = [:]
    private var suspicions: [String: Suspicion] = [:]
    private var queue: [String: Queued] = [:]
    private var queueCounter: UInt64 = 0
    private var seq: UInt32 = 0
    private var nextProbe: Double
    private var nextGossip: Double
    private var nextPushPull: Double
    private var nextRejoin: Double

    /// - Parameters:
    ///   - incarnation: start above any earlier run's (the shell uses its start time in
    ///     seconds), so a restarted instance is never stuck behind its old death.
    ///   - seeds: the cluster file's peers (name -> gossip address), this instance excluded.
    public init(name: String, address: String, incarnation: UInt64, digest: UInt64, seeds: [String: String], settings: SWIMSettings = SWIMSettings(), seed: UInt64, now: Double) {
        self.name = name
        self.address = address
        self.incarnation = incarnation
        self.digest = digest
        self.settings = settings
        rng = SplitMix64(seed: seed)
        nextProbe = now + settings.probeInterval * rng.unit()
        nextGossip = now + settings.gossipInterval
        nextPushPull = now + settings.pushPullInterval * (0.5 + rng.unit())
        nextRejoin = now
        setSeeds(seeds, now: now)
    }

    // MARK: Views

    /// The live members, this instance included, sorted by name.
    /// This instance and the peers not known dead or gone, suspected ones included, sorted.
    public var live: [String] {
        ([name] + peers.values.filter { $0.state.isLive }.map(\.name)).sorted()
    }

    /// This instance and the peers held alive (not suspected), sorted: the instances whose
    /// observations count first and who probe.
    public var alive: [String] {
        ([name] + peers.values.filter { $0.state == .alive }.map(\.name)).sorted()
    }

    /// Every peer's state as updates, this instance first: what a push-pull sends.
    public func fullState() -> [Update] {
        var out: [Update] = [.alive(name: name, address: address, incarnation: incarnation, digest: digest)]
        for p in peers.values.sorted(by: { $0.name < $1.name }) where p.incarnation > 0 {
            switch p.state {
            case .alive: out.append(.alive(name: p.name, address: p.address, incarnation: p.incarnation, digest: p.digest))
            case .suspect: out.append(.suspect(name: p.name, incarnation: p.incarnation, by: name))
            case .dead, .left: out.append(.dead(name: p.name, incarnation: p.incarnation, by: name, left: p.state == .left))
            }
        }
        return out
    }

    // MARK: Configuration

    /// Replaces the configured peers (a cluster file reload). Peers no longer configured that
    /// are not alive are forgotten.
    public mutating func setSeeds(_ seeds: [String: String], now: Double) {
        var s = seeds
        s[name] = nil
        self.seeds = s
        for (n, a) in s where peers[n] == nil {
            // Known only from the file: not a member until it answers (incarnation 0, dead).
            peers[n] = Peer(name: n, address: a, incarnation: 0, state: .dead, since: now, digest: 0)
        }
        for (n, p) in peers where s[n] == nil && !p.state.isLive { peers[n] = nil }
        nextRejoin = now
    }

    /// A new configuration digest (a reload): announced with a new incarnation.
    public mutating func setDigest(_ d: UInt64) {
        guard d != digest else { return }
        digest = d
        incarnation = incarnation == .max ? .max : incarnation + 1
        enqueue(.alive(name: name, address: address, incarnation: incarnation, digest: digest))
    }

    /// Queues an application update (a ledger entry) for dissemination. A `lean` one is sent
    /// in about `retransmitMult x log10(n+1)` packets in all, as memberlist counts, instead of
    /// that many ticks to `gossipFanout` peers each: a third of the transmissions, a little slower.
    public mutating func broadcast(data key: String, bytes: [UInt8], lean: Bool = false) {
        enqueue(.data(key: key, bytes: bytes), lean: lean)
    }

    // MARK: Time

    /// Runs whatever is due at `now`: probe steps, suspicion timeouts, the gossip tick,
    /// push-pull and rejoin attempts. Call it often (every few tens of milliseconds).
    public mutating func tick(now: Double) -> [Directive] {
        var out: [Directive] = []
        stepProbe(now: now, &out)
        for (n, s) in suspicions where now - s.start >= s.timeout {
            suspicions[n] = nil
            guard var p = peers[n], p.state == .suspect else { continue }
            p.state = .dead
            p.since = now
            peers[n] = p
            out.append(.changed(p))
            enqueue(.dead(name: n, incarnation: p.incarnation, by: name, left: false))
        }
        relays = relays.filter { $0.value.expires > now }
        if now >= nextGossip {
            nextGossip = now + settings.gossipInterval
            gossip(now: now, &out)
        }
        if now >= nextPushPull {
            nextPushPull = now + settings.pushPullInterval * (0.75 + 0.5 * rng.unit())
            if let p = pick(1, from: peers.values.filter { $0.state == .alive }.map(\.name)).first, let peer = peers[p] {
                out.append(.pushPull(peer: p, address: peer.address))
            }
        }
        if now >= nextRejoin {
            nextRejoin = now + settings.rejoinInterval
            let absent = seeds.keys.filter { !(peers[$0]?.state.isLive ?? false) }
            for n in pick(settings.rejoinFanout, from: absent) {
                if let address = peers[n]?.address ?? seeds[n] { out.append(.pushPull(peer: n, address: address)) }
            }
        }
        for (n, p) in peers where !p.state.isLive && seeds[n] == nil && now - p.since > settings.reapAfter {
            peers[n] = nil
        }
        return out
    }

    private var scale: Double { Double(1 + health) }

    private mutating func stepProbe(now: Double, _ out: inout [Directive]) {
        if var p = probe {
            if now >= p.endAt {
                probe = nil
                health = min(health + 1, settings.maxHealth)
                suspect(p.target, incarnation: peers[p.target]?.incarnation ?? 0, by: name, now: now, &out)
            } else if now >= p.timeoutAt && !p.indirectSent {
                p.indirectSent = true
                probe = p
                let helpers = pick(settings.indirectChecks, from: peers.values.filter { $0.state == .alive && $0.name != p.target }.map(\.name))
                if let target = peers[p.target] {
                    for h in helpers {
                        guard let helper = peers[h] else { continue }
                        out.append(.send(packet(.pingReq(seq: p.seq, target: p.target, address: target.address)), to: helper.address))
                    }
                }
            }
        }
        guard probe == nil, now >= nextProbe else { return }
        nextProbe = now + settings.probeInterval * scale
        guard let target = nextProbeTarget(), let peer = peers[target] else { return }
        let s = nextSeq()
        probe = Probe(target: target, seq: s, timeoutAt: now + settings.probeTimeout * scale, endAt: now + settings.probeInterval * scale * 0.95)
        out.append(.send(packet(.ping(seq: s, target: target)), to: peer.address))
    }

    /// Round-robin over a shuffled list of live peers, reshuffled each pass (SWIM 4.3).
    private mutating func nextProbeTarget() -> String? {
        for _ in 0..<2 {
            while probeIndex < probeOrder.count {
                let n = probeOrder[probeIndex]
                probeIndex += 1
                if let p = peers[n], p.state.isLive { return n }
            }
            probeOrder = peers.values.filter { $0.state.isLive }.map(\.name).sorted()
            rng.shuffle(&probeOrder)
            probeIndex = 0
        }
        return nil
    }

    private mutating func gossip(now: Double, _ out: inout [Directive]) {
        guard !queue.isEmpty else { return }
        let candidates = peers.values.filter { $0.state.isLive || ($0.state == .dead && $0.incarnation > 0 && now - $0.since < settings.gossipToDeadFor) }
        let targets = pick(settings.gossipFanout, from: candidates.map(\.name))
        guard !targets.isEmpty else { return }
        // One tick is one transmission: the same updates go to every peer picked this tick, so
        // each update reaches about fanout x retransmits peers (memberlist counts per packet,
        // which in small groups spends an update in about one tick).
        var taken = Set<String>()
        for _ in 0..<max(1, settings.packetsPerTick) {
            let updates = takeUpdates(skipping: &taken)
            guard !updates.isEmpty else { return }
            for n in targets {
                guard let p = peers[n] else { continue }
                out.append(.send(Packet(.gossip, updates: updates), to: p.address))
            }
        }
    }

    // MARK: Messages

    /// Handles a packet from `sender`, which came from gossip address `from`.
    public mutating func receive(_ packet: Packet, sender: String, from: String, now: Double) -> [Directive] {
        var out: [Directive] = []
        for u in packet.updates { apply(u, now: now, fromState: false, &out) }
        switch packet.message {
        case let .ping(s, target):
            if target == name { out.append(.send(self.packet(.ack(seq: s)), to: from)) }
        case let .ack(s):
            if let p = probe, p.seq == s {
                probe = nil
                health = max(health - 1, 0)
            } else if let r = relays.removeValue(forKey: s) {
                out.append(.send(self.packet(.ack(seq: r.seq)), to: r.requester))
            }
        case let .pingReq(s, target, address):
            guard target != name else {
                out.append(.send(self.packet(.ack(seq: s)), to: from))
                break
            }
            let mine = nextSeq()
            relays[mine] = Relay(requester: from, seq: s, expires: now + settings.probeInterval * scale)
            out.append(.send(self.packet(.ping(seq: mine, target: target)), to: address))
        case .gossip:
            break
        }
        return out
    }

    /// Merges a peer's full state (push-pull). A remote "dead" counts only as a suspicion, as
    /// in memberlist: this instance judges for itself. Returns, besides the usual directives,
    /// a second push-pull with `peer` when this instance had to refute its own death in that
    /// state, so the peer hears the refutation at once.
    public mutating func merge(state: [Update], from peer: String, address: String, now: Double) -> [Directive] {
        var out: [Directive] = []
        let before = incarnation
        for u in state {
            switch u {
            case let .dead(n, i, by, left) where !left && n != name:
                apply(.suspect(name: n, incarnation: i, by: by), now: now, fromState: true, &out)
            case .data:
                continue
            default:
                apply(u, now: now, fromState: true, &out)
            }
        }
        if incarnation != before { out.append(.pushPull(peer: peer, address: address)) }
        return out
    }

    /// The leave message: this instance is going away (sent to every live peer).
    public mutating func leave(now: Double) -> [Directive] {
        incarnation = incarnation == .max ? .max : incarnation + 1
        let bye = Packet(.gossip, updates: [.dead(name: name, incarnation: incarnation, by: name, left: true)])
        return peers.values.filter { $0.state.isLive }.map { .send(bye, to: $0.address) }
    }

    private mutating func apply(_ u: Update, now: Double, fromState: Bool, _ out: inout [Directive]) {
        switch u {
        case let .alive(n, a, i, d):
            if n == name {
                // Someone says this instance is alive at a higher incarnation (an old run of
                // it, or a name clash): step above it.
                if i > incarnation { refute(above: i, &out) }
                return
            }
            if var p = peers[n] {
                guard i > p.incarnation || (p.incarnation == 0 && i > 0) else { return }
                let wasLive = p.state.isLive
                p.incarnation = i
                p.address = a
                p.digest = d
                if p.state != .alive { p.since = now }
                p.state = .alive
                peers[n] = p
                suspicions[n] = nil
                out.append(.changed(p))
                if !wasLive && !fromState { out.append(.pushPull(peer: n, address: a)) }
            } else {
                guard peers.count < Limits.members else { return }
                let p = Peer(name: n, address: a, incarnation: i, state: .alive, since: now, digest: d)
                peers[n] = p
                out.append(.changed(p))
            }
            enqueue(u)
        case let .suspect(n, i, by):
            if n == name {
                if i >= incarnation { refute(above: i, &out) }
                return
            }
            suspect(n, incarnation: i, by: by, now: now, &out)
        case let .dead(n, i, by, left):
            if n == name {
                if i >= incarnation && !left { refute(above: i, &out) }
                return
            }
            guard var p = peers[n], i >= p.incarnation, p.state.isLive || (left && p.state == .dead && i > p.incarnation) else { return }
            p.incarnation = i
            p.state = left ? .left : .dead
            p.since = now
            peers[n] = p
            suspicions[n] = nil
            out.append(.changed(p))
            enqueue(.dead(name: n, incarnation: i, by: by, left: left))
        case let .data(_, bytes):
            out.append(.data(bytes))
        }
    }

    private mutating func suspect(_ n: String, incarnation i: UInt64, by: String, now: Double, _ out: inout [Directive]) {
        guard var p = peers[n], i >= p.incarnation, p.incarnation > 0 else { return }
        if p.state == .suspect && i == p.incarnation {
            // Another member suspects it too: a confirmation shortens the timeout (Lifeguard).
            if by != name, var s = suspicions[n], !s.confirmations.contains(by), s.confirmations.count < 32 {
                s.confirmations.insert(by)
                suspicions[n] = s
                enqueue(.suspect(name: n, incarnation: i, by: by))
            }
            return
        }
        guard p.state == .alive || (p.state == .suspect && i > p.incarnation) else { return }
        p.incarnation = i
        p.state = .suspect
        p.since = now
        peers[n] = p
        let members = Double(max(live.count, 1))
        let minT = settings.suspicionMult * max(1, log10(members)) * settings.probeInterval
        var k = Int(settings.suspicionMult) - 2
        if live.count - 2 < k { k = 0 }
        suspicions[n] = Suspicion(start: now, confirmations: by == name ? [] : [by], min: minT, max: settings.suspicionMaxMult * minT, k: k)
        out.append(.changed(p))
        enqueue(.suspect(name: n, incarnation: i, by: by))
    }

    private mutating func refute(above i: UInt64, _ out: inout [Directive]) {
        // Saturating: a received incarnation is input, and UInt64.max must not trap.
        incarnation = i == .max ? .max : i + 1
        health = min(health + 1, settings.maxHealth)
        enqueue(.alive(name: name, address: address, incarnation: incarnation, digest: digest))
        out.append(.refuted(incarnation: incarnation))
    }

    // MARK: The send queue

    private var retransmitLimit: Int {
        settings.retransmitMult * Int(ceil(log10(Double(live.count + 1))))
    }

    private mutating func enqueue(_ u: Update, lean: Bool = false) {
        queueCounter += 1
        queue[u.queueKey] = Queued(update: u, transmits: 0, id: queueCounter, lean: lean)
        if queue.count > settings.queueLimit {
            let worst = queue.max { ($0.value.transmits, -Int64(truncatingIfNeeded: $0.value.id)) < ($1.value.transmits, -Int64(truncatingIfNeeded: $1.value.id)) }
            if let worst { queue[worst.key] = nil }
        }
    }

    /// The least-sent updates first (newest first among equals) that fit one packet; each
    /// one's send count goes up, and it leaves the queue at the retransmit limit.
    private mutating func takeUpdates() -> [Update] {
        var none = Set<String>()
        return takeUpdates(skipping: &none)
    }

    /// The same, leaving out the updates in `taken` (already sent this tick) and adding those
    /// it takes.
    private mutating func takeUpdates(skipping taken: inout Set<String>) -> [Update] {
        guard !queue.isEmpty else { return [] }
        let limit = retransmitLimit
        var budget = settings.updateBudget
        var out: [Update] = []
        let ordered = queue.values.sorted { ($0.transmits, -Int64(truncatingIfNeeded: $0.id)) < ($1.transmits, -Int64(truncatingIfNeeded: $1.id)) }
        for q in ordered where !taken.contains(q.update.queueKey) {
            let size = q.update.encodedSize
            guard size <= budget else { continue }
            budget -= size
            out.append(q.update)
            let key = q.update.queueKey
            taken.insert(key)
            let cap = q.lean ? max(1, (limit + settings.gossipFanout - 1) / settings.gossipFanout) : limit
            if q.transmits + 1 >= cap { queue[key] = nil } else { queue[key]?.transmits += 1 }
            if budget < 16 { break }
        }
        return out
    }

    private mutating func packet(_ m: Message) -> Packet { Packet(m, updates: takeUpdates()) }

    private mutating func nextSeq() -> UInt32 {
        seq &+= 1
        return seq
    }

    private mutating func pick(_ k: Int, from names: [String]) -> [String] {
        var list = names.sorted()
        rng.shuffle(&list)
        return Array(list.prefix(k))
    }
}

/// SplitMix64: a small seeded generator, so a simulation with the same seed runs the same.
public struct SplitMix64: Sendable, RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform value in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    public mutating func shuffle(_ a: inout [String]) { a.shuffle(using: &self) }
}
