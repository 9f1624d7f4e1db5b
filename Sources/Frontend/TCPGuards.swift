import Foundation
import GeoTopology
import NIOConcurrencyHelpers
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

/// Counts open TCP connections per client prefix (/24 for IPv4, /56 for IPv6) and refuses
/// more than `limit` from one prefix, so one host or network cannot take every slot. Used on
/// accept and close only, never per query.
final class ClientLimiter: Sendable {
    let limit: Int
    private let counts = NIOLockedValueBox<[SIMD16<UInt8>: Int]>([:])

    init(limit: Int) { self.limit = limit }

    static func prefix(_ address: IPAddress) -> SIMD16<UInt8> {
        address.truncated(to: address.family == .v4 ? 24 : 56).bytes
    }

    /// Takes a slot for the client; nil when its prefix already holds `limit`.
    func admit(_ address: IPAddress) -> SIMD16<UInt8>? {
        let key = Self.prefix(address)
        return counts.withLockedValue { c in
            let n = c[key, default: 0]
            guard n < limit else { return nil }
            c[key] = n + 1
            return key
        }
    }

    func release(_ key: SIMD16<UInt8>) {
        counts.withLockedValue { c in
            let n = (c[key] ?? 1) - 1
            c[key] = n > 0 ? n : nil
        }
    }
}
