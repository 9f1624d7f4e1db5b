import Diagnostics
import DNSWire
import Foundation

/// Key files in BIND's format, so keys move between Meridian, BIND, Knot (keymgr import) and
/// ldns: `K<zone>+<alg>+<tag>.key` holds the DNSKEY record, `.private` the private key and the
/// timing metadata (`Publish:`, `Activate:`, `Inactive:`, `Delete:`, as YYYYMMDDHHMMSS UTC).
public enum KeyFiles {
    /// The most octets read from one key file.
    static let maxFileSize = 64 * 1024

    /// Every key in `directory` (pairs of `.key` and `.private`), with a diagnostic for each
    /// file that cannot be used.
    public static func load(directory: String) -> (keys: [ZoneKey], diagnostics: [Diagnostic]) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            return ([], [Diagnostic(file: directory, line: 0, "cannot list the keys directory")])
        }
        var keys: [ZoneKey] = []
        var diags: [Diagnostic] = []
        for name in names.sorted() where name.hasPrefix("K") && name.hasSuffix(".private") {
            let base = (directory as NSString).appendingPathComponent(String(name.dropLast(8)))
            do {
                keys.append(try read(base: base))
            } catch let d {
                diags.append(d)
            }
        }
        return (keys, diags)
    }

    /// The key whose files are `base.key` and `base.private`.
    public static func read(base: String) throws(Diagnostic) -> ZoneKey {
        let publicText = try text(base + ".key")
        let privateText = try text(base + ".private")
        let record = try dnskeyRecord(publicText, file: base + ".key")
        let (algorithm, raw, timing) = try privateFields(privateText, file: base + ".private")
        guard algorithm.rawValue == record.algorithm else {
            throw Diagnostic(file: base + ".private", line: 2, "algorithm \(algorithm.rawValue) differs from the DNSKEY's \(record.algorithm) in \(base).key")
        }
        let key: SigningKey
        do { key = try SigningKey(algorithm: algorithm, raw: raw) } catch { throw Diagnostic(file: base + ".private", line: 3, "\(error)") }
        guard key.publicKey == record.publicKey else {
            throw Diagnostic(file: base + ".private", line: 3, "the private key does not match the public key in \(base).key")
        }
        return ZoneKey(zone: record.owner, flags: record.flags, key: key, timing: timing, file: base + ".private")
    }

    static func text(_ path: String) throws(Diagnostic) -> String {
        do throws(OperatorFile.Failure) {
            return try OperatorFile.text(path, maxBytes: maxFileSize)
        } catch {
            throw Diagnostic(file: path, line: 0, "cannot read the key file (a regular file of at most \(maxFileSize) octets): \(error)")
        }
    }

    /// The DNSKEY record of a `.key` file: `owner [TTL] [IN] DNSKEY flags 3 algorithm base64...`.
    static func dnskeyRecord(_ text: String, file: String) throws(Diagnostic) -> (owner: [UInt8], flags: UInt16, algorithm: UInt8, publicKey: [UInt8]) {
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let body = line.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let f = body.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let at = f.firstIndex(where: { $0.uppercased() == "DNSKEY" }) else { continue }
            guard at >= 1, f.count >= at + 5, let owner = Name.parse(f[0]), f[0].hasSuffix("."),
                  let flags = UInt16(f[at + 1]), f[at + 2] == "3", let alg = UInt8(f[at + 3]),
                  let key = Data(base64Encoded: f[(at + 4)...].joined()) else {
                throw Diagnostic(file: file, line: i + 1, "expected `zone. IN DNSKEY flags 3 algorithm base64-key`")
            }
            guard flags == 256 || flags == 257 else { throw Diagnostic(file: file, line: i + 1, "DNSKEY flags must be 256 (ZSK) or 257 (KSK/CSK), not \(flags)") }
            return (owner, flags, alg, Array(key))
        }
        throw Diagnostic(file: file, line: 0, "no DNSKEY record in the key file")
    }

    /// The algorithm, raw private key and timing of a `.private` file.
    static func privateFields(_ text: String, file: String) throws(Diagnostic) -> (DNSSECAlgorithm, [UInt8], KeyTiming) {
        var algorithm: DNSSECAlgorithm?
        var raw: [UInt8]?
        var timing = KeyTiming()
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            func when() throws(Diagnostic) -> UInt32 {
                guard let t = KeyFiles.time(parts[1]) else { throw Diagnostic(file: file, line: i + 1, "\(parts[0]) must be YYYYMMDDHHMMSS (UTC)") }
                return t
            }
            switch parts[0] {
            case "Algorithm":
                let n = Int(parts[1].split(separator: " ").first ?? "") ?? -1
                guard let a = UInt8(exactly: n).flatMap(DNSSECAlgorithm.init(rawValue:)) else {
                    throw Diagnostic(file: file, line: i + 1, "\(KeyError.unsupportedAlgorithm(n))")
                }
                algorithm = a
            case "PrivateKey":
                guard let d = Data(base64Encoded: parts[1]) else { throw Diagnostic(file: file, line: i + 1, "PrivateKey is not base64") }
                raw = Array(d)
            case "Created": timing.created = try when()
            case "Publish": timing.publish = try when()
            case "Activate": timing.activate = try when()
            case "Inactive": timing.inactive = try when()
            case "Delete": timing.delete = try when()
            default: break
            }
        }
        guard let algorithm, let raw else { throw Diagnostic(file: file, line: 0, "a private key file needs Algorithm and PrivateKey") }
        return (algorithm, raw, timing)
    }

    /// Writes `key` as `K<zone>+<alg>+<tag>.key` and `.private` in `directory` (the private one
    /// readable by its owner only); returns the base path.
    public static func write(_ key: ZoneKey, directory: String) throws -> String {
        let zone = Name.text(key.zone)
        let base = (directory as NSString).appendingPathComponent(String(format: "K%@+%03d+%05d", zone, Int(key.key.algorithm.rawValue), Int(key.tag)))
        let role = key.isSEP ? "key-signing (or combined) key" : "zone-signing key"
        var pub = "; This is a \(role), keyid \(key.tag), for \(zone)\n"
        pub += "\(zone) IN DNSKEY \(key.flags) 3 \(key.key.algorithm.rawValue) \(Data(key.dnskey[4...]).base64EncodedString())\n"
        var priv = "Private-key-format: v1.3\nAlgorithm: \(key.key.algorithm.rawValue) (\(key.key.algorithm.mnemonic))\n"
        priv += "PrivateKey: \(Data(key.key.raw).base64EncodedString())\n"
        for (label, t) in [("Created", key.timing.created), ("Publish", key.timing.publish), ("Activate", key.timing.activate),
                           ("Inactive", key.timing.inactive), ("Delete", key.timing.delete)] {
            if let t { priv += "\(label): \(time(t))\n" }
        }
        try pub.write(toFile: base + ".key", atomically: true, encoding: .utf8)
        let fd = open(base + ".private", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw KeyError.badKey("cannot write \(base).private: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(priv.utf8)
        guard bytes.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw KeyError.badKey("cannot write \(base).private: \(String(cString: strerror(errno)))")
        }
        return base
    }

    /// YYYYMMDDHHMMSS (UTC) to UNIX seconds; nil if malformed or outside 1970-2106.
    public static func time(_ s: String) -> UInt32? {
        let d = Array(s.utf8)
        guard d.count == 14, d.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        func n(_ a: Int, _ b: Int) -> Int { d[a..<b].reduce(0) { $0 * 10 + Int($1 - 0x30) } }
        let (y, m, day, hh, mm, ss) = (n(0, 4), n(4, 6), n(6, 8), n(8, 10), n(10, 12), n(12, 14))
        guard (1...12).contains(m), (1...31).contains(day), hh < 24, mm < 60, ss < 61 else { return nil }
        // Days from the civil date (Howard Hinnant's algorithm).
        let yy = m <= 2 ? y - 1 : y
        let era = yy / 400
        let yoe = yy - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return UInt32(exactly: days * 86_400 + hh * 3_600 + mm * 60 + ss)
    }

    /// UNIX seconds as YYYYMMDDHHMMSS (UTC).
    public static func time(_ t: UInt32) -> String {
        var tm = tm()
        var seconds = time_t(t)
        gmtime_r(&seconds, &tm)
        return String(format: "%04d%02d%02d%02d%02d%02d", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday),
                      Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec))
    }
}
