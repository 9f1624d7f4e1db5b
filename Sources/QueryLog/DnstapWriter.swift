import Atomics
import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// Where dnstap goes and what it holds (`--dnstap-socket`, `--dnstap-file`, `--dnstap-sample`,
/// `--dnstap-messages`).
public struct DnstapSettings: Sendable {
    public enum Destination: Sendable, Equatable {
        /// A Frame Streams reader's UNIX socket (`fstrm_capture -u`, a collector), bidirectional.
        case socket(String)
        /// A Frame Streams file, written from the start (truncated) at each start of the server.
        case file(String)
    }

    public var destination: Destination
    /// One query in `sampleEvery` is logged (1: every query), per answering thread.
    public var sampleEvery: Int
    public var queries: Bool
    public var responses: Bool
    /// `Dnstap.identity` and `Dnstap.version`.
    public var identity: String
    public var version: String
    /// Frames each answering thread may have waiting; more are dropped and counted.
    public var queueFrames: Int

    public init(destination: Destination, sampleEvery: Int = 1, queries: Bool = true, responses: Bool = true,
                identity: String, version: String, queueFrames: Int = 16_384) {
        self.destination = destination
        self.sampleEvery = max(1, sampleEvery)
        self.queries = queries
        self.responses = responses
        self.identity = identity
        self.version = version
        self.queueFrames = max(16, queueFrames)
    }
}

/// One answering thread's end of the dnstap log: it samples, encodes the messages and pushes
/// the frames to its own ring, never waiting and never taking a lock; a full ring drops the
/// frame (counted).
public final class DnstapTap: @unchecked Sendable {
    // @unchecked: `log` is called by the one thread that owns this tap; the writer reads only
    // `ring` (single consumer) and `dropped` (atomic).
    /// The frames waiting for the writer (its single consumer).
    public let ring: SPSCRing
    let dropped = ManagedAtomic<Int>(0)
    private let settings: DnstapSettings
    private let identity: [UInt8]
    private let version: [UInt8]
    private var countdown: Int

    init(settings: DnstapSettings) {
        self.settings = settings
        ring = SPSCRing(capacity: settings.queueFrames)
        identity = Array(settings.identity.utf8)
        version = Array(settings.version.utf8)
        countdown = 1
    }

    /// Logs one query and the response sent for it (nil: none was sent), if this query is
    /// sampled. `client` is 4 or 16 octets.
    @inline(__always)
    public func log(query: UnsafeRawBufferPointer, response: UnsafeRawBufferPointer?, client: UnsafeRawBufferPointer, port: UInt16?, tcp: Bool) {
        countdown -= 1
        guard countdown <= 0 else { return }
        countdown = settings.sampleEvery
        record(query: query, response: response, client: client, port: port, tcp: tcp)
    }

    private func record(query: UnsafeRawBufferPointer, response: UnsafeRawBufferPointer?, client: UnsafeRawBufferPointer, port: UInt16?, tcp: Bool) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let proto: DnstapMessage.SocketProtocol = tcp ? .tcp : .udp
        if settings.queries { push(.authQuery, proto, client, port, ts, query) }
        if settings.responses, let response { push(.authResponse, proto, client, port, ts, response) }
    }

    @inline(__always)
    private func push(_ kind: DnstapMessage.Kind, _ proto: DnstapMessage.SocketProtocol, _ client: UnsafeRawBufferPointer, _ port: UInt16?,
                      _ ts: timespec, _ message: UnsafeRawBufferPointer) {
        let frame = DnstapMessage.frame(
            kind: kind, socketProtocol: proto, client: client, port: port, seconds: UInt64(ts.tv_sec), nanoseconds: UInt32(ts.tv_nsec),
            message: message, identity: identity, version: version)
        if !ring.push(frame) { dropped.wrappingIncrement(ordering: .relaxed) }
    }
}

/// The dnstap writer: one thread of its own that drains every answering thread's ring and
/// writes the frames to a Frame Streams file or socket. A reader that goes away or stalls
/// (1 s write timeout) is dropped and reconnected to with backoff; frames meanwhile are
/// dropped and counted, never queued without bound, and the answer path never waits.
public final class DnstapWriter: @unchecked Sendable {
    // @unchecked: `taps` is appended under `lock` (at set-up, before answering starts) and
    // read by the writer thread through `known`; everything else is the writer thread's own.
    public let settings: DnstapSettings
    private let logger: Logger
    private let lock = NIOLock()
    private var taps: [DnstapTap] = []
    private let registered = ManagedAtomic<Int>(0)
    private let running = ManagedAtomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private var thread: Thread?

