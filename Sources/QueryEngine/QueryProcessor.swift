import DNSSEC
import DNSWire
import GeoTopology
import Selection
import ZoneStore

/// Answers one query: `(query octets, transport, snapshot) -> response octets`.
///
/// The steps follow RFC 1034 4.3.2: find the zone (REFUSED when none is served), walk down
/// from its apex to the query name, stopping at a zone cut (referral), at the name (answer,
/// CNAME, NODATA) or where the name ends (wildcard per RFC 4592, else NXDOMAIN). A pure
/// function of its inputs: no I/O, no locks, and no heap allocation, the response is written
/// into the caller's reusable `MessageBuffer`.
public enum QueryProcessor {
    /// - Parameter client: the packet's source address; pools use it unless the query carries
    ///   an EDNS Client Subnet option with a source prefix above 0 (RFC 7871 7.1.2).
    public static func respond(
        to query: UnsafeRawBufferPointer, transport: Transport, snapshot: Snapshot, scratch: QueryScratch,
        client: IPAddress = QueryProcessor.unknownClient
    ) -> QueryOutcome {
        // RFC 1035 4.1.1: no header, nothing to answer; a response is never answered (loops).
        guard query.count >= WireLimits.headerLength else { return .drop }
        let flags = Header.flags(query)
        guard flags & Header.qr == 0 else { return .drop }
        var r = Responder(query: query, transport: transport, snapshot: snapshot, scratch: scratch, client: client)
        return r.run()
    }

    /// Stands in for a source address that is not IP (tests, Unix sockets): 0.0.0.0.
    public static let unknownClient = IPAddress(family: .v4, bytes: SIMD16(repeating: 0))
}

/// The owner of records being written: the question name (a pointer to offset 12) or a name
/// held in one of the buffer's name areas.
/// The owner of a record being written (DNSWire's `RecordOwner`).
typealias Owner = RecordOwner

struct Responder {
    let query: UnsafeRawBufferPointer
    let transport: Transport
    let snapshot: Snapshot
    /// Not retained: a `Responder` lives inside one `respond` call, whose caller holds the
    /// scratch for all of it (a retain and release per query cost 48 instructions, 1.3%).
    unowned(unsafe) let scratch: QueryScratch
    let buffer: MessageBuffer
    var w: MessageWriter
    var question = Question(end: 0, nameLength: 0, type: 0, qclass: 0)
    var edns: EDNS? = nil
    var aa = false
    var tc = false
    var rcode: UInt16 = RCode.noError
    var counts = (an: 0, ns: 0, ar: 0)
    /// Octets kept free for the OPT record.
    var optReserve = 0
    /// The packet's source address, and the address pools select for (ECS or source).
    let source: IPAddress
    var client: IPAddress
    /// The longest client prefix any part of the answer depended on (RFC 7871 7.2.1).
    var ecsScope = 0
    /// The query's server cookie was valid.
    var cookieValid = false
    /// Where the last pool answer came from (for the answers-by-pool-and-site metric).
    var poolAnswer = PoolAnswerSource.none
    /// The signer of the zone being answered from, when the zone is signed (its DNSKEY set is
    /// served whatever the query asks), and `signer` when the query also set DO (RFC 3225):
    /// only then are RRSIGs and denial records added.
    var zoneSigner: ZoneSigner?
    var signer: ZoneSigner?
    var signaturesMade = 0
    var signatureHits = 0
    /// Where the first name of the answer was found, for rate limiting.
    var rateSource = RateSource.none

    init(query: UnsafeRawBufferPointer, transport: Transport, snapshot: Snapshot, scratch: QueryScratch, client: IPAddress) {
        self.query = query
        self.transport = transport
        self.snapshot = snapshot
        self.scratch = scratch
        buffer = scratch.buffer
        source = client
        self.client = client
        w = MessageWriter(buffer: buffer, limit: WireLimits.minUDPPayload)
    }

