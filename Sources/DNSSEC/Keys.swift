import Crypto
import DNSWire
import Foundation

/// The signing algorithms Meridian signs with (RFC 8624 3.1: both MUST be validated).
public enum DNSSECAlgorithm: UInt8, Sendable, CaseIterable {
    /// ECDSA P-256 with SHA-256 (RFC 6605).
    case ecdsaP256SHA256 = 13
    /// Ed25519 (RFC 8080).
    case ed25519 = 15

    /// The mnemonic BIND writes in key files.
    public var mnemonic: String { self == .ecdsaP256SHA256 ? "ECDSAP256SHA256" : "ED25519" }
}

/// Why a key could not be used.
public enum KeyError: Error, Equatable, CustomStringConvertible {
    case unsupportedAlgorithm(Int)
    case badKey(String)

    public var description: String {
        switch self {
        case .unsupportedAlgorithm(let a): return "algorithm \(a) is not supported (13 ECDSAP256SHA256 and 15 ED25519 are)"
        case .badKey(let why): return why
        }
    }
}

/// A private key that signs, ECDSA P-256 or Ed25519, through swift-crypto.
public struct SigningKey: @unchecked Sendable {
    // @unchecked: swift-crypto's key types are immutable values that are safe to share across
    // threads, but not all of them declare Sendable in the version used here.
    // Two optionals rather than a two-case enum: a multi-payload enum keeps its payload's
    // references with tag bits set, which LeakSanitizer cannot follow (a key held for the life
    // of the process was reported as leaked).
    let p256: P256.Signing.PrivateKey?
    let ed25519: Curve25519.Signing.PrivateKey?
    public let algorithm: DNSSECAlgorithm

    /// The key from its raw private octets: the 32-octet scalar (P-256) or seed (Ed25519), as
    /// the `PrivateKey:` field of a BIND key file holds them.
    public init(algorithm: DNSSECAlgorithm, raw: [UInt8]) throws(KeyError) {
        self.algorithm = algorithm
        guard raw.count == 32 else { throw .badKey("a private key of \(algorithm.mnemonic) is 32 octets, not \(raw.count)") }
        do {
            switch algorithm {
            case .ecdsaP256SHA256:
                p256 = try P256.Signing.PrivateKey(rawRepresentation: raw)
                ed25519 = nil
            case .ed25519:
                p256 = nil
                ed25519 = try Curve25519.Signing.PrivateKey(rawRepresentation: raw)
            }
        } catch {
            throw .badKey("the private key is not a valid \(algorithm.mnemonic) key")
        }
    }

    /// A new random key.
    public static func generate(_ algorithm: DNSSECAlgorithm) -> SigningKey {
        switch algorithm {
        case .ecdsaP256SHA256: return SigningKey(p256: P256.Signing.PrivateKey(), ed25519: nil, algorithm: algorithm)
        case .ed25519: return SigningKey(p256: nil, ed25519: Curve25519.Signing.PrivateKey(), algorithm: algorithm)
        }
    }

    init(p256: P256.Signing.PrivateKey?, ed25519: Curve25519.Signing.PrivateKey?, algorithm: DNSSECAlgorithm) {
        self.p256 = p256
        self.ed25519 = ed25519
        self.algorithm = algorithm
    }

    /// The raw private octets (for the key file).
    public var raw: [UInt8] {
        if let k = p256 { return Array(k.rawRepresentation) }
        return ed25519.map { Array($0.rawRepresentation) } ?? []
    }

    /// The DNSKEY public key field: x | y for P-256 (RFC 6605 4), the 32-octet key for
    /// Ed25519 (RFC 8080 3).
    public var publicKey: [UInt8] {
        if let k = p256 { return Array(k.publicKey.rawRepresentation) }
        return ed25519.map { Array($0.publicKey.rawRepresentation) } ?? []
    }

    /// The signature over `data`: r | s, 64 octets, for P-256 over SHA-256 (RFC 6605 4);
    /// the 64-octet PureEdDSA signature for Ed25519 (RFC 8080 4).
    public func sign(_ data: [UInt8]) throws(KeyError) -> [UInt8] {
        do {
            if let k = p256 { return Array(try k.signature(for: data).rawRepresentation) }
            if let k = ed25519 { return Array(try k.signature(for: data)) }
            throw KeyError.badKey("no private key")
        } catch {
            throw .badKey("signing failed: \(error)")
        }
    }

