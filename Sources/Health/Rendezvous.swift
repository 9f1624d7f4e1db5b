/// Which live peers probe a member: rendezvous (highest-random-weight) hashing of the member id
/// over the peer names. Every instance with the same peer list computes the same probers, and
/// when a peer joins or leaves only the members it wins or held change hands.
public enum Rendezvous {
    /// The `count` peers with the highest score for `member`, best first (all of them when
    /// `count` is nil or at least the number of peers).
    public static func choose(member: String, from peers: [String], count: Int?) -> [String] {
        let scored = peers.map { (score: score(member: member, peer: $0), peer: $0) }
            .sorted { $0.score != $1.score ? $0.score > $1.score : $0.peer < $1.peer }
        let n = min(max(count ?? scored.count, 0), scored.count)
        return scored.prefix(n).map(\.peer)
    }

    /// A stable 64-bit score: FNV-1a over `peer`, a zero byte and `member`, then the SplitMix64
    /// finalizer. Not Swift's `Hasher`, which is seeded per process.
    public static func score(member: String, peer: String) -> UInt64 {
        let h = StableHash.fnv(member.utf8, StableHash.fnv(CollectionOfOne(0), StableHash.fnv(peer.utf8)))
        return StableHash.mix(h)
    }
}

/// Hashes that are the same in every process and on every machine (for digests that peers
/// compare), unlike Swift's per-process seeded `Hasher`.
public enum StableHash {
    /// FNV-1a of a string's UTF-8, finalized.
    public static func of(_ text: String) -> UInt64 { mix(fnv(text.utf8)) }

    /// FNV-1a over octets, continuing from `h`.
    public static func fnv<S: Sequence>(_ bytes: S, _ h: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 where S.Element == UInt8 {
        var h = h
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    /// The SplitMix64 finalizer: spreads every input bit over the output.
    @inline(__always)
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
