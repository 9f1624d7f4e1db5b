import Foundation
import GeoTopology

/// How a pool turns health and client location into an answer.
public enum PoolMode: String, Sendable, CaseIterable {
    /// Sites in order (topology/GeoIP/nearest); the first usable site answers; backup sites last.
    case multiSite = "multi-site"
    /// Application nodes answered directly: up to `max_answers` healthy nodes by weight.
    case direct
    /// Every usable site serves at once, each chosen in proportion to its weight.
    case activeActive = "active-active"
}

/// How direct-to-node pools pick nodes.
public enum SelectionMethod: String, Sendable, CaseIterable {
    /// A random draw weighted by effective weight, per query.
    case weightedShuffle = "weighted-shuffle"
    /// The client subnet hashed onto a consistent-hash table: the same subnet gets the same
    /// nodes from every instance, and removing a node moves only that node's share.
    case consistentHash = "consistent-hash"
}

/// How a site's addresses are ordered in an answer (multi-site and active-active pools).
/// Most clients use the first address, so the first one decides where the load goes.
public enum AddressOrder: String, Sendable, CaseIterable {
    /// The first address is a weighted draw per answer (effective weights: static weight x
    /// agent or admin factor), the rest follow in turn.
    case weighted
    /// The same weighted draw, keyed by the client subnet (`hash_prefix`): one subnet always
    /// gets the same first address, and the subnets split by weight.
    case sticky
    /// The order of the pool file.
    case fixed
}

/// How many members of a site must be healthy for the site to be usable.
public enum MinUp: Sendable, Equatable, CustomStringConvertible {
    case count(Int)
    /// A fraction of the site's members, rounded up.
    case fraction(Double)

    public func satisfied(healthy: Int, total: Int) -> Bool {
        switch self {
        case .count(let n): return healthy >= min(n, max(total, 1))
        case .fraction(let f): return total > 0 && Double(healthy) >= (f * Double(total)).rounded(.up)
        }
    }

    public var description: String {
        switch self {
        case .count(let n): return "\(n)"
        case .fraction(let f): return "\(Int((f * 100).rounded()))%"
        }
    }
}

/// What a pool answers when none of its members can be used.
public enum AllDownPolicy: Sendable, Equatable, CustomStringConvertible {
    /// Answer every member as if healthy (the default): better a maybe-dead address than none.
    case failOpen
    /// NOERROR with no records (NODATA), SOA in authority.
    case nodata
    /// Answer from another pool.
    case fallbackPool(Int)
    /// Answer fixed addresses.
    case addresses([IPAddress])

    public var description: String {
        switch self {
        case .failOpen: return "fail-open"
        case .nodata: return "nodata"
        case .fallbackPool(let p): return "fallback pool #\(p)"
        case .addresses(let a): return "static \(a.map(\.description).joined(separator: ", "))"
        }
    }
}

/// The kinds of health check.
public enum CheckKind: String, Sendable, CaseIterable {
    case tcp
    case http
    case https
    case dns
    case exec
}

/// One health check, run against every member of its pool (at the member's `monitor` address
/// when it has one).
public struct CheckSpec: Sendable, Equatable {
    public var kind: CheckKind
    /// Port checked; default 80 (http), 443 (https), 53 (dns); required for tcp.
    public var port: Int
    /// Seconds between checks of one member, and the time one check may take.
    public var interval: Double
    public var timeout: Double
    /// Consecutive successes to come up, failures to go down.
    public var rise: Int
    public var fall: Int
    /// The state a member has until its first result (when it cannot be checked in time at start).
    public var initialUp: Bool
    // HTTP(S)
    public var method: String = "GET"
    public var path: String = "/"
    public var host: String?
    public var expectStatus: [Int] = [200]
    public var bodyContains: String?
    public var bodyRegex: String?
    public var verifyTLS: Bool = true
    public var sni: String?
    public var clientCert: String?
    public var clientKey: String?
    /// Keep the connection open between checks of one member (HTTP keep-alive) instead of a
    /// new connection (and TLS handshake) per check.
    public var keepAlive: Bool = false
    // DNS
    public var queryName: [UInt8] = [0]
    public var queryType: UInt16 = 6
    public var expectRcode: Int = 0
    public var expectAnswer: Bool = false
    // exec: argv; {address} and {port} are replaced, no shell is involved.
    public var command: [String] = []
    public var line: Int

    public init(kind: CheckKind, port: Int, interval: Double, timeout: Double, rise: Int, fall: Int, initialUp: Bool, line: Int) {
        self.kind = kind
        self.port = port
        self.interval = interval
        self.timeout = timeout
        self.rise = rise
        self.fall = fall
        self.initialUp = initialUp
        self.line = line
    }

    /// A short label for logs: `http:80/health`.
    public var label: String {
        switch kind {
        case .tcp: return "tcp:\(port)"
        case .http, .https: return "\(kind.rawValue):\(port)\(path)"
        case .dns: return "dns:\(port)"
        case .exec: return "exec:\(command.first.map { ($0 as NSString).lastPathComponent } ?? "?")"
        }
    }
}

/// The feedback agent of a pool's members (HAProxy agent-check protocol).
public struct AgentSpec: Sendable, Equatable {
    public var port: Int
    /// Sent after connecting, before reading (with `\n` added when missing).
    public var send: String?
    public var interval: Double
    public var timeout: Double
    /// How long the last good reply stays valid when the agent stops answering properly.
    public var maxAge: Double
    public var line: Int

    public init(port: Int, send: String?, interval: Double, timeout: Double, maxAge: Double, line: Int) {
        self.port = port
        self.send = send
        self.interval = interval
        self.timeout = timeout
        self.maxAge = maxAge
        self.line = line
    }
}

