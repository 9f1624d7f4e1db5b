/// Durations in one format everywhere: pool files, the cluster file, command-line options and
/// the admin API (issue 19). A number of seconds (`1.5`), or a number with a unit: `ms`, `s`,
/// `m`, `h` or `d` (`500ms`, `30s`, `10m`, `2h`, `30d`).
public enum DurationText {
    /// How the format is described in messages.
    public static let forms = "seconds, or a number with ms, s, m, h or d (500ms, 30s, 10m, 2h, 30d)"

    /// The seconds `text` stands for; nil when it is not a duration (or is negative, not
    /// finite, or has spaces inside).
    public static func seconds(_ text: String) -> Double? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        var number = Substring(text)
        var scale = 1.0
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            number = text.dropLast(suffix.count)
            scale = factor
            break
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let v = Double(number) else { return nil }
        let seconds = v * scale
        return seconds.isFinite ? seconds : nil
    }
}
