import DNSWire
import GeoTopology
import NIOCore
import QueryEngine
import QueryLog

#if canImport(Glibc)
import Glibc
#endif

/// Scratch memory and counters for one event loop. Every handler on that loop shares them: a
/// query is answered from start to copy-out inside one synchronous call, so uses never overlap.
struct LoopScratch: @unchecked Sendable {
    // @unchecked: each instance is handed only to handlers of one event loop and to a flush
    // task scheduled on that same loop, so it is only ever touched from that loop's thread
    // (see `DNSServer.scratch(for:)`).
    let scratch = QueryScratch()
    var buffer: MessageBuffer { scratch.buffer }
    let udpMetrics = QueryMetrics(transport: "udp")
    let tcpMetrics = QueryMetrics(transport: "tcp")
    /// This loop's response rate limiter (UDP): each loop limits the queries it receives.
    let limiter: LimiterBox
    /// This loop's end of the dnstap log, when one is configured.
    let dnstap: DnstapTap?
    /// This loop's ring of passive latency records and query sightings, when measuring.
    let latency: LatencySampler?

    init(rateLimit: RateLimitConfig = RateLimitConfig(), dnstap: DnstapWriter? = nil, latency: LatencyTaps? = nil) {
        limiter = LimiterBox(RateLimiter(config: rateLimit))
        self.dnstap = dnstap?.makeTap()
        self.latency = latency?.makeSampler()
        tick()
    }

    /// Sets the loop's clock (whole seconds, for cookies and rate limiting): at start and from
    /// the loop's once-a-second timer, so no query reads a clock.
    func tick() { buffer.nowSeconds = UInt32(truncatingIfNeeded: time(nil)) }
}

/// Holds a loop's `RateLimiter` (a value) where that loop's handlers can change it.
final class LimiterBox {
    var limiter: RateLimiter
    let enabled: Bool
    init(_ l: RateLimiter) {
        limiter = l
        enabled = l.config.enabled
    }
}

/// The step both transports share: read the current snapshot, answer into the loop's buffer,
/// count the outcome. The response is `buffer.storage[0..<outcome.length]` unless dropped.
struct QueryAnswerer {
    private var reader: SnapshotReader
    let scratch: QueryScratch
    let buffer: MessageBuffer
    private let metrics: QueryMetrics
    private let transport: Transport

    init(box: SnapshotBox, scratch: LoopScratch, transport: Transport) {
        reader = SnapshotReader(box)
        self.scratch = scratch.scratch
        buffer = scratch.buffer
        metrics = transport == .udp ? scratch.udpMetrics : scratch.tcpMetrics
        self.transport = transport
    }

    @inline(__always)
    mutating func answer(_ query: ByteBuffer, from source: IPAddress) -> QueryOutcome {
        let snapshot = reader.refresh()
        let outcome = query.withUnsafeReadableBytes { [scratch, transport] in
            QueryProcessor.respond(to: $0, transport: transport, snapshot: snapshot, scratch: scratch, client: source)
        }
        metrics.record(outcome, snapshot: snapshot)
        return outcome
    }

    /// The response octets of an outcome that was not dropped.
    func response(_ outcome: QueryOutcome) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: buffer.storage[0..<outcome.length])
    }
}

extension DnstapTap {
    /// Logs a query from `source` and the response sent (nil: none was).
    @inline(__always)
    func log(_ query: ByteBuffer, response: UnsafeRawBufferPointer?, source: SocketAddress?, tcp: Bool) {
        guard let source else { return }
        let address = source.ipAddress
        query.withUnsafeReadableBytes { q in
            withUnsafeBytes(of: address.bytes) { a in
                log(query: q, response: response, client: UnsafeRawBufferPointer(rebasing: a[0..<(address.family == .v4 ? 4 : 16)]),
                    port: source.port.map { UInt16(truncatingIfNeeded: $0) }, tcp: tcp)
            }
        }
    }
}

