import Gossip
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// How this instance takes part in a group.
public struct GroupSettings: Sendable {
    public var nodeName: String
    /// The cluster file; nil for a lone instance (no sockets, every member checked here).
    public var cluster: ClusterConfig?
    /// Where gossip listens (UDP and TCP); by default the node's address in the cluster file.
    public var listen: GossipAddress?
    public var keys: GossipKeys
    /// How long a dead peer's observations are kept as a last resort before they are dropped.
    public var forgetAfter: Double
    /// How long a push-pull connection may take.
    public var pushPullTimeout: Double

    public init(
        nodeName: String, cluster: ClusterConfig?, listen: GossipAddress? = nil, keys: GossipKeys = .insecureKey, forgetAfter: Double = 60,
        pushPullTimeout: Double = 3
    ) {
        self.nodeName = nodeName
        self.cluster = cluster
        self.listen = listen
        self.keys = keys
        self.forgetAfter = forgetAfter
        self.pushPullTimeout = pushPullTimeout
    }
}

/// Counters of the gossip shell (also exported as metrics).
public struct GroupStats: Sendable, Equatable {
    public var packetsOut = 0
    public var bytesOut = 0
    public var packetsIn = 0
    public var bytesIn = 0
    public var pushPulls = 0
    public var pushPullFailures = 0
    public var rebinds = 0
    /// Socket errors by kind (`send EPERM`, `send ENOBUFS`, `receive ...`, `closed`, `bind`).
    public var socketErrors: [String: Int] = [:]
    /// Updates sent, by kind (alive, suspect, dead, data).
    public var updatesOut: [String: Int] = [:]
    public var dropped: [String: Int] = [:]
}

/// Why the group could not start.
public enum GroupError: Error, Sendable, CustomStringConvertible {
    case notInClusterFile(node: String, file: String)
    case bind(address: String, reason: String)

    public var description: String {
        switch self {
        case let .notInClusterFile(n, f): return "\(f): node '\(n)' is not among the peers (give --node-name, or --gossip-listen with the address to use)"
        case let .bind(a, r): return "cannot listen for gossip on \(a): \(r)"
        }
    }
}

/// What the transport hands the control core (on the transport's loop).
public struct GossipHandlers: Sendable {
    /// A gossip packet from `sender` at gossip address `from`, opened and decoded.
    public var received: @Sendable (_ packet: Packet, _ sender: String, _ from: String) -> Void
    /// An exchange this instance started ended: the reply and who sent it, or nil when it failed.
    public var exchanged: @Sendable (_ peer: String, _ address: String, _ reply: FullState?, _ sender: String?) -> Void
    /// A peer's exchange request (or an explain query: nil): the state to reply with.
    public var serve: @Sendable (_ request: FullState?, _ sender: String, _ origin: String) -> FullState?

    public init(
        received: @escaping @Sendable (Packet, String, String) -> Void, exchanged: @escaping @Sendable (String, String, FullState?, String?) -> Void,
        serve: @escaping @Sendable (FullState?, String, String) -> FullState?
    ) {
        self.received = received
        self.exchanged = exchanged
        self.serve = serve
    }
}

