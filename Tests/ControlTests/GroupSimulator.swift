import GeoTopology
import Health
import PoolConfig
@testable import Gossip
@testable import Control

/// A whole group of `ControlCore`s under virtual time, with what their shells do modelled in a
/// few lines: datagrams delayed 1-5 ms and dropped across a partition, exchanges done at once
/// (TCP), a probe executor per instance that runs the checks of the core's probe list every
/// `checkInterval` against the backends' true state and hands each result to the core (whose
/// monitor book applies rise 1, fall 1), the 20 ms clock, a flush 20 ms after a change, and
/// each instance's answers taken from the last view its core published (so override expiry is
/// the core's). No sockets, no sleeps, one seed: a run is the same every time.
struct GroupSimulator {
    struct InFlight {
        var at: Double
        var from: String
        var to: String
        var packet: Packet
    }

    var cores: [String: ControlCore] = [:]
    /// The view each instance's core last published (what its answers use).
    var views: [String: HealthSnapshot] = [:]
    /// What each instance probes: its core's probe list.
    var assigned: [String: Set<String>] { cores.mapValues { Set($0.share.map(\.memberID)) } }
    var definitions: [String: UInt64]
    /// Member id -> whether its backend answers.
    var backends: [String: Bool]
    var cluster: ClusterConfig
    var addressOf: [String: String] = [:]
    var nameAt: [String: String] = [:]
    var now = 0.0
    let step = 0.01
    let checkInterval = 0.2
    let wallBase: UInt64 = 1_800_000_000_000
    var blocked = Set<[String]>()
    var dead = Set<String>()
    var inFlight: [InFlight] = []
    var flushAt: [String: Double] = [:]
    var lastCheck: [String: Double] = [:]
    var rng: SplitMix64
    var lives = 0
    var logs: [String: [String]] = [:]
    /// Instances that cannot reach any backend (their checks fail) though gossip may still work.
    var cutFromBackends = Set<String>()

    init(count: Int, members: [String], seed: UInt64, configure: (inout ClusterConfig) -> Void = { _ in }) {
        rng = SplitMix64(seed: seed)
        let names = (1...count).map { "n\($0)" }
        for n in names {
            addressOf[n] = "10.0.0.\(n.dropFirst()):7946"
            nameAt[addressOf[n]!] = n
        }
        var settings = SWIMSettings()
        settings.probeInterval = 0.5
        settings.probeTimeout = 0.2
        settings.gossipInterval = 0.1
        settings.pushPullInterval = 10
        settings.rejoinInterval = 1
        cluster = ClusterConfig(peers: addressOf, verdict: .majority, probers: 2, settings: settings)
        configure(&cluster)
        definitions = Dictionary(uniqueKeysWithValues: members.map { ($0, UInt64(1)) })
        backends = Dictionary(uniqueKeysWithValues: members.map { ($0, true) })
        for n in names { start(n) }
    }

    var time: GroupTime { GroupTime(monotonic: now, wallMillis: wallBase + UInt64(now * 1000)) }
    var running: [String] { cores.keys.filter { !dead.contains($0) }.sorted() }
    /// The running instances that answer: a starting instance answers only once it has
    /// published its first view (the server pulls the group's state and runs its first round
    /// of checks before it listens).
    var serving: [String] { running.filter { views[$0] != nil } }

    /// Starts (or restarts, with a new life) instance `n` and joins it to the group.
    mutating func start(_ n: String) {
        lives += 1
        dead.remove(n)
        let group = GroupCore(
            name: n, boot: time.wallMillis + UInt64(lives), cluster: cluster, address: addressOf[n]!, incarnation: 1000 + UInt64(now * 1000),
            seed: rng.next(), now: time)
        var core = ControlCore(group: group, healthVersion: 0)
        let started = core.start(targets: Self.targets(definitions), digest: 7, now: time)
        cores[n] = core
        views[n] = nil
        handle(n, started)
        handle(n, cores[n]!.join(now: time))
        lastCheck[n] = now - checkInterval
    }

    /// Stops instance `n` as kill -9 does: no goodbye.
    mutating func kill(_ n: String) {
        dead.insert(n)
        inFlight.removeAll { $0.from == n || $0.to == n }
        flushAt[n] = nil
    }

    func reachable(_ a: String, _ b: String) -> Bool { !blocked.contains([a, b]) && !dead.contains(a) && !dead.contains(b) }

    mutating func partition(_ a: [String], _ b: [String]) {
        for x in a { for y in b { blocked.insert([x, y]); blocked.insert([y, x]) } }
    }

    mutating func heal() { blocked.removeAll() }

