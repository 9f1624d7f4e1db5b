/// Domain names in wire form (RFC 1035 3.1): a sequence of length-prefixed labels ending in the
/// root label (a zero octet), at most 255 octets, each label at most 63.
///
/// Names are handled as raw octets, never as `String`, on the query path: comparisons are
/// ASCII-case-insensitive (RFC 4343) and lookups use the lowercased form.
public enum Name {
    /// Lowercases one octet (ASCII only, RFC 4343 3).
    @inline(__always)
    public static func lower(_ c: UInt8) -> UInt8 {
        (c &- 0x41) < 26 ? c | 0x20 : c
    }

    /// Reads a possibly compressed name at `offset` in `message`.
    ///
    /// Decoding is defensive (RFC 1035 4.1.4): every pointer must point strictly backwards, to a
    /// place after the header and before the label that holds it, so loops are impossible; at
    /// most `WireLimits.maxPointerHops` pointers are followed; labels over 63 octets, names over
    /// 255 octets and the deprecated extended label types are rejected.
    ///
    /// - Parameters:
    ///   - out: when given (at least 255 octets), receives the uncompressed name, lowercased if
    ///     `lowercase` is set.
    /// - Returns: the offset just past the name where it stands in the message (past the first
    ///   pointer, if any), and the length of its uncompressed form.
    @inlinable
    public static func read(
        _ message: UnsafeRawBufferPointer,
        at offset: Int,
        into out: UnsafeMutableRawBufferPointer? = nil,
        lowercase: Bool = true
    ) throws(WireError) -> (end: Int, length: Int) {
        var pos = offset
        var end = -1
        var length = 0
        var hops = 0
        var lowestLabelStart = offset
        let count = message.count
        while true {
            guard pos < count else { throw .truncated(offset: pos, needed: 1) }
            let len = message[pos]
            switch len & 0xC0 {
            case 0x00:
                let l = Int(len)
                guard pos + 1 + l <= count else { throw .truncated(offset: pos + 1, needed: l) }
                guard length + 1 + l <= WireLimits.maxNameLength else { throw .nameTooLong(offset: offset) }
                // The guards above keep both ranges in bounds (`out` holds 255 octets), so the
                // copy runs on raw pointers without a check per octet.
                if let out, let dst = out.baseAddress, let src = message.baseAddress {
                    let d = dst + length
                    let from = src + pos + 1
                    d.storeBytes(of: len, as: UInt8.self)
                    if lowercase {
                        for i in 0..<l { (d + 1 + i).storeBytes(of: lower(from.load(fromByteOffset: i, as: UInt8.self)), as: UInt8.self) }
                    } else {
                        (d + 1).copyMemory(from: from, byteCount: l)
                    }
                }
                length += 1 + l
                if l == 0 {
                    return (end < 0 ? pos + 1 : end, length)
                }
                pos += 1 + l
            case 0xC0:
                guard pos + 1 < count else { throw .truncated(offset: pos, needed: 2) }
                let target = (Int(len & 0x3F) << 8) | Int(message[pos + 1])
                hops += 1
                guard target >= WireLimits.headerLength, target < lowestLabelStart,
                    hops <= WireLimits.maxPointerHops
                else { throw .badPointer(offset: pos, target: target) }
                if end < 0 { end = pos + 2 }
                lowestLabelStart = target
                pos = target
            default:
                throw .badLabelType(offset: pos, octet: len)
            }
        }
    }

    /// Skips a possibly compressed name at `offset`, checking it as `read` does.
    @inlinable
    public static func skip(_ message: UnsafeRawBufferPointer, at offset: Int) throws(WireError) -> Int {
        try read(message, at: offset, into: nil).end
    }

