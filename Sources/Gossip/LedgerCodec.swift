import Health

/// The wire form of ledger entries (the `data` updates of gossip and the push-pull state).
public enum LedgerCodec {
    static let states: [AgentReply.State?] = [nil, .up, .drain, .maint, .down]
    static let healthStates: [HealthState] = [.up, .down, .drain]

    public static func encode(_ entry: Ledger.Entry) -> [UInt8] {
        var w = ByteWriter(capacity: 96)
        switch entry {
        case .check(let e):
            // Types 6 and 7 add the observer's boot (its life) to types 1 and 2 (still read, from older peers).
            w.u8(6); w.str8(e.observer); w.str16(e.member); w.str8(e.check)
            w.u8((e.up ? 1 : 0) | (e.withdrawn ? 2 : 0) | (e.provisional ? 4 : 0)); w.str8(e.reason); w.u64(e.definition); w.u64(e.version.raw)
            w.u64(e.boot)
        case .agent(let e):
            w.u8(7); w.str8(e.observer); w.str16(e.member)
            w.u8(UInt8(states.firstIndex(of: e.state) ?? 0)); w.u16(weight(e.weightFactor))
            w.u8(e.withdrawn ? 2 : 0); w.str8(e.detail); w.u64(e.definition); w.u64(e.version.raw)
            w.u64(e.boot)
        case .life(let e):
            w.u8(5); w.str8(e.observer); w.u64(e.boot); w.u64(e.version.raw)
        case .override(let e):
            // Type 4 adds the reason and the expiry to type 3 (still read, from older peers).
            w.u8(4); w.str16(e.pattern); w.u8(UInt8(healthStates.firstIndex(of: e.state) ?? 0)); w.u16(weight(e.weightFactor))
            w.u8(e.removed ? 2 : 0); w.str8(e.origin); w.str8(e.source); w.u64(e.version.raw)
            w.str8(e.reason); w.u64(e.expiresMillis)
        case .latency(let e):
            // Type 8: family flag, 3 or 6 prefix octets, site, RTT (us), samples, version, boot.
            w.u8(8); w.str8(e.observer); w.u8(e.prefix.v6 ? 6 : 4)
            for s in stride(from: e.prefix.v6 ? 40 : 16, through: 0, by: -8) { w.u8(UInt8(truncatingIfNeeded: e.prefix.bits >> UInt64(s))) }
            w.str8(e.site); w.u32(e.rttMicros); w.u32(e.samples); w.u64(e.version.raw); w.u64(e.boot)
        }
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> Ledger.Entry {
        var r = ByteReader(bytes)
        let entry: Ledger.Entry
        let type = try r.u8("entry type")
        switch type {
        case 1, 6:
            let observer = try r.str8("observer", max: Limits.name)
            let member = try r.str16("member", max: 1024)
            let check = try r.str8("check")
            let flags = try r.u8("flags")
            guard flags <= 7 else { throw .badValue(what: "check flags") }
            entry = .check(Ledger.CheckEntry(
                observer: observer, member: member, check: check, up: flags & 1 != 0, reason: try r.str8("reason"),
                definition: try r.u64("definition"), version: HLC(raw: try r.u64("version")), withdrawn: flags & 2 != 0, provisional: flags & 4 != 0,
                boot: type == 6 ? try r.u64("boot") : 0))
        case 2, 7:
            let observer = try r.str8("observer", max: Limits.name)
            let member = try r.str16("member", max: 1024)
            let s = Int(try r.u8("agent state"))
            guard s < states.count else { throw .badValue(what: "agent state") }
            let wf = try weight(r.u16("weight"))
            let flags = try r.u8("flags")
            guard flags == 0 || flags == 2 else { throw .badValue(what: "agent flags") }
            entry = .agent(Ledger.AgentEntry(
                observer: observer, member: member, state: states[s], weightFactor: wf, detail: try r.str8("detail"),
                definition: try r.u64("definition"), version: HLC(raw: try r.u64("version")), withdrawn: flags == 2,
                boot: type == 7 ? try r.u64("boot") : 0))
        case 5:
            entry = .life(Ledger.LifeEntry(observer: try r.str8("observer", max: Limits.name), boot: try r.u64("boot"), version: HLC(raw: try r.u64("version"))))
        case 3, 4:
            let pattern = try r.str16("pattern", max: 1024)
            let s = Int(try r.u8("state"))
            guard s < healthStates.count else { throw .badValue(what: "override state") }
            let wf = try weight(r.u16("weight"))
            let flags = try r.u8("flags")
            guard flags == 0 || flags == 2 else { throw .badValue(what: "override flags") }
            var e = Ledger.OverrideEntry(
                pattern: pattern, state: healthStates[s], weightFactor: wf, origin: try r.str8("origin", max: Limits.name), source: try r.str8("source"),
                version: HLC(raw: try r.u64("version")), removed: flags == 2)
            if type == 4 {
                e.reason = try r.str8("reason", max: AdminStateFile.maxReason)
                e.expiresMillis = try r.u64("expiry")
            }
            entry = .override(e)
        case 8:
            let observer = try r.str8("observer", max: Limits.name)
            let family = try r.u8("latency family")
            guard family == 4 || family == 6 else { throw .badValue(what: "latency family") }
            var bits: UInt64 = 0
            for _ in 0..<(family == 6 ? 6 : 3) { bits = bits << 8 | UInt64(try r.u8("latency prefix")) }
            let site = try r.str8("site", max: Limits.name)
            entry = .latency(Ledger.LatencyEntry(
                observer: observer, prefix: LatencyPrefix(v6: family == 6, bits: bits), site: site, rttMicros: try r.u32("rtt"),
                samples: try r.u32("samples"), version: HLC(raw: try r.u64("version")), boot: try r.u64("boot")))
        default:
            throw .badValue(what: "entry type")
        }
        guard r.remaining == 0 else { throw .trailing(r.remaining) }
        return entry
    }

    /// Weight factors travel as 1/10,000ths; 0xFFFF is "none".
    static func weight(_ f: Double?) -> UInt16 {
        guard let f, f.isFinite else { return 0xFFFF }
        return UInt16((min(max(f, 0), 1) * 10_000).rounded())
    }

    static func weight(_ v: UInt16) throws(DecodeError) -> Double? {
        if v == 0xFFFF { return nil }
        guard v <= 10_000 else { throw .badValue(what: "weight") }
        return Double(v) / 10_000
    }
}

/// A state exchange (push-pull over TCP): every member as this instance sees it, a summary of
/// its ledger per writer, and the ledger entries of the writers the other side needs (all of
/// them for a query).
public struct FullState: Sendable, Equatable {
    public var members: [Update]
    public var entries: [[UInt8]]
    public var summaries: [String: Ledger.Summary]

