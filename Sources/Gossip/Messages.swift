/// A membership update, spread by piggybacking on SWIM messages (SWIM section 4.1).
public enum Update: Sendable, Equatable {
    /// `name` is alive at `incarnation`, gossip address `address`, pool configuration `digest`.
    case alive(name: String, address: String, incarnation: UInt64, digest: UInt64)
    /// `by` suspects `name` at `incarnation` (SWIM 4.2).
    case suspect(name: String, incarnation: UInt64, by: String)
    /// `by` declared `name` dead at `incarnation`, or `name` left the group itself.
    case dead(name: String, incarnation: UInt64, by: String, left: Bool)
    /// An application entry (a ledger entry), opaque to membership; `key` is what a newer one
    /// replaces in the send queue.
    case data(key: String, bytes: [UInt8])

    /// The member an update is about (nil for data).
    public var subject: String? {
        switch self {
        case .alive(let n, _, _, _), .suspect(let n, _, _), .dead(let n, _, _, _): return n
        case .data: return nil
        }
    }

    /// What a newer update replaces in the send queue.
    var queueKey: String {
        switch self {
        case .data(let k, _): return "d" + k
        default: return "m" + (subject ?? "")
        }
    }

    /// Octets it takes on the wire.
    var encodedSize: Int {
        var w = ByteWriter(capacity: 64)
        encode(&w)
        return w.bytes.count
    }

    func encode(_ w: inout ByteWriter) {
        switch self {
        case let .alive(n, a, i, d):
            w.u8(1); w.str8(n); w.str8(a); w.u64(i); w.u64(d)
        case let .suspect(n, i, by):
            w.u8(2); w.str8(n); w.u64(i); w.str8(by)
        case let .dead(n, i, by, left):
            w.u8(3); w.str8(n); w.u64(i); w.str8(by); w.u8(left ? 1 : 0)
        case let .data(k, b):
            w.u8(4); w.str16(k); w.blob16(b)
        }
    }

    static func decode(_ r: inout ByteReader) throws(DecodeError) -> Update {
        switch try r.u8("update type") {
        case 1:
            return .alive(name: try r.str8("name", max: Limits.name), address: try r.str8("address"), incarnation: try r.u64("incarnation"), digest: try r.u64("digest"))
        case 2:
            return .suspect(name: try r.str8("name", max: Limits.name), incarnation: try r.u64("incarnation"), by: try r.str8("suspecter", max: Limits.name))
        case 3:
            let n = try r.str8("name", max: Limits.name)
            let i = try r.u64("incarnation")
            let by = try r.str8("by", max: Limits.name)
            let left = try r.u8("left")
            guard left <= 1 else { throw .badValue(what: "left flag") }
            return .dead(name: n, incarnation: i, by: by, left: left == 1)
        case 4:
            return .data(key: try r.str16("data key", max: 4096), bytes: try r.blob16("data", max: Limits.packet))
        default:
            throw .badValue(what: "update type")
        }
    }
}

/// What one SWIM message asks (SWIM section 3): a direct probe, its answer, an indirect probe
/// request, or updates alone (the fast dissemination tick).
public enum Message: Sendable, Equatable {
    case ping(seq: UInt32, target: String)
    case ack(seq: UInt32)
    case pingReq(seq: UInt32, target: String, address: String)
    case gossip

    var code: UInt8 {
        switch self {
        case .ping: return 1
        case .ack: return 2
        case .pingReq: return 3
        case .gossip: return 4
        }
    }
}

/// A SWIM message with the updates piggybacked on it.
public struct Packet: Sendable, Equatable {
    public var message: Message
    public var updates: [Update]

    public init(_ message: Message, updates: [Update] = []) {
        self.message = message
        self.updates = updates
    }

    func encodeBody(_ w: inout ByteWriter) {
        w.u8(message.code)
        switch message {
        case let .ping(seq, target): w.u32(seq); w.str8(target)
        case let .ack(seq): w.u32(seq)
        case let .pingReq(seq, target, address): w.u32(seq); w.str8(target); w.str8(address)
        case .gossip: break
        }
        w.u16(UInt16(min(updates.count, Int(UInt16.max))))
        for u in updates.prefix(Int(UInt16.max)) { u.encode(&w) }
    }

    static func decodeBody(_ r: inout ByteReader) throws(DecodeError) -> Packet {
        let message: Message
        switch try r.u8("message type") {
        case 1: message = .ping(seq: try r.u32("seq"), target: try r.str8("target", max: Limits.name))
        case 2: message = .ack(seq: try r.u32("seq"))
        case 3: message = .pingReq(seq: try r.u32("seq"), target: try r.str8("target", max: Limits.name), address: try r.str8("address"))
        case 4: message = .gossip
        default: throw .badValue(what: "message type")
        }
        let n = Int(try r.u16("update count"))
        guard n <= Limits.updatesPerPacket else { throw .tooLong(what: "update list", length: n) }
        var updates: [Update] = []
        updates.reserveCapacity(n)
        for _ in 0..<n { updates.append(try Update.decode(&r)) }
        return Packet(message, updates: updates)
    }

    /// The packet's body octets (what the envelope seals).
    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 512)
        encodeBody(&w)
        return w.bytes
    }

    /// A packet from a body the envelope opened; trailing octets are an error.
    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> Packet {
        var r = ByteReader(bytes)
        let p = try decodeBody(&r)
        guard r.remaining == 0 else { throw .trailing(r.remaining) }
        return p
    }
}

/// The bounds every decoder enforces.
public enum Limits {
    /// Peer names: at most this many octets.
    public static let name = 64
    /// The largest UDP message sent or accepted (memberlist's default; fits a 1500-octet MTU).
    public static let packet = 1400
    public static let updatesPerPacket = 512
    /// The largest push-pull state accepted over TCP.
    public static let state = 16 * 1024 * 1024
    /// The most members a state may list.
    public static let members = 1024
}
