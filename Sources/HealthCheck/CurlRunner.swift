import CCurl
import Foundation
import NIOConcurrencyHelpers

/// One HTTP(S) check to run.
public struct HTTPCheckRequest: Sendable {
    public var url: String
    /// `host:port:address` for CURLOPT_RESOLVE when the URL names a host (Host header and SNI).
    public var resolve: String?
    public var hostHeader: String?
    public var method: String
    public var timeout: Double
    public var verifyTLS: Bool
    public var clientCert: String?
    public var clientKey: String?
    /// Reuse the connection of the previous check of the same URL (HTTP keep-alive).
    public var keepAlive: Bool = false
    /// The address the check leaves from (CURLOPT_INTERFACE `host!ADDRESS`); nil: the route's.
    public var source: String?
}

/// What an HTTP(S) check got back.
public struct HTTPCheckResult: Sendable {
    /// HTTP status, or 0 when there was no response.
    public var status: Int
    /// The body, up to `CurlRunner.maxBody` octets.
    public var body: [UInt8]
    /// libcurl's error text when the transfer failed.
    public var error: String?
    /// The transfer failed for a shortage on this host (libcurl's out-of-memory, or a socket
    /// error of EMFILE, ENFILE, ENOBUFS, ENOMEM or EADDRNOTAVAIL).
    public var local = false
}

/// Runs every HTTP(S) check through one libcurl multi handle on one thread: no thread per
/// check, transfers interleaved by curl's own event loop (`curl_multi_poll`).
///
/// Work crosses threads in batches: `submit` takes every check due in one wake-up of the
/// monitor (one lock, one `curl_multi_wakeup`), and the completions of one pass of curl's loop
/// are handed to `deliver` together, so the monitor's loop is woken once for them, not once per
/// check. Easy handles are reset and reused.
public final class CurlRunner: @unchecked Sendable {
    // @unchecked: `pending` and `stopping` are guarded by `lock`; everything else (the multi
    // handle, the running transfers, the idle handles) is touched only by the runner's own thread.
    public static let maxBody = 65536
    static let userAgent = "Meridian-healthcheck/1.0 (+https://github.com/meridian-gslb)"
    /// Connections kept open for keep-alive checks (one per checked URL).
    static let maxKeptConnections = 4096

    public typealias Completion = @Sendable (HTTPCheckResult) -> Void
    /// Runs the completions of one pass; by default right there on the runner's thread.
    public typealias Deliver = @Sendable ([(Completion, HTTPCheckResult)]) -> Void

    private let lock = NIOLock()
    private var pending: [(HTTPCheckRequest, Completion)] = []
    private var stopping = false
    private let multi: UnsafeMutableRawPointer
    private var thread: Thread?
    private let deliver: Deliver
    private var idle: [UnsafeMutableRawPointer] = []


    final class Transfer: BodySink {
        let easy: UnsafeMutableRawPointer
        let completion: @Sendable (HTTPCheckResult) -> Void
        var headers: UnsafeMutablePointer<curl_slist>?
        var resolve: UnsafeMutablePointer<curl_slist>?
        init(easy: UnsafeMutableRawPointer, completion: @escaping @Sendable (HTTPCheckResult) -> Void) {
            self.easy = easy
            self.completion = completion
            super.init(limit: CurlRunner.maxBody)
        }

        deinit {
            curl_slist_free_all(headers)
            curl_slist_free_all(resolve)
        }
    }

    private var running: [UnsafeMutableRawPointer: Transfer] = [:]

