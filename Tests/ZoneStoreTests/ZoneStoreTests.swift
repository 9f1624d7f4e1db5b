import Diagnostics
import DNSWire
import Foundation
import Testing
@testable import ZoneStore

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures").path

func zone(_ text: String, origin: String = "example.test.") -> (Zone?, [Diagnostic]) {
    let r = ZoneLoader.load(text: text, origin: origin, file: "t.zone")
    return (r.zone, r.diagnostics)
}

let head = """
    $TTL 300
    @ SOA ns hostmaster 1 2 3 4 5
    @ NS ns
    ns A 192.0.2.1

    """

@Suite("Zone files")
struct ZoneFileTests {
    @Test func fixtureZonesLoad() throws {
        let outcome = try ZoneLoader.load(directory: fixtures + "/zones")
        #expect(outcome.errors.isEmpty, "\(outcome.diagnostics)")
        let zones = try #require(outcome.zones)
        #expect(zones.zones.count == 2)
        let z = zones.zones[zones.apexTable.find(Name.parse("example.test.")!)!]
        // $INCLUDE with the includer's origin.
        #expect(z.node(Name.parse("included.example.test.")!)?.rrset(RRType.a) != nil)
        // Empty non-terminals exist as nodes without records.
        let ent = try #require(z.node(Name.parse("b.ent.example.test.")!))
        #expect(ent.rrsets.isEmpty)
        // Wildcards are found from their parent.
        let wild = try #require(z.node(Name.parse("wild.example.test.")!))
        #expect(wild.wildcardChild >= 0)
        // Delegations are marked; the DS at the cut stays in the parent.
        let deleg = try #require(z.node(Name.parse("deleg.example.test.")!))
        #expect(deleg.isDelegation && deleg.rrset(RRType.ds) != nil)
        // RFC 2308: negative TTL = min(SOA TTL, MINIMUM).
        #expect(z.negativeTTL == 300 && z.sets[z.soaSet].ttl == 3600)
        // RFC 3597 unknown type.
        #expect(z.node(Name.parse("unknown.example.test.")!)?.rrset(65280)?.rdatas == [[10, 0, 0, 1]])
        // Explicit TTL on a record.
        #expect(z.node(Name.parse("mail.example.test.")!)?.rrset(RRType.a)?.ttl == 600)
    }

    @Test func multiLineParenthesesAndComments() throws {
        let (z, d) = zone("""
            $TTL 1h
            @ IN SOA ns hostmaster ( 1 ; serial
                  2 3 ; retry
                  4 5 )
              IN NS ns ; the owner is inherited
            ns IN A 192.0.2.1
            txt IN TXT "semi;colon (paren)" "x"
            """)
        #expect(d.isEmpty, "\(d)")
        let zone = try #require(z)
        #expect(zone.sets[zone.soaSet].ttl == 3600)
        #expect(zone.node(Name.parse("example.test.")!)?.rrset(RRType.ns) != nil)
        let txt = try #require(zone.node(Name.parse("txt.example.test.")!)?.rrset(RRType.txt))
        #expect(txt.rdatas[0] == [18] + Array("semi;colon (paren)".utf8) + [1, 0x78])
    }

    @Test func originDirectiveChangesRelativeNames() throws {
        let (z, d) = zone(head + """
            $ORIGIN sub.example.test.
            www A 192.0.2.5
            """)
        #expect(d.isEmpty)
        #expect(z?.node(Name.parse("www.sub.example.test.")!)?.rrset(RRType.a) != nil)
    }

    @Test func duplicateRecordsAreMerged() throws {
        let (z, _) = zone(head + "www A 192.0.2.5\nwww A 192.0.2.5\n")
        #expect(z?.node(Name.parse("www.example.test.")!)?.rrset(RRType.a)?.rdatas.count == 1)
    }

    @Test func differingTTLsWarnAndUseTheLowest() throws {
        let (z, d) = zone(head + "www 60 A 192.0.2.5\nwww 30 A 192.0.2.6\n")
        #expect(d.count == 1 && d[0].severity == .warning && d[0].line == 6)
        #expect(z?.node(Name.parse("www.example.test.")!)?.rrset(RRType.a)?.ttl == 30)
    }

    @Test(arguments: [
        ("www CNAME ns\nwww A 192.0.2.2\n", 6, "beside a CNAME"),
        ("www CNAME ns\nwww CNAME ns2\n", 6, "more than one CNAME"),
        ("child NS ns.child\nwww.child TXT \"x\"\n", 6, "below the delegation"),
        ("child NS ns.child\nchild MX 1 ns\n", 6, "at the delegation"),
        ("www.example.org. A 192.0.2.9\n", 5, "out of zone"),
        ("ns2 A 192.0.2.999\n", 5, "ns2"),
        ("x SOA ns hostmaster 1 2 3 4 5\n", 5, "not at the apex"),
        ("@ DS 1 8 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE3A8ED0F4A6EB4F5E3B4F8E56\n", 5, "DS at the apex"),
        ("$GENERATE 1-2 x$ A 192.0.2.1\n", 5, "unknown directive"),
        ("txt TXT \"open\n", 5, "unterminated"),
        ("x ( A 192.0.2.1\n", 5, "unbalanced"),
        ("x CH A 192.0.2.1\n", 5, "not IN"),
    ])
    func semanticAndSyntaxErrors(extra: String, line: Int, message: String) {
        let (z, d) = zone(head + extra)
        #expect(z == nil)
        let e = d.first { $0.severity == .error }
        #expect(e?.line == line, "\(d)")
        #expect(e?.message.contains(message) == true, "\(d)")
        #expect(e?.description.hasPrefix("t.zone:\(line): ") == true)
    }