    mutating func run() -> QueryOutcome {
        let opcode = Header.opcode(query)
        // NOTIFY, UPDATE, IQUERY, STATUS and unassigned opcodes are not served. Their header
        // format is not ours to read, so nothing of it is echoed but the ID and the opcode (as
        // NSD and gdnsd answer): no question, no RD or CD.
        guard opcode == Opcode.query else { return notImplemented() }
        // A question is echoed when there is exactly one and it reads cleanly.
        var haveQuestion = false
        if Header.qdcount(query) == 1 {
            do throws(WireError) {
                question = try QueryParser.question(query, nameOut: buffer.name)
                haveQuestion = true
            } catch {}
        }
        guard haveQuestion else { return finish(rcode: RCode.formErr, withQuestion: false, withOPT: false) }
        do throws(WireError) {
            edns = try QueryParser.edns(query, after: question)
        } catch {
            // A malformed option inside a well-formed OPT gets FORMERR with OPT (RFC 7871 7.1.1);
            // a broken or repeated OPT gets FORMERR without (RFC 6891 6.1.1).
            if case .badOption = error {
                edns = EDNS(udpPayload: 512, version: 0, dnssecOK: false, nsidRequested: false, clientSubnet: nil)
                return finish(rcode: RCode.formErr, withQuestion: true, withOPT: true)
            }
            return finish(rcode: RCode.formErr, withQuestion: true, withOPT: false)
        }
        if let e = edns, e.hasCookie, snapshot.config.cookies.enabled, e.cookieLength > 8 {
            // RFC 7873 5.2.4: a server cookie that is not ours (or too old) gets BADCOOKIE and
            // a fresh cookie, so the client retries with it.
            let cookie = UnsafeRawBufferPointer(rebasing: query[e.cookieOffset..<(e.cookieOffset + e.cookieLength)])
            cookieValid = ServerCookie.isValid(cookie, client: source, now: buffer.nowSeconds, config: snapshot.config.cookies)
            if !cookieValid { return finish(rcode: RCode.badCookie, withQuestion: true, withOPT: true) }
        }
        if let e = edns, e.version > 0 {
            // RFC 6891 6.1.3: BADVERS, with the highest version we support (0).
            edns?.clientSubnet = nil
            return finish(rcode: RCode.badVers, withQuestion: true, withOPT: true)
        }
        var limit: Int
        switch transport {
        case .tcp: limit = WireLimits.maxMessageLength
        case .udp:
            if let e = edns {
                limit = max(WireLimits.minUDPPayload, min(Int(e.udpPayload), snapshot.config.maxUDPPayload))
            } else {
                limit = WireLimits.minUDPPayload
            }
        }
        if transport == .udp, !cookieValid, snapshot.config.cookies.enabled, let cap = snapshot.config.cookies.cookielessUDPLimit {
            limit = min(limit, cap)
        }
        if let ecs = edns?.clientSubnet, ecs.sourcePrefix > 0 {
            // RFC 7871 7.1.2: select for the client's subnet; /0 means "use the resolver's address".
            client = IPAddress(family: ecs.family == 1 ? .v4 : .v6, bytes: ecs.address)
        }
        w.limit = limit
        writeHeaderAndQuestion()
        optReserve = optSize()
        w.limit = limit - optReserve

        switch question.qclass {
        case RRClass.in:
            answerIN()
        case RRClass.ch:
            answerCH()
        default:
            rcode = RCode.refused
        }
        return complete()
    }

    // MARK: - Header, OPT, completion

    mutating func writeHeaderAndQuestion() {
        w.reset()
        w.u16(Header.id(query))
        w.u16(0)
        w.u32(0)
        w.u32(0)
        w.raw(UnsafeRawBufferPointer(rebasing: query[WireLimits.headerLength..<question.end]))
        w.addCompressionTargets(nameAt: WireLimits.headerLength)
    }

