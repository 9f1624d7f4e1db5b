import Diagnostics
import Foundation


#if canImport(Glibc)
import Glibc
#endif

/// A member's state as selection sees it.
public enum HealthState: String, Sendable, Equatable, CaseIterable {
    /// Answerable.
    case up
    /// Not answered; counts against its site's `min_up` and makes the pool degraded.
    case down
    /// Healthy but takes no new answers (maintenance): counts as up for `min_up`.
    case drain
}

/// The state and weight factor of one member, and what decided it.
public struct MemberStatus: Sendable, Equatable, CustomStringConvertible {
    public var state: HealthState
    /// Multiplies the static weight: 1 = full weight, 0.5 = half (agent feedback, admin).
    public var weightFactor: Double
    /// Where this status came from: `default`, `admin state.txt:3`, a check, a peer.
    public var source: String

    public init(state: HealthState, weightFactor: Double = 1, source: String) {
        self.state = state
        self.weightFactor = weightFactor
        self.source = source
    }

    public static let defaultUp = MemberStatus(state: .up, source: "default: no checks or overrides")

    public var description: String {
        let w = weightFactor == 1 ? "" : " weight x\(String(format: "%.2f", weightFactor))"
        return "\(state.rawValue)\(w) (\(source))"
    }
}

/// One line of the admin state file: members matching `pattern` are forced to `state`, and
/// optionally given a weight factor, a reason, an expiry, and the time it was set.
public struct AdminOverride: Sendable, Equatable {
    /// A glob over member ids (`POOL/SITE/NAME`): `*`, `?`, `[...]`.
    public var pattern: String
    public var state: HealthState
    public var weightFactor: Double?
    /// Why (shown in `/status`, `explain` and the page).
    public var reason: String
    /// Unix time (seconds) after which it no longer applies; nil: until removed.
    public var expires: Double?
    /// Unix time (seconds) it was set, when known (the API writes it): its version in the
    /// group, so a restart does not make an old override newer than a later removal.
    public var setAt: Double?
    public var file: String
    public var line: Int

    public init(
        pattern: String, state: HealthState, weightFactor: Double? = nil, reason: String = "", expires: Double? = nil, setAt: Double? = nil,
        file: String, line: Int
    ) {
        self.pattern = pattern
        self.state = state
        self.weightFactor = weightFactor
        self.reason = reason
        self.expires = expires
        self.setAt = setAt
        self.file = file
        self.line = line
    }

    public func matches(_ id: String) -> Bool { fnmatch(pattern, id, 0) == 0 }

    /// In force at unix time `now` (`Expiry`, the one rule).
    public func isLive(at now: Double) -> Bool {
        Expiry.isLive(expiresMillis: expires.map { max(1, Expiry.millis($0)) } ?? 0, nowMillis: Expiry.millis(now))
    }

    /// A stable short id for the API (`DELETE /overrides/{id}`): one register per pattern.
    public var id: String { Self.id(of: pattern) }

    public static func id(of pattern: String) -> String {
        String(StableHash.of(pattern) & 0xFFFF_FFFF_FFFF, radix: 16).leftPadded(to: 12)
    }

    /// The state file line for this override (the form `AdminStateFile.parse` reads).
    public var stateFileLine: String {
        var f = [pattern, state.rawValue.uppercased()]
        if let w = weightFactor { f.append("\(AdminStateFile.percent(w))%") }
        if let e = expires { f.append("until=\(AdminStateFile.time(e))") }
        if let t = setAt { f.append("set=\(AdminStateFile.time(t))") }
        if !reason.isEmpty { f.append("reason=\"\(AdminStateFile.escape(reason))\"") }
        return f.joined(separator: " ")
    }
}

