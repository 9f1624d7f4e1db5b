import DNSWire
import Foundation
import GeoTopology
import Logging
import MetricsTestKit
import NIOCore
import NIOPosix
import QueryEngine
import Selection
import Testing
import ZoneStore
@testable import MeridianServer
@testable import Frontend

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures").path

@Suite("Query counters")
struct MetricsTests {
    @Test func countsReachSwiftMetricsOnFlush() throws {
        let test = TestMetrics()
        let m = QueryMetrics(transport: "udp", factory: test)
        let snap = try #require(SnapshotBuilder.build(directory: fixtures + "/zones").snapshot)
        let ok = QueryOutcome(dropped: false, length: 40, rcode: RCode.noError, qtype: RRType.a, truncated: false)
        let nx = QueryOutcome(dropped: false, length: 40, rcode: RCode.nxDomain, qtype: 65280, truncated: true)
        for _ in 0..<3 { m.record(ok, snapshot: snap) }
        m.record(nx, snapshot: snap)
        m.record(.drop, snapshot: snap)
        m.flush()
        m.record(ok, snapshot: snap)
        m.flush()
        let a = try test.expectCounter("meridian_queries_total", [("transport", "udp"), ("rcode", "NOERROR"), ("qtype", "A")])
        #expect(a.totalValue == 4)
        let other = try test.expectCounter("meridian_queries_total", [("transport", "udp"), ("rcode", "NXDOMAIN"), ("qtype", "other")])
        #expect(other.totalValue == 1)
        #expect(try test.expectCounter("meridian_queries_dropped_total", [("transport", "udp")]).totalValue == 1)
        #expect(try test.expectCounter("meridian_responses_truncated_total", [("transport", "udp")]).totalValue == 1)
    }
}

/// Answers by pool and site: counted per loop in a table laid out for the snapshot's pools,
/// handed over under the names of the generation they were counted in.
@Suite("Pool answer counters")
struct PoolMetricsTests {
    @Test func answersArCountedByPoolSiteRouteAndFallback() throws {
        let test = TestMetrics()
        let m = QueryMetrics(transport: "udp", factory: test)
        let snap = try #require(SnapshotBuilder.build(directory: fixtures + "/pools").snapshot)
        let pools = snap.pools.pools.pools
        let p = try #require(pools.firstIndex { $0.sites.count >= 2 })
        func outcome(_ site: Int32, _ route: AnswerRoute, fellBack: Bool = false) -> QueryOutcome {
            var o = QueryOutcome(dropped: false, length: 40, rcode: RCode.noError, qtype: RRType.a, truncated: false)
            o.pool = PoolAnswerSource(pool: Int32(p), site: site, route: route, fellBack: fellBack)
            return o
        }
        for _ in 0..<5 { m.record(outcome(0, .site), snapshot: snap) }
        m.record(outcome(1, .site, fellBack: true), snapshot: snap)
        m.record(outcome(-1, .failOpen), snapshot: snap)
        // A new generation: what was counted goes out under the old names first.
        let next = snap.with(pools: snap.pools, generation: snap.generation + 1)
        m.record(outcome(0, .site), snapshot: next)
        m.flush()
        let name = pools[p].name
        let s0 = pools[p].sites[0].name
        #expect(try test.expectCounter("meridian_pool_answers_total", [("pool", name), ("site", s0), ("route", "site"), ("fallback", "no")]).totalValue == 6)
        #expect(try test.expectCounter("meridian_pool_answers_total", [("pool", name), ("site", pools[p].sites[1].name), ("route", "site"), ("fallback", "yes")]).totalValue == 1)
        #expect(try test.expectCounter("meridian_pool_answers_total", [("pool", name), ("site", "-"), ("route", "all-down-fail-open"), ("fallback", "no")]).totalValue == 1)
    }
}

@Suite("Server configuration")
struct ConfigTests {
    @Test func listenAddresses() {
        #expect(ListenAddress("127.0.0.1:53") == ListenAddress(host: "127.0.0.1", port: 53))
        #expect(ListenAddress("[::1]:5300") == ListenAddress(host: "::1", port: 5300))
        #expect(ListenAddress("[::1]:5300")?.description == "[::1]:5300")
        #expect(ListenAddress("::1:53") == nil)
        #expect(ListenAddress("127.0.0.1") == nil)
        #expect(ListenAddress("127.0.0.1:70000") == nil)
        #expect(ListenAddress(":53") == nil)
    }