    /// Size of the OPT record this response will carry (RFC 6891 6.1.2), 0 without EDNS.
    func optSize() -> Int {
        guard let e = edns else { return 0 }
        var size = 11
        if e.nsidRequested, let nsid = snapshot.config.identity.nsid { size += 4 + nsid.count }
        if let ecs = e.clientSubnet { size += 8 + ecs.addressLength }
        if e.hasCookie && snapshot.config.cookies.enabled { size += 4 + 24 }
        return size
    }

    mutating func writeOPT() {
        guard let e = edns else { return }
        let lengthAt = w.beginOPT(udpPayload: UInt16(snapshot.config.maxUDPPayload), extendedRCode: UInt8(truncatingIfNeeded: rcode >> 4), dnssecOK: e.dnssecOK)
        if e.nsidRequested, let nsid = snapshot.config.identity.nsid {
            w.ednsOption(code: EDNSOptionCode.nsid, length: nsid.count)
            nsid.withUnsafeBytes { w.raw($0) }
        }
        if let ecs = e.clientSubnet {
            // RFC 7871 7.2.1: echo FAMILY, SOURCE PREFIX-LENGTH and ADDRESS; SCOPE is the prefix
            // the answer depends on: 0 for answers that do not depend on the client, and 0
            // for a /0 source (7.1.2).
            w.ednsOption(code: EDNSOptionCode.clientSubnet, length: 4 + ecs.addressLength)
            w.u16(ecs.family)
            w.u8(ecs.sourcePrefix)
            w.u8(ecs.sourcePrefix == 0 ? 0 : UInt8(min(ecsScope, ecs.family == 1 ? 32 : 128)))
            for i in 0..<ecs.addressLength { w.u8(ecs.address[i]) }
        }
        if e.hasCookie && snapshot.config.cookies.enabled {
            // The client cookie back, and a fresh server cookie (RFC 9018 4).
            let client = UnsafeRawBufferPointer(rebasing: query[e.cookieOffset..<(e.cookieOffset + 8)])
            let (head, hash) = ServerCookie.make(client, client: source, now: buffer.nowSeconds, config: snapshot.config.cookies)
            w.ednsOption(code: EDNSOptionCode.cookie, length: 24)
            w.raw(client)
            w.u32(UInt32(head >> 32))
            w.u32(UInt32(head & 0xFFFF_FFFF))
            // SipHash's output goes out in its own byte order (little-endian).
            w.u32(UInt32(hash & 0xFFFF_FFFF).byteSwapped)
            w.u32(UInt32(hash >> 32).byteSwapped)
        }
        w.endOPT(lengthAt: lengthAt)
        counts.ar += 1
    }

    /// NOTIMP for an opcode other than QUERY: ID, QR, the opcode and the RCODE; every count 0.
    mutating func notImplemented() -> QueryOutcome {
        rcode = RCode.notImp
        w.limit = WireLimits.maxMessageLength
        w.reset()
        w.u16(Header.id(query))
        w.u16(Header.qr | (Header.flags(query) & 0x7800) | RCode.notImp)
        w.u32(0)
        w.u32(0)
        return QueryOutcome(dropped: false, length: w.position, rcode: rcode, qtype: 0, truncated: false)
    }

    /// An error response: header, optionally the question and OPT, nothing else.
    mutating func finish(rcode: UInt16, withQuestion: Bool, withOPT: Bool) -> QueryOutcome {
        self.rcode = rcode
        w.limit = WireLimits.maxMessageLength
        if withQuestion {
            writeHeaderAndQuestion()
        } else {
            w.reset()
            w.u16(Header.id(query))
            w.u16(0)
            w.u32(0)
            w.u32(0)
        }
        if !withOPT { edns = nil }
        counts = (0, 0, 0)
        aa = false
        return complete(questionCount: withQuestion ? 1 : 0)
    }