extension String {
    func leftPadded(to n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

/// The admin state file: one override per line, `PATTERN STATE [WEIGHT%] [until=TIME]
/// [set=TIME] [reason="TEXT"]`, `#` comments outside quotes; TIME is RFC 3339 UTC
/// (`2026-11-30T12:00:00Z`, fractions allowed).
///
///     # member-id glob      state   weight
///     www/fra/*             DOWN                                reason="fibre cut"
///     app/*/app-3           DRAIN   until=2026-12-01T06:00:00Z
///     app/*/app-4           UP      50%
public enum AdminStateFile {
    /// The longest reason kept.
    public static let maxReason = 200

    public static func parse(_ text: String, file: String) -> (overrides: [AdminOverride], diagnostics: [Diagnostic]) {
        var out: [AdminOverride] = []
        var diags: [Diagnostic] = []
        // Lines by octet: "\r\n" is one Character, and a split by Character would not see it.
        for (i, raw) in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            switch parseLine(String(Substring(raw)), file: file, line: i + 1) {
            case .none: continue
            case .some(.success(let o)): out.append(o)
            case .some(.failure(let d)): diags.append(d)
            }
        }
        return (out, diags)
    }

    /// One line: nil when blank or a comment.
    public static func parseLine(_ raw: String, file: String, line: Int) -> Result<AdminOverride, Diagnostic>? {
        func fail(_ m: String) -> Result<AdminOverride, Diagnostic> { .failure(Diagnostic(file: file, line: line, m)) }
        guard let f = fields(raw) else { return fail("unterminated quote") }
        if f.isEmpty { return nil }
        guard f.count >= 2 else { return fail("expected 'PATTERN STATE [WEIGHT%] [until=TIME] [set=TIME] [reason=\"TEXT\"]', got \(f.count) field") }
        guard let state = HealthState(rawValue: f[1].lowercased()) else { return fail("state must be UP, DOWN or DRAIN, not '\(f[1])'") }
        if let why = patternProblem(f[0]) { return fail(why) }
        var o = AdminOverride(pattern: f[0], state: state, file: file, line: line)
        for field in f.dropFirst(2) {
            if field.hasSuffix("%"), o.weightFactor == nil {
                guard let p = Double(field.dropLast()), p >= 0, p <= 100 else { return fail("weight must be a percentage from 0% to 100%, not '\(field)'") }
                o.weightFactor = p / 100
            } else if field.utf8.starts(with: "until=".utf8), o.expires == nil {
                guard let t = parseTime(Self.after(6, field)) else { return fail("until= needs an RFC 3339 UTC time such as 2026-12-01T06:00:00Z, not '\(Self.after(6, field))'") }
                o.expires = t
            } else if field.utf8.starts(with: "set=".utf8), o.setAt == nil {
                guard let t = parseTime(Self.after(4, field)) else { return fail("set= needs an RFC 3339 UTC time, not '\(Self.after(4, field))'") }
                o.setAt = t
            } else if field.utf8.starts(with: "reason=".utf8), o.reason.isEmpty {
                let r = Self.after(7, field)
                if let why = reasonProblem(r) { return fail(why) }
                o.reason = r
            } else {
                return fail("unexpected '\(field)': after the state come WEIGHT%, until=TIME, set=TIME and reason=\"TEXT\", each once")
            }
        }
        return .success(o)
    }

    /// Splits at white space outside quotes and drops a `#` comment (nil: a quote left open); `reason="a b"` is one
    /// field `reason=a b` (quotes removed, `\"` and `\\` unescaped). Read by octet, as `escape` writes: by
    /// Character, a quote followed by a combining mark (or a space after U+0600) is one grapheme cluster and no
    /// longer a quote or a separator, and the line the API wrote did not read back (issue 18, finding 5).
    static func fields(_ line: Substring.UTF8View) -> [String]? {
        var out: [String] = []
        var cur: [UInt8] = []
        var inQuote = false
        var escaped = false
        var started = false
        for b in line {
            if escaped {
                cur.append(b)
                escaped = false
            } else if inQuote && b == UInt8(ascii: "\\") {
                escaped = true
            } else if b == UInt8(ascii: "\"") {
                inQuote.toggle()
                started = true
            } else if !inQuote && b == UInt8(ascii: "#") {
                break
            } else if !inQuote && (b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\r")) {
                if started { out.append(String(decoding: cur, as: UTF8.self)) }
                cur.removeAll(keepingCapacity: true)
                started = false
            } else {
                cur.append(b)
                started = true
            }
        }
        if inQuote { return nil }
        if started { out.append(String(decoding: cur, as: UTF8.self)) }
        return out
    }

    static func fields(_ line: String) -> [String]? { fields(Substring(line).utf8) }

    /// `s` for inside quotes: `\` and `"` escaped scalar by scalar (never by Character).
    static func escape(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        for u in s.unicodeScalars {
            if u == "\\" || u == "\"" { out.append("\\") }
            out.append(u == "\n" ? " " : u)
        }
        return String(out)
    }

    /// Why `pattern` cannot be a member glob (nil: it can), checked scalar by scalar as the
    /// file is read octet by octet: 1 to 1024 octets, no white space, quotes, `#` or `=`, and no
    /// control characters (fnmatch stops at a NUL, so `*\0www/fra/x` matched every member).
    public static func patternProblem(_ pattern: String) -> String? {
        guard !pattern.isEmpty, pattern.utf8.count <= 1024 else { return "member must be a member-id glob of 1 to 1024 octets" }
        for u in pattern.unicodeScalars {
            if isControl(u) { return "member must not contain control characters" }
            if u.properties.isWhitespace || u == "\"" || u == "#" || u == "=" { return "member must not contain white space, quotes, '#' or '='" }
        }
        return nil
    }

    /// Why `reason` cannot be kept (nil: it can): at most `maxReason` octets of one line,
    /// without control characters other than tab.
    public static func reasonProblem(_ reason: String) -> String? {
        guard reason.utf8.count <= maxReason else { return "reason must be at most \(maxReason) octets" }
        for u in reason.unicodeScalars where u != "\t" && (isControl(u) || u.properties.isWhitespace && u.properties.generalCategory != .spaceSeparator) {
            return "reason must be one line without control characters"
        }
        return nil
    }

    /// `field` after its first `n` octets (an ASCII keyword): by Character, `reason=` followed
    /// by a combining mark is not a prefix at all.
    static func after(_ n: Int, _ field: String) -> String { String(decoding: field.utf8.dropFirst(n), as: UTF8.self) }

    static func isControl(_ u: Unicode.Scalar) -> Bool { u.value < 0x20 || (0x7F...0x9F).contains(u.value) }

    static func percent(_ w: Double) -> String {
        let p = (w * 100 * 100).rounded() / 100
        return p == p.rounded() ? String(Int(p)) : String(p)
    }

    /// RFC 3339 UTC with milliseconds when there are any.
    public static func time(_ t: Double) -> String {
        var secs = time_t(t.rounded(.down))
        var parts = tm()
        gmtime_r(&secs, &parts)
        let ms = Int(((t - t.rounded(.down)) * 1000).rounded())
        let base = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec)
        return ms == 0 ? base + "Z" : base + String(format: ".%03dZ", min(ms, 999))
    }

