import Foundation
import ZoneStore

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
/// optionally given a weight factor.
public struct AdminOverride: Sendable, Equatable {
    /// A glob over member ids (`POOL/SITE/NAME`): `*`, `?`, `[...]`.
    public var pattern: String
    public var state: HealthState
    public var weightFactor: Double?
    public var file: String
    public var line: Int

    public init(pattern: String, state: HealthState, weightFactor: Double? = nil, file: String, line: Int) {
        self.pattern = pattern
        self.state = state
        self.weightFactor = weightFactor
        self.file = file
        self.line = line
    }

    public func matches(_ id: String) -> Bool { fnmatch(pattern, id, 0) == 0 }
}

/// The admin state file: one override per line, `PATTERN STATE [WEIGHT%]`, `#` comments.
///
///     # member-id glob      state   weight
///     www/fra/*             DOWN
///     app/*/app-3           DRAIN
///     app/*/app-4           UP      50%
public enum AdminStateFile {
    public static func parse(_ text: String, file: String) -> (overrides: [AdminOverride], diagnostics: [Diagnostic]) {
        var out: [AdminOverride] = []
        var diags: [Diagnostic] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            if f.isEmpty { continue }
            guard f.count == 2 || f.count == 3 else {
                diags.append(Diagnostic(file: file, line: i + 1, "expected 'PATTERN STATE [WEIGHT%]', got \(f.count) fields"))
                continue
            }
            guard let state = HealthState(rawValue: f[1].lowercased()) else {
                diags.append(Diagnostic(file: file, line: i + 1, "state must be UP, DOWN or DRAIN, not '\(f[1])'"))
                continue
            }
            var weight: Double?
            if f.count == 3 {
                guard f[2].hasSuffix("%"), let p = Double(f[2].dropLast()), p >= 0, p <= 100 else {
                    diags.append(Diagnostic(file: file, line: i + 1, "weight must be a percentage from 0% to 100%, not '\(f[2])'"))
                    continue
                }
                weight = p / 100
            }
            out.append(AdminOverride(pattern: f[0], state: state, weightFactor: weight, file: file, line: i + 1))
        }
        return (out, diags)
    }

    /// Reads and parses the file; a missing file means no overrides.
    public static func load(path: String) -> (overrides: [AdminOverride], diagnostics: [Diagnostic]) {
        guard FileManager.default.fileExists(atPath: path) else { return ([], []) }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            return ([], [Diagnostic(file: path, line: 0, "cannot read state file")])
        }
        return parse(text, file: path)
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

    public init(check: String, up: Bool, reason: String, observer: String, version: UInt64, at: Double) {
        self.check = check
        self.up = up
        self.reason = reason
        self.observer = observer
        self.version = version
        self.at = at
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

/// Everything observed about one member.
public struct MemberObservations: Sendable, Equatable {
    public var checks: [CheckObservation]
    public var agent: AgentObservation?

    public init(checks: [CheckObservation] = [], agent: AgentObservation? = nil) {
        self.checks = checks
        self.agent = agent
    }
}

/// Immutable health view that selection reads: observations from health checks and feedback
/// agents, with admin overrides from the state file winning over them. Observations carry their
/// observer and a version so that views from peer instances can later be merged here too.
public final class HealthSnapshot: Sendable {
    /// Increases with every new snapshot.
    public let version: Int
    public let overrides: [AdminOverride]
    /// Member id -> observations.
    public let observations: [String: MemberObservations]

    public init(version: Int = 0, overrides: [AdminOverride] = [], observations: [String: MemberObservations] = [:]) {
        self.version = version
        self.overrides = overrides
        self.observations = observations
    }

    public static let allUp = HealthSnapshot()

    /// The same observations with other overrides, or the same overrides with other observations.
    public func with(overrides: [AdminOverride]? = nil, observations: [String: MemberObservations]? = nil, version: Int) -> HealthSnapshot {
        HealthSnapshot(version: version, overrides: overrides ?? self.overrides, observations: observations ?? self.observations)
    }

    /// The status of a member: the last matching admin override; else down if any check is
    /// down or the agent says down; drain if the agent says drain or maint; else up, with the
    /// agent's percentage as weight factor.
    public func status(of memberID: String) -> MemberStatus {
        for o in overrides.reversed() where o.matches(memberID) {
            return MemberStatus(state: o.state, weightFactor: o.weightFactor ?? 1, source: "admin \((o.file as NSString).lastPathComponent):\(o.line)")
        }
        guard let obs = observations[memberID] else { return .defaultUp }
        if let down = obs.checks.first(where: { !$0.up }) {
            return MemberStatus(state: .down, source: "check \(down.check): \(down.reason)")
        }
        let checks = obs.checks.isEmpty ? "" : "checks pass"
        if let agent = obs.agent {
            let factor = agent.weightFactor ?? 1
            let source = [checks, "agent: \(agent.detail)"].filter { !$0.isEmpty }.joined(separator: ", ")
            switch agent.state {
            case .down?: return MemberStatus(state: .down, weightFactor: factor, source: source)
            case .drain?, .maint?: return MemberStatus(state: .drain, weightFactor: factor, source: source)
            case .up?, nil: return MemberStatus(state: .up, weightFactor: factor, source: source)
            }
        }
        return MemberStatus(state: .up, source: checks.isEmpty ? "up" : checks)
    }
}
