import Health
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOEmbedded
import PoolConfig
import Testing
@testable import HealthCheck
import Control

@Suite("HTTP result evaluation")
struct EvaluateTests {
    @Test func statusBodyAndRegex() {
        let ok = HTTPCheckResult(status: 200, body: Array("service OK v2".utf8), error: nil)
        #expect(ProbeExecutor.evaluate(ok, expect: [200], body: nil, regex: nil).ok)
        #expect(ProbeExecutor.evaluate(ok, expect: [200], body: "OK", regex: nil).ok)
        #expect(ProbeExecutor.evaluate(ok, expect: [204], body: nil, regex: nil) == .failure("HTTP 200"))
        #expect(!ProbeExecutor.evaluate(ok, expect: [200], body: "FAIL", regex: nil).ok)
        #expect(ProbeExecutor.evaluate(ok, expect: [200], body: nil, regex: try! NSRegularExpression(pattern: "v[0-9]+$")).ok)
        #expect(!ProbeExecutor.evaluate(ok, expect: [200], body: nil, regex: try! NSRegularExpression(pattern: "^down")).ok)
        let err = HTTPCheckResult(status: 0, body: [], error: "Couldn't connect to server")
        #expect(ProbeExecutor.evaluate(err, expect: [200], body: nil, regex: nil) == .failure("Couldn't connect to server"))
    }
}

@Suite("Check configuration")
struct CheckConfigTests {
    func parse(_ checks: String, agent: String = "") -> (PoolSet?, [String]) {
        let yaml = "pools:\n  p:\n    names: [p.example.test.]\n    members: [127.0.0.1]\n    checks:\n\(checks)\(agent)"
        let (s, d) = PoolFileParser.parse(files: [("/tmp/c.yaml", yaml)])
        return (s, d.map(\.description))
    }

    @Test func defaultsAndKinds() throws {
        let (s, d) = parse("      - {type: http, path: /health, expect_status: [200, 204], body: OK}\n      - {type: tcp, port: 22, interval: 500ms, rise: 1, fall: 2}\n      - {type: dns, name: example.test., qtype: SOA}\n      - {type: exec, command: [/bin/true, \"{address}\"], timeout: 2, interval: 5}\n", agent: "    agent: {port: 3334, send: hello, interval: 1s}\n")
        let p = try #require(s?.pools.first, "\(d)")
        #expect(p.checks.map(\.label) == ["http:80/health", "tcp:22", "dns:53", "exec:true"])
        #expect(p.checks[0].expectStatus == [200, 204] && p.checks[0].rise == 2 && p.checks[0].fall == 3)
        #expect(p.checks[1].interval == 0.5 && p.checks[1].timeout == 0.5)
        #expect(p.agent == AgentSpec(port: 3334, send: "hello", interval: 1, timeout: 1, maxAge: 30, line: 10))
        #expect(MonitorTarget.targets(for: s!).count == 1)
        #expect(!p.checks[0].keepAlive)
        let (k, kd) = parse("      - {type: https, keepalive: true}\n")
        #expect(try #require(k?.pools.first, "\(kd)").checks[0].keepAlive)
    }

    @Test(arguments: [
        ("      - {type: tcp}\n", "needs 'port'"),
        ("      - {type: ping, port: 1}\n", "needs 'type'"),
        ("      - {type: http, interval: 1, timeout: 2}\n", "longer than interval"),
        ("      - {type: http, command: [/bin/true]}\n", "does not apply"),
        ("      - {type: exec, command: [true]}\n", "absolute program path"),
        ("      - {type: http, body_regex: \"[\"}\n", "not a valid regular expression"),
        ("      - {type: http, rise: 0}\n", "rise 0 is out of range"),
        ("      - {type: http, interval: fast}\n", "must be a duration"),
        ("      - {type: https, client_cert: /a.pem}\n", "go together"),
        ("      - {type: tcp, port: 80, keepalive: true}\n", "'keepalive' does not apply to a tcp check"),
        ("      - {type: http, keepalive: sometimes}\n", "keepalive"),
    ])
    func errors(check: String, message: String) {
        let (s, d) = parse(check)
        #expect(s == nil)
        #expect(d.contains { $0.hasPrefix("/tmp/c.yaml:6: ") && $0.contains(message) }, "\(d)")
    }
}

