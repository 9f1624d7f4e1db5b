import ArgumentParser
import CPrivileges
import Diagnostics
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Log lines as JSON objects, one per line on standard error: `ts` (RFC 3339 UTC), `level`,
/// `label`, `msg`, then the metadata as strings.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    init(label: String, level: Logger.Level) {
        self.label = label
        logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { _, b in b }) { fields[k] = "\(v)" }
        var object: [String: String] = fields
        object["ts"] = Self.timestamp()
        object["level"] = event.level.rawValue
        object["label"] = label
        object["msg"] = "\(event.message)"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var line = try? encoder.encode(object) else { return }
        line.append(0x0A)
        line.withUnsafeBytes { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }

    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var parts = tm()
        var secs = ts.tv_sec
        gmtime_r(&secs, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec, ts.tv_nsec / 1_000_000)
    }
}

/// Dropping root once the sockets are bound (`--user`).
enum Privileges {
    enum DropError: Error, CustomStringConvertible {
        case unknownUser(String)
        case failed(String)
        var description: String {
            switch self {
            case .unknownUser(let u): return "--user \(u): no such user"
            case .failed(let why): return "--user: \(why)"
            }
        }
    }

    /// Switches to `name`'s user and group (supplementary groups cleared). Not root: only
    /// allowed when already running as that user.
    static func drop(to name: String, logger: Logger) throws {
        guard let pw = getpwnam(name) else { throw DropError.unknownUser(name) }
        let uid = pw.pointee.pw_uid
        let gid = pw.pointee.pw_gid
        if getuid() == uid && geteuid() == uid { return }
        guard geteuid() == 0 else { throw DropError.failed("only root can switch to \(name) (running as uid \(geteuid()))") }
        let r = meridian_drop_privileges(uid, gid)
        guard r == 0 else { throw DropError.failed("switching to \(name): \(String(cString: strerror(r)))") }
        // Must not be able to get root back, in this thread or any other.
        guard setuid(0) != 0 else { throw DropError.failed("could regain root after setuid") }
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        for t in tasks {
            guard let tid = pid_t(t), meridian_thread_has_uid(tid, uid) != 0 else {
                throw DropError.failed("thread \(t) still runs with its old user id")
            }
        }
        logger.notice("running as \(name) (uid \(uid), gid \(gid))")
    }
}

/// A duration option (`--startup-timeout 5`, `--for 2h`): seconds, or a number with ms, s, m,
/// h or d, the one format durations have everywhere (`DurationText`).
struct Seconds: ExpressibleByArgument, Sendable, CustomStringConvertible {
    var value: Double

    init(_ value: Double) { self.value = value }

    init?(argument: String) {
        guard let v = DurationText.seconds(argument) else { return nil }
        value = v
    }

    var description: String { value == value.rounded() && abs(value) < 1e15 ? "\(Int64(value))s" : "\(value)s" }
}
