import Diagnostics
import DNSWire
import Foundation
import Testing
@testable import ZoneStore

/// The flat zone layout (issue: performance): the streamed reader, the interner, and the
/// builder's grouping, checked against what the zone file says.
@Suite("Zone layout")
struct ZoneLayoutTests {
    /// A file on disk, read through the windowed stream.
    func load(file text: String, origin: String = "example.test.") throws -> ZoneLoader.Outcome {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("zl-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try text.write(toFile: dir + "/\(origin)zone", atomically: true, encoding: .utf8)
        return try ZoneLoader.load(directory: dir)
    }

    @Test func aStreamedFileOfManyMegabytesKeepsItsLineNumbers() throws {
        // 60,000 entries (about 2 MB) force the window to slide many times; a comment block and
        // a multi-line entry sit between, and the error is on the last line.
        var text = head
        for i in 0..<60_000 { text += "h\(i) A 10.0.\(i / 256 % 256).\(i % 256)\n" }
        text += "; a comment\nmulti TXT ( \"a\"\n  \"b\" )\n"
        text += "bad A 300.1.1.1\n"
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count - 1
        let outcome = try load(file: text)
        #expect(outcome.errors.count == 1)
        #expect(outcome.errors.first?.line == lines, "\(outcome.errors)")
        let good = try load(file: String(text.dropLast("bad A 300.1.1.1\n".count)))
        let z = try #require(good.zones?.zones.first)
        #expect(z.recordCount == 3 + 60_000 + 1)
        #expect(z.node(Name.parse("h59999.example.test.")!)?.rrset(RRType.a)?.rdatas == [[10, 0, 234, 95]])
        #expect(z.node(Name.parse("multi.example.test.")!)?.rrset(RRType.txt)?.rdatas == [[1, 0x61, 1, 0x62]])
    }

    @Test func recordsOfOneSetAreGroupedWhereverTheyAppear() throws {
        let (z, d) = zone(head + """
            a A 192.0.2.1
            b A 192.0.2.2
            a TXT "t"
            a A 192.0.2.3
            b AAAA ::1
            a A 192.0.2.1
            """)
        let zone = try #require(z, "\(d)")
        let a = try #require(zone.node(Name.parse("a.example.test.")!))
        // Types in first-seen order; the duplicate dropped (RFC 2181 5).
        #expect(a.rrsets.map(\.type) == [RRType.a, RRType.txt])
        #expect(a.rrset(RRType.a)?.rdatas == [[192, 0, 2, 1], [192, 0, 2, 3]])
        #expect(zone.node(Name.parse("b.example.test.")!)?.rrsets.map(\.type) == [RRType.a, RRType.aaaa])
    }

    @Test func largeSetsDropDuplicatesToo() throws {
        var text = head
        for i in 0..<300 { text += "big A 10.1.\(i / 256).\(i % 256)\n" }
        for i in 0..<300 { text += "big A 10.1.\(i / 256).\(i % 256)\n" }
        for i in 0..<100 { text += "ns2 NS Host\(i).example.net.\nns2 NS host\(i).EXAMPLE.net.\n" }
        let (z, d) = zone(text)
        let zone = try #require(z, "\(d)")
        #expect(zone.node(Name.parse("big.example.test.")!)?.rrset(RRType.a)?.rdatas.count == 300)
        // NS targets compare without case.
        #expect(zone.node(Name.parse("ns2.example.test.")!)?.rrset(RRType.ns)?.rdatas.count == 100)
    }

    @Test func manyTypesAtOneNameKeepTheirOrder() throws {
        var text = head
        let types = (0..<40).map { 65280 + $0 }
        for t in types.reversed() { text += "many TYPE\(t) \\# 1 0\(t % 10)\n" }
        for t in types { text += "many TYPE\(t) \\# 1 1\(t % 10)\n" }
        let (z, d) = zone(text)
        let loaded = try #require(z, "\(d)")
        let node = try #require(loaded.node(Name.parse("many.example.test.")!))
        #expect(node.rrsets.map { Int($0.type) } == types.reversed())
        #expect(node.rrsets.allSatisfy { $0.rdatas.count == 2 })
    }

    @Test func namesKeepTheCaseFirstWritten() throws {
        let (z, d) = zone(head + "Mail.Example.Test. A 192.0.2.9\nmail A 192.0.2.10\n_x.deep.Sub A 192.0.2.11\n")
        let zone = try #require(z, "\(d)")
        #expect(zone.node(Name.parse("mail.example.test.")!)?.name == Name.parse("Mail.Example.Test.")!)
        // The empty non-terminals between take the lowercased name.
        #expect(zone.node(Name.parse("deep.sub.example.test.")!)?.name == Name.parse("deep.sub.example.test.")!)
        #expect(zone.node(Name.parse("sub.example.test.")!)?.rrsets.isEmpty == true)
    }

    @Test func wildcardAndDelegationLinks() throws {
        let (z, d) = zone(head + "*.w A 192.0.2.1\nsub NS ns.sub\nns.sub A 192.0.2.53\n")
        let zone = try #require(z, "\(d)")
        let w = try #require(zone.table.find(Name.parse("w.example.test.")!))
        #expect(zone.nodes[w].wildcardChild == Int32(zone.table.find(Name.parse("*.w.example.test.")!)!))
        let sub = try #require(zone.table.find(Name.parse("sub.example.test.")!))
        #expect(zone.nodes[sub].isDelegation)
        #expect(zone.set(node: sub, type: RRType.ns) != nil)
    }

    @Test func internerGrowsAndFindsEveryName() {
        var interner = NameInterner()
        let names = (0..<5000).map { Name.parse("n\($0).example.test.")! }
        for (i, n) in names.enumerated() { #expect(n.withUnsafeBytes { interner.intern($0) } == i) }
        for (i, n) in names.enumerated() { #expect(interner.find(n) == i) }
        #expect(interner.find(Name.parse("n5000.example.test.")!) == nil)
        // Interning again gives the same number; an empty or over-long key is refused.
        #expect(names[7].withUnsafeBytes { interner.intern($0) } == 7)
        #expect([UInt8]().withUnsafeBytes { interner.intern($0) } == nil)
        #expect([UInt8](repeating: 1, count: 256).withUnsafeBytes { interner.intern($0) } == nil)
        let table = NameTable(interner)
        #expect(table.find(names[4999]) == 4999 && table.key(4999) == names[4999])
    }

    @Test func zoneMemoryIsNearItsWireForm() throws {
        var text = head
        for i in 0..<20_000 { text += "h\(i) A 10.0.\(i / 256 % 256).\(i % 256)\nh\(i) TXT \"some text \(i)\"\n" }
        let (z, d) = zone(text)
        let zone = try #require(z, "\(d)")
        var wire = 0
        for i in 0..<zone.nodes.count {
            let n = zone.nodeView(i)
            for s in n.rrsets { for r in s.rdatas { wire += n.name.count + 10 + r.count } }
        }
        // Arrays, not objects: the whole zone costs less than twice its records' wire form.
        #expect(zone.byteCount < 2 * wire, "\(zone.byteCount) octets for \(wire) in wire form")
    }
}
