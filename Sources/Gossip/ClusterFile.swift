import Health
import Diagnostics
import Foundation
import BoundedYAML
import Yams

/// The cluster file (`cluster.yaml` beside the pool files): who the peers are, how their
/// views become one verdict, and how many of them probe each member.
///
///     peers:
///       ns1: 127.0.0.1:7946
///       ns2: 127.0.0.2:7946
///       ns3: 127.0.0.3:7946
///     verdict: majority     # majority (default), any, all, or a count
///     probers: 2            # peers probing each member (default 2), or all
///     timings:              # optional, seconds (memberlist's LAN defaults)
///       probe_interval: 1
///       probe_timeout: 0.5
///       suspicion_mult: 4
///       gossip_interval: 0.2
///       push_pull_interval: 30
public struct ClusterConfig: Sendable, Equatable {
    /// Node name -> gossip address (`HOST:PORT`), this instance included.
    public var peers: [String: String]
    public var verdict: VerdictPolicy
    /// nil = every live peer probes every member.
    public var probers: Int?
    public var settings: SWIMSettings
    public var file: String
    /// Each peer's site, region and role (the long peer form); peers in the short form are
    /// servers with neither.
    public var placement: [String: PeerPlacement] = [:]
    /// `probers_per_region`: this many probers in each region instead of `probers` overall.
    public var probersPerRegion: Int?

    /// Each peer's region, for the verdict and the probers.
    public var regions: RegionMap { RegionMap(placement.compactMapValues(\.region)) }

    /// The instance's role (a server unless the cluster file says observer).
    public func role(of peer: String) -> PeerPlacement.Role { placement[peer]?.role ?? .server }

    public init(peers: [String: String], verdict: VerdictPolicy = .majority, probers: Int? = 2, settings: SWIMSettings = SWIMSettings(), file: String = "") {
        self.peers = peers
        self.verdict = verdict
        self.probers = probers
        self.settings = settings
        self.file = file
    }

    /// Reads `path`; nil with no diagnostics when the file does not exist (a lone instance).
    public static func load(path: String) -> (config: ClusterConfig?, diagnostics: [Diagnostic]) {
        do throws(OperatorFile.Failure) {
            return parse(try OperatorFile.text(path, maxBytes: OperatorFile.Limit.clusterFile), file: path)
        } catch .missing {
            return (nil, [])
        } catch {
            return (nil, [Diagnostic(file: path, line: 0, "the cluster file: \(error)")])
        }
    }

    public static func parse(_ text: String, file: String) -> (config: ClusterConfig?, diagnostics: [Diagnostic]) {
        var diags: [Diagnostic] = []
        func err(_ line: Int, _ m: String) { diags.append(Diagnostic(file: file, line: line, m)) }
        let root: Node?
        switch BoundedYAML.compose(text, file: file) {
        case let .success(node): root = node
        case let .failure(d): return (nil, [d])
        }
        guard let root, let top = root.mapping else { return (nil, [Diagnostic(file: file, line: 1, "the cluster file must be a mapping with 'peers'")]) }
        var config = ClusterConfig(peers: [:], file: file)
        var sawPeers = false
        for (k, v) in top {
            let line = k.mark?.line ?? 0
            switch k.scalar?.string ?? "" {
            case "peers":
                sawPeers = true
                guard let m = v.mapping else { err(line, "peers must map node names to HOST:PORT"); continue }
                for (pk, pv) in m {
                    let name = pk.scalar?.string ?? ""
                    let pline = pk.mark?.line ?? line
                    guard isValidName(name) else { err(pline, "peer name '\(name.prefix(80))' must be 1-\(Limits.name) letters, digits, '.', '-' or '_'"); continue }
                    guard let (a, placed) = PeerPlacement.parse(pv, peer: name, line: pline, file: file, &diags) else { continue }
                    if config.peers[name] != nil { err(pline, "peer \(name) is listed twice"); continue }
                    if let other = config.peers.first(where: { $0.value == a }) { err(pline, "peer \(name) has the same address as \(other.key)"); continue }
                    config.peers[name] = a
                    if placed != PeerPlacement() { config.placement[name] = placed }
                }
            case "verdict":
                guard let p = VerdictPolicy.parse(v) else {
                    err(line, "verdict must be majority, any, all, a positive count, or {regions: {policy: P, within: Q}} with P and Q one of those")
                    continue
                }
                config.verdict = p
            case "probers":
                let s = v.scalar?.string ?? ""
                if s == "all" { config.probers = nil } else if let n = Int(s), n >= 1, n <= 1000 { config.probers = n } else {
                    err(line, "probers must be a count from 1 to 1000 or 'all', not '\(s.prefix(40))'")
                }
            case "probers_per_region":
                guard let n = v.scalar.flatMap({ Int($0.string) }), (1...100).contains(n) else { err(line, "probers_per_region must be a count from 1 to 100"); continue }
                config.probersPerRegion = n
            case "timings":
                config.settings = timings(v, file: file, &diags)
            case let other:
                err(line, "unknown key '\(other.prefix(40))' in the cluster file (expected one of: peers, probers, probers_per_region, timings, verdict)")
            }
        }
        if !sawPeers { err(1, "the cluster file has no 'peers'") }
        if config.peers.count > Limits.members { err(1, "at most \(Limits.members) peers") }
        if case .regions = config.verdict, config.regions.isEmpty { err(1, "verdict regions needs peers with a region ({address: ..., region: ...})") }
        if config.probersPerRegion != nil, config.regions.isEmpty { err(1, "probers_per_region needs peers with a region") }
        return (diags.contains { $0.severity == .error } ? nil : config, diags)
    }

