import Diagnostics

/// Why a set of zones could not be loaded: every error found, not only the first.
public enum ZoneLoadError: Error, Sendable, CustomStringConvertible {
    /// The zone directory could not be read.
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): \(reason)"
        }
    }
}
