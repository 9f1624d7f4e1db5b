import Frontend
import Health
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOConcurrencyHelpers
import NIOSSL
import Logging
import MeridianServer
import NIOCore
import Prometheus
import QueryEngine
import ServiceLifecycle

/// The admin HTTP API over a running `DNSServer`: `/status`, `/explain`, `/overrides`,
/// `/reload`, `/healthz`, `/metrics` and the status page at `/`. Every endpoint but
/// `/metrics` and `/healthz` needs the bearer token (or HTTP Basic with the token as the
/// password, for browsers) when tokens are configured. Errors are JSON: `{"error": "..."}`.
public final class AdminServer: Sendable {
    let server: DNSServer
    let config: AdminConfig
    let registry: PrometheusCollectorRegistry
    let logger: Logger
    private let task = NIOLockedValueBox<(task: Task<Void, any Error>, group: ServiceGroup)?>(nil)
    /// Answers per second per pool and site for the page's sparklines, and the task reading them.
    let history = AnswerHistory()
    private let sampler = NIOLockedValueBox<Task<Void, Never>?>(nil)
    let actions = PageActions()

    public init(server: DNSServer, config: AdminConfig, registry: PrometheusCollectorRegistry, logger: Logger) throws(AdminConfigError) {
        if config.tokens.isEmpty && !config.isLoopback { throw .needsToken(config.host) }
        if (config.tlsCertificate == nil) != (config.tlsKey == nil) { throw .tls("--admin-tls-cert and --admin-tls-key go together") }
        self.server = server
        self.config = config
        self.registry = registry
        self.logger = logger
    }