    static func timings(_ n: Node, file: String, _ diags: inout [Diagnostic]) -> SWIMSettings {
        var s = SWIMSettings()
        guard let m = n.mapping else {
            diags.append(Diagnostic(file: file, line: n.mark?.line ?? 0, "timings must be a mapping"))
            return s
        }
        let bounds: [String: ClosedRange<Double>] = [
            "probe_interval": 0.01...60, "probe_timeout": 0.005...30, "suspicion_mult": 1...20, "gossip_interval": 0.01...10,
            "push_pull_interval": 0.1...3600, "rejoin_interval": 0.1...600,
        ]
        for (k, v) in m {
            let key = k.scalar?.string ?? ""
            let line = k.mark?.line ?? 0
            guard let range = bounds[key] else {
                diags.append(Diagnostic(file: file, line: line, "unknown timing '\(key.prefix(40))' (expected one of: \(bounds.keys.sorted().joined(separator: ", ")))"))
                continue
            }
            let parsed = v.scalar.flatMap { key == "suspicion_mult" ? Double($0.string) : DurationText.seconds($0.string) }
            guard let x = parsed, range.contains(x) else {
                let what = key == "suspicion_mult" ? "a number" : "a duration (\(DurationText.forms))"
                diags.append(Diagnostic(file: file, line: line, "\(key) must be \(what) from \(range.lowerBound) to \(range.upperBound)"))
                continue
            }
            switch key {
            case "probe_interval": s.probeInterval = x
            case "probe_timeout": s.probeTimeout = x
            case "suspicion_mult": s.suspicionMult = x
            case "gossip_interval": s.gossipInterval = x
            case "push_pull_interval": s.pushPullInterval = x
            default: s.rejoinInterval = x
            }
        }
        if s.probeTimeout >= s.probeInterval {
            diags.append(Diagnostic(file: file, line: n.mark?.line ?? 0, "probe_timeout must be shorter than probe_interval"))
        }
        return s
    }

    /// Node names: what an operator can type and a log can show.
    public static func isValidName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= Limits.name && s.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) }
    }

    /// `HOST:PORT` with an IP address host (gossip does not resolve names).
    public static func isValidAddress(_ s: String) -> Bool { GossipAddress(s) != nil }
}

/// A gossip address: an IP literal and a port.
public struct GossipAddress: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init?(_ text: String) {
        let host: String
        let portText: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
            guard !host.contains(":") else { return nil }
        }
        guard let p = Int(portText), (1...65535).contains(p) else { return nil }
        var v4 = in_addr()
        var v6 = in6_addr()
        guard inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1 else { return nil }
        self.host = host
        port = p
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