    private var fd: Int32 = -1
    private var retryAt: Double = 0
    private var backoff: Double = 1
    private var loggedErrors = Set<String>()
    private var known: [DnstapTap] = []
    private var tapDrops: [Int] = []

    private let written = Counter(label: "meridian_dnstap_frames_total")
    private let droppedFull = Counter(label: "meridian_dnstap_dropped_total", dimensions: [("reason", "queue full")])
    private let droppedNoReader = Counter(label: "meridian_dnstap_dropped_total", dimensions: [("reason", "no reader")])
    private let connected = Gauge(label: "meridian_dnstap_connected")

    public init(settings: DnstapSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    /// A new answering thread's tap (one per thread; made before the thread answers).
    public func makeTap() -> DnstapTap {
        let tap = DnstapTap(settings: settings)
        lock.withLock { taps.append(tap) }
        registered.wrappingIncrement(ordering: .releasing)
        return tap
    }

    /// Opens the destination (a file must open: an error says why; a socket may come later)
    /// and starts the writer thread.
    public func start() throws(DnstapError) {
        if case .file(let path) = settings.destination {
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw .open(path: path, reason: String(cString: strerror(errno))) }
            guard writeAll(FrameStreams.control(.start, contentType: FrameStreams.dnstapContentType)) else {
                throw .open(path: path, reason: String(cString: strerror(errno)))
            }
            connected.record(1)
        } else {
            connected.record(0)
        }
        running.store(true, ordering: .releasing)
        let t = Thread { [self] in
            run()
            finished.signal()
        }
        t.name = "meridian-dnstap"
        thread = t
        t.start()
    }

    /// Writes what is queued, ends the stream (STOP, and FINISH from a socket's reader) and
    /// stops the thread; waits at most `timeout` seconds.
    public func stop(timeout: Double = 2) {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        if finished.wait(timeout: .now() + timeout) == .timedOut { logger.warning("dnstap: the writer did not stop within \(timeout) s") }
    }

    private func run() {
        while running.load(ordering: .acquiring) {
            if !drain() { usleep(2_000) }
        }
        _ = drain()
        finish()
    }

    /// Moves every ring's frames to the destination; false when there were none.
    private func drain() -> Bool {
        if registered.load(ordering: .acquiring) != known.count {
            known = lock.withLock { taps }
            tapDrops += [Int](repeating: 0, count: known.count - tapDrops.count)
        }
        for (i, tap) in known.enumerated() {
            let d = tap.dropped.load(ordering: .relaxed)
            if d != tapDrops[i] { droppedFull.increment(by: d &- tapDrops[i]); tapDrops[i] = d }
        }
        if fd < 0 { connectIfDue() }
        var batch: [UInt8] = []
        var frames = 0
        for tap in known {
            while let f = tap.ring.pop() {
                batch += f
                frames += 1
                if batch.count >= 64 << 10 { send(&batch, frames: &frames) }
            }
        }
        let any = frames > 0 || !batch.isEmpty
        if !batch.isEmpty { send(&batch, frames: &frames) }
        return any
    }

    private func send(_ batch: inout [UInt8], frames: inout Int) {
        defer { batch.removeAll(keepingCapacity: true); frames = 0 }
        guard fd >= 0 else { return droppedNoReader.increment(by: frames) }
        if writeAll(batch) {
            written.increment(by: frames)
        } else {
            droppedNoReader.increment(by: frames)
            lost("write: \(String(cString: strerror(errno)))")
        }
    }

    /// The destination failed: a socket is closed and tried again later; a file stays closed.
    private func lost(_ why: String) {
        logOnce("dnstap: \(describe) \(why); frames are dropped (meridian_dnstap_dropped_total) until it works again")
        if fd >= 0 { close(fd) }
        fd = -1
        connected.record(0)
        scheduleRetry()
    }

    private var describe: String {
        switch settings.destination {
        case .socket(let p): return "socket \(p):"
        case .file(let p): return "file \(p):"
        }
    }

    private func scheduleRetry() {
        retryAt = Date().timeIntervalSince1970 + backoff
        backoff = min(backoff * 2, 16)
    }

