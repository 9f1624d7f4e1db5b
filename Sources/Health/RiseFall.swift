/// The anti-flap state machine of one (member, check): `rise` consecutive successes bring a
/// member up, `fall` consecutive failures take it down. The first result decides at once, so
/// a start-up round gives every member a real state (gdnsd does the same).
public struct RiseFall: Sendable, Equatable {
    public let rise: Int
    public let fall: Int
    public private(set) var isUp: Bool
    /// Whether any result has been seen yet.
    public private(set) var observed = false
    public private(set) var successes = 0
    public private(set) var failures = 0

    public init(rise: Int, fall: Int, initialUp: Bool) {
        self.rise = max(1, rise)
        self.fall = max(1, fall)
        isUp = initialUp
    }

    /// A transition, when a result changed the state.
    public enum Transition: Sendable, Equatable {
        case wentUp
        case wentDown
    }

    /// Records one result; returns the transition it caused, if any.
    public mutating func record(success: Bool) -> Transition? {
        let first = !observed
        observed = true
        if success {
            successes += 1
            failures = 0
            if !isUp && (first || successes >= rise) {
                isUp = true
                return .wentUp
            }
        } else {
            failures += 1
            successes = 0
            if isUp && (first || failures >= fall) {
                isUp = false
                return .wentDown
            }
        }
        return nil
    }
}
