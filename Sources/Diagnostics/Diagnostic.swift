/// A problem found in a configuration file (zone, pool, state or cluster file), reported as
/// `file:line: message`. Every target that reads files reports through this one type.
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