/// The gossip sockets: the UDP gossip socket and the TCP exchange listener, on one event loop
/// (the supervisor's), with the envelope keys and the replay guard. It seals and opens every
/// message, hands what it opened to `GossipHandlers`, sends and exchanges what the control
/// core asks, and counts and logs (once per kind) what it refused and every socket error.
/// Policy lives in the core.
public final class GossipTransport: @unchecked Sendable {
    // @unchecked: every mutable property is read and written only on `loop`: the public entry
    // points are called there (by the supervisor) or hop there; the rest is immutable or
    // thread-safe (Logger, the counters' backends).
    let loop: any EventLoop
    let logger: Logger
    public let nodeName: String
    public let listen: GossipAddress
    private let keys: GossipKeys
    private let pushPullTimeout: Double
    private var handlers: GossipHandlers?
    private var replay = ReplayGuard()
    private var seq: UInt64
    private var udp: (any Channel)?
    private var tcp: (any Channel)?
    private var loggedDrops = Set<String>()
    /// Who holds the exchange listener's connections (on the loop).
    private var admission = ExchangeAdmission()
    private var addresses: [String: SocketAddress] = [:]
    public private(set) var stats = GroupStats()
    private var stopped = false
    private let dropCounters = DropCounters()
    private let socketErrors = SocketErrorCounters()
    private let rebindCounter = Counter(label: "meridian_gossip_socket_rebinds_total")
    private let bytesOut = Counter(label: "meridian_gossip_bytes_total", dimensions: [("direction", "out")])
    private let bytesIn = Counter(label: "meridian_gossip_bytes_total", dimensions: [("direction", "in")])
    private let packetsOutCounter = Counter(label: "meridian_gossip_messages_total", dimensions: [("direction", "out")])
    private let packetsInCounter = Counter(label: "meridian_gossip_messages_total", dimensions: [("direction", "in")])
    private let pushPullCounter = Counter(label: "meridian_gossip_push_pulls_total", dimensions: [("result", "ok")])
    private let pushPullFailCounter = Counter(label: "meridian_gossip_push_pulls_total", dimensions: [("result", "failed")])

    public init(nodeName: String, listen: GossipAddress, keys: GossipKeys, pushPullTimeout: Double = 3, loop: any EventLoop, logger: Logger) {
        self.nodeName = nodeName
        self.listen = listen
        self.keys = keys
        self.pushPullTimeout = pushPullTimeout
        self.loop = loop
        self.logger = logger
        seq = UInt64(Date().timeIntervalSince1970 * 1_000_000)
    }

    static var monotonic: Double { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }
    static var wallMillis: UInt64 { UInt64(max(0, Date().timeIntervalSince1970 * 1000)) }

    // MARK: Start and stop

    /// Where what arrives goes, and where exchanges end (on the loop, before `start`).
    public func attach(_ handlers: GossipHandlers) { self.handlers = handlers }

    /// Binds the sockets.
    public func start() async throws { try await bind(listen) }

    /// Closes the sockets (after the core's leave was sent).
    public func shutdown() async {
        try? await loop.submit { [self] in
            stopped = true
            handlers = nil
            logger.info("gossip: \(stats.packetsOut) packets (\(stats.bytesOut) octets) sent, \(stats.packetsIn) received, \(stats.pushPulls) push-pulls (\(stats.pushPullFailures) failed), dropped \(stats.dropped.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
        }.get()
        try? await udp?.close()
        try? await tcp?.close()
    }

    /// The UDP socket in force (tests decorate its pipeline to inject faults).
    var udpChannel: (any Channel)? { udp }

    /// A peer was forgotten: its replay window goes (on the loop).
    public func forget(_ peer: String) { replay.forget(peer) }

    // MARK: UDP

    private func bind(_ listen: GossipAddress) async throws {
        let owner = self
        do {
            udp = try await bindUDP(listen).get()
            tcp = try await ServerBootstrap(group: loop)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture { try owner.accepted(ch) }
                }
                .bind(host: listen.host, port: listen.port).get()
            logger.info("gossip: listening on \(listen) (udp, tcp) as \(nodeName)\(keys.insecure ? ", INSECURE: messages are not authenticated" : "")")
        } catch {
            try? await udp?.close()
            throw GroupError.bind(address: listen.description, reason: "\(error)")
        }
    }