    /// Reads `2026-12-01T06:00:00Z` or `2026-12-01T06:00:00.250Z` (UTC only).
    public static func parseTime(_ s: String) -> Double? {
        let u = Array(s.utf8)
        guard u.count >= 20, u.last == UInt8(ascii: "Z"), u[4] == 0x2D, u[7] == 0x2D, u[10] == UInt8(ascii: "T"), u[13] == 0x3A, u[16] == 0x3A else { return nil }
        func num(_ a: Int, _ b: Int) -> Int? {
            var v = 0
            for i in a..<b {
                guard u[i] >= 0x30 && u[i] <= 0x39 else { return nil }
                v = v * 10 + Int(u[i] - 0x30)
            }
            return v
        }
        guard let y = num(0, 4), let mo = num(5, 7), let d = num(8, 10), let h = num(11, 13), let mi = num(14, 16), let sec = num(17, 19),
              (1970...9999).contains(y), (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, sec < 61 else { return nil }
        var frac = 0.0
        if u.count > 20 {
            guard u[19] == 0x2E, u.count <= 30, let f = num(20, u.count - 1) else { return nil }
            frac = Double(f) / pow(10, Double(u.count - 21))
        } else if u[19] != UInt8(ascii: "Z") {
            return nil
        }
        var parts = tm()
        parts.tm_year = Int32(y - 1900)
        parts.tm_mon = Int32(mo - 1)
        parts.tm_mday = Int32(d)
        parts.tm_hour = Int32(h)
        parts.tm_min = Int32(mi)
        parts.tm_sec = Int32(sec)
        return Double(timegm(&parts)) + frac
    }

    /// The largest state file read.
    public static let maxSize = 1 << 20

    /// Reads and parses the file; a missing file means no overrides. Only a regular file of at
    /// most `maxSize` octets is read, opened without blocking, so a FIFO, a device or a huge
    /// file in its place is reported, never waited on (issue: hardening, finding 5).
    public static func load(path: String) -> (overrides: [AdminOverride], diagnostics: [Diagnostic]) {
        switch read(path: path) {
        case .missing: return ([], [])
        case .failed(let why): return ([], [Diagnostic(file: path, line: 0, why)])
        case .text(let text): return parse(text, file: path)
        }
    }

    /// The file's text, read with the same guards as `load` (for editors of the file).
    public static func readText(path: String) -> ReadResult { read(path: path) }

    public enum ReadResult: Sendable {
        case missing
        case failed(String)
        case text(String)
    }

    static func read(path: String) -> ReadResult {
        do throws(OperatorFile.Failure) {
            return .text(try OperatorFile.text(path, maxBytes: maxSize))
        } catch .missing {
            return .missing
        } catch {
            return .failed("the state file: \(error)")
        }
    }
}

/// What one observer saw of one check of one member.
public struct CheckObservation: Sendable, Equatable {
    /// The check's label (`http:80/health`).
    public var check: String
    public var up: Bool
    /// Why, in a few words (`HTTP 503`, `connect refused`).
    public var reason: String
    /// Who observed it: this instance's name now; peers' names once gossip lands.
    public var observer: String
    /// Increases with each change this observer makes; seconds since the epoch of the change.
    public var version: UInt64
    public var at: Double
    /// The check's configured initial state, not a result yet: it counts only where no
    /// observer has a real result (so a starting instance never outvotes the group).
    public var provisional: Bool