    public init(deliver: @escaping Deliver = { batch in for (done, result) in batch { done(result) } }) {
        self.deliver = deliver
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        multi = curl_multi_init()
        // The connection cache of the multi handle: only keep-alive checks leave connections in
        // it (the others forbid reuse); one per checked URL, up to this many.
        _ = meridian_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, CurlRunner.maxKeptConnections)
        // The thread holds the runner until `stop()` ends its loop: a runner dropped before its
        // thread starts must not be read through a dead reference (it was `unowned`: a start-up
        // error freed it first and the thread aborted the process).
        let t = Thread { [self] in self.loop() }
        t.name = "meridian-curl"
        thread = t
        t.start()
    }

    /// Queues checks with one lock and one wake-up; each completion is run through `deliver`.
    public func submit(_ batch: [(HTTPCheckRequest, Completion)]) {
        guard !batch.isEmpty else { return }
        lock.withLock { pending += batch }
        curl_multi_wakeup(multi)
    }

    public func stop() {
        lock.withLock { stopping = true }
        curl_multi_wakeup(multi)
    }

    private func loop() {
        while true {
            let (batch, stop) = lock.withLock { () -> ([(HTTPCheckRequest, Completion)], Bool) in
                defer { pending.removeAll() }
                return (pending, stopping)
            }
            if stop { break }
            for (req, done) in batch { start(req, done) }
            var stillRunning: Int32 = 0
            curl_multi_perform(multi, &stillRunning)
            var left: Int32 = 0
            var finished: [(Completion, HTTPCheckResult)] = []
            while let msg = curl_multi_info_read(multi, &left) {
                guard msg.pointee.msg == CURLMSG_DONE, let easy = msg.pointee.easy_handle, let t = running.removeValue(forKey: easy) else { continue }
                let code = msg.pointee.data.result
                var status = 0
                meridian_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
                let error = code == CURLE_OK ? nil : String(cString: curl_easy_strerror(code))
                var osErrno = 0
                meridian_curl_easy_getinfo_long(easy, CURLINFO_OS_ERRNO, &osErrno)
                let local = code == CURLE_OUT_OF_MEMORY || (code != CURLE_OK && localShortageErrnos.contains(Int32(truncatingIfNeeded: osErrno)))
                curl_multi_remove_handle(multi, easy)
                if idle.count < 256 {
                    curl_easy_reset(easy)
                    idle.append(easy)
                } else {
                    curl_easy_cleanup(easy)
                }
                finished.append((t.completion, HTTPCheckResult(status: code == CURLE_OK ? status : 0, body: t.body, error: error, local: local)))
            }
            if !finished.isEmpty { deliver(finished) }
            var fds: Int32 = 0
            curl_multi_poll(multi, nil, 0, 1000, &fds)
        }
        for (easy, t) in running {
            curl_multi_remove_handle(multi, easy)
            curl_easy_cleanup(easy)
            t.completion(HTTPCheckResult(status: 0, body: [], error: "stopped"))
        }
        running.removeAll()
        idle.forEach { curl_easy_cleanup($0) }
        idle.removeAll()
        curl_multi_cleanup(multi)
    }

    private func start(_ r: HTTPCheckRequest, _ done: @escaping Completion) {
        guard let easy = idle.popLast() ?? curl_easy_init() else {
            done(HTTPCheckResult(status: 0, body: [], error: "curl_easy_init failed"))
            return
        }
        let t = Transfer(easy: easy, completion: done)
        setString(easy, CURLOPT_URL, r.url)
        if let source = r.source { setString(easy, CURLOPT_INTERFACE, "host!\(source)") }
        setString(easy, CURLOPT_PROTOCOLS_STR, "http,https")
        setString(easy, CURLOPT_USERAGENT, CurlRunner.userAgent)
        _ = meridian_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        _ = meridian_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, Int(r.timeout * 1000))
        _ = meridian_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Int(r.timeout * 1000))
        _ = meridian_curl_easy_setopt_long(easy, CURLOPT_FRESH_CONNECT, r.keepAlive ? 0 : 1)
        _ = meridian_curl_easy_setopt_long(easy, CURLOPT_FORBID_REUSE, r.keepAlive ? 0 : 1)
        _ = meridian_curl_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0)
        _ = meridian_curl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, r.verifyTLS ? 1 : 0)
        _ = meridian_curl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, r.verifyTLS ? 2 : 0)
        if r.method == "HEAD" {
            _ = meridian_curl_easy_setopt_long(easy, CURLOPT_NOBODY, 1)
        } else if r.method != "GET" {
            setString(easy, CURLOPT_CUSTOMREQUEST, r.method)
        }
        if let cert = r.clientCert, let key = r.clientKey {
            setString(easy, CURLOPT_SSLCERT, cert)
            setString(easy, CURLOPT_SSLKEY, key)
        }
        if let resolve = r.resolve {
            t.resolve = curl_slist_append(nil, resolve)
            _ = meridian_curl_easy_setopt_ptr(easy, CURLOPT_RESOLVE, UnsafeRawPointer(t.resolve))
        }
        if let host = r.hostHeader {
            t.headers = curl_slist_append(nil, "Host: \(host)")
            _ = meridian_curl_easy_setopt_ptr(easy, CURLOPT_HTTPHEADER, UnsafeRawPointer(t.headers))
        }
        t.attach(to: easy)
        running[easy] = t
        curl_multi_add_handle(multi, easy)
    }
}

