import DNSSEC
import DNSWire
import Selection
import ZoneStore

/// What the server says about itself (RFC 5001 NSID; CH TXT `id.server`, `hostname.bind`,
/// `version.bind`, `version.server`). Each is off unless configured.
public struct ServerIdentity: Sendable, Equatable {
    /// NSID payload returned to queries that ask for it (RFC 5001 2.3).
    public var nsid: [UInt8]?
    /// Answer for CH TXT `id.server.` and `hostname.bind.`.
    public var identity: String?
    /// Answer for CH TXT `version.bind.` and `version.server.`; off by default.
    public var version: String?

    public init(nsid: [UInt8]? = nil, identity: String? = nil, version: String? = nil) {
        self.nsid = nsid
        self.identity = identity
        self.version = version
    }
}

/// Answer-path settings that a reload may change.
public struct EngineConfig: Sendable, Equatable {
    /// The largest UDP response sent, whatever the client offers (RFC 6891 6.2.5; 1232 is the
    /// DNS Flag Day 2020 value that avoids IP fragmentation).
    public var maxUDPPayload: Int
    /// The longest CNAME chain followed inside the served zones (RFC 1034 4.3.2 step 3a).
    public var maxCNAMEChain: Int
    public var identity: ServerIdentity
    /// DNS Cookies (RFC 7873, RFC 9018); off when it has no secret.
    public var cookies: CookieConfig

    /// The longest NSID served: it must fit, with the OPT record, in a 512-octet answer.
    public static let maxNSID = 128

    public init(maxUDPPayload: Int = 1232, maxCNAMEChain: Int = 12, identity: ServerIdentity = ServerIdentity(), cookies: CookieConfig = CookieConfig(secrets: [])) {
        self.cookies = cookies
        self.maxUDPPayload = max(512, min(maxUDPPayload, 65535))
        self.maxCNAMEChain = max(0, min(maxCNAMEChain, 64))
        var id = identity
        // A second line of defence behind `serve`'s validation: never more than fits.
        id.nsid = id.nsid.map { Array($0.prefix(EngineConfig.maxNSID)) }
        self.identity = id
    }
}

/// Everything the answer path reads, immutable. A reload builds a new one and publishes it
/// atomically; a query reads one snapshot from start to end.
public final class Snapshot: Sendable {
    public let zones: ZoneSet
    /// Pools combined with the current health view.
    public let pools: PoolsRuntime
    public let config: EngineConfig
    /// Increases with each published snapshot (a configuration, a health view, a key event):
    /// what readers compare to see that something changed.
    public let generation: Int
    /// Increases with each configuration loaded (start, reload); a health view or a key event
    /// keeps it.
    public let configGeneration: Int
    /// Per zone (as `zones.zones`), its signer when it has active keys.
    public let signers: [ZoneSigner?]
    /// Every key loaded, and the signing policy: a key's timing event rebuilds `signers`.
    public let keys: [ZoneKey]
    public let signing: SigningPolicy

    public init(zones: ZoneSet, pools: PoolsRuntime = .empty, config: EngineConfig = EngineConfig(), generation: Int = 0,
                keys: [ZoneKey] = [], signing: SigningPolicy = SigningPolicy(), now: UInt32 = 0, signers: [ZoneSigner?]? = nil,
                configGeneration: Int? = nil) {
        self.configGeneration = configGeneration ?? max(1, generation)
        self.zones = zones
        self.pools = pools
        self.config = config
        self.generation = generation
        self.keys = keys
        self.signing = signing
        self.signers = signers ?? zones.zones.map { keys.isEmpty ? nil : ZoneSigner(apex: $0.origin, keys: keys, now: now, policy: signing) }
    }

    /// The same zones and configuration with new pool runtime (a health change), published as
    /// `generation`; `configGeneration` replaces the configuration's number when given.
    public func with(pools: PoolsRuntime, generation: Int, configGeneration: Int? = nil) -> Snapshot {
        Snapshot(
            zones: zones, pools: pools, config: config, generation: generation, keys: keys, signing: signing, signers: signers,
            configGeneration: configGeneration ?? self.configGeneration)
    }

    /// The same data with the signers as the keys' timing has them at `now` (a key was
    /// published, activated, retired or deleted).
    public func resigned(at now: UInt32, generation: Int) -> Snapshot {
        Snapshot(zones: zones, pools: pools, config: config, generation: generation, keys: keys, signing: signing, now: now, configGeneration: configGeneration)
    }

    /// Whether the keys' state at `now` differs from the state these signers were built for.
    public func keyStateChanged(since then: UInt32, now: UInt32) -> Bool {
        !keys.isEmpty && ZoneSigner.state(of: keys, at: then) != ZoneSigner.state(of: keys, at: now)
    }
}

/// The transport a query came over: it sets the size limit and what is served (RFC 7766).
public enum Transport: Sendable {
    case udp
    case tcp
}

/// What happened to one query, for counters and the caller's write.
public struct QueryOutcome: Sendable, Equatable {
    /// Nothing is sent back (short packet, a response, or unparseable header).
    public var dropped: Bool
    /// Length of the response at the start of the buffer's storage.
    public var length: Int
    /// The full RCODE, extended RCODEs included (BADVERS = 16).
    public var rcode: UInt16
    /// QTYPE, or 0 when the question could not be read.
    public var qtype: UInt16
    public var truncated: Bool
    /// The query carried a valid server cookie (RFC 7873): its source is not spoofed.
    public var cookieValid = false
    /// The pool, site and route of the (last) pool answer, if a pool answered.
    public var pool = PoolAnswerSource.none
    /// RRSIGs made for this answer (signature cache misses) and taken from the cache.
    public var signaturesMade = 0
    public var signatureHits = 0
    /// Where the answer's first name was found, and how many answer records it has: what its
    /// rate-limiting class (`rateClass`) is made of, only when limiting is on.
    public var rateSource = RateSource.none
    public var answers: UInt16 = 0
    /// Where the question ends in the response (12 when it has none): a TC=1 slip keeps this.
    public var questionEnd = 12

    public init(dropped: Bool, length: Int, rcode: UInt16, qtype: UInt16, truncated: Bool) {
        self.dropped = dropped
        self.length = length
        self.rcode = rcode
        self.qtype = qtype
        self.truncated = truncated
    }

    public static let drop = QueryOutcome(dropped: true, length: 0, rcode: 0, qtype: 0, truncated: false)
}

/// Where a pool answer came from, in four small integers so the outcome stays a plain value:
/// the answering pool's index (-1: no pool answered), its site (-1: none), the route, and
/// whether the bound pool fell back to another pool.
public struct PoolAnswerSource: Sendable, Equatable {
    public var pool: Int32
    public var site: Int32
    public var route: AnswerRoute
    public var fellBack: Bool

    public static let none = PoolAnswerSource(pool: -1, site: -1, route: .site, fellBack: false)

    public init(pool: Int32, site: Int32, route: AnswerRoute, fellBack: Bool) {
        self.pool = pool
        self.site = site
        self.route = route
        self.fellBack = fellBack
    }

    init(_ o: SelectionOutcome) {
        self.init(pool: Int32(truncatingIfNeeded: o.pool), site: Int32(truncatingIfNeeded: o.site), route: o.route, fellBack: o.fellBack)
    }
}
