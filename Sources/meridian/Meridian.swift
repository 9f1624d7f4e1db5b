import ArgumentParser
import Foundation
import Logging
import MeridianServer
import QueryEngine
import ZoneStore

@main
struct Meridian: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meridian",
        abstract: "An authoritative GSLB DNS server.",
        subcommands: [Serve.self, Check.self],
        defaultSubcommand: Serve.self
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the zones in a directory over UDP and TCP. SIGHUP reloads them; a bad file keeps the old data serving.")

    @Option(name: .long, help: "Directory with the zone files (NAME.zone).")
    var zones = "Zones"

    @Option(name: .long, help: "Address to listen on, HOST:PORT or [V6]:PORT; repeat for several.")
    var listen: [String] = ["127.0.0.1:5300", "[::1]:5300"]

    @Option(name: .long, help: "Event loops and UDP sockets per address (default: one per core).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: "Largest UDP response in octets, whatever the client offers (512-65535).")
    var maxUdpSize = 1232

    @Option(name: .long, help: "Seconds before an idle TCP connection is closed.")
    var tcpIdleTimeout: Int64 = 10

    @Option(name: .long, help: "Most TCP connections open at once.")
    var tcpMaxConnections = 1024

    @Option(name: .long, help: "Most octets buffered per TCP connection, each way.")
    var tcpMaxBuffer = 262_144

    @Option(name: .long, help: "NSID to return to queries that ask (RFC 5001), as text.")
    var nsid: String?

    @Option(name: .long, help: "Answer for CH TXT id.server and hostname.bind.")
    var identity: String?

    @Option(name: .long, help: "Answer for CH TXT version.bind and version.server (off by default).")
    var versionString: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "meridian")
        var addresses: [ListenAddress] = []
        for l in listen {
            guard let a = ListenAddress(l) else { throw ValidationError("bad listen address \(l): use HOST:PORT or [V6]:PORT") }
            addresses.append(a)
        }
        let engine = EngineConfig(
            maxUDPPayload: maxUdpSize,
            identity: ServerIdentity(nsid: nsid.map { Array($0.utf8) }, identity: identity, version: versionString))
        let config = ServerConfig(
            zonesDirectory: zones, listen: addresses, threads: threads, tcpIdleTimeout: tcpIdleTimeout,
            tcpMaxConnections: tcpMaxConnections, tcpMaxBufferedBytes: tcpMaxBuffer, engine: engine)
        let server: DNSServer
        do { server = try DNSServer(config: config, logger: logger) } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
        do { try await server.start() } catch {
            logger.critical("\(error)")
            await server.shutdown()
            throw ExitCode(1)
        }
        await server.runUntilSignalled()
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate the zone files in a directory with the server's own loader; prints file:line: message and exits non-zero on errors.")

    @Argument(help: "Directory with the zone files.")
    var path = "Zones"

    @Flag(name: .long, help: "Treat warnings as errors.")
    var strict = false

    func run() throws {
        let outcome: ZoneLoader.Outcome
        do { outcome = try ZoneLoader.load(directory: path) } catch {
            print("\(error)")
            throw ExitCode(2)
        }
        for d in outcome.diagnostics { print(d) }
        let failed = !outcome.errors.isEmpty || (strict && !outcome.diagnostics.isEmpty)
        if failed {
            let n = strict ? outcome.diagnostics.count : outcome.errors.count
            print("\(path): \(n) problem\(n == 1 ? "" : "s") found")
            throw ExitCode(1)
        }
        if let zones = outcome.zones {
            print("\(path): \(zones.zones.count) zones, \(zones.recordCount) records OK")
        }
    }
}
