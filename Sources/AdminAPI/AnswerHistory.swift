import Foundation

/// Answers per second per pool and site over the last minutes, for the status page's
/// sparklines: the `meridian_pool_answers_total` counters read back from the registry every
/// `interval` seconds (off every event loop), the last `samples` readings kept. Rates come
/// from differences of the counters, as Prometheus' `rate()` does; a counter that goes down
/// (a reload renamed a site) counts as a reset.
public actor AnswerHistory {
    public let interval: Double
    public let samples: Int
    private var readings: [(at: Double, totals: [String: Double])] = []

    public init(interval: Double = 10, samples: Int = 61) {
        self.interval = interval
        self.samples = max(2, samples)
    }

    /// The key of a pool's total (`pool`) and of one of its sites (`pool/site`).
    public static func key(pool: String, site: String? = nil) -> String { site.map { "\(pool)/\($0)" } ?? pool }

    /// One reading of the exposition text.
    public func record(_ series: [MetricsText.Series: Double], at now: Double) {
        var totals: [String: Double] = [:]
        for (s, v) in series where s.name == "meridian_pool_answers_total" {
            guard let pool = s.labels["pool"] else { continue }
            totals[Self.key(pool: pool), default: 0] += v
            if let site = s.labels["site"], site != "-" { totals[Self.key(pool: pool, site: site), default: 0] += v }
        }
        readings.append((now, totals))
        if readings.count > samples { readings.removeFirst(readings.count - samples) }
    }

    /// Answers per second between consecutive readings, oldest first, for every key.
    public func rates() -> [String: [Double]] {
        guard readings.count >= 2 else { return [:] }
        var out: [String: [Double]] = [:]
        let keys = Set(readings.last!.totals.keys)
        for i in 1..<readings.count {
            let (t0, a) = readings[i - 1]
            let (t1, b) = readings[i]
            let dt = max(t1 - t0, 0.001)
            for k in keys {
                let now = b[k] ?? 0
                let before = a[k] ?? 0
                out[k, default: []].append((now >= before ? now - before : now) / dt)
            }
        }
        return out
    }
}

/// A sparkline as inline SVG, server-rendered: the points scaled to the largest, with the
/// last rate as text beside it. Only numbers go into the markup.
public enum Sparkline {
    public static func svg(_ rates: [Double], width: Int = 120, height: Int = 22) -> String {
        guard rates.count >= 1 else { return "<small class=\"spark-none\">no rate yet</small>" }
        let top = max(rates.max() ?? 0, 1)
        let step = rates.count > 1 ? Double(width) / Double(rates.count - 1) : 0
        let points = rates.enumerated().map { i, r in
            String(format: "%.1f,%.1f", Double(i) * step, Double(height) - 1 - (r / top) * Double(height - 2))
        }.joined(separator: " ")
        let last = rates.last ?? 0
        return "<svg class=\"spark\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"answers per second\">"
            + "<polyline fill=\"none\" stroke=\"#1565c0\" stroke-width=\"1.5\" points=\"\(points)\"/></svg>"
            + " <small class=\"spark-rate\" data-rate=\"\(String(format: "%.2f", last))\">\(String(format: last < 10 ? "%.1f" : "%.0f", last))/s</small>"
    }
}
