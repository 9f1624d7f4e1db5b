import GeoTopology
import NIOConcurrencyHelpers
import QueryLog

/// Passive latency measurement's side of the answer path: each event loop gets a lock-free
/// single-producer ring (`SPSCRing`) and pushes one record per DNS-over-TCP connection (the
/// kernel's smoothed RTT from `TCP_INFO` after its first answer); the supervisor drains every
/// ring once a second off the event loops. A full ring drops the record. The lock here is
/// taken only to register a ring (at start) and by the drainer, never by an event loop.
public final class LatencyTaps: @unchecked Sendable {
    // @unchecked: `rings` is guarded by `lock`; each ring has one producer (its loop) and
    // one consumer (the drainer, which holds the lock while it pops).
    private let lock = NIOLock()
    private var rings: [SPSCRing] = []
    public let capacity: Int
    /// Whether DNS-over-TCP connections are measured (else only sightings are pushed).
    public let tcp: Bool

    public init(capacity: Int = 1024, tcp: Bool = true) {
        self.capacity = capacity
        self.tcp = tcp
    }

    /// One query in this many is pushed as a sighting of its source (the volume that bounds
    /// the latency book and aims active probes).
    public static let sightEvery: UInt32 = 32
    /// The RTT field of a sighting: a source seen, nothing measured.
    static let sighting = UInt32.max

    func makeSampler() -> LatencySampler {
        let r = SPSCRing(capacity: capacity)
        lock.withLock { rings.append(r) }
        return LatencySampler(ring: r, tcp: tcp)
    }

    /// What the rings held: RTTs measured (the connection's peer, microseconds) and sampled
    /// sources of queries (each stands for `sightEvery` queries).
    public struct Drained: Sendable {
        public var rtts: [(IPAddress, UInt32)] = []
        public var sightings: [IPAddress] = []
    }

    /// Every record waiting.
    public func drain() -> Drained {
        lock.withLock {
            var out = Drained()
            for r in rings {
                while let rec = r.pop() {
                    guard let (a, rtt) = Self.decode(rec) else { continue }
                    if rtt == Self.sighting { out.sightings.append(a) } else { out.rtts.append((a, rtt)) }
                }
            }
            return out
        }
    }

    static func encode(_ a: IPAddress, rttMicros: UInt32) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 21)
        out[0] = a.family == .v4 ? 4 : 6
        for i in 0..<16 { out[1 + i] = a.bytes[i] }
        for i in 0..<4 { out[17 + i] = UInt8(truncatingIfNeeded: rttMicros >> UInt32(24 - 8 * i)) }
        return out
    }

    static func decode(_ r: [UInt8]) -> (IPAddress, UInt32)? {
        guard r.count == 21, r[0] == 4 || r[0] == 6 else { return nil }
        var b = SIMD16<UInt8>()
        for i in 0..<16 { b[i] = r[1 + i] }
        let rtt = (17..<21).reduce(UInt32(0)) { $0 << 8 | UInt32(r[$1]) }
        return (IPAddress(family: r[0] == 4 ? .v4 : .v6, bytes: b), rtt)
    }
}

/// One event loop's end of the taps: its ring and a query counter for sampling sightings.
/// Used only from that loop's thread (see `LoopScratch`).
final class LatencySampler {
    let ring: SPSCRing
    /// TCP connections are measured.
    let tcp: Bool
    private var count: UInt32 = 0

    init(ring: SPSCRing, tcp: Bool) {
        self.ring = ring
        self.tcp = tcp
    }

    /// Counts a query from `source`; every `LatencyTaps.sightEvery`-th is pushed (full: dropped).
    @inline(__always)
    func sight(_ source: IPAddress) {
        count &+= 1
        guard count % LatencyTaps.sightEvery == 0 else { return }
        ring.push(LatencyTaps.encode(source, rttMicros: LatencyTaps.sighting))
    }
}