    @Test func snapshotBoxPublishes() throws {
        let zones = try #require(try ZoneLoader.load(directory: fixtures + "/zones").zones)
        let box = SnapshotBox(Snapshot(zones: zones, generation: 1))
        var reader = SnapshotReader(box)
        #expect(reader.refresh().generation == 1)
        box.publish(Snapshot(zones: zones, generation: 2))
        #expect(reader.refresh().generation == 2)
    }
}

/// Starts the server in-process on an ephemeral loopback port and talks to it over real sockets.
@Suite("Server on loopback", .serialized)
struct LoopbackTests {
    /// `idleTimeout` is short only where the idle timeout itself is tested: on a busy machine
    /// a one-second limit can close a connection in the middle of another test.
    func withServer(idleTimeout: Int64 = 30, _ body: (DNSServer, Int) async throws -> Void) async throws {
        let config = ServerConfig(
            zonesDirectory: fixtures + "/zones", listen: [ListenAddress(host: "127.0.0.1", port: 0)], threads: 2,
            tcpIdleTimeout: idleTimeout, tcpMaxConnections: 4)
        let server = try DNSServer(config: config, logger: Logger(label: "test"))
        let bound = try await server.start()
        do {
            try await body(server, bound[0].port)
        } catch {
            await server.shutdown()
            throw error
        }
        await server.shutdown()
    }

    func query(_ name: String) -> [UInt8] {
        [0x55, 0x66, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0] + Name.parse(name)! + [0, 1, 0, 1]
    }

    @Test func answersOverUDPAndTCPWithPipelining() async throws {
        try await withServer { server, port in
            let udp = try UDPClient(port: port)
            let r = try DecodedMessage.decode(try udp.ask(query("www.example.test.")))
            #expect(r.answer.count == 2)
            let tcp = try TCPClient(port: port)
            // Three queries in one write, the second one's length prefix split from its body.
            var bytes: [UInt8] = []
            for n in ["www.example.test.", "alias.example.test.", "mail.example.test."] {
                let q = query(n)
                bytes += [UInt8(q.count >> 8), UInt8(q.count & 0xFF)] + q
            }
            try tcp.send(Array(bytes[0..<40]))
            try await Task.sleep(for: .milliseconds(50))
            try tcp.send(Array(bytes[40...]))
            let answers = try (0..<3).map { _ in try DecodedMessage.decode(tcp.receiveFrame()) }
            #expect(answers.map { $0.answer.count } == [2, 3, 1])
            tcp.close()
        }
    }

    @Test func idleTCPConnectionsAreClosed() async throws {
        try await withServer(idleTimeout: 1) { _, port in
            let tcp = try TCPClient(port: port)
            try await Task.sleep(for: .milliseconds(1500))
            #expect(tcp.isClosedByPeer())
        }
    }

    @Test func connectionCapIsEnforced() async throws {
        try await withServer { _, port in
            let clients = try (0..<4).map { _ in try TCPClient(port: port) }
            try await Task.sleep(for: .milliseconds(100))
            let extra = try TCPClient(port: port)
            try await Task.sleep(for: .milliseconds(100))
            #expect(extra.isClosedByPeer())
            for c in clients { c.close() }
        }
    }

    @Test func reloadKeepsOldZonesOnError() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meridian-reload-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let zone = "$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\n"
        try zone.write(toFile: dir + "/r.test.zone", atomically: true, encoding: .utf8)
        let config = ServerConfig(zonesDirectory: dir, listen: [], threads: 1)
        let server = try DNSServer(config: config, logger: Logger(label: "test"))
        defer { Task { await server.shutdown() } }
        try (zone + "new A 192.0.2.11\n").write(toFile: dir + "/r.test.zone", atomically: true, encoding: .utf8)
        #expect(await server.reload().isEmpty)
        #expect(server.box.load().configGeneration == 2)
        try (zone + "bad A 300.1.1.1\n").write(toFile: dir + "/r.test.zone", atomically: true, encoding: .utf8)
        let errors = await server.reload()
        #expect(errors.first?.description.contains("r.test.zone:6:") == true)
        #expect(server.box.load().configGeneration == 2)
        #expect(server.box.load().zones.zones[0].node(Name.parse("new.r.test.")!) != nil)
    }
}

