import Diagnostics
import Atomics
import ClusterState
import DNSWire
import Dispatch
import HealthCheck
import PoolConfig
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
    case config([Diagnostic])
    case bind(address: ListenAddress, transport: String, reason: String)

    public var description: String {
        switch self {
        case let .config(d): return d.filter { $0.severity == .error }.map(\.description).joined(separator: "\n")
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
    /// Serializes the writers of new snapshots (reloads, state-file changes); never taken on
    /// the query path.
    let reloadLock = NIOLock()
    let stateWatcher: NIOLockedValueBox<TimerHandle?> = NIOLockedValueBox(nil)
    /// Runs health checks and agent polls; its observations go into every snapshot.
    let monitor: HealthMonitor
    let latestObservations: NIOLockedValueBox<[String: MemberObservations]> = NIOLockedValueBox([:])

    /// Loads zones, pools and the state file; throws if any of them has an error.
    public init(config: ServerConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        let outcome = SnapshotBuilder.build(directory: config.zonesDirectory, statePath: config.statePath, config: config.engine)
        for d in outcome.diagnostics where d.severity == .warning { logger.warning("\(d)") }
        guard let snapshot = outcome.snapshot else { throw ServerError.config(outcome.diagnostics) }
        box = SnapshotBox(snapshot)
        let zones = snapshot.zones
        let box = self.box
        let lock = reloadLock
        let latest = latestObservations
        monitor = HealthMonitor(observer: config.instanceName, logger: logger) { observations in
            lock.withLock {
                latest.withLockedValue { $0 = observations }
                let current = box.load()
                box.publish(SnapshotBuilder.rebuildHealth(of: current, observations: observations, generation: current.generation + 1))
            }
        }
        group = MultiThreadedEventLoopGroup(numberOfThreads: config.threads)
        var scratch: [ObjectIdentifier: LoopScratch] = [:]
        for loop in group.makeIterator() { scratch[ObjectIdentifier(loop)] = LoopScratch() }
        self.scratch = scratch
        logger.info("loaded \(zones.zones.count) zones, \(zones.recordCount) records, \(snapshot.pools.runtimes.count) pools from \(config.zonesDirectory)")
    }

    func scratch(for loop: any EventLoop) -> LoopScratch {
        scratch[ObjectIdentifier(loop)]!
    }

    /// Binds every listener. Port 0 picks one free port, used for all sockets of that address.
    /// Returns the addresses actually bound.
    @discardableResult
    public func start() async throws -> [ListenAddress] {
        var bound: [ListenAddress] = []
        watchStateFile()
        // Cold start: the first round of checks runs before any query is answered, so a dead
        // member is never served just because the server started.
        let targets = MonitorTarget.targets(for: box.load().pools.pools)
        if !targets.isEmpty {
            monitor.update(targets: targets)
            let started = NIODeadline.now()
            try? await monitor.firstRound(timeout: config.startupCheckTimeout).get()
            let observations = (try? await monitor.observations().get()) ?? [:]
            reloadLock.withLock {
                latestObservations.withLockedValue { $0 = observations }
                let current = box.load()
                box.publish(SnapshotBuilder.rebuildHealth(of: current, observations: observations, generation: current.generation + 1))
            }
            let ms = (NIODeadline.now() - started).nanoseconds / 1_000_000
            let down = observations.values.filter { $0.checks.contains { !$0.up } }.count
            logger.info("first round of health checks: \(targets.count) members in \(ms) ms, \(down) down")
        }
        for loop in group.makeIterator() {
            let s = scratch(for: loop)
            _ = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
                s.udpMetrics.flush()
                s.tcpMetrics.flush()
            }
        }
        for address in config.listen {
            // TCP first: it has no SO_REUSEPORT, so a port another server holds fails here,
            // before any UDP socket could share that port and take part of its traffic.
            let tcp = try await bindTCP(address, port: address.port)
            channels.withLockedValue { $0.append(tcp) }
            let port = tcp.localAddress?.port ?? address.port
            // UDP: one socket per event loop, sharing the port through SO_REUSEPORT.
            for loop in group.makeIterator() {
                let udp = try await bindUDP(address, port: port, loop: loop)
                channels.withLockedValue { $0.append(udp) }
            }
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

    /// Reloads zones, pools and the state file and publishes them only if every file is
    /// valid; otherwise the current data keeps serving and the errors are returned.
    @discardableResult
    public func reload() -> [Diagnostic] {
        reloadLock.withLock {
            let outcome = SnapshotBuilder.build(
                directory: config.zonesDirectory, statePath: config.statePath, config: config.engine, generation: box.generation + 1,
                observations: latestObservations.withLockedValue { $0 })
            for d in outcome.diagnostics { d.severity == .error ? logger.error("\(d)") : logger.warning("\(d)") }
            guard let next = outcome.snapshot else {
                logger.error("reload failed with \(outcome.errors.count) errors, keeping the current configuration")
                return outcome.diagnostics
            }
            box.publish(next)
            monitor.update(targets: MonitorTarget.targets(for: next.pools.pools))
            logger.info("reloaded \(next.zones.zones.count) zones, \(next.zones.recordCount) records, \(next.pools.runtimes.count) pools (generation \(next.generation))")
            return outcome.diagnostics
        }
    }

    /// Re-reads the admin state file and publishes the new health view; a bad file is logged
    /// and the current view stays.
    @discardableResult
    public func reloadState() -> [Diagnostic] {
        guard let path = config.statePath else { return [] }
        return reloadLock.withLock {
            let current = box.load()
            let (next, diags) = SnapshotBuilder.rebuildHealth(of: current, statePath: path, generation: current.generation + 1)
            for d in diags { d.severity == .error ? logger.error("\(d)") : logger.warning("\(d)") }
            guard let next else {
                logger.error("state file rejected, keeping the current health view")
                return diags
            }
            box.publish(next)
            logger.info("state file \(path): \(next.pools.health.overrides.count) overrides applied (generation \(next.generation))")
            return diags
        }
    }

    /// Polls the state file's modification time, size and inode and reloads it on change.
    func watchStateFile() {
        guard let path = config.statePath else { return }
        func signature() -> [Int] {
            var st = stat()
            guard stat(path, &st) == 0 else { return [] }
            return [Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec), Int(st.st_size), Int(st.st_ino)]
        }
        let last = NIOLockedValueBox(signature())
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "meridian.state-watch"))
        let interval = config.statePollMilliseconds
        timer.schedule(deadline: .now() + .milliseconds(interval), repeating: .milliseconds(interval))
        timer.setEventHandler { [self] in
            let now = signature()
            let changed = last.withLockedValue { old in
                defer { old = now }
                return old != now
            }
            if changed { reloadState() }
        }
        timer.resume()
        stateWatcher.withLockedValue { $0 = TimerHandle(timer: timer) }
    }

    /// Closes every listener and stops the event loops.
    public func shutdown() async {
        stateWatcher.withLockedValue {
            $0?.timer.cancel()
            $0 = nil
        }
        let all = channels.withLockedValue { c in
            defer { c = [] }
            return c
        }
        for c in all { try? await c.close() }
        await monitor.shutdown()
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


/// Holds the state-file timer so the server can cancel it at shutdown.
struct TimerHandle: @unchecked Sendable {
    // @unchecked: a dispatch source may be cancelled from any thread (libdispatch guarantees
    // it); the handle is only ever used to call `cancel()`.
    let timer: any DispatchSourceTimer
}