/// Sets a string option. libcurl copies string options (since 7.17.0), so the string need only
/// live for the call: no strdup, which could fail under memory pressure.
@inline(__always)
func setString(_ easy: UnsafeMutableRawPointer, _ option: CURLoption, _ value: String) {
    _ = value.withCString { meridian_curl_easy_setopt_ptr(easy, option, UnsafeMutableRawPointer(mutating: $0)) }
}


/// A one-shot, blocking request on libcurl's easy interface with the same option helpers as
/// the checks: the command line's admin client (`meridian ctl`). The project's one libcurl
/// wrapper is this file.
public enum CurlRequest {
    public struct Reply: Sendable {
        public var status: Int
        public var body: [UInt8]
    }

    /// Why a request got no HTTP reply.
    public enum Failure: Error, Sendable, CustomStringConvertible {
        case start
        case transfer(url: String, reason: String)

        public var description: String {
            switch self {
            case .start: return "libcurl failed to start"
            case let .transfer(url, reason): return "cannot reach \(url): \(reason)"
            }
        }
    }

    /// Sends `method url` with `headers` (`Name: value`) and `body`; `cacert` verifies an HTTPS
    /// server against that CA file. The reply body is kept up to `maxBody` octets.
    public static func perform(
        method: String, url: String, headers: [String] = [], body: [UInt8]? = nil, cacert: String? = nil, timeout: Int = 15,
        maxBody: Int = 64 << 20
    ) throws(Failure) -> Reply {
        guard let h = curl_easy_init() else { throw .start }
        defer { curl_easy_cleanup(h) }
        var list: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(list) }
        for header in headers { list = curl_slist_append(list, header) }
        let sink = BodySink(limit: maxBody)
        setString(h, CURLOPT_URL, url)
        setString(h, CURLOPT_CUSTOMREQUEST, method)
        setString(h, CURLOPT_PROTOCOLS_STR, "http,https")
        setString(h, CURLOPT_USERAGENT, CurlRunner.userAgent)
        if let cacert { setString(h, CURLOPT_CAINFO, cacert) }
        _ = meridian_curl_easy_setopt_long(h, CURLOPT_TIMEOUT, timeout)
        _ = meridian_curl_easy_setopt_long(h, CURLOPT_NOSIGNAL, 1)
        _ = meridian_curl_easy_setopt_ptr(h, CURLOPT_HTTPHEADER, UnsafeRawPointer(list))
        sink.attach(to: h)
        let payload = body ?? []
        let code: CURLcode = payload.withUnsafeBytes { p in
            if body != nil {
                _ = meridian_curl_easy_setopt_ptr(h, CURLOPT_POSTFIELDS, p.baseAddress)
                _ = meridian_curl_easy_setopt_long(h, CURLOPT_POSTFIELDSIZE, p.count)
            }
            return curl_easy_perform(h)
        }
        guard code == CURLE_OK else { throw .transfer(url: url, reason: String(cString: curl_easy_strerror(code))) }
        var status = 0
        meridian_curl_easy_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        return Reply(status: status, body: sink.body)
    }

}

/// A transfer's body, kept up to `limit` octets: libcurl's write callback for the checks and
/// the one-shot requests alike. The handle must not outlive the sink (both callers keep it
/// for the transfer).
class BodySink {
    var body: [UInt8] = []
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func attach(to easy: UnsafeMutableRawPointer) {
        _ = meridian_curl_easy_setopt_write_cb(easy, CURLOPT_WRITEFUNCTION) { ptr, size, count, user in
            let sink = Unmanaged<BodySink>.fromOpaque(user!).takeUnretainedValue()
            let n = size * count
            let room = sink.limit - sink.body.count
            if room > 0, let ptr { sink.body.append(contentsOf: UnsafeRawBufferPointer(start: ptr, count: min(n, room))) }
            return n
        }
        _ = meridian_curl_easy_setopt_ptr(easy, CURLOPT_WRITEDATA, Unmanaged.passUnretained(self).toOpaque())
    }
}
