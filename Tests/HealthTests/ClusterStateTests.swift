import Foundation
import Testing
@testable import Health

@Suite("Admin state file")
struct AdminStateTests {
    @Test func parsesOverridesAndComments() {
        let (o, d) = AdminStateFile.parse("""
            # comment
            www/fra/*   DOWN   # trailing comment

            app/*/app-3 drain
            app/*/app-4 UP 50%
            """, file: "state.txt")
        #expect(d.isEmpty)
        #expect(o.map(\.state) == [.down, .drain, .up])
        #expect(o.map(\.line) == [2, 4, 5])
        #expect(o[2].weightFactor == 0.5)
    }

    @Test(arguments: [("www/fra/* SIDEWAYS", "state must be"), ("www/fra/*", "expected"), ("x UP 150%", "weight must be"), ("x UP 5 6", "unexpected '5'"), ("x DOWN reason=\"open", "unterminated quote"), ("x DOWN until=tomorrow", "until= needs")])
    func badLines(line: String, message: String) {
        let (o, d) = AdminStateFile.parse("# ok\n" + line, file: "state.txt")
        #expect(o.isEmpty)
        #expect(d.first?.description.hasPrefix("state.txt:2: ") == true)
        #expect(d.first?.message.contains(message) == true)
    }

    /// The API writes reason, expiry and the time it was set; the line reads back the same.
    @Test func reasonExpiryAndSetTimeRoundTrip() throws {
        let o = AdminOverride(
            pattern: "app/*/app-3", state: .drain, weightFactor: 0.25, reason: "kernel \"update\" # 7", expires: 1_796_100_000.25,
            setAt: 1_796_000_000, file: "api", line: 0)
        let line = o.stateFileLine
        #expect(line == "app/*/app-3 DRAIN 25% until=2026-12-01T04:40:00.250Z set=2026-11-30T00:53:20Z reason=\"kernel \\\"update\\\" # 7\"")
        let (back, d) = AdminStateFile.parse(line + "  # a comment\n", file: "s")
        #expect(d.isEmpty, "\(d)")
        let r = try #require(back.first)
        #expect(r.reason == o.reason && r.expires == o.expires && r.setAt == o.setAt && r.weightFactor == 0.25 && r.state == .drain)
        #expect(AdminStateFile.parseTime("2026-12-01T04:40:00Z") == 1_796_100_000)
        #expect(AdminStateFile.parseTime("2026-13-01T04:40:00Z") == nil && AdminStateFile.parseTime("2026-12-01 04:40:00Z") == nil)
        #expect(o.isLive(at: 1_796_100_000) && !o.isLive(at: 1_796_100_000.25))
        #expect(o.id == AdminOverride.id(of: "app/*/app-3") && o.id.count == 12)
    }

    @Test func lastMatchWinsAndGlobsMatchIds() {
        let (o, _) = AdminStateFile.parse("www/* DOWN\nwww/fra/a UP 25%\n", file: "s")
        let h = HealthSnapshot(version: 1, overrides: o)
        #expect(h.status(of: "www/iad/b").state == .down)
        #expect(h.status(of: "www/fra/a") == MemberStatus(state: .up, weightFactor: 0.25, source: "admin s:2"))
        #expect(h.status(of: "app/fra/a") == .defaultUp)
    }

    /// Hardening, finding 5: only a regular file of bounded size is read, without blocking.
    @Test func fifoDirectoryHugeAndBinaryFilesAreReportedNotRead() throws {
        let dir = NSTemporaryDirectory() + "meridian-state-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        let started = Date()
        let (o1, d1) = AdminStateFile.load(path: fifo)
        #expect(Date().timeIntervalSince(started) < 1)
        #expect(o1.isEmpty && d1.first?.message.contains("not a regular file") == true, "\(d1)")
        #expect(AdminStateFile.load(path: dir).diagnostics.first?.message.contains("not a regular file") == true)
        let huge = dir + "/huge"
        FileManager.default.createFile(atPath: huge, contents: Data(repeating: 0x41, count: AdminStateFile.maxSize + 1))
        #expect(AdminStateFile.load(path: huge).diagnostics.first?.message.contains("more than") == true)
        let binary = dir + "/binary"
        FileManager.default.createFile(atPath: binary, contents: Data([0x77, 0xFF, 0xFE]))
        #expect(AdminStateFile.load(path: binary).diagnostics.first?.message.contains("not UTF-8") == true)
        let good = dir + "/good"
        FileManager.default.createFile(atPath: good, contents: Data("www/* DOWN\n".utf8))
        #expect(AdminStateFile.load(path: good).overrides.count == 1)
    }

    @Test func missingFileMeansNoOverrides() {
        let (o, d) = AdminStateFile.load(path: "/nonexistent/state.txt")
        #expect(o.isEmpty && d.isEmpty)
    }
}

@Suite("Rise and fall")
struct RiseFallTests {
    @Test func firstResultDecides() {
        var m = RiseFall(rise: 3, fall: 3, initialUp: true)
        #expect(m.record(success: false) == .wentDown)
        var n = RiseFall(rise: 3, fall: 3, initialUp: false)
        #expect(n.record(success: true) == .wentUp)
    }