/// The engine against real loopback servers started here.
@Suite("Health monitor on loopback", .serialized)
struct MonitorTests {
    final class Box: @unchecked Sendable {
        let lock = NSLock()
        var latest: [String: MemberObservations] = [:]
        func set(_ o: [String: MemberObservations]) { lock.lock(); latest = o; lock.unlock() }
        func get() -> [String: MemberObservations] { lock.lock(); defer { lock.unlock() }; return latest }
    }

    /// What the test server says; can be changed while it runs.
    final class Reply: @unchecked Sendable {
        let lock = NSLock()
        var text: String
        init(_ t: String) { text = t }
        func get() -> String { lock.lock(); defer { lock.unlock() }; return text }
        func set(_ t: String) { lock.lock(); text = t; lock.unlock() }
    }

    final class Answer: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let reply: Reply
        init(_ r: Reply) { reply = r }
        func channelActive(context: ChannelHandlerContext) {
            let ch = context.channel
            context.writeAndFlush(NIOAny(ByteBuffer(string: reply.get()))).whenComplete { _ in ch.close(promise: nil) }
        }
    }

    /// A TCP server on 127.0.0.1 that answers each connection with the current reply and closes.
    func server(_ group: MultiThreadedEventLoopGroup, reply: Reply) async throws -> (any Channel, Int) {
        let ch = try await ServerBootstrap(group: group)
            .childChannelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(Answer(reply)) } }
            .bind(host: "127.0.0.1", port: 0).get()
        return (ch, ch.localAddress!.port!)
    }

    func spec(_ kind: CheckKind, port: Int) -> CheckSpec {
        CheckSpec(kind: kind, port: port, interval: 0.2, timeout: 0.2, rise: 1, fall: 1, initialUp: false, line: 1)
    }

    func waitFor(_ box: Box, timeout: Double = 3, _ pred: ([String: MemberObservations]) -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if pred(box.get()) { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    @Test func tcpUpDownAndAgentWeight() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (listener, port) = try await server(group, reply: Reply("60% drain\n"))
        let box = Box()
        let monitor = TestMonitor() { box.set($0) }
        let agent = AgentSpec(port: port, send: nil, interval: 0.2, timeout: 0.5, maxAge: 0.6, line: 1)
        monitor.update(targets: [
            MonitorTarget(memberID: "p/s/live", address: .init("127.0.0.1")!, checks: [spec(.tcp, port: port)], agent: agent),
            MonitorTarget(memberID: "p/s/dead", address: .init("127.0.0.1")!, checks: [spec(.tcp, port: 1)], agent: nil),
        ])
        await monitor.firstRound(timeout: 3)
        #expect(try await waitFor(box) {
            $0["p/s/live"]?.checks.first?.up == true && $0["p/s/live"]?.agent?.state == .drain
                && $0["p/s/dead"]?.checks.first?.reason.hasPrefix("initial") == false
        })
        let obs = box.get()
        #expect(obs["p/s/live"]?.agent?.weightFactor == 0.6)
        #expect(obs["p/s/dead"]?.checks.first?.up == false)
        #expect(obs["p/s/dead"]?.checks.first?.reason.contains("refused") == true)
        // The server goes away: the check goes down, and after max_age the agent's word lapses.
        try await listener.close()
        #expect(try await waitFor(box) { $0["p/s/live"]?.checks.first?.up == false && $0["p/s/live"]?.agent == nil })
        let stats = await monitor.stats()
        #expect(stats.checksRun > 4 && stats.transitions >= 2)
        await monitor.shutdown()
        try await group.shutdownGracefully()
    }

    @Test func garbageAgentKeepsLastGoodWeight() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let reply = Reply("40%\n")
        let (listener, port) = try await server(group, reply: reply)
        let box = Box()
        let monitor = TestMonitor() { box.set($0) }
        let agent = AgentSpec(port: port, send: "ping", interval: 0.1, timeout: 0.3, maxAge: 5, line: 1)
        monitor.update(targets: [MonitorTarget(memberID: "p/s/a", address: .init("127.0.0.1")!, checks: [], agent: agent)])
        #expect(try await waitFor(box) { $0["p/s/a"]?.agent?.weightFactor == 0.4 })
        // The agent now answers garbage (oversized): the last good weight stays within max_age.
        reply.set(String(repeating: "x", count: 4000))
        #expect(try await waitFor(box) { $0["p/s/a"]?.agent?.detail.contains("failed") == true })
        #expect(box.get()["p/s/a"]?.agent?.weightFactor == 0.4)
        reply.set("nonsense words\n")
        try await Task.sleep(for: .milliseconds(300))
        #expect(box.get()["p/s/a"]?.agent?.weightFactor == 0.4)
        reply.set("90%\n")
        #expect(try await waitFor(box) { $0["p/s/a"]?.agent?.weightFactor == 0.9 })
        try await listener.close()
        await monitor.shutdown()
        try await group.shutdownGracefully()
    }

    /// The wall clock is injected: an hour of `max_age` passes without waiting an hour, and
    /// observation times come from the injected clock.
    @Test func agentStalenessFollowsTheInjectedClock() async throws {
        final class FakeWall: @unchecked Sendable {
            let lock = NSLock()
            var now = 1_000_000.0
            func get() -> Double { lock.lock(); defer { lock.unlock() }; return now }
            func advance(_ s: Double) { lock.lock(); now += s; lock.unlock() }
        }
        let wall = FakeWall()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (listener, port) = try await server(group, reply: Reply("30%\n"))
        let box = Box()
        let monitor = TestMonitor(wall: { wall.get() }) { box.set($0) }
        let agent = AgentSpec(port: port, send: nil, interval: 0.1, timeout: 0.3, maxAge: 3600, line: 1)
        monitor.update(targets: [MonitorTarget(memberID: "p/s/a", address: .init("127.0.0.1")!, checks: [spec(.tcp, port: port)], agent: agent)])
        #expect(try await waitFor(box) { $0["p/s/a"]?.agent?.weightFactor == 0.3 })
        #expect(box.get()["p/s/a"]?.agent?.at == 1_000_000)
        try await listener.close()
        // Replies fail now, but the last good one is younger than an hour: it stays.
        try await Task.sleep(for: .milliseconds(400))
        #expect(box.get()["p/s/a"]?.agent?.weightFactor == 0.3)
        wall.advance(3601)
        #expect(try await waitFor(box) { $0["p/s/a"]?.agent == nil })
        #expect((box.get()["p/s/a"]?.checks.first?.at ?? 0) >= 1_000_000)
        await monitor.shutdown()
        try await group.shutdownGracefully()
    }

    /// Hardening, finding 3: hung exec targets made the checks queued behind them complete
    /// "late" and count as inconclusive, hiding dead members. Now at most `maxExec` run, the
    /// rest wait in turn, each is timed from its start, and the wait is reported.
    @Test func hungExecTargetsDoNotHideADeadMember() async throws {
        let box = Box()
        let monitor = TestMonitor(maxExec: 3) { box.set($0) }
        var hung = spec(.exec, port: 1)
        hung.command = ["/bin/sleep", "2"]
        hung.timeout = 2
        hung.interval = 10
        var dead = spec(.exec, port: 1)
        dead.command = ["/bin/false"]
        // Generous: under a sanitizer on a loaded machine a slow spawn must not look stalled.
        dead.timeout = 2
        dead.interval = 10
        var targets = (0..<4).map { MonitorTarget(memberID: "p/s/hung\($0)", address: .init("127.0.0.1")!, checks: [hung], agent: nil) }
        // The hung checks first (their first round starts within 250 ms), so they hold every
        // slot when the dead member's check comes due.
        monitor.update(targets: targets)
        try await Task.sleep(for: .milliseconds(500))
        targets.append(MonitorTarget(memberID: "p/s/dead", address: .init("127.0.0.1")!, checks: [dead], agent: nil))
        monitor.update(targets: targets)
        // The dead member's check waits behind three hung ones (about 2 s), then runs and fails.
        #expect(try await waitFor(box, timeout: 8) { $0["p/s/dead"]?.checks.first?.up == false && $0["p/s/dead"]?.checks.first?.provisional == false })
        let stats = await monitor.stats()
        #expect(stats.execWaits > 0)
        #expect(stats.inconclusive == 0)
        await monitor.shutdown()
    }

    /// Hardening, finding 36: exec checks ran on a shared dispatch queue, whose worker pool on a
    /// two-core machine is narrower than `maxExec`; a check queued there was timed from its
    /// submission, so a slow failing target finished "late" and was taken as a monitor stall.
    /// Each running exec now has its own thread and is timed from its spawn.
    @Test func slowFailingExecChecksAreNotTakenAsStalls() async throws {
        let box = Box()
        let monitor = TestMonitor(maxExec: 6) { box.set($0) }
        var slow = spec(.exec, port: 1)
        slow.command = ["/bin/sh", "-c", "sleep 1.2; exit 1"]
        slow.timeout = 1.5
        slow.interval = 30
        let targets = (0..<6).map { MonitorTarget(memberID: "p/s/slow\($0)", address: .init("127.0.0.1")!, checks: [slow], agent: nil) }
        monitor.update(targets: targets)
        #expect(try await waitFor(box, timeout: 10) { o in
            targets.allSatisfy { o[$0.memberID]?.checks.first?.up == false && o[$0.memberID]?.checks.first?.provisional == false }
        })
        let stats = await monitor.stats()
        #expect(stats.inconclusive == 0)
        #expect(stats.execWaits == 0)
        await monitor.shutdown()
    }

    @Test func execChecksUseArgvWithoutAShell() async throws {
        let box = Box()
        let monitor = TestMonitor() { box.set($0) }
        var ok = spec(.exec, port: 1)
        ok.command = ["/bin/true"]
        var bad = spec(.exec, port: 1)
        bad.command = ["/bin/false"]
        // A value that a shell would run; as an argument it is just text.
        var quoted = spec(.exec, port: 1)
        quoted.command = ["/bin/test", "{address}", "=", "127.0.0.1; exit 0"]
        monitor.update(targets: [
            MonitorTarget(memberID: "p/s/t", address: .init("127.0.0.1")!, checks: [ok], agent: nil),
            MonitorTarget(memberID: "p/s/f", address: .init("127.0.0.1")!, checks: [bad], agent: nil),
            MonitorTarget(memberID: "p/s/q", address: .init("127.0.0.1")!, checks: [quoted], agent: nil),
        ])
        await monitor.firstRound(timeout: 3)
        #expect(try await waitFor(box) { $0.count == 3 && $0.values.allSatisfy { !($0.checks.first?.reason.hasPrefix("initial") ?? true) } })
        let o = box.get()
        #expect(o["p/s/t"]?.checks.first?.up == true)
        #expect(o["p/s/f"]?.checks.first?.reason == "exit 1")
        #expect(o["p/s/q"]?.checks.first?.up == false)
        await monitor.shutdown()
    }
}

