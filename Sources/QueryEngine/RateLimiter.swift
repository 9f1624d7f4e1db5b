import DNSWire
import GeoTopology

/// Response rate limiting settings (as in Knot and NSD): UDP responses per second per
/// (client prefix, response kind, name); limited responses are dropped, except every `slip`-th,
/// which goes out truncated (TC=1, no records) so a real client behind a spoofed flood retries
/// over TCP, where spoofing is not possible.
public struct RateLimitConfig: Sendable, Equatable {
    /// Responses per second per key; 0 turns limiting off.
    public var responsesPerSecond: Int
    /// Every `slip`-th limited response is sent truncated; 0 drops them all, 1 truncates all.
    public var slip: Int
    /// Client prefixes that share a budget.
    public var ipv4Prefix: Int
    public var ipv6Prefix: Int
    /// Buckets per event loop (a power of two); keys that collide share one.
    public var tableSize: Int

    public init(responsesPerSecond: Int = 0, slip: Int = 2, ipv4Prefix: Int = 24, ipv6Prefix: Int = 56, tableSize: Int = 65536) {
        self.responsesPerSecond = max(0, responsesPerSecond)
        self.slip = max(0, slip)
        self.ipv4Prefix = min(max(ipv4Prefix, 0), 32)
        self.ipv6Prefix = min(max(ipv6Prefix, 0), 128)
        var size = 1024
        while size < min(max(tableSize, 1024), 1 << 22) { size <<= 1 }
        self.tableSize = size
    }

    public var enabled: Bool { responsesPerSecond > 0 }
}

/// What a response is, for rate limiting: answers are limited per name; NXDOMAIN and errors
/// per client prefix alone, so random names (a random-subdomain flood) share one budget.
public enum ResponseKind: UInt8, Sendable {
    case answer = 1, nodata, referral, nxdomain, error
}

/// A token bucket per key in a fixed table: a pure value with time passed in (whole seconds),
/// one per event loop, so the query path takes no lock and allocates nothing.
public struct RateLimiter: Sendable {
    public enum Decision: Sendable, Equatable {
        case send
        case drop
        /// Send it truncated (TC=1, no records).
        case slip
    }

    public let config: RateLimitConfig
    private var keys: [UInt64]
    private var tokens: [Int32]
    private var seconds: [UInt32]
    private var limited: [UInt32]
    private let mask: Int

    public init(config: RateLimitConfig) {
        self.config = config
        let n = config.enabled ? config.tableSize : 1
        keys = [UInt64](repeating: 0, count: n)
        tokens = [Int32](repeating: 0, count: n)
        seconds = [UInt32](repeating: 0, count: n)
        limited = [UInt32](repeating: 0, count: n)
        mask = n - 1
    }

    /// The bucket key of a response: client prefix, kind and (for answers) the name's hash.
    @inline(__always)
    public func key(client: IPAddress, kind: ResponseKind, nameHash: UInt64) -> UInt64 {
        let prefix = client.truncated(to: client.family == .v4 ? config.ipv4Prefix : config.ipv6Prefix).bytes
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in 0..<16 { h = (h ^ UInt64(prefix[i])) &* 0x100_0000_01b3 }
        h = (h ^ UInt64(kind.rawValue)) &* 0x100_0000_01b3
        h ^= (kind == .answer || kind == .nodata || kind == .referral) ? nameHash : 0
        // SplitMix64 finalizer; never 0 (the empty-bucket marker).
        h = (h ^ (h >> 30)) &* 0xBF58_476D_1CE4_E5B9
        h = (h ^ (h >> 27)) &* 0x94D0_49BB_1331_11EB
        return (h ^ (h >> 31)) | 1
    }

    /// Takes a token for `key` at time `now` (seconds), or says what to do without one.
    @inline(__always)
    public mutating func decide(key: UInt64, now: UInt32) -> Decision {
        let rate = Int32(clamping: config.responsesPerSecond)
        let i = Int(truncatingIfNeeded: key) & mask
        if keys[i] != key {
            keys[i] = key
            tokens[i] = rate
            seconds[i] = now
            limited[i] = 0
        } else if now != seconds[i] {
            // A second passed: refill (at most one second's worth: no bursts saved up).
            tokens[i] = rate
            seconds[i] = now
        }
        if tokens[i] > 0 {
            tokens[i] -= 1
            return .send
        }
        limited[i] &+= 1
        let slip = UInt32(clamping: config.slip)
        return slip > 0 && limited[i] % slip == 0 ? .slip : .drop
    }

    /// The kind and name hash of a response in wire form (header, then the question name
    /// uncompressed at offset 12); nil when it cannot be read (then it is not limited).
    public static func classify(_ r: UnsafeRawBufferPointer) -> (kind: ResponseKind, nameHash: UInt64, questionEnd: Int)? {
        guard r.count >= 12 else { return nil }
        var i = 12
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        if r[4] == 0 && r[5] == 0 {
            i = 12
        } else {
            while true {
                guard i < r.count else { return nil }
                let n = Int(r[i])
                guard n & 0xC0 == 0, i + n < r.count else { return nil }
                for j in 0...n {
                    var c = r[i + j]
                    if j > 0, c >= 65, c <= 90 { c |= 0x20 }
                    h = (h ^ UInt64(c)) &* 0x100_0000_01b3
                }
                i += n + 1
                if n == 0 { break }
            }
            i += 4
            guard i <= r.count else { return nil }
        }
        let rcode = r[3] & 0x0F
        let answers = Int(r[6]) << 8 | Int(r[7])
        let authoritative = r[2] & 0x04 != 0
        let kind: ResponseKind
        switch rcode {
        case 0: kind = answers > 0 ? .answer : (authoritative ? .nodata : .referral)
        case 3: kind = .nxdomain
        default: kind = .error
        }
        return (kind, h, i)
    }
}
