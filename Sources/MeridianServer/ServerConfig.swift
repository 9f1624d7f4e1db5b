import QueryLog
import Frontend
import Foundation
import QueryEngine

/// Settings of the DNS front end.
public struct ServerConfig: Sendable {
    /// Directory with the `*.zone` and pool (`*.yaml`) files.
    public var zonesDirectory: String
    /// The admin state file (forced UP/DOWN/DRAIN per member), watched for changes.
    public var statePath: String?
    /// How often the state file is checked for changes, in milliseconds.
    public var statePollMilliseconds: Int
    /// How long the first round of health checks may take before the server answers anyway
    /// (members not checked by then take their checks' `initial` state), in seconds.
    public var startupCheckTimeout: Double
    /// This instance's name in observations and to its peers (`--node-name`).
    public var instanceName: String
    public var listen: [ListenAddress]
    /// Event loops, and UDP sockets per address (SO_REUSEPORT); default one per core.
    public var threads: Int
    /// Close a TCP connection idle this long (RFC 7766 6.2.3), in seconds.
    public var tcpIdleTimeout: Int64
    /// The most TCP connections open at once; more are closed on accept. Lowered at start to
    /// fit the file descriptor limit.
    public var tcpMaxConnections: Int
    /// The most TCP connections from one client prefix (/24, /56).
    public var tcpMaxPerClient: Int
    /// The most octets buffered for one TCP connection, inbound (unparsed frames) and
    /// outbound (unsent answers, after which the server stops reading from that client).
    public var tcpMaxBufferedBytes: Int
    public var engine: EngineConfig
    /// Response rate limiting on UDP (off unless `responsesPerSecond` > 0).
    public var rateLimit: RateLimitConfig
    /// Gossip: where to listen (default: this node's address in the cluster file), the key
    /// file, and whether to run without one.
    public var gossipListen: String?
    public var gossipKeyFile: String?
    public var gossipInsecure: Bool
    /// Reload when files in the zones directory change (`--watch`), once they have been
    /// unchanged for `watchSettleMilliseconds`.
    public var watchZones: Bool
    public var watchSettleMilliseconds: Int
    /// What answers UDP: the batched data plane (default) or SwiftNIO channels.
    public var udpEngine: UDPEngine
    /// DNSSEC: the directory of key files (BIND format; none: zones are served unsigned) and
    /// how long signatures live.
    public var keysDirectory: String?
    public var signing: SigningPolicy
    /// `--check-source`: the addresses checks leave from (at most one per family); empty: the
    /// instance's own (`defaultCheckSource`).
    public var checkSource: [String]
    /// `--dnstap-socket` / `--dnstap-file`: the query log; nil: none.
    public var dnstap: DnstapSettings?
    /// `--latency-passive`: measure the RTT of DNS-over-TCP connections (when cluster.yaml
    /// gives this instance a site).
    public var latencyPassive = true
    /// `--latency-probes`: probe the busiest resolvers that queried this instance (when
    /// cluster.yaml gives it a site).
    public var latencyProbes = true
    /// `--latency-probe-rate`: probes per second, on average.
    public var latencyProbeRate = 5.0
    /// `--latency-probe-interval`: the least time between two probes of one network (seconds).
    public var latencyProbeInterval = 300.0

    public init(
        zonesDirectory: String, statePath: String? = nil, statePollMilliseconds: Int = 250, startupCheckTimeout: Double = 5,
        instanceName: String = ProcessInfo.processInfo.hostName,
        listen: [ListenAddress], threads: Int = System.coreCount, tcpIdleTimeout: Int64 = 10,
        tcpMaxConnections: Int = 1024, tcpMaxPerClient: Int = 64, tcpMaxBufferedBytes: Int = 256 * 1024, engine: EngineConfig = EngineConfig(),
        gossipListen: String? = nil, gossipKeyFile: String? = nil, gossipInsecure: Bool = false,
        rateLimit: RateLimitConfig = RateLimitConfig(), watchZones: Bool = false, watchSettleMilliseconds: Int = 500,
        udpEngine: UDPEngine = .batch, keysDirectory: String? = nil, signing: SigningPolicy = SigningPolicy(), checkSource: [String] = [],
        dnstap: DnstapSettings? = nil
    ) {
        self.dnstap = dnstap
        self.checkSource = checkSource
        self.keysDirectory = keysDirectory
        self.signing = signing
        self.udpEngine = udpEngine
        self.watchZones = watchZones
        self.watchSettleMilliseconds = max(0, watchSettleMilliseconds)
        self.rateLimit = rateLimit
        self.gossipListen = gossipListen
        self.gossipKeyFile = gossipKeyFile
        self.gossipInsecure = gossipInsecure
        self.zonesDirectory = zonesDirectory
        self.statePath = statePath
        self.statePollMilliseconds = max(20, statePollMilliseconds)
        self.startupCheckTimeout = max(0, startupCheckTimeout)
        self.instanceName = instanceName
        self.listen = listen
        self.threads = max(1, threads)
        self.tcpIdleTimeout = tcpIdleTimeout
        self.tcpMaxConnections = tcpMaxConnections
        self.tcpMaxPerClient = max(1, tcpMaxPerClient)
        self.tcpMaxBufferedBytes = max(tcpMaxBufferedBytes, 65537)
        self.engine = engine
    }
}

import NIOCore
