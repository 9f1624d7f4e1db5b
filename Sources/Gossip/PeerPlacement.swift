import BoundedYAML
import Diagnostics
import Health
import Yams

/// Where a peer is and what it does (the cluster file's long peer form):
///
///     peers:
///       ns1: 10.0.1.1:7946                                        # short form
///       ns2: {address: 10.0.2.1:7946, site: fra, region: eu}
///       probe-syd: {address: 10.0.9.1:7946, region: apac, role: observer}
///
/// `site` names the pool site the instance is co-located with, `region` groups vantage points
/// for `verdict: {regions: ...}` and `probers_per_region`; an `observer` probes and gossips
/// but serves no DNS.
public struct PeerPlacement: Sendable, Equatable {
    public enum Role: String, Sendable, Equatable { case server, observer }
    public var site: String?
    public var region: String?
    public var role: Role

    public init(site: String? = nil, region: String? = nil, role: Role = .server) {
        self.site = site
        self.region = region
        self.role = role
    }

    /// A peer entry: its address, and its placement from the long form.
    static func parse(_ v: Node, peer: String, line: Int, file: String, _ diags: inout [Diagnostic]) -> (address: String, placement: PeerPlacement)? {
        func err(_ m: String) { diags.append(Diagnostic(file: file, line: line, m)) }
        if let a = v.scalar?.string {
            guard ClusterConfig.isValidAddress(a) else { err("peer \(peer): address must be HOST:PORT or [V6]:PORT with an IP address"); return nil }
            return (a, PeerPlacement())
        }
        guard let m = v.mapping else { err("peer \(peer): give HOST:PORT or {address: HOST:PORT, site: ..., region: ..., role: server|observer}"); return nil }
        var address: String?
        var p = PeerPlacement()
        for (k, x) in m {
            let key = k.scalar?.string ?? ""
            guard let text = x.scalar?.string else { err("peer \(peer): \(key.prefix(40)) must be a scalar"); return nil }
            switch key {
            case "address":
                guard ClusterConfig.isValidAddress(text) else { err("peer \(peer): address must be HOST:PORT or [V6]:PORT with an IP address"); return nil }
                address = text
            case "site", "region":
                guard ClusterConfig.isValidName(text) else { err("peer \(peer): \(key) must be 1-\(Limits.name) letters, digits, '.', '-' or '_'"); return nil }
                if key == "site" { p.site = text } else { p.region = text }
            case "role":
                guard let r = Role(rawValue: text) else { err("peer \(peer): role must be server or observer, not '\(text.prefix(40))'"); return nil }
                p.role = r
            default:
                err("peer \(peer): unknown key '\(key.prefix(40))' (expected one of: address, region, role, site)")
                return nil
            }
        }
        guard let address else { err("peer \(peer): the long form needs an address"); return nil }
        return (address, p)
    }
}

extension VerdictPolicy {
    /// The cluster file's `verdict`: `majority`, `any`, `all`, a count, or
    /// `{regions: {policy: P, within: Q}}` (each of P and Q one of the first four).
    static func parse(_ v: Node) -> VerdictPolicy? {
        if let s = v.scalar?.string { return VerdictPolicy(s) }
        guard let m = v.mapping, m.count == 1, let (k, inner) = m.first, k.scalar?.string == "regions", let r = inner.mapping else { return nil }
        var across = VerdictPolicy.majority
        var within = VerdictPolicy.majority
        for (key, value) in r {
            guard let s = value.scalar?.string, let p = VerdictPolicy(s) else { return nil }
            switch key.scalar?.string {
            case "policy": across = p
            case "within": within = p
            default: return nil
            }
        }
        return .regions(across: across, within: within)
    }
}