    /// Whether two uncompressed wire names are equal, ignoring ASCII case.
    @inlinable
    public static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        for i in 0..<a.count where lower(a[i]) != lower(b[i]) { return false }
        return true
    }

    /// Offsets of each label's length octet in an uncompressed wire name (the root label excluded).
    public static func labelOffsets(_ name: [UInt8]) -> [Int] {
        var result: [Int] = []
        var pos = 0
        while pos < name.count, name[pos] != 0 {
            result.append(pos)
            pos += 1 + Int(name[pos])
        }
        return result
    }

    /// The lowercased copy of an uncompressed wire name.
    public static func lowercased(_ name: [UInt8]) -> [UInt8] {
        var out = name
        var pos = 0
        while pos < out.count, out[pos] != 0 {
            let l = Int(out[pos])
            for i in (pos + 1)..<(pos + 1 + l) { out[i] = lower(out[i]) }
            pos += 1 + l
        }
        return out
    }

    /// Whether `name` is `ancestor` or below it (both uncompressed, compared ignoring case).
    public static func isSubdomain(_ name: [UInt8], of ancestor: [UInt8]) -> Bool {
        guard name.count >= ancestor.count else { return false }
        let start = name.count - ancestor.count
        // The suffix must begin on a label boundary.
        guard labelOffsets(name).contains(start) || start == name.count - 1 else { return false }
        return name.withUnsafeBytes { n in
            ancestor.withUnsafeBytes { a in equal(UnsafeRawBufferPointer(rebasing: n[start...]), a) }
        }
    }

    /// Parses presentation format (`www.example.com.`, relative names taken as absolute) into an
    /// uncompressed wire name. Supports `\DDD` and `\X` escapes (RFC 1035 5.1). For configuration
    /// and tests, not the query path.
    public static func parse(_ text: String) -> [UInt8]? {
        if text == "." || text.isEmpty { return [0] }
        var out: [UInt8] = []
        var label: [UInt8] = []
        let bytes = Array(text.utf8)
        var i = 0
        func flush() -> Bool {
            guard !label.isEmpty, label.count <= WireLimits.maxLabelLength else { return false }
            out.append(UInt8(label.count))
            out.append(contentsOf: label)
            label.removeAll()
            return true
        }
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\\") {
                guard i + 1 < bytes.count else { return nil }
                if i + 3 < bytes.count, let d = UInt8(String(decoding: bytes[(i + 1)...(i + 3)], as: UTF8.self)),
                    bytes[(i + 1)...(i + 3)].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
                {
                    label.append(d)
                    i += 4
                } else {
                    label.append(bytes[i + 1])
                    i += 2
                }
            } else if c == UInt8(ascii: ".") {
                guard flush() else { return nil }
                i += 1
            } else {
                label.append(c)
                i += 1
            }
        }
        if !label.isEmpty { guard flush() else { return nil } }
        out.append(0)
        return out.count <= WireLimits.maxNameLength ? out : nil
    }

    /// Presentation format of an uncompressed wire name, with a trailing dot.
    public static func text(_ name: [UInt8]) -> String {
        name.withUnsafeBytes { text($0) }
    }

    /// Presentation format of an uncompressed wire name, with a trailing dot.
    public static func text(_ name: UnsafeRawBufferPointer) -> String {
        var s = ""
        var pos = 0
        while pos < name.count, name[pos] != 0 {
            let l = Int(name[pos])
            guard pos + 1 + l <= name.count else { break }
            for c in name[(pos + 1)..<(pos + 1 + l)] {
                switch c {
                case UInt8(ascii: "."), UInt8(ascii: "\\"), UInt8(ascii: "("), UInt8(ascii: ")"),
                    UInt8(ascii: ";"), UInt8(ascii: "\""), UInt8(ascii: "@"), UInt8(ascii: "$"):
                    s += "\\" + String(UnicodeScalar(c))
                case 0x21...0x7E:
                    s.append(Character(UnicodeScalar(c)))
                default:
                    let d = String(c)
                    s += "\\" + String(repeating: "0", count: 3 - d.count) + d
                }
            }
            s += "."
            pos += 1 + l
        }
        return s.isEmpty ? "." : s
    }
}