@Suite("Check schedule")
struct DueQueueTests {
    @Test func popsInDueOrderUpToTheDeadline() {
        var q = DueQueue()
        var g = JitterRandom(seed: 42)
        var expected: [UInt64] = []
        for k in 0..<2_000 {
            let at = g.next() % 1_000_000
            expected.append(at)
            q.insert(.init(at: at, member: Int32(k), check: k % 3 == 0 ? DueQueue.agent : 0))
        }
        expected.sort()
        #expect(q.popDue(by: expected[0] &- 1) == nil || expected[0] == 0)
        var got: [UInt64] = []
        while let e = q.popDue(by: 500_000) { got.append(e.at) }
        #expect(got == expected.filter { $0 <= 500_000 })
        #expect(q.first.map { $0.at > 500_000 } ?? true)
        while let e = q.popDue(by: .max) { got.append(e.at) }
        #expect(got == expected && q.isEmpty)
    }

    @Test func jitterStaysInRangeAndSpreads() {
        var g = JitterRandom(seed: 7)
        let xs = (0..<10_000).map { _ in g.uniform(0.95, 1.05) }
        #expect(xs.allSatisfy { $0 >= 0.95 && $0 < 1.05 })
        // Spread: each tenth of the range gets a share near 10%.
        var buckets = [Int](repeating: 0, count: 10)
        for x in xs { buckets[min(9, Int((x - 0.95) / 0.01))] += 1 }
        #expect(buckets.allSatisfy { $0 > 800 && $0 < 1_200 }, "\(buckets)")
    }
}

