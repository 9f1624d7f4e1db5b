#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as 16 octets (IPv4 in the first four).
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Family: Sendable, Hashable {
        case v4
        case v6
    }

    public var family: Family
    public var bytes: SIMD16<UInt8>

    public init(family: Family, bytes: SIMD16<UInt8>) {
        self.family = family
        self.bytes = bytes
    }

    /// The address length in bits: 32 or 128.
    @inlinable public var bitCount: Int { family == .v4 ? 32 : 128 }

    /// Bit `i` from the most significant end.
    @inlinable @inline(__always)
    public func bit(_ i: Int) -> Bool { bytes[i >> 3] & (0x80 >> UInt8(i & 7)) != 0 }

    /// The address with every bit past `prefix` cleared.
    public func truncated(to prefix: Int) -> IPAddress {
        var b = bytes
        for i in 0..<16 {
            let keep = prefix - i * 8
            if keep <= 0 { b[i] = 0 } else if keep < 8 { b[i] &= UInt8(0xFF) << UInt8(8 - keep) }
        }
        return IPAddress(family: family, bytes: b)
    }

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text.
    public init?(_ text: String) {
        var b = SIMD16<UInt8>(repeating: 0)
        if text.contains(":") {
            var a = in6_addr()
            guard inet_pton(AF_INET6, text, &a) == 1 else { return nil }
            withUnsafeBytes(of: &a) { for i in 0..<16 { b[i] = $0[i] } }
            self.init(family: .v6, bytes: b)
        } else {
            var a = in_addr()
            guard inet_pton(AF_INET, text, &a) == 1 else { return nil }
            withUnsafeBytes(of: &a) { for i in 0..<4 { b[i] = $0[i] } }
            self.init(family: .v4, bytes: b)
        }
    }

    public var description: String {
        var buf = [CChar](repeating: 0, count: 64)
        if family == .v4 {
            var a = in_addr()
            withUnsafeMutableBytes(of: &a) { for i in 0..<4 { $0[i] = bytes[i] } }
            inet_ntop(AF_INET, &a, &buf, 64)
        } else {
            var a = in6_addr()
            withUnsafeMutableBytes(of: &a) { for i in 0..<16 { $0[i] = bytes[i] } }
            inet_ntop(AF_INET6, &a, &buf, 64)
        }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The address octets (4 or 16).
    public var octets: [UInt8] { (0..<(family == .v4 ? 4 : 16)).map { bytes[$0] } }
}

/// An address prefix (`10.1.0.0/16`, `2001:db8::/32`).
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    public var address: IPAddress
    public var prefix: Int

    public init(address: IPAddress, prefix: Int) {
        self.address = address.truncated(to: prefix)
        self.prefix = prefix
    }

    /// Parses `ADDRESS/PREFIX`; a bare address is a host prefix. Rejects host bits set past
    /// the prefix, so a typo like `10.1.2.0/8` is caught.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let a = IPAddress(String(parts[0])) else { return nil }
        let p: Int
        if parts.count == 2 {
            guard let v = Int(parts[1]), v >= 0, v <= a.bitCount else { return nil }
            p = v
        } else {
            p = a.bitCount
        }
        guard a.truncated(to: p) == a else { return nil }
        self.init(address: a, prefix: p)
    }

    public func contains(_ a: IPAddress) -> Bool {
        a.family == address.family && a.truncated(to: prefix) == address
    }

    public var description: String { "\(address)/\(prefix)" }
}
