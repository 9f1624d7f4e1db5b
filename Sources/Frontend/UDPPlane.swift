import Atomics
import CBatchIO
import DNSWire
import Foundation
import GeoTopology
import Logging
import QueryEngine
import QueryLog

#if canImport(Glibc)
import Glibc
#endif

/// Which code answers UDP.
public enum UDPEngine: String, Sendable, CaseIterable {
    /// `BatchUDPPlane`: a thread per socket, recvmmsg/sendmmsg batches (the default).
    case batch
    /// SwiftNIO datagram channels, one per event loop (kept for comparison).
    case nio
}

/// The UDP data plane the way gdnsd and Knot build theirs: one thread per socket, each socket
/// bound to the same address with SO_REUSEPORT (the kernel spreads clients over them), datagrams
/// read and answered in batches with recvmmsg/sendmmsg, one set of buffers per thread made at
/// start, the snapshot read once per batch. Per datagram there is no allocation, no lock and
/// no reference counting outside the answer function itself. The answer step (snapshot,
/// `QueryProcessor`, counters, rate limiting) is the one the NIO front end runs.
final class BatchUDPPlane: @unchecked Sendable {
    // @unchecked: `sockets` and `threads` are set in `start` before any worker runs and read in
    // `stop` after `running` is cleared; each worker owns its batch and its `LoopScratch` alone.
    let address: ListenAddress
    let box: SnapshotBox
    let logger: Logger
    private let batchSize: Int
    private let outSize: Int
    private let rateLimit: RateLimitConfig
    private let dnstap: DnstapWriter?
    private let latencyTaps: LatencyTaps?
    private var sockets: [Int32] = []
    private var threads: [Thread] = []
    private let running = ManagedAtomic<Bool>(true)
    private let finished = DispatchGroup()
    /// The largest query read; longer datagrams are dropped (no DNS query needs more).
    static let maxQuery = 4096

    init(address: ListenAddress, box: SnapshotBox, maxUDPPayload: Int, rateLimit: RateLimitConfig, dnstap: DnstapWriter? = nil, latencyTaps: LatencyTaps? = nil,
         logger: Logger, batchSize: Int = 32) {
        self.address = address
        self.dnstap = dnstap
        self.latencyTaps = latencyTaps
        self.box = box
        self.logger = logger
        self.batchSize = batchSize
        self.outSize = max(512, maxUDPPayload)
        self.rateLimit = rateLimit
    }

    /// Binds `count` sockets on `port` and starts a thread on each.
    func start(port: Int, count: Int) throws(BindError) {
        for _ in 0..<count {
            let fd = meridian_udp_socket(address.host, Int32(port), 200, 4 << 20)
            guard fd >= 0 else {
                stop()
                throw BindError(address: ListenAddress(host: address.host, port: port), transport: "udp", reason: String(cString: strerror(-fd)))
            }
            sockets.append(fd)
        }
        for (i, fd) in sockets.enumerated() {
            let scratch = LoopScratch(rateLimit: rateLimit, dnstap: dnstap, latency: latencyTaps)
            finished.enter()
            let t = Thread { [self] in
                meridian_set_thread_name("meridian-udp-\(i)")
                serve(fd: fd, scratch: scratch)
                finished.leave()
            }
            t.stackSize = 1 << 20
            threads.append(t)
            t.start()
        }
    }

    /// Stops the threads (each notices within its 200 ms receive timeout) and closes the sockets.
    func stop() {
        running.store(false, ordering: .relaxed)
        if finished.wait(timeout: .now() + 2) == .timedOut { logger.warning("UDP threads on \(address) did not stop within 2 s") }
        for fd in sockets { close(fd) }
        sockets = []
    }

