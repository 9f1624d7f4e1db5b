import Testing
@testable import Health

@Suite("Hybrid logical clock")
struct HLCTests {
    @Test func neverGoesBackAndOrdersAfterWhatItSaw() {
        var c = HybridClock()
        let a = c.tick(wallMillis: 1000)
        let b = c.tick(wallMillis: 900)  // the wall clock stepped back
        #expect(b > a)
        c.observe(HLC(millis: 5000, counter: 3))
        let d = c.tick(wallMillis: 1001)
        #expect(d > HLC(millis: 5000, counter: 3))
        #expect(c.tick(wallMillis: 6000) == HLC(millis: 6000))
    }
}

@Suite("Verdict policies")
struct VerdictTests {
    func member(_ views: [String: Bool], agents: [String: (AgentReply.State?, Double?)] = [:]) -> MemberObservations {
        MemberObservations(
            checks: views.map { CheckObservation(check: "tcp:80", up: $0.value, reason: $0.value ? "ok" : "refused", observer: $0.key, version: 1, at: 0) },
            agents: agents.map { AgentObservation(state: $0.value.0, weightFactor: $0.value.1, detail: "d", observer: $0.key, at: 0) })
    }

    @Test(arguments: [
        (VerdictPolicy.majority, 1, 2, false), (.majority, 2, 3, true), (.majority, 1, 3, false), (.majority, 1, 1, true),
        (.any, 1, 3, true), (.all, 2, 3, false), (.all, 3, 3, true), (.count(2), 2, 5, true), (.count(2), 1, 5, false), (.count(3), 2, 2, true),
        (.majority, 0, 3, false),
    ])
    func policies(policy: VerdictPolicy, down: Int, voters: Int, expected: Bool) {
        #expect(policy.isDown(down: down, voters: voters) == expected)
    }

    @Test func parses() {
        #expect(VerdictPolicy("majority") == .majority)
        #expect(VerdictPolicy("ALL") == .all)
        #expect(VerdictPolicy("3") == .count(3))
        #expect(VerdictPolicy("0") == nil && VerdictPolicy("most") == nil)
    }

    @Test func foldCountsObserversNotChecks() {
        let split = member(["a": false, "b": true])
        #expect(Verdict.fold(split, policy: .majority).state == .up)
        #expect(Verdict.fold(split, policy: .any).state == .down)
        let s = Verdict.fold(member(["a": false, "b": false, "c": true]), policy: .majority)
        #expect(s.state == .down)
        #expect(s.source == "check tcp:80: refused (2 of 3 observers, majority)")
    }

    @Test func agentWeightsFoldToTheMedianAndDrainByMajority() {
        let m = member(["a": true, "b": true, "c": true], agents: ["a": (nil, 0.2), "b": (.drain, 0.5), "c": (.drain, 0.9)])
        let s = Verdict.fold(m, policy: .majority)
        #expect(s.state == .drain)
        #expect(s.weightFactor == 0.5)
        let one = member(["a": true, "b": true], agents: ["a": (.drain, nil), "b": (nil, nil)])
        #expect(Verdict.fold(one, policy: .majority).state == .up)
    }

    @Test func oneObserverBehavesAsALoneInstance() {
        #expect(Verdict.fold(member(["a": false]), policy: .majority) == MemberStatus(state: .down, source: "check tcp:80: refused"))
    }
}

@Suite("Rendezvous probers")
struct RendezvousTests {
    let peers = (1...5).map { "ns\($0)" }

    @Test func sameChoiceEverywhereAndBalanced() {
        var load: [String: Int] = [:]
        for i in 0..<3000 {
            let c = Rendezvous.choose(member: "pool/site/m\(i)", from: peers, count: 2)
            #expect(c.count == 2 && Set(c).count == 2)
            #expect(c == Rendezvous.choose(member: "pool/site/m\(i)", from: peers.reversed(), count: 2))
            for p in c { load[p, default: 0] += 1 }
        }
        // 6,000 probes over 5 peers: 1,200 each expected.
        #expect(load.values.allSatisfy { (1080...1320).contains($0) }, "\(load)")
    }