    public init(check: String, up: Bool, reason: String, observer: String, version: UInt64, at: Double, provisional: Bool = false) {
        self.check = check
        self.up = up
        self.reason = reason
        self.observer = observer
        self.version = version
        self.at = at
        self.provisional = provisional
    }
}

/// What a member's feedback agent last said, as it applies now.
public struct AgentObservation: Sendable, Equatable {
    /// nil when the agent gave no usable state word (percentage only, or stale).
    public var state: AgentReply.State?
    /// Weight factor 0...1 from the last good percentage, or nil (static weight applies).
    public var weightFactor: Double?
    public var detail: String
    public var observer: String
    public var at: Double

    public init(state: AgentReply.State?, weightFactor: Double?, detail: String, observer: String, at: Double) {
        self.state = state
        self.weightFactor = weightFactor
        self.detail = detail
        self.observer = observer
        self.at = at
    }
}

/// Everything observed about one member, by every observer whose view counts (this instance's
/// own checks, and the peers' when they gossip).
public struct MemberObservations: Sendable, Equatable {
    public var checks: [CheckObservation]
    public var agents: [AgentObservation]
    /// The peers that currently probe this member (empty when not sharded: a lone instance).
    public var probers: [String]

    public init(checks: [CheckObservation] = [], agents: [AgentObservation] = [], probers: [String] = []) {
        self.checks = checks
        self.agents = agents
        self.probers = probers
    }

    /// One observer's observations (a lone instance, or the local monitor's output).
    public init(checks: [CheckObservation] = [], agent: AgentObservation?) {
        self.init(checks: checks, agents: agent.map { [$0] } ?? [])
    }

