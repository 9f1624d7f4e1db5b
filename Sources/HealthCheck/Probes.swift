import Control
import DNSWire
import Foundation
import GeoTopology
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

extension ProbeResult {
    /// A failure from an error: local when the error is a resource shortage of this host.
    static func failure(_ prefix: String, _ error: any Error) -> ProbeResult {
        let r = "\(prefix)\(describe(error))"
        return isLocalShortage(error) ? .localFailure(r) : .failure(r)
    }
}

/// The errno values that mean this host ran short, not that the member failed.
let localShortageErrnos: Set<Int32> = [EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL]

/// Whether an error is a local resource shortage (issue: hardening, finding 1).
func isLocalShortage(_ e: any Error) -> Bool {
    if let io = e as? IOError { return localShortageErrnos.contains(io.errnoCode) }
    if let c = e as? NIOConnectionError { return c.connectionErrors.contains { isLocalShortage($0.error) } }
    return false
}

func socketAddress(_ a: IPAddress, _ port: Int) throws -> SocketAddress {
    try SocketAddress(ipAddress: a.description, port: port)
}

/// Collects a reply until the peer closes, a newline arrives, or `limit` octets.
final class ReplyCollector: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: touched only on its channel's event loop.
    typealias InboundIn = ByteBuffer
    let limit: Int
    let untilNewline: Bool
    let promise: EventLoopPromise<[UInt8]>
    var bytes: [UInt8] = []
    var done = false

    init(limit: Int, untilNewline: Bool, promise: EventLoopPromise<[UInt8]>) {
        self.limit = limit
        self.untilNewline = untilNewline
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        bytes += b.readBytes(length: b.readableBytes) ?? []
        if bytes.count > limit || (untilNewline && bytes.contains(10)) { finish(context) }
    }

    func channelInactive(context: ChannelHandlerContext) { finish(context) }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done {
            done = true
            promise.fail(error)
        }
        context.close(promise: nil)
    }

    func finish(_ context: ChannelHandlerContext) {
        guard !done else { return }
        done = true
        promise.succeed(bytes)
        context.close(promise: nil)
    }
}

/// Connects, optionally sends `send`, and reads a reply (feedback agent).
func readReply(
    group: any EventLoopGroup, target: SocketAddress, source: SocketAddress? = nil, send: String?, timeout: Double, limit: Int
) -> EventLoopFuture<[UInt8]> {
    let loop = group.next()
    let promise = loop.makePromise(of: [UInt8].self)
    let collector = ReplyCollector(limit: limit, untilNewline: false, promise: promise)
    var bootstrap = ClientBootstrap(group: loop)
        .connectTimeout(.milliseconds(Int64(timeout * 1000)))
        .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(collector) } }
    if let source { bootstrap = bootstrap.bind(to: source) }
    let connect = bootstrap.connect(to: target)
    connect.whenSuccess { ch in
        if let send {
            let text = send.hasSuffix("\n") ? send : send + "\n"
            ch.writeAndFlush(ByteBuffer(string: text), promise: nil)
        }
        ch.eventLoop.scheduleTask(in: .milliseconds(Int64(timeout * 1000))) { ch.close(promise: nil) }
    }
    connect.whenFailure { promise.fail($0) }
    return promise.futureResult
}

/// A DNS query over UDP to the member; checks the RCODE and, optionally, that there is an answer.
func dnsProbe(group: any EventLoopGroup, target: SocketAddress, source: SocketAddress? = nil, name: [UInt8], qtype: UInt16, expectRcode: Int, expectAnswer: Bool, timeout: Double) -> EventLoopFuture<ProbeResult> {
    dnsExchange(group: group, target: target, source: source, name: name, qtype: qtype, timeout: timeout).map { reply -> ProbeResult in
        guard let m = try? DecodedMessage.decode(reply) else { return .failure("malformed DNS reply") }
        let rcode = Int(m.rcode)
        guard rcode == expectRcode else { return .failure("DNS rcode \(RCode.name(UInt16(rcode)))") }
        if expectAnswer && m.answer.isEmpty { return .failure("DNS reply without an answer") }
        return .success("DNS \(RCode.name(UInt16(rcode)))")
    }.flatMapErrorThrowing { .failure("DNS: ", $0) }
}

