/// A client network that latency is kept for: an IPv4 /24 or an IPv6 /48. It is also the ECS
/// scope of an answer chosen by latency (RFC 7871 section 7.2.1): the answer depends on these
/// bits of the client's address.
public struct LatencyPrefix: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let v6: Bool
    /// The prefix's leading 24 (IPv4) or 48 (IPv6) bits, right-aligned.
    public let bits: UInt64

    public static let v4Length = 24
    public static let v6Length = 48

    public init(v6: Bool, bits: UInt64) {
        self.v6 = v6
        self.bits = bits & (v6 ? 0xFFFF_FFFF_FFFF : 0xFF_FFFF)
    }

    /// The prefix of an address given as 4 or 16 octets (any more are ignored).
    public init(v6: Bool, octets: some Collection<UInt8>) {
        var b: UInt64 = 0
        for o in octets.prefix(v6 ? 6 : 3) { b = b << 8 | UInt64(o) }
        self.init(v6: v6, bits: b)
    }

    public var length: Int { v6 ? Self.v6Length : Self.v4Length }

    /// The key the data plane's table is indexed by (the family in the top bit).
    public var key: UInt64 { bits | (v6 ? 1 << 63 : 0) }

    public var description: String {
        if !v6 { return "\(bits >> 16 & 0xFF).\(bits >> 8 & 0xFF).\(bits & 0xFF).0/24" }
        let groups = [bits >> 32 & 0xFFFF, bits >> 16 & 0xFFFF, bits & 0xFFFF].map { String($0, radix: 16) }
        return groups.joined(separator: ":") + "::/48"
    }

    public static func < (a: LatencyPrefix, b: LatencyPrefix) -> Bool { a.key < b.key }
}

/// What the group measured from one client network to one site: the round-trip time (a
/// mean weighted by samples over every observer's entry) and how many samples it rests on.
public struct LatencyCell: Sendable, Equatable {
    public var rttMs: Double
    public var samples: Double
    /// How many observers' entries it combines.
    public var observers: Int

    public init(rttMs: Double, samples: Double, observers: Int) {
        self.rttMs = rttMs
        self.samples = samples
        self.observers = observers
    }
}

/// The group's latency map: client network -> site name -> cell. Every instance folds it from
/// the same ledger entries with `Ledger.latencyTable`, so they hold the same map and answer alike.
public struct LatencyTable: Sendable, Equatable {
    public var cells: [LatencyPrefix: [String: LatencyCell]]

    public init(cells: [LatencyPrefix: [String: LatencyCell]] = [:]) { self.cells = cells }

    public static let empty = LatencyTable()
    public var isEmpty: Bool { cells.isEmpty }
}

extension Ledger {
    /// How long a latency entry counts after it was written: an observer rewrites its entries
    /// while it still measures, so an entry this old describes a network nobody measures now.
    public static let latencyMaxAgeMillis: UInt64 = 30 * 60 * 1000

    /// One observer's measurement of one client network to one site (written by the instance
    /// that measured it or took it in through `POST /measurements`).
    public struct LatencyEntry: Sendable, Equatable {
        public var observer: String
        public var prefix: LatencyPrefix
        public var site: String
        /// Round-trip time in microseconds.
        public var rttMicros: UInt32
        /// Samples it rests on (decayed, rounded); 0 withdraws it.
        public var samples: UInt32
        public var version: HLC
        public var boot: UInt64

        public init(observer: String, prefix: LatencyPrefix, site: String, rttMicros: UInt32, samples: UInt32, version: HLC, boot: UInt64) {
            self.observer = observer
            self.prefix = prefix
            self.site = site
            self.rttMicros = rttMicros
            self.samples = samples
            self.version = version
            self.boot = boot
        }
    }

    /// Whether a latency entry still counts at `nowMillis` (the one age rule: the fold, merges
    /// and pruning use it).
    @inline(__always)
    public static func isFresh(_ e: LatencyEntry, nowMillis: UInt64) -> Bool {
        nowMillis <= e.version.millis || nowMillis - e.version.millis <= latencyMaxAgeMillis
    }

    /// Drops latency entries that no longer count (withdrawn rows and rows nobody refreshed
    /// stay otherwise, and would fill an observer's bound); returns how many.
    @discardableResult
    public mutating func pruneLatency(nowMillis: UInt64) -> Int {
        let before = latency.count
        latency = latency.filter { Self.isFresh($0.value, nowMillis: nowMillis) }
        guard latency.count != before else { return 0 }
        latencyCounts = latency.values.reduce(into: [:]) { $0[$1.observer, default: 0] += 1 }
        return before - latency.count
    }

    /// The latency map folded from every current entry no older than `latencyMaxAgeMillis`.
    public func latencyTable(nowMillis: UInt64) -> LatencyTable {
        var sums: [LatencyPrefix: [String: (weighted: Double, samples: Double, observers: Int)]] = [:]
        for e in latency.values where e.samples > 0 && isCurrent(observer: e.observer, boot: e.boot) {
            guard Self.isFresh(e, nowMillis: nowMillis) else { continue }
            var s = sums[e.prefix, default: [:]][e.site] ?? (0, 0, 0)
            s.weighted += Double(e.rttMicros) / 1000 * Double(e.samples)
            s.samples += Double(e.samples)
            s.observers += 1
            sums[e.prefix, default: [:]][e.site] = s
        }
        return LatencyTable(cells: sums.mapValues { $0.mapValues { LatencyCell(rttMs: $0.weighted / $0.samples, samples: $0.samples, observers: $0.observers) } })
    }

    /// Records this instance's own latency rows (from its `LatencyBook`): each row is a new
    /// version of its (prefix, site) entry. Returns the new entries (to gossip).
    public mutating func recordLatency(
        observer: String, boot: UInt64, rows: [LatencyRow], clock: inout HybridClock, wallMillis: UInt64
    ) -> [Entry] {
        var out: [Entry] = []
        for r in rows {
            let e = LatencyEntry(
                observer: observer, prefix: r.prefix, site: r.site, rttMicros: r.rttMicros, samples: r.samples, version: clock.tick(wallMillis: wallMillis),
                boot: boot)
            if (try? merge(.latency(e), nowMillis: wallMillis)) == true { out.append(.latency(e)) }
        }
        return out
    }
}

/// A row an instance publishes about one (client network, site).
public struct LatencyRow: Sendable, Equatable {
    public var prefix: LatencyPrefix
    public var site: String
    public var rttMicros: UInt32
    public var samples: UInt32

    public init(prefix: LatencyPrefix, site: String, rttMicros: UInt32, samples: UInt32) {
        self.prefix = prefix
        self.site = site
        self.rttMicros = rttMicros
        self.samples = samples
    }
}
