import Diagnostics
import DNSWire
import Foundation

/// Loads every zone in a directory. A zone lives in a file named after its origin with the
/// extension `.zone` (`gslb.example.com.zone` holds `gslb.example.com.`), as gdnsd does; other
/// files (included fragments, pool files) are read only when a zone refers to them.
public enum ZoneLoader {
    /// The result of loading: the zones when there were no errors, and every diagnostic.
    public struct Outcome: Sendable {
        public var zones: ZoneSet?
        public var diagnostics: [Diagnostic]
        public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }
    }

    /// The zone files in `directory`, sorted, with the origin each file name gives.
    public static func zoneFiles(in directory: String) throws(ZoneLoadError) -> [(path: String, origin: String)] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw .unreadable(path: directory, reason: "cannot list directory (\(error.localizedDescription))")
        }
        return names.filter { $0.hasSuffix(".zone") && !$0.hasPrefix(".") }.sorted().map { name in
            let origin = String(name.dropLast(5))
            return ((directory as NSString).appendingPathComponent(name), origin.hasSuffix(".") ? origin : origin + ".")
        }
    }

    /// Loads all zones in `directory`, with pool-bound names. Never throws for bad zone
    /// content: that is in the outcome.
    public static func load(directory: String, bindings: [NameBinding] = []) throws(ZoneLoadError) -> Outcome {
        let files = try zoneFiles(in: directory)
        var outcome = load(files: files, bindings: bindings)
        if files.isEmpty {
            outcome.diagnostics.append(Diagnostic(file: directory, line: 0, "no zone files (*.zone) found"))
            outcome.zones = nil
        }
        return outcome
    }

    /// Loads the given zone files. Each binding goes to the deepest zone holding its name; a
    /// binding outside every zone is an error at the binding.
    public static func load(files: [(path: String, origin: String)], bindings: [NameBinding] = []) -> Outcome {
        var zones: [Zone] = []
        var diags: [Diagnostic] = []
        var seen: [[UInt8]: String] = [:]
        let origins = files.compactMap { Name.parse($0.origin).map(Name.lowercased) }
        var bindingsByZone: [[UInt8]: [NameBinding]] = [:]
        for b in bindings {
            let key = Name.lowercased(b.name)
            guard let zone = origins.filter({ Name.isSubdomain(key, of: $0) }).max(by: { $0.count < $1.count }) else {
                diags.append(Diagnostic(file: b.file, line: b.line, "\(Name.text(b.name)) is not in any served zone (zones: \(files.map(\.origin).joined(separator: ", ")))"))
                continue
            }
            bindingsByZone[zone, default: []].append(b)
        }
        for (path, origin) in files {
            guard let originWire = Name.parse(origin) else {
                diags.append(Diagnostic(file: path, line: 0, "file name does not give a valid zone name (\(origin))"))
                continue
            }
            let key = Name.lowercased(originWire)
            if let other = seen[key] {
                diags.append(Diagnostic(file: path, line: 0, "zone \(origin) is also loaded from \(other)"))
                continue
            }
            seen[key] = path
            var info = stat()
            let size = stat(path, &info) == 0 ? Int(info.st_size) : 0
            let sink = ZoneAccumulator(origin: originWire, expectedBytes: size)
            let parsed = RecordParser.parse(path: path, origin: origin, into: sink)
            diags += parsed
            guard !parsed.contains(where: { $0.severity == .error }) else { continue }
            let built = ZoneBuilder.build(sink, file: path, bindings: bindingsByZone[key] ?? [])
            diags += built.diagnostics
            if let z = built.zone { zones.append(z) }
        }
        let ok = !diags.contains { $0.severity == .error }
        return Outcome(zones: ok ? ZoneSet(zones: zones) : nil, diagnostics: diags)
    }

    /// Loads one zone from text, for tests and tools.
    public static func load(text: String, origin: String, file: String = "<text>", bindings: [NameBinding] = []) -> (zone: Zone?, diagnostics: [Diagnostic]) {
        let sink = ZoneAccumulator(origin: Name.parse(origin) ?? [0], expectedBytes: text.utf8.count)
        let parsed = RecordParser.parse(text: text, file: file, origin: origin, into: sink)
        guard !parsed.contains(where: { $0.severity == .error }) else { return (nil, parsed) }
        let built = ZoneBuilder.build(sink, file: file, bindings: bindings)
        return (built.zone, parsed + built.diagnostics)
    }
}
