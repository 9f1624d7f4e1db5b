import Foundation
import GeoTopology
import Health

/// One measurement this instance took in: the round-trip time from a client network to a
/// site (passive from a DNS-over-TCP connection's `TCP_INFO`, active from a probe, or a
/// real-user measurement posted to the admin API).
public struct LatencySample: Sendable, Equatable {
    public var prefix: LatencyPrefix
    public var site: String
    public var rttMs: Double

    public init(prefix: LatencyPrefix, site: String, rttMs: Double) {
        self.prefix = prefix
        self.site = site
        self.rttMs = rttMs
    }
}

/// This instance's latency measurements as a pure value: per (client network, site) a mean
/// RTT over samples that decay with `halfLife`, the networks kept bounded by query volume
/// (the `maxPrefixes` most queried or measured), and which rows are news for the group. A
/// row is republished when its RTT moved by more than the dead band, when its sample count
/// crossed a power of two, or after `refresh` (so it never ages out while still measured), at
/// most `rowsPerPublish` at a time (the bytes it adds to gossip are bounded).
public struct LatencyBook: Sendable {
    public struct Settings: Sendable, Equatable {
        public var halfLife: Double = 600
        public var maxPrefixes: Int = 4096
        public var rowsPerPublish: Int = 32
        /// The octets a second of latency rows each member may receive, the whole group's
        /// publications together (a member's share of the rows shrinks as the group grows).
        public var groupOctetsPerMember: Double = 8_000
        public var publishEvery: Double = 5
        public var refresh: Double = 600
        /// A move smaller than both of these is not news.
        public var deadBandMs: Double = 2
        public var deadBandFraction: Double = 0.1
        /// Samples outside this range are dropped (a clock step, a bogus report).
        public var maxRttMs: Double = 10_000

        public init() {}
    }

    struct Cell: Sendable {
        var rttMs: Double
        var weight: Double
        var updated: Double
        var publishedRtt: Double?
        var publishedSamples: UInt32 = 0
        var publishedAt: Double = 0
    }

    public let settings: Settings
    private(set) var cells: [LatencyPrefix: [String: Cell]] = [:]
    /// Decayed queries and samples per network (its weight in the top-N bound), and the last
    /// address seen querying from it (the only kind of address a probe is aimed at).
    private(set) var volume: [LatencyPrefix: (count: Double, at: Double, address: IPAddress?)] = [:]
    private var lastPublish = -Double.infinity
    /// Rows this instance may still publish (its share of the group's budget, carried over).
    private var allowance: Double = 0

    public init(settings: Settings = Settings()) { self.settings = settings }

    public var prefixCount: Int { cells.count }

    func decay(_ dt: Double) -> Double { dt <= 0 ? 1 : exp2(-dt / settings.halfLife) }

    /// Takes one measurement at `now` (seconds).
    public mutating func record(_ s: LatencySample, now: Double) {
        guard s.rttMs.isFinite, s.rttMs >= 0, s.rttMs <= settings.maxRttMs, !s.site.isEmpty, s.site.utf8.count <= 64 else { return }
        seen(s.prefix, count: 1, now: now)
        guard cells[s.prefix] != nil || admit(s.prefix) else { return }
        var c = cells[s.prefix]?[s.site] ?? Cell(rttMs: s.rttMs, weight: 0, updated: now)
        let w = c.weight * decay(now - c.updated)
        c.rttMs = (c.rttMs * w + s.rttMs) / (w + 1)
        c.weight = w + 1
        c.updated = now
        cells[s.prefix, default: [:]][s.site] = c
    }

    /// Counts `count` queries seen from a network (its volume, for the bound and for probing).
    /// `address`, when given, is a source that queried this instance from the network.
    public mutating func seen(_ prefix: LatencyPrefix, count: Double, now: Double, address: IPAddress? = nil) {
        let old = volume[prefix]
        let v = old.map { $0.count * decay(now - $0.at) } ?? 0
        volume[prefix] = (v + count, now, address ?? old?.address)
        if volume.count > settings.maxPrefixes * 2 { trimVolume(now: now) }
    }

    /// The most queried networks, best first.
    public func busiest(_ n: Int, now: Double) -> [LatencyPrefix] {
        volume.map { ($0.key, $0.value.count * decay(now - $0.value.at)) }.sorted { ($0.1, $1.0) > ($1.1, $0.0) }.prefix(n).map(\.0)
    }