    /// A connection to the exchange listener (on the loop): admitted within its source's share
    /// (peers' hosts, or everyone else together), given its source's frame limit, and closed
    /// when its exchange has not ended within the push-pull timeout.
    private func accepted(_ ch: any Channel) throws {
        let host = ch.remoteAddress?.ipAddress ?? "?"
        guard let source = admission.admit(host) else {
            drop("exchange connections of its source used up", from: host)
            throw ChannelError.inputClosed
        }
        ch.closeFuture.whenComplete { [self] _ in admission.release(source) }
        // A peer's exchange may take the push-pull timeout; anyone else's one small query
        // must be in and answered within a second.
        let seconds = source.isPeer ? max(1, pushPullTimeout) : min(1, pushPullTimeout)
        let deadline = TimeAmount.milliseconds(Int64(seconds * 1000))
        ch.eventLoop.scheduleTask(in: deadline) { ch.close(promise: nil) }
        let limit = ExchangeAdmission.frameLimit(source)
        try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(limit: limit), maximumBufferSize: limit + 4))
        try ch.pipeline.syncOperations.addHandler(StateServerHandler(owner: self))
    }

    /// The cluster file's peers (`HOST:PORT` by name): their hosts get a peer's share of the
    /// exchange listener (on the loop).
    public func trust(peers: [String: String]) {
        admission.trust(Set(peers.values.compactMap { GossipAddress($0)?.host }))
    }

    /// The gossip datagram socket. SwiftNIO closes a datagram channel on most send and receive
    /// errors (EPERM from a host firewall, ENOBUFS, ...): when that happens while the group
    /// runs, the socket is bound again (after `rebindDelay`, doubling up to 5 s while binding
    /// fails), so one dropped datagram never ends this instance's gossip.
    private func bindUDP(_ listen: GossipAddress) -> EventLoopFuture<any Channel> {
        let owner = self
        return DatagramBootstrap(group: loop)
            .channelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .channelOption(ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 2048))
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(DatagramHandler(owner: owner)) } }
            .bind(host: listen.host, port: listen.port)
            .map { ch in
                ch.closeFuture.whenComplete { _ in owner.udpClosed(ch, listen: listen, delay: .milliseconds(100)) }
                return ch
            }
    }

    private func udpClosed(_ ch: any Channel, listen: GossipAddress, delay: TimeAmount) {
        guard !stopped, udp === ch || udp == nil else { return }
        udp = nil
        socketError(kind: "closed", what: "the gossip UDP socket was closed (by the error before it); binding it again")
        loop.scheduleTask(in: delay) { [self] in
            guard !stopped else { return }
            bindUDP(listen).whenComplete { [self] r in
                switch r {
                case .success(let ch):
                    if stopped { ch.close(promise: nil) } else {
                        udp = ch
                        stats.rebinds += 1
                        rebindCounter.increment()
                        logger.notice("gossip: UDP socket on \(listen) bound again")
                    }
                case .failure(let e):
                    socketError(kind: "bind", what: "cannot bind the gossip UDP socket again: \(e)")
                    udpClosed(ch, listen: listen, delay: min(delay * 2, .seconds(5)))
                }
            }
        }
    }

    /// A gossip socket error (a send that failed, a receive error): counted by kind and logged
    /// once per kind; the socket goes on (or is bound again when NIO closed it).
    func socketError(_ error: any Error, sending: Bool) {
        let kind = (error as? IOError).map { "\(sending ? "send" : "receive") \(Self.errnoName($0.errnoCode))" } ?? (sending ? "send" : "receive")
        socketError(kind: kind, what: "\(kind): \(error)")
    }

    private func socketError(kind: String, what: String) {
        stats.socketErrors[kind, default: 0] += 1
        socketErrors.count(kind, logger: logger, what: what)
    }

    static func errnoName(_ code: Int32) -> String {
        switch code {
        case EPERM: return "EPERM"
        case ENOBUFS: return "ENOBUFS"
        case EAGAIN: return "EAGAIN"
        case ECONNREFUSED: return "ECONNREFUSED"
        case EHOSTUNREACH: return "EHOSTUNREACH"
        case ENETUNREACH: return "ENETUNREACH"
        case EMSGSIZE: return "EMSGSIZE"
        case ENOMEM: return "ENOMEM"
        case EACCES: return "EACCES"
        default: return "errno \(code)"
        }
    }

    private func nextSeq() -> UInt64 {
        seq &+= 1
        return seq
    }

    private func seal(_ kind: Envelope.Kind, _ body: [UInt8]) -> [UInt8] {
        Envelope(kind: kind, sender: nodeName, timeMillis: Self.wallMillis, seq: nextSeq(), body: body).seal(with: keys)
    }

    /// The gossip host with port 0: where exchanges are connected from.
    private lazy var localAddress: SocketAddress? = try? SocketAddress(ipAddress: listen.host, port: 0)

    private func socketAddress(_ text: String) -> SocketAddress? {
        if let a = addresses[text] { return a }
        guard let g = GossipAddress(text), let a = try? SocketAddress(ipAddress: g.host, port: g.port) else { return nil }
        if addresses.count > 4096 { addresses.removeAll() }
        addresses[text] = a
        return a
    }

    /// Sends a gossip datagram (on the loop).
    public func send(_ p: Packet, to: String) {
        guard let udp, let address = socketAddress(to) else { return }
        let bytes = seal(.packet, p.encode())
        stats.packetsOut += 1
        packetsOutCounter.increment()
        countOut(bytes.count)
        for u in p.updates {
            let kind: String
            switch u {
            case .alive: kind = "alive"
            case .suspect: kind = "suspect"
            case .dead: kind = "dead"
            case .data: kind = "data"
            }
            stats.updatesOut[kind, default: 0] += 1
        }
        let sent = loop.makePromise(of: Void.self)
        sent.futureResult.whenFailure { [self] e in socketError(e, sending: true) }
        udp.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: udp.allocator.buffer(bytes: bytes)), promise: sent)
    }

    /// One datagram from the gossip socket (on `loop`).
    func received(datagram bytes: [UInt8], from source: SocketAddress) {
        guard !stopped, let handlers else { return }
        let origin = source.ipAddress ?? "?"
        stats.packetsIn += 1
        packetsInCounter.increment()
        countIn(bytes.count)
        guard bytes.count <= Limits.packet else { return drop("oversized", from: origin) }
        guard let env = open(bytes, kinds: [.packet], origin: origin) else { return }
        let packet: Packet
        do {
            packet = try Packet.decode(env.body)
        } catch {
            return drop("malformed", from: env.sender, detail: "\(error)")
        }
        let from = source.port.map { GossipAddressText.format(origin, $0) } ?? origin
        handlers.received(packet, env.sender, from)
    }

    /// Checks a message's MAC, kind, sender, age and sequence number; counts and logs (once
    /// per peer and reason) what fails.
    private func open(_ bytes: [UInt8], kinds: Set<Envelope.Kind>, origin: String) -> Envelope? {
        let env: Envelope
        do {
            env = try Envelope.open(bytes, keys: keys)
        } catch {
            drop(error.reason, from: origin)
            return nil
        }
        guard kinds.contains(env.kind) else {
            drop("wrong kind", from: env.sender)
            return nil
        }
        guard env.sender != nodeName || env.kind == .stateQuery else {
            drop("own name", from: origin)
            return nil
        }
        do {
            try replay.admit(sender: env.sender, seq: env.seq, timeMillis: env.timeMillis, nowMillis: Self.wallMillis)
        } catch {
            drop(error == .stale ? "stale" : "replayed", from: env.sender)
            return nil
        }
        return env
    }

    /// Counts a refused message by reason and logs it once per peer and reason (on the loop).
    public func drop(_ reason: String, from: String, detail: String = "") {
        stats.dropped[reason, default: 0] += 1
        dropCounters.increment(reason)
        if loggedDrops.count < 1024, loggedDrops.insert("\(from)|\(reason)").inserted {
            logger.warning("gossip: dropped a message from \(from): \(reason)\(detail.isEmpty ? "" : " (\(detail))") (logged once per peer and reason)")
        }
    }

    // MARK: TCP exchanges

    /// Carries out an exchange the core asked for (anti-entropy): the request goes over TCP,
    /// the reply (or the failure) back to the core. The future says whether the peer answered.
    @discardableResult
    public func exchange(peer: String, address: String, request: FullState) -> EventLoopFuture<Bool> {
        guard !stopped, let target = socketAddress(address) else {
            handlers?.exchanged(peer, address, nil, nil)
            return loop.makeSucceededFuture(false)
        }
        let bytes = seal(.stateRequest, request.encode())
        countOut(bytes.count + 4)
        let promise = loop.makePromise(of: [UInt8].self)
        let timeout = TimeAmount.milliseconds(Int64(pushPullTimeout * 1000))
        var bootstrap = ClientBootstrap(group: loop).connectTimeout(timeout)
        // Exchanges leave from this instance's gossip address, as its datagrams do: a peer's
        // firewall (and the partition tests) can tell instances apart by source address.
        if let local = localAddress { bootstrap = bootstrap.bind(to: local) }
        bootstrap
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(), maximumBufferSize: Limits.state + 4096))
                    try ch.pipeline.syncOperations.addHandler(StateClientHandler(request: bytes, promise: promise))
                }
            }
            .connect(to: target)
            .whenComplete { r in
                switch r {
                case .success(let ch):
                    let t = ch.eventLoop.scheduleTask(in: timeout) { promise.fail(ChannelError.connectTimeout(timeout)); ch.close(promise: nil) }
                    promise.futureResult.whenComplete { _ in t.cancel(); ch.close(promise: nil) }
                case .failure(let e):
                    promise.fail(e)
                }
            }
        return promise.futureResult.map { [self] reply -> Bool in
            countIn(reply.count + 4)
            guard let env = open(reply, kinds: [.stateResponse], origin: address), let state = decodeState(env.body, from: env.sender) else {
                failed(peer: peer, address: address)
                return false
            }
            stats.pushPulls += 1
            pushPullCounter.increment()
            handlers?.exchanged(peer, address, state, env.sender)
            return true
        }.recover { [self] _ in
            failed(peer: peer, address: address)
            return false
        }
    }

    private func failed(peer: String, address: String) {
        stats.pushPullFailures += 1
        pushPullFailCounter.increment()
        handlers?.exchanged(peer, address, nil, nil)
    }

    private func decodeState(_ body: [UInt8], from sender: String) -> FullState? {
        do { return try FullState.decode(body) } catch {
            drop("malformed state", from: sender, detail: "\(error)")
            return nil
        }
    }

    /// An exchange request or an explain query arrived over TCP; returns the reply frame.
    func serve(frame bytes: [UInt8], origin: String) -> [UInt8]? {
        guard !stopped, let handlers else { return nil }
        countIn(bytes.count + 4)
        guard let env = open(bytes, kinds: [.stateRequest, .stateQuery], origin: origin) else { return nil }
        var request: FullState?
        if env.kind == .stateRequest {
            guard let state = decodeState(env.body, from: env.sender) else { return nil }
            request = state
        }
        guard let state = handlers.serve(request, env.sender, origin) else { return nil }
        let reply = seal(.stateResponse, state.encode())
        countOut(reply.count + 4)
        return reply
    }

    private func countOut(_ n: Int) {
        stats.bytesOut += n
        bytesOut.increment(by: n)
    }

    private func countIn(_ n: Int) {
        stats.bytesIn += n
        bytesIn.increment(by: n)
    }

    // MARK: Explain

    /// Asks a running instance for its full state (members and ledger), without joining.
    public static func query(address: GossipAddress, keys: GossipKeys, timeout: Double = 3) async throws -> (sender: String, state: FullState) {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let target = try SocketAddress(ipAddress: address.host, port: address.port)
        let request = Envelope(kind: .stateQuery, sender: "explain", timeMillis: wallMillis, seq: UInt64(Date().timeIntervalSince1970 * 1_000_000), body: []).seal(with: keys)
        let promise = loop.makePromise(of: [UInt8].self)
        let ch = try await ClientBootstrap(group: loop)
            .connectTimeout(.milliseconds(Int64(timeout * 1000)))
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(), maximumBufferSize: Limits.state + 4096))
                    try ch.pipeline.syncOperations.addHandler(StateClientHandler(request: request, promise: promise))
                }
            }
            .connect(to: target).get()
        let t = loop.scheduleTask(in: .milliseconds(Int64(timeout * 1000))) { promise.fail(ChannelError.connectTimeout(.seconds(Int64(timeout)))) }
        defer {
            t.cancel()
            ch.close(promise: nil)
        }
        let reply = try await promise.futureResult.get()
        let env = try Envelope.open(reply, keys: keys)
        return (env.sender, try FullState.decode(env.body))
    }
}