    /// The one agent observation, when there is exactly one observer (the local monitor's output).
    public var agent: AgentObservation? { agents.first }

    /// The observers that said anything, sorted.
    public var observers: [String] {
        Array(Set(checks.map(\.observer) + agents.map(\.observer))).sorted()
    }
}

/// How the observers' views of a member become one state (the cluster file's `verdict`).
public enum VerdictPolicy: Sendable, Equatable, CustomStringConvertible {
    /// Down when more than half of the observers say down (the default).
    case majority
    /// Down when any observer says down.
    case any
    /// Down only when every observer says down.
    case all
    /// Down when at least this many observers say down (or all of them, if fewer observe).
    case count(Int)
    /// Each region decides by `within` among its own observers; the member is down when the
    /// regions saying down make `across` of the regions that vote (`RegionVerdict`).
    indirect case regions(across: VerdictPolicy, within: VerdictPolicy)

    /// Parses `majority`, `any`, `all` or a positive count.
    public init?(_ text: String) {
        switch text.lowercased() {
        case "majority": self = .majority
        case "any": self = .any
        case "all": self = .all
        default:
            guard let n = Int(text), n > 0 else { return nil }
            self = .count(n)
        }
    }

    /// Whether `down` of `voters` observers saying down makes the member down (for
    /// `regions`, with every observer a region of its own: `across` of them).
    public func isDown(down: Int, voters: Int) -> Bool {
        guard voters > 0, down > 0 else { return false }
        switch self {
        case .regions(let across, _): return across.isDown(down: down, voters: voters)
        case .majority: return down * 2 > voters
        case .any: return true
        case .all: return down == voters
        case .count(let n): return down >= min(n, voters)
        }
    }

    public var description: String {
        switch self {
        case .majority: return "majority"
        case .any: return "any"
        case .all: return "all"
        case .count(let n): return "count \(n)"
        case let .regions(across, within): return "regions \(across) within \(within)"
        }
    }
}

/// Immutable health view that selection reads: observations from health checks and feedback
/// agents (this instance's and its peers'), folded per member by the verdict policy, with
/// admin overrides winning over them.
public final class HealthSnapshot: Sendable {
    /// Increases with every new snapshot.
    public let version: Int
    /// In the order they apply: a later matching override wins.
    public let overrides: [AdminOverride]
    /// Member id -> observations.
    public let observations: [String: MemberObservations]
    public let policy: VerdictPolicy
    /// Every override register of the group the view was folded from (removed and expired
    /// ones included), for the API's list; empty for a view made from a state file alone.
    public let registers: [String: Ledger.OverrideEntry]
    /// Each observer's region, for `VerdictPolicy.regions`.
    public let regions: RegionMap
    /// The group's latency map (`order: latency`).
    public let latency: LatencyTable

    public init(
        version: Int = 0, overrides: [AdminOverride] = [], observations: [String: MemberObservations] = [:], policy: VerdictPolicy = .majority,
        registers: [String: Ledger.OverrideEntry] = [:], regions: RegionMap = .none, latency: LatencyTable = .empty
    ) {
        self.regions = regions
        self.latency = latency
        self.version = version
        self.overrides = overrides
        self.observations = observations
        self.policy = policy
        self.registers = registers
    }

    public static let allUp = HealthSnapshot()

    /// The same snapshot with some parts replaced.
    public func with(
        overrides: [AdminOverride]? = nil, observations: [String: MemberObservations]? = nil, policy: VerdictPolicy? = nil, version: Int
    ) -> HealthSnapshot {
        HealthSnapshot(
            version: version, overrides: overrides ?? self.overrides, observations: observations ?? self.observations,
            policy: policy ?? self.policy, registers: registers, regions: regions, latency: latency)
    }

