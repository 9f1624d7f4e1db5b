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

    public init(capacity: Int = 1024) { self.capacity = capacity }

    func makeRing() -> SPSCRing {
        let r = SPSCRing(capacity: capacity)
        lock.withLock { rings.append(r) }
        return r
    }

    /// Every record waiting: (the connection's peer, its RTT in microseconds).
    public func drain() -> [(IPAddress, UInt32)] {
        lock.withLock {
            var out: [(IPAddress, UInt32)] = []
            for r in rings {
                while let rec = r.pop() {
                    if let x = Self.decode(rec) { out.append(x) }
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
