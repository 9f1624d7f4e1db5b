import DNSWire
import GeoTopology
import PoolConfig
import Selection

/// How the server answers one question and why: the selection trace of the pool the name is
/// bound to (the same `Selector` code the query path runs, with a recorder) and the answer the
/// real answer path gives to a real query. `meridian explain` prints it; the admin API
/// returns it as JSON.
public struct Explanation: Sendable, Codable, Equatable {
    public var query: String
    public var qtype: String
    public var client: String
    public var ecs: String?
    /// The pool the name is bound to, and where (`file:line`); nil for zone data.
    public var pool: String?
    public var binding: String?
    /// The address selection ran for: the ECS address, or the client's.
    public var selectingFor: String?
    /// The selection's reasons, in order.
    public var trace: [String]
    public var rcode: String
    public var authoritative: Bool
    public var answer: [String]
    public var authority: [String]
    /// The ECS scope of the answer (`/24`), nil when the query had no ECS.
    public var ecsScope: Int?
}

/// Why a question cannot be explained.
public enum ExplainError: Error, Sendable, Equatable, CustomStringConvertible {
    case badName(String)
    case badType(String)
    case badClient(String)
    case badSubnet(String)

    public var description: String {
        switch self {
        case .badName(let n): return "bad name \(n)"
        case .badType(let t): return "unknown type \(t)"
        case .badClient(let c): return "bad client address \(c)"
        case .badSubnet(let s): return "bad subnet \(s): use ADDRESS/PREFIX with no host bits set"
        }
    }
}

public enum Explainer {
    /// Explains `name`/`type` asked by `client` (optionally with ECS `ecs`) against `snapshot`.
    /// The trace and the answer use one random seed, so "this answer's draw puts X first"
    /// names the address the answer shown puts first.
    public static func explain(
        snapshot: Snapshot, name: String, type: String, client: String, ecs: String? = nil, seed: UInt64 = UInt64.random(in: 1...UInt64.max)
    ) throws(ExplainError) -> Explanation {
        guard let source = IPAddress(client) else { throw .badClient(client) }
        let qname = name.hasSuffix(".") ? name : name + "."
        guard let wireName = Name.parse(qname) else { throw .badName(name) }
        guard let qtype = qtypeValue(type) else { throw .badType(type) }
        var subnet: CIDR?
        if let ecs {
            guard let c = CIDR(ecs) else { throw .badSubnet(ecs) }
            subnet = c
        }
        var e = Explanation(
            query: qname, qtype: RRType.name(qtype), client: source.description, ecs: subnet?.description, pool: nil, binding: nil,
            selectingFor: nil, trace: [], rcode: "", authoritative: false, answer: [], authority: [], ecsScope: nil)
        trace(snapshot, wireName, qtype, source, subnet, seed: seed, into: &e)
        answer(snapshot, wireName, qtype, source, subnet, seed: seed, into: &e)
        return e
    }

    /// The selection trace for a bound name.
    static func trace(_ snapshot: Snapshot, _ wireName: [UInt8], _ qtype: UInt16, _ source: IPAddress, _ subnet: CIDR?, seed: UInt64, into e: inout Explanation) {
        let key = Name.lowercased(wireName)
        guard let binding = snapshot.pools.pools.bindings.first(where: { Name.lowercased($0.name) == key }) else { return }
        let pool = snapshot.pools.pools.pools[binding.pool]
        let selectionClient = subnet.flatMap { $0.prefix > 0 ? $0.address : nil } ?? source
        e.pool = pool.name
        e.binding = "\(binding.file):\(binding.line)"
        e.selectingFor = selectionClient.description
        let (_, lines) = Selector.explain(
            pools: snapshot.pools, pool: binding.pool, qtype: qtype == RRType.aaaa ? RRType.aaaa : RRType.a,
            client: selectionClient, buffer: MessageBuffer(seed: seed))
        e.trace = lines
    }

    /// The real answer path on a real query (over "TCP", so nothing is truncated).
    static func answer(_ snapshot: Snapshot, _ wireName: [UInt8], _ qtype: UInt16, _ source: IPAddress, _ subnet: CIDR?, seed: UInt64, into e: inout Explanation) {
        var query: [UInt8] = [0x4D, 0x45, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, subnet == nil ? 0 : 1] + wireName + [UInt8(qtype >> 8), UInt8(qtype & 0xFF), 0, 1]
        if let subnet {
            let octets = Array(subnet.address.octets.prefix((subnet.prefix + 7) / 8))
            let option: [UInt8] = [0, subnet.address.family == .v4 ? 1 : 2, UInt8(subnet.prefix), 0] + octets
            query += [0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, UInt8(option.count + 4), 0, 8, 0, UInt8(option.count)] + option
        }
        let scratch = QueryScratch(seed: seed)
        let buffer = scratch.buffer
        let result = query.withUnsafeBytes {
            QueryProcessor.respond(to: $0, transport: .tcp, snapshot: snapshot, scratch: scratch, client: source)
        }
        guard !result.dropped, let response = try? DecodedMessage.decode(Array(UnsafeRawBufferPointer(rebasing: buffer.storage[0..<result.length]))) else {
            e.rcode = "no response"
            return
        }
        e.rcode = RCode.name(response.rcode)
        e.authoritative = response.flags & Header.aa != 0
        e.answer = response.answer.map(text)
        e.authority = response.authority.map(text)
        if let opt = response.opt, opt.rdata.count >= 8, opt.rdata[0] == 0, opt.rdata[1] == 8 {
            e.ecsScope = Int(opt.rdata[7])
        }
    }

    /// A type mnemonic or `TYPEnnn` (RFC 3597 5): DNSWire's one table.
    public static func qtypeValue(_ text: String) -> UInt16? { RRType.value(text) }

    /// One record in presentation form (addresses and names decoded, other RDATA by size).
    public static func text(_ r: DecodedMessage.Record) -> String {
        let data: String
        switch r.type {
        case RRType.a where r.rdata.count == 4: data = r.rdata.map(String.init).joined(separator: ".")
        case RRType.aaaa where r.rdata.count == 16:
            var b = SIMD16<UInt8>(repeating: 0)
            for i in 0..<16 { b[i] = r.rdata[i] }
            data = IPAddress(family: .v6, bytes: b).description
        case RRType.cname, RRType.ns, RRType.ptr: data = Name.text(r.rdata)
        default: data = "(\(r.rdata.count) octets)"
        }
        return "\(Name.text(r.name)) \(r.ttl) \(RRType.name(r.type)) \(data)"
    }
}
