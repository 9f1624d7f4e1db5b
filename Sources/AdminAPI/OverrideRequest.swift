import Diagnostics
import Health
import Foundation
import Hummingbird
import MeridianServer

/// The body of `POST /overrides`:
/// `{"member": "app/*/app-3", "state": "drain", "weight": 50, "reason": "kernel update",
///   "expires": "2026-12-01T06:00:00Z"}` (or `"expires_in": 3600`, seconds, or a duration such
///   as `"2h"`).
struct OverrideRequest: Decodable {
    var member: String
    var state: String
    var weight: Double?
    var reason: String?
    var expires: String?
    var expiresIn: Seconds?

    /// A number of seconds, or a duration in the one format (`DurationText`).
    struct Seconds: Decodable {
        var value: Double?
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let n = try? c.decode(Double.self) { value = n } else { value = DurationText.seconds(try c.decode(String.self)) }
        }
    }

    enum CodingKeys: String, CodingKey {
        case member, state, weight, reason, expires
        case expiresIn = "expires_in"
    }

    static func parse(_ data: Data, now: Double) throws -> AdminOverride {
        let r: OverrideRequest
        do { r = try JSONDecoder().decode(OverrideRequest.self, from: data) } catch {
            throw HTTPError(.badRequest, message: "the body must be JSON like {\"member\": \"POOL/SITE/NAME glob\", \"state\": \"up|down|drain\", \"weight\": 0-100, \"reason\": \"...\", \"expires\": \"RFC 3339\" or \"expires_in\": seconds} (\(Self.why(error)))")
        }
        guard let state = HealthState(rawValue: r.state.lowercased()) else { throw HTTPError(.badRequest, message: "state must be up, down or drain, not '\(r.state)'") }
        var expires: Double?
        if let e = r.expires {
            guard let t = AdminStateFile.parseTime(e) else { throw HTTPError(.badRequest, message: "expires must be an RFC 3339 UTC time such as 2026-12-01T06:00:00Z") }
            expires = t
        }
        if let given = r.expiresIn {
            guard expires == nil else { throw HTTPError(.badRequest, message: "give expires or expires_in, not both") }
            guard let s = given.value, s.isFinite, s > 0, s <= 10 * 365 * 86400 else {
                throw HTTPError(.badRequest, message: "expires_in must be more than 0 and at most 10 years: \(DurationText.forms)")
            }
            expires = now + s
        }
        if let w = r.weight, !(w.isFinite && w >= 0 && w <= 100) { throw HTTPError(.badRequest, message: "weight must be a percentage from 0 to 100") }
        return AdminOverride(pattern: r.member, state: state, weightFactor: r.weight.map { $0 / 100 }, reason: r.reason ?? "", expires: expires, file: "api", line: 0)
    }

    static func why(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let k, _): return "missing \(k.stringValue)"
        case DecodingError.typeMismatch(_, let c): return "wrong type at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.dataCorrupted: return "not JSON"
        default: return "unreadable"
        }
    }

    static func httpError(_ error: OverrideError) -> HTTPError {
        switch error {
        case .invalid(let why): return HTTPError(.badRequest, message: why)
        case .notFound: return HTTPError(.notFound, message: error.description)
        case .noStateFile: return HTTPError(.conflict, message: error.description)
        case .stateFile(let why): return HTTPError(.internalServerError, message: "the state file could not be written: \(why)")
        }
    }
}

/// The body of `POST /measurements`: real-user measurements from a beacon or a log pipeline,
/// `{"measurements": [{"client": "198.51.100.7", "site": "ams", "rtt_ms": 23.5}, ...]}`
/// (`client` is an address or a prefix of at least /24 or /48; `resolver` may be given
/// instead, for what a resolver measured).
struct MeasurementRequest: Decodable {
    struct Item: Decodable {
        var client: String?
        var resolver: String?
        var site: String
        var rttMs: Double

        enum CodingKeys: String, CodingKey {
            case client, resolver, site
            case rttMs = "rtt_ms"
        }
    }

    var measurements: [Item]

    static func parse(_ data: Data) throws -> [MeasurementInput] {
        let r: MeasurementRequest
        do { r = try JSONDecoder().decode(MeasurementRequest.self, from: data) } catch {
            throw HTTPError(.badRequest, message: "the body must be JSON like {\"measurements\": [{\"client\": \"ADDRESS or PREFIX\", \"site\": \"SITE\", \"rtt_ms\": 12.5}]} (\(OverrideRequest.why(error)))")
        }
        return try r.measurements.enumerated().map { i, m in
            guard let network = m.client ?? m.resolver, m.client == nil || m.resolver == nil else {
                throw HTTPError(.badRequest, message: "measurement \(i): give client or resolver (one of them)")
            }
            return MeasurementInput(network: network, site: m.site, rttMs: m.rttMs)
        }
    }
}

/// The reply to `POST /measurements`.
struct MeasurementReply: Encodable {
    var accepted: Int
}
