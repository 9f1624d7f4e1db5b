import AdminAPI
import Foundation
import Testing

/// Every metric named in the sources has help text in `MetricCatalog` (so `/metrics` has a
/// `# HELP` line for it), and the catalog names nothing the sources do not export.
@Suite struct MetricCatalogTests {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources")

    static func namesInSources() throws -> Set<String> {
        var names = Set<String>()
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)
        let pattern = try Regex(#""((?:meridian|process)_[a-z_]+)""#)
        while let url = files?.nextObject() as? URL {
            guard url.pathExtension == "swift", url.lastPathComponent != "MetricCatalog.swift" else { continue }
            let text = try String(contentsOf: url, encoding: .utf8)
            for m in text.matches(of: pattern) { names.insert(String(m.output[1].substring ?? "")) }
        }
        return names
    }

    @Test func everyMetricHasHelpText() throws {
        let names = try Self.namesInSources()
        #expect(names.count > 20)
        #expect(names.subtracting(MetricCatalog.help.keys).sorted() == [])
        #expect(Set(MetricCatalog.help.keys).subtracting(names).sorted() == [])
        #expect(MetricCatalog.help.values.allSatisfy { !$0.isEmpty && !$0.contains("\n") })
    }
}