// Minimal blocking socket clients, so the test talks to the server the way other programs do.

/// A socket connected to 127.0.0.1:port, with a 2 s receive timeout.
func connectLoopback(_ type: Int32, port: Int) throws -> Int32 {
    let fd = socket(AF_INET, type, 0)
    var tv = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0 else {
        Glibc.close(fd)
        throw POSIXError(.ECONNREFUSED)
    }
    return fd
}

struct UDPClient {
    let fd: Int32
    init(port: Int) throws { fd = try connectLoopback(Int32(SOCK_DGRAM.rawValue), port: port) }
    func ask(_ q: [UInt8]) throws -> [UInt8] {
        _ = q.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var buf = [UInt8](repeating: 0, count: 65535)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw POSIXError(.ETIMEDOUT) }
        return Array(buf[0..<n])
    }
}

final class TCPClient {
    let fd: Int32
    init(port: Int) throws { fd = try connectLoopback(Int32(SOCK_STREAM.rawValue), port: port) }
    func send(_ bytes: [UInt8]) throws {
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard n == bytes.count else { throw POSIXError(.EPIPE) }
    }
    func receive(_ count: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: count)
        while out.count < count {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, count - out.count, 0) }
            guard n > 0 else { throw POSIXError(.ECONNRESET) }
            out += buf[0..<n]
        }
        return out
    }
    func receiveFrame() throws -> [UInt8] {
        let len = try receive(2)
        return try receive(Int(len[0]) << 8 | Int(len[1]))
    }
    /// True when the server has closed the connection (recv returns 0 or an error other than a timeout).
    func isClosedByPeer() -> Bool {
        var b: UInt8 = 0
        let n = recv(fd, &b, 1, 0)
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
    }
    func close() { Glibc.close(fd) }
    deinit { Glibc.close(fd) }
}

@Suite("TCP guards (issue: hardening, finding 1)")
struct TCPGuardTests {
    @Test func perClientLimitCountsPrefixesNotAddresses() throws {
        let l = SourceSlots(perPrefix: 2)
        let a = IPAddress("192.0.2.1")!
        let b = IPAddress("192.0.2.200")!  // the same /24
        let c = IPAddress("198.51.100.1")!
        let k1 = try l.admit(a).get()
        _ = try l.admit(b).get()
        #expect(l.admit(a) == .failure(.perPrefix))
        #expect((try? l.admit(c).get()) != nil)
        l.release(k1)
        #expect((try? l.admit(b).get()) != nil)
        // IPv6: one /56.
        #expect((try? l.admit(IPAddress("2001:db8:0:1::1")!).get()) != nil && (try? l.admit(IPAddress("2001:db8:0:ff::1")!).get()) != nil)
        #expect(l.admit(IPAddress("2001:db8:0:2::1")!) == .failure(.perPrefix))
    }

    @Test func whenSlotsRunLowOneNetworkGetsItsShare() throws {
        // A cap of 64: one /48 fills half with /56s of its own, and then no more (its share
        // while slots run low is 8, and it holds 32).
        let l = SourceSlots(perPrefix: 4, cap: 64)
        var taken = 0
        for i in 0..<256 {
            if case .success = l.admit(IPAddress("2001:db8:0:\(String(i, radix: 16))00::1")!) { taken += 1 }
        }
        #expect(taken == 32)
        #expect(l.admit(IPAddress("2001:db8:0:ff00::2")!) == .failure(.perNetwork))
        #expect(l.connections == 32)
        // Other networks still get in, up to the cap.
        for i in 0..<32 { _ = try l.admit(IPAddress("10.\(i).0.1")!).get() }
        #expect(l.connections == 64)
        #expect(l.admit(IPAddress("10.200.0.1")!) == .failure(.cap))
    }

    @Test func connectionCapLeavesRoomForEverythingElse() {
        #expect(FileLimits.connectionCap(configured: 1024, limit: 1 << 20) == 1024)
        #expect(FileLimits.connectionCap(configured: 1024, limit: 1024) == 1024 - 128 - 128)
        #expect(FileLimits.connectionCap(configured: 1024, limit: 512) == 320)
        #expect(FileLimits.connectionCap(configured: 1024, limit: 100) == 1)
        #expect(FileLimits.raise() >= 1024)
    }
}
