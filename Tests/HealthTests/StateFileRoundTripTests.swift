import Testing

@testable import Health

/// Issue 18, finding 5: a reason beginning with a combining mark, a variation selector or a ZWJ,
/// or a member ending with U+0600, was accepted but written as a line the reader no longer
/// parsed (grapheme clustering merged the mark with the quote or the space). The writer and
/// the reader now agree octet for octet; whatever `patternProblem` and `reasonProblem` accept
/// reads back unchanged.
@Suite struct StateFileRoundTripTests {
    /// Scalars that cluster with their neighbours, quote-like and escape characters, emoji.
    static let hostile: [Unicode.Scalar] = [
        "\u{0301}", "\u{FE0F}", "\u{200D}", "\u{0600}", "\u{1F600}", "\u{1F1E6}", "\"", "\\", "#", "=", " ", "\t",
        "\r", "\u{0}", "\u{85}", "\u{2028}", "\u{00A0}", "a", "/", "*", "?", "[", "]", "é", "\u{E000}",
    ]

    func random(_ n: Int, _ rng: inout some RandomNumberGenerator) -> String {
        var s = String.UnicodeScalarView()
        for _ in 0..<n { s.append(Self.hostile.randomElement(using: &rng)!) }
        return String(s)
    }

    @Test func theCasesFromTheReportReadBack() throws {
        for (pattern, reason) in [
            ("www/fra/x", "\u{0301}combining first"), ("www/fra/x", "\u{FE0F} pasted emoji"), ("www/fra/x", "\u{200D}zwj"),
            ("www/fra/x\u{0600}", "prepended concatenation mark"), ("www/*", "\"\u{0301}"), ("a", "ends in a mark \u{0301}"),
        ] {
            let o = AdminOverride(pattern: pattern, state: .down, reason: reason, file: "api", line: 0)
            let (back, d) = AdminStateFile.parse(o.stateFileLine + "\nnext/* DRAIN\n", file: "state")
            #expect(d.isEmpty, "\(d) for \(o.stateFileLine.unicodeScalars.map { String($0.value, radix: 16) })")
            #expect(back.map(\.pattern) == [pattern, "next/*"])
            #expect(back.first?.reason == reason)
        }
    }

    @Test func everyAcceptedOverrideSurvivesAWriteAndARead() throws {
        var rng = SystemRandomNumberGenerator()
        var accepted = 0
        for _ in 0..<5_000 {
            let pattern = random(Int.random(in: 1...8, using: &rng), &rng)
            let reason = random(Int.random(in: 0...8, using: &rng), &rng)
            guard AdminStateFile.patternProblem(pattern) == nil, AdminStateFile.reasonProblem(reason) == nil else { continue }
            accepted += 1
            let o = AdminOverride(pattern: pattern, state: .drain, weightFactor: 0.5, reason: reason, setAt: 1_796_000_000, file: "api", line: 0)
            let text = "# kept\n" + o.stateFileLine + "\r\nlast/* UP\n"
            let (back, d) = AdminStateFile.parse(text, file: "state")
            #expect(d.isEmpty, "\(d)")
            #expect(back.count == 2)
            #expect(back.first?.pattern == pattern && back.first?.reason == reason, "\(o.stateFileLine.unicodeScalars.map { String($0.value, radix: 16) })")
        }
        #expect(accepted > 100)
    }

    @Test func controlCharactersAreRefusedInGlobsAndReasons() {
        #expect(AdminStateFile.patternProblem("*\u{0}www/fra/192.0.2.11") == "member must not contain control characters")
        #expect(AdminStateFile.patternProblem("a\u{85}b") == "member must not contain control characters")
        #expect(AdminStateFile.patternProblem("a\u{2028}b") != nil)
        #expect(AdminStateFile.reasonProblem("two\u{2028}lines") != nil)
        #expect(AdminStateFile.reasonProblem("tab\tis fine") == nil)
        // A hand-written state file with a NUL in a glob is an error, not a match-everything.
        let (o, d) = AdminStateFile.parse("*\u{0}www/fra/x DOWN\n", file: "state")
        #expect(o.isEmpty && d.first?.message == "member must not contain control characters")
    }
}
