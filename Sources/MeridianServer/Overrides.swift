import Frontend
import Health
import Diagnostics
import Foundation
import NIOConcurrencyHelpers
import Gossip
import GossipTransport
import Control

/// An admin override as the API shows it.
public struct OverrideInfo: Sendable, Codable, Equatable {
    public var id: String
    /// The member-id glob (`POOL/SITE/NAME`, `*` and `?` allowed).
    public var member: String
    public var state: String
    /// Weight in percent (0-100), nil for "unchanged".
    public var weight: Double?
    public var reason: String
    /// RFC 3339 UTC, nil for "until removed".
    public var expires: String?
    public var setAt: String?
    /// The instance that set it, and where (`state.txt:3`).
    public var setBy: String
    public var source: String
    /// How many members of the current configuration it matches.
    public var matches: Int

    init(_ e: Ledger.OverrideEntry, matches: Int) {
        id = AdminOverride.id(of: e.pattern)
        member = e.pattern
        state = e.state.rawValue
        weight = e.weightFactor.map { ($0 * 10_000).rounded() / 100 }
        reason = e.reason
        expires = e.expiresMillis == 0 ? nil : AdminStateFile.time(Double(e.expiresMillis) / 1000)
        setAt = AdminStateFile.time(Double(e.version.millis) / 1000)
        setBy = e.origin
        source = e.source
        self.matches = matches
    }
}

/// Why an override request was refused; each maps to an HTTP status in the API.
public enum OverrideError: Error, Sendable, Equatable, CustomStringConvertible {
    case noStateFile
    case invalid(String)
    case notFound(String)
    case stateFile(String)

    public var description: String {
        switch self {
        case .noStateFile: return "overrides set here must survive a restart: start the server with --state FILE"
        case .invalid(let why): return why
        case .notFound(let id): return "no override with id \(id)"
        case .stateFile(let why): return why
        }
    }
}

/// Edits of the admin state file's text: one line per pattern, everything else (comments,
/// other lines, their order) kept as it is.
public enum StateFileEdit {
    /// `text` with the line for `o.pattern` replaced by `o` (or `o` appended).
    public static func setting(_ o: AdminOverride, in text: String, file: String) -> String {
        var lines = text.isEmpty ? [] : text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        if let i = lines.indices.first(where: { pattern(of: lines[$0], file: file) == o.pattern }) {
            lines[i] = o.stateFileLine
        } else {
            lines.append(o.stateFileLine)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `text` without the lines for `patterns`, and how many were dropped.
    public static func removing(_ patterns: Set<String>, from text: String, file: String) -> (text: String, removed: Int) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        let kept = lines.filter { pattern(of: $0, file: file).map { !patterns.contains($0) } ?? true }
        return (kept.isEmpty ? "" : kept.joined(separator: "\n") + "\n", lines.count - kept.count)
    }

    static func pattern(of line: String, file: String) -> String? {
        guard case .success(let o)? = AdminStateFile.parseLine(line, file: file, line: 0) else { return nil }
        return o.pattern
    }

    /// Writes `text` to `path` atomically: a temporary file beside it, synced, renamed over.
    public static func write(_ text: String, to path: String) throws(OverrideError) {
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = (dir.isEmpty ? "." : dir) + "/.\((path as NSString).lastPathComponent).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .stateFile("cannot write \(tmp): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                close(fd)
                unlink(tmp)
                throw .stateFile("cannot write \(tmp): \(String(cString: strerror(errno)))")
            }
            written += n
        }
        fsync(fd)
        close(fd)
        guard rename(tmp, path) == 0 else {
            let why = String(cString: strerror(errno))
            unlink(tmp)
            throw .stateFile("cannot replace \(path): \(why)")
        }
    }

    /// Checks an override request; the message names what is wrong.
    public static func validate(_ o: AdminOverride, now: Double) throws(OverrideError) {
        if let why = AdminStateFile.patternProblem(o.pattern) { throw .invalid(why) }
        if let w = o.weightFactor, !(w >= 0 && w <= 1) { throw .invalid("weight must be a percentage from 0 to 100") }
        if let e = o.expires, !(e > now && e < now + 10 * 365 * 86400) { throw .invalid("expires must be in the future (and within ten years)") }
        if let why = AdminStateFile.reasonProblem(o.reason) { throw .invalid(why) }
    }
}