    @Test func onlyTheLeaversMembersMove() {
        var moved = 0
        for i in 0..<2000 {
            let before = Rendezvous.choose(member: "m\(i)", from: peers, count: 2)
            let after = Rendezvous.choose(member: "m\(i)", from: peers.filter { $0 != "ns3" }, count: 2)
            if before.contains("ns3") { moved += 1 } else { #expect(before == after) }
            #expect(Set(before).subtracting(["ns3"]).isSubset(of: Set(after)))
        }
        #expect(moved > 0)
        #expect(Rendezvous.choose(member: "m", from: peers, count: nil).count == 5)
    }

    @Test func scoresAreStableAcrossProcesses() {
        // Fixed values: a change here means instances of different versions disagree.
        #expect(StableHash.of("") == StableHash.mix(0xcbf2_9ce4_8422_2325))
        #expect(Rendezvous.score(member: "www/fra/a", peer: "ns1") == Rendezvous.score(member: "www/fra/a", peer: "ns1"))
        #expect(Rendezvous.score(member: "www/fra/a", peer: "ns1") != Rendezvous.score(member: "www/fra/a", peer: "ns2"))
    }
}

@Suite("Ledger")
struct LedgerTests {
    func check(_ observer: String, _ member: String, up: Bool, v: UInt64, def: UInt64 = 1, withdrawn: Bool = false) -> Ledger.Entry {
        .check(Ledger.CheckEntry(observer: observer, member: member, check: "tcp:80", up: up, reason: up ? "ok" : "refused", definition: def, version: HLC(millis: v), withdrawn: withdrawn))
    }

    @Test func mergeIsOrderIndependent() throws {
        let entries = [check("a", "m", up: true, v: 1), check("a", "m", up: false, v: 3), check("b", "m", up: true, v: 2), check("a", "m", up: true, v: 2)]
        var x = Ledger()
        var y = Ledger()
        for e in entries { try x.merge(e, nowMillis: 10) }
        for e in entries.reversed() { try y.merge(e, nowMillis: 10) }
        #expect(x == y)
        #expect(x.entryCount == 2)
        #expect(try x.merge(check("a", "m", up: true, v: 3), nowMillis: 10) == false)  // not newer
    }