    mutating func complete(questionCount: Int = 1) -> QueryOutcome {
        w.limit += optReserve
        writeOPT()
        let qflags = Header.flags(query)
        // QR, the query's opcode, AA, TC, RD and CD copied, RA clear (RFC 1035 4.1.1, RFC 6840 5.9).
        var flags: UInt16 = Header.qr | (qflags & 0x7800) | (qflags & (Header.rd | Header.cd))
        if aa { flags |= Header.aa }
        if tc { flags |= Header.tc }
        flags |= rcode & 0xF
        w.set16(at: 2, flags)
        w.set16(at: 4, UInt16(questionCount))
        w.set16(at: 6, UInt16(counts.an))
        w.set16(at: 8, UInt16(counts.ns))
        w.set16(at: 10, UInt16(counts.ar))
        var outcome = QueryOutcome(dropped: false, length: w.position, rcode: rcode, qtype: question.type, truncated: tc)
        outcome.cookieValid = cookieValid
        outcome.pool = poolAnswer
        outcome.signaturesMade = signaturesMade
        outcome.signatureHits = signatureHits
        outcome.rateSource = rateSource
        outcome.answers = UInt16(truncatingIfNeeded: counts.an)
        outcome.questionEnd = questionCount == 1 ? question.end : WireLimits.headerLength
        return outcome
    }

    // MARK: - Class CH: server identity

    mutating func answerCH() {
        let name = UnsafeRawBufferPointer(rebasing: buffer.name[0..<question.nameLength])
        let id = snapshot.config.identity
        var text: String? = nil
        if Responder.matches(name, "\u{02}id\u{06}server\u{00}") || Responder.matches(name, "\u{08}hostname\u{04}bind\u{00}") {
            text = id.identity
        } else if Responder.matches(name, "\u{07}version\u{04}bind\u{00}") || Responder.matches(name, "\u{07}version\u{06}server\u{00}") {
            text = id.version
        }
        guard let text, question.type == RRType.txt || question.type == RRType.any else {
            rcode = RCode.refused
            return
        }
        aa = true
        let string = Array(text.utf8.prefix(255))
        let rdata = [UInt8(string.count)] + string
        guard rdata.withUnsafeBytes({ w.record(owner: .question, type: RRType.txt, rrclass: RRClass.ch, ttl: 0, rdata: $0) }) else {
            tc = true
            return
        }
        counts.an += 1
    }

    static func matches(_ name: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        guard name.count == literal.utf8CodeUnitCount, let base = name.baseAddress else { return false }
        return memcmp(base, literal.utf8Start, name.count) == 0
    }

    // MARK: - Class IN

    mutating func answerIN() {
        switch question.type {
        case RRType.axfr, RRType.ixfr:
            // Zone transfers are not offered: not defined over UDP (RFC 5936 4.2), refused over TCP.
            rcode = transport == .udp ? RCode.notImp : RCode.refused
            return
        case RRType.maila, RRType.mailb:
            rcode = RCode.notImp
            return
        case RRType.opt:
            rcode = RCode.formErr
            return
        default:
            break
        }
        let name = UnsafeRawBufferPointer(rebasing: buffer.name[0..<question.nameLength])
        let labelCount = Responder.labels(of: name, into: buffer.labels)
        // RFC 4035 3.1.4.1: DS at a zone's apex is answered from the parent zone when we serve it.
        guard let (zoneIndex, apexLabel) = findZone(name, labelCount: labelCount, skipExactApex: question.type == RRType.ds) else {
            rcode = RCode.refused
            return
        }
        aa = true
        useSigner(of: zoneIndex)
        resolve(name: name, owner: .question, zone: snapshot.zones.zones[zoneIndex], zoneIndex: zoneIndex, apexLabel: apexLabel, labelCount: labelCount, chain: 0)
    }

    /// Signs what follows with zone `index`'s keys if the query asked for DNSSEC records.
    mutating func useSigner(of index: Int) {
        zoneSigner = index < snapshot.signers.count ? snapshot.signers[index] : nil
        signer = edns?.dnssecOK == true ? zoneSigner : nil
    }

    /// Label offsets of an uncompressed name; returns the number of labels (root excluded).
    static func labels(of name: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<Int>) -> Int {
        var pos = 0
        var n = 0
        while pos < name.count, name[pos] != 0 {
            out[n] = pos
            n += 1
            pos += 1 + Int(name[pos])
        }
        return n
    }

