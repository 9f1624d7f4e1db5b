import Testing
@testable import DNSWire

/// Builds a message: a 12-octet header followed by `body`.
func message(_ body: [UInt8], qdcount: UInt16 = 1) -> [UInt8] {
    [0x12, 0x34, 0x01, 0x00, UInt8(qdcount >> 8), UInt8(qdcount & 0xFF), 0, 0, 0, 0, 0, 0] + body
}

func read(_ m: [UInt8], at: Int) throws(WireError) -> ([UInt8], Int) {
    var out = [UInt8](repeating: 0, count: 256)
    var result: Result<(end: Int, length: Int), WireError> = .failure(.truncated(offset: 0, needed: 0))
    m.withUnsafeBytes { mb in
        out.withUnsafeMutableBytes { o in
            do throws(WireError) { result = .success(try Name.read(mb, at: at, into: o)) } catch { result = .failure(error) }
        }
    }
    let (end, length) = try result.get()
    return (Array(out[0..<length]), end)
}

@Suite("Name decoding")
struct NameDecodingTests {
    @Test func plainNameIsLowercased() throws {
        let m = message([3, 0x57, 0x77, 0x57, 7] + Array("example".utf8) + [0])
        let (name, end) = try read(m, at: 12)
        #expect(name == [3, 0x77, 0x77, 0x77, 7] + Array("example".utf8) + [0])
        #expect(end == m.count)
    }

    @Test func backwardPointerIsFollowed() throws {
        // "example." at 12, then "www" + pointer to 12 at 21.
        let m = message([7] + Array("example".utf8) + [0] + [3] + Array("www".utf8) + [0xC0, 12])
        let (name, end) = try read(m, at: 21)
        #expect(Name.text(name) == "www.example.")
        #expect(end == m.count)
    }

    @Test(arguments: [
        // pointer to itself
        (message([0xC0, 12]), "self"),
        // forward pointer
        (message([0xC0, 14, 1, 0x61, 0]), "forward"),
        // pointer into the header
        (message([0xC0, 2]), "header"),
        // a loop of two pointers: 12 -> 14 is forward, so rejected
        (message([0xC0, 14, 0xC0, 12]), "loop"),
    ])
    func hostilePointersAreRejected(m: [UInt8], _ label: String) {
        #expect(throws: WireError.self) { try read(m, at: 12) }
    }

    @Test func labelOver63IsRejected() {
        // A length octet of 64 has the top bits 01: the deprecated extended label type.
        let m = message([64] + [UInt8](repeating: 0x61, count: 64) + [0])
        #expect(throws: WireError.badLabelType(offset: 12, octet: 64)) { try read(m, at: 12) }
    }

    @Test func nameOver255IsRejected() {
        var body: [UInt8] = []
        for _ in 0..<5 { body += [63] + [UInt8](repeating: 0x61, count: 63) }
        body += [0]
        #expect(throws: WireError.nameTooLong(offset: 12)) { try read(message(body), at: 12) }
    }

    @Test func nameOf255IsAccepted() throws {
        var body: [UInt8] = []
        for _ in 0..<3 { body += [63] + [UInt8](repeating: 0x61, count: 63) }
        body += [61] + [UInt8](repeating: 0x62, count: 61) + [0]
        let (name, _) = try read(message(body), at: 12)
        #expect(name.count == 255)
    }

    @Test func truncatedNameIsRejected() {
        #expect(throws: WireError.self) { try read(message([5, 0x61, 0x62]), at: 12) }
        #expect(throws: WireError.self) { try read(message([]), at: 12) }
        #expect(throws: WireError.self) { try read(message([0xC0]), at: 12) }
    }

    @Test func extendedLabelTypesAreRejected() {
        #expect(throws: WireError.badLabelType(offset: 12, octet: 0x41)) { try read(message([0x41, 0]), at: 12) }
        #expect(throws: WireError.badLabelType(offset: 12, octet: 0x80)) { try read(message([0x80, 0]), at: 12) }
    }

    @Test func presentationRoundTrip() {
        for text in ["www.example.com.", ".", "a\\.b.example.", "\\001x.test."] {
            let wire = Name.parse(text)!
            #expect(Name.text(wire) == text)
        }
        #expect(Name.parse("a..b") == nil)
        #expect(Name.parse(String(repeating: "a", count: 64) + ".com") == nil)
    }

    @Test func subdomainChecksLabelBoundaries() {
        let zone = Name.parse("example.com.")!
        #expect(Name.isSubdomain(Name.parse("www.Example.COM.")!, of: zone))
        #expect(Name.isSubdomain(zone, of: zone))
        #expect(!Name.isSubdomain(Name.parse("badexample.com.")!, of: zone))
        #expect(Name.isSubdomain(zone, of: [0]))
    }
}

@Suite("Name compression")
struct CompressionTests {
    @Test func suffixesArePointedTo() throws {
        let buffer = MessageBuffer()
        var w = MessageWriter(buffer: buffer, limit: 512)
        for _ in 0..<12 { w.u8(0) }
        let q = Name.parse("www.example.com.")!
        q.withUnsafeBytes { w.raw($0) }
        w.addCompressionTargets(nameAt: 12)
        let start = w.position
        let n = Name.parse("mail.EXAMPLE.com.")!
        #expect(n.withUnsafeBytes { w.name($0, compress: true) })
        // "mail" label + pointer to "example.com" at 16.
        #expect(w.position - start == 5 + 2)
        let same = Name.parse("www.example.com.")!
        let before = w.position
        #expect(same.withUnsafeBytes { w.name($0, compress: true) })
        #expect(w.position - before == 2)
        let bytes = Array(w.bytes)
        let (decoded, _) = try read(bytes, at: start)
        #expect(Name.text(decoded) == "mail.example.com.")
    }

    @Test func nameThatDoesNotFitWritesNothing() {
        let buffer = MessageBuffer()
        var w = MessageWriter(buffer: buffer, limit: 16)
        for _ in 0..<12 { w.u8(0) }
        let n = Name.parse("www.example.com.")!
        #expect(!n.withUnsafeBytes { w.name($0, compress: true) })
        #expect(w.position == 12)
    }
}
