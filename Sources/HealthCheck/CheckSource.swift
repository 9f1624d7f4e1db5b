import GeoTopology
import NIOCore

/// Where health checks and agent polls leave from, per address family: firewalls in front of
/// backends allow-list their checkers by address, so an instance checks from its own address
/// (`serve --check-source`, by default the instance's gossip or listen address), not from
/// whatever the route picks. nil for a family: the kernel chooses.
public struct CheckSource: Sendable, Equatable, CustomStringConvertible {
    public var v4: IPAddress?
    public var v6: IPAddress?

    public init(v4: IPAddress? = nil, v6: IPAddress? = nil) {
        self.v4 = v4
        self.v6 = v6
    }

    /// The source for a target of `family`.
    public func address(for family: IPAddress.Family) -> IPAddress? { family == .v4 ? v4 : v6 }

    /// A `SocketAddress` to bind to before connecting to `target`, port 0; nil: no source set.
    func bindAddress(for target: SocketAddress) -> SocketAddress? {
        guard let a = address(for: target.protocol == .inet6 ? .v6 : .v4) else { return nil }
        return try? SocketAddress(ipAddress: a.description, port: 0)
    }

    public var description: String {
        let parts = [v4?.description, v6?.description].compactMap { $0 }
        return parts.isEmpty ? "chosen by the route" : parts.joined(separator: " and ")
    }
}
