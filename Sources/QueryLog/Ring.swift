import Atomics

/// A bounded single-producer, single-consumer queue: one answering thread pushes, the dnstap
/// writer pops, and neither takes a lock or waits (a full ring refuses the push: the message
/// is dropped and counted, and the answer goes out as before).
public final class SPSCRing: @unchecked Sendable {
    // @unchecked: one thread calls `push`, one calls `pop`; a slot is handed over by the
    // releasing store of `head` (to the consumer) or `tail` (back to the producer).
    public let capacity: Int
    private let slots: UnsafeMutablePointer<[UInt8]?>
    private let head = ManagedAtomic<Int>(0)
    private let tail = ManagedAtomic<Int>(0)

    public init(capacity: Int) {
        self.capacity = max(capacity, 2)
        slots = .allocate(capacity: self.capacity)
        slots.initialize(repeating: nil, count: self.capacity)
    }

    deinit {
        slots.deinitialize(count: capacity)
        slots.deallocate()
    }

    /// Adds a frame; false when the ring is full (the frame is not taken).
    @discardableResult
    public func push(_ frame: [UInt8]) -> Bool {
        let h = head.load(ordering: .relaxed)
        guard h - tail.load(ordering: .acquiring) < capacity else { return false }
        slots[h % capacity] = frame
        head.store(h + 1, ordering: .releasing)
        return true
    }

    /// Takes the oldest frame, or nil when the ring is empty.
    public func pop() -> [UInt8]? {
        let t = tail.load(ordering: .relaxed)
        guard t != head.load(ordering: .acquiring) else { return nil }
        let frame = slots[t % capacity].take()
        tail.store(t + 1, ordering: .releasing)
        return frame
    }

    /// Frames waiting (a moment's view).
    public var count: Int { head.load(ordering: .acquiring) - tail.load(ordering: .acquiring) }
}
