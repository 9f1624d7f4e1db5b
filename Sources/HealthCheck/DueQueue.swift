/// When each check or agent poll is due next: a binary min-heap of plain values.
///
/// The monitor keeps one of these instead of one NIO timer per check. One timer is armed for
/// the earliest entry, and when it fires every entry due within a small grain runs in the same
/// wake-up: at thousands of checks per second that turns thousands of timer wake-ups (each a
/// heap insertion, an allocation and often a `timerfd_settime`) into a few hundred, and the
/// checks' CPU is what the answer path on the same machine loses.
struct DueQueue {
    struct Entry: Equatable {
        /// `NIODeadline.uptimeNanoseconds` of when it is due.
        var at: UInt64
        var member: Int32
        /// The check's index in the member, or `DueQueue.agent` for the feedback-agent poll.
        var check: Int32
    }

    static let agent: Int32 = -1

    private(set) var entries: [Entry] = []

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }
    /// The entry due first.
    var first: Entry? { entries.first }

    mutating func removeAll() { entries.removeAll(keepingCapacity: true) }

    /// When a check that was due at `previous` runs next: one interval later (no drift), with
    /// +-5% jitter. If that is already past (the process was stalled or stopped), a random point
    /// of the coming interval: after a stall every overdue check would otherwise fire in the
    /// same instant, and keep firing together, one burst per interval.
    static func next(after previous: UInt64, interval: Double, now: UInt64, random: inout JitterRandom) -> UInt64 {
        let next = previous + UInt64(interval * random.uniform(0.95, 1.05) * 1e9)
        return next >= now ? next : now + UInt64(interval * random.uniform(0, 1) * 1e9)
    }

    mutating func insert(_ e: Entry) {
        entries.append(e)
        var i = entries.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard entries[i].at < entries[parent].at else { break }
            entries.swapAt(i, parent)
            i = parent
        }
    }

    /// Removes and returns the first entry if it is due at or before `deadline`.
    mutating func popDue(by deadline: UInt64) -> Entry? {
        guard let top = entries.first, top.at <= deadline else { return nil }
        let last = entries.removeLast()
        guard !entries.isEmpty else { return top }
        entries[0] = last
        var i = 0
        let n = entries.count
        while true {
            let l = 2 * i + 1
            guard l < n else { break }
            var m = l
            if l + 1 < n, entries[l + 1].at < entries[l].at { m = l + 1 }
            guard entries[m].at < entries[i].at else { break }
            entries.swapAt(i, m)
            i = m
        }
        return top
    }
}

/// SplitMix64: a small, fast generator for check jitter. `Double.random(in:)` with the system
/// generator makes a `getrandom(2)` call each time, which at thousands of checks per second is
/// a measurable share of the engine's CPU; jitter needs spread, not unpredictability.
struct JitterRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniformly spread value in `lower..<upper` (seconds).
    mutating func uniform(_ lower: Double, _ upper: Double) -> Double {
        lower + (upper - lower) * (Double(next() >> 11) * 0x1.0p-53)
    }
}