    @Test func missingApexRecords() {
        let (z, d) = zone("$TTL 300\nns A 192.0.2.1\n")
        #expect(z == nil)
        #expect(d.contains { $0.message.contains("no SOA") })
        #expect(d.contains { $0.message.contains("no NS") })
    }

    @Test func badDirectoryReportsEveryFile() throws {
        let outcome = try ZoneLoader.load(directory: fixtures + "/bad")
        #expect(outcome.zones == nil)
        let files = Set(outcome.errors.map { ($0.file as NSString).lastPathComponent })
        #expect(files == ["below-cut.zone", "cname-beside.zone", "no-soa.zone", "out-of-zone.zone", "syntax.zone"])
    }

    @Test func missingIncludeIsAnError() {
        let (_, d) = zone(head + "$INCLUDE /nonexistent/file.inc\n")
        #expect(d.contains { $0.line == 5 && $0.message.contains("cannot read") })
    }

    @Test func withoutTTLDirectiveTheLastTTLApplies() throws {
        let (z, d) = zone("@ 600 SOA ns hostmaster 1 2 3 4 5\n@ NS ns\nns 120 A 192.0.2.1\nmx MX 10 ns\nb A 192.0.2.2\n")
        #expect(d.isEmpty, "\(d)")
        let zone = try #require(z)
        #expect(zone.node(Name.parse("example.test.")!)?.rrset(RRType.ns)?.ttl == 600)
        #expect(zone.node(Name.parse("mx.example.test.")!)?.rrset(RRType.mx)?.ttl == 120)
        #expect(zone.node(Name.parse("b.example.test.")!)?.rrset(RRType.a)?.ttl == 120)
    }

    @Test func ttlUnits() {
        #expect(RecordParser.parseTTL("1h30m") == 5400)
        #expect(RecordParser.parseTTL("2d") == 172800)
        #expect(RecordParser.parseTTL("1w") == 604800)
        #expect(RecordParser.parseTTL("x") == nil)
    }
}

@Suite("Hostile zone files (issue: hardening)")
struct HostileZoneTests {
    /// Finding 4: a TTL of many large units overflowed an integer and killed the loader.
    @Test func ttlOfManyLargeUnitsIsRejectedNotOverflowed() {
        let token = String(repeating: "4294967295w", count: 20_000)
        #expect(RecordParser.parseTTL(token) == nil)
        let (z, d) = zone("$TTL \(token)\n" + head)
        #expect(z == nil)
        #expect(d.contains { $0.line == 1 && $0.message.contains("$TTL") }, "\(d.prefix(2))")
        let (z2, d2) = zone(head + "www \(token) IN A 192.0.2.7\n")
        #expect(z2 == nil && d2.contains { $0.line == 5 }, "\(d2.prefix(2))")
    }

    /// Finding 9: `\# 0` (and other wrong lengths) for types whose RDATA the answer path reads.
    @Test(arguments: [
        ("x CNAME \\# 0", "CNAME record: RDATA must be exactly one domain name"),
        ("x NS \\# 0", "NS record: RDATA must be exactly one domain name"),
        ("x PTR \\# 2 0300", ""),  // libldns itself rejects this one
        ("x PTR \\# 0", "PTR record: RDATA must be exactly one domain name"),
        ("x MX \\# 2 000a", "MX record: RDATA must be a preference and a domain name"),
        ("x A \\# 3 c00002", ""),  // and this one
        ("x AAAA \\# 0", "AAAA record: RDATA must be 16 octets, not 0"),
        ("x TXT \\# 0", "TXT record: RDATA must hold at least one character-string"),
        ("sub SOA \\# 0", "SOA record: RDATA must be two domain names and five 32-bit numbers"),
    ])
    func emptyOrShortRdataIsAFileLineError(line: String, message: String) {
        let (z, d) = zone(head + line + "\n")
        #expect(z == nil)
        #expect(d.contains { $0.file == "t.zone" && $0.line == 5 && (message.isEmpty || $0.message == message) }, "\(d)")
    }

    /// libldns's `ldns_str2period` wraps and stops at stray characters; TTLs here do neither.
    @Test(arguments: ["9999999w", "1x", "2147483648", "4294967296", "1h-5", "68y"])
    func ttlsLibldnsWouldMisreadAreErrors(ttl: String) {
        let (z, d) = zone(head + "x \(ttl) A 192.0.2.1\n")
        #expect(z == nil)
        #expect(d.contains { $0.line == 5 && $0.message.hasPrefix("bad TTL") }, "\(d)")
        let (z2, d2) = zone("$TTL \(ttl)\n" + head)
        #expect(z2 == nil && d2.contains { $0.line == 1 && $0.message.contains("$TTL") }, "\(d2)")
    }