    private func connectIfDue() {
        guard case .socket(let path) = settings.destination, Date().timeIntervalSince1970 >= retryAt else { return }
        switch FrameStreamSocket.connect(path: path) {
        case .success(let s):
            fd = s
            backoff = 1
            loggedErrors = []
            connected.record(1)
            logger.notice("dnstap: connected to \(path)")
        case .failure(let e):
            logOnce("dnstap: socket \(path): \(e); trying again")
            scheduleRetry()
        }
    }

    private func finish() {
        guard fd >= 0 else { return }
        _ = writeAll(FrameStreams.control(.stop))
        if case .socket = settings.destination { FrameStreamSocket.awaitFinish(fd) }
        close(fd)
        fd = -1
        connected.record(0)
    }

    private func writeAll(_ bytes: [UInt8]) -> Bool {
        var at = 0
        let socket: Bool = { if case .socket = settings.destination { return true }; return false }()
        while at < bytes.count {
            let n = bytes.withUnsafeBytes { b in
                socket ? Glibc.send(fd, b.baseAddress! + at, b.count - at, Int32(MSG_NOSIGNAL)) : Glibc.write(fd, b.baseAddress! + at, b.count - at)
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            at += n
        }
        return true
    }

    private func logOnce(_ line: String) {
        guard loggedErrors.count < 16, loggedErrors.insert(line).inserted else { return }
        logger.warning("\(line)")
    }
}

/// Why dnstap could not start.
public enum DnstapError: Error, Sendable, CustomStringConvertible {
    case open(path: String, reason: String)

    public var description: String {
        switch self {
        case let .open(path, reason): return "--dnstap-file \(path): \(reason)"
        }
    }
}

/// The writer's side of a bidirectional Frame Streams socket (READY, ACCEPT, START).
enum FrameStreamSocket {
    static func connect(path: String) -> Result<Int32, HandshakeError> {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return .failure(.failed("path too long")) }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in bytes.enumerated() { p[i] = b } }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(.failed(String(cString: strerror(errno)))) }
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard r == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            return .failure(.failed(why))
        }
        let ready = FrameStreams.control(.ready, contentType: FrameStreams.dnstapContentType)
        guard sendAll(fd, ready) else { close(fd); return .failure(.failed("writing READY: \(String(cString: strerror(errno)))")) }
        guard let accept = readControl(fd), accept.type == FrameStreams.Control.accept.rawValue else {
            close(fd)
            return .failure(.failed("the reader did not ACCEPT"))
        }
        guard accept.contentTypes.isEmpty || accept.contentTypes.contains(FrameStreams.dnstapContentType) else {
            close(fd)
            return .failure(.failed("the reader does not accept protobuf:dnstap.Dnstap"))
        }
        guard sendAll(fd, FrameStreams.control(.start, contentType: FrameStreams.dnstapContentType)) else {
            close(fd)
            return .failure(.failed("writing START: \(String(cString: strerror(errno)))"))
        }
        return .success(fd)
    }

    /// After STOP: the reader's FINISH, or the 1 s receive timeout.
    static func awaitFinish(_ fd: Int32) { _ = readControl(fd) }

    /// One control frame, at most `FrameStreams.maxControl` octets, within the receive timeout.
    static func readControl(_ fd: Int32) -> (type: UInt32, contentTypes: [[UInt8]], length: Int)? {
        var header = [UInt8](repeating: 0, count: 8)
        guard readExactly(fd, &header, 8) else { return nil }
        let length = Int(FrameStreams.u32(header, 4))
        guard FrameStreams.u32(header, 0) == 0, length >= 4, length <= FrameStreams.maxControl else { return nil }
        var body = [UInt8](repeating: 0, count: length)
        guard readExactly(fd, &body, length) else { return nil }
        return FrameStreams.parseControl(header + body)
    }

    static func readExactly(_ fd: Int32, _ buffer: inout [UInt8], _ count: Int) -> Bool {
        var at = 0
        while at < count {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + at, count - at, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            at += n
        }
        return true
    }

    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var at = 0
        while at < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + at, $0.count - at, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            at += n
        }
        return true
    }

    enum HandshakeError: Error, CustomStringConvertible {
        case failed(String)
        var description: String { if case .failed(let s) = self { return s }; return "" }
    }
}
