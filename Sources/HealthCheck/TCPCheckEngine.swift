import Control
import CTCPProbe
import Foundation
import GeoTopology
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// TCP connect checks on a thread of their own (`CTCPProbe`: nonblocking connect, epoll, close
/// with a reset), the way the plain C checker in `Tools/check-floor.c` makes them: no channel,
/// pipeline, promise or allocation per check on the engine's side. The monitor hands over the
/// checks of one wake-up in one batch, and each pass of the engine's loop hands its results
/// back in one batch (`deliver`, which hops onto the monitor's loop).
final class TCPCheckEngine: @unchecked Sendable {
    // @unchecked: `waiting` and `nextID` are guarded by `lock`; the C engine is driven by its
    // own thread, and `meridian_tcp_prober_submit`/`stop` are safe from any thread.
    typealias Completion = @Sendable (ProbeResult) -> Void
    typealias Deliver = @Sendable ([(Completion, ProbeResult)]) -> Void

    private let engine: OpaquePointer
    private let lock = NIOLock()
    private var waiting: [UInt64: Completion] = [:]
    private var nextID: UInt64 = 1
    private let deliver: Deliver
    private let finished = DispatchGroup()

    init?(source: CheckSource = CheckSource(), deliver: @escaping Deliver) {
        guard let e = meridian_tcp_prober_new() else { return nil }
        engine = e
        for a in [source.v4, source.v6].compactMap({ $0 }) {
            var bytes = a.bytes
            withUnsafeBytes(of: &bytes) { raw in
                _ = meridian_tcp_prober_set_source(e, a.family == .v4 ? 4 : 6, raw.baseAddress?.assumingMemoryBound(to: UInt8.self))
            }
        }
        self.deliver = deliver
        finished.enter()
        let t = Thread { [self] in
            let context = Unmanaged.passUnretained(self).toOpaque()
            meridian_tcp_prober_run(engine, { ctx, results, count in
                guard let ctx, let results else { return }
                Unmanaged<TCPCheckEngine>.fromOpaque(ctx).takeUnretainedValue().completed(results, Int(count))
            }, context)
            finished.leave()
        }
        t.name = "meridian-tcp-checks"
        t.start()
    }

    /// Starts a batch of checks: (address, port, timeout in seconds, completion).
    func submit(_ batch: [(IPAddress, Int, Double, Completion)]) {
        guard !batch.isEmpty else { return }
        var requests = [meridian_tcp_request](repeating: meridian_tcp_request(), count: batch.count)
        lock.withLock {
            for (i, (address, port, timeout, done)) in batch.enumerated() {
                let id = nextID
                nextID &+= 1
                waiting[id] = done
                var bytes = address.bytes
                withUnsafeBytes(of: &bytes) { raw in
                    meridian_tcp_request_set(&requests[i], id, address.family == .v4 ? 4 : 6,
                                             raw.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(port), Int32(max(1, min(timeout * 1000, 3_600_000))))
                }
            }
        }
        if meridian_tcp_prober_submit(engine, requests, Int32(requests.count)) != 0 {
            let dropped = lock.withLock { requests.compactMap { waiting.removeValue(forKey: $0.id) } }
            deliver(dropped.map { ($0, ProbeResult.localFailure("connect: out of memory")) })
        }
    }

    /// On the engine's thread: one pass of results.
    private func completed(_ results: UnsafePointer<meridian_tcp_result>, _ count: Int) {
        var out: [(Completion, ProbeResult)] = []
        out.reserveCapacity(count)
        lock.withLock {
            for i in 0..<count {
                guard let done = waiting.removeValue(forKey: results[i].id) else { continue }
                out.append((done, Self.result(errno: results[i].error)))
            }
        }
        if !out.isEmpty { deliver(out) }
    }

    static func result(errno e: Int32) -> ProbeResult {
        if e == 0 { return .success("connected") }
        let why = e == ETIMEDOUT ? "connect: timed out" : "connect: \(String(cString: strerror(e)))"
        return localShortageErrnos.contains(e) ? .localFailure(why) : .failure(why)
    }

    /// Stops the thread; checks still running are answered ("stopped").
    func stop() {
        requestStop()
        _ = finished.wait(timeout: .now() + 2)
    }

    /// Tells the thread to stop and returns at once (the thread holds the engine until it has).
    func requestStop() { meridian_tcp_prober_stop(engine) }

    deinit { meridian_tcp_prober_free(engine) }
}
