import Diagnostics
import Foundation

/// How the admin API listens and who may use it.
public struct AdminConfig: Sendable {
    public var host: String
    public var port: Int
    /// Accepted bearer tokens (one, or two during a rotation); empty: no token (loopback only).
    public var tokens: [String]
    /// PEM certificate chain and key for HTTPS; nil: plain HTTP.
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// The most admin connections at once.
    public var maxConnections: Int
    /// The largest request body read (overrides are small).
    public var maxBody: Int

    public init(host: String = "127.0.0.1", port: Int = 8053, tokens: [String] = [], tlsCertificate: String? = nil, tlsKey: String? = nil, maxConnections: Int = 64, maxBody: Int = 65536) {
        self.host = host
        self.port = port
        self.tokens = tokens
        self.tlsCertificate = tlsCertificate
        self.tlsKey = tlsKey
        self.maxConnections = maxConnections
        self.maxBody = maxBody
    }

    /// Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost).
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }
}

/// Why the admin API cannot start.
public enum AdminConfigError: Error, Sendable, CustomStringConvertible {
    case badListen(String)
    case tokenFile(String)
    case needsToken(String)
    case tls(String)
    /// The address could not be bound: `--admin-listen HOST:PORT: why`.
    case bind(String, String)

    public var description: String {
        switch self {
        case .badListen(let l): return "bad --admin-listen \(l): use HOST:PORT or [V6]:PORT"
        case .tokenFile(let why): return why
        case .needsToken(let host): return "the admin API on \(host), not a loopback address, needs --admin-token-file"
        case .tls(let why): return why
        case .bind(let address, let why): return "--admin-listen \(address): \(why)"
        }
    }
}

/// The admin token file: one token per line (a second line during a rotation), `#` comments;
/// each at least 16 characters, no white space.
public enum AdminTokenFile {
    public static func load(path: String) throws(AdminConfigError) -> [String] {
        let text: String
        do throws(OperatorFile.Failure) { text = try OperatorFile.text(path, maxBytes: 4096) } catch {
            throw .tokenFile("\(path): cannot read the admin token file (a text file of at most 4096 octets): \(error)")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(AdminConfigError) -> [String] {
        var tokens: [String] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)?
                .trimmingCharacters(in: .whitespaces) ?? ""
            if line.isEmpty { continue }
            guard line.count >= 16, !line.contains(where: { $0.isWhitespace }) else {
                throw .tokenFile("\(file):\(i + 1): a token must be at least 16 characters with no white space")
            }
            tokens.append(line)
        }
        guard (1...2).contains(tokens.count) else { throw .tokenFile("\(file): expected 1 or 2 tokens, found \(tokens.count)") }
        return tokens
    }
}
