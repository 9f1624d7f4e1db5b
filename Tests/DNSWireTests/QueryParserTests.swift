import Testing
@testable import DNSWire

func ecs(_ family: UInt16, _ source: UInt8, _ scope: UInt8, _ address: [UInt8]) -> [UInt8] {
    [UInt8(family >> 8), UInt8(family & 0xFF), source, scope] + address
}

func parseECS(_ data: [UInt8]) throws(WireError) -> ClientSubnet {
    var r: Result<ClientSubnet, WireError> = .failure(.truncated(offset: 0, needed: 0))
    data.withUnsafeBytes { b in
        do throws(WireError) { r = .success(try ClientSubnet.parse(b)) } catch { r = .failure(error) }
    }
    return try r.get()
}

/// A query for `name` with an optional OPT record carrying `options` (code, data).
func queryWithOPT(_ name: String, type: UInt16 = 1, options: [(UInt16, [UInt8])]? = nil, version: UInt8 = 0, extraOPT: Bool = false) -> [UInt8] {
    var m: [UInt8] = [0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, options == nil ? 0 : (extraOPT ? 2 : 1)]
    m += Name.parse(name)!
    m += [UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
    if let options {
        for _ in 0..<(extraOPT ? 2 : 1) {
            var data: [UInt8] = []
            for (code, d) in options { data += [UInt8(code >> 8), UInt8(code & 0xFF), UInt8(d.count >> 8), UInt8(d.count & 0xFF)] + d }
            m += [0, 0, 41, 0x04, 0xD0, 0, version, 0x80, 0, UInt8(data.count >> 8), UInt8(data.count & 0xFF)] + data
        }
    }
    return m
}

func parse(_ m: [UInt8]) throws(WireError) -> (Question, EDNS?) {
    var r: Result<(Question, EDNS?), WireError> = .failure(.truncated(offset: 0, needed: 0))
    let buffer = MessageBuffer()
    m.withUnsafeBytes { b in
        do throws(WireError) {
            let q = try QueryParser.question(b, nameOut: buffer.name)
            r = .success((q, try QueryParser.edns(b, after: q)))
        } catch { r = .failure(error) }
    }
    return try r.get()
}

@Suite("Query parsing and EDNS")
struct QueryParserTests {
    @Test func questionAndOPT() throws {
        let (q, e) = try parse(queryWithOPT("www.example.test.", type: 28, options: [(3, []), (10, [1, 2, 3, 4, 5, 6, 7, 8])]))
        #expect(q.type == 28 && q.qclass == 1 && q.nameLength == 18)
        #expect(e?.udpPayload == 1232 && e?.dnssecOK == true && e?.nsidRequested == true && e?.version == 0)
    }

    @Test func noOPT() throws {
        let (_, e) = try parse(queryWithOPT("a.test."))
        #expect(e == nil)
    }

    @Test func twoOPTsAreRejected() {
        #expect(throws: WireError.self) { try parse(queryWithOPT("a.test.", options: [], extraOPT: true)) }
    }

    @Test func countsPastTheEndAreRejected() {
        var m = queryWithOPT("a.test.")
        m[11] = 3
        #expect(throws: WireError.self) { try parse(m) }
    }

    @Test func optionRunningPastTheRecordIsRejected() {
        var m = queryWithOPT("a.test.", options: [(10, [1, 2])])
        m[m.count - 3] = 9  // option length 9 > remaining
        #expect(throws: WireError.self) { try parse(m) }
    }

    @Test func validClientSubnet() throws {
        let s = try parseECS(ecs(1, 24, 0, [10, 2, 0]))
        #expect(s.family == 1 && s.sourcePrefix == 24 && s.address[0] == 10 && s.address[1] == 2)
        let v6 = try parseECS(ecs(2, 56, 0, [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0]))
        #expect(v6.addressLength == 7)
        let zero = try parseECS(ecs(1, 0, 0, []))
        #expect(zero.sourcePrefix == 0)
    }

    @Test(arguments: [
        ecs(3, 24, 0, [10, 2, 0]),  // unknown family
        ecs(1, 33, 0, [10, 2, 0, 0, 0]),  // prefix too long
        ecs(1, 24, 0, [10, 2, 0, 0]),  // address longer than the prefix needs
        ecs(1, 24, 0, [10, 2]),  // address shorter
        ecs(1, 23, 0, [10, 2, 1]),  // bits beyond the prefix
        ecs(1, 24, 8, [10, 2, 0]),  // non-zero scope in a query
        [0, 1, 24],  // shorter than 4
    ])
    func malformedClientSubnet(data: [UInt8]) {
        #expect(throws: WireError.self) { try parseECS(data) }
    }

    @Test func duplicateClientSubnetIsRejected() {
        let o = ecs(1, 24, 0, [10, 2, 0])
        #expect(throws: WireError.self) { try parse(queryWithOPT("a.test.", options: [(8, o), (8, o)])) }
    }
}

@Suite("Type mnemonics")
struct MnemonicTests {
    /// One table: every mnemonic `name` prints, `value` reads (CAA, 257, was missing).
    @Test func everyNameReadsBack() {
        for t in RRType.mnemonics.keys { #expect(RRType.value(RRType.name(t)) == t) }
        #expect(RRType.value("caa") == RRType.caa && RRType.value("TYPE65400") == 65400 && RRType.value("NOPE") == nil)
        #expect(RRType.name(65400) == "TYPE65400")
    }
}
