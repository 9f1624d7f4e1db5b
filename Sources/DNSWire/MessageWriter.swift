/// Scratch memory for building one message at a time: the message octets, the compression
/// table and room for a lowercased query name. One instance belongs to one thread (an event
/// loop) and is reused for every query it answers, so building a response allocates nothing.
public final class MessageBuffer {
    /// Message octets; a DNS message is at most 65535 octets (RFC 1035 4.2.2).
    public let storage: UnsafeMutableRawBufferPointer
    /// Lowercased uncompressed query name (at most 255 octets).
    public let name: UnsafeMutableRawBufferPointer
    /// A second name buffer, for a CNAME target or another name being looked up.
    public let name2: UnsafeMutableRawBufferPointer
    /// The original-case copy of `name2`, for writing it as an owner.
    public let name2Original: UnsafeMutableRawBufferPointer
    /// A third name buffer: a lowercased NS, MX or SRV target being looked up for the additional section.
    public let name3: UnsafeMutableRawBufferPointer
    /// Offsets of the labels of the name being looked up (at most 127 labels fit in 255 octets).
    public let labels: UnsafeMutablePointer<Int>
    /// The addresses a pool chose for the current answer, RDATA back to back (as much as the
    /// largest message could hold).
    public let answerRData: UnsafeMutableRawBufferPointer
    /// Members chosen for the current answer (at most 64).
    public let picks: UnsafeMutablePointer<Int32>
    /// Random state for weighted draws; each thread's buffer has its own.
    public var random: UInt64
    /// Wall-clock seconds (UNIX time) for this query, set by the front end: server cookies
    /// carry it (RFC 9018 4.3), and the answer path reads no clock of its own.
    public var nowSeconds: UInt32 = 0
    let entries: UnsafeMutablePointer<UInt16>
    let entryCapacity = 128

    public init(seed: UInt64 = 0) {
        picks = .allocate(capacity: 64)
        random = seed != 0 ? seed : UInt64.random(in: 1...UInt64.max)
        storage = .allocate(byteCount: WireLimits.maxMessageLength, alignment: 8)
        name = .allocate(byteCount: 256, alignment: 8)
        name2 = .allocate(byteCount: 256, alignment: 8)
        name2Original = .allocate(byteCount: 256, alignment: 8)
        name3 = .allocate(byteCount: 256, alignment: 8)
        answerRData = .allocate(byteCount: WireLimits.maxMessageLength, alignment: 8)
        labels = .allocate(capacity: 128)
        entries = .allocate(capacity: entryCapacity)
    }

    deinit {
        storage.deallocate()
        name.deallocate()
        name2.deallocate()
        name2Original.deallocate()
        name3.deallocate()
        answerRData.deallocate()
        labels.deallocate()
        entries.deallocate()
        picks.deallocate()
    }
}

/// Writes a DNS message into a `MessageBuffer` with name compression (RFC 1035 4.1.4).
///
/// The writer never writes past `limit`: callers ask `fits(_:)` or use the writing calls that
/// report failure, and use `mark()`/`rewind(to:)` to drop a record set that did not fit whole
/// (RFC 2181 9: an RRset is sent whole or not at all).
public struct MessageWriter {
    @usableFromInline let base: UnsafeMutableRawPointer
    /// The largest message this writer may produce.
    public var limit: Int
    /// Octets written so far.
    public private(set) var position: Int
    @usableFromInline let entries: UnsafeMutablePointer<UInt16>
    @usableFromInline var entryCount: Int
    @usableFromInline let entryCapacity: Int

    /// A point to come back to: the position and the compression table size.
    public struct Mark: Sendable {
        public let position: Int
        let entryCount: Int
    }

    public init(buffer: MessageBuffer, limit: Int) {
        base = buffer.storage.baseAddress!
        self.limit = min(limit, buffer.storage.count)
        position = 0
        entries = buffer.entries
        entryCount = 0
        entryCapacity = buffer.entryCapacity
    }

    /// The message written so far.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: position) }

    @inline(__always) public func fits(_ n: Int) -> Bool { position + n <= limit }