    @Test func rejectsFarFutureAndBoundsEachObserver() {
        var l = Ledger(limits: .init(entriesPerObserver: 3, overrides: 2, maxFutureMillis: 1000))
        #expect(throws: Ledger.Rejection.future(writer: "a", aheadMillis: 5000)) { try l.merge(check("a", "m", up: true, v: 6000), nowMillis: 1000) }
        for i in 0..<3 { #expect((try? l.merge(check("a", "m\(i)", up: true, v: 1), nowMillis: 10)) == true) }
        #expect(throws: Ledger.Rejection.full(writer: "a")) { try l.merge(check("a", "m9", up: true, v: 1), nowMillis: 10) }
        // Another observer has its own budget; updating an existing key is always fine.
        #expect((try? l.merge(check("b", "m9", up: true, v: 1), nowMillis: 10)) == true)
        #expect((try? l.merge(check("a", "m0", up: false, v: 2), nowMillis: 10)) == true)
        let bad = Ledger.Entry.agent(Ledger.AgentEntry(observer: "c", member: "m", state: nil, weightFactor: 7, detail: "", definition: 1, version: HLC(millis: 1)))
        #expect(throws: Ledger.Rejection.self) { try l.merge(bad, nowMillis: 10) }
    }

    @Test func recordLocalVersionsOnlyChangesAndWithdrawsWhatIsGone() {
        var l = Ledger()
        var clock = HybridClock()
        let up = ["m1": MemberObservations(checks: [CheckObservation(check: "tcp:80", up: true, reason: "ok", observer: "a", version: 1, at: 0)], agent: nil)]
        #expect(l.recordLocal(observer: "a", observations: up, definitions: ["m1": 1], clock: &clock, wallMillis: 100).count == 1)
        #expect(l.recordLocal(observer: "a", observations: up, definitions: ["m1": 1], clock: &clock, wallMillis: 200).isEmpty)
        let out = l.recordLocal(observer: "a", observations: [:], definitions: ["m1": 1], clock: &clock, wallMillis: 300)
        guard case .check(let e)? = out.first else { Issue.record("no withdrawal"); return }
        #expect(e.withdrawn && e.version.millis == 300)
        #expect(l.view(live: ["a"], probers: [:], definitions: ["m1": 1]).isEmpty)
    }

    @Test func viewPrefersLiveProbersThenLiveThenLastKnown() throws {
        var l = Ledger()
        try l.merge(check("old", "m", up: false, v: 1), nowMillis: 10)
        try l.merge(check("dead", "m", up: false, v: 1), nowMillis: 10)
        let defs = ["m": UInt64(1)]
        // Only a non-live observer: its last result stands (down stays down).
        #expect(Verdict.fold(l.view(live: ["x"], probers: ["m": ["x", "y"]], definitions: defs)["m"]!, policy: .majority).state == .down)
        // The old prober is live and the new ones have not reported: the old one counts.
        #expect(l.view(live: ["old", "x"], probers: ["m": ["x", "y"]], definitions: defs)["m"]?.observers == ["old"])
        // A new prober reported: only probers count.
        try l.merge(check("x", "m", up: true, v: 2), nowMillis: 10)
        let v = l.view(live: ["old", "x"], probers: ["m": ["x", "y"]], definitions: defs)["m"]
        #expect(v?.observers == ["x"] && v?.probers == ["x", "y"])
    }

    @Test func differentDefinitionsAreNotMerged() throws {
        var l = Ledger()
        try l.merge(check("a", "m", up: false, v: 1, def: 99), nowMillis: 10)
        try l.merge(check("b", "m", up: true, v: 1, def: 1), nowMillis: 10)
        #expect(l.view(live: ["a", "b"], probers: [:], definitions: ["m": 1])["m"]?.observers == ["b"])
    }

    @Test func overridesAreLastWriterWinsWithTombstones() throws {
        var a = Ledger()
        var b = Ledger()
        var ca = HybridClock()
        var cb = HybridClock()
        let set = a.recordOverrides(origin: "ns1", overrides: [AdminOverride(pattern: "www/*", state: .down, file: "/x/state.txt", line: 1)], clock: &ca, wallMillis: 100)
        for e in set { try b.merge(e, nowMillis: 200) }
        #expect(b.adminOverrides(nowMillis: 0).map(\.pattern) == ["www/*"])
        // ns2 sets the same pattern later: it wins everywhere.
        let later = b.recordOverrides(origin: "ns2", overrides: [AdminOverride(pattern: "www/*", state: .drain, file: "/y/s", line: 4)], clock: &cb, wallMillis: 150)
        for e in later { try a.merge(e, nowMillis: 200) }
        #expect(a.adminOverrides(nowMillis: 0).first?.state == .drain && b.adminOverrides(nowMillis: 0).first?.state == .drain)
        // ns2 removes it: a tombstone, which an older write arriving late cannot undo.
        let removed = b.recordOverrides(origin: "ns2", overrides: [], clock: &cb, wallMillis: 160)
        #expect(removed.count == 1)
        for e in removed + set { try a.merge(e, nowMillis: 200) }
        #expect(a.adminOverrides(nowMillis: 0).isEmpty && b.adminOverrides(nowMillis: 0).isEmpty)
    }

    /// A state-file line that says when it was set keeps that time as its version: after a
    /// restart, a removal (or change) the group made later still wins.
    @Test func setTimeIsTheVersionSoARestartDoesNotResurrect() throws {
        var owner = Ledger()
        var other = Ledger()
        var co = HybridClock()
        var cx = HybridClock()
        let line = AdminOverride(pattern: "app/*", state: .down, reason: "r", expires: 900, setAt: 100, file: "s", line: 1)
        for e in owner.recordOverrides(origin: "ns1", overrides: [line], clock: &co, wallMillis: 100_000) { try other.merge(e, nowMillis: 100_000) }
        #expect(other.overrides["app/*"]?.version == HLC(millis: 100_000) && other.overrides["app/*"]?.reason == "r")
        #expect(other.overrides["app/*"]?.expiresMillis == 900_000)
        // ns2 removes it while ns1 is down.
        let tomb = try #require(other.removeOverride(pattern: "app/*", origin: "ns2", clock: &cx, wallMillis: 200_000))
        // ns1 restarts with its file unchanged, then hears of the removal: it stays removed.
        var restarted = Ledger()
        var cr = HybridClock()
        _ = restarted.recordOverrides(origin: "ns1", overrides: [line], clock: &cr, wallMillis: 300_000)
        try restarted.merge(tomb, nowMillis: 300_000)
        #expect(restarted.adminOverrides(nowMillis: 0).isEmpty && restarted.overrides["app/*"]?.origin == "ns2")
        // Reading the same file again does not write a new version over the removal.
        #expect(restarted.recordOverrides(origin: "ns1", overrides: [line], clock: &cr, wallMillis: 301_000).isEmpty)
        #expect(other.removeOverride(pattern: "nothing", origin: "ns2", clock: &cx, wallMillis: 1) == nil)
    }

    @Test func overridesKeepFileOrder() {
        var l = Ledger()
        var c = HybridClock()
        _ = l.recordOverrides(origin: "ns1", overrides: [
            AdminOverride(pattern: "www/*", state: .down, file: "s", line: 1), AdminOverride(pattern: "www/fra/a", state: .up, file: "s", line: 2),
        ], clock: &c, wallMillis: 100)
        let h = HealthSnapshot(overrides: l.adminOverrides(nowMillis: 0))
        #expect(h.status(of: "www/fra/a").state == .up && h.status(of: "www/iad/b").state == .down)
    }

    @Test func summariesAreOrderIndependentAndFindTheWritersThatDiffer() throws {
        let entries = [check("a", "m1", up: true, v: 1), check("a", "m2", up: false, v: 2), check("b", "m1", up: true, v: 3)]
        var x = Ledger()
        var y = Ledger()
        for e in entries { try x.merge(e, nowMillis: 10) }
        for e in entries.reversed() { try y.merge(e, nowMillis: 10) }
        #expect(x.summaries() == y.summaries())
        #expect(x.differing(from: y.summaries()).isEmpty)
        try y.merge(check("a", "m2", up: true, v: 4), nowMillis: 10)  // a newer version of one entry
        try y.merge(check("c", "m1", up: true, v: 1), nowMillis: 10)  // a writer x lacks
        #expect(x.differing(from: y.summaries()) == ["a", "c"])
        #expect(Set(y.entries(writtenBy: ["a"]).map(\.writer)) == ["a"])
        #expect(y.entries(writtenBy: ["a"]).count == 2)
    }

    @Test func forgetDropsAnObserversEntriesButNotOverrides() throws {
        var l = Ledger()
        var c = HybridClock()
        try l.merge(check("a", "m", up: true, v: 1), nowMillis: 10)
        _ = l.recordOverrides(origin: "a", overrides: [AdminOverride(pattern: "x", state: .down, file: "s", line: 1)], clock: &c, wallMillis: 5)
        #expect(l.forget(observer: "a") == 1)
        #expect(l.entryCount == 1 && l.observers.isEmpty)
    }
}

/// The control plane's findings, each reproduced on the pure values first.
@Suite("Health fold")
struct HealthFoldTests {
    func check(_ observer: String, up: Bool, v: UInt64, boot: UInt64) -> Ledger.Entry {
        .check(Ledger.CheckEntry(observer: observer, member: "m", check: "tcp:80", up: up, reason: up ? "ok" : "refused", definition: 1,
                                 version: HLC(millis: v), boot: boot))
    }