/// One answerable thing: an address (or, in CNAME pools, a target name) with a weight.
public struct Member: Sendable, Equatable {
    /// `POOL/SITE/NAME`: what health state and admin overrides refer to.
    public var id: String
    public var name: String
    public var site: Int
    public var address: IPAddress?
    /// The CNAME target (uncompressed wire name) in CNAME pools.
    public var target: [UInt8]?
    /// Static weight, 1...10000.
    public var weight: Double
    /// The address health checks and the agent connect to, when not `address`.
    public var monitor: IPAddress?
    public var line: Int

    /// The address checks go to: the monitor address, else the answered address.
    public var checkAddress: IPAddress? { monitor ?? address }
}

/// A data centre or load-balancer group.
public struct Site: Sendable, Equatable {
    public var name: String
    /// Indices into the pool's `members`.
    public var members: [Int]
    public var latitude: Double?
    public var longitude: Double?
    /// Used only when no other site is usable.
    public var backup: Bool
    /// Share of traffic in active-active pools, 1...10000.
    public var weight: Double
    public var minUp: MinUp
    public var line: Int
    /// `depends_on`: member ids (`POOL/SITE/NAME`, any pool) that every member of this site
    /// goes down with.
    public var dependsOn: [String] = []
}

/// Which site order a client gets: topology region first, then GeoIP (subdivision, country,
/// continent), then `nearest`, then the default order.
public struct SiteOrderRules: Sendable, Equatable {
    /// Region index -> site order.
    public var topology: [Int: [Int]] = [:]
    /// `US-CA` -> order.
    public var subdivisions: [String: [Int]] = [:]
    public var countries: [String: [Int]] = [:]
    public var continents: [String: [Int]] = [:]
    /// Order sites by great-circle distance from the client's GeoIP location.
    public var nearest = false
    public var defaultOrder: [Int] = []
    /// `latency:`: sites by the RTT the group measured from the client's network first.
    public var latency: LatencyRule?

    public var usesGeo: Bool { nearest || !subdivisions.isEmpty || !countries.isEmpty || !continents.isEmpty }
    public var usesTopology: Bool { !topology.isEmpty }
}

/// `order: {latency: {tolerance_ms, min_samples, fallback}}`: sites sorted by the round-trip
/// time measured from the client's /24 or /48 (ECS, else the resolver); sites within
/// `toleranceMs` of the best share by weight; a network without `minSamples` samples to any
/// site gets the fallback order.
public struct LatencyRule: Sendable, Equatable {
    public enum Fallback: String, Sendable, CaseIterable {
        /// The pool's other order rules: topology, then GeoIP (`geo`, `nearest`), then `default`.
        case geo
        /// The `default` order alone.
        case `default`
    }

    public var toleranceMs: Double
    public var minSamples: Int
    public var fallback: Fallback

    public init(toleranceMs: Double = 10, minSamples: Int = 5, fallback: Fallback = .geo) {
        self.toleranceMs = toleranceMs
        self.minSamples = minSamples
        self.fallback = fallback
    }
}

/// A load-balanced pool, as validated from a pool file.
public struct Pool: Sendable {
    public var name: String
    /// The names bound to this pool (uncompressed wire form, case as written).
    public var names: [[UInt8]]
    public var mode: PoolMode
    public var ttl: UInt32
    /// TTL while any member is down, so clients come back soon after a failover.
    public var degradedTTL: UInt32
    public var maxAnswers: Int
    public var method: SelectionMethod
    public var hashPrefixV4: Int
    public var hashPrefixV6: Int
    /// Direct mode: prefer nodes in the client's site order before spilling over.
    public var siteAffinity: Bool
    /// Multi-site and active-active: how a site's addresses are ordered.
    public var addressOrder: AddressOrder = .weighted
    public var sites: [Site]
    public var members: [Member]
    public var order: SiteOrderRules
    public var allDown: AllDownPolicy
    /// The pool answers CNAME targets instead of addresses.
    public var isCNAME: Bool
    /// Health checks of every member; all must pass, or `healthyIf` of them.
    public var checks: [CheckSpec] = []
    /// `healthy_if: K of N`: an observer finds a member healthy when K of its N checks pass
    /// (nil: all of them).
    public var healthyIf: Int?
    /// `depends_on`: member ids every member of the pool goes down with.
    public var dependsOn: [String] = []
    public var agent: AgentSpec?
    public var file: String
    public var line: Int
}

/// A named set of client networks (topology).
public struct Region: Sendable, Equatable {
    public var name: String
    public var cidrs: [CIDR]
}

/// A name bound to a pool, with where the binding was written.
public struct Binding: Sendable {
    public var name: [UInt8]
    public var pool: Int
    public var file: String
    public var line: Int
}

/// Everything the pool files say, validated.
public struct PoolSet: Sendable {
    public var regions: [Region]
    /// Client address -> region index, longest prefix first.
    public var topology: PrefixTrie
    public var pools: [Pool]
    public var bindings: [Binding]
    public var geo: GeoDatabase?

    public init(regions: [Region] = [], pools: [Pool] = [], bindings: [Binding] = [], geo: GeoDatabase? = nil) {
        self.regions = regions
        self.pools = pools
        self.bindings = bindings
        self.geo = geo
        var t = PrefixTrie()
        for (i, r) in regions.enumerated() { for c in r.cidrs { t.insert(c, value: i) } }
        topology = t
    }

    public static let empty = PoolSet()

    public func pool(named name: String) -> Int? { pools.firstIndex { $0.name == name } }
}
