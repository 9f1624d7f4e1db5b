/// Vose's alias method: a weighted random draw in O(1), built in O(n).
public struct AliasTable: Sendable {
    let probability: [Double]
    let alias: [Int32]
    /// The items the table draws from (member or site indices).
    public let items: [Int32]

    /// `weights[i]` is the weight of `items[i]`; all weights must be > 0.
    public init(items: [Int32], weights: [Double]) {
        self.items = items
        let n = items.count
        var prob = [Double](repeating: 0, count: n)
        var alias = [Int32](repeating: 0, count: n)
        let total = weights.reduce(0, +)
        if n > 0 && total > 0 {
            var scaled = weights.map { $0 * Double(n) / total }
            var small: [Int] = []
            var large: [Int] = []
            for (i, w) in scaled.enumerated() { if w < 1 { small.append(i) } else { large.append(i) } }
            while let s = small.popLast(), let l = large.last {
                prob[s] = scaled[s]
                alias[s] = Int32(l)
                scaled[l] -= 1 - scaled[s]
                if scaled[l] < 1 {
                    large.removeLast()
                    small.append(l)
                }
            }
            for i in large + small { prob[i] = 1 }
        }
        probability = prob
        self.alias = alias
    }

    public var isEmpty: Bool { items.isEmpty }

    /// Draws one item.
    @inline(__always)
    public func draw(_ rng: inout UInt64) -> Int32 {
        let r = Random.next(&rng)
        let i = Int(r % UInt64(items.count))
        let u = Double(Random.next(&rng) >> 11) * 0x1.0p-53
        return items[u < probability[i] ? i : Int(alias[i])]
    }
}

/// xorshift64*: a small, fast generator whose state lives in the caller's per-thread scratch.
public enum Random {
    @inline(__always)
    public static func next(_ state: inout UInt64) -> UInt64 {
        if state == 0 { state = 0x9E37_79B9_7F4A_7C15 }
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}
