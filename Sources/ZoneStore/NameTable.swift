#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An immutable open-addressing hash table from lowercased wire names to small integers.
///
/// Lookups take the name as raw octets and allocate nothing, so the query path can probe
/// every suffix of a query name cheaply. Keys are stored back to back in one array, and a
/// zone's node table maps each name to its own entry number (no value array at all).
public struct NameTable: Sendable {
    @usableFromInline let arena: [UInt8]
    @usableFromInline let keyStart: [UInt32]
    @usableFromInline let keyLength: [UInt8]
    /// Entry -> value; empty when every entry's value is its own number.
    @usableFromInline let values: [Int32]
    /// Slot -> entry index + 1 (0 = empty).
    @usableFromInline let slots: [UInt32]
    @usableFromInline let mask: Int

    /// Builds a table; keys must be lowercased uncompressed wire names (at most 255 octets) and unique.
    public init(_ entries: [(key: [UInt8], value: Int)]) {
        var interner = NameInterner(expected: entries.count)
        var values: [Int32] = []
        for e in entries {
            guard let id = e.key.withUnsafeBytes({ interner.intern($0) }) else { continue }
            if id == values.count { values.append(0) }
            values[id] = Int32(truncatingIfNeeded: e.value)
        }
        self.init(interner, values: values)
    }

    /// The table an interner built: entry `i` is the `i`th name interned.
    init(_ interner: NameInterner, values: [Int32] = []) {
        arena = interner.arena
        keyStart = interner.keyStart
        keyLength = interner.keyLength
        slots = interner.slots
        mask = interner.mask
        self.values = values
    }

    public var count: Int { keyStart.count }

    /// A hash of the octets taken eight at a time (unaligned 64-bit loads, a multiply and a
    /// shift per word): the query path hashes every suffix of a name it looks up, and this is
    /// several times fewer instructions than a byte-at-a-time hash (measured with callgrind,
    /// `Tools/bench-callgrind.py`).
    @inlinable @inline(__always)
    static func hash(_ key: UnsafeRawBufferPointer) -> Int {
        let k: UInt64 = 0x9E37_79B9_7F4A_7C15
        var h = UInt64(truncatingIfNeeded: key.count) &* k
        var i = 0
        let n = key.count
        while i + 8 <= n {
            h = (h ^ key.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* k
            h ^= h >> 29
            i += 8
        }
        if i < n {
            // The last word overlaps the one before when the key is 8 octets or longer.
            var tail: UInt64 = 0
            if n >= 8 {
                tail = key.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            } else {
                for j in 0..<n { tail |= UInt64(key[j]) << UInt64(8 * j) }
            }
            h = (h ^ tail) &* k
            h ^= h >> 29
        }
        h = (h ^ (h >> 32)) &* 0xD6E8_FEB8_6659_FD93
        return Int(truncatingIfNeeded: h ^ (h >> 32))
    }

    /// The value stored for a lowercased wire name, or nil.
    @inlinable
    public func find(_ key: UnsafeRawBufferPointer) -> Int? {
        guard let i = NameTable.probe(key, arena: arena, keyStart: keyStart, keyLength: keyLength, slots: slots, mask: mask) else { return nil }
        return values.isEmpty ? i : Int(values[i])
    }

    /// The entry holding `key`, by linear probing from its hash; shared with `NameInterner`.
    @inlinable @inline(__always)
    static func probe(_ key: UnsafeRawBufferPointer, arena: [UInt8], keyStart: [UInt32], keyLength: [UInt8], slots: [UInt32], mask: Int) -> Int? {
        guard key.count > 0, key.count <= 255 else { return nil }
        var slot = NameTable.hash(key) & mask
        return arena.withUnsafeBytes { a in
            slots.withUnsafeBufferPointer { s in
                while true {
                    let e = Int(s[slot])
                    if e == 0 { return nil }
                    let i = e - 1
                    if Int(keyLength[i]) == key.count, equal(key, UnsafeRawBufferPointer(rebasing: a[Int(keyStart[i])..<Int(keyStart[i]) + key.count])) { return i }
                    slot = (slot + 1) & mask
                }
            }
        }
    }

    /// Whether two keys of the same length are equal, eight octets at a time.
    @inlinable @inline(__always)
    static func equal(_ x: UnsafeRawBufferPointer, _ y: UnsafeRawBufferPointer) -> Bool {
        let n = x.count
        var i = 0
        while i + 8 <= n {
            if x.loadUnaligned(fromByteOffset: i, as: UInt64.self) != y.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
            i += 8
        }
        if i == n { return true }
        if n >= 8 { return x.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self) == y.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self) }
        for j in 0..<n where x[j] != y[j] { return false }
        return true
    }

    /// Convenience for tests and tools.
    public func find(_ key: [UInt8]) -> Int? {
        key.withUnsafeBytes { find($0) }
    }

    /// Calls `body` with entry `i`'s key.
    @inlinable
    public func withKey<T>(_ i: Int, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        arena.withUnsafeBytes { a in
            body(UnsafeRawBufferPointer(rebasing: a[Int(keyStart[i])..<Int(keyStart[i]) + Int(keyLength[i])]))
        }
    }

    /// Entry `i`'s key, copied.
    public func key(_ i: Int) -> [UInt8] { withKey(i) { Array($0) } }

    /// The octets the table holds, for memory accounting.
    public var byteCount: Int { arena.count + keyStart.count * 5 + values.count * 4 + slots.count * 4 }
}

