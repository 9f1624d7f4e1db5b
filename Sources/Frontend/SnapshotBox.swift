import Atomics
import QueryEngine

extension Snapshot: AtomicReference {}

/// Publishes the current `Snapshot` to the event loops without locks.
///
/// Writers (reloads; later health and gossip) store a new snapshot and bump the generation.
/// Each handler keeps the snapshot it last loaded and, per query, compares one relaxed atomic
/// integer with its copy; only when the generation moved does it load the new reference.
public final class SnapshotBox: Sendable {
    private let current: ManagedAtomic<Snapshot>
    private let generationCounter: ManagedAtomic<Int>

    public init(_ initial: Snapshot) {
        current = ManagedAtomic(initial)
        generationCounter = ManagedAtomic(initial.generation)
    }

    /// The generation of the published snapshot.
    @inline(__always)
    public var generation: Int { generationCounter.load(ordering: .acquiring) }

    /// The published snapshot.
    public func load() -> Snapshot { current.load(ordering: .acquiring) }

    /// Publishes a snapshot; readers see it on their next query.
    public func publish(_ snapshot: Snapshot) {
        current.store(snapshot, ordering: .releasing)
        generationCounter.store(snapshot.generation, ordering: .releasing)
    }
}

/// A handler's view of the published snapshot: reloads only when the generation changed.
struct SnapshotReader {
    let box: SnapshotBox
    private(set) var snapshot: Snapshot

    init(_ box: SnapshotBox) {
        self.box = box
        snapshot = box.load()
    }

    @inline(__always)
    mutating func refresh() -> Snapshot {
        if box.generation != snapshot.generation { snapshot = box.load() }
        return snapshot
    }
}
