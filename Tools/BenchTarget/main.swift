// meridian-bench-target: loopback targets for Tools/bench-checks.py. One port accepts TCP
// connections and closes them; another answers any HTTP request with 200 OK and closes.
// It counts both and prints the totals once a second, so the benchmark can read checks/s.
import Atomics
import Foundation
import NIOCore
import NIOPosix

let args = CommandLine.arguments
guard args.count == 4, let tcpPort = Int(args[2]), let httpPort = Int(args[3]) else {
    print("usage: meridian-bench-target HOST TCP_PORT HTTP_PORT")
    exit(2)
}
let host = args[1]
let tcpCount = ManagedAtomic<Int>(0)
let httpCount = ManagedAtomic<Int>(0)

final class Close: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    func channelActive(context: ChannelHandlerContext) {
        tcpCount.wrappingIncrement(ordering: .relaxed)
        context.close(promise: nil)
    }
}

final class OK: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: used only on its channel's event loop.
    typealias InboundIn = ByteBuffer
    var seen: [UInt8] = []
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        seen += b.readBytes(length: b.readableBytes) ?? []
        guard seen.count >= 4, seen.suffix(4) == [13, 10, 13, 10] else { return }
        httpCount.wrappingIncrement(ordering: .relaxed)
        let ch = context.channel
        context.writeAndFlush(NIOAny(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK")))
            .whenComplete { _ in ch.close(promise: nil) }
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
func serve(_ port: Int, _ make: @escaping @Sendable () -> any ChannelHandler) throws -> any Channel {
    try ServerBootstrap(group: group)
        .serverChannelOption(ChannelOptions.backlog, value: 4096)
        .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
        .childChannelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(make()) } }
        .bind(host: host, port: port).wait()
}
let tcp = try serve(tcpPort) { Close() }
_ = try serve(httpPort) { OK() }
group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
    // One write(2) per line: the reader sees whole lines without stdio buffering.
    let line = "\(tcpCount.load(ordering: .relaxed)) \(httpCount.load(ordering: .relaxed))\n"
    _ = line.withCString { write(1, $0, strlen($0)) }
}
try tcp.closeFuture.wait()
