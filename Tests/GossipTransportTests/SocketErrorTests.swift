import Gossip
@testable import GossipTransport
import Logging
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Fails every datagram write with `errno`, then closes the channel, as SwiftNIO does on most
/// datagram write errors: the fault injected as a decorator of the real socket's pipeline.
final class FailingWrites: ChannelOutboundHandler, @unchecked Sendable {
    typealias OutboundIn = AddressedEnvelope<ByteBuffer>
    let errno: Int32
    var armed = true
    init(errno: Int32) { self.errno = errno }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard armed else { return context.write(data, promise: promise) }
        armed = false
        promise?.fail(IOError(errnoCode: errno, reason: "sendmsg"))
        context.close(promise: nil)
    }
}

@Suite("Gossip socket errors")
struct SocketErrorTests {
    func transport(_ loop: any EventLoop) async throws -> GossipTransport {
        let t = GossipTransport(nodeName: "ns1", listen: GossipAddress("127.0.0.1:\(Int.random(in: 20000...32000))")!, keys: .insecureKey, loop: loop, logger: Logger(label: "test"))
        try await loop.submit {
            t.attach(GossipHandlers(received: { _, _, _ in }, exchanged: { _, _, _, _ in }, serve: { _, _, _ in nil }))
        }.get()
        try await t.start()
        return t
    }

    func waitFor(_ loop: any EventLoop, _ t: GossipTransport, timeout: Double = 5, _ pred: @escaping @Sendable (GroupStats) -> Bool) async throws -> Bool {
        let deadline = NIODeadline.now() + .milliseconds(Int64(timeout * 1000))
        while NIODeadline.now() < deadline {
            if try await loop.submit({ pred(t.stats) }).get() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// ENOBUFS and EPERM on a send: counted by kind, the socket NIO closed is bound again, and
    /// the next datagram goes out.
    @Test(arguments: [(ENOBUFS, "send ENOBUFS"), (EPERM, "send EPERM")])
    func aFailedSendIsCountedAndTheSocketComesBack(errno: Int32, kind: String) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let t = try await transport(loop)
        try await loop.submit { try t.udpChannel!.pipeline.syncOperations.addHandler(FailingWrites(errno: errno), position: .first) }.get()
        try await loop.submit { t.send(Packet(.gossip), to: "127.0.0.1:9") }.get()
        #expect(try await waitFor(loop, t) { $0.socketErrors[kind] == 1 && $0.socketErrors["closed"] == 1 })
        #expect(try await waitFor(loop, t) { $0.rebinds == 1 })
        let before = try await loop.submit { t.stats.packetsOut }.get()
        try await loop.submit { t.send(Packet(.gossip), to: "127.0.0.1:9") }.get()
        #expect(try await waitFor(loop, t) { $0.packetsOut == before + 1 && $0.socketErrors.values.reduce(0, +) == 2 })
        await t.shutdown()
        try await group.shutdownGracefully()
    }
}