/// A growing set of names that numbers each name in the order it was first seen: the loader
/// interns owners as it parses, and the finished set becomes a zone's `NameTable` as it is.
struct NameInterner {
    var arena: [UInt8] = []
    var keyStart: [UInt32] = []
    var keyLength: [UInt8] = []
    var slots: [UInt32]
    var mask: Int

    init(expected: Int = 0) {
        var capacity = 16
        while capacity < expected * 2 { capacity <<= 1 }
        slots = [UInt32](repeating: 0, count: capacity)
        mask = capacity - 1
    }

    var count: Int { keyStart.count }

    /// The number of `key`, or nil.
    func find(_ key: UnsafeRawBufferPointer) -> Int? {
        NameTable.probe(key, arena: arena, keyStart: keyStart, keyLength: keyLength, slots: slots, mask: mask)
    }

    func find(_ key: [UInt8]) -> Int? { key.withUnsafeBytes { find($0) } }

    /// The number of `key`, adding it if new; nil when the key is not a wire name's length or
    /// the table would pass 2^32 octets.
    mutating func intern(_ key: UnsafeRawBufferPointer) -> Int? {
        if let i = find(key) { return i }
        guard key.count > 0, key.count <= 255, arena.count + key.count <= Int(UInt32.max), count < Int(UInt32.max) - 1 else { return nil }
        if (count + 1) * 2 > slots.count { grow() }
        let id = count
        keyStart.append(UInt32(arena.count))
        keyLength.append(UInt8(key.count))
        arena.append(contentsOf: key)
        place(id, hash: NameTable.hash(key))
        return id
    }

    func withKey<T>(_ i: Int, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        arena.withUnsafeBytes { a in
            body(UnsafeRawBufferPointer(rebasing: a[Int(keyStart[i])..<Int(keyStart[i]) + Int(keyLength[i])]))
        }
    }

    func key(_ i: Int) -> [UInt8] { withKey(i) { Array($0) } }

    private mutating func place(_ id: Int, hash: Int) {
        var slot = hash & mask
        while slots[slot] != 0 { slot = (slot + 1) & mask }
        slots[slot] = UInt32(id + 1)
    }

    private mutating func grow() {
        let capacity = slots.count * 2
        slots = [UInt32](repeating: 0, count: capacity)
        mask = capacity - 1
        for id in 0..<count {
            let h = withKey(id) { NameTable.hash($0) }
            place(id, hash: h)
        }
    }
}