/// `HOST:PORT` with IPv6 hosts in brackets.
enum GossipAddressText {
    static func format(_ host: String, _ port: Int) -> String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Drop counters by reason, made once per reason.
final class DropCounters: @unchecked Sendable {
    // @unchecked: used only on the group's event loop.
    private var counters: [String: Counter] = [:]

    /// Every reason the transport and the core give, made at zero so each series exists
    /// from the start.
    static let reasons = [
        "short", "garbage", "version", "forged", "malformed", "stale", "replayed", "oversized", "wrong kind", "own name",
        "malformed state", "bad exchange frame", "exchange connections of its source used up",
        "malformed entry", "rejected entry", "rejected entries",
    ]

    init() {
        for r in Self.reasons { counters[r] = Counter(label: "meridian_gossip_dropped_total", dimensions: [("reason", r)]) }
    }

    func increment(_ reason: String) {
        if let c = counters[reason] { return c.increment() }
        let c = Counter(label: "meridian_gossip_dropped_total", dimensions: [("reason", reason)])
        counters[reason] = c
        c.increment()
    }
}

/// Gossip socket errors by kind (`meridian_gossip_socket_errors_total{kind}`), each kind
/// logged once.
final class SocketErrorCounters: @unchecked Sendable {
    // @unchecked: used only on the group's event loop.
    private var counters: [String: Counter] = [:]
    private var logged = Set<String>()