    /// The status of a member: the last matching admin override; else the verdict of its
    /// observers. Each observer says down if any of its checks is down or its agent says down;
    /// the policy turns the count of those into a verdict. A member that is up is drained when
    /// most agent reports say drain or maint, and its weight factor is the median of the
    /// agents' percentages.
    /// - Parameter healthyIf: `healthy_if: K of N` of the member's pool: an observer finds it
    ///   healthy when no more than N - K of its checks fail.
    public func status(of memberID: String, healthyIf: (k: Int, n: Int)? = nil) -> MemberStatus {
        for o in overrides.reversed() where o.matches(memberID) {
            return MemberStatus(state: o.state, weightFactor: o.weightFactor ?? 1, source: o.line > 0 ? "admin \((o.file as NSString).lastPathComponent):\(o.line)" : "admin \(o.file)\(o.reason.isEmpty ? "" : ": \(o.reason)")")
        }
        guard let obs = observations[memberID] else { return .defaultUp }
        return Verdict.fold(obs, policy: policy, regions: regions, healthyIf: healthyIf)
    }
}

/// The fold of one member's observations into a status: a pure function, so every instance
/// with the same merged observations gets the same answer.
public enum Verdict {
    public static func fold(_ obs: MemberObservations, policy: VerdictPolicy, regions: RegionMap = .none, healthyIf: (k: Int, n: Int)? = nil) -> MemberStatus {
        let observers = obs.observers
        var downs: [(observer: String, reason: String, byAgent: Bool)] = []
        // Failing checks an observer may see and still find the member healthy.
        let allowed = healthyIf.map { $0.n - $0.k } ?? 0
        for o in observers {
            let failing = obs.checks.filter { $0.observer == o && !$0.up }
            if failing.count > allowed, let c = failing.first {
                let calc = healthyIf.map { " (\($0.n - failing.count) of \($0.n) checks pass, healthy_if \($0.k) of \($0.n))" } ?? ""
                downs.append((o, "check \(c.check): \(c.reason)\(calc)", false))
            } else if let a = obs.agents.first(where: { $0.observer == o && $0.state == .down }) {
                downs.append((o, "agent: \(a.detail)", true))
            }
        }
        let factors = obs.agents.compactMap(\.weightFactor).sorted()
        let factor = factors.isEmpty ? 1 : median(factors)
        let many = observers.count > 1
        func tally(_ n: Int) -> String { many ? " (\(n) of \(observers.count) observers, \(policy))" : "" }
        if case let .regions(across, within) = policy {
            let t = RegionVerdict.tally(observers: observers, down: Set(downs.map(\.observer)), regions: regions, across: across, within: within)
            if t.down, let first = downs.first {
                return MemberStatus(
                    state: .down, weightFactor: first.byAgent ? factor : 1,
                    source: first.reason + " (\(t.downRegions.count) of \(t.voting) regions say down: \(t.downRegions.joined(separator: ", ")); \(policy))")
            }
        } else if policy.isDown(down: downs.count, voters: observers.count), let first = downs.first {
            return MemberStatus(state: .down, weightFactor: first.byAgent ? factor : 1, source: first.reason + tally(downs.count))
        }
        let checks = obs.checks.isEmpty ? "" : (downs.isEmpty ? "checks pass" : "checks pass by \(policy), \(downs.count) of \(observers.count) say down")
        guard !obs.agents.isEmpty else { return MemberStatus(state: .up, source: checks.isEmpty ? "up" : checks) }
        let details = many ? obs.agents.map { "\($0.observer): \($0.detail)" }.joined(separator: "; ") : obs.agents[0].detail
        let source = [checks, "agent: \(details)"].filter { !$0.isEmpty }.joined(separator: ", ")
        let drains = obs.agents.filter { $0.state == .drain || $0.state == .maint }.count
        if drains * 2 > obs.agents.count {
            return MemberStatus(state: .drain, weightFactor: factor, source: source)
        }
        return MemberStatus(state: .up, weightFactor: factor, source: source)
    }

    /// The median of sorted values (the mean of the middle two for an even count).
    static func median(_ sorted: [Double]) -> Double {
        let n = sorted.count
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}
