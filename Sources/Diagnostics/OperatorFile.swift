#if canImport(Glibc)
import Glibc
#endif

/// The one way an operator file (a pool file, the cluster file, the state file, a key, a token,
/// a secret) is read: opened without blocking (a FIFO put in its place cannot hang a reload),
/// checked after opening to be a regular file (no check-then-open race), read up to a size
/// limit (a file that grows while it is read is refused, not truncated), and required to be
/// UTF-8. Zone files are streamed by ZoneStore through the same open-and-check steps.
public enum OperatorFile {
    /// Why a file was not read; `description` is the `message` of its diagnostic.
    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        case missing
        case cannotOpen(String)
        case notRegular
        case tooLarge(size: Int, limit: Int)
        case notText

        public var description: String {
            switch self {
            case .missing: return "no such file"
            case .cannotOpen(let why): return "cannot read the file: \(why)"
            case .notRegular: return "not a regular file (a FIFO, device or directory is not read)"
            case let .tooLarge(size, limit): return "the file has \(size) octets, more than \(limit)"
            case .notText: return "the file is not UTF-8 text"
            }
        }
    }

    /// The octets of `path`, at most `maxBytes` of them.
    public static func bytes(_ path: String, maxBytes: Int) throws(Failure) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw errno == ENOENT ? .missing : .cannotOpen(String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .cannotOpen(String(cString: strerror(errno))) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw .notRegular }
        guard st.st_size <= maxBytes else { throw .tooLarge(size: Int(st.st_size), limit: maxBytes) }
        var data = [UInt8](repeating: 0, count: Int(st.st_size) + 1)
        var total = 0
        while total < data.count {
            let n = data.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return -1 }
                return Glibc.read(fd, base + total, buffer.count - total)
            }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw .cannotOpen(String(cString: strerror(errno))) }
            if n == 0 { break }
            total += n
            if total == data.count && total <= maxBytes { data += [UInt8](repeating: 0, count: min(65_536, maxBytes + 1 - total)) }
            guard total <= maxBytes else { throw .tooLarge(size: total, limit: maxBytes) }
        }
        data.removeSubrange(total...)
        return data
    }

    /// The UTF-8 text of `path`, at most `maxBytes` octets.
    public static func text(_ path: String, maxBytes: Int) throws(Failure) -> String {
        let b = try bytes(path, maxBytes: maxBytes)
        guard let s = String(validating: b, as: UTF8.self) else { throw .notText }
        return s
    }

    /// The same, as a diagnostic at `path:0` on failure.
    public static func read(_ path: String, maxBytes: Int) -> Result<String, Diagnostic> {
        do throws(Failure) {
            return .success(try text(path, maxBytes: maxBytes))
        } catch {
            return .failure(Diagnostic(file: path, line: 0, error.description))
        }
    }

    /// Size limits of the operator files.
    public enum Limit {
        /// A pool file (a 10,000-member pool is about 400 KB).
        public static let poolFile = 16 << 20
        public static let clusterFile = 1 << 20
        /// Keys, tokens and secrets: a few lines.
        public static let secret = 64 << 10
    }
}
