/// An immutable open-addressing hash table from lowercased wire names to small integers.
///
/// Lookups take the name as raw octets and allocate nothing, so the query path can probe
/// every suffix of a query name cheaply. Keys are stored back to back in one array.
public struct NameTable: Sendable {
    @usableFromInline let arena: [UInt8]
    @usableFromInline let keyStart: [Int32]
    @usableFromInline let keyLength: [UInt16]
    @usableFromInline let values: [Int32]
    /// Slot -> entry index + 1 (0 = empty).
    @usableFromInline let slots: [Int32]
    @usableFromInline let mask: Int

    /// Builds a table; keys must be lowercased uncompressed wire names and unique.
    public init(_ entries: [(key: [UInt8], value: Int)]) {
        var arena: [UInt8] = []
        var keyStart: [Int32] = []
        var keyLength: [UInt16] = []
        var values: [Int32] = []
        var capacity = 8
        while capacity < entries.count * 2 { capacity <<= 1 }
        var slots = [Int32](repeating: 0, count: capacity)
        let mask = capacity - 1
        for (i, e) in entries.enumerated() {
            keyStart.append(Int32(arena.count))
            keyLength.append(UInt16(e.key.count))
            arena += e.key
            values.append(Int32(e.value))
            var slot = e.key.withUnsafeBytes { NameTable.hash($0) } & mask
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(i + 1)
        }
        self.arena = arena
        self.keyStart = keyStart
        self.keyLength = keyLength
        self.values = values
        self.slots = slots
        self.mask = mask
    }

    public var count: Int { values.count }

    /// FNV-1a over the octets.
    @inlinable @inline(__always)
    static func hash(_ key: UnsafeRawBufferPointer) -> Int {
        var h: UInt32 = 2_166_136_261
        for b in key { h = (h ^ UInt32(b)) &* 16_777_619 }
        return Int(h)
    }

    /// The value stored for a lowercased wire name, or nil.
    @inlinable
    public func find(_ key: UnsafeRawBufferPointer) -> Int? {
        var slot = NameTable.hash(key) & mask
        return arena.withUnsafeBytes { a in
            while true {
                let e = Int(slots[slot])
                if e == 0 { return nil }
                let i = e - 1
                let len = Int(keyLength[i])
                if len == key.count, memcmp(a.baseAddress! + Int(keyStart[i]), key.baseAddress!, len) == 0 {
                    return Int(values[i])
                }
                slot = (slot + 1) & mask
            }
        }
    }

    /// Convenience for tests and tools.
    public func find(_ key: [UInt8]) -> Int? {
        key.withUnsafeBytes { find($0) }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
