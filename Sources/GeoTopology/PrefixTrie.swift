/// Longest-prefix match from address prefixes to values: a binary trie per family, stored in
/// flat arrays. Built once per configuration; lookups walk at most 32 or 128 bits and allocate
/// nothing.
public struct PrefixTrie: Sendable {
    struct Table: Sendable {
        var left: [Int32] = [0]
        var right: [Int32] = [0]
        /// Value index + 1 stored at the node (0: none), and the prefix length it was set for.
        var value: [Int32] = [0]

        mutating func insert(_ a: IPAddress, prefix: Int, value v: Int) -> Int? {
            var node = 0
            for i in 0..<prefix {
                let next = a.bit(i) ? right[node] : left[node]
                if next != 0 {
                    node = Int(next)
                } else {
                    left.append(0)
                    right.append(0)
                    value.append(0)
                    let n = Int32(left.count - 1)
                    if a.bit(i) { right[node] = n } else { left[node] = n }
                    node = Int(n)
                }
            }
            if value[node] != 0 { return Int(value[node] - 1) }
            value[node] = Int32(v + 1)
            return nil
        }

        @inline(__always)
        func lookup(_ a: IPAddress, bits: Int) -> (value: Int, prefix: Int, scope: Int)? {
            var node = 0
            var best: (Int, Int)? = value[0] != 0 ? (Int(value[0] - 1), 0) : nil
            var i = 0
            while i < bits {
                let next = a.bit(i) ? right[node] : left[node]
                if next == 0 { break }
                node = Int(next)
                i += 1
                if value[node] != 0 { best = (Int(value[node] - 1), i) }
            }
            // The bits that decided the outcome: every bit walked, plus the one that ended the
            // walk when a longer prefix exists beside it.
            let scope = i < bits && (left[node] != 0 || right[node] != 0) ? i + 1 : i
            return best.map { ($0.0, $0.1, scope) } ?? (-1, 0, scope)
        }
    }

    var v4 = Table()
    var v6 = Table()

    public init() {}

    /// Adds a prefix; returns the value already stored for exactly this prefix, if any.
    @discardableResult
    public mutating func insert(_ cidr: CIDR, value: Int) -> Int? {
        cidr.address.family == .v4
            ? v4.insert(cidr.address, prefix: cidr.prefix, value: value)
            : v6.insert(cidr.address, prefix: cidr.prefix, value: value)
    }

    /// The value of the longest prefix containing `address`, and that prefix's length.
    public func lookup(_ address: IPAddress) -> (value: Int, prefix: Int)? {
        let r = match(address)
        return r.value >= 0 ? (r.value, r.prefix) : nil
    }

    /// The longest-prefix match (value -1 when none) and its scope: how many leading bits of
    /// the address decided the outcome. The scope can exceed the matched prefix when a longer
    /// prefix sits beside the address (10.0.0.0/8 matched while 10.1.0.0/16 exists: the
    /// answer holds only for the address's /16), which is what an ECS reply must report.
    public func match(_ address: IPAddress) -> (value: Int, prefix: Int, scope: Int) {
        let r = address.family == .v4 ? v4.lookup(address, bits: 32) : v6.lookup(address, bits: 128)
        return r ?? (-1, 0, 0)
    }

    public var isEmpty: Bool { v4.left.count == 1 && v6.left.count == 1 && v4.value[0] == 0 && v6.value[0] == 0 }
}
