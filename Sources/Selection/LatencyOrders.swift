import GeoTopology
import Health
import PoolConfig

/// The group's latency map as the query path reads it: an open-addressing table from a client
/// network (`LatencyPrefix.key`) to its row. No allocation, no hashing library, no reference
/// counting per lookup: two array reads in the common case.
public struct LatencyIndex: Sendable {
    /// Slot -> key + 1 (0: empty).
    private let slots: [UInt64]
    private let rows: [Int32]
    private let shift: UInt64
    /// Row -> network.
    public let prefixes: [LatencyPrefix]

    public static let empty = LatencyIndex([])

    public init(_ prefixes: [LatencyPrefix]) {
        self.prefixes = prefixes
        var bits = 4
        while (1 << bits) < prefixes.count * 2 { bits += 1 }
        let size = 1 << bits
        shift = UInt64(64 - bits)
        var slots = [UInt64](repeating: 0, count: size)
        var rows = [Int32](repeating: -1, count: size)
        for (row, p) in prefixes.enumerated() {
            var i = Int((p.key &* 0x9E37_79B9_7F4A_7C15) >> shift)
            while slots[i] != 0 { i = (i + 1) & (size - 1) }
            slots[i] = p.key &+ 1
            rows[i] = Int32(row)
        }
        self.slots = slots
        self.rows = rows
    }

    /// The network of a client address.
    @inline(__always)
    public static func key(of client: IPAddress) -> UInt64 {
        let b = client.bytes
        if client.family == .v4 { return UInt64(b[0]) << 16 | UInt64(b[1]) << 8 | UInt64(b[2]) }
        let hi = UInt64(b[0]) << 40 | UInt64(b[1]) << 32 | UInt64(b[2]) << 24
        return 1 << 63 | hi | UInt64(b[3]) << 16 | UInt64(b[4]) << 8 | UInt64(b[5])
    }

    /// The row of a network, or -1.
    @inline(__always)
    public func row(_ key: UInt64) -> Int {
        guard prefixes.count > 0 else { return -1 }
        let mask = slots.count - 1
        var i = Int((key &* 0x9E37_79B9_7F4A_7C15) >> shift)
        while true {
            let s = slots[i]
            if s == 0 { return -1 }
            if s == key &+ 1 { return Int(rows[i]) }
            i = (i + 1) & mask
        }
    }
}

/// One pool's site orders by latency: per row of the `LatencyIndex`, an order (the measured
/// sites by RTT, then the unmeasured primaries in default order, then backups) and how many
/// of its first sites are within the tolerance of the best (they share by site weight).
public struct LatencyOrders: Sendable {
    public let orders: [[Int]]
    /// Row -> order index (-1: no site has `min_samples` from this network).
    public let byRow: [Int32]
    /// Order index -> how many leading sites tie with the best.
    public let tied: [Int]

    public init(pool: Pool, rule: LatencyRule, index: LatencyIndex, table: LatencyTable) {
        var orders: [[Int]] = []
        var tied: [Int] = []
        var interned: [[Int]: Int32] = [:]
        let primaries = pool.order.defaultOrder + pool.sites.indices.filter { !pool.sites[$0].backup && !pool.order.defaultOrder.contains($0) }
        let backups = pool.sites.indices.filter { pool.sites[$0].backup }
        byRow = index.prefixes.map { prefix in
            let cells = table.cells[prefix] ?? [:]
            let measured = primaries.compactMap { s in cells[pool.sites[s].name].flatMap { $0.samples >= Double(rule.minSamples) ? (s, $0.rttMs) : nil } }
            guard let best = measured.map(\.1).min() else { return -1 }
            // Stable by RTT, ties by default order.
            let sorted = measured.enumerated().sorted { ($0.element.1, $0.offset) < ($1.element.1, $1.offset) }.map(\.element)
            let order = sorted.map(\.0) + primaries.filter { s in !sorted.contains { $0.0 == s } } + backups
            if let i = interned[order] { return i }
            interned[order] = Int32(orders.count)
            orders.append(order)
            tied.append(sorted.prefix { $0.1 - best <= rule.toleranceMs }.count)
            return Int32(orders.count - 1)
        }
        self.orders = orders
        self.tied = tied
    }
}

extension LatencyPrefix {
    /// The /24 or /48 of an address (the same bits `LatencyIndex.key(of:)` looks up).
    public init(_ address: IPAddress) {
        self.init(v6: address.family == .v6, bits: LatencyIndex.key(of: address))
    }
}
