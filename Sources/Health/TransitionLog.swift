import Foundation

/// A member's state change, as the answer path saw it (the group's verdict and overrides).
public struct Transition: Sendable, Codable, Equatable {
    /// Unix time, seconds.
    public var at: Double
    public var from: String
    public var to: String
    /// What decided the new state (a check, an agent, an override, a peer).
    public var reason: String

    public init(at: Double, from: String, to: String, reason: String) {
        self.at = at
        self.from = from
        self.to = to
        self.reason = reason
    }
}

/// The last `limit` transitions of every member: a pure value. `observe` takes every member's
/// status at one moment and returns the changes since the previous call.
public struct TransitionLog: Sendable {
    public let limit: Int
    public private(set) var last: [String: MemberStatus] = [:]
    public private(set) var history: [String: [Transition]] = [:]

    public init(limit: Int = 20) { self.limit = max(1, limit) }

    public mutating func observe(_ statuses: [String: MemberStatus], at: Double) -> [(member: String, transition: Transition)] {
        var changes: [(String, Transition)] = []
        for (id, status) in statuses.sorted(by: { $0.key < $1.key }) {
            if let old = last[id], old.state != status.state {
                let t = Transition(at: at, from: old.state.rawValue, to: status.state.rawValue, reason: status.source)
                history[id, default: []].append(t)
                if history[id, default: []].count > limit { history[id]?.removeFirst() }
                changes.append((id, t))
            }
        }
        // Members that left the configuration take their history with them.
        for id in last.keys where statuses[id] == nil { history[id] = nil }
        last = statuses
        return changes
    }
}
