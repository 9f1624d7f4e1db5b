import Diagnostics
import Testing
import Yams

@testable import BoundedYAML

/// Issue 18, finding 1: nested YAML overflowed the stack of Yams' recursive composer (SIGSEGV
/// on reload), and aliases expand without bound. These fail without the scan and the budget.
@Suite struct BoundedYAMLTests {
    func failure(_ text: String, limits: BoundedYAML.Limits = .init()) -> Diagnostic? {
        if case let .failure(d) = BoundedYAML.compose(text, file: "p.yaml", limits: limits) { return d }
        return nil
    }

    @Test func flowNestingFiveThousandDeepIsAnErrorNotACrash() {
        let text = "pools:\n  x:\n    names: " + String(repeating: "[", count: 5000) + "a" + String(repeating: "]", count: 5000) + "\n"
        let d = failure(text)
        #expect(d?.line == 3)
        #expect(d?.message == "YAML nested more than 64 deep")
    }

    @Test func blockNestingIsCountedToo() {
        var lines = ["pools:", "  x:"]
        for i in 0..<3000 { lines.append(String(repeating: " ", count: 4 + i) + "-") }
        #expect(failure(lines.joined(separator: "\n") + " a\n")?.message == "YAML nested more than 64 deep")
        let compact = "x: " + String(repeating: "- ", count: 3000) + "a\n"
        #expect(failure("y:\n" + compact.replacingOccurrences(of: "x: ", with: "  ")) != nil)
    }

    @Test func mappingsInFlowAreCounted() {
        let text = "peers: " + String(repeating: "{a: ", count: 5000) + "b" + String(repeating: "}", count: 5000) + "\n"
        #expect(failure(text)?.line == 1)
    }

    @Test func anAliasBombIsAnErrorAfterABoundedWalk() {
        var lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        for i in 1...9 { lines.append("a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]") }
        let d = failure(lines.joined(separator: "\n") + "\n")
        #expect(d?.message == "YAML has more than 1000000 nodes once aliases are expanded")
    }

    @Test func bracketsInsideScalarsQuotesCommentsAndBlockScalarsAreNotNesting() throws {
        let deepText = String(repeating: "[", count: 200)
        let text = """
            a: "\(deepText)"
            b: '\(deepText) it''s'
            c: x\(deepText)  # \(deepText)
            d: |
              \(deepText)
                \(deepText)
            e: >-
              {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{
            f: [1, [2, {g: h}], "]]]"]

            """
        guard case let .success(root) = BoundedYAML.compose(text, file: "p.yaml") else {
            Issue.record("a shallow file was refused")
            return
        }
        #expect(root?.mapping?["f"]?.sequence?.count == 3)
        #expect(root?.mapping?["b"]?.string == "\(deepText) it's")
    }

    @Test func aRealisticPoolFileIsFarBelowTheLimit() {
        let text = """
            regions:
              eu: [192.0.2.0/24]
            pools:
              www:
                names: [www.gslb.example.com.]
                mode: multi-site
                sites:
                  - name: fra
                    members:
                      - {address: 192.0.2.10, weight: 10}
                    checks:
                      - {type: http, port: 80, path: /health, headers: {Host: [www]}}

            """
        #expect(NestingScan.firstLine(deeperThan: 24, in: text) == nil)
        guard case .success = BoundedYAML.compose(text, file: "p.yaml") else {
            Issue.record("refused")
            return
        }
    }

    @Test func syntaxErrorsKeepTheirLine() {
        let d = failure("pools:\n  p: [\n")
        #expect(d?.line == 3)
        #expect(d?.message.hasPrefix("YAML: ") == true)
    }

    @Test func theEstimateNeverUnderCounts() throws {
        // Nest flow and block styles at random, and compare the estimate with the real depth.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let depth = Int.random(in: 1...30, using: &rng)
            var text = ""
            var indent = 0
            var flowOpen = 0
            for level in 0..<depth {
                if flowOpen > 0 || Bool.random(using: &rng) {
                    text += Bool.random(using: &rng) ? "[" : "{k\(level): "
                    flowOpen += 1
                } else {
                    text += "\n" + String(repeating: " ", count: indent) + (Bool.random(using: &rng) ? "- " : "k\(level): ")
                    indent += 2
                }
            }
            text += "x"
            // Close the flow collections in reverse order.
            var closers = ""
            for ch in text.reversed() where ch == "[" || ch == "{" { closers += ch == "[" ? "]" : "}" }
            text += closers + "\n"
            guard let root = try? Yams.compose(yaml: text) else { continue }
            let real = Self.depth(root)
            #expect(NestingScan.firstLine(deeperThan: real - 1, in: text) != nil, "estimate below \(real) for:\n\(text)")
        }
    }

    static func depth(_ n: Node) -> Int {
        switch n {
        case .scalar: return 0
        case let .sequence(s): return 1 + (s.map(depth).max() ?? 0)
        case let .mapping(m): return 1 + (m.map { max(depth($0.key), depth($0.value)) }.max() ?? 0)
        }
    }
}