    @Test func largestTTLAndZeroTTLLoadAsWritten() throws {
        let (z, d) = zone("$TTL 0\n" + head.replacingOccurrences(of: "$TTL 300\n", with: "") + "x 2147483647 A 192.0.2.1\ny A 192.0.2.2\n")
        #expect(d.isEmpty, "\(d)")
        let zone = try #require(z)
        #expect(zone.node(Name.parse("x.example.test.")!)?.rrset(RRType.a)?.ttl == 2147483647)
        // libldns alone would give 3600 for "no TTL" when the default is 0.
        #expect(zone.node(Name.parse("y.example.test.")!)?.rrset(RRType.a)?.ttl == 0)
    }

    /// libldns folds comment lines into the next entry's line count; errors name the entry's line.
    @Test func errorLinesSkipCommentsAndBlankLinesAndNameTheFirstLine() {
        let (_, d) = zone(head + "; one\n\n   ; two\n\nbad A 192.0.2.300\n")
        #expect(d.first?.line == 9, "\(d)")
        let (_, d2) = zone(head + "mx MX ( 10\n ; comment\n ns ) \nbad ( A\n 192.0.2.300 )\n")
        #expect(d2.first?.line == 8, "\(d2)")
    }

    @Test func strayClosingParenthesisIsAnError() {
        let (z, d) = zone(head + "x A 192.0.2.1 )\n")
        #expect(z == nil && d.contains { $0.line == 5 && $0.message == "unbalanced ')'" }, "\(d)")
    }

    @Test func blankOwnerNeedsAPreviousRecord() {
        let (z, d) = zone("  A 192.0.2.1\n" + head)
        #expect(z == nil && d.contains { $0.line == 1 && $0.message.contains("no previous owner") }, "\(d)")
    }

    @Test func diagnosticsQuoteAtMostABoundedPartOfTheText() {
        let (_, d) = zone(head + "x TXT " + String(repeating: "\"a\" ", count: 5000) + "bad\\\n")
        let longest = d.map(\.message.utf8.count).max() ?? 0
        #expect(!d.isEmpty && longest < 300, "\(longest)")
    }

    @Test func entriesLongerThanLibldnsDefaultLineLoad() throws {
        let strings = (0..<200).map { _ in "\"" + String(repeating: "x", count: 250) + "\"" }.joined(separator: " ")
        let (z, d) = zone(head + "big TXT ( " + strings + " )\n")
        #expect(d.isEmpty, "\(d.prefix(1))")
        #expect(try #require(z).node(Name.parse("big.example.test.")!)?.rrset(RRType.txt)?.rdatas[0].count == 200 * 251)
    }

    @Test func includeOfSomethingNotARegularFileIsAnError() {
        let (z, d) = zone(head + "$INCLUDE /dev/null\n$INCLUDE /tmp\n")
        #expect(z == nil && d.contains { $0.line == 6 && $0.message.contains("not a regular file") }, "\(d)")
        #expect(d.contains { $0.line == 5 && $0.message.contains("not a regular file") }, "\(d)")
    }

    /// Issue 17, finding 1: k `$INCLUDE`s per file nested a few deep cost k^depth opens (k=5,
    /// depth 8: 390,625 files); the zone's include budget stops it at the first file over it.
    @Test func includeFanOutIsBounded() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meridian-fanout-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for level in 0..<8 {
            let body = String(repeating: "$INCLUDE \(dir)/l\(level + 1).inc\n", count: 5)
            try body.write(toFile: "\(dir)/l\(level).inc", atomically: true, encoding: .utf8)
        }
        try "x TXT leaf\n".write(toFile: "\(dir)/l8.inc", atomically: true, encoding: .utf8)
        let (z, d) = zone(head + "$INCLUDE \(dir)/l0.inc\n")
        #expect(z == nil)
        #expect(d.filter { $0.message.contains("$INCLUDEs followed") }.count == 1, "\(d.prefix(3))")
        // Within the budget, includes work as before.
        let (ok, d2) = zone(head + String(repeating: "$INCLUDE \(dir)/l8.inc\n", count: 3))
        #expect(ok != nil, "\(d2)")
    }

    @Test func wellFormedGenericRdataStillLoads() {
        let (z, d) = zone(head + "x CNAME \\# 5 03777777 00\nt TYPE65400 \\# 0\n")
        #expect(z != nil, "\(d)")
    }
}

@Suite("Name table")
struct NameTableTests {
    @Test func findsEveryKeyAndNothingElse() {
        let names = (0..<1000).map { Name.parse("host\($0).example.")! }
        let table = NameTable(names.enumerated().map { ($0.element, $0.offset) })
        for (i, n) in names.enumerated() { #expect(table.find(n) == i) }
        #expect(table.find(Name.parse("host1000.example.")!) == nil)
        #expect(table.find([0]) == nil)
    }
}
