/// A fully decoded message, for tests, tools and the offline commands; the query path never
/// builds one. Names are uncompressed; names inside RDATA of the types that may be compressed
/// (RFC 3597 4: NS, MD, MF, CNAME, SOA, MB, MG, MR, PTR, MINFO, MX) are decompressed too, so
/// two messages with the same records compare equal however they were compressed.
public struct DecodedMessage: Sendable, Equatable {
    /// One resource record (RFC 1035 4.1.3).
    public struct Record: Sendable, Equatable, CustomStringConvertible {
        public var name: [UInt8]
        public var type: UInt16
        public var rrclass: UInt16
        public var ttl: UInt32
        public var rdata: [UInt8]

        public init(name: [UInt8], type: UInt16, rrclass: UInt16, ttl: UInt32, rdata: [UInt8]) {
            self.name = name
            self.type = type
            self.rrclass = rrclass
            self.ttl = ttl
            self.rdata = rdata
        }

        public var description: String {
            "\(Name.text(name)) \(ttl) \(rrclass) \(RRType.name(type)) \(rdata.map { String($0, radix: 16) }.joined(separator: ":"))"
        }
    }

    public var id: UInt16
    public var flags: UInt16
    public var questionName: [UInt8]
    public var questionType: UInt16
    public var questionClass: UInt16
    public var questionCount: Int
    public var answer: [Record] = []
    public var authority: [Record] = []
    public var additional: [Record] = []

    /// The RCODE, with the high bits from OPT when present (RFC 6891 6.1.3).
    public var rcode: UInt16 {
        var r = flags & 0xF
        if let opt = additional.first(where: { $0.type == RRType.opt }) { r |= UInt16(opt.ttl >> 24) << 4 }
        return r
    }

    public var opt: Record? { additional.first { $0.type == RRType.opt } }

    /// Decodes a whole message, checking every bound. Does not accept trailing octets.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> DecodedMessage {
        var result: DecodedMessage?
        var failure: WireError?
        bytes.withUnsafeBytes { m in
            do throws(WireError) { result = try decode(m) } catch { failure = error }
        }
        if let failure { throw failure }
        guard let result else { throw .truncated(offset: 0, needed: 12) }
        return result
    }

    public static func decode(_ m: UnsafeRawBufferPointer) throws(WireError) -> DecodedMessage {
        guard m.count >= WireLimits.headerLength else { throw .truncated(offset: 0, needed: 12) }
        var msg = DecodedMessage(
            id: Header.id(m), flags: Header.flags(m), questionName: [], questionType: 0, questionClass: 0,
            questionCount: Header.qdcount(m))
        var pos = WireLimits.headerLength
        for _ in 0..<msg.questionCount {
            let (name, end) = try readName(m, pos)
            guard end + 4 <= m.count else { throw .truncated(offset: end, needed: 4) }
            msg.questionName = name
            msg.questionType = Header.u16(m, end)
            msg.questionClass = Header.u16(m, end + 2)
            pos = end + 4
        }
        for section in 0..<3 {
            let count = [Header.ancount(m), Header.nscount(m), Header.arcount(m)][section]
            for _ in 0..<count {
                let (name, end) = try readName(m, pos)
                guard end + 10 <= m.count else { throw .truncated(offset: end, needed: 10) }
                let type = Header.u16(m, end)
                let rdlength = Int(Header.u16(m, end + 8))
                let start = end + 10
                guard start + rdlength <= m.count else { throw .truncated(offset: start, needed: rdlength) }
                let rdata = try decompressRData(m, type: type, start: start, length: rdlength)
                let record = Record(name: name, type: type, rrclass: Header.u16(m, end + 2), ttl: Header.u32(m, end + 4), rdata: rdata)
                switch section {
                case 0: msg.answer.append(record)
                case 1: msg.authority.append(record)
                default: msg.additional.append(record)
                }
                pos = start + rdlength
            }
        }
        guard pos == m.count else { throw .badCount(field: "trailing octets", value: m.count - pos) }
        return msg
    }

    static func readName(_ m: UnsafeRawBufferPointer, _ at: Int) throws(WireError) -> ([UInt8], Int) {
        var out = [UInt8](repeating: 0, count: 256)
        var outcome: Result<(end: Int, length: Int), WireError> = .failure(.truncated(offset: at, needed: 1))
        out.withUnsafeMutableBytes { o in
            do throws(WireError) { outcome = .success(try Name.read(m, at: at, into: o, lowercase: false)) } catch {
                outcome = .failure(error)
            }
        }
        let (end, length) = try outcome.get()
        return (Array(out[0..<length]), end)
    }

    static func decompressRData(_ m: UnsafeRawBufferPointer, type: UInt16, start: Int, length: Int) throws(WireError) -> [UInt8] {
        let end = start + length
        func names(prefix: Int, count: Int, suffix: Int) throws(WireError) -> [UInt8] {
            var out = Array(m[start..<(start + prefix)])
            var pos = start + prefix
            for _ in 0..<count {
                let (n, e) = try readName(m, pos)
                out += n
                pos = e
            }
            guard pos + suffix == end else { throw .badCount(field: "RDLENGTH of \(RRType.name(type))", value: length) }
            out += Array(m[pos..<end])
            return out
        }
        switch type {
        case RRType.ns, RRType.md, RRType.mf, RRType.cname, RRType.mb, RRType.mg, RRType.mr, RRType.ptr:
            return try names(prefix: 0, count: 1, suffix: 0)
        case RRType.soa:
            return try names(prefix: 0, count: 2, suffix: 20)
        case RRType.minfo:
            return try names(prefix: 0, count: 2, suffix: 0)
        case RRType.mx:
            guard length >= 3 else { throw .badCount(field: "RDLENGTH of MX", value: length) }
            return try names(prefix: 2, count: 1, suffix: 0)
        default:
            return Array(m[start..<end])
        }
    }
}