    @inline(__always)
    func suffix(_ name: UnsafeRawBufferPointer, _ label: Int, _ labelCount: Int) -> UnsafeRawBufferPointer {
        let start = label < labelCount ? buffer.labels[label] : name.count - 1
        return UnsafeRawBufferPointer(rebasing: name[start..<name.count])
    }

    /// The deepest served zone at or above `name`: its index and the label index of its apex.
    func findZone(_ name: UnsafeRawBufferPointer, labelCount: Int, skipExactApex: Bool) -> (Int, Int)? {
        let apexes = snapshot.zones.apexTable
        var skipped: Int? = nil
        for i in 0...labelCount {
            if let z = apexes.find(suffix(name, i, labelCount)) {
                if skipExactApex && i == 0 {
                    skipped = z
                    continue
                }
                return (z, i)
            }
        }
        return skipped.map { ($0, 0) }
    }

    /// Answers for `name` in `zone`, following CNAMEs; writes answer and authority records.
    mutating func resolve(name: UnsafeRawBufferPointer, owner: Owner, zone: Zone, zoneIndex: Int, apexLabel: Int, labelCount: Int, chain: Int) {
        let qtype = question.type
        // Walk down from the apex; each level must exist (empty non-terminals are nodes).
        var closest = zone.apex
        var label = apexLabel - 1
        var found = true
        while label >= 0 {
            guard let idx = zone.table.find(suffix(name, label, labelCount)) else {
                found = false
                break
            }
            if zone.nodes[idx].isDelegation && !(label == 0 && qtype == RRType.ds && chain == 0) {
                if chain == 0 {
                    rateSource = RateSource(.cut, zone: zoneIndex, node: idx)
                    referral(zone: zone, cut: idx)
                }
                // A CNAME into a delegated name ends the chain; the resolver follows it.
                return
            }
            closest = idx
            label -= 1
        }
        if found {
            if chain == 0 { rateSource = RateSource(.node, zone: zoneIndex, node: closest) }
            answer(node: closest, owner: owner, zone: zone, chain: chain)
            return
        }
        // RFC 4592 3.3.1: the source of synthesis is the wildcard child of the closest encloser.
        let wildcard = Int(zone.nodes[closest].wildcardChild)
        if wildcard >= 0 {
            if chain == 0 { rateSource = RateSource(.wildcard, zone: zoneIndex, node: wildcard) }
            answer(node: wildcard, owner: owner, zone: zone, chain: chain)
            return
        }
        if chain == 0 { rateSource = RateSource(.denied, zone: zoneIndex, node: -1) }
        // RFC 6604 2.1: the RCODE describes the last name in the chain. Signed, the name is
        // denied compactly (RFC 9824 3.2): NOERROR and an NSEC listing NXNAME.
        rcode = signer == nil ? RCode.nxDomain : RCode.noError
        negative(zone: zone, owner: owner, node: nil)
    }

    /// Writes the answer at an existing node (or a wildcard standing in for the name).
    mutating func answer(node: Int, owner: Owner, zone: Zone, chain: Int) {
        let qtype = question.type
        let info = zone.nodes[node]
        if node == zone.apex, zoneSigner != nil, keySetAnswer(owner: owner) { return }
        if info.pool >= 0, poolAnswer(pool: Int(info.pool), owner: owner, zone: zone, node: node, chain: chain) { return }
        if qtype == RRType.any {
            // RFC 8482 4.1: one RRset is enough.
            guard info.setCount > 0 else { return negative(zone: zone, owner: owner, node: node) }
            _ = answerSet(Int(info.firstSet), zone: zone, owner: owner)
            return
        }
        if let set = zone.set(node: node, type: qtype) {
            if answerSet(set, zone: zone, owner: owner) { additional(for: set, zone: zone) }
            return
        }
        if let cname = zone.set(node: node, type: RRType.cname) {
            guard answerSet(cname, zone: zone, owner: owner) else { return }
            zone.withRData(Int(zone.sets[cname].firstRecord)) { follow(target: $0, chain: chain) }
            return
        }
        negative(zone: zone, owner: owner, node: node)
    }