    /// Whether `signature` over `data` is valid for a DNSKEY public key field.
    public static func verify(algorithm: DNSSECAlgorithm, publicKey: [UInt8], signature: [UInt8], data: [UInt8]) -> Bool {
        switch algorithm {
        case .ecdsaP256SHA256:
            guard let key = try? P256.Signing.PublicKey(rawRepresentation: publicKey),
                  let sig = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: data)
        case .ed25519:
            guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
            return key.isValidSignature(signature, for: data)
        }
    }
}

/// When a key enters and leaves its roles (the timing metadata of BIND key files), in UNIX
/// seconds; nil means "not set" (never happens, or already happened for `publish`/`activate`
/// when the file gives nothing).
public struct KeyTiming: Sendable, Equatable {
    public var created: UInt32?
    public var publish: UInt32?
    public var activate: UInt32?
    public var inactive: UInt32?
    public var delete: UInt32?

    public init(created: UInt32? = nil, publish: UInt32? = nil, activate: UInt32? = nil, inactive: UInt32? = nil, delete: UInt32? = nil) {
        self.created = created
        self.publish = publish
        self.activate = activate
        self.inactive = inactive
        self.delete = delete
    }

    /// In the DNSKEY RRset at `t`: published and not yet deleted (RFC 7583 3.1).
    public func isPublished(at t: UInt32) -> Bool {
        (publish ?? activate ?? 0) <= t && delete.map { t < $0 } != false
    }

    /// Signing at `t`: active and not yet inactive.
    public func isActive(at t: UInt32) -> Bool {
        (activate ?? 0) <= t && inactive.map { t < $0 } != false && isPublished(at: t)
    }

}

/// A zone's key: DNSKEY flags, the private key, its timing, and the file it came from.
public struct ZoneKey: Sendable {
    /// The zone apex, lowercased wire form.
    public let zone: [UInt8]
    /// 257 (Zone Key + Secure Entry Point: a KSK or CSK) or 256 (a ZSK), RFC 4034 2.1.1.
    public let flags: UInt16
    public let key: SigningKey
    public var timing: KeyTiming
    public let file: String
    /// The DNSKEY RDATA (RFC 4034 2.1): flags, protocol 3, algorithm, public key.
    public let dnskey: [UInt8]
    /// The key tag (RFC 4034 Appendix B).
    public let tag: UInt16

    public init(zone: [UInt8], flags: UInt16, key: SigningKey, timing: KeyTiming = KeyTiming(), file: String = "") {
        self.zone = Name.lowercased(zone)
        self.flags = flags
        self.key = key
        self.timing = timing
        self.file = file
        dnskey = [UInt8(flags >> 8), UInt8(flags & 0xFF), 3, key.algorithm.rawValue] + key.publicKey
        tag = KeyTag.of(dnskey)
    }

    /// A KSK or CSK: signs the DNSKEY RRset.
    public var isSEP: Bool { flags & 1 == 1 }

    /// The DS RDATA with a SHA-256 digest (RFC 4034 5.1.4, RFC 4509 2.1).
    public var ds: [UInt8] {
        let digest = SHA256.hash(data: zone + dnskey)
        return [UInt8(tag >> 8), UInt8(tag & 0xFF), key.algorithm.rawValue, 2] + Array(digest)
    }

    /// The DS record in presentation form, for the parent zone: `zone. IN DS tag alg 2 HEX`.
    public var dsText: String {
        "\(Name.text(zone)) IN DS \(tag) \(key.algorithm.rawValue) 2 \(ds[4...].map { String(format: "%02X", $0) }.joined())"
    }
}

/// The key tag of a DNSKEY RDATA (RFC 4034 Appendix B).
public enum KeyTag {
    public static func of(_ rdata: [UInt8]) -> UInt16 {
        var ac: UInt32 = 0
        for (i, b) in rdata.enumerated() { ac &+= (i & 1) == 1 ? UInt32(b) : UInt32(b) << 8 }
        ac &+= (ac >> 16) & 0xFFFF
        return UInt16(ac & 0xFFFF)
    }
}
