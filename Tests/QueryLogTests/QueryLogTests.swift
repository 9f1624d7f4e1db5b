import Foundation
import Logging
import QueryLog
import Testing

/// A protobuf reader for the test: field number -> values (varints as numbers, the rest as octets).
func fields(_ b: [UInt8]) -> [Int: [[UInt8]]] {
    var out: [Int: [[UInt8]]] = [:]
    var i = 0
    func varint() -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = b[i]
            i += 1
            v |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return v }
            shift += 7
        }
    }
    while i < b.count {
        let key = varint()
        let field = Int(key >> 3)
        switch key & 7 {
        case 0: out[field, default: []].append(withUnsafeBytes(of: varint().bigEndian) { Array($0) })
        case 2:
            let n = Int(varint())
            out[field, default: []].append(Array(b[i..<i + n]))
            i += n
        case 5:
            out[field, default: []].append(Array(b[i..<i + 4]))
            i += 4
        default: Issue.record("wire type \(key & 7)"); return out
        }
    }
    return out
}

func number(_ v: [UInt8]?) -> UInt64 { v.map { $0.reduce(0) { $0 << 8 | UInt64($1) } } ?? 0 }

@Suite("dnstap")
struct DnstapTests {
    @Test func aQueryMessageCarriesTheFieldsOfDnstapProto() {
        let m = DnstapMessage(kind: .authQuery, socketProtocol: .udp, clientAddress: [192, 0, 2, 9], clientPort: 53_000,
                              seconds: 1_800_000_000, nanoseconds: 123_456_789, message: [1, 2, 3])
        let outer = fields(m.encoded(identity: Array("ns1".utf8), version: Array("Meridian 1".utf8)))
        #expect(outer[1] == [Array("ns1".utf8)] && outer[2] == [Array("Meridian 1".utf8)] && number(outer[15]?.first) == 1)
        let inner = fields(outer[14]![0])
        #expect(number(inner[1]?.first) == 1 && number(inner[2]?.first) == 1 && number(inner[3]?.first) == 1)
        #expect(inner[4] == [[192, 0, 2, 9]] && number(inner[6]?.first) == 53_000)
        #expect(number(inner[8]?.first) == 1_800_000_000 && inner[9] == [[0x15, 0xCD, 0x5B, 0x07]] && inner[10] == [[1, 2, 3]])
        let r = DnstapMessage(kind: .authResponse, socketProtocol: .tcp, clientAddress: [UInt8](repeating: 1, count: 16), clientPort: nil,
                              seconds: 5, nanoseconds: 0, message: [9])
        let ri = fields(fields(r.encoded(identity: [], version: []))[14]![0])
        #expect(number(ri[1]?.first) == 2 && number(ri[2]?.first) == 2 && number(ri[3]?.first) == 2 && ri[6] == nil)
        #expect(number(ri[12]?.first) == 5 && ri[14] == [[9]] && ri[10] == nil)
    }

    @Test func controlFramesRoundTripAndMalformedOnesAreRefused() {
        let ready = FrameStreams.control(.ready, contentType: FrameStreams.dnstapContentType)
        #expect(Array(ready.prefix(12)) == [0, 0, 0, 0, 0, 0, 0, 34, 0, 0, 0, 4])
        let parsed = FrameStreams.parseControl(ready)
        #expect(parsed?.type == 4 && parsed?.contentTypes == [FrameStreams.dnstapContentType] && parsed?.length == ready.count)
        #expect(FrameStreams.parseControl(FrameStreams.control(.stop))?.contentTypes == [])
        #expect(FrameStreams.parseControl(Array(ready.dropLast())) == nil)
        #expect(FrameStreams.parseControl([0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 1]) == nil)
        var lying = ready
        lying[19] = 200  // a content type longer than the frame
        #expect(FrameStreams.parseControl(lying) == nil)
        #expect(FrameStreams.data([7, 8]) == [0, 0, 0, 2, 7, 8])
    }

    @Test func theRingIsBoundedAndKeepsOrderAcrossThreads() async {
        let ring = SPSCRing(capacity: 4)
        for i in 0..<4 { #expect(ring.push([UInt8(i)])) }
        #expect(!ring.push([9]))
        #expect(ring.pop() == [0] && ring.count == 3)
        let big = SPSCRing(capacity: 64)
        let n = 50_000
        let producer = Thread {
            var i = 0
            while i < n { if big.push(withUnsafeBytes(of: UInt32(i)) { Array($0) }) { i += 1 } }
        }
        producer.start()
        var next: UInt32 = 0
        while next < n {
            if let f = big.pop() {
                #expect(f.withUnsafeBytes { $0.load(as: UInt32.self) } == next)
                next += 1
            }
        }
    }

    @Test func theFileIsStartFramesStopAndSamplingTakesOneInN() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("dnstap-\(UUID()).fstrm").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = DnstapWriter(settings: DnstapSettings(destination: .file(path), sampleEvery: 3, identity: "t", version: "v"), logger: Logger(label: "test"))
        let tap = writer.makeTap()
        try writer.start()
        let query: [UInt8] = [0xAB, 0xCD]
        let client: [UInt8] = [127, 0, 0, 1]
        for _ in 0..<9 {
            query.withUnsafeBytes { q in client.withUnsafeBytes { c in tap.log(query: q, response: q, client: c, port: 1, tcp: false) } }
        }
        writer.stop()
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let start = try #require(FrameStreams.parseControl(b))
        #expect(start.type == 2 && start.contentTypes == [FrameStreams.dnstapContentType])
        var i = start.length
        var frames = 0
        while i + 4 <= b.count, b[i..<i + 4] != [0, 0, 0, 0] {
            let n = Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3])
            i += 4 + n
            frames += 1
        }
        // 9 queries, 1 in 3 sampled, a query and a response message each.
        #expect(frames == 6)
        #expect(FrameStreams.parseControl(Array(b[i...]))?.type == 3)
    }
}