@Suite("Next run")
struct NextRunTests {
    @Test func onTimeKeepsTheCadenceWithJitter() {
        var g = JitterRandom(seed: 1)
        let previous: UInt64 = 10_000_000_000
        for _ in 0..<1_000 {
            let n = DueQueue.next(after: previous, interval: 2, now: previous + 1_000_000, random: &g)
            #expect(n >= previous + 1_900_000_000 && n < previous + 2_100_000_000)
        }
    }

    @Test func afterAStallOverdueChecksSpreadOverTheNextInterval() {
        var g = JitterRandom(seed: 2)
        // 1,000 checks that were all due before a 30 s stall (say, SIGSTOP).
        let now: UInt64 = 100_000_000_000
        let next = (0..<1_000).map { k in DueQueue.next(after: 60_000_000_000 + UInt64(k) * 1_000_000, interval: 1, now: now, random: &g) }
        #expect(next.allSatisfy { $0 >= now && $0 < now + 1_000_000_000 })
        // Spread, not one burst: no 10 ms slice of the interval holds more than 3% of them.
        var slices = [Int](repeating: 0, count: 100)
        for n in next { slices[Int((n - now) / 10_000_000)] += 1 }
        #expect(slices.max()! <= 30, "\(slices)")
    }
}

/// Hardening, finding 8: the DNS probe took any datagram with the right ID.
@Suite("DNS probe replies")
struct DNSProbeReplyTests {
    let target = try! SocketAddress(ipAddress: "192.0.2.53", port: 53)
    let question: [UInt8] = [3, 0x77, 0x77, 0x77, 4, 0x74, 0x65, 0x73, 0x74, 0, 0, 6, 0, 1]  // www.test. SOA IN