    /// Starts listening; returns the bound port (the configured one, or the one picked for 0).
    public func start() async throws -> Int {
        let router = Router()
        router.add(middleware: ErrorMiddleware(logger: logger))
        router.add(middleware: AuthMiddleware(tokens: config.tokens))
        routes(router)
        let serverBuilder: HTTPServerBuilder
        // An idle connection is closed after 10 s, and a request must arrive whole within 10 s.
        let deadline = TimeAmount.seconds(10)
        let slots = ConnectionShare.table(maxConnections: config.maxConnections)
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [ConnectionShare(slots: slots, refused: ConnectionShare.counters), RequestDeadline(limit: deadline)], idleTimeout: deadline)
        if let cert = config.tlsCertificate, let key = config.tlsKey {
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(cert).map { NIOSSLCertificateSource.certificate($0) }
                let tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
                serverBuilder = try .tls(.http1(configuration: http1), tlsConfiguration: tls)
            } catch {
                throw AdminConfigError.tls("cannot load the admin TLS certificate or key: \(error)")
            }
        } else {
            serverBuilder = .http1(configuration: http1)
        }
        let bound = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router, server: serverBuilder,
            configuration: .init(
                address: .hostname(config.host, port: config.port), serverName: "meridian",
                availableConnectionsDelegate: MaximumAvailableConnections(config.maxConnections)),
            onServerRunning: { channel in
                bound.continuation.yield(channel.localAddress?.port ?? 0)
                bound.continuation.finish()
            },
            logger: logger)
        // Run under a service group of its own, so shutdown is graceful (open requests end,
        // nothing is cancelled and logged as an error).
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let running = Task {
            do { try await group.run() } catch {
                bound.continuation.finish()
                throw error
            }
        }
        task.withLockedValue { $0 = (running, group) }
        startSampler()
        for await port in bound.stream { return port }
        // The server stopped before it was running: report why.
        let address = config.host.contains(":") ? "[\(config.host)]:\(config.port)" : "\(config.host):\(config.port)"
        do { try await running.value } catch {
            throw AdminConfigError.bind(address, SocketErrorText.reason(error))
        }
        throw AdminConfigError.badListen(address)
    }

    /// Reads the pool answer counters back every `history.interval` seconds (a task, off every
    /// event loop).
    private func startSampler() {
        let registry = self.registry
        let history = self.history
        let t = Task {
            while !Task.isCancelled {
                var body: [UInt8] = []
                registry.emit(into: &body)
                await history.record(MetricsText.parse(Data(body)), at: Date().timeIntervalSince1970)
                try? await Task.sleep(nanoseconds: UInt64(history.interval * 1e9))
            }
        }
        sampler.withLockedValue { $0 = t }
    }

    public func shutdown() async {
        sampler.withLockedValue { $0?.cancel(); $0 = nil }
        let t = task.withLockedValue { t in
            defer { t = nil }
            return t
        }
        await t?.group.triggerGracefulShutdown()
        _ = try? await t?.task.value
    }

    func routes(_ router: Router<BasicRequestContext>) {
        let server = self.server
        let registry = self.registry
        let maxBody = config.maxBody
        router.get("/healthz") { _, _ in
            let s = server.box.load()
            return try JSONReply.encode(["status": "ok", "generation": "\(s.configGeneration)", "health_generation": "\(s.pools.health.version)"])
        }
        let process = ProcessMetrics(registry: registry)
        router.get("/metrics") { _, _ in
            process.update()
            var body: [UInt8] = []
            registry.emit(into: &body)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        router.get("/status") { _, _ in try JSONReply.encode(await server.status()) }
        let history = self.history
        let actions = self.actions
        router.get("/") { request, _ in
            let page = StatusPage.render(await server.status(), rates: await history.rates(), csrf: actions.csrf(for: request))
            return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: page)))
        }
        pageActionRoutes(router, maxBody: maxBody)
        router.get("/explain") { request, _ in
            let q = request.uri.queryParameters
            guard let name = q["name"].map(String.init), let client = q["client"].map(String.init) else {
                throw HTTPError(.badRequest, message: "explain needs name= and client= (and optionally type= and ecs=)")
            }
            let explanation: Explanation
            do throws(ExplainError) {
                explanation = try Explainer.explain(
                    snapshot: server.box.load(), name: name, type: q["type"].map(String.init) ?? "A", client: client, ecs: q["ecs"].map(String.init))
            } catch {
                throw HTTPError(.badRequest, message: error.description)
            }
            return try JSONReply.encode(explanation)
        }
        router.get("/overrides") { _, _ in try JSONReply.encode(server.overrides()) }
        router.post("/overrides") { request, _ in
            let body = try await request.body.collect(upTo: maxBody)
            let o = try OverrideRequest.parse(Data(buffer: body), now: Date().timeIntervalSince1970)
            let info: OverrideInfo
            do throws(OverrideError) { info = try server.setOverride(o) } catch { throw OverrideRequest.httpError(error) }
            return try JSONReply.encode(info, status: .created)
        }
        router.delete("/overrides/:id") { _, context in
            let id = try context.parameters.require("id")
            let info: OverrideInfo
            do throws(OverrideError) { info = try await server.removeOverride(id: id) } catch { throw OverrideRequest.httpError(error) }
            return try JSONReply.encode(info)
        }
        router.post("/measurements") { request, _ in
            let body = try await request.body.collect(upTo: maxBody)
            let inputs = try MeasurementRequest.parse(Data(buffer: body))
            let accepted: Int
            do throws(MeasurementError) { accepted = try server.recordMeasurements(inputs) } catch {
                throw HTTPError(.unprocessableContent, message: error.description)
            }
            return try JSONReply.encode(MeasurementReply(accepted: accepted), status: .accepted)
        }
        router.post("/reload") { request, _ in
            // ?zone=a.example,b.example reads those zones again and nothing else.
            let zones = request.uri.queryParameters.getAll("zone").flatMap { $0.split(separator: ",").map(String.init) }
            guard zones.count <= 64 else { throw HTTPError(.badRequest, message: "at most 64 zones in one reload") }
            let diagnostics = zones.isEmpty ? await server.reload() : await server.reload(zones: zones)
            let errors = diagnostics.filter { $0.severity == .error }
            let reply = ReloadReply(
                ok: errors.isEmpty, generation: server.box.load().configGeneration, diagnostics: diagnostics.map(\.description))
            return try JSONReply.encode(reply, status: errors.isEmpty ? .ok : .unprocessableContent)
        }
    }
}

