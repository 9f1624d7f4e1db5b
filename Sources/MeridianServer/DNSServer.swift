import Atomics
import DNSWire
import Dispatch
import NIOConcurrencyHelpers
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import QueryEngine
import ZoneStore

#if canImport(Glibc)
import Glibc
#endif

/// Why the server could not start.
public enum ServerError: Error, CustomStringConvertible {
    case zones(ZoneLoadError)
    case bind(address: ListenAddress, transport: String, reason: String)

    public var description: String {
        switch self {
        case let .zones(e): return e.description
        case let .bind(a, t, r): return "cannot listen on \(a) (\(t)): \(r)"
        }
    }
}

/// The DNS front end: loads zones, listens on UDP (one SO_REUSEPORT socket per event loop and
/// address) and TCP, answers from the published snapshot, and reloads on request.
public final class DNSServer: Sendable {
    public let config: ServerConfig
    public let box: SnapshotBox
    let group: MultiThreadedEventLoopGroup
    let logger: Logger
    let scratch: [ObjectIdentifier: LoopScratch]
    let tcpConnections = ManagedAtomic<Int>(0)
    let channels: NIOLockedValueBox<[any Channel]> = NIOLockedValueBox([])
    let reloadLock = NIOLock()

    /// Loads the zones; throws if any zone file has an error.
    public init(config: ServerConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        let outcome: ZoneLoader.Outcome
        do { outcome = try ZoneLoader.load(directory: config.zonesDirectory) } catch { throw ServerError.zones(error) }
        for d in outcome.diagnostics where d.severity == .warning { logger.warning("\(d)") }
        guard let zones = outcome.zones else { throw ServerError.zones(.invalid(outcome.diagnostics)) }
        box = SnapshotBox(Snapshot(zones: zones, config: config.engine, generation: 1))
        group = MultiThreadedEventLoopGroup(numberOfThreads: config.threads)
        var scratch: [ObjectIdentifier: LoopScratch] = [:]
        for loop in group.makeIterator() { scratch[ObjectIdentifier(loop)] = LoopScratch() }
        self.scratch = scratch
        logger.info("loaded \(zones.zones.count) zones, \(zones.recordCount) records from \(config.zonesDirectory)")
    }

    func scratch(for loop: any EventLoop) -> LoopScratch {
        scratch[ObjectIdentifier(loop)]!
    }

    /// Binds every listener. Port 0 picks one free port, used for all sockets of that address.
    /// Returns the addresses actually bound.
    @discardableResult
    public func start() async throws -> [ListenAddress] {
        var bound: [ListenAddress] = []
        for loop in group.makeIterator() {
            let s = scratch(for: loop)
            _ = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
                s.udpMetrics.flush()
                s.tcpMetrics.flush()
            }
        }
        for address in config.listen {
            var port = address.port
            var loops = Array(group.makeIterator())
            // UDP: one socket per event loop, sharing the port through SO_REUSEPORT.
            let first = loops.removeFirst()
            let udp0 = try await bindUDP(address, port: port, loop: first)
            port = udp0.localAddress?.port ?? port
            var all: [any Channel] = [udp0]
            for loop in loops { all.append(try await bindUDP(address, port: port, loop: loop)) }
            all.append(try await bindTCP(address, port: port))
            channels.withLockedValue { $0 += all }
            let actual = ListenAddress(host: address.host, port: port)
            bound.append(actual)
            logger.info("listening on \(actual) (udp x\(config.threads), tcp)")
        }
        return bound
    }

    func bindUDP(_ address: ListenAddress, port: Int, loop: any EventLoop) async throws -> any Channel {
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
            throw ServerError.bind(address: ListenAddress(host: address.host, port: port), transport: "udp", reason: "\(error)")
        }
    }

    func bindTCP(_ address: ListenAddress, port: Int) async throws -> any Channel {
        let box = self.box
        let idle = TimeAmount.seconds(config.tcpIdleTimeout)
        let maxBuffered = config.tcpMaxBufferedBytes
        let maxConnections = config.tcpMaxConnections
        let connections = tcpConnections
        let server = self
        do {
            return try await ServerBootstrap(group: group)
                .serverChannelOption(ChannelOptions.backlog, value: 256)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(ChannelOptions.writeBufferWaterMark, value: .init(low: maxBuffered / 2, high: maxBuffered))
                .childChannelInitializer { channel in
                    // The connection cap: count on accept, release on close.
                    if connections.wrappingIncrementThenLoad(ordering: .relaxed) > maxConnections {
                        connections.wrappingDecrement(ordering: .relaxed)
                        return channel.close()
                    }
                    channel.closeFuture.whenComplete { _ in connections.wrappingDecrement(ordering: .relaxed) }
                    return channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(IdleStateHandler(readTimeout: idle))
                        try sync.addHandler(ByteToMessageHandler(
                            LengthFieldBasedFrameDecoder(lengthFieldBitLength: .twoBytes), maximumBufferSize: maxBuffered))
                        try sync.addHandler(TCPQueryHandler(box: box, scratch: server.scratch(for: channel.eventLoop)))
                    }
                }
                .bind(host: address.host, port: port).get()
        } catch {
            throw ServerError.bind(address: ListenAddress(host: address.host, port: port), transport: "tcp", reason: "\(error)")
        }
    }

    /// Reloads the zone directory and publishes it only if every file is valid; otherwise the
    /// current zones keep serving and the errors are returned.
    @discardableResult
    public func reload() -> [Diagnostic] {
        reloadLock.withLock {
            let outcome: ZoneLoader.Outcome
            do { outcome = try ZoneLoader.load(directory: config.zonesDirectory) } catch {
                logger.error("reload failed, keeping the current zones: \(error)")
                return [Diagnostic(file: config.zonesDirectory, line: 0, "\(error)")]
            }
            for d in outcome.diagnostics { d.severity == .error ? logger.error("\(d)") : logger.warning("\(d)") }
            guard let zones = outcome.zones else {
                logger.error("reload failed with \(outcome.errors.count) errors, keeping the current zones")
                return outcome.diagnostics
            }
            let next = Snapshot(zones: zones, config: config.engine, generation: box.generation + 1)
            box.publish(next)
            logger.info("reloaded \(zones.zones.count) zones, \(zones.recordCount) records (generation \(next.generation))")
            return outcome.diagnostics
        }
    }

    /// Closes every listener and stops the event loops.
    public func shutdown() async {
        let all = channels.withLockedValue { c in
            defer { c = [] }
            return c
        }
        for c in all { try? await c.close() }
        try? await group.shutdownGracefully()
    }

    /// Serves until SIGINT or SIGTERM; SIGHUP reloads the zones.
    public func runUntilSignalled() async {
        let signals = DispatchQueue(label: "meridian.signals")
        for s in [SIGHUP, SIGINT, SIGTERM] { signal(s, SIG_IGN) }
        let stop = AsyncStream<Int32>.makeStream()
        var sources: [any DispatchSourceSignal] = []
        for s in [SIGHUP, SIGINT, SIGTERM] {
            let source = DispatchSource.makeSignalSource(signal: s, queue: signals)
            source.setEventHandler { [self] in
                if s == SIGHUP {
                    logger.info("SIGHUP: reloading zones")
                    reload()
                } else {
                    stop.continuation.yield(s)
                }
            }
            source.resume()
            sources.append(source)
        }
        for await s in stop.stream {
            logger.info("signal \(s): shutting down")
            break
        }
        for s in sources { s.cancel() }
        await shutdown()
    }
}