    /// Answers from a pool; false when the pool has nothing to say for this type (the
    /// name's static data answers instead).
    mutating func poolAnswer(pool: Int, owner: Owner, zone: Zone, node: Int, chain: Int) -> Bool {
        let pools = snapshot.pools
        let qtype = question.type
        let isCNAME = pools.runtimes[pool].plan.shape.isCNAME
        guard isCNAME || qtype == RRType.a || qtype == RRType.aaaa || qtype == RRType.any else { return false }
        let type = qtype == RRType.aaaa ? RRType.aaaa : RRType.a
        let outcome = Selector.answer(pools: pools, pool: pool, qtype: type, client: client, buffer: buffer)
        ecsScope = max(ecsScope, outcome.scope)
        poolAnswer = PoolAnswerSource(outcome)
        switch outcome.answer {
        case .addresses(let n):
            let ttl = outcome.pool >= 0 && outcome.pool < pools.runtimes.count ? pools.runtimes[outcome.pool].ttl : pools.runtimes[pool].ttl
            let start = w.mark()
            if writeAddresses(n, type: type, ttl: ttl, owner: owner), let sigs = signAddresses(n, type: type, ttl: ttl, owner: owner) {
                counts.an += n + sigs
            } else {
                w.rewind(to: start)
                tc = true
            }
        case .nodata:
            negative(zone: zone, owner: owner, node: node)
        case .cname(let p, let m):
            let rt = pools.runtimes[p]
            guard m >= 0, m < rt.plan.pool.members.count, let target = rt.plan.pool.members[m].target else { return true }
            let start = w.mark()
            guard writeCNAME(owner: owner, target: target, ttl: rt.ttl),
                  let sigs = writeSignatures(owner: owner, type: RRType.cname, ttl: rt.ttl, keys: signer?.dataSigners ?? [],
                                             content: { $0 += Name.lowercased(target) }, rdatas: { [target] }) else {
                w.rewind(to: start)
                tc = true
                return true
            }
            counts.an += 1 + sigs
            if qtype != RRType.cname { follow(target: target, chain: chain) }
        }
        return true
    }

    /// Writes the addresses a pool chose (RDATA in `buffer.answerRData`) as one RRset, whole or
    /// not at all.
    mutating func writeAddresses(_ n: Int, type: UInt16, ttl: UInt32, owner: Owner) -> Bool {
        let size = type == RRType.aaaa ? 16 : 4
        let list = UnsafeRawBufferPointer(buffer.answerRData)
        let start = w.mark()
        for i in 0..<n {
            let rdata = UnsafeRawBufferPointer(rebasing: list[(i * size)..<((i + 1) * size)])
            if !w.record(owner: owner, type: type, ttl: ttl, rdata: rdata) {
                w.rewind(to: start)
                return false
            }
        }
        return true
    }

    /// Signs the addresses a pool chose: the cache key holds them in canonical order (sorted in
    /// place, no copy on a hit), so every shuffle of one address set is one cache entry.
    mutating func signAddresses(_ n: Int, type: UInt16, ttl: UInt32, owner: Owner) -> Int? {
        guard let signer else { return 0 }
        let size = type == RRType.aaaa ? 16 : 4
        let list = UnsafeRawBufferPointer(buffer.answerRData)
        return writeSignatures(owner: owner, type: type, ttl: ttl, keys: signer.dataSigners, content: { key in
            let start = key.count
            key += UnsafeRawBufferPointer(rebasing: list[0..<(n * size)])
            Responder.sortChunks(&key, from: start, count: n, size: size)
        }, rdatas: { (0..<n).map { Array(list[($0 * size)..<(($0 + 1) * size)]) } })
    }

