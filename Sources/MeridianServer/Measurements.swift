import Control
import Foundation
import GeoTopology
import Health
import Selection

/// What is wrong with a `POST /measurements` batch.
public enum MeasurementError: Error, Sendable, Equatable, CustomStringConvertible {
    case tooMany(Int)
    case invalid(index: Int, String)

    public var description: String {
        switch self {
        case .tooMany(let n): return "at most \(Measurements.maxPerRequest) measurements in one request, not \(n)"
        case let .invalid(i, why): return "measurement \(i): \(why)"
        }
    }
}

/// One real-user measurement as posted: a client or resolver address or prefix, the site it
/// reached, and the round-trip time.
public struct MeasurementInput: Sendable, Equatable {
    public var network: String
    public var site: String
    public var rttMs: Double

    public init(network: String, site: String, rttMs: Double) {
        self.network = network
        self.site = site
        self.rttMs = rttMs
    }
}

/// Turns posted measurements into samples for the latency book: the network is cut to its
/// /24 or /48, the site must be a site of a pool, the RTT a number of milliseconds.
public enum Measurements {
    public static let maxPerRequest = 1000

    public static func samples(_ inputs: [MeasurementInput], sites: Set<String>) throws(MeasurementError) -> [LatencySample] {
        guard inputs.count <= maxPerRequest else { throw .tooMany(inputs.count) }
        var out: [LatencySample] = []
        for (i, m) in inputs.enumerated() {
            let text = m.network.split(separator: "/").first.map(String.init) ?? m.network
            guard let address = IPAddress(text) else { throw .invalid(index: i, "'\(m.network.prefix(60))' is not an address or prefix") }
            if let bits = m.network.split(separator: "/").dropFirst().first {
                let need = address.family == .v4 ? LatencyPrefix.v4Length : LatencyPrefix.v6Length
                guard let n = Int(bits), n >= need, n <= address.bitCount else {
                    throw .invalid(index: i, "prefix '\(m.network.prefix(60))' is wider than the /\(need) latency is kept for")
                }
            }
            guard sites.contains(m.site) else { throw .invalid(index: i, "no pool has a site '\(m.site.prefix(64))'") }
            let most = LatencyBook.Settings().maxRttMs
            guard m.rttMs.isFinite, m.rttMs >= 0, m.rttMs <= most else { throw .invalid(index: i, "rtt_ms must be from 0 to \(Int(most))") }
            out.append(LatencySample(prefix: LatencyPrefix(address), site: m.site, rttMs: m.rttMs))
        }
        return out
    }
}

extension DNSServer {
    /// Takes real-user measurements (`POST /measurements`); returns how many.
    public func recordMeasurements(_ inputs: [MeasurementInput]) throws(MeasurementError) -> Int {
        let sites = Set(box.load().pools.pools.pools.flatMap { $0.sites.map(\.name) })
        let samples = try Measurements.samples(inputs, sites: sites)
        supervisor.measured(samples)
        return samples.count
    }
}
