import DNSSEC
import DNSWire
import ZoneStore

/// How long signatures live (RFC 6781 4.4.2): valid from `inceptionOffset` before the moment
/// of signing (clocks of validators may be behind) for `validity`, and made again once less
/// than `refresh` is left.
public struct SigningPolicy: Sendable, Equatable {
    public var validity: UInt32
    public var inceptionOffset: UInt32
    public var refresh: UInt32
    /// TTL of the DNSKEY, CDS and CDNSKEY sets.
    public var dnskeyTTL: UInt32
    /// Signatures cached per answering thread.
    public var cacheEntries: Int

    public init(validity: UInt32 = 14 * 86_400, inceptionOffset: UInt32 = 3_600, refresh: UInt32 = 3 * 86_400, dnskeyTTL: UInt32 = 3_600, cacheEntries: Int = 20_000) {
        self.validity = max(validity, 120)
        self.inceptionOffset = inceptionOffset
        self.refresh = min(refresh, self.validity / 2)
        self.dnskeyTTL = dnskeyTTL
        self.cacheEntries = max(cacheEntries, 16)
    }
}

/// Everything the answer path needs to sign one zone at one moment: which keys are in the
/// DNSKEY set and which sign, built off the query path (at load, at reload, and whenever a
/// key's timing passes a publish, activate, inactive or delete time).
public final class ZoneSigner: Sendable {
    public let apex: [UInt8]
    public let policy: SigningPolicy
    /// DNSKEY RDATA of every published key.
    public let dnskeys: [[UInt8]]
    /// CDS and CDNSKEY RDATA (RFC 7344) of the published KSKs/CSKs.
    public let cds: [[UInt8]]
    public let cdnskeys: [[UInt8]]
    /// Keys that sign the DNSKEY, CDS and CDNSKEY sets (active KSKs/CSKs).
    public let keySigners: [ZoneKey]
    /// Keys that sign everything else (active ZSKs, or the active CSKs when there is none).
    public let dataSigners: [ZoneKey]
    /// Changes whenever the key state does; part of every signature cache key.
    public let epoch: UInt64

    /// The signer of zone `apex` at UNIX time `now`, or nil when none of `keys` is active for it.
    public init?(apex: [UInt8], keys: [ZoneKey], now: UInt32, policy: SigningPolicy) {
        let mine = keys.filter { $0.zone == Name.lowercased(apex) }
        let published = mine.filter { $0.timing.isPublished(at: now) }
        let active = published.filter { $0.timing.isActive(at: now) }
        let seps = active.filter(\.isSEP)
        let zsks = active.filter { !$0.isSEP }
        guard !seps.isEmpty || !zsks.isEmpty else { return nil }
        self.apex = Name.lowercased(apex)
        self.policy = policy
        dnskeys = published.map(\.dnskey)
        cds = published.filter(\.isSEP).map(\.ds)
        cdnskeys = published.filter(\.isSEP).map(\.dnskey)
        keySigners = seps.isEmpty ? zsks : seps
        dataSigners = zsks.isEmpty ? seps : zsks
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for k in published { h = (h ^ UInt64(k.tag) ^ (k.timing.isActive(at: now) ? 1 << 20 : 0)) &* 0x100_0000_01B3 }
        epoch = h
    }

    /// The first time from `now` on at which zone `apex` has no active key, so that answers
    /// go out unsigned: `now` itself when none is active now, nil when the keys' timing sets
    /// no end. Only the keys' Inactive and Delete times can end signing.
    public static func signsUntil(apex: [UInt8], keys: [ZoneKey], now: UInt32) -> UInt32? {
        let zone = Name.lowercased(apex)
        let mine = keys.filter { $0.zone == zone }
        let ends = mine.flatMap { [$0.timing.inactive, $0.timing.delete].compactMap { $0 } }.filter { $0 > now }
        for t in ([now] + ends.sorted()) where !mine.contains(where: { $0.timing.isActive(at: t) }) { return t }
        return nil
    }

    /// Which of `keys` are published and active at `now`, as one comparable value: a new signer
    /// is built when it changes.
    public static func state(of keys: [ZoneKey], at now: UInt32) -> [String] {
        keys.map { "\(Name.text($0.zone)) \($0.tag) \($0.timing.isPublished(at: now)) \($0.timing.isActive(at: now))" }
    }
}

