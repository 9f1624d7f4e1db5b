import Foundation
import GeoTopology
import Atomics
import NIOConcurrencyHelpers
import QueryEngine
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The process's file descriptor limit (issue: hardening, finding 1): raised to the hard
/// limit at start, and the TCP connection cap sized to leave room for everything else
/// (health probes, gossip, zone and state files), so clients can never take the last
/// descriptors and make every probe fail.
enum FileLimits {
    /// Descriptors kept back from TCP clients: listeners, probes, gossip, files.
    static func reserve(for limit: Int) -> Int { 128 + limit / 8 }

    /// Raises the soft RLIMIT_NOFILE to the hard limit (at most 1,048,576); returns the limit
    /// in force afterwards.
    static func raise() -> Int {
        var rl = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0 else { return 1024 }
        let target = min(rl.rlim_max, 1 << 20)
        if rl.rlim_cur < target {
            var wanted = rl
            wanted.rlim_cur = target
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &wanted) == 0 { rl = wanted }
        }
        return Int(clamping: rl.rlim_cur)
    }

    /// The TCP connection cap that fits `limit` descriptors: at most `configured`.
    static func connectionCap(configured: Int, limit: Int) -> Int {
        max(1, min(configured, limit - reserve(for: limit)))
    }
}

/// Counts open connections per client prefix in a fixed table of atomic counters, with no
/// lock (issue 18, finding 6): accept runs on the event loops, which share no lock.
///
/// A connection takes one of `cap` slots, one of its narrow prefix (/24, /56 for DNS), at most
/// `perPrefix`, and one of its wide prefix (/16, /48): once more than half of `cap` are open,
/// a wide prefix may hold at most `wideShare` (an eighth of `cap`), so when slots run low no one network (a /48 holds 256 /56s) takes
/// the rest. Prefixes are hashed into the table with SipHash under a secret drawn at start:
/// prefixes that share a bucket share its limit, and nobody can aim at another's bucket.
public final class SourceSlots: Sendable {
    /// Why a connection was refused.
    public enum Refusal: Error, Sendable, Hashable {
        /// All `cap` slots are taken.
        case cap
        case perPrefix, perNetwork
    }

    /// What a connection holds, to give back when it closes.
    public struct Held: Sendable, Equatable {
        let narrow: Int
        let wide: Int?
    }

    public let perPrefix: Int
    public let cap: Int
    public let wideShare: Int
    let narrowBits: (v4: Int, v6: Int)
    let wideBits: (v4: Int, v6: Int)
    private let narrow: [ManagedAtomic<Int>]
    private let wide: [ManagedAtomic<Int>]
    private let open = ManagedAtomic<Int>(0)
    private let secret: (UInt64, UInt64)

    /// - Parameters:
    ///   - perPrefix: connections one narrow prefix may hold.
    ///   - cap: the connections that may be open in all; 0 for no cap and no wide share.
    public init(perPrefix: Int, cap: Int = 0, narrow: (v4: Int, v6: Int) = (24, 56), wide: (v4: Int, v6: Int) = (16, 48), buckets: Int = 4096) {
        self.perPrefix = max(1, perPrefix)
        self.cap = cap
        wideShare = max(self.perPrefix, cap / 8)
        narrowBits = narrow
        wideBits = wide
        self.narrow = (0..<buckets).map { _ in ManagedAtomic(0) }
        self.wide = cap > 0 ? (0..<buckets).map { _ in ManagedAtomic(0) } : []
        var g = SystemRandomNumberGenerator()
        secret = (g.next(), g.next())
    }

    /// Takes a slot for a connection from `address`, or says why not.
    public func admit(_ address: IPAddress) -> Result<Held, Refusal> {
        if cap > 0, !take(open, limit: cap) { return .failure(.cap) }
        let n = bucket(address, bits: narrowBits)
        guard take(narrow[n], limit: perPrefix) else {
            if cap > 0 { open.wrappingDecrement(ordering: .relaxed) }
            return .failure(.perPrefix)
        }
        guard cap > 0 else { return .success(Held(narrow: n, wide: nil)) }
        let w = bucket(address, bits: wideBits)
        if wide[w].wrappingIncrementThenLoad(ordering: .relaxed) > wideShare && open.load(ordering: .relaxed) > cap / 2 {
            release(Held(narrow: n, wide: w))
            return .failure(.perNetwork)
        }
        return .success(Held(narrow: n, wide: w))
    }

    /// Takes a slot for a connection from a socket address (0.0.0.0 for one that is not IP).
    public func admit(_ address: SocketAddress?) -> Result<Held, Refusal> {
        admit(address?.ipAddress ?? IPAddress(family: .v4, bytes: SIMD16(repeating: 0)))
    }

    /// A connection admitted with `held` closed.
    public func release(_ held: Held) {
        narrow[held.narrow].wrappingDecrement(ordering: .relaxed)
        if let w = held.wide { wide[w].wrappingDecrement(ordering: .relaxed) }
        if cap > 0 { open.wrappingDecrement(ordering: .relaxed) }
    }

    /// Connections open now (counted only with a cap).
    public var connections: Int { open.load(ordering: .relaxed) }

    private func take(_ counter: ManagedAtomic<Int>, limit: Int) -> Bool {
        if counter.wrappingIncrementThenLoad(ordering: .relaxed) > limit {
            counter.wrappingDecrement(ordering: .relaxed)
            return false
        }
        return true
    }

    private func bucket(_ address: IPAddress, bits: (v4: Int, v6: Int)) -> Int {
        let v4 = address.family == .v4
        let p = address.truncated(to: v4 ? bits.v4 : bits.v6).bytes
        let h = SipHash.hash24(k0: secret.0, k1: secret.1, octets: p, UInt64(v4 ? bits.v4 : 256 + bits.v6))
        return Int(truncatingIfNeeded: h % UInt64(narrow.count))
    }
}
