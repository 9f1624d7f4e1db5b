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
        clientAddress.withUnsafeBytes { a in
            message.withUnsafeBytes { m in
                Array(Self.frame(
                    kind: kind, socketProtocol: socketProtocol, client: a, port: clientPort, seconds: seconds, nanoseconds: nanoseconds,
                    message: m, identity: identity, version: version).dropFirst(4))
            }
        }
    }

    /// A Frame Streams data frame holding the `Dnstap` message, made in one allocation: the
    /// sizes are worked out first, then every field is written once (the answer path's
    /// encoder; `encoded` is the same without the frame's length).
    @inline(__always)
    public static func frame(
        kind: Kind, socketProtocol: SocketProtocol, client: UnsafeRawBufferPointer, port: UInt16?, seconds: UInt64, nanoseconds: UInt32,
        message: UnsafeRawBufferPointer, identity: [UInt8], version: [UInt8]
    ) -> [UInt8] {
        let query = kind == .authQuery
        var inner = 2 + 2 + 2 + 1 + Protobuf.size(UInt64(client.count)) + client.count
        if let port { inner += 1 + Protobuf.size(UInt64(port)) }
        inner += 1 + Protobuf.size(seconds) + 5 + 1 + Protobuf.size(UInt64(message.count)) + message.count
        var outer = 1 + Protobuf.size(UInt64(inner)) + inner + 2
        if !identity.isEmpty { outer += 1 + Protobuf.size(UInt64(identity.count)) + identity.count }
        if !version.isEmpty { outer += 1 + Protobuf.size(UInt64(version.count)) + version.count }
        return [UInt8](unsafeUninitializedCapacity: 4 + outer) { b, count in
            var w = Protobuf(b)
            w.byte(UInt8(truncatingIfNeeded: outer >> 24)); w.byte(UInt8(truncatingIfNeeded: outer >> 16))
            w.byte(UInt8(truncatingIfNeeded: outer >> 8)); w.byte(UInt8(truncatingIfNeeded: outer))
            if !identity.isEmpty { identity.withUnsafeBytes { w.bytes(field: 1, $0) } }
            if !version.isEmpty { version.withUnsafeBytes { w.bytes(field: 2, $0) } }
            w.tag(14, 2)
            w.varint(UInt64(inner))
            w.field(1, kind.rawValue)
            w.field(2, client.count == 4 ? 1 : 2)  // socket_family: INET, INET6
            w.field(3, socketProtocol.rawValue)
            w.bytes(field: 4, client)
            if let port { w.field(6, UInt64(port)) }
            w.field(query ? 8 : 12, seconds)
            w.tag(query ? 9 : 13, 5)
            for i in 0..<4 { w.byte(UInt8(truncatingIfNeeded: nanoseconds >> (8 * UInt32(i)))) }
            w.bytes(field: query ? 10 : 14, message)
            w.field(15, 1)  // Dnstap.Type MESSAGE
            count = w.at
        }
    }
}

/// The protobuf wire format's three encodings that dnstap needs (varint, 32-bit,
/// length-delimited), written into a buffer sized beforehand.
struct Protobuf {
    let out: UnsafeMutableBufferPointer<UInt8>
    var at = 0

    init(_ out: UnsafeMutableBufferPointer<UInt8>) { self.out = out }

    /// The octets of `v` as a varint.
    @inline(__always)
    static func size(_ v: UInt64) -> Int { v == 0 ? 1 : (64 - v.leadingZeroBitCount + 6) / 7 }

    @inline(__always)
    mutating func byte(_ b: UInt8) {
        out[at] = b
        at += 1
    }

    @inline(__always)
    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            byte(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        byte(UInt8(v))
    }

    @inline(__always)
    mutating func tag(_ field: Int, _ wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

    @inline(__always)
    mutating func field(_ field: Int, _ v: UInt64) {
        tag(field, 0)
        varint(v)
    }

    @inline(__always)
    mutating func bytes(field: Int, _ b: UnsafeRawBufferPointer) {
        tag(field, 2)
        varint(UInt64(b.count))
        if let base = b.baseAddress, b.count > 0 {
            (out.baseAddress! + at).update(from: base.assumingMemoryBound(to: UInt8.self), count: b.count)
            at += b.count
        }
    }
}
