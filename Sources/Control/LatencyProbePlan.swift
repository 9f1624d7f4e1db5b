import GeoTopology
import Health

/// Which resolver addresses this instance probes for latency, and when, as a pure value.
///
/// Only the `candidates` most queried networks of the `LatencyBook` are probed, each at most
/// once per `every` seconds, and only at the address last seen querying from it (never an
/// address that has not queried Meridian). At most `perSecond` probes leave on average, with a
/// burst of one second's worth: a flood of spoofed sources moves the choice of networks but
/// never the rate, and a probe is one datagram (or one SYN) to port 53.
public struct LatencyProbePlan: Sendable {
    public struct Settings: Sendable, Equatable {
        /// Probes per second, on average.
        public var perSecond: Double = 5
        /// The least time between two probes of one network (seconds).
        public var every: Double = 300
        /// How many of the busiest networks are probed.
        public var candidates: Int = 256
        public init() {}
    }

    public let settings: Settings
    private var lastProbed: [LatencyPrefix: Double] = [:]
    private var tokens: Double
    private var refilled: Double?

    public init(settings: Settings = Settings()) {
        self.settings = settings
        tokens = settings.perSecond
    }

    /// The addresses to probe now (seconds): the busiest networks not probed within `every`,
    /// as many as the rate allows.
    public mutating func due(_ book: LatencyBook, now: Double) -> [(LatencyPrefix, IPAddress)] {
        refill(now)
        lastProbed = lastProbed.filter { now - $0.value < settings.every }
        guard tokens >= 1 else { return [] }
        var out: [(LatencyPrefix, IPAddress)] = []
        for prefix in book.busiest(settings.candidates, now: now) where lastProbed[prefix] == nil {
            guard tokens >= 1 else { break }
            guard let address = book.queried(from: prefix) else { continue }
            tokens -= 1
            lastProbed[prefix] = now
            out.append((prefix, address))
        }
        return out
    }

    private mutating func refill(_ now: Double) {
        defer { refilled = now }
        guard let last = refilled else { return }
        tokens = min(settings.perSecond, tokens + max(0, now - last) * settings.perSecond)
    }
}
