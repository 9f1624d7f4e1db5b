import DNSWire

/// Builds RRSIG records (RFC 4034 3) over an RRset in canonical form.
public enum RRSIG {
    /// The RRSIG Labels field of an owner (RFC 4034 3.1.3): its labels, not counting the root
    /// nor a leading `*`.
    public static func labels(of owner: [UInt8]) -> UInt8 {
        var n = 0
        var pos = 0
        var first = true
        while pos < owner.count, owner[pos] != 0 {
            let l = Int(owner[pos])
            if !(first && l == 1 && pos + 1 < owner.count && owner[pos + 1] == UInt8(ascii: "*")) { n += 1 }
            first = false
            pos += 1 + l
        }
        return UInt8(min(n, 255))
    }

    /// The RRSIG RDATA before the signature (RFC 4034 3.1): type covered, algorithm, labels,
    /// original TTL, expiration, inception, key tag, signer's name (lowercased).
    public static func header(type: UInt16, algorithm: UInt8, labels: UInt8, ttl: UInt32, expiration: UInt32, inception: UInt32, tag: UInt16, signer: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [UInt8(type >> 8), UInt8(type & 0xFF), algorithm, labels]
        for v in [ttl, expiration, inception] { out += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
        out += [UInt8(tag >> 8), UInt8(tag & 0xFF)]
        return out + Name.lowercased(signer)
    }

    /// The octets signed (RFC 4034 3.1.8.1): the RRSIG header, then every record of the set
    /// in canonical form (lowercased owner, original TTL, canonical RDATA) in canonical order
    /// (RFC 4034 6.3), duplicates dropped.
    public static func signedData(header: [UInt8], owner: [UInt8], type: UInt16, ttl: UInt32, rdatas: [[UInt8]]) -> [UInt8] {
        let ownerLower = Name.lowercased(owner)
        var canonical = Canonical.ordered(rdatas.map { Canonical.rdata(type: type, $0) })
        var i = 1
        while i < canonical.count {
            if canonical[i] == canonical[i - 1] { canonical.remove(at: i) } else { i += 1 }
        }
        var out = header
        for r in canonical {
            out += ownerLower
            out += [UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
            out += [UInt8(ttl >> 24), UInt8((ttl >> 16) & 0xFF), UInt8((ttl >> 8) & 0xFF), UInt8(ttl & 0xFF)]
            out += [UInt8(r.count >> 8), UInt8(r.count & 0xFF)]
            out += r
        }
        return out
    }

    /// A complete RRSIG RDATA for the set `owner`/`type` signed with `key`, valid from
    /// `inception` to `expiration` (UNIX seconds, RFC 4034 3.1.5 serial arithmetic applies).
    public static func make(owner: [UInt8], type: UInt16, ttl: UInt32, rdatas: [[UInt8]], key: ZoneKey,
                            inception: UInt32, expiration: UInt32) throws(KeyError) -> [UInt8] {
        let head = header(type: type, algorithm: key.key.algorithm.rawValue, labels: labels(of: owner), ttl: ttl,
                          expiration: expiration, inception: inception, tag: key.tag, signer: key.zone)
        let signature = try key.key.sign(signedData(header: head, owner: owner, type: type, ttl: ttl, rdatas: rdatas))
        return head + signature
    }
}

/// The type bit maps of NSEC records (RFC 4034 4.1.2).
public enum TypeBitmap {
    public static func encode(_ types: [UInt16]) -> [UInt8] {
        var out: [UInt8] = []
        let sorted = Set(types).sorted()
        var i = 0
        while i < sorted.count {
            let window = UInt8(sorted[i] >> 8)
            var bits = [UInt8](repeating: 0, count: 32)
            var used = 0
            while i < sorted.count, UInt8(sorted[i] >> 8) == window {
                let low = Int(sorted[i] & 0xFF)
                bits[low / 8] |= 0x80 >> UInt8(low % 8)
                used = low / 8 + 1
                i += 1
            }
            out += [window, UInt8(used)] + bits[0..<used]
        }
        return out
    }

    /// The types a bit map lists; nil if it is malformed.
    public static func decode(_ map: [UInt8]) -> [UInt16]? {
        var types: [UInt16] = []
        var pos = 0
        while pos < map.count {
            guard pos + 2 <= map.count else { return nil }
            let window = UInt16(map[pos])
            let length = Int(map[pos + 1])
            guard (1...32).contains(length), pos + 2 + length <= map.count else { return nil }
            for b in 0..<length {
                for bit in 0..<8 where map[pos + 2 + b] & (0x80 >> UInt8(bit)) != 0 {
                    types.append(window << 8 | UInt16(b * 8 + bit))
                }
            }
            pos += 2 + length
        }
        return types
    }
}

/// Compact denial of existence (RFC 9824): one NSEC at the query name whose next name is the
/// name's immediate successor (`\000.` prepended), so it covers nothing else and nothing can be
/// walked; NXDOMAIN becomes NODATA with the NXNAME type in the bit map.
public enum CompactDenial {
    /// The NXNAME meta-type (RFC 9824 3.1).
    public static let nxname: UInt16 = 128

    /// The NSEC RDATA for `owner` (lowercased wire): next name `\000.owner`, and `types` with
    /// RRSIG and NSEC added (RFC 9824 3).
    public static func nsec(owner: [UInt8], types: [UInt16]) -> [UInt8] {
        let next: [UInt8] = owner.count <= 253 ? [1, 0] + owner : owner
        return next + TypeBitmap.encode(types + [RRType.rrsig, RRType.nsec])
    }
}
