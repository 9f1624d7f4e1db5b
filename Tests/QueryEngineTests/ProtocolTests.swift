import DNSWire
import QueryEngine
import Testing
import ZoneStore

@Suite("Protocol handling")
struct ProtocolTests {
    @Test func shortPacketsAndResponsesAreDropped() {
        #expect(respond([]) == nil)
        #expect(respond([UInt8](repeating: 0, count: 11)) == nil)
        var q = makeQuery("www.example.test.", RRType.a)
        q[2] |= 0x80
        #expect(respond(q) == nil)
    }

    @Test func headerOnlyFormErrForBadQuestionCount() throws {
        var q = makeQuery("www.example.test.", RRType.a)
        q[5] = 2
        let r = try DecodedMessage.decode(try #require(respond(q)))
        #expect(r.rcode == RCode.formErr && r.questionCount == 0 && r.id == 0x1234)
        q[5] = 0
        let r0 = try DecodedMessage.decode(try #require(respond(Array(q[0..<12]))))
        #expect(r0.rcode == RCode.formErr)
    }

    @Test func truncatedQuestionIsFormErr() throws {
        let q = makeQuery("www.example.test.", RRType.a)
        for cut in [13, 20, q.count - 2] {
            let r = try DecodedMessage.decode(try #require(respond(Array(q[0..<cut]))))
            #expect(r.rcode == RCode.formErr && r.questionCount == 0)
        }
    }

    @Test func countsPastTheEndAreFormErr() throws {
        var q = makeQuery("www.example.test.", RRType.a)
        q[7] = 1  // ANCOUNT 1 with no record
        let r = try DecodedMessage.decode(try #require(respond(q)))
        #expect(r.rcode == RCode.formErr && r.questionCount == 1)
    }

    @Test(arguments: [Opcode.iquery, Opcode.status, Opcode.notify, Opcode.update, 3, 15])
    func otherOpcodesAreNotImp(opcode: UInt8) throws {
        // RD and CD set in a header whose format is not known: not echoed (issue: hardening, 11).
        let q = makeQuery("www.example.test.", RRType.a, flags: UInt16(opcode) << 11 | Header.rd | Header.cd | Header.aa | Header.tc)
        let raw = try #require(respond(q))
        #expect(raw.count == 12)
        #expect(Array(raw[0..<2]) == Array(q[0..<2]))
        let flags = UInt16(raw[2]) << 8 | UInt16(raw[3])
        #expect(flags == Header.qr | UInt16(opcode) << 11 | RCode.notImp)
        #expect(raw[4..<12].allSatisfy { $0 == 0 })
    }

    @Test func zoneTransfers() throws {
        #expect(try ask("example.test.", RRType.axfr).rcode == RCode.notImp)
        #expect(try ask("example.test.", RRType.axfr, transport: .tcp).rcode == RCode.refused)
        #expect(try ask("example.test.", RRType.ixfr, transport: .tcp).rcode == RCode.refused)
    }

    @Test func otherClassesAreRefused() throws {
        for c: UInt16 in [RRClass.hs, RRClass.any, RRClass.none, 42] {
            let r = try ask("www.example.test.", RRType.a, qclass: c)
            #expect(r.rcode == RCode.refused)
        }
    }

    @Test func chaosIdentityWhenConfigured() throws {
        let snap = Snapshot(zones: fixtureZones, config: EngineConfig(identity: ServerIdentity(identity: "meridian-1")))
        let r = try ask("id.server.", RRType.txt, qclass: RRClass.ch, snapshot: snap)
        #expect(r.rcode == RCode.noError && r.aa)
        #expect(r.answer.first?.rdata == [10] + Array("meridian-1".utf8))
        #expect(r.answer.first?.rrclass == RRClass.ch)
        #expect(try ask("HOSTNAME.bind.", RRType.txt, qclass: RRClass.ch, snapshot: snap).answer.count == 1)
        // version.bind is off unless configured.
        #expect(try ask("version.bind.", RRType.txt, qclass: RRClass.ch, snapshot: snap).rcode == RCode.refused)
        #expect(try ask("id.server.", RRType.txt, qclass: RRClass.ch).rcode == RCode.refused)
        #expect(try ask("other.", RRType.txt, qclass: RRClass.ch, snapshot: snap).rcode == RCode.refused)
        let v = Snapshot(zones: fixtureZones, config: EngineConfig(identity: ServerIdentity(version: "meridian 0.1")))
        #expect(try ask("version.bind.", RRType.txt, qclass: RRClass.ch, snapshot: v).answer.count == 1)
    }

    @Test func optEchoedOnlyWhenAsked() throws {
        #expect(try ask("www.example.test.", RRType.a).opt == nil)
        let r = try ask("www.example.test.", RRType.a, opt: OPTSpec(dnssecOK: true))
        let opt = try #require(r.opt)
        #expect(opt.rrclass == 1232)
        #expect(opt.ttl == 0x8000)  // DO copied, version 0, no extended rcode
        #expect(r.additional.filter { $0.type == RRType.opt }.count == 1)
        let noDO = try ask("www.example.test.", RRType.a, opt: OPTSpec())
        #expect(noDO.opt?.ttl == 0)
    }

    @Test func badVersIsReturnedForVersionAboveZero() throws {
        let r = try ask("www.example.test.", RRType.a, opt: OPTSpec(version: 1))
        #expect(r.rcode == RCode.badVers)
        #expect(r.flags & 0xF == 0)
        #expect(r.answer.isEmpty)
        #expect(r.opt.map { ($0.ttl >> 16) & 0xFF } == 0)
    }

    @Test func unknownOptionsAndFlagsAreIgnored() throws {
        let r = try ask("www.example.test.", RRType.a, opt: OPTSpec(options: [(65001, [1, 2, 3]), (10, [1, 2, 3, 4, 5, 6, 7, 8])]))
        #expect(r.rcode == RCode.noError && r.answer.count == 2)
        #expect(r.opt?.rdata == [])
    }

    @Test func nsidWhenConfiguredAndAsked() throws {
        let snap = Snapshot(zones: fixtureZones, config: EngineConfig(identity: ServerIdentity(nsid: Array("ns-a".utf8))))
        let r = try ask("www.example.test.", RRType.a, opt: OPTSpec(options: [(3, [])]), snapshot: snap)
        #expect(r.opt?.rdata == [0, 3, 0, 4] + Array("ns-a".utf8))
        let notAsked = try ask("www.example.test.", RRType.a, opt: OPTSpec(), snapshot: snap)
        #expect(notAsked.opt?.rdata == [])
        let notConfigured = try ask("www.example.test.", RRType.a, opt: OPTSpec(options: [(3, [])]))
        #expect(notConfigured.opt?.rdata == [])
    }

    @Test func clientSubnetEchoedWithScopeZero() throws {
        let ecs: [UInt8] = [0, 1, 24, 0, 10, 2, 0]
        let r = try ask("www.example.test.", RRType.a, opt: OPTSpec(options: [(8, ecs)]))
        #expect(r.opt?.rdata == [0, 8, 0, 7] + ecs)
        let v6: [UInt8] = [0, 2, 48, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 1]
        let r6 = try ask("nothere.example.test.", RRType.a, opt: OPTSpec(options: [(8, v6)]))
        #expect(r6.opt?.rdata == [0, 8, 0, 10] + v6)
    }

    @Test func malformedClientSubnetIsFormErrWithOPT() throws {
        let r = try ask("www.example.test.", RRType.a, opt: OPTSpec(options: [(8, [0, 1, 24, 0, 10, 2, 0, 0])]))
        #expect(r.rcode == RCode.formErr && r.answer.isEmpty && r.opt != nil)
    }

    @Test func twoOPTRecordsAreFormErr() throws {
        var q = makeQuery("www.example.test.", RRType.a, opt: OPTSpec())
        q += [0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]
        q[11] = 2
        let r = try DecodedMessage.decode(try #require(respond(q)))
        #expect(r.rcode == RCode.formErr && r.opt == nil)
    }

    @Test func responsesTruncateToWholeRRsetsOverUDP() throws {
        // 12 TXT records of ~200 octets: more than 512 or 1232.
        let plain = try ask("big.example.test.", RRType.txt)
        #expect(plain.tc && plain.answer.isEmpty)
        let edns = try ask("big.example.test.", RRType.txt, opt: OPTSpec(payload: 4096))
        #expect(edns.tc && edns.answer.isEmpty && edns.opt != nil)
        // Payload sizes below 512 count as 512.
        let tiny = try ask("www.example.test.", RRType.a, opt: OPTSpec(payload: 100))
        #expect(!tiny.tc && tiny.answer.count == 2)
        let tcp = try ask("big.example.test.", RRType.txt, transport: .tcp)
        #expect(!tcp.tc && tcp.answer.count == 12)
        // With a larger configured maximum the client's 4096 lets it through over UDP.
        let snap = Snapshot(zones: fixtureZones, config: EngineConfig(maxUDPPayload: 4096))
        let big = try ask("big.example.test.", RRType.txt, opt: OPTSpec(payload: 4096), snapshot: snap)
        #expect(!big.tc && big.answer.count == 12)
        #expect(big.opt?.rrclass == 4096)
    }

    @Test func additionalDataIsDroppedWithoutTC() throws {
        // Ten NS records fit in 512 octets; their twenty glue addresses do not. The answer goes
        // out whole without TC and with as much glue as fits (RFC 2181 9); TCP carries all.
        var text = "$TTL 300\n@ SOA ns00 hostmaster 1 2 3 4 5\n"
        for i in 0..<10 {
            let n = String(format: "ns%02d-server", i)
            text += "@ NS \(n)\n\(n) A 192.0.2.\(i + 1)\n\(n) AAAA 2001:db8::\(i + 1)\n"
        }
        let (zone, d) = ZoneLoader.load(text: text, origin: "glue.test.")
        let snap = Snapshot(zones: ZoneSet(zones: [try #require(zone, "\(d)")]))
        let udp = try ask("glue.test.", RRType.ns, snapshot: snap)
        #expect(!udp.tc && udp.answer.count == 10)
        #expect(udp.additional.count > 0 && udp.additional.count < 20)
        let tcp = try ask("glue.test.", RRType.ns, transport: .tcp, snapshot: snap)
        #expect(!tcp.tc && tcp.answer.count == 10 && tcp.additional.count == 20)
    }

    @Test func qtypeOPTIsFormErr() throws {
        #expect(try ask("www.example.test.", RRType.opt).rcode == RCode.formErr)
    }
}

@Suite("Hostile input")
struct FuzzTests {
    /// A small deterministic generator (SplitMix64) so failures reproduce.
    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    /// Random and mutated packets never crash the engine, every response it gives decodes,
    /// and it still answers a normal query afterwards.
    @Test func randomAndMutatedPackets() throws {
        var rng = Rng(state: 42)
        let scratch = QueryScratch()
        let seeds: [[UInt8]] = [
            makeQuery("www.example.test.", RRType.a),
            makeQuery("alias.example.test.", RRType.a, opt: OPTSpec(options: [(8, [0, 1, 24, 0, 10, 2, 0]), (3, [])])),
            makeQuery("foo.wild.example.test.", RRType.any, opt: OPTSpec()),
            makeQuery("deleg.example.test.", RRType.ds),
        ]
        var answered = 0
        for i in 0..<200_000 {
            var packet: [UInt8]
            if i % 4 == 0 {
                packet = (0..<rng.below(80)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                packet = seeds[rng.below(seeds.count)]
                for _ in 0..<(1 + rng.below(4)) {
                    switch rng.below(4) {
                    case 0: packet[rng.below(packet.count)] = UInt8(truncatingIfNeeded: rng.next())
                    case 1: packet = Array(packet[0..<rng.below(packet.count + 1)])
                    case 2: packet.insert(UInt8(truncatingIfNeeded: rng.next()), at: rng.below(packet.count + 1))
                    default: if packet.count > 3 { packet[2 + rng.below(packet.count - 2)] = 0xC0 }
                    }
                    if packet.isEmpty { break }
                }
            }
            if let r = respond(packet, transport: i % 2 == 0 ? .udp : .tcp, scratch: scratch) {
                answered += 1
                #expect(r.count <= (i % 2 == 0 ? 4096 : 65535))
                #expect((try? DecodedMessage.decode(r)) != nil, "undecodable response to \(packet)")
            }
        }
        #expect(answered > 100_000)
        let r = try #require(respond(makeQuery("www.example.test.", RRType.a), scratch: scratch))
        #expect(try DecodedMessage.decode(r).answer.count == 2)
    }
}
