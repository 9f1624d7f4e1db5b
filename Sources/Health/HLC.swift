/// A hybrid logical clock value (Kulkarni et al., 2014): wall-clock milliseconds in the high
/// 48 bits, a counter in the low 16. It orders events like a Lamport clock while staying close
/// to real time, so "last writer wins" picks the write an operator made last.
public struct HLC: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let raw: UInt64

    public init(raw: UInt64) { self.raw = raw }
    public init(millis: UInt64, counter: UInt16 = 0) { raw = (millis << 16) | UInt64(counter) }

    public static let zero = HLC(raw: 0)
    public var millis: UInt64 { raw >> 16 }
    public var counter: UInt16 { UInt16(truncatingIfNeeded: raw) }

    public static func < (a: HLC, b: HLC) -> Bool { a.raw < b.raw }
    public var description: String { "\(millis).\(counter)" }
}

/// The clock that issues this instance's `HLC` values: never backwards, always after anything
/// it has seen (its own writes and the peers' it merged).
public struct HybridClock: Sendable, Equatable {
    public private(set) var last: HLC

    public init(last: HLC = .zero) { self.last = last }

    /// A new value for a local write at wall time `wallMillis`.
    public mutating func tick(wallMillis: UInt64) -> HLC {
        let physical = HLC(millis: min(wallMillis, HLC.maxMillis))
        last = physical > last ? physical : HLC(raw: last.raw &+ 1)
        return last
    }

    /// Takes a peer's value into account, so the next local write orders after it.
    public mutating func observe(_ remote: HLC) {
        if remote > last { last = remote }
    }
}

extension HLC {
    /// The largest millisecond count that fits in 48 bits.
    static let maxMillis: UInt64 = (1 << 48) - 1
}
