import Diagnostics
import Crypto
import Foundation

/// The gossip keys: the first signs, every one verifies (two at once during a rotation: add the
/// new key second everywhere, then make it first everywhere, then remove the old one).
public struct GossipKeys: Sendable {
    /// The key octets (kept as bytes: `SymmetricKey` is not `Sendable`; one is made per use).
    let material: [[UInt8]]
    var keys: [SymmetricKey] { material.map { SymmetricKey(data: $0) } }
    /// No key file: messages are signed with a known all-zero key, which authenticates nothing
    /// (`--gossip-insecure`).
    public let insecure: Bool

    public init(keys: [[UInt8]]) {
        material = keys
        insecure = false
    }

    private init(insecure: ()) {
        material = [[UInt8](repeating: 0, count: 32)]
        self.insecure = true
    }

    public static let insecureKey = GossipKeys(insecure: ())

    public enum LoadError: Error, Sendable, CustomStringConvertible {
        case unreadable(path: String)
        case bad(path: String, line: Int, reason: String)
        case count(path: String, found: Int)

        public var description: String {
            switch self {
            case .unreadable(let p): return "\(p): cannot read the gossip key file"
            case let .bad(p, l, r): return "\(p):\(l): \(r)"
            case let .count(p, n): return "\(p): expected 1 or 2 keys (base64, one per line), found \(n)"
            }
        }
    }

    /// Reads a key file: one or two keys, base64, one per line, at least 16 octets each;
    /// `#` starts a comment. The first key signs.
    public static func load(path: String) throws(LoadError) -> GossipKeys {
        guard let text = try? OperatorFile.text(path, maxBytes: OperatorFile.Limit.secret) else { throw .unreadable(path: path) }
        var keys: [[UInt8]] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = (raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "").trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            guard let k = Data(base64Encoded: line) else { throw .bad(path: path, line: i + 1, reason: "not base64") }
            guard k.count >= 16, k.count <= 64 else { throw .bad(path: path, line: i + 1, reason: "a key must have 16 to 64 octets, this has \(k.count)") }
            keys.append([UInt8](k))
        }
        guard (1...2).contains(keys.count) else { throw .count(path: path, found: keys.count) }
        return GossipKeys(keys: keys)
    }
}

/// What every gossip message carries around its body: who sent it, when, a per-sender
/// sequence number, and an HMAC-SHA256 over all of it.
///
///     "MG" | version 1 | kind | sender (len, octets) | time ms (8) | seq (8) | body | HMAC (32)
public struct Envelope: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        /// A SWIM packet (UDP).
        case packet = 1
        /// A push-pull state sent by the side that opened the connection (TCP).
        case stateRequest = 2
        /// The reply to it (and to a query).
        case stateResponse = 3
        /// A read-only request for the state (`meridian explain --peer`): answered, not merged.
        case stateQuery = 4
    }

    public var kind: Kind
    public var sender: String
    public var timeMillis: UInt64
    public var seq: UInt64
    public var body: [UInt8]

    public init(kind: Kind, sender: String, timeMillis: UInt64, seq: UInt64, body: [UInt8]) {
        self.kind = kind
        self.sender = sender
        self.timeMillis = timeMillis
        self.seq = seq
        self.body = body
    }

    static let macSize = 32

    public func seal(with keys: GossipKeys) -> [UInt8] {
        var w = ByteWriter(capacity: body.count + 96)
        w.u8(0x4D); w.u8(0x47); w.u8(1); w.u8(kind.rawValue)
        w.str8(sender)
        w.u64(timeMillis)
        w.u64(seq)
        w.bytes += body
        let mac = HMAC<SHA256>.authenticationCode(for: w.bytes, using: keys.keys[0])
        w.bytes += Array(mac)
        return w.bytes
    }

    public enum OpenError: Error, Sendable, Equatable, CustomStringConvertible {
        case tooShort
        case badMagic
        case badVersion
        case badMAC
        case malformed(DecodeError)

        public var reason: String {
            switch self {
            case .tooShort: return "short"
            case .badMagic: return "garbage"
            case .badVersion: return "version"
            case .badMAC: return "forged"
            case .malformed: return "malformed"
            }
        }

        public var description: String {
            switch self {
            case .malformed(let e): return "malformed: \(e)"
            default: return reason
            }
        }
    }

    /// Checks the MAC under each key, then reads the header.
    public static func open(_ bytes: [UInt8], keys: GossipKeys) throws(OpenError) -> Envelope {
        guard bytes.count >= 4 + 1 + 16 + macSize else { throw .tooShort }
        guard bytes[0] == 0x4D, bytes[1] == 0x47 else { throw .badMagic }
        guard bytes[2] == 1 else { throw .badVersion }
        let signed = bytes[0..<(bytes.count - macSize)]
        let mac = bytes[(bytes.count - macSize)...]
        guard keys.keys.contains(where: { HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: signed, using: $0) }) else { throw .badMAC }
        var r = ByteReader(Array(signed), offset: 3)
        do {
            guard let kind = Kind(rawValue: try r.u8("kind")) else { throw DecodeError.badValue(what: "kind") }
            let sender = try r.str8("sender", max: Limits.name)
            guard !sender.isEmpty else { throw DecodeError.badValue(what: "sender") }
            let time = try r.u64("time")
            let seq = try r.u64("seq")
            let body = Array(try r.take(r.remaining, "body"))
            return Envelope(kind: kind, sender: sender, timeMillis: time, seq: seq, body: body)
        } catch let e as DecodeError {
            throw .malformed(e)
        } catch {
            throw .malformed(.badValue(what: "envelope"))
        }
    }
}

/// Rejects stale and replayed messages: a message must be at most `maxSkewMillis` from local
/// time, and its sequence number new for its sender (a 64-message window below the highest
/// seen, as IPsec's anti-replay window). A sender starts its numbers at its start time in
/// microseconds, so a restarted sender's numbers are new too. A pure value.
public struct ReplayGuard: Sendable, Equatable {
    public enum Rejection: Error, Sendable, Equatable {
        case stale
        case replayed
    }

    struct Window: Sendable, Equatable {
        var highest: UInt64
        var seen: UInt64
    }

    public let maxSkewMillis: UInt64
    public let maxSenders: Int
    private var windows: [String: Window] = [:]

    public init(maxSkewMillis: UInt64 = 30_000, maxSenders: Int = 4096) {
        self.maxSkewMillis = maxSkewMillis
        self.maxSenders = maxSenders
    }

    /// Admits a message (and remembers it) or says why not.
    public mutating func admit(sender: String, seq: UInt64, timeMillis: UInt64, nowMillis: UInt64) throws(Rejection) {
        let skew = timeMillis > nowMillis ? timeMillis - nowMillis : nowMillis - timeMillis
        guard skew <= maxSkewMillis else { throw .stale }
        guard var w = windows[sender] else {
            if windows.count >= maxSenders { windows.removeAll(keepingCapacity: true) }
            windows[sender] = Window(highest: seq, seen: 1)
            return
        }
        if seq > w.highest {
            let shift = seq - w.highest
            w.seen = shift >= 64 ? 1 : (w.seen << shift) | 1
            w.highest = seq
        } else {
            let back = w.highest - seq
            guard back < 64, w.seen & (1 << back) == 0 else { throw .replayed }
            w.seen |= 1 << back
        }
        windows[sender] = w
    }

    /// Forgets a sender (it left or was replaced).
    public mutating func forget(_ sender: String) { windows[sender] = nil }
}
