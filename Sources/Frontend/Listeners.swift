import DNSWire
import Foundation
import GeoTopology
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOPosix
import QueryEngine
import QueryLog

#if canImport(Glibc)
import Glibc
#endif

/// A socket address to listen on: `127.0.0.1:5300`, `[::1]:5300`.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`, with IPv6 hosts in brackets.
    public init?(_ text: String) {
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()), (0...65535).contains(p) else { return nil }
            port = p
        } else {
            guard let colon = text.lastIndex(of: ":"), let p = Int(text[text.index(after: colon)...]), (0...65535).contains(p) else { return nil }
            host = String(text[..<colon])
            port = p
            guard !host.contains(":") else { return nil }
        }
        guard !host.isEmpty else { return nil }
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A listener that could not be bound.
public struct BindError: Error, Sendable, CustomStringConvertible {
    public var address: ListenAddress
    public var transport: String
    public var reason: String

    public var description: String { "--listen \(address) (\(transport)): \(reason)" }
}

/// A socket error as an operator reads it: the system's words for the errno ("address already
/// in use"), not SwiftNIO's description of the call that failed.
public enum SocketErrorText {
    public static func reason(_ error: any Error) -> String {
        if let io = error as? IOError {
            return String(cString: strerror(io.errnoCode)).lowercased()
        }
        return "\(error)"
    }
}

/// What the front end needs of the server's settings.
public struct FrontendSettings: Sendable {
    /// Event loops, and UDP sockets per address (SO_REUSEPORT).
    public var threads: Int
    public var udpEngine: UDPEngine
    public var maxUDPPayload: Int
    public var rateLimit: RateLimitConfig
    /// RFC 7766 6.2.3: close a TCP connection idle this long, in seconds.
    public var tcpIdleTimeout: Int64
    public var tcpMaxConnections: Int
    public var tcpMaxPerClient: Int
    public var tcpMaxBufferedBytes: Int
    /// The dnstap log every answering thread writes to, if any.
    public var dnstap: DnstapWriter?
    /// Passive latency records from DNS-over-TCP connections, when this instance measures.
    public var latencyTaps: LatencyTaps?

    public init(
        threads: Int, udpEngine: UDPEngine, maxUDPPayload: Int, rateLimit: RateLimitConfig, tcpIdleTimeout: Int64, tcpMaxConnections: Int,
        tcpMaxPerClient: Int, tcpMaxBufferedBytes: Int, dnstap: DnstapWriter? = nil, latencyTaps: LatencyTaps? = nil
    ) {
        self.dnstap = dnstap
        self.latencyTaps = latencyTaps
        self.threads = threads
        self.udpEngine = udpEngine
        self.maxUDPPayload = maxUDPPayload
        self.rateLimit = rateLimit
        self.tcpIdleTimeout = tcpIdleTimeout
        self.tcpMaxConnections = tcpMaxConnections
        self.tcpMaxPerClient = tcpMaxPerClient
        self.tcpMaxBufferedBytes = tcpMaxBufferedBytes
    }
}

/// The DNS front end: the event loops, UDP (one SO_REUSEPORT socket per loop or batch thread
/// and address) and TCP listeners with their guards, each loop's scratch and metrics. It only
/// reads the snapshot box; the supervisor writes it.
public final class Listeners: Sendable {
    public let box: SnapshotBox
    let settings: FrontendSettings
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    let scratch: [ObjectIdentifier: LoopScratch]
    /// The TCP connection cap in force: `tcpMaxConnections`, lowered to fit the file
    /// descriptor limit.
    public let tcpCap: Int
    /// TCP slots: the cap, per client prefix and per network.
    public let tcpSlots: SourceSlots
    let channels = NIOLockedValueBox<[any Channel]>([])
    /// The batched UDP data planes (`--udp-engine batch`), one per listen address.
    let planes = NIOLockedValueBox<[BatchUDPPlane]>([])

    public init(box: SnapshotBox, settings: FrontendSettings, logger: Logger) {
        self.box = box
        self.settings = settings
        self.logger = logger
        let files = FileLimits.raise()
        tcpCap = FileLimits.connectionCap(configured: settings.tcpMaxConnections, limit: files)
        if tcpCap < settings.tcpMaxConnections {
            logger.warning("--tcp-max-connections lowered from \(settings.tcpMaxConnections) to \(tcpCap): the file descriptor limit is \(files), and \(FileLimits.reserve(for: files)) are kept for probes, gossip and files")
        }
        tcpSlots = SourceSlots(perPrefix: settings.tcpMaxPerClient, cap: tcpCap)
        group = MultiThreadedEventLoopGroup(numberOfThreads: settings.threads)
        var scratch: [ObjectIdentifier: LoopScratch] = [:]
        for loop in group.makeIterator() { scratch[ObjectIdentifier(loop)] = LoopScratch(rateLimit: settings.rateLimit, dnstap: settings.dnstap, latency: settings.latencyTaps) }
        self.scratch = scratch
        if settings.rateLimit.enabled {
            let r = settings.rateLimit
            logger.info("response rate limiting: \(r.responsesPerSecond) responses/s per /\(r.ipv4Prefix) or /\(r.ipv6Prefix) and response class; slip \(r.slip); \(r.tableSize) buckets per event loop")
        }
    }

    func scratch(for loop: any EventLoop) -> LoopScratch { scratch[ObjectIdentifier(loop)]! }

