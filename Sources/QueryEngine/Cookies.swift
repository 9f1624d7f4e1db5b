import Diagnostics
import Foundation
import DNSWire
import GeoTopology

/// DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018): a server cookie is
/// Version 1 | Reserved (3) | Timestamp (4) | SipHash-2-4(secret, client cookie | version |
/// reserved | timestamp | client IP) (8). Instances that share a secret accept each other's
/// cookies; two secrets are accepted at once during a rotation (the first signs).
public struct CookieConfig: Sendable, Equatable {
    /// 16-octet SipHash keys; the first makes new cookies.
    public var secrets: [[UInt8]]

    /// The largest UDP answer, in octets, to a query without a valid server cookie; larger
    /// answers are truncated (TC=1) so the client retries over TCP or with the cookie it was
    /// just given (RFC 7873 5.2.2 lets a server require cookies for large answers). Nil: no
    /// limit beyond the client's EDNS payload size.
    public var cookielessUDPLimit: Int?

    public init(secrets: [[UInt8]], cookielessUDPLimit: Int? = nil) {
        self.secrets = secrets.filter { $0.count == 16 }
        self.cookielessUDPLimit = cookielessUDPLimit.map { max(512, min($0, 65535)) }
    }

    public var enabled: Bool { !secrets.isEmpty }
}

/// The cookie secret file: one or two 16-octet secrets as 32 hex digits, one per line, `#`
/// comments; the first makes new cookies, both are accepted.
public enum CookieSecretFile {
    public enum LoadError: Error, Sendable, CustomStringConvertible {
        case unreadable(String)
        case bad(file: String, line: Int, reason: String)

        public var description: String {
            switch self {
            case .unreadable(let p): return "\(p): cannot read the cookie secret file"
            case let .bad(f, l, r): return "\(f):\(l): \(r)"
            }
        }
    }

    public static func parse(_ text: String, file: String) throws(LoadError) -> CookieConfig {
        var secrets: [[UInt8]] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = (raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "").filter { !$0.isWhitespace }
            if line.isEmpty { continue }
            let hex = Array(line.utf8)
            guard hex.count == 32 else { throw .bad(file: file, line: i + 1, reason: "a secret is 32 hex digits (16 octets), not \(hex.count) characters") }
            var key: [UInt8] = []
            for j in stride(from: 0, to: 32, by: 2) {
                guard let hi = hexValue(hex[j]), let lo = hexValue(hex[j + 1]) else { throw .bad(file: file, line: i + 1, reason: "not hex") }
                key.append(hi << 4 | lo)
            }
            secrets.append(key)
        }
        guard (1...2).contains(secrets.count) else { throw .bad(file: file, line: 1, reason: "expected 1 or 2 secrets, found \(secrets.count)") }
        return CookieConfig(secrets: secrets)
    }

    public static func load(path: String) throws(LoadError) -> CookieConfig {
        guard let text = try? OperatorFile.text(path, maxBytes: 4095) else { throw .unreadable(path) }
        return try parse(text, file: path)
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return nil
        }
    }
}

public enum ServerCookie {
    /// A cookie is accepted up to an hour after it was made and five minutes before (RFC 9018 4.3).
    static let maxAge: UInt32 = 3600
    static let maxAhead: UInt32 = 300

    /// Whether the server cookie (`cookie[8...]`) is one of ours for this client and time.
    public static func isValid(_ cookie: UnsafeRawBufferPointer, client: IPAddress, now: UInt32, config: CookieConfig) -> Bool {
        guard cookie.count == 24, cookie[8] == 1, cookie[9] == 0, cookie[10] == 0, cookie[11] == 0 else { return false }
        let stamp = UInt32(cookie[12]) << 24 | UInt32(cookie[13]) << 16 | UInt32(cookie[14]) << 8 | UInt32(cookie[15])
        // Serial arithmetic (RFC 1982): a difference in either direction of the 32-bit clock.
        let age = now &- stamp
        guard age <= maxAge || stamp &- now <= maxAhead else { return false }
        // The hash travels in SipHash's little-endian byte order.
        var got: UInt64 = 0
        for i in (16..<24).reversed() { got = got << 8 | UInt64(cookie[i]) }
        for secret in config.secrets where hash(cookie, stamp: stamp, client: client, secret: secret) == got { return true }
        return false
    }

    /// The 16-octet server cookie for this client cookie (`cookie[0..<8]`), client and time.
    public static func make(_ cookie: UnsafeRawBufferPointer, client: IPAddress, now: UInt32, config: CookieConfig) -> (UInt64, UInt64) {
        let h = hash(cookie, stamp: now, client: client, secret: config.secrets[0])
        return (0x0100_0000_0000_0000 | UInt64(now), h)
    }

