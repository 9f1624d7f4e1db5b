/// One dnstap message (dnstap.proto, https://dnstap.info): what an authoritative server saw
/// and sent, `AUTH_QUERY` and `AUTH_RESPONSE`, encoded as the `Dnstap` protobuf by hand (a few
/// fields; no protobuf runtime on the answer path).
public struct DnstapMessage: Sendable, Equatable {
    /// `Message.Type` (dnstap.proto): 1 AUTH_QUERY, 2 AUTH_RESPONSE.
    public enum Kind: UInt64, Sendable { case authQuery = 1, authResponse = 2 }
    /// `SocketProtocol`: 1 UDP, 2 TCP.
    public enum SocketProtocol: UInt64, Sendable { case udp = 1, tcp = 2 }

    public var kind: Kind
    public var socketProtocol: SocketProtocol
    /// The client's address, 4 or 16 octets (`query_address`), and port when known.
    public var clientAddress: [UInt8]
    public var clientPort: UInt16?
    /// The time the query arrived (`query_time_*`) or the response left (`response_time_*`).
    public var seconds: UInt64
    public var nanoseconds: UInt32
    /// The DNS message (`query_message` or `response_message`), as on the wire.
    public var message: [UInt8]

    public init(kind: Kind, socketProtocol: SocketProtocol, clientAddress: [UInt8], clientPort: UInt16?, seconds: UInt64, nanoseconds: UInt32, message: [UInt8]) {
        self.kind = kind
        self.socketProtocol = socketProtocol
        self.clientAddress = clientAddress
        self.clientPort = clientPort
        self.seconds = seconds
        self.nanoseconds = nanoseconds
        self.message = message
    }

    /// The `Dnstap` protobuf: identity (1), version (2), message (14), type MESSAGE (15).
    public func encoded(identity: [UInt8], version: [UInt8]) -> [UInt8] {
        var inner = ProtobufWriter()
        inner.varint(field: 1, kind.rawValue)
        inner.varint(field: 2, clientAddress.count == 4 ? 1 : 2)  // socket_family: INET, INET6
        inner.varint(field: 3, socketProtocol.rawValue)
        inner.bytes(field: 4, clientAddress)
        if let clientPort { inner.varint(field: 6, UInt64(clientPort)) }
        if kind == .authQuery {
            inner.varint(field: 8, seconds)
            inner.fixed32(field: 9, nanoseconds)
            inner.bytes(field: 10, message)
        } else {
            inner.varint(field: 12, seconds)
            inner.fixed32(field: 13, nanoseconds)
            inner.bytes(field: 14, message)
        }
        var outer = ProtobufWriter()
        if !identity.isEmpty { outer.bytes(field: 1, identity) }
        if !version.isEmpty { outer.bytes(field: 2, version) }
        outer.bytes(field: 14, inner.out)
        outer.varint(field: 15, 1)  // Dnstap.Type MESSAGE
        return outer.out
    }
}

/// The protobuf wire format's three encodings that dnstap needs (varint, 32-bit, length-delimited).
struct ProtobufWriter {
    var out: [UInt8] = []

    mutating func tag(_ field: Int, _ wireType: UInt64) { raw(UInt64(field) << 3 | wireType) }

    mutating func raw(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    mutating func varint(field: Int, _ v: UInt64) {
        tag(field, 0)
        raw(v)
    }

    mutating func fixed32(field: Int, _ v: UInt32) {
        tag(field, 5)
        for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) }
    }

    mutating func bytes(field: Int, _ b: [UInt8]) {
        tag(field, 2)
        raw(UInt64(b.count))
        out += b
    }
}
