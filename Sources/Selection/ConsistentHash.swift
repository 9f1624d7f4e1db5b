/// Weighted consistent hashing on a hash ring with virtual points (Karger et al. 1997).
///
/// Each member owns points on a 64-bit ring, as many as its weight gives it; a client key
/// falls between two points and belongs to the next member clockwise; walking on gives the
/// next distinct members, in order, for multi-address answers. Every instance builds the same
/// ring from the same member ids and weights, so the same client subnet gets the same members
/// everywhere, and removing a member takes away only its own points: exactly its clients move,
/// to the members after it, and nobody else's do.
public struct HashRing: Sendable {
    /// Sorted ring positions.
    let points: [UInt64]
    /// For each point, the index into `items` of the member owning it.
    let owners: [Int32]
    public let items: [Int32]

    /// `ids` name the items stably (member ids); `weights` > 0. `capacity` (the pool's member
    /// count) sets the points per unit of weight; it must come from configuration, never from
    /// health, or a health change would move every member's points.
    public init(items: [Int32], ids: [String], weights: [Double], capacity: Int) {
        self.items = items
        let perFullWeight = HashRing.pointsPerMember(capacity)
        var pts: [(UInt64, Int32)] = []
        for i in items.indices {
            let base = HashRing.fnv64(ids[i])
            // Points scale with the member's own weight (100 = the default), so one member's
            // weight change never moves another member's points.
            let count = max(1, Int((Double(perFullWeight) * weights[i] / 100).rounded()))
            for j in 0..<count { pts.append((HashRing.mix(base &+ UInt64(j) &* 0x9E37_79B9_7F4A_7C15), Int32(i))) }
        }
        pts.sort { $0.0 < $1.0 }
        points = pts.map(\.0)
        owners = pts.map(\.1)
    }

    /// Virtual points a member of weight 100 gets: 160 in small pools, fewer in large ones so a
    /// 10,000-member ring stays near 200,000 points.
    static func pointsPerMember(_ capacity: Int) -> Int { min(160, max(8, 200_000 / max(capacity, 1))) }

    public var isEmpty: Bool { points.isEmpty }

    /// The index of the first point at or after `key` (wrapping).
    @inline(__always)
    public func start(for key: UInt64) -> Int {
        var lo = 0
        var hi = points.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if points[mid] < key { lo = mid + 1 } else { hi = mid }
        }
        return lo == points.count ? 0 : lo
    }

    /// The member (item) owning point `index`.
    @inline(__always)
    public func item(at index: Int) -> Int32 { items[Int(owners[index])] }

    public var pointCount: Int { points.count }

    static func fnv64(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }

    /// A 64-bit finalizer (MurmurHash3 fmix64) to spread nearby inputs over the ring.
    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var h = x
        h ^= h >> 33
        h = h &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        h = h &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 33
        return h
    }
}

/// A 64-bit mix of an address prefix, the consistent-hash key of a client subnet.
@inline(__always)
func subnetKey(_ bytes: SIMD16<UInt8>, family: Int) -> UInt64 {
    var a: UInt64 = 0
    var b: UInt64 = 0
    for i in 0..<8 { a = a << 8 | UInt64(bytes[i]) }
    for i in 8..<16 { b = b << 8 | UInt64(bytes[i]) }
    return HashRing.mix(a ^ HashRing.mix(b ^ UInt64(family)))
}