    /// Sorts `count` chunks of `size` octets at `start` of `bytes` in octet order (insertion
    /// sort: a pool answer has a handful of addresses).
    static func sortChunks(_ bytes: inout [UInt8], from start: Int, count: Int, size: Int) {
        guard count > 1 else { return }
        for i in 1..<count {
            var j = i
            while j > 0 {
                let a = start + (j - 1) * size, b = start + j * size
                guard bytes[b..<(b + size)].lexicographicallyPrecedes(bytes[a..<(a + size)]) else { break }
                for k in 0..<size { bytes.swapAt(a + k, b + k) }
                j -= 1
            }
        }
    }

    /// Writes one CNAME record (RFC 1035 3.3.1) with a compressed target.
    mutating func writeCNAME(owner: Owner, target: [UInt8], ttl: UInt32) -> Bool {
        target.withUnsafeBytes { w.record(owner: owner, type: RRType.cname, ttl: ttl, rdata: $0) }
    }

    /// Follows a CNAME to its target inside the served zones (RFC 1034 4.3.2 step 3a).
    mutating func follow(target: [UInt8], chain: Int) {
        target.withUnsafeBytes { follow(target: $0, chain: chain) }
    }

    /// Follows a CNAME to its target inside the served zones (RFC 1034 4.3.2 step 3a).
    mutating func follow(target t: UnsafeRawBufferPointer, chain: Int) {
        guard chain + 1 < snapshot.config.maxCNAMEChain else { return }
        guard t.count <= 255 else { return }
        for i in 0..<t.count {
            buffer.name2Original[i] = t[i]
            buffer.name2[i] = Name.lower(t[i])
        }
        let lower = UnsafeRawBufferPointer(rebasing: buffer.name2[0..<t.count])
        let original = UnsafeRawBufferPointer(rebasing: buffer.name2Original[0..<t.count])
        let labelCount = Responder.labels(of: lower, into: buffer.labels)
        guard let (zoneIndex, apexLabel) = findZone(lower, labelCount: labelCount, skipExactApex: false) else {
            // Outside the served zones: the resolver continues from here.
            return
        }
        useSigner(of: zoneIndex)
        resolve(name: lower, owner: .name(original), zone: snapshot.zones.zones[zoneIndex], zoneIndex: zoneIndex, apexLabel: apexLabel, labelCount: labelCount, chain: chain + 1)
    }

    /// NODATA at `node` (NXDOMAIN when `node` is nil): the zone's SOA in the authority
    /// section, TTL per RFC 2308 3; signed, with its RRSIG and the compact denial NSEC for
    /// `owner` (RFC 9824: NXNAME in the bit map of a name that does not exist).
    mutating func negative(zone: Zone, owner: Owner, node: Int?) {
        let start = w.mark()
        let ok: Bool = zone.origin.withUnsafeBytes { origin in
            guard writeSet(zone.soaSet, zone: zone, owner: .name(origin), ttl: zone.negativeTTL),
                  let sigs = signSet(zone.soaSet, zone: zone, owner: .name(origin), ttl: zone.negativeTTL) else { return false }
            counts.ns += 1 + sigs
            return true
        }
        guard ok else {
            w.rewind(to: start)
            tc = true
            return
        }
        guard signer != nil else { return }
        // The bit map must not list the type being denied (a pool may have no address of it).
        let present = node.map { typesAt(node: $0, zone: zone).filter { $0 != question.type } } ?? [CompactDenial.nxname]
        if !writeDenial(owner: owner, types: present, zone: zone) {
            w.rewind(to: start)
            tc = true
        }
    }

