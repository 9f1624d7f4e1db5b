import Diagnostics
import Testing

/// Durations in one format everywhere (issue 19).
@Suite struct DurationTextTests {
    @Test func unitsAndPlainSeconds() {
        #expect(DurationText.seconds("1.5") == 1.5)
        #expect(DurationText.seconds("500ms") == 0.5)
        #expect(DurationText.seconds("30s") == 30)
        #expect(DurationText.seconds("10m") == 600)
        #expect(DurationText.seconds("2h") == 7200)
        #expect(DurationText.seconds("30d") == 2_592_000)
    }

    @Test func whatIsNotADuration() {
        for bad in ["", "ms", "-1s", "1 s", "1e3", "nan", "inf", "1w", "1.2.3s", "5 m", "١s"] {
            #expect(DurationText.seconds(bad) == nil, "\(bad)")
        }
    }
}