    /// Issue 17, finding 2: a prober killed while its member was up, restarted after the
    /// member died, must not vote "up" with what it saw before the crash.
    @Test func aRestartedProbersEarlierLifeNoLongerCounts() throws {
        var l = Ledger()
        var c = HybridClock()
        let defs = ["m": UInt64(1)]
        try l.merge(.life(Ledger.LifeEntry(observer: "a", boot: 1_000, version: HLC(millis: 1_000))), nowMillis: 50_000)
        try l.merge(check("a", up: true, v: 2_000, boot: 1_000), nowMillis: 50_000)   // a's last word before its crash
        try l.merge(check("b", up: false, v: 30_000, boot: 500), nowMillis: 50_000)   // b saw the member die
        let probers = ["m": ["a", "b"]]
        // Before a is back it is not alive: b's result is the only one from an alive prober.
        #expect(Verdict.fold(l.view(live: ["b"], probers: probers, definitions: defs)["m"]!, policy: .majority).state == .down)
        // a restarts: its new life arrives first (the join), before any result of the new life.
        _ = l.recordLife(observer: "a", boot: 40_000, clock: &c, wallMillis: 40_000)
        let view = try #require(l.view(live: ["a", "b"], probers: probers, definitions: defs)["m"])
        #expect(view.observers == ["b"])
        #expect(Verdict.fold(view, policy: .majority).state == .down)
        // An entry of the old life arriving late (gossip still carrying it) changes nothing.
        try l.merge(check("a", up: true, v: 39_000, boot: 1_000), nowMillis: 50_000)
        #expect(l.view(live: ["a", "b"], probers: probers, definitions: defs)["m"]?.observers == ["b"])
        // A result of the new life counts again.
        try l.merge(check("a", up: false, v: 41_000, boot: 40_000), nowMillis: 50_000)
        #expect(l.view(live: ["a", "b"], probers: probers, definitions: defs)["m"]?.observers == ["a", "b"])
        // An older life never replaces a newer one, whatever its version.
        try l.merge(.life(Ledger.LifeEntry(observer: "a", boot: 1_000, version: HLC(millis: 45_000))), nowMillis: 50_000)
        #expect(l.lives["a"]?.boot == 40_000)
    }

