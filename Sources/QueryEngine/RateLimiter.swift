import DNSWire
import GeoTopology

/// Response rate limiting settings (as in Knot and NSD): UDP responses per second per
/// (client prefix, response class, name); limited responses are dropped, except every `slip`-th,
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
    /// Buckets per event loop (a power of two, in sets of `RateLimiter.ways`).
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

/// What a response is, for rate limiting, and so which name shares its budget (as Knot's
/// classes do): answers, NODATA at an existing name and referrals are limited per name (the
/// name asked, or the zone cut); denials of existence (NXDOMAIN, and the NOERROR/NXNAME of
/// compact denial, RFC 9824) per zone, and wildcard answers per wildcard owner, so random
/// names under a zone or a wildcard share one budget; errors per client prefix alone.
public enum ResponseKind: UInt8, Sendable {
    case answer = 1, nodata, referral, nxdomain, error, wildcard
}

/// The class of one response: its kind and an opaque number for the name that shares a budget
/// (`RateClass.name(zone:node:)`; 0 for none).
public struct RateClass: Sendable, Equatable {
    public var kind: ResponseKind
    public var name: UInt64

    public init(kind: ResponseKind, name: UInt64) {
        self.kind = kind
        self.name = name
    }

    /// A zone's node (or the zone itself, `node` -1) as a class name.
    @inline(__always)
    public static func name(zone: Int, node: Int) -> UInt64 {
        UInt64(UInt16(truncatingIfNeeded: zone + 1)) << 40 | UInt64(UInt32(truncatingIfNeeded: node + 1))
    }

    public static let error = RateClass(kind: .error, name: 0)
}

/// Where the first name of an answer was found (zone and node indexes of the snapshot it was
/// answered from), as the responder saw it: a few stores per query, made into a `RateClass`
/// only when rate limiting is on.
public struct RateSource: Sendable, Equatable {
    public enum Place: UInt8, Sendable {
        case none, node, wildcard, cut, denied
    }

    public var place: Place
    public var zone: Int32
    public var node: Int32

    @inline(__always)
    public init(_ place: Place, zone: Int, node: Int) {
        self.place = place
        self.zone = Int32(truncatingIfNeeded: zone)
        self.node = Int32(truncatingIfNeeded: node)
    }

    public static let none = RateSource(.none, zone: -1, node: -1)
}

extension QueryOutcome {
    /// The response's rate-limiting class (Knot's classes): NXDOMAIN and compact denial by the
    /// zone, wildcard answers by the wildcard, referrals by the cut, answers and NODATA by the
    /// node asked, errors by nothing.
    public var rateClass: RateClass {
        let s = rateSource
        let zone = RateClass.name(zone: Int(s.zone), node: -1)
        let node = RateClass.name(zone: Int(s.zone), node: Int(s.node))
        switch rcode {
        case RCode.nxDomain:
            // A CNAME chain may end in a name that does not exist: the zone of its first name.
            return s.place == .none ? .error : RateClass(kind: .nxdomain, name: zone)
        case RCode.noError:
            switch s.place {
            case .denied: return RateClass(kind: .nxdomain, name: zone)
            case .wildcard: return RateClass(kind: .wildcard, name: node)
            case .cut: return RateClass(kind: .referral, name: node)
            case .node: return RateClass(kind: answers > 0 ? .answer : .nodata, name: node)
            case .none: return RateClass(kind: answers > 0 ? .answer : .nodata, name: 0)
            }
        default:
            return .error
        }
    }
}

/// Token buckets in a fixed set-associative table: a pure value with time passed in (whole
/// seconds), one per event loop, so the query path takes no lock and allocates nothing.
///
/// Keys are SipHash-2-4 of (client prefix, class) under a secret drawn when the limiter is made,
/// so nobody can compute offline which keys share a set. A key that finds no bucket takes a
/// free one or one not used this second (whose budget would have refilled anyway) at a full
/// budget; when every bucket of its set was used this second it takes the one with the fewest
/// tokens and inherits what is left of them, so alternating keys in one set never mints tokens.
public struct RateLimiter: Sendable {
    public enum Decision: Sendable, Equatable {
        case send
        case drop
        /// Send it truncated (TC=1, no records).
        case slip
    }

    /// Buckets per set.
    public static let ways = 4

    public let config: RateLimitConfig
    private let secret: (UInt64, UInt64)
    /// 0 marks a free bucket; keys are never 0.
    private var keys: [UInt64]
    private var tokens: [Int32]
    private var seconds: [UInt32]
    private var limited: [UInt32]
    private let setMask: Int

    /// - Parameter secret: the hash key; random unless a test fixes it.
    public init(config: RateLimitConfig, secret: (UInt64, UInt64)? = nil) {
        self.config = config
        var g = SystemRandomNumberGenerator()
        self.secret = secret ?? (g.next(), g.next())
        let n = config.enabled ? config.tableSize : Self.ways
        keys = [UInt64](repeating: 0, count: n)
        tokens = [Int32](repeating: 0, count: n)
        seconds = [UInt32](repeating: 0, count: n)
        limited = [UInt32](repeating: 0, count: n)
        setMask = n / Self.ways - 1
    }

    /// The bucket key of a response: the client's prefix, the class's kind and, except for
    /// errors, its name.
    @inline(__always)
    public func key(client: IPAddress, rateClass c: RateClass) -> UInt64 {
        let v4 = client.family == .v4
        let prefix = client.truncated(to: v4 ? config.ipv4Prefix : config.ipv6Prefix).bytes
        let name = c.kind == .error ? 0 : c.name & 0x00FF_FFFF_FFFF_FFFF
        let h = SipHash.hash24(k0: secret.0, k1: secret.1, octets: prefix, name | UInt64(c.kind.rawValue | (v4 ? 0x80 : 0)) << 56)
        return h == 0 ? 1 : h
    }

    /// Takes a token for `key` at time `now` (seconds), or says what to do without one.
    @inline(__always)
    public mutating func decide(key: UInt64, now: UInt32) -> Decision {
        let i = bucket(for: key, now: now)
        if seconds[i] != now {
            // A second passed: refill (at most one second's worth: no bursts saved up).
            tokens[i] = Int32(clamping: config.responsesPerSecond)
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

    /// The bucket that holds `key`, taking one when none does.
    @inline(__always)
    private mutating func bucket(for key: UInt64, now: UInt32) -> Int {
        let base = (Int(truncatingIfNeeded: key >> 32) & setMask) * Self.ways
        for i in base..<(base + Self.ways) where keys[i] == key { return i }
        var fewest = base
        for i in base..<(base + Self.ways) {
            if keys[i] == 0 || seconds[i] != now {
                // Free, or idle this second: the newcomer starts afresh.
                keys[i] = key
                seconds[i] = now &- 1
                limited[i] = 0
                return i
            }
            if tokens[i] < tokens[fewest] { fewest = i }
        }
        // Every bucket of the set is in use this second: the newcomer inherits the emptiest
        // one's remaining tokens and count, never a fresh budget.
        keys[fewest] = key
        return fewest
    }

    /// How many buckets hold a key (for tests).
    var used: Int { keys.filter { $0 != 0 }.count }
}
