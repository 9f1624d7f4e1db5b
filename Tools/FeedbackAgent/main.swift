// meridian-agent: a feedback agent for Linux nodes, speaking the HAProxy agent-check text
// protocol that Meridian (and HAProxy, and the Loadbalancer.org feedback agent) read.
//
// Each connection gets one line and is closed: `up NN%` with the node's spare capacity, or
// `drain`, `maint`, `down` when the matching file exists (so an operator or a deploy script
// can take the node out with `touch`). Spare capacity is the CPU idle share over the last
// sample period, and optionally 1 - load/cores and the available-memory share: the lowest of
// the enabled measures.
import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

@main
struct FeedbackAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meridian-agent",
        abstract: "Report this node's spare capacity to Meridian (HAProxy agent-check protocol, TCP 3333).")

    @Option(name: .long, help: "Address to listen on.")
    var listen = "0.0.0.0"

    @Option(name: .long, help: "TCP port to listen on.")
    var port = 3333

    @Option(name: .long, help: "Seconds between CPU samples.")
    var sample: Double = 1

    @Flag(name: .long, help: "Also count the 1-minute load average against the core count.")
    var load = false

    @Flag(name: .long, help: "Also count available memory (MemAvailable / MemTotal).")
    var memory = false

    @Option(name: .long, help: "If this file exists, answer 'drain' (no new clients, still healthy).")
    var drainFile = "/etc/meridian-agent/drain"

    @Option(name: .long, help: "If this file exists, answer 'maint'.")
    var maintFile = "/etc/meridian-agent/maint"

    @Option(name: .long, help: "If this file exists, answer 'down'.")
    var downFile = "/etc/meridian-agent/down"

    @Option(name: .long, help: "Read /proc from here (for tests).")
    var proc = "/proc"

    func run() async throws {
        let state = AgentState()
        let sampler = CPUSampler(proc: proc)
        _ = sampler.sample()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let interval = TimeAmount.milliseconds(Int64(max(sample, 0.1) * 1000))
        let options = (load: load, memory: memory, proc: proc)
        group.next().scheduleRepeatedTask(initialDelay: .zero, delay: interval) { _ in
            state.set(capacity(cpuIdle: sampler.sample(), options: options))
        }
        let files = (drain: drainFile, maint: maintFile, down: downFile)
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(Reply(line: { reply(state.get(), files: files) })) }
            }
            .bind(host: listen, port: port).get()
        print("meridian-agent: listening on \(listen):\(server.localAddress?.port ?? port)")
        try await server.closeFuture.get()
    }
}

/// The line a connection gets.
func reply(_ percent: Int, files: (drain: String, maint: String, down: String)) -> String {
    let fm = FileManager.default
    if fm.fileExists(atPath: files.down) { return "down\n" }
    if fm.fileExists(atPath: files.maint) { return "maint\n" }
    if fm.fileExists(atPath: files.drain) { return "drain\n" }
    return "up \(percent)%\n"
}

/// Spare capacity in percent: the lowest of the enabled measures.
func capacity(cpuIdle: Double, options: (load: Bool, memory: Bool, proc: String)) -> Int {
    var spare = cpuIdle
    if options.load, let text = try? String(contentsOfFile: options.proc + "/loadavg", encoding: .utf8),
        let l1 = text.split(separator: " ").first.flatMap({ Double($0) })
    {
        let cores = Double(max(1, ProcessInfo.processInfo.activeProcessorCount))
        spare = min(spare, max(0, 1 - l1 / cores))
    }
    if options.memory, let text = try? String(contentsOfFile: options.proc + "/meminfo", encoding: .utf8) {
        var fields: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let v = Double(parts[1]) { fields[String(parts[0].dropLast())] = v }
        }
        if let avail = fields["MemAvailable"], let total = fields["MemTotal"], total > 0 { spare = min(spare, avail / total) }
    }
    return Int((max(0, min(1, spare)) * 100).rounded())
}

/// CPU idle share between two reads of /proc/stat.
final class CPUSampler: @unchecked Sendable {
    // @unchecked: `last` is guarded by `lock`.
    let proc: String
    let lock = NIOLock()
    var last: (idle: Double, total: Double)?

    init(proc: String) { self.proc = proc }

    func sample() -> Double {
        guard let text = try? String(contentsOfFile: proc + "/stat", encoding: .utf8),
            let cpu = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
        else { return 1 }
        let v = cpu.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard v.count >= 4 else { return 1 }
        // user nice system idle iowait irq softirq steal: idle + iowait count as spare.
        let idle = v[3] + (v.count > 4 ? v[4] : 0)
        let total = v.prefix(8).reduce(0, +)
        return lock.withLock {
            defer { last = (idle, total) }
            // The first sample has nothing to compare with: the share since boot.
            guard let l = last else { return idle / max(total, 1) }
            guard total > l.total else { return 1 }
            return (idle - l.idle) / (total - l.total)
        }
    }
}

final class AgentState: @unchecked Sendable {
    // @unchecked: `percent` is guarded by `lock`.
    let lock = NIOLock()
    var percent = 100
    func set(_ p: Int) { lock.withLock { percent = p } }
    func get() -> Int { lock.withLock { percent } }
}

/// Writes one line on connect and closes.
final class Reply: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: used only on its channel's event loop.
    typealias InboundIn = ByteBuffer
    let line: @Sendable () -> String
    init(line: @escaping @Sendable () -> String) { self.line = line }

    func channelActive(context: ChannelHandlerContext) {
        let ch = context.channel
        context.writeAndFlush(NIOAny(ByteBuffer(string: line()))).whenComplete { _ in ch.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