    func reply(id: UInt16 = 0xBEEF, qr: Bool = true, question q: [UInt8]? = nil, qdcount: UInt8 = 1) -> [UInt8] {
        [UInt8(id >> 8), UInt8(id & 0xFF), qr ? 0x84 : 0x04, 0, 0, qdcount, 0, 0, 0, 0, 0, 0] + (q ?? question)
    }

    @Test func onlyTheRealReplyIsTaken() throws {
        let channel = EmbeddedChannel()
        let promise = channel.eventLoop.makePromise(of: [UInt8].self)
        let handler = DatagramReply(promise: promise, id: 0xBEEF, source: target, question: question)
        try channel.pipeline.syncOperations.addHandler(handler)
        func send(_ bytes: [UInt8], from: SocketAddress) throws {
            try channel.writeInbound(AddressedEnvelope(remoteAddress: from, data: ByteBuffer(bytes: bytes)))
        }
        let elsewhere = try SocketAddress(ipAddress: "198.51.100.66", port: 53)
        let otherPort = try SocketAddress(ipAddress: "192.0.2.53", port: 5353)
        try send(reply(), from: elsewhere)                                   // spoofed source
        try send(reply(), from: otherPort)                                    // right host, wrong port
        try send(reply(qr: false), from: target)                              // a query, not a reply
        try send(reply(id: 0xBEEE), from: target)                             // wrong ID
        var other = question
        other[1] = 0x78
        try send(reply(question: other), from: target)                        // another question
        try send(reply(qdcount: 0), from: target)                             // no question
        try send(Array(reply().prefix(14)), from: target)                     // cut short
        #expect(!handler.done)
        var upper = question
        upper[1] = 0x57  // 'W': a server may echo the case it likes
        let real = reply(question: upper)
        try send(real, from: target)
        #expect(handler.done)
        #expect(try promise.futureResult.wait() == real)
        _ = try channel.finish()
    }
}

/// Hardening, finding 1: a probe that fails because this host ran out of descriptors, buffers
/// or ports says nothing about the member.
@Suite("Local resource shortages")
struct LocalShortageTests {
    @Test func shortagesAreLocalOtherErrorsAreNot() {
        for e in [EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL] { #expect(isLocalShortage(IOError(errnoCode: e, reason: "socket"))) }
        for e in [ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ENETUNREACH] { #expect(!isLocalShortage(IOError(errnoCode: e, reason: "connect"))) }
        #expect(ProbeResult.failure("connect: ", IOError(errnoCode: EMFILE, reason: "socket")).local)
        #expect(!ProbeResult.failure("connect: ", IOError(errnoCode: ECONNREFUSED, reason: "connect")).local)
        let curl = HTTPCheckResult(status: 0, body: [], error: "Couldn't connect to server", local: true)
        #expect(ProbeExecutor.evaluate(curl, expect: [200], body: nil, regex: nil).local)
    }
}