    @Test func needsConsecutiveResults() {
        var m = RiseFall(rise: 2, fall: 3, initialUp: true)
        #expect(m.record(success: true) == nil)
        // Two failures, a success in between resets the count.
        #expect(m.record(success: false) == nil)
        #expect(m.record(success: false) == nil)
        #expect(m.record(success: true) == nil)
        #expect(m.record(success: false) == nil)
        #expect(m.record(success: false) == nil)
        #expect(m.record(success: false) == .wentDown)
        #expect(!m.isUp)
        #expect(m.record(success: true) == nil)
        #expect(m.record(success: false) == nil)
        #expect(m.record(success: true) == nil)
        #expect(m.record(success: true) == .wentUp)
    }

    @Test func flappingMemberStaysDownWithRiseTwo() {
        var m = RiseFall(rise: 2, fall: 1, initialUp: true)
        _ = m.record(success: true)
        var transitions = 0
        for i in 0..<20 { if m.record(success: i % 2 == 0) != nil { transitions += 1 } }
        // Alternating results: down on the first failure, never two successes in a row after.
        #expect(transitions == 1 && !m.isUp)
    }
}

@Suite("Feedback agent replies")
struct AgentReplyTests {
    func parse(_ s: String) -> AgentReply? { try? AgentReply.parse(Array(s.utf8)) }

    @Test func haproxyForms() {
        #expect(parse("75%\n") == AgentReply(percent: 75))
        #expect(parse("up\n")?.state == .up)
        #expect(parse("ready 100%")?.state == .up)
        #expect(parse("drain")?.state == .drain)
        #expect(parse("maint")?.state == .maint)
        #expect(parse("down #disk full\n") == AgentReply(percent: nil, state: .down, reason: "disk full"))
        #expect(parse("fail")?.state == .down)
        #expect(parse("stopped")?.state == .down)
        #expect(parse("50%, drain")  == AgentReply(percent: 50, state: .drain))
        #expect(parse("UP 20%\r\n") == AgentReply(percent: 20, state: .up))
        #expect(parse("0%")?.percent == 0)
        #expect(parse("250%")?.percent == 100)
        #expect(parse("12.5%")?.percent == 12.5)
    }

    @Test(arguments: [
        ("", AgentReply.ParseError.empty),
        ("   \n", .empty),
        ("# only a comment", .empty),
        ("hello", .unknownWord("hello")),
        ("75", .unknownWord("75")),
        ("-5%", .badPercent("-5%")),
        ("abc%", .badPercent("abc%")),
        ("nan%", .badPercent("nan%")),
    ])
    func garbageIsRejected(text: String, error: AgentReply.ParseError) {
        #expect(throws: error) { try AgentReply.parse(Array(text.utf8)) }
    }

    @Test func hostileBytes() {
        #expect(throws: AgentReply.ParseError.notText) { try AgentReply.parse([0x37, 0x35, 0x25, 0x00]) }
        #expect(throws: AgentReply.ParseError.notText) { try AgentReply.parse([0xFF, 0xFE]) }
        #expect(throws: AgentReply.ParseError.tooLong(513)) { try AgentReply.parse([UInt8](repeating: 0x41, count: 513)) }
    }
}

@Suite("Observations in the health snapshot")
struct ObservationTests {
    func obs(checks: [Bool] = [], agent: AgentReply.State? = nil, percent: Double? = nil) -> MemberObservations {
        MemberObservations(
            checks: checks.enumerated().map { CheckObservation(check: "c\($0.offset)", up: $0.element, reason: $0.element ? "ok" : "HTTP 503", observer: "a", version: 1, at: 0) },
            agent: agent == nil && percent == nil ? nil : AgentObservation(state: agent, weightFactor: percent, detail: "x", observer: "a", at: 0))
    }

    @Test func foldsChecksAgentAndOverrides() {
        let h = HealthSnapshot(version: 1, observations: [
            "p/s/up": obs(checks: [true, true]), "p/s/down": obs(checks: [true, false]), "p/s/drain": obs(checks: [true], agent: .drain),
            "p/s/agentdown": obs(checks: [true], agent: .down), "p/s/half": obs(checks: [true], percent: 0.5), "p/s/maint": obs(agent: .maint),
        ])
        #expect(h.status(of: "p/s/up").state == .up)
        #expect(h.status(of: "p/s/down") == MemberStatus(state: .down, source: "check c1: HTTP 503"))
        #expect(h.status(of: "p/s/drain").state == .drain)
        #expect(h.status(of: "p/s/agentdown").state == .down)
        #expect(h.status(of: "p/s/half").weightFactor == 0.5 && h.status(of: "p/s/half").state == .up)
        #expect(h.status(of: "p/s/maint").state == .drain)
        // Admin overrides win over checks.
        let forced = h.with(overrides: [AdminOverride(pattern: "p/s/down", state: .up, file: "s", line: 1)], version: 2)
        #expect(forced.status(of: "p/s/down").state == .up)
        #expect(forced.observations.count == 6)
    }
}
