/// Where domain names sit in a type's RDATA. This is the one table that three jobs read:
/// compressing names when records are written (RFC 3597 4), the DNSSEC canonical form
/// (RFC 4034 6.2), and finding hosts for the additional section.
public struct RDataLayout: Sendable, Equatable {
    public enum Shape: Sendable, Equatable {
        /// `count` names back to back after `prefix` fixed octets.
        case names(prefix: Int, count: Int)
        /// NAPTR (RFC 3403 4.1): ORDER, PREFERENCE, three character-strings, then REPLACEMENT.
        case naptr
    }

    public let shape: Shape
    /// Names may be compressed when written. RFC 3597 4 limits this to the RFC 1035 types.
    public let compressible: Bool
    /// Names are lowercased in the canonical form (RFC 4034 6.2). NSEC is not on the list
    /// (RFC 6840 5.1).
    public let canonicalLowercase: Bool
    /// The first name is a host whose addresses go in the additional section: NS (RFC 1035
    /// 3.3.11), MX (3.3.9) and SRV (RFC 2782).
    public let additionalTarget: Bool

    @usableFromInline init(_ shape: Shape, compressible: Bool = false, lowercase: Bool = true, additional: Bool = false) {
        self.shape = shape
        self.compressible = compressible
        canonicalLowercase = lowercase
        additionalTarget = additional
    }

    /// The layout of `type`, or nil when its RDATA holds no domain name.
    @inlinable
    public static func of(_ type: UInt16) -> RDataLayout? {
        switch type {
        case RRType.ns: return ns
        case 3, 4, RRType.cname, 7, 8, 9, RRType.ptr: return oneCompressible
        case RRType.soa, 14: return twoCompressible
        case RRType.mx: return mx
        case 17: return RDataLayout(.names(prefix: 0, count: 2))      // RP (RFC 1183)
        case 18, 21, 36: return RDataLayout(.names(prefix: 2, count: 1))  // AFSDB, RT, KX
        case 24, RRType.rrsig: return RDataLayout(.names(prefix: 18, count: 1))  // SIG, RRSIG signer
        case 26: return RDataLayout(.names(prefix: 2, count: 2))      // PX (RFC 2163)
        case 30, 39: return RDataLayout(.names(prefix: 0, count: 1))  // NXT, DNAME (RFC 6672)
        case RRType.srv: return RDataLayout(.names(prefix: 6, count: 1), additional: true)
        case RRType.naptr: return RDataLayout(.naptr)
        case RRType.nsec: return RDataLayout(.names(prefix: 0, count: 1), lowercase: false)
        default: return nil
        }
    }

    @usableFromInline static let ns = RDataLayout(.names(prefix: 0, count: 1), compressible: true, additional: true)
    @usableFromInline static let oneCompressible = RDataLayout(.names(prefix: 0, count: 1), compressible: true)
    @usableFromInline static let twoCompressible = RDataLayout(.names(prefix: 0, count: 2), compressible: true)
    @usableFromInline static let mx = RDataLayout(.names(prefix: 2, count: 1), compressible: true, additional: true)

    /// Calls `body` with the range of each uncompressed name in `rdata`, in order; false when
    /// the RDATA does not have this layout.
    @inlinable
    public func forEachName(in rdata: UnsafeRawBufferPointer, _ body: (Range<Int>) -> Void) -> Bool {
        var pos: Int
        let count: Int
        switch shape {
        case .names(let prefix, let n):
            pos = prefix
            count = n
        case .naptr:
            pos = 4
            for _ in 0..<3 {
                guard pos < rdata.count else { return false }
                pos += 1 + Int(rdata[pos])
            }
            count = 1
        }
        for _ in 0..<count {
            guard let end = RDataLayout.nameEnd(rdata, at: pos) else { return false }
            body(pos..<end)
            pos = end
        }
        return true
    }

    /// Where an uncompressed wire name starting at `start` ends, or nil if it is malformed.
    @inlinable
    public static func nameEnd(_ b: UnsafeRawBufferPointer, at start: Int) -> Int? {
        var i = start
        var length = 0
        while i < b.count {
            let n = Int(b[i])
            guard n & 0xC0 == 0 else { return nil }
            i += 1
            length += n + 1
            guard length <= WireLimits.maxNameLength else { return nil }
            if n == 0 { return i }
            i += n
        }
        return nil
    }
}

/// The DNSSEC canonical form and order of records (RFC 4034 6).
public enum Canonical {
    /// `rdata` in canonical form: embedded names lowercased for the types RFC 4034 6.2 lists
    /// (as `RDataLayout` says), everything else as it is.
    public static func rdata(type: UInt16, _ rdata: UnsafeRawBufferPointer) -> [UInt8] {
        var out = Array(rdata)
        guard let layout = RDataLayout.of(type), layout.canonicalLowercase else { return out }
        _ = layout.forEachName(in: rdata) { range in
            for i in range { out[i] = Name.lower(out[i]) }
        }
        return out
    }