/// Answers DNS over UDP: one datagram in, one out. Responses are written as they are made
/// and flushed once per read batch (`channelReadComplete`).
final class UDPQueryHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private var answerer: QueryAnswerer
    private let limiter: LimiterBox
    private let metrics: QueryMetrics
    private let dnstap: DnstapTap?
    private let latency: LatencySampler?

    init(box: SnapshotBox, scratch: LoopScratch) {
        answerer = QueryAnswerer(box: box, scratch: scratch, transport: .udp)
        limiter = scratch.limiter
        metrics = scratch.udpMetrics
        dnstap = scratch.dnstap
        latency = scratch.latency
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let source = envelope.remoteAddress.ipAddress
        let outcome = answerer.answer(envelope.data, from: source)
        let sent = outcome.dropped ? nil : limiter.apply(outcome: outcome, buffer: answerer.buffer, source: source, metrics: metrics)
        dnstap?.log(envelope.data, response: sent, source: envelope.remoteAddress, tcp: false)
        guard let response = sent else { return }
        latency?.sight(source)
        var out = context.channel.allocator.buffer(capacity: response.count)
        out.writeBytes(response)
        context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: out)), promise: nil)
    }

    /// The response cut to its header and question, with TC set and no records (RFC 1035
    /// 4.1.1): the client retries over TCP.
    static func truncate(_ buffer: MessageBuffer, questionEnd: Int) -> UnsafeRawBufferPointer {
        let s = buffer.storage
        s[2] |= 0x02
        for i in 6..<12 { s[i] = 0 }
        return UnsafeRawBufferPointer(rebasing: s[0..<questionEnd])
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A failed send to one client (ICMP unreachable and the like) must not close the socket.
    }
}