    /// A referral: NS in authority, AA clear, glue addresses in additional (RFC 1034 4.3.2 3b).
    mutating func referral(zone: Zone, cut: Int) {
        aa = false
        guard let ns = zone.set(node: cut, type: RRType.ns) else { return }
        let ok = zone.withName(node: cut) { writeSet(ns, zone: zone, owner: .name($0)) }
        guard ok else {
            tc = true
            return
        }
        counts.ns += Int(zone.sets[ns].count)
        if signer != nil {
            // RFC 4035 3.1.4: the DS set and its RRSIG, or the proof that there is none.
            let mark = w.mark()
            let proved: Bool = zone.withName(node: cut) { name in
                if let ds = zone.set(node: cut, type: RRType.ds) {
                    guard writeSet(ds, zone: zone, owner: .name(name)), let sigs = signSet(ds, zone: zone, owner: .name(name)) else { return false }
                    counts.ns += Int(zone.sets[ds].count) + sigs
                    return true
                }
                return writeDenial(owner: .name(name), types: typesAt(node: cut, zone: zone), zone: zone)
            }
            if !proved {
                w.rewind(to: mark)
                tc = true
                return
            }
        }
        forEachTarget(of: ns, zone: zone) { me, t in
            guard let idx = zone.table.find(t) else { return }
            me.addAddresses(of: idx, zone: zone)
        }
    }

    /// Addresses of NS, MX and SRV targets, from any served zone, if they fit (RFC 1035 3.3.11,
    /// 3.3.9; RFC 2782). Nothing is truncated for them (RFC 2181 9).
    mutating func additional(for set: Int, zone: Zone) {
        forEachTarget(of: set, zone: zone) { me, t in
            let labelCount = Responder.labels(of: t, into: me.buffer.labels)
            guard let (z, _) = me.findZone(t, labelCount: labelCount, skipExactApex: false) else { return }
            let target = me.snapshot.zones.zones[z]
            guard let idx = target.table.find(t) else { return }
            me.addAddresses(of: idx, zone: target)
        }
    }

    /// Calls `body` with each NS, MX or SRV target name of `set`, lowercased in scratch memory.
    mutating func forEachTarget(of set: Int, zone: Zone, _ body: (inout Self, UnsafeRawBufferPointer) -> Void) {
        let info = zone.sets[set]
        guard let layout = RDataLayout.of(info.type), layout.additionalTarget, case .names(let skip, _) = layout.shape else { return }
        let scratch = buffer.name3
        for r in Int(info.firstRecord)..<Int(info.firstRecord) + Int(info.count) {
            let length: Int = zone.withRData(r) { rdata in
                guard rdata.count > skip, rdata.count - skip <= 255 else { return 0 }
                for i in skip..<rdata.count { scratch[i - skip] = Name.lower(rdata[i]) }
                return rdata.count - skip
            }
            if length > 0 { body(&self, UnsafeRawBufferPointer(rebasing: scratch[0..<length])) }
        }
    }

    mutating func addAddresses(of node: Int, zone: Zone) {
        zone.withName(node: node) { owner in
            if let set = zone.set(node: node, type: RRType.a), writeSet(set, zone: zone, owner: .name(owner)) { counts.ar += Int(zone.sets[set].count) }
            if let set = zone.set(node: node, type: RRType.aaaa), writeSet(set, zone: zone, owner: .name(owner)) { counts.ar += Int(zone.sets[set].count) }
        }
    }

    /// Writes an answer RRset whole or sets TC (RFC 2181 9).
    mutating func answerSet(_ set: Int, zone: Zone, owner: Owner) -> Bool {
        let start = w.mark()
        if writeSet(set, zone: zone, owner: owner), let sigs = signSet(set, zone: zone, owner: owner) {
            counts.an += Int(zone.sets[set].count) + sigs
            return true
        }
        w.rewind(to: start)
        tc = true
        return false
    }

    /// Writes every record of a set or nothing; false when it does not fit.
    mutating func writeSet(_ set: Int, zone: Zone, owner: Owner, ttl: UInt32? = nil) -> Bool {
        let info = zone.sets[set]
        let start = w.mark()
        for r in Int(info.firstRecord)..<Int(info.firstRecord) + Int(info.count) {
            let ok = zone.withRData(r) { w.record(owner: owner, type: info.type, ttl: ttl ?? info.ttl, rdata: $0) }
            if !ok {
                w.rewind(to: start)
                return false
            }
        }
        return true
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