    /// The kinds made at zero: the errors named by `GossipTransport.errnoName` each way, a
    /// closed socket and a failed bind.
    static let kinds = ["EPERM", "ENOBUFS", "EAGAIN", "ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EMSGSIZE", "ENOMEM", "EACCES"]
        .flatMap { ["send \($0)", "receive \($0)"] } + ["closed", "bind"]

    init() {
        for k in Self.kinds { counters[k] = Counter(label: "meridian_gossip_socket_errors_total", dimensions: [("kind", k)]) }
    }

    func count(_ kind: String, logger: Logger, what: String) {
        if counters[kind] == nil, counters.count < 64 {
            counters[kind] = Counter(label: "meridian_gossip_socket_errors_total", dimensions: [("kind", kind)])
        }
        counters[kind]?.increment()
        guard logged.count < 64, logged.insert(kind).inserted else { return }
        logger.warning("gossip: \(what) (logged once per kind; counted in meridian_gossip_socket_errors_total)")
    }
}

// MARK: - Channel handlers

final class DatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let owner: GossipTransport

    init(owner: GossipTransport) { self.owner = owner }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { owner.socketError(error, sending: false) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        owner.received(datagram: Array(envelope.data.readableBytesView), from: envelope.remoteAddress)
    }
}

/// Frames: a 4-octet big-endian length, then that many octets (bounded by the handler's
/// maximum buffer size).
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = [UInt8]
    /// The longest frame taken; a longer length closes the connection before its body is read.
    var limit = Limits.state + 4096

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard length <= UInt32(limit) else { throw DecodeError.tooLong(what: "frame", length: Int(length)) }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        guard let bytes = buffer.readBytes(length: Int(length)) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(bytes))
        return .continue
    }

    static func frame(_ bytes: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var b = allocator.buffer(capacity: bytes.count + 4)
        b.writeInteger(UInt32(bytes.count))
        b.writeBytes(bytes)
        return b
    }
}

final class StateServerHandler: ChannelInboundHandler {
    typealias InboundIn = [UInt8]
    typealias OutboundOut = ByteBuffer
    let owner: GossipTransport

    init(owner: GossipTransport) { self.owner = owner }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let origin = context.remoteAddress?.ipAddress ?? "?"
        guard let reply = owner.serve(frame: unwrapInboundIn(data), origin: origin) else {
            context.close(promise: nil)
            return
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(FrameDecoder.frame(reply, allocator: channel.allocator))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        owner.drop("bad exchange frame", from: context.remoteAddress?.ipAddress ?? "?", detail: "\(error)")
        context.close(promise: nil)
    }
}

final class StateClientHandler: ChannelInboundHandler {
    typealias InboundIn = [UInt8]
    typealias OutboundOut = ByteBuffer
    let request: [UInt8]
    let promise: EventLoopPromise<[UInt8]>

    init(request: [UInt8], promise: EventLoopPromise<[UInt8]>) {
        self.request = request
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(FrameDecoder.frame(request, allocator: context.channel.allocator)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        promise.succeed(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) { promise.fail(ChannelError.inputClosed) }
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}