    public init(members: [Update], entries: [[UInt8]], summaries: [String: Ledger.Summary] = [:]) {
        self.members = members
        self.entries = entries
        self.summaries = summaries
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 64 + entries.count * 96)
        w.u16(UInt16(min(members.count, Limits.members)))
        for m in members.prefix(Limits.members) { m.encode(&w) }
        w.u32(UInt32(entries.count))
        for e in entries { w.blob16(e) }
        w.u16(UInt16(min(summaries.count, Limits.members * 4)))
        for (writer, s) in summaries.sorted(by: { $0.key < $1.key }).prefix(Limits.members * 4) {
            w.str8(writer)
            w.u32(s.count)
            w.u64(s.hash)
        }
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> FullState {
        var r = ByteReader(bytes)
        let n = Int(try r.u16("member count"))
        guard n <= Limits.members else { throw .tooLong(what: "member list", length: n) }
        var members: [Update] = []
        for _ in 0..<n {
            let u = try Update.decode(&r)
            if case .data = u { throw .badValue(what: "member entry") }
            members.append(u)
        }
        let m = Int(try r.u32("entry count"))
        // Each entry takes at least 3 octets: a count larger than that is a lie.
        guard m <= r.remaining / 3 else { throw .tooLong(what: "entry list", length: m) }
        var entries: [[UInt8]] = []
        entries.reserveCapacity(m)
        for _ in 0..<m { entries.append(try r.blob16("entry", max: 65535)) }
        let k = Int(try r.u16("summary count"))
        guard k <= Limits.members * 4 else { throw .tooLong(what: "summary list", length: k) }
        var summaries: [String: Ledger.Summary] = [:]
        for _ in 0..<k {
            let writer = try r.str8("writer", max: Limits.name)
            summaries[writer] = Ledger.Summary(count: try r.u32("count"), hash: try r.u64("hash"))
        }
        guard r.remaining == 0 else { throw .trailing(r.remaining) }
        return FullState(members: members, entries: entries, summaries: summaries)
    }
}

/// The gossip decoders in one call, for the fuzzer: a SWIM packet body, a ledger entry and a
/// push-pull state, each tried on the same bytes.
public enum FuzzGossip {
    public static func decode(_ bytes: [UInt8]) throws(DecodeError) {
        var r = ByteReader(bytes)
        _ = try? Packet.decodeBody(&r)
        _ = try? LedgerCodec.decode(bytes)
        _ = try FullState.decode(bytes)
    }
}