/// Signatures already made, kept by each answering thread (no lock on the query path): keyed by
/// what the RRset is (the signer's epoch, owner, type, TTL and content), so a steady load of the
/// same answers signs nothing. Two generations bound it: when the newer one fills, the older is
/// dropped, and a hit in the older one moves the entry forward.
final class SignatureCache {
    struct Entry {
        var key: [UInt8]
        var signatures: [[UInt8]]
        var expiration: UInt32
    }

    let capacity: Int
    var current: [UInt64: Entry] = [:]
    var previous: [UInt64: Entry] = [:]
    /// The key being built for the current lookup.
    var scratch: [UInt8] = []

    init(capacity: Int) {
        self.capacity = capacity
        scratch.reserveCapacity(1024)
    }

    func lookup(now: UInt32, refresh: UInt32) -> [[UInt8]]? {
        let h = SignatureCache.hash(scratch)
        if let e = current[h], e.key == scratch, !expiring(e, now, refresh) { return e.signatures }
        if let e = previous[h], e.key == scratch, !expiring(e, now, refresh) {
            store(e.signatures, expiration: e.expiration, hash: h)
            return e.signatures
        }
        return nil
    }

    func expiring(_ e: Entry, _ now: UInt32, _ refresh: UInt32) -> Bool {
        e.expiration &- now < refresh || Int32(bitPattern: e.expiration &- now) < 0
    }

    func store(_ signatures: [[UInt8]], expiration: UInt32, hash: UInt64? = nil) {
        if current.count >= capacity / 2 {
            previous = current
            current = [:]
        }
        current[hash ?? SignatureCache.hash(scratch)] = Entry(key: scratch, signatures: signatures, expiration: expiration)
    }

    static func hash(_ b: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for x in b { h = (h ^ UInt64(x)) &* 0x100_0000_01B3 }
        return h
    }
}

extension Responder {
    /// The thread's signature cache, made on first use.
    func signatureCache(_ signer: ZoneSigner) -> SignatureCache {
        if let c = scratch.signatureCache { return c }
        let c = SignatureCache(capacity: signer.policy.cacheEntries)
        scratch.signatureCache = c
        return c
    }

    /// The owner's octets, lowercased.
    func ownerBytes(_ owner: Owner) -> [UInt8] {
        switch owner {
        case .question: return Array(UnsafeRawBufferPointer(rebasing: buffer.name[0..<question.nameLength]))
        case .name(let n): return Name.lowercased(Array(n))
        }
    }

    /// Writes the RRSIGs over an RRset just written (RFC 4035 3.1.1): from the cache, or made
    /// with the zone's active keys. `content` is what identifies the set beyond owner, type and
    /// TTL; `rdatas` gives its records on a miss. Returns how many were written, nil when they
    /// do not fit.
    mutating func writeSignatures(owner: Owner, type: UInt16, ttl: UInt32, keys: [ZoneKey], content: (inout [UInt8]) -> Void,
                                  rdatas: () -> [[UInt8]]) -> Int? {
        guard let signer else { return 0 }
        let cache = signatureCache(signer)
        let now = buffer.nowSeconds
        cache.scratch.removeAll(keepingCapacity: true)
        withUnsafeBytes(of: signer.epoch.littleEndian) { cache.scratch.append(contentsOf: $0) }
        cache.scratch += [UInt8(type >> 8), UInt8(type & 0xFF), UInt8(ttl >> 24), UInt8((ttl >> 16) & 0xFF), UInt8((ttl >> 8) & 0xFF), UInt8(ttl & 0xFF)]
        // The owner goes into the key lowercased, straight from where it is: no copy on a hit.
        let ownerStart = cache.scratch.count
        switch owner {
        case .question: cache.scratch += UnsafeRawBufferPointer(rebasing: buffer.name[0..<question.nameLength])
        case .name(let n): for b in n { cache.scratch.append(Name.lower(b)) }
        }
        let ownerRange = ownerStart..<cache.scratch.count
        content(&cache.scratch)
        var sigs = cache.lookup(now: now, refresh: signer.policy.refresh)
        if sigs == nil {
            signaturesMade += 1
            let name = Array(cache.scratch[ownerRange])
            let records = rdatas()
            let expiration = now &+ signer.policy.validity
            sigs = keys.compactMap { try? RRSIG.make(owner: name, type: type, ttl: ttl, rdatas: records, key: $0,
                                                      inception: now &- signer.policy.inceptionOffset, expiration: expiration) }
            cache.store(sigs ?? [], expiration: expiration)
        } else {
            signatureHits += 1
        }
        for sig in sigs ?? [] {
            guard sig.withUnsafeBytes({ w.record(owner: owner, type: RRType.rrsig, ttl: ttl, rdata: $0) }) else { return nil }
        }
        return sigs?.count ?? 0
    }