    /// One thread's loop: receive a batch, answer it, send the answers, and once a second set the
    /// thread's clock and hand its counters over.
    private func serve(fd: Int32, scratch: LoopScratch) {
        guard let batch = meridian_udp_batch_new(UInt32(batchSize), UInt32(Self.maxQuery), UInt32(outSize)) else {
            logger.critical("UDP on \(address): cannot allocate the batch buffers")
            return
        }
        defer { meridian_udp_batch_free(batch) }
        var reader = SnapshotReader(box)
        let metrics = scratch.udpMetrics
        var second = time(nil)
        while running.load(ordering: .relaxed) {
            let n = meridian_udp_batch_recv(batch, fd)
            let now = time(nil)
            if now != second {
                second = now
                scratch.tick()
                metrics.flush(snapshot: reader.refresh())
            }
            guard n > 0 else { continue }
            let snapshot = reader.refresh()
            var queued: UInt32 = 0
            for i in 0..<UInt32(n) {
                var length = 0
                var truncated: Int32 = 0
                guard let query = meridian_udp_batch_in(batch, i, &length, &truncated), truncated == 0 else { continue }
                let source = Self.peer(batch, i)
                let outcome = QueryProcessor.respond(
                    to: UnsafeRawBufferPointer(start: query, count: length), transport: .udp, snapshot: snapshot, scratch: scratch.scratch, client: source)
                metrics.record(outcome, snapshot: snapshot)
                let sent = outcome.dropped ? nil : scratch.limiter.apply(outcome: outcome, buffer: scratch.buffer, source: source, metrics: metrics)
                if let tap = scratch.dnstap { Self.log(tap, batch, i, query: UnsafeRawBufferPointer(start: query, count: length), response: sent, source: source) }
                guard let response = sent, response.count <= outSize, let base = response.baseAddress,
                      let out = meridian_udp_batch_out(batch, queued) else { continue }
                scratch.latency?.sight(source)
                memcpy(out, base, response.count)
                meridian_udp_batch_queue(batch, queued, i, response.count)
                queued += 1
            }
            if queued > 0 { _ = meridian_udp_batch_send(batch, fd, queued) }
        }
        metrics.flush()
    }

    @inline(__always)
    /// Logs one datagram's query and response to dnstap, with the source port.
    static func log(_ tap: DnstapTap, _ batch: OpaquePointer, _ i: UInt32, query: UnsafeRawBufferPointer, response: UnsafeRawBufferPointer?, source: IPAddress) {
        let port = meridian_udp_batch_peer_port(batch, i)
        withUnsafeBytes(of: source.bytes) { a in
            tap.log(query: query, response: response, client: UnsafeRawBufferPointer(rebasing: a[0..<(source.family == .v4 ? 4 : 16)]),
                    port: port == 0 ? nil : port, tcp: false)
        }
    }

    static func peer(_ batch: OpaquePointer, _ i: UInt32) -> IPAddress {
        var bytes = SIMD16<UInt8>(repeating: 0)
        let family = withUnsafeMutableBytes(of: &bytes) { meridian_udp_batch_peer(batch, i, $0.baseAddress?.assumingMemoryBound(to: UInt8.self)) }
        switch family {
        case 4: return IPAddress(family: .v4, bytes: bytes)
        case 6: return IPAddress(family: .v6, bytes: bytes)
        default: return QueryProcessor.unknownClient
        }
    }
}

extension LimiterBox {
    /// Response rate limiting for one UDP answer: the octets to send (the answer, or a TC=1
    /// slip), or nil to drop it. A valid server cookie proves the source is not spoofed, so
    /// such clients are not limited; the key is the packet source, not an ECS address (a spoofed
    /// flood names its victim there).
    @inline(__always)
    func apply(outcome: QueryOutcome, buffer: MessageBuffer, source: IPAddress, metrics: QueryMetrics) -> UnsafeRawBufferPointer? {
        let response = UnsafeRawBufferPointer(rebasing: buffer.storage[0..<outcome.length])
        guard enabled, !outcome.cookieValid else { return response }
        let key = limiter.key(client: source, rateClass: outcome.rateClass)
        switch limiter.decide(key: key, now: buffer.nowSeconds) {
        case .send:
            return response
        case .drop:
            metrics.rateLimited(slipped: false)
            return nil
        case .slip:
            metrics.rateLimited(slipped: true)
            return UDPQueryHandler.truncate(buffer, questionEnd: outcome.questionEnd)
        }
    }
}