/// Sends one query (RD clear, a random ID) from an ephemeral port and waits for its reply
/// (`DatagramReply` says which datagrams count), failing at `timeout` seconds.
func dnsExchange(group: any EventLoopGroup, target: SocketAddress, source: SocketAddress?, name: [UInt8], qtype: UInt16, timeout: Double) -> EventLoopFuture<[UInt8]> {
    let loop = group.next()
    let promise = loop.makePromise(of: [UInt8].self)
    let id = UInt16.random(in: 0...UInt16.max)
    let question = name + [UInt8(qtype >> 8), UInt8(qtype & 0xFF), 0, 1]
    let query: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0, 0, 0, 1, 0, 0, 0, 0, 0, 0] + question
    let handler = DatagramReply(promise: promise, id: id, source: target, question: question)
    let bind = DatagramBootstrap(group: loop)
        .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(handler) } }
        .bind(to: source ?? (try? SocketAddress(ipAddress: target.protocol == .inet6 ? "::" : "0.0.0.0", port: 0)) ?? target)
    bind.whenSuccess { ch in
        ch.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: query)), promise: nil)
        ch.eventLoop.scheduleTask(in: .milliseconds(Int64(timeout * 1000))) {
            handler.fail(ChannelError.connectTimeout(.milliseconds(Int64(timeout * 1000))))
            ch.close(promise: nil)
        }
        promise.futureResult.whenComplete { _ in ch.close(promise: nil) }
    }
    bind.whenFailure { promise.fail($0) }
    return promise.futureResult
}

/// Waits for the reply to one DNS probe. A datagram counts only if it comes from the address
/// queried, is a response (QR), carries the query's ID and echoes its one question (name
/// compared case-insensitively): anything else, a stray or spoofed datagram, is ignored and
/// the wait goes on until the timeout.
final class DatagramReply: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: touched only on its channel's event loop.
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let promise: EventLoopPromise<[UInt8]>
    let id: UInt16
    let source: SocketAddress
    /// Name, type and class as sent.
    let question: [UInt8]
    var done = false
    init(promise: EventLoopPromise<[UInt8]>, id: UInt16, source: SocketAddress, question: [UInt8]) {
        self.promise = promise
        self.id = id
        self.source = source
        self.question = question
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        var b = envelope.data
        let bytes = b.readBytes(length: b.readableBytes) ?? []
        guard !done, envelope.remoteAddress == source, accepts(bytes) else { return }
        done = true
        promise.succeed(bytes)
    }
    func accepts(_ bytes: [UInt8]) -> Bool {
        let end = 12 + question.count
        guard bytes.count >= end, UInt16(bytes[0]) << 8 | UInt16(bytes[1]) == id, bytes[2] & 0x80 != 0, bytes[4] == 0, bytes[5] == 1 else { return false }
        return zip(bytes[12..<end], question).allSatisfy { a, b in
            a == b || (a | 0x20 == b | 0x20 && (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(a | 0x20))
        }
    }
    func fail(_ e: any Error) {
        guard !done else { return }
        done = true
        promise.fail(e)
    }
}

/// Runs a program (argv, no shell) with a timeout; success is exit status 0.
/// Runs `command` on a thread of its own (the caller bounds how many run at once): a shared
/// dispatch queue's pool can be narrower than that bound, and a check waiting there would be
/// timed as if its target were slow. The result's `startedAt` is the spawn time.
func execProbe(command: [String], timeout: Double, completion: @escaping @Sendable (ProbeResult) -> Void) {
    let thread = Thread {
        var pid: pid_t = 0
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let argv = command.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let rc = posix_spawn(&pid, command[0], &actions, nil, argv, environ)
        guard rc == 0 else {
            let why = "cannot run \(command[0]): \(String(cString: strerror(rc)))"
            completion(localShortageErrnos.contains(rc) || rc == EAGAIN ? .localFailure(why) : .failure(why))
            return
        }
        let began = NIODeadline.now().uptimeNanoseconds
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if Date() > deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                var r = ProbeResult.failure("timed out after \(timeout) s")
                r.startedAt = began
                completion(r)
                return
            }
            usleep(5000)
        }
        let exited = (status & 0x7F) == 0
        let code = (status >> 8) & 0xFF
        var r: ProbeResult = exited && code == 0 ? .success("exit 0") : .failure(exited ? "exit \(code)" : "killed by signal \(status & 0x7F)")
        r.startedAt = began
        completion(r)
    }
    thread.name = "meridian-exec"
    thread.stackSize = 256 << 10
    thread.start()
}

func describe(_ e: any Error) -> String {
    if let io = e as? IOError { return String(cString: strerror(io.errnoCode)) }
    if e is ChannelError { return "\(e)".replacingOccurrences(of: "connectTimeout", with: "timeout") }
    if let c = e as? NIOConnectionError, let first = c.connectionErrors.first { return describe(first.error) }
    return "\(e)"
}