/// The server's admin override operations: the API's `POST`/`GET`/`DELETE /overrides`.
extension DNSServer {
    /// The group's overrides in force, oldest first.
    public func overrides() -> [OverrideInfo] {
        let now = Expiry.millis(clock())
        let snapshot = box.load()
        let members = snapshot.pools.pools.pools.flatMap(\.members).map(\.id)
        return snapshot.pools.health.registers.values.filter { $0.isLive(atMillis: now) }
            .sorted { $0.version < $1.version }
            .map { e in OverrideInfo(e, matches: members.filter { fnmatch(e.pattern, $0, 0) == 0 }.count) }
    }

    /// Sets (or replaces) the override for `o.pattern`: written to this instance's state file
    /// (atomically, with the time it was set), then recorded for the group at once.
    public func setOverride(_ request: AdminOverride) throws(OverrideError) -> OverrideInfo {
        var o = request
        // Whole milliseconds: the state file, the group's version and the reply all agree.
        let now = (clock() * 1000).rounded(.down) / 1000
        o.expires = o.expires.map { ($0 * 1000).rounded(.down) / 1000 }
        try StateFileEdit.validate(o, now: now)
        guard let path = config.statePath else { throw .noStateFile }
        // A glob that matches nothing is a typo, not an override: it would linger, unseen, with
        // no expiry (issue 18, finding 7: `ctl drain 'nosuch/*'` was accepted).
        let matches = box.load().pools.pools.pools.flatMap(\.members).filter { o.matches($0.id) }.count
        guard matches > 0 else { throw .invalid("member '\(o.pattern)' matches no member of the current configuration (member ids are POOL/SITE/NAME)") }
        o.setAt = now
        try editStateFile { () throws(OverrideError) in
            let text = try currentStateText(path)
            try StateFileEdit.write(StateFileEdit.setting(o, in: text, file: path), to: path)
        }
        reloadState()
        return OverrideInfo(
            Ledger.OverrideEntry(
                pattern: o.pattern, state: o.state, weightFactor: o.weightFactor, origin: supervisor.nodeName, source: "api",
                version: HLC(millis: UInt64((now * 1000).rounded())), reason: o.reason, expiresMillis: o.expires.map { UInt64(($0 * 1000).rounded()) } ?? 0),
            matches: matches)
    }

    /// Removes the override with API id `id`, whichever instance set it: from this
    /// instance's state file if it is there, and from the group (a tombstone) in any case.
    public func removeOverride(id: String) async throws(OverrideError) -> OverrideInfo {
        guard let info = overrides().first(where: { $0.id == id }) else { throw .notFound(id) }
        if let path = config.statePath {
            let dropped = try editStateFile { () throws(OverrideError) -> Int in
                let edit = StateFileEdit.removing([info.member], from: try currentStateText(path), file: path)
                if edit.removed > 0 { try StateFileEdit.write(edit.text, to: path) }
                return edit.removed
            }
            if dropped > 0 { reloadState() }
        }
        _ = await supervisor.removeOverride(pattern: info.member)
        return info
    }

    /// Runs `body` holding the state file lock (typed throws, which `NIOLock` does not carry).
    func editStateFile<T>(_ body: () throws(OverrideError) -> T) throws(OverrideError) -> T {
        stateFileLock.lock()
        defer { stateFileLock.unlock() }
        return try body()
    }

    func currentStateText(_ path: String) throws(OverrideError) -> String {
        switch AdminStateFile.readText(path: path) {
        case .missing: return ""
        case .failed(let why): throw .stateFile("\(path): \(why)")
        case .text(let t): return t
        }
    }

    /// Lines of this instance's state file that the group has since overruled (another
    /// instance changed or removed the pattern later) or that have expired are dropped, so a
    /// restart does not bring them back.
    func adoptGroupOverrides(_ registers: [String: Ledger.OverrideEntry]) {
        guard let path = config.statePath else { return }
        let now = Expiry.millis(clock())
        let own = ownPatterns.withLockedValue { $0 }
        let stale = Set(own.compactMap { p -> String? in
            guard let r = registers[p] else { return nil }
            return r.origin != supervisor.nodeName || !r.isLive(atMillis: now) ? p : nil
        })
        guard !stale.isEmpty else { return }
        let dropped: Int? = try? editStateFile { () throws(OverrideError) -> Int in
            let edit = StateFileEdit.removing(stale, from: try currentStateText(path), file: path)
            if edit.removed > 0 { try StateFileEdit.write(edit.text, to: path) }
            return edit.removed
        }
        if let dropped, dropped > 0 {
            logger.notice("state file \(path): dropped \(dropped) override(s) the group has since changed, removed or that expired: \(stale.sorted().joined(separator: ", "))")
            reloadState()
        }
    }
}
