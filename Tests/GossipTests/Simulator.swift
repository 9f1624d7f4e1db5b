import Health
@testable import Gossip

/// A simulated network of SWIM cores with a virtual clock: every timer runs from `now`, every
/// random choice from one seed, so a run is the same every time. Packets can be lost, delayed,
/// blocked between pairs (a partition), and nodes paused (a stopped process).
struct Simulator {
    struct InFlight {
        var at: Double
        var from: String
        var to: String
        var packet: Packet
    }

    var nodes: [String: SWIM] = [:]
    var ledgers: [String: Ledger] = [:]
    var clocks: [String: HybridClock] = [:]
    var addressOf: [String: String] = [:]
    var nameAt: [String: String] = [:]
    var now = 0.0
    var step = 0.01
    var loss = 0.0
    var delay: ClosedRange<Double> = 0.001...0.005
    var blocked = Set<[String]>()
    var paused = Set<String>()
    var dead = Set<String>()
    var inFlight: [InFlight] = []
    var rng: SplitMix64
    var sent = 0
    var sentBytes = 0
    var pushPulls = 0
    var exchangedEntries = 0

    init(count: Int, seed: UInt64, settings: SWIMSettings = SWIMSettings()) {
        rng = SplitMix64(seed: seed)
        let names = (0..<count).map { String(format: "n%03d", $0) }
        self.names = names
        for n in names {
            addressOf[n] = "10.0.0.\(n):7946"
            nameAt["10.0.0.\(n):7946"] = n
        }
        let seeds = Dictionary(uniqueKeysWithValues: names.map { ($0, addressOf[$0]!) })
        for (i, n) in names.enumerated() {
            nodes[n] = SWIM(name: n, address: addressOf[n]!, incarnation: 1000, digest: 7, seeds: seeds, settings: settings, seed: seed &+ UInt64(i), now: 0)
            ledgers[n] = Ledger()
            clocks[n] = HybridClock()
        }
    }

    /// Every node, sorted (fixed at init: the loop runs over it every step).
    let names: [String]

    func reachable(_ a: String, _ b: String) -> Bool {
        !blocked.contains([a, b]) && !paused.contains(a) && !paused.contains(b) && !dead.contains(a) && !dead.contains(b)
    }

    /// Blocks every path between the two groups.
    mutating func partition(_ a: [String], _ b: [String]) {
        for x in a { for y in b { blocked.insert([x, y]); blocked.insert([y, x]) } }
    }

    mutating func heal() { blocked.removeAll() }

    /// Writes a ledger entry at `node` and queues it for gossip, as the shell does.
    mutating func observe(_ node: String, member: String, up: Bool) {
        var clock = clocks[node]!
        let e = Ledger.Entry.check(Ledger.CheckEntry(
            observer: node, member: member, check: "tcp:80", up: up, reason: up ? "ok" : "refused", definition: 1, version: clock.tick(wallMillis: UInt64(now * 1000) + 1)))
        clocks[node] = clock
        _ = try? ledgers[node]!.merge(e, nowMillis: UInt64(now * 1000) + 1)
        nodes[node]!.broadcast(data: e.key, bytes: LedgerCodec.encode(e))
    }

    /// Publishes `rows` latency rows at `node` (its own observations) and queues them for
    /// gossip, as `GroupCore.recordLatency` does.
    mutating func publishLatency(_ node: String, rows: [LatencyRow]) {
        var clock = clocks[node]!
        let entries = ledgers[node]!.recordLatency(observer: node, boot: 1, rows: rows, clock: &clock, wallMillis: UInt64(now * 1000) + 1)
        clocks[node] = clock
        for e in entries { nodes[node]!.broadcast(data: e.key, bytes: LedgerCodec.encode(e), lean: e.gossipsLean) }
    }

    mutating func run(for seconds: Double, until done: ((Simulator) -> Bool)? = nil) -> Double? {
        let end = now + seconds
        while now < end {
            now += step
            deliver()
            for n in names where !paused.contains(n) && !dead.contains(n) {
                handle(n, nodes[n]!.tick(now: now))
            }
            if let done, done(self) { return now }
        }
        return done == nil ? now : nil
    }

    private mutating func deliver() {
        let due = inFlight.filter { $0.at <= now }
        inFlight.removeAll { $0.at <= now }
        for m in due where reachable(m.from, m.to) {
            handle(m.to, nodes[m.to]!.receive(m.packet, sender: m.from, from: addressOf[m.from]!, now: now))
        }
    }

    private mutating func handle(_ n: String, _ directives: [Directive]) {
        for d in directives {
            switch d {
            case let .send(p, to):
                guard let dest = nameAt[to] else { continue }
                sent += 1
                var w = ByteWriter()
                p.encodeBody(&w)
                sentBytes += w.bytes.count + 117
                if rng.unit() < loss || !reachable(n, dest) { continue }
                inFlight.append(InFlight(at: now + delay.lowerBound + (delay.upperBound - delay.lowerBound) * rng.unit(), from: n, to: dest, packet: p))
            case let .pushPull(peer, _):
                guard reachable(n, peer) else { continue }
                pushPull(n, peer)
            case .data(let bytes):
                guard let e = try? LedgerCodec.decode(bytes) else { continue }
                if (try? ledgers[n]!.merge(e, nowMillis: UInt64(now * 1000) + 60_000)) == true {
                    nodes[n]!.broadcast(data: e.key, bytes: bytes, lean: e.gossipsLean)
                }
            case .changed, .refuted:
                break
            }
        }
    }

    /// A TCP state exchange, done at once, as the shell does it: `a` sends members and its
    /// ledger summary; `b` merges and answers with its members, summary and the entries of the
    /// writers whose summaries differ; `a` merges and pushes the entries `b` still lacks.
    mutating func pushPull(_ a: String, _ b: String) {
        let stateA = nodes[a]!.fullState()
        let summaryA = ledgers[a]!.summaries()
        handle(b, nodes[b]!.merge(state: stateA, from: a, address: addressOf[a]!, now: now))
        let forA = ledgers[b]!.entries(writtenBy: ledgers[b]!.differing(from: summaryA))
        let stateB = nodes[b]!.fullState()
        let summaryB = ledgers[b]!.summaries()
        handle(a, nodes[a]!.merge(state: stateB, from: b, address: addressOf[b]!, now: now))
        for e in forA { _ = try? ledgers[a]!.merge(e, nowMillis: UInt64(now * 1000) + 60_000) }
        let forB = ledgers[a]!.entries(writtenBy: ledgers[a]!.differing(from: summaryB))
        for e in forB { _ = try? ledgers[b]!.merge(e, nowMillis: UInt64(now * 1000) + 60_000) }
        pushPulls += 1
        exchangedEntries += forA.count + forB.count
    }

    // MARK: Views

    func state(of target: String, at observer: String) -> PeerState? { nodes[observer]?.peers[target]?.state }

    /// Every running node sees exactly `members` live.
    func agree(live members: [String]) -> Bool {
        names.filter { !paused.contains($0) && !dead.contains($0) }.allSatisfy { nodes[$0]!.live == members.sorted() }
    }

    func ledgersEqual(among group: [String]) -> Bool {
        guard let first = group.first else { return true }
        let ref = ledgers[first]!.entries().map(LedgerCodec.encode).sorted { $0.lexicographicallyPrecedes($1) }
        return group.dropFirst().allSatisfy { ledgers[$0]!.entries().map(LedgerCodec.encode).sorted { $0.lexicographicallyPrecedes($1) } == ref }
    }
}