    /// The restarted instance's own results from before the crash come back to it in the
    /// first exchange; its first new round must write them again under the new life.
    @Test func recordLocalRewritesResultsOfAnEarlierLife() throws {
        var l = Ledger()
        var c = HybridClock()
        try l.merge(check("a", up: true, v: 100, boot: 1), nowMillis: 1_000)
        let obs = ["m": MemberObservations(checks: [CheckObservation(check: "tcp:80", up: true, reason: "ok", observer: "a", version: 1, at: 0)], agent: nil)]
        let out = l.recordLocal(observer: "a", boot: 2, observations: obs, definitions: ["m": 1], clock: &c, wallMillis: 1_000)
        guard case .check(let e)? = out.first else { Issue.record("not rewritten"); return }
        #expect(e.boot == 2)
    }

    /// Issue 17, finding 5: an expired override is gone from the fold, whoever folds.
    @Test func anExpiredOverrideIsGoneFromTheFold() throws {
        var l = Ledger()
        var c = HybridClock()
        _ = l.recordOverrides(origin: "e1", overrides: [AdminOverride(pattern: "www/*", state: .drain, expires: 100, setAt: 10, file: "s", line: 1)],
                              clock: &c, wallMillis: 10_000)
        let inputs = HealthFold.inputs(ledger: l, alive: ["e2"], probers: [:], definitions: [:], policy: .majority)
        #expect(HealthFold.snapshot(inputs, nowMillis: 99_999, version: 1).status(of: "www/fra/x").state == .drain)
        #expect(HealthFold.snapshot(inputs, nowMillis: 100_000, version: 1).status(of: "www/fra/x").state == .up)
        #expect(l.adminOverrides(nowMillis: 100_000).isEmpty)
        #expect(HealthFold.nextExpiry(inputs.registers, nowMillis: 50_000) == 100_000)
        #expect(HealthFold.nextExpiry(inputs.registers, nowMillis: 100_000) == nil)
        // The state file's rule is the same rule.
        let o = AdminOverride(pattern: "x", state: .down, expires: 100, file: "s", line: 1)
        #expect(o.isLive(at: 99.999) && !o.isLive(at: 100))
    }

    /// Issue 17, finding 7: a suspected peer neither probes nor counts first.
    @Test func suspectedPeersDoNotProbe() {
        let members = (0..<50).map { "p/s/m\($0)" }
        let all = HealthFold.probers(members: members, alive: ["a", "b", "c", "d", "e"], count: 2)
        let lone = HealthFold.probers(members: members, alive: ["a"], count: 2)
        #expect(all.values.contains { !$0.contains("a") })
        #expect(lone.values.allSatisfy { $0 == ["a"] })
    }

    /// Issue 17, finding 8: an agent wandering by a point or two writes nothing new.
    @Test func agentWeightsInsideTheDeadBandAreNotNews() {
        var l = Ledger()
        var c = HybridClock()
        func report(_ state: AgentReply.State?, _ w: Double?, at t: UInt64) -> Int {
            let obs = ["m": MemberObservations(checks: [], agent: AgentObservation(state: state, weightFactor: w, detail: "\(w ?? -1)", observer: "a", at: 0))]
            return l.recordLocal(observer: "a", observations: obs, definitions: ["m": 1], clock: &c, wallMillis: t).count
        }
        #expect(report(nil, 0.50, at: 1) == 1)
        #expect(report(nil, 0.52, at: 2) == 0)
        #expect(report(nil, 0.46, at: 3) == 0)
        #expect(report(nil, 0.56, at: 4) == 1)   // 6 points from what the group holds
        #expect(report(nil, 0.03, at: 5) == 1)
        #expect(report(nil, 0.0, at: 6) == 1)    // reaching 0 is always news
        #expect(report(.drain, 0.0, at: 7) == 1) // so is a state word
        #expect(report(.drain, 0.02, at: 8) == 1)
        #expect(report(.drain, 0.04, at: 9) == 0)
    }
}