    static func hash(_ cookie: UnsafeRawBufferPointer, stamp: UInt32, client: IPAddress, secret: [UInt8]) -> UInt64 {
        var input = SipHash.Input()
        for i in 0..<8 { input.append(cookie[i]) }
        input.append(1); input.append(0); input.append(0); input.append(0)
        input.append(UInt8(stamp >> 24)); input.append(UInt8((stamp >> 16) & 0xFF)); input.append(UInt8((stamp >> 8) & 0xFF)); input.append(UInt8(stamp & 0xFF))
        for i in 0..<(client.family == .v4 ? 4 : 16) { input.append(client.bytes[i]) }
        return SipHash.hash24(key: secret, input)
    }
}

/// SipHash-2-4 (Aumasson and Bernstein), as RFC 9018 uses it. Small inputs only (40 octets).
public enum SipHash {
    /// A fixed buffer for the input, so hashing allocates nothing.
    public struct Input {
        var bytes = SIMD64<UInt8>(repeating: 0)
        var count = 0
        public init() {}
        public mutating func append(_ b: UInt8) {
            guard count < 64 else { return }
            bytes[count] = b
            count += 1
        }
    }

    @inline(__always) static func rotl(_ x: UInt64, _ b: UInt64) -> UInt64 { (x << b) | (x >> (64 - b)) }

    /// The four state words, with SipHash-2-4's two compression rounds per block and four
    /// finalization rounds.
    struct State {
        var v0: UInt64, v1: UInt64, v2: UInt64, v3: UInt64

        @inline(__always) init(k0: UInt64, k1: UInt64) {
            v0 = 0x736f_6d65_7073_6575 ^ k0
            v1 = 0x646f_7261_6e64_6f6d ^ k1
            v2 = 0x6c79_6765_6e65_7261 ^ k0
            v3 = 0x7465_6462_7974_6573 ^ k1
        }

        @inline(__always) mutating func round() {
            v0 = v0 &+ v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
            v2 = v2 &+ v3; v3 = rotl(v3, 16); v3 ^= v2
            v0 = v0 &+ v3; v3 = rotl(v3, 21); v3 ^= v0
            v2 = v2 &+ v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
        }

        @inline(__always) mutating func compress(_ m: UInt64) {
            v3 ^= m
            round(); round()
            v0 ^= m
        }

        /// The last block (the length in its top octet) and the finalization.
        @inline(__always) mutating func finish(_ last: UInt64) -> UInt64 {
            compress(last)
            v2 ^= 0xff
            round(); round(); round(); round()
            return v0 ^ v1 ^ v2 ^ v3
        }
    }

    public static func hash24(key: [UInt8], _ input: Input) -> UInt64 {
        func le(_ bytes: (Int) -> UInt8, _ at: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(bytes(at + i)) << (8 * UInt64(i)) }
            return v
        }
        var state = State(k0: le({ key.count > $0 ? key[$0] : 0 }, 0), k1: le({ key.count > $0 ? key[$0] : 0 }, 8))
        let n = input.count
        let blocks = n / 8
        for b in 0..<blocks { state.compress(le({ input.bytes[$0] }, b * 8)) }
        var last = UInt64(truncatingIfNeeded: n) << 56
        for i in 0..<(n % 8) { last |= UInt64(input.bytes[blocks * 8 + i]) << (8 * UInt64(i)) }
        return state.finish(last)
    }

    /// SipHash-2-4 of exactly three 64-bit words (24 octets, each word little-endian), for
    /// keys made on the answer path: no buffer, no loop over octets.
    @inline(__always)
    public static func hash24(k0: UInt64, k1: UInt64, _ m0: UInt64, _ m1: UInt64, _ m2: UInt64) -> UInt64 {
        var state = State(k0: k0, k1: k1)
        state.compress(m0)
        state.compress(m1)
        state.compress(m2)
        return state.finish(UInt64(24) << 56)
    }

    /// SipHash-2-4 of an address's 16 octets (two little-endian words) and a word that says
    /// what is hashed: the keys of rate limiting and connection tables.
    @inline(__always)
    public static func hash24(k0: UInt64, k1: UInt64, octets p: SIMD16<UInt8>, _ tag: UInt64) -> UInt64 {
        var m0: UInt64 = 0, m1: UInt64 = 0
        for i in 0..<8 {
            m0 |= UInt64(p[i]) << UInt64(8 * i)
            m1 |= UInt64(p[i + 8]) << UInt64(8 * i)
        }
        return hash24(k0: k0, k1: k1, m0, m1, tag)
    }
}