    /// `rdata` in canonical form, from an array.
    public static func rdata(type: UInt16, _ rdata: [UInt8]) -> [UInt8] {
        rdata.withUnsafeBytes { Canonical.rdata(type: type, $0) }
    }

    /// Whether two RDATA are the same record (RFC 2181 5): equal in canonical form.
    public static func sameRData(type: UInt16, _ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard RDataLayout.of(type)?.canonicalLowercase == true else { return a.elementsEqual(b) }
        return Canonical.rdata(type: type, a) == Canonical.rdata(type: type, b)
    }

    /// The canonical order of an RRset's records: their canonical RDATA compared as
    /// left-justified unsigned octet sequences, a shorter prefix first (RFC 4034 6.3).
    public static func ordered(_ rdatas: [[UInt8]]) -> [[UInt8]] {
        rdatas.sorted { $0.lexicographicallyPrecedes($1) }
    }
}

/// Who owns a record being written: the question name (written as a pointer to offset 12) or
/// another uncompressed name (compressed against what the message already holds).
public enum RecordOwner {
    case question
    case name(UnsafeRawBufferPointer)
}

extension MessageWriter {
    /// Writes one record (RFC 1035 4.1.3): its owner, TYPE, CLASS (IN unless given), TTL, RDLENGTH and RDATA,
    /// with the names inside the RDATA compressed where `RDataLayout` allows it. False (and
    /// what was written of it left for the caller to rewind) when it does not fit.
    @inlinable
    public mutating func record(owner: RecordOwner, type: UInt16, rrclass: UInt16 = RRClass.in, ttl: UInt32, rdata: UnsafeRawBufferPointer) -> Bool {
        switch owner {
        case .question:
            guard fits(2) else { return false }
            u16(0xC00C)
        case .name(let n):
            guard name(n, compress: true) else { return false }
        }
        guard fits(10) else { return false }
        u16(type)
        u16(rrclass)
        u32(ttl)
        let lengthAt = position
        u16(0)
        if let layout = RDataLayout.of(type), layout.compressible {
            guard compressedRData(rdata, layout: layout) else { return false }
        } else {
            guard fits(rdata.count) else { return false }
            raw(rdata)
        }
        set16(at: lengthAt, UInt16(position - lengthAt - 2))
        return true
    }

    /// RDATA whose names may be compressed (RFC 3597 4): octets between names as they are.
    @inlinable
    mutating func compressedRData(_ rdata: UnsafeRawBufferPointer, layout: RDataLayout) -> Bool {
        var pos = 0
        var ok = true
        let valid = layout.forEachName(in: rdata) { range in
            guard ok else { return }
            guard fits(range.lowerBound - pos) else { ok = false; return }
            raw(UnsafeRawBufferPointer(rebasing: rdata[pos..<range.lowerBound]))
            ok = name(UnsafeRawBufferPointer(rebasing: rdata[range]), compress: true)
            pos = range.upperBound
        }
        guard valid, ok, fits(rdata.count - pos) else { return false }
        raw(UnsafeRawBufferPointer(rebasing: rdata[pos...]))
        return true
    }
}

extension MessageWriter {
    /// Starts the OPT pseudo-record (RFC 6891 6.1.2): root owner, TYPE 41, the UDP payload in
    /// CLASS, the extended RCODE, version 0 and the DO flag in TTL. Options follow with
    /// `ednsOption`; `endOPT` sets RDLENGTH. Returns where RDLENGTH is. The caller has kept
    /// room for the whole record.
    @inlinable
    public mutating func beginOPT(udpPayload: UInt16, extendedRCode: UInt8, dnssecOK: Bool) -> Int {
        u8(0)
        u16(RRType.opt)
        u16(udpPayload)
        u8(extendedRCode)
        u8(0)
        u16(dnssecOK ? 0x8000 : 0)
        let lengthAt = position
        u16(0)
        return lengthAt
    }

    /// One EDNS option's code and length (RFC 6891 6.1.2); its `length` octets follow.
    @inlinable
    public mutating func ednsOption(code: UInt16, length: Int) {
        u16(code)
        u16(UInt16(truncatingIfNeeded: length))
    }

    /// Ends the OPT record begun at `lengthAt`.
    @inlinable
    public mutating func endOPT(lengthAt: Int) {
        set16(at: lengthAt, UInt16(truncatingIfNeeded: position - lengthAt - 2))
    }
}