    /// Signs zone set `set` (owned by `owner`, with `ttl` when it is not the set's own):
    /// the number of RRSIGs written, nil when they do not fit.
    mutating func signSet(_ set: Int, zone: Zone, owner: Owner, ttl: UInt32? = nil) -> Int? {
        guard let signer else { return 0 }
        let info = zone.sets[set]
        let range = Int(info.firstRecord)..<Int(info.firstRecord) + Int(info.count)
        return writeSignatures(owner: owner, type: info.type, ttl: ttl ?? info.ttl, keys: signer.dataSigners, content: { key in
            for r in range { zone.withRData(r) { key += [UInt8($0.count >> 8), UInt8($0.count & 0xFF)]; key += $0 } }
        }, rdatas: { range.map { r in zone.withRData(r) { Array($0) } } })
    }

    /// The types at node `node` for an NSEC bit map: its RRsets, a pool's addresses, the keys at
    /// a signed apex.
    func typesAt(node: Int, zone: Zone) -> [UInt16] {
        let n = zone.nodes[node]
        var types = (Int(n.firstSet)..<Int(n.firstSet) + Int(n.setCount)).map { zone.sets[$0].type }
        if n.pool >= 0 {
            types += snapshot.pools.runtimes[Int(n.pool)].plan.shape.isCNAME ? [RRType.cname] : [RRType.a, RRType.aaaa]
        }
        if node == zone.apex, let signer = zoneSigner {
            types.append(RRType.dnskey)
            if !signer.cds.isEmpty { types += [RRType.cds, RRType.cdnskey] }
        }
        return types
    }

    /// The compact denial NSEC (RFC 9824) for `owner` listing `types`, with its RRSIG, in the
    /// authority section. False when it does not fit.
    mutating func writeDenial(owner: Owner, types: [UInt16], zone: Zone) -> Bool {
        let name = ownerBytes(owner)
        let rdata = CompactDenial.nsec(owner: name, types: types)
        let ttl = zone.negativeTTL
        guard rdata.withUnsafeBytes({ w.record(owner: owner, type: RRType.nsec, ttl: ttl, rdata: $0) }),
              let signer, let n = writeSignatures(owner: owner, type: RRType.nsec, ttl: ttl, keys: signer.dataSigners,
                                                  content: { $0 += rdata }, rdatas: { [rdata] }) else { return false }
        counts.ns += 1 + n
        return true
    }

    /// The DNSKEY, CDS or CDNSKEY set at a signed apex (RFC 4034 2, RFC 7344), signed by the
    /// KSKs when the query set DO; false when the query is not for one of them.
    mutating func keySetAnswer(owner: Owner) -> Bool {
        guard let signer = zoneSigner else { return false }
        let type = question.type
        let rdatas: [[UInt8]]
        switch type {
        case RRType.dnskey: rdatas = signer.dnskeys
        case RRType.cds: rdatas = signer.cds
        case RRType.cdnskey: rdatas = signer.cdnskeys
        default: return false
        }
        guard !rdatas.isEmpty else { return false }
        let ttl = signer.policy.dnskeyTTL
        let start = w.mark()
        for r in rdatas {
            guard r.withUnsafeBytes({ w.record(owner: owner, type: type, ttl: ttl, rdata: $0) }) else {
                w.rewind(to: start)
                tc = true
                return true
            }
        }
        guard let n = writeSignatures(owner: owner, type: type, ttl: ttl, keys: signer.keySigners, content: { k in for r in rdatas { k += r } },
                                      rdatas: { rdatas }) else {
            w.rewind(to: start)
            tc = true
            return true
        }
        counts.an += rdatas.count + n
        return true
    }
}
