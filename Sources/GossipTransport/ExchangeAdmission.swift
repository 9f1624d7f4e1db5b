import Gossip

/// Who may hold the exchange listener's connections, and how much each may send: a pure value
/// (the transport holds one, on its loop).
///
/// The listener answers before anything is authenticated (a frame's MAC is checked only once
/// the whole frame is in), so what an unauthenticated source can hold is bounded here. Peers'
/// gossip hosts (from the cluster file; TCP cannot be spoofed) get a few connections each and the
/// full state size; any other source (`explain --peer`, or an attacker) shares a small pool of
/// connections, a few per source (IPv6 per /64), and sends at most a small frame. So a flood of
/// connections from elsewhere never takes a peer's slots or much memory.
public struct ExchangeAdmission: Sendable, Equatable {
    /// The two kinds of source.
    public enum Source: Sendable, Hashable {
        case peer(String)
        case other(String)

        public var isPeer: Bool {
            if case .peer = self { return true }
            return false
        }
    }

    /// Connections one peer host may hold at once.
    public static let perPeer = 4
    /// Connections every other source together may hold, and one of them (address, IPv6 /64).
    public static let others = 8
    public static let perOther = 2
    /// The largest frame a peer may send (a full state), and any other source (a query).
    public static let peerFrame = Limits.state + 4096
    public static let otherFrame = 64 * 1024

    private var peers: Set<String>
    private var open: [Source: Int] = [:]
    private var othersOpen = 0

    /// - Parameter peers: the peers' gossip hosts as IP text (any form; normalized here).
    public init(peers: Set<String> = []) {
        self.peers = Set(peers.map(Self.normalized))
    }

    /// The cluster file changed: its peers' hosts from now on.
    public mutating func trust(_ hosts: Set<String>) {
        peers = Set(hosts.map(Self.normalized))
    }

    /// Takes a slot for a connection from `host`, or nil when its share is used up.
    public mutating func admit(_ host: String) -> Source? {
        let source = classify(host)
        let n = open[source, default: 0]
        switch source {
        case .peer:
            guard n < Self.perPeer else { return nil }
        case .other:
            guard n < Self.perOther, othersOpen < Self.others else { return nil }
            othersOpen += 1
        }
        open[source] = n + 1
        return source
    }

    /// A connection admitted as `source` closed.
    public mutating func release(_ source: Source) {
        guard let n = open[source] else { return }
        open[source] = n > 1 ? n - 1 : nil
        if case .other = source { othersOpen -= 1 }
    }

    /// The largest frame `source` may send.
    public static func frameLimit(_ source: Source) -> Int {
        source.isPeer ? peerFrame : otherFrame
    }

    /// Connections held now (for tests and the status line).
    public var held: Int { open.values.reduce(0, +) }

    func classify(_ host: String) -> Source {
        let h = Self.normalized(host)
        return peers.contains(h) ? .peer(h) : .other(Self.prefix(h))
    }

    /// One text per address: IPv4 as is, IPv6 through its 16 octets (so `::1` and
    /// `0:0::1` are one host); an unparsable host stays as given.
    static func normalized(_ host: String) -> String {
        guard let v6 = IPv6Octets(host) else { return host }
        return v6.text(prefix: 128)
    }

    /// The source an IPv6 host counts as: its /64 (one subscriber holds a whole /64).
    static func prefix(_ host: String) -> String {
        guard let v6 = IPv6Octets(host) else { return host }
        return v6.text(prefix: 64)
    }
}

/// The 16 octets of an IPv6 address's text (`inet_pton`), for comparing and truncating.
struct IPv6Octets {
    var octets: [UInt8]

    init?(_ text: String) {
        guard text.contains(":") else { return nil }
        var a = in6_addr()
        guard inet_pton(AF_INET6, text, &a) == 1 else { return nil }
        octets = withUnsafeBytes(of: &a) { Array($0) }
    }

    func text(prefix: Int) -> String {
        var b = octets
        for i in (prefix / 8)..<16 { b[i] = 0 }
        var a = in6_addr()
        withUnsafeMutableBytes(of: &a) { for i in 0..<16 { $0[i] = b[i] } }
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &a, &out, socklen_t(out.count)) != nil else { return "?" }
        return (prefix < 128 ? "\(String(cString: out))/\(prefix)" : String(cString: out))
    }
}

#if canImport(Glibc)
import Glibc
#endif