    /// The members of `definitions` as the configuration's checked members: one TCP check each.
    static func targets(_ definitions: [String: UInt64]) -> [MonitorTarget] {
        let check = CheckSpec(kind: .tcp, port: 80, interval: 0.2, timeout: 0.1, rise: 1, fall: 1, initialUp: true, line: 1)
        return definitions.keys.sorted().map { MonitorTarget(memberID: $0, address: IPAddress("192.0.2.1")!, checks: [check], agent: nil) }
    }

    /// The state instance `n`'s answers use for `member` now (its last published view).
    func state(_ member: String, at n: String) -> HealthState {
        guard let v = views[n] else { return .up }
        return v.status(of: member).state
    }

    /// Every running instance sees `member` in `state`.
    func all(_ member: String, _ state: HealthState, among: [String]? = nil) -> Bool {
        (among ?? serving).allSatisfy { self.state(member, at: $0) == state }
    }

    /// Runs for `seconds` of virtual time, or until `done` holds (then returns the time it took);
    /// `every` is asserted by the caller's closure at each step.
    @discardableResult
    mutating func run(for seconds: Double, until done: ((GroupSimulator) -> Bool)? = nil, every: ((GroupSimulator) -> Void)? = nil) -> Double? {
        let start = now
        let end = now + seconds
        while now < end {
            now += step
            deliver()
            for n in running {
                handle(n, cores[n]!.tick(now: time))
                if let at = flushAt[n], at <= now {
                    flushAt[n] = nil
                    handle(n, cores[n]!.flush(now: time))
                }
                if now - (lastCheck[n] ?? 0) >= checkInterval {
                    lastCheck[n] = now
                    check(n)
                }
            }
            every?(self)
            if let done, done(self) { return now - start }
        }
        return done == nil ? now - start : nil
    }

    /// The probe executor of instance `n`: one result per member of its core's probe list.
    private mutating func check(_ n: String) {
        let core = cores[n]!
        for (i, t) in core.share.enumerated() {
            let up = (backends[t.memberID] ?? false) && !cutFromBackends.contains(n)
            let result: ProbeResult = up ? .success("connected") : .failure("refused")
            handle(n, cores[n]!.checkDone(epoch: core.epoch, member: i, check: 0, result: result, elapsed: 0.001, now: time))
        }
    }

    private mutating func deliver() {
        let due = inFlight.filter { $0.at <= now }
        inFlight.removeAll { $0.at <= now }
        for m in due where reachable(m.from, m.to) {
            handle(m.to, cores[m.to]!.received(m.packet, sender: m.from, from: addressOf[m.from]!, now: time))
        }
    }

    mutating func handle(_ n: String, _ effects: [ControlDirective]) {
        guard !dead.contains(n) else { return }
        for e in effects {
            switch e {
            case let .send(p, to):
                guard let dest = nameAt[to], reachable(n, dest) else { continue }
                inFlight.append(InFlight(at: now + 0.001 + 0.004 * rng.unit(), from: n, to: dest, packet: p))
            case let .exchange(peer, address, request):
                guard reachable(n, peer), cores[peer] != nil else {
                    handle(n, cores[n]!.exchanged(peer: peer, address: address, reply: nil, sender: nil, now: time))
                    continue
                }
                let (reply, served) = cores[peer]!.serve(request: request, sender: n, origin: addressOf[n]!, now: time)
                handle(peer, served)
                handle(n, cores[n]!.exchanged(peer: peer, address: address, reply: reply, sender: peer, now: time))
            case .publish(let view, _): views[n] = view
            case .log(let line): logs[n, default: []].append(line.message)
            case .probe, .count, .dropped, .forgot, .live: break
            }
        }
        if cores[n]!.needsFlush && flushAt[n] == nil { flushAt[n] = now + 0.02 }
    }

    /// Sets an override at `n` as its state file would (`expires` in virtual seconds).
    mutating func override(at n: String, pattern: String, state: HealthState, expiresIn: Double) {
        let setAt = Double(time.wallMillis) / 1000
        let o = AdminOverride(pattern: pattern, state: state, reason: "sim", expires: setAt + expiresIn, setAt: setAt, file: "state.txt", line: 1)
        handle(n, cores[n]!.recordOverrides([o], now: time))
    }

    /// Every running instance reloads a configuration with `definitions`.
    mutating func reload(_ definitions: [String: UInt64], digest: UInt64) {
        self.definitions = definitions
        for n in running { handle(n, cores[n]!.configure(targets: Self.targets(definitions), digest: digest, cluster: cluster, now: time)) }
    }
}

extension GroupSimulator {
    /// Latency samples taken in at instance `n` (as its passive tap or the API would).
    mutating func measure(at n: String, _ samples: [LatencySample]) {
        cores[n]!.measured(samples, now: time)
    }
}
