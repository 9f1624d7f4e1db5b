import CLDNS
import DNSWire
import Foundation
import QueryEngine
import Testing
import ZoneStore

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures").path

/// The fixture zones, loaded once.
let fixtureZones: ZoneSet = {
    let outcome = try! ZoneLoader.load(directory: fixtures + "/zones")
    precondition(outcome.errors.isEmpty, "\(outcome.diagnostics)")
    return outcome.zones!
}()

struct OPTSpec {
    var payload: UInt16 = 1232
    var version: UInt8 = 0
    var dnssecOK = false
    var options: [(UInt16, [UInt8])] = []
}

/// Builds a query message.
func makeQuery(
    _ name: String, _ type: UInt16, qclass: UInt16 = RRClass.in, id: UInt16 = 0x1234, flags: UInt16 = Header.rd,
    opt: OPTSpec? = nil
) -> [UInt8] {
    var m: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), UInt8(flags >> 8), UInt8(flags & 0xFF), 0, 1, 0, 0, 0, 0, 0, opt == nil ? 0 : 1]
    m += Name.parse(name)!
    m += [UInt8(type >> 8), UInt8(type & 0xFF), UInt8(qclass >> 8), UInt8(qclass & 0xFF)]
    if let opt {
        var data: [UInt8] = []
        for (code, d) in opt.options { data += [UInt8(code >> 8), UInt8(code & 0xFF), UInt8(d.count >> 8), UInt8(d.count & 0xFF)] + d }
        m += [0, 0, 41, UInt8(opt.payload >> 8), UInt8(opt.payload & 0xFF), 0, opt.version, opt.dnssecOK ? 0x80 : 0, 0]
        m += [UInt8(data.count >> 8), UInt8(data.count & 0xFF)] + data
    }
    return m
}

/// Runs the engine on raw octets; nil when it drops the packet.
func respond(_ query: [UInt8], transport: Transport = .udp, snapshot: Snapshot? = nil, scratch: QueryScratch = QueryScratch()) -> [UInt8]? {
    let buffer = scratch.buffer
    let snap = snapshot ?? Snapshot(zones: fixtureZones)
    let outcome = query.withUnsafeBytes { QueryProcessor.respond(to: $0, transport: transport, snapshot: snap, scratch: scratch) }
    if outcome.dropped { return nil }
    return Array(UnsafeRawBufferPointer(rebasing: buffer.storage[0..<outcome.length]))
}

/// Asks a question and decodes the answer, cross-checking the response with libldns.
func ask(
    _ name: String, _ type: UInt16, qclass: UInt16 = RRClass.in, transport: Transport = .udp, opt: OPTSpec? = nil,
    snapshot: Snapshot? = nil, sourceLocation: SourceLocation = #_sourceLocation
) throws -> DecodedMessage {
    let q = makeQuery(name, type, qclass: qclass, opt: opt)
    let r = try #require(respond(q, transport: transport, snapshot: snapshot), sourceLocation: sourceLocation)
    let decoded = try DecodedMessage.decode(r)
    try crossCheck(r, decoded, sourceLocation: sourceLocation)
    return decoded
}

/// libldns must read the same records from the response as our decoder does.
func crossCheck(_ wire: [UInt8], _ ours: DecodedMessage, sourceLocation: SourceLocation = #_sourceLocation) throws {
    var pktp: UnsafeMutablePointer<ldns_pkt>? = nil
    let status = wire.withUnsafeBytes { ldns_wire2pkt(&pktp, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), $0.count) }
    #expect(status == LDNS_STATUS_OK, "ldns could not parse the response", sourceLocation: sourceLocation)
    guard status == LDNS_STATUS_OK, let p = pktp else { return }
    defer { ldns_pkt_free(p) }
    #expect(ldns_pkt_id(p) == ours.id, sourceLocation: sourceLocation)
    func records(_ list: UnsafeMutablePointer<ldns_rr_list>?) -> [[UInt8]] {
        guard let list else { return [] }
        var out: [[UInt8]] = []
        for i in 0..<ldns_rr_list_rr_count(list) {
            var buf: UnsafeMutablePointer<UInt8>? = nil
            var size = 0
            guard ldns_rr2wire(&buf, ldns_rr_list_rr(list, i), Int32(LDNS_SECTION_ANSWER.rawValue), &size) == LDNS_STATUS_OK, let buf else { continue }
            out.append(Array(UnsafeBufferPointer(start: buf, count: size)))
            free(buf)
        }
        return out
    }
    func recordWire(_ r: DecodedMessage.Record) -> [UInt8] {
        r.name + [UInt8(r.type >> 8), UInt8(r.type & 0xFF), UInt8(r.rrclass >> 8), UInt8(r.rrclass & 0xFF),
            UInt8(r.ttl >> 24), UInt8((r.ttl >> 16) & 0xFF), UInt8((r.ttl >> 8) & 0xFF), UInt8(r.ttl & 0xFF),
            UInt8(r.rdata.count >> 8), UInt8(r.rdata.count & 0xFF)] + r.rdata
    }
    #expect(records(ldns_pkt_answer(p)) == ours.answer.map(recordWire), "answer differs from ldns", sourceLocation: sourceLocation)
    #expect(records(ldns_pkt_authority(p)) == ours.authority.map(recordWire), "authority differs from ldns", sourceLocation: sourceLocation)
    // ldns takes OPT out of the additional section into its EDNS fields.
    #expect(records(ldns_pkt_additional(p)) == ours.additional.filter { $0.type != RRType.opt }.map(recordWire), sourceLocation: sourceLocation)
    if let opt = ours.opt {
        #expect(ldns_pkt_edns_udp_size(p) == opt.rrclass, sourceLocation: sourceLocation)
    }
}

extension DecodedMessage {
    var aa: Bool { flags & Header.aa != 0 }
    var tc: Bool { flags & Header.tc != 0 }
    var ra: Bool { flags & Header.ra != 0 }
    var rd: Bool { flags & Header.rd != 0 }
    /// Answer records as "owner TYPE rdata-text" for readable expectations.
    var answerText: [String] { answer.map(\.text) }
    var authorityText: [String] { authority.map(\.text) }
    var additionalText: [String] { additional.filter { $0.type != RRType.opt }.map(\.text) }
}

extension DecodedMessage.Record {
    /// "name TYPE data" with A/AAAA/name RDATA in presentation form.
    var text: String {
        let n = Name.text(Name.lowercased(name))
        switch type {
        case RRType.a: return "\(n) A \(rdata.map(String.init).joined(separator: "."))"
        case RRType.aaaa: return "\(n) AAAA \(stride(from: 0, to: 16, by: 2).map { String(UInt16(rdata[$0]) << 8 | UInt16(rdata[$0 + 1]), radix: 16) }.joined(separator: ":"))"
        case RRType.cname, RRType.ns, RRType.ptr: return "\(n) \(RRType.name(type)) \(Name.text(Name.lowercased(rdata)))"
        case RRType.soa: return "\(n) SOA"
        case RRType.mx: return "\(n) MX \(Int(rdata[0]) << 8 | Int(rdata[1])) \(Name.text(Array(rdata[2...])))"
        default: return "\(n) \(RRType.name(type))"
        }
    }
}