/// Answers DNS over TCP (RFC 7766): frames come from the two-octet length decoder; answers are
/// written in order with their length prefix, so pipelined queries are all answered.
/// Answers DNS-over-TCP frames in order (RFC 7766 6.2.1.1 pipelining). Unsent answers are
/// bounded: while the connection holds more than its high watermark of unsent octets, reading
/// stops and queries the frame decoder already holds wait here, in order, to be answered once
/// the client reads again. So one connection holds at most its output cap of answers and a
/// bounded amount of queries (the decoder's input cap, plus what reads already under way
/// deliver after reading stops; past `maxWaitingBytes` the connection is closed), whatever the
/// answer-to-query ratio (issue: hardening, finding 2).
final class TCPQueryHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var answerer: QueryAnswerer
    private var peer = QueryProcessor.unknownClient
    /// Queries waiting for the client to read its answers.
    private var waiting = CircularBuffer<ByteBuffer>()
    private var waitingBytes = 0
    private let maxWaiting: Int
    private var draining = false
    /// The connection is closed `idleTimeout` after its last useful work (a query answered).
    private let idleTimeout: TimeAmount
    private var lastUseful = NIODeadline.now()
    private var deadline: Scheduled<Void>?
    private let dnstap: DnstapTap?
    private var remote: SocketAddress?
    /// Where the connection's RTT goes after its first answer (nil: not measuring, or done).
    private var latency: SPSCRing?

    init(box: SnapshotBox, scratch: LoopScratch, maxWaitingBytes: Int, idleTimeout: TimeAmount) {
        latency = scratch.latency.flatMap { $0.tcp ? $0.ring : nil }
        answerer = QueryAnswerer(box: box, scratch: scratch, transport: .tcp)
        maxWaiting = maxWaitingBytes
        self.idleTimeout = idleTimeout
        dnstap = scratch.dnstap
    }

    func handlerAdded(context: ChannelHandlerContext) {
        remote = context.channel.remoteAddress
        if let a = remote { peer = a.ipAddress }
        lastUseful = .now()
        arm(context, at: lastUseful + idleTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    /// One timer per connection, re-armed when it fires rather than per frame: a frame costs
    /// a clock read, and only an answered query moves the deadline (RFC 7766 6.2.3). An empty
    /// frame, a frame that is dropped, a malformed one (FORMERR) or a query that waits for a
    /// client that does not read never does (issue 18, finding 6: 64 connections sending an
    /// empty frame now and then held their slots through four idle timeouts).
    private func arm(_ context: ChannelHandlerContext, at when: NIODeadline) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(deadline: when) {
            let (handler, context) = loopBound.value
            let due = handler.lastUseful + handler.idleTimeout
            if due <= .now() {
                context.close(promise: nil)
            } else {
                handler.arm(context, at: due)
            }
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        if remote == nil { remote = context.channel.remoteAddress }
        if let a = context.channel.remoteAddress { peer = a.ipAddress }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let query = unwrapInboundIn(data)
        guard waiting.isEmpty, context.channel.isWritable else {
            // Answers are piling up unsent: keep the query (in order) and read no more.
            waitingBytes += query.readableBytes
            guard waitingBytes <= maxWaiting else {
                context.close(promise: nil)
                return
            }
            // Reading stops once, when the first query has to wait (a burst of thousands of
            // frames decoded from one read must not cost a channel option call each).
            if waiting.isEmpty { context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in } }
            waiting.append(query)
            return
        }
        answer(query, context: context)
    }

    private func answer(_ query: ByteBuffer, context: ChannelHandlerContext) {
        let outcome = answerer.answer(query, from: peer)
        dnstap?.log(query, response: outcome.dropped ? nil : answerer.response(outcome), source: remote, tcp: true)
        guard !outcome.dropped else { return }
        if outcome.rcode != 1 { lastUseful = .now() }
        var out = context.channel.allocator.buffer(capacity: outcome.length + 2)
        out.writeInteger(UInt16(outcome.length))
        out.writeBytes(answerer.response(outcome))
        context.write(wrapOutboundOut(out), promise: nil)
        if let ring = latency { measure(context, into: ring) }
    }

    /// The kernel's smoothed RTT for this connection (`TCP_INFO`), once, after the first answer.
    private func measure(_ context: ChannelHandlerContext, into ring: SPSCRing) {
        latency = nil
        guard let provider = context.channel as? any SocketOptionProvider else { return }
        let client = peer
        provider.getTCPInfo().whenSuccess { info in
            guard info.tcpi_rtt > 0 else { return }
            ring.push(LatencyTaps.encode(client, rttMicros: info.tcpi_rtt))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    /// The client read some answers: answer the waiting queries while the connection takes
    /// more, then read again once none wait.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && !draining {
            draining = true
            while context.channel.isWritable, let q = waiting.popFirst() {
                waitingBytes -= q.readableBytes
                answer(q, context: context)
            }
            draining = false
            context.flush()
        }
        let read = context.channel.isWritable && waiting.isEmpty
        context.channel.setOption(ChannelOptions.autoRead, value: read).whenFailure { _ in }
        if read { context.read() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Oversized frames (the decoder's buffer cap), resets, and the like end this
        // connection only.
        context.close(promise: nil)
    }
}

extension SocketAddress {
    /// The IP address of a socket address, without allocating (0.0.0.0 for Unix sockets).
    @inline(__always)
    var ipAddress: IPAddress {
        var b = SIMD16<UInt8>(repeating: 0)
        switch self {
        case .v4(let a):
            var sin = a.address.sin_addr
            withUnsafeBytes(of: &sin) { for i in 0..<4 { b[i] = $0[i] } }
            return IPAddress(family: .v4, bytes: b)
        case .v6(let a):
            var sin6 = a.address.sin6_addr
            withUnsafeBytes(of: &sin6) { for i in 0..<16 { b[i] = $0[i] } }
            // An IPv4-mapped IPv6 source (::ffff:a.b.c.d) is that IPv4 client.
            if (0..<10).allSatisfy({ b[$0] == 0 }) && b[10] == 0xFF && b[11] == 0xFF {
                var v4 = SIMD16<UInt8>(repeating: 0)
                for i in 0..<4 { v4[i] = b[12 + i] }
                return IPAddress(family: .v4, bytes: v4)
            }
            return IPAddress(family: .v6, bytes: b)
        default:
            return QueryProcessor.unknownClient
        }
    }
}
