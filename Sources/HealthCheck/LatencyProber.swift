import Control
import Foundation
import GeoTopology
import Health
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Active latency probes, the way F5 and Citrix probe a local DNS: a query for the root's NS
/// records (RD clear: a resolver answers from cache, refuses, or refers, and any reply is a
/// round trip) to the resolver's port 53; when none comes within the timeout, a TCP connect to
/// port 53, where a SYN-ACK or a reset is a round trip too. Which addresses, and how often, is
/// `LatencyProbePlan`'s choice; this only sends and times.
public final class LatencyProber: Sendable {
    /// How one probe ended.
    public enum Method: String, Sendable, CaseIterable {
        case dns, tcp, none
    }

    /// One probe: the network probed, how it was answered, and the round trip (ms) when it was.
    public struct Result: Sendable {
        public var prefix: LatencyPrefix
        public var method: Method
        public var rttMs: Double?
    }

    private let group: any EventLoopGroup
    private let source: CheckSource
    private let timeout: Double
    private static let rootNS: (name: [UInt8], type: UInt16) = ([0], 2)

    public init(group: any EventLoopGroup, source: CheckSource = CheckSource(), timeout: Double = 1) {
        self.group = group
        self.source = source
        self.timeout = timeout
    }

    /// Probes every target at once; the future holds one result per target.
    public func probe(_ targets: [(LatencyPrefix, IPAddress)]) -> EventLoopFuture<[Result]> {
        let loop = group.next()
        let each = targets.map { (prefix, address) in
            probe(address).map { Result(prefix: prefix, method: $0.0, rttMs: $0.1) }
        }
        return EventLoopFuture.whenAllSucceed(each, on: loop)
    }

    private func probe(_ address: IPAddress) -> EventLoopFuture<(Method, Double?)> {
        let loop = group.next()
        guard let target = try? socketAddress(address, 53) else { return loop.makeSucceededFuture((.none, nil)) }
        let began = NIODeadline.now()
        return dnsExchange(group: loop, target: target, source: source.bindAddress(for: target), name: Self.rootNS.name, qtype: Self.rootNS.type, timeout: timeout)
            .map { _ in (Method.dns, Self.ms(since: began)) }
            .flatMapError { _ in self.connect(target, on: loop) }
    }

    /// A connect to port 53: established or refused (a reset) is one round trip.
    private func connect(_ target: SocketAddress, on loop: any EventLoop) -> EventLoopFuture<(Method, Double?)> {
        let began = NIODeadline.now()
        var bootstrap = ClientBootstrap(group: loop).connectTimeout(.milliseconds(Int64(timeout * 1000)))
        if let from = source.bindAddress(for: target) { bootstrap = bootstrap.bind(to: from) }
        return bootstrap.connect(to: target).map { channel -> (Method, Double?) in
            let rtt = Self.ms(since: began)
            channel.close(promise: nil)
            return (.tcp, rtt)
        }.flatMapErrorThrowing { error in
            Self.refused(error) ? (.tcp, Self.ms(since: began)) : (.none, nil)
        }
    }

    static func refused(_ error: any Error) -> Bool {
        if let io = error as? IOError { return io.errnoCode == ECONNREFUSED }
        if let c = error as? NIOConnectionError { return c.connectionErrors.contains { refused($0.error) } }
        return false
    }

    static func ms(since t: NIODeadline) -> Double { Double((NIODeadline.now() - t).nanoseconds) / 1e6 }
}