    public func mark() -> Mark { Mark(position: position, entryCount: entryCount) }

    /// Forgets everything written.
    public mutating func reset() {
        position = 0
        entryCount = 0
    }

    public mutating func rewind(to mark: Mark) {
        position = mark.position
        entryCount = mark.entryCount
    }

    @inline(__always) public mutating func u8(_ v: UInt8) {
        base.storeBytes(of: v, toByteOffset: position, as: UInt8.self)
        position += 1
    }

    @inline(__always) public mutating func u16(_ v: UInt16) {
        base.storeBytes(of: v.bigEndian, toByteOffset: position, as: UInt16.self)
        position += 2
    }

    @inline(__always) public mutating func u32(_ v: UInt32) {
        base.storeBytes(of: v.bigEndian, toByteOffset: position, as: UInt32.self)
        position += 4
    }

    /// Overwrites a 16-bit field already written (header counts, RDLENGTH).
    @inline(__always) public func set16(at offset: Int, _ v: UInt16) {
        base.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt16.self)
    }

    /// Reads back a 16-bit field already written.
    @inline(__always) public func get16(at offset: Int) -> UInt16 {
        UInt16(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always) public mutating func raw(_ b: UnsafeRawBufferPointer) {
        guard let src = b.baseAddress, b.count > 0 else { return }
        (base + position).copyMemory(from: src, byteCount: b.count)
        position += b.count
    }

    /// Registers the labels of an uncompressed name already in the message at `offset` as
    /// compression targets (used for the question name).
    public mutating func addCompressionTargets(nameAt offset: Int) {
        var pos = offset
        while pos < position, entryCount < entryCapacity, pos < 0x4000 {
            let l = Int(base.load(fromByteOffset: pos, as: UInt8.self))
            if l == 0 || l & 0xC0 != 0 { return }
            entries[entryCount] = UInt16(pos)
            entryCount += 1
            pos += 1 + l
        }
    }

    /// Writes an uncompressed wire name, replacing its longest suffix already in the message
    /// by a pointer when `compress` is set. Returns false, writing nothing, if it does not fit.
    public mutating func name(_ name: UnsafeRawBufferPointer, compress: Bool) -> Bool {
        var s = 0
        var pointer = -1
        if compress {
            search: while s < name.count, name[s] != 0 {
                for i in 0..<entryCount where matches(name, from: s, at: Int(entries[i])) {
                    pointer = Int(entries[i])
                    break search
                }
                s += 1 + Int(name[s])
            }
        } else {
            s = name.count - 1
        }
        let prefix = pointer >= 0 ? s : name.count
        guard fits(prefix + (pointer >= 0 ? 2 : 0)) else { return false }
        // Register the new labels as targets, then copy them.
        var p = 0
        while p < s, entryCount < entryCapacity, position + p < 0x4000 {
            entries[entryCount] = UInt16(position + p)
            entryCount += 1
            p += 1 + Int(name[p])
        }
        raw(UnsafeRawBufferPointer(rebasing: name[0..<prefix]))
        if pointer >= 0 { u16(0xC000 | UInt16(pointer)) }
        return true
    }

    /// Whether the suffix of `name` from `from` equals the (possibly compressed) name at
    /// `offset` in the message, ignoring case.
    func matches(_ name: UnsafeRawBufferPointer, from: Int, at offset: Int) -> Bool {
        var a = from
        var b = offset
        var hops = 0
        while true {
            var lb = Int(base.load(fromByteOffset: b, as: UInt8.self))
            while lb & 0xC0 == 0xC0 {
                hops += 1
                if hops > WireLimits.maxPointerHops { return false }
                b = (lb & 0x3F) << 8 | Int(base.load(fromByteOffset: b + 1, as: UInt8.self))
                lb = Int(base.load(fromByteOffset: b, as: UInt8.self))
            }
            let la = Int(name[a])
            if la != lb { return false }
            if la == 0 { return true }
            for i in 1...la where Name.lower(name[a + i]) != Name.lower(base.load(fromByteOffset: b + i, as: UInt8.self)) {
                return false
            }
            a += 1 + la
            b += 1 + lb
        }
    }
}
