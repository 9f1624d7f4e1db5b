/// A problem found in a zone file, reported as `file:line: message`.
public struct Diagnostic: Sendable, Equatable, CustomStringConvertible, Error {
    public enum Severity: String, Sendable { case error, warning }

    public var file: String
    public var line: Int
    public var severity: Severity
    public var message: String

    public init(file: String, line: Int, severity: Severity = .error, _ message: String) {
        self.file = file
        self.line = line
        self.severity = severity
        self.message = message
    }

    public var description: String {
        severity == .error ? "\(file):\(line): \(message)" : "\(file):\(line): warning: \(message)"
    }
}

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
