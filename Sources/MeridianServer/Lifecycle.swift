import Frontend
import Logging
import ServiceLifecycle
import UnixSignals

/// The DNS server as a service of the process's `ServiceGroup` (swift-service-lifecycle), which
/// owns the signals: SIGTERM and SIGINT start a graceful shutdown of every service (the admin
/// API first, then this), SIGHUP reloads. Started (`start()`) before the group runs, so every
/// socket is bound before privileges are dropped.
public struct DNSService: Service {
    let server: DNSServer

    public init(_ server: DNSServer) { self.server = server }

    public func run() async throws {
        let logger = server.logger
        // Reloads until the group shuts down; a reload in progress never delays that.
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            logger.info("SIGHUP: reloading zones")
            server.requestReload()
        }
        logger.info("shutting down")
        await server.shutdown()
    }
}

/// Anything with an async `shutdown()` that runs until the group shuts down (the admin API).
public struct StoppableService: Service {
    let shutdown: @Sendable () async -> Void

    public init(shutdown: @escaping @Sendable () async -> Void) { self.shutdown = shutdown }

    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }
}

extension DNSServer {
    /// Serves until SIGINT or SIGTERM (SIGHUP reloads), with `others` (the admin API) shut
    /// down first. The one place signals are handled.
    public func runUntilSignalled(alongside others: [StoppableService] = []) async {
        let services = others.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
            + [ServiceGroupConfiguration.ServiceConfiguration(service: DNSService(self))]
        var config = ServiceGroupConfiguration(services: services.reversed(), logger: logger)
        config.gracefulShutdownSignals = [.sigterm, .sigint]
        do { try await ServiceGroup(configuration: config).run() } catch { logger.error("service group: \(error)") }
    }
}