extension AdminServer {
    /// The page's forms: a member's form, and the override and removal posts (each shown for
    /// confirmation first). Errors are HTML pages here, for the browser.
    func pageActionRoutes(_ router: Router<BasicRequestContext>, maxBody: Int) {
        let server = self.server
        let actions = self.actions
        @Sendable func page(_ body: () async throws -> Response) async -> Response {
            do { return try await body() } catch let e as HTTPError {
                return PageActions.html("<h1>Not done</h1><p class=\"err\" id=\"error\">\(PageActions.escape(e.body ?? e.status.reasonPhrase))</p>", status: e.status)
            } catch {
                return PageActions.html("<h1>Not done</h1><p class=\"err\" id=\"error\">\(PageActions.escape("\(error)"))</p>", status: .badRequest)
            }
        }
        router.get("/ui/member") { request, _ in
            await page {
                guard let id = request.uri.queryParameters["id"].map(String.init) else { throw HTTPError(.badRequest, message: "which member? (id=)") }
                let status = await server.status()
                guard let m = status.pools.flatMap({ $0.sites.flatMap(\.members) }).first(where: { $0.id == id }) else {
                    throw HTTPError(.notFound, message: "no member \(id)")
                }
                return PageActions.html(PageActions.memberPage(m, csrf: actions.csrf(for: request)))
            }
        }
        router.post("/ui/override") { request, _ in
            await page {
                let form = try PageActions.form(try await request.body.collect(upTo: maxBody))
                try actions.checkOrigin(request, form: form)
                let o = try PageActions.override(form, now: Date().timeIntervalSince1970)
                guard form["confirm"] == "yes" else {
                    let ids = server.box.load().pools.pools.pools.flatMap(\.members).map(\.id).filter { fnmatch(o.pattern, $0, 0) == 0 }
                    guard !ids.isEmpty else { throw HTTPError(.notFound, message: "\(o.pattern) matches no member") }
                    var fields = form
                    fields["confirm"] = nil
                    let weight = o.weightFactor.map { " at \(Int(($0 * 100).rounded()))% weight" } ?? ""
                    let expiry = o.expires.map { ", until \(AdminStateFile.time($0.rounded(.down)))" } ?? ", until removed"
                    let what = "Set \(o.state.rawValue.uppercased())\(weight) on \(ids.count) member(s) matching \(o.pattern) (\(ids.prefix(10).joined(separator: ", "))\(ids.count > 10 ? ", …" : "")), reason “\(o.reason)”\(expiry), on every instance of the group?"
                    return PageActions.html(PageActions.confirmPage(title: "Override \(o.pattern)", what: what, action: "/ui/override", fields: fields))
                }
                do throws(OverrideError) { _ = try server.setOverride(o) } catch { throw OverrideRequest.httpError(error) }
                return Response(status: .seeOther, headers: [.location: "/"])
            }
        }
        router.post("/ui/override/remove") { request, _ in
            await page {
                let form = try PageActions.form(try await request.body.collect(upTo: maxBody))
                try actions.checkOrigin(request, form: form)
                guard let id = form["id"], let o = server.overrides().first(where: { $0.id == id }) else {
                    throw HTTPError(.notFound, message: "no override \(form["id"] ?? "")")
                }
                guard form["confirm"] == "yes" else {
                    var fields = form
                    fields["confirm"] = nil
                    let what = "Remove the override \(o.state.uppercased()) on \(o.member) (\(o.matches) member(s), reason “\(o.reason)”): the members go back to what their checks say, on every instance?"
                    return PageActions.html(PageActions.confirmPage(title: "Remove override \(o.member)", what: what, action: "/ui/override/remove", fields: fields))
                }
                do throws(OverrideError) { _ = try await server.removeOverride(id: id) } catch { throw OverrideRequest.httpError(error) }
                return Response(status: .seeOther, headers: [.location: "/"])
            }
        }
    }
}

/// `POST /reload`'s answer.
struct ReloadReply: Codable, Sendable {
    var ok: Bool
    /// The configuration generation in force after the reload.
    var generation: Int
    var diagnostics: [String]
}

/// JSON responses, keys sorted.
enum JSONReply {
    static func encode<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
