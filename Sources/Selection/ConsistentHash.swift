/// A weighted Maglev lookup table (Eisenbud et al., NSDI 2016): consistent hashing with an
/// O(1) lookup. Each member fills table slots along its own permutation, in proportion to
/// its weight; a client key hashes to a slot, and the members met walking on from that slot
/// are its answers, in order.
///
/// Every instance builds the same table from the same members, ids and weights, so the same
/// client subnet gets the same members everywhere; removing a member frees only (about) its
/// own slots, so about 1/N of clients move.
public struct MaglevTable: Sendable {
    public let slots: [Int32]
    public let items: [Int32]

    /// `ids` name the items stably (member ids); `weights` > 0.
    public init(items: [Int32], ids: [String], weights: [Double]) {
        self.items = items
        let n = items.count
        guard n > 0 else {
            slots = []
            return
        }
        let size = MaglevTable.prime(atLeast: max(n * 32, 1031))
        var table = [Int32](repeating: -1, count: size)
        var offset = [Int](repeating: 0, count: n)
        var skip = [Int](repeating: 1, count: n)
        for i in 0..<n {
            let h1 = MaglevTable.fnv64(ids[i], seed: 0x0123_4567_89AB_CDEF)
            let h2 = MaglevTable.fnv64(ids[i], seed: 0xFEDC_BA98_7654_3210)
            offset[i] = Int(h1 % UInt64(size))
            skip[i] = Int(h2 % UInt64(size - 1)) + 1
        }
        let maxWeight = weights.max() ?? 1
        var credit = [Double](repeating: 0, count: n)
        var next = [Int](repeating: 0, count: n)
        var filled = 0
        outer: while true {
            for i in 0..<n {
                credit[i] += weights[i] / maxWeight
                while credit[i] >= 1 {
                    credit[i] -= 1
                    var c = (offset[i] + next[i] * skip[i]) % size
                    while table[c] >= 0 {
                        next[i] += 1
                        c = (offset[i] + next[i] * skip[i]) % size
                    }
                    table[c] = Int32(i)
                    next[i] += 1
                    filled += 1
                    if filled == size { break outer }
                }
            }
        }
        slots = table
    }

    public var isEmpty: Bool { items.isEmpty }

    /// The slot a key hashes to.
    @inline(__always)
    public func slot(for key: UInt64) -> Int { Int(key % UInt64(slots.count)) }

    /// FNV-1a, 64-bit, with a seed folded in first.
    static func fnv64(_ s: String, seed: UInt64) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }

    static func prime(atLeast n: Int) -> Int {
        var c = n | 1
        while !isPrime(c) { c += 2 }
        return c
    }

    static func isPrime(_ n: Int) -> Bool {
        if n < 2 { return false }
        var d = 2
        while d * d <= n {
            if n % d == 0 { return false }
            d += 1
        }
        return true
    }
}

/// A 64-bit mix of an address prefix, the consistent-hash key of a client subnet.
@inline(__always)
func subnetKey(_ bytes: SIMD16<UInt8>, family: Int) -> UInt64 {
    var a: UInt64 = 0
    var b: UInt64 = 0
    for i in 0..<8 { a = a << 8 | UInt64(bytes[i]) }
    for i in 8..<16 { b = b << 8 | UInt64(bytes[i]) }
    var h = a ^ (b &* 0x9E37_79B9_7F4A_7C15) ^ UInt64(family)
    h ^= h >> 33
    h = h &* 0xFF51_AFD7_ED55_8CCD
    h ^= h >> 33
    h = h &* 0xC4CE_B9FE_1A85_EC53
    h ^= h >> 33
    return h
}