    /// The address last seen querying from `prefix`, if any did (measurements posted to the
    /// API name networks, not addresses).
    public func queried(from prefix: LatencyPrefix) -> IPAddress? { volume[prefix]?.address }

    /// Room for a new network: below the bound, or by evicting the least queried one when the
    /// newcomer has been queried more.
    private mutating func admit(_ prefix: LatencyPrefix) -> Bool {
        guard cells.count >= settings.maxPrefixes else { return true }
        let mine = volume[prefix]?.count ?? 0
        guard let (victim, v) = cells.keys.map({ ($0, volume[$0]?.count ?? 0) }).min(by: { ($0.1, $1.0) < ($1.1, $0.0) }), v < mine else { return false }
        cells[victim] = nil
        return true
    }

    private mutating func trimVolume(now: Double) {
        let keep = Set(busiest(settings.maxPrefixes, now: now)).union(cells.keys)
        volume = volume.filter { keep.contains($0.key) }
    }

    /// Rows that are news for the group at `now`, at most `rowsPerPublish`, and at most once
    /// per `publishEvery`. A row whose samples decayed below one is withdrawn (samples 0) and
    /// forgotten.
    public mutating func due(now: Double, members: Int = 1) -> [LatencyRow] {
        guard isDue(now: now) else { return [] }
        let elapsed = lastPublish.isFinite ? now - lastPublish : settings.publishEvery
        lastPublish = now
        allowance = min(Double(settings.rowsPerPublish), allowance + Self.groupRowsPerSecond(settings, members: members) / Double(max(1, members)) * elapsed)
        let quota = Int(allowance)
        guard quota > 0 else { return [] }
        var out: [(priority: Double, row: LatencyRow)] = []
        for (prefix, sites) in cells {
            for (site, c) in sites {
                let samples = c.weight * decay(now - c.updated)
                let n = UInt32(min(samples.rounded(), Double(UInt32.max)))
                if samples < 0.5 {
                    if c.publishedRtt != nil { out.append((.infinity, LatencyRow(prefix: prefix, site: site, rttMicros: 0, samples: 0))) }
                    continue
                }
                guard let p = c.publishedRtt else {
                    out.append((1e9, row(prefix, site, c, n)))
                    continue
                }
                let moved = abs(c.rttMs - p)
                if moved > settings.deadBandMs && moved > settings.deadBandFraction * p {
                    out.append((moved, row(prefix, site, c, n)))
                } else if Self.log2(n) != Self.log2(c.publishedSamples) || now - c.publishedAt >= settings.refresh {
                    out.append((0, row(prefix, site, c, n)))
                }
            }
        }
        let rows = out.sorted { ($0.priority, $1.row.prefix, $1.row.site) > ($1.priority, $0.row.prefix, $0.row.site) }.prefix(quota).map(\.row)
        allowance -= Double(rows.count)
        for r in rows {
            if r.samples == 0 {
                cells[r.prefix]?[r.site] = nil
                if cells[r.prefix]?.isEmpty == true { cells[r.prefix] = nil }
            } else {
                cells[r.prefix]?[r.site]?.publishedRtt = Double(r.rttMicros) / 1000
                cells[r.prefix]?[r.site]?.publishedSamples = r.samples
                cells[r.prefix]?[r.site]?.publishedAt = now
            }
        }
        return rows
    }

    /// A publication is due (`publishEvery` since the last).
    public func isDue(now: Double) -> Bool { now - lastPublish >= settings.publishEvery }

    /// The rows a second the whole group may publish: every row is sent by every member in
    /// about `ceil(4 log10(n+1) / 3)` gossip ticks to 3 peers (a lean update, `SWIM`), of
    /// about 50 octets with its share of the packet, so each member receives about that many
    /// copies of each (8,000 octets: 40 rows/s for 3 members, 13 for 200, 9 for 1,000).
    public static func groupRowsPerSecond(_ s: Settings, members: Int) -> Double {
        let n = Double(max(1, members))
        let ticks = ceil(4 * ceil(log10(n + 1)) / 3)
        let copies = ticks * min(3, max(1, n - 1))
        return s.groupOctetsPerMember / (copies * 50)
    }

    private func row(_ prefix: LatencyPrefix, _ site: String, _ c: Cell, _ n: UInt32) -> LatencyRow {
        LatencyRow(prefix: prefix, site: site, rttMicros: UInt32(min((c.rttMs * 1000).rounded(), Double(UInt32.max))), samples: max(n, 1))
    }

    static func log2(_ n: UInt32) -> Int { n == 0 ? -1 : 31 - n.leadingZeroBitCount }
}