    /// Binds every listener. Port 0 picks one free port, used for all sockets of that address.
    /// Returns the addresses actually bound.
    public func start(_ listen: [ListenAddress]) async throws(BindError) -> [ListenAddress] {
        for loop in group.makeIterator() {
            let s = scratch(for: loop)
            let box = box
            _ = loop.scheduleRepeatedTask(initialDelay: .zero, delay: .seconds(1)) { _ in
                s.tick()
                let snapshot = box.load()
                s.udpMetrics.flush(snapshot: snapshot)
                s.tcpMetrics.flush(snapshot: snapshot)
            }
        }
        var bound: [ListenAddress] = []
        for address in listen {
            // TCP first: it has no SO_REUSEPORT, so a port another server holds fails here,
            // before any UDP socket could share that port and take part of its traffic.
            let tcp = try await bindTCP(address, port: address.port)
            channels.withLockedValue { $0.append(tcp) }
            let port = tcp.localAddress?.port ?? address.port
            switch settings.udpEngine {
            case .batch:
                let plane = BatchUDPPlane(
                    address: address, box: box, maxUDPPayload: settings.maxUDPPayload, rateLimit: settings.rateLimit, dnstap: settings.dnstap,
                    latencyTaps: settings.latencyTaps, logger: logger)
                try plane.start(port: port, count: settings.threads)
                planes.withLockedValue { $0.append(plane) }
            case .nio:
                for loop in group.makeIterator() {
                    let udp = try await bindUDP(address, port: port, loop: loop)
                    channels.withLockedValue { $0.append(udp) }
                }
            }
            let actual = ListenAddress(host: address.host, port: port)
            bound.append(actual)
            logger.info("listening on \(actual) (udp x\(settings.threads) \(settings.udpEngine.rawValue), tcp)")
        }
        return bound
    }

    /// Closes every listener and stops the event loops.
    public func shutdown() async {
        let all = channels.withLockedValue { c in
            defer { c = [] }
            return c
        }
        for c in all { try? await c.close() }
        let udpPlanes = planes.withLockedValue { p in
            defer { p = [] }
            return p
        }
        for p in udpPlanes { p.stop() }
        try? await group.shutdownGracefully()
    }

    func bindUDP(_ address: ListenAddress, port: Int, loop: any EventLoop) async throws(BindError) -> any Channel {
        let box = self.box
        let scratch = scratch(for: loop)
        do {
            return try await DatagramBootstrap(group: loop)
                .channelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .channelOption(ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SocketOptionName(SO_REUSEPORT)), value: 1)
                .channelOption(ChannelOptions.datagramVectorReadMessageCount, value: 16)
                .channelOption(ChannelOptions.maxMessagesPerRead, value: 16)
                .channelOption(ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 4096))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(UDPQueryHandler(box: box, scratch: scratch))
                    }
                }
                .bind(host: address.host, port: port).get()
        } catch {
            throw BindError(address: ListenAddress(host: address.host, port: port), transport: "udp", reason: SocketErrorText.reason(error))
        }
    }

    func bindTCP(_ address: ListenAddress, port: Int) async throws(BindError) -> any Channel {
        let box = self.box
        let idle = TimeAmount.seconds(settings.tcpIdleTimeout)
        let maxBuffered = settings.tcpMaxBufferedBytes
        let slots = tcpSlots
        let refused: [SourceSlots.Refusal: Counter] = [
            .cap: Counter(label: "meridian_tcp_refused_total", dimensions: [("reason", "cap")]),
            .perPrefix: Counter(label: "meridian_tcp_refused_total", dimensions: [("reason", "per-client")]),
            .perNetwork: Counter(label: "meridian_tcp_refused_total", dimensions: [("reason", "per-network")]),
        ]
        let listeners = self
        do {
            return try await ServerBootstrap(group: group)
                .serverChannelOption(ChannelOptions.backlog, value: 256)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                // TCP_NODELAY at IPPROTO_TCP (socketOption(.tcp_nodelay) would set SOL_SOCKET option 1,
                // SO_DEBUG, which needs CAP_NET_ADMIN: found when --user dropped root).
                .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
                .childChannelOption(ChannelOptions.writeBufferWaterMark, value: .init(low: maxBuffered / 2, high: maxBuffered))
                .childChannelInitializer { channel in
                    // The cap, and the shares of one client prefix and one network: taken on
                    // accept, given back on close.
                    switch slots.admit(channel.remoteAddress?.ipAddress ?? QueryProcessor.unknownClient) {
                    case .success(let held):
                        channel.closeFuture.whenComplete { _ in slots.release(held) }
                    case .failure(let why):
                        refused[why]?.increment()
                        return channel.close()
                    }
                    return channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(ByteToMessageHandler(
                            LengthFieldBasedFrameDecoder(lengthFieldBitLength: .twoBytes), maximumBufferSize: maxBuffered))
                        try sync.addHandler(TCPQueryHandler(
                            box: box, scratch: listeners.scratch(for: channel.eventLoop), maxWaitingBytes: 2 * maxBuffered + 262_144, idleTimeout: idle))
                    }
                }
                .bind(host: address.host, port: port).get()
        } catch {
            throw BindError(address: ListenAddress(host: address.host, port: port), transport: "tcp", reason: SocketErrorText.reason(error))
        }
    }
}
