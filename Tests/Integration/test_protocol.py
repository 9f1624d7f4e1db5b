"""Header handling, malformed input, EDNS(0), truncation, identity (issue: DNS core)."""
import struct

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from helpers import ask, dig, raw_udp, tcp_connect, frame, recv_frame


def header(id=0x1234, flags=0x0100, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", id, flags, qd, an, ns, ar)


QUESTION = b"\x03www\x07example\x04test\x00\x00\x01\x00\x01"


def rcode_of(resp):
    return struct.unpack("!H", resp[2:4])[0] & 0xF


def test_short_packets_and_responses_are_dropped(server):
    assert raw_udp(server, b"\x12\x34\x01", timeout=0.5) is None
    assert raw_udp(server, header()[:11], timeout=0.5) is None
    assert raw_udp(server, header(flags=0x8100) + QUESTION, timeout=0.5) is None
    # The server still answers afterwards.
    assert ask(server, "www.example.test.").answer


def test_bad_question_count_is_formerr(server):
    for qd in (0, 2):
        r = raw_udp(server, header(qd=qd) + QUESTION)
        assert r is not None and rcode_of(r) == dns.rcode.FORMERR
        assert r[:2] == b"\x12\x34" and struct.unpack("!H", r[4:6])[0] == 0


def test_truncated_question_is_formerr(server):
    r = raw_udp(server, header() + QUESTION[:10])
    assert rcode_of(r) == dns.rcode.FORMERR


def test_counts_past_end_are_formerr(server):
    r = raw_udp(server, header(ar=2) + QUESTION)
    assert rcode_of(r) == dns.rcode.FORMERR


def test_pointer_loop_in_question_is_formerr(server):
    r = raw_udp(server, header() + b"\xc0\x0c\x00\x01\x00\x01")
    assert rcode_of(r) == dns.rcode.FORMERR


@pytest.mark.parametrize("opcode", [dns.opcode.NOTIFY, dns.opcode.UPDATE, dns.opcode.IQUERY, dns.opcode.STATUS])
def test_other_opcodes_notimp(server, opcode):
    # RD (0x0100) and CD (0x0010) set: a NOTIMP echoes only the ID, QR and the opcode.
    r = raw_udp(server, header(flags=(opcode << 11) | 0x0100 | 0x0010) + QUESTION)
    assert rcode_of(r) == dns.rcode.NOTIMP
    assert struct.unpack("!H", r[2:4])[0] == 0x8000 | (opcode << 11) | dns.rcode.NOTIMP
    assert len(r) == 12 and r[4:12] == b"\0" * 8


def test_axfr(server):
    assert ask(server, "example.test.", "AXFR").rcode() == dns.rcode.NOTIMP
    q = dns.message.make_query("example.test.", "AXFR")
    s = tcp_connect(server)
    s.sendall(frame(q.to_wire()))
    r = dns.message.from_wire(recv_frame(s))
    s.close()
    assert r.rcode() == dns.rcode.REFUSED


def test_other_classes_refused(server):
    for c in ("HS", "ANY", "NONE"):
        assert ask(server, "www.example.test.", rdclass=c).rcode() == dns.rcode.REFUSED


def test_chaos_identity(server):
    assert ask(server, "id.server.", "TXT", rdclass="CH").answer[0][0].to_text() == '"ci-1"'
    assert ask(server, "hostname.bind.", "TXT", rdclass="CH").answer[0][0].to_text() == '"ci-1"'
    assert ask(server, "version.bind.", "TXT", rdclass="CH").rcode() == dns.rcode.REFUSED


def test_nsid(server):
    r = ask(server, "www.example.test.", use_edns=0, options=[dns.edns.GenericOption(dns.edns.NSID, b"")])
    nsid = [o for o in r.options if o.otype == dns.edns.NSID]
    assert len(nsid) == 1
    assert (getattr(nsid[0], "nsid", None) or getattr(nsid[0], "data", b"")) == b"meridian-ci"
    assert not [o for o in ask(server, "www.example.test.", use_edns=0).options if o.otype == dns.edns.NSID]
    assert "meridian-ci" in dig(server, "www.example.test", "+nsid")


def test_opt_only_when_asked(server):
    assert ask(server, "www.example.test.").edns == -1
    r = ask(server, "www.example.test.", use_edns=0, want_dnssec=True)
    assert r.edns == 0 and r.payload == 1232 and r.ednsflags & dns.flags.DO
    assert not ask(server, "www.example.test.", use_edns=0).ednsflags & dns.flags.DO


def test_two_opt_records_formerr(server):
    q = dns.message.make_query("www.example.test.", "A", use_edns=0).to_wire()
    opt = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"
    q = q[:10] + b"\x00\x02" + q[12:] + opt
    r = raw_udp(server, q)
    assert rcode_of(r) == dns.rcode.FORMERR


def test_badvers(server):
    r = ask(server, "www.example.test.", use_edns=1)
    assert r.rcode() == dns.rcode.BADVERS and r.edns == 0 and not r.answer


def test_unknown_options_ignored(server):
    r = ask(server, "www.example.test.", use_edns=0, options=[dns.edns.GenericOption(65001, b"xyz")])
    assert r.rcode() == dns.rcode.NOERROR and len(r.answer[0]) == 2


def test_small_payload_treated_as_512_and_truncation(server):
    r = ask(server, "www.example.test.", use_edns=0, payload=100)
    assert not r.flags & dns.flags.TC and r.answer
    big = ask(server, "big.example.test.", "TXT", use_edns=0, payload=4096)
    assert big.flags & dns.flags.TC and not big.answer
    plain = ask(server, "big.example.test.", "TXT")
    assert plain.flags & dns.flags.TC
    full = ask(server, "big.example.test.", "TXT", tcp=True)
    assert not full.flags & dns.flags.TC and len(full.answer[0]) == 12


def test_client_subnet_echoed_with_scope_zero(server):
    ecs = dns.edns.ECSOption("10.2.0.0", 24)
    r = ask(server, "www.example.test.", use_edns=0, options=[ecs])
    got = [o for o in r.options if o.otype == dns.edns.ECS][0]
    assert got.address == "10.2.0.0" and got.srclen == 24 and got.scopelen == 0
    out = dig(server, "www.example.test", "+subnet=2001:db8:1::/48")
    assert "CLIENT-SUBNET: 2001:db8:1::/48/0" in out


def test_malformed_client_subnet_formerr(server):
    # Address longer than the source prefix needs.
    bad = dns.edns.GenericOption(dns.edns.ECS, b"\x00\x01\x18\x00\x0a\x02\x00\x00")
    r = ask(server, "www.example.test.", use_edns=0, options=[bad])
    assert r.rcode() == dns.rcode.FORMERR
    # Bits set past the source prefix.
    bad2 = dns.edns.GenericOption(dns.edns.ECS, b"\x00\x01\x17\x00\x0a\x02\x01")
    assert ask(server, "www.example.test.", use_edns=0, options=[bad2]).rcode() == dns.rcode.FORMERR


def test_both_udp_engines_give_the_same_octets(binary, tmp_path):
    """The batched data plane (default) and the SwiftNIO front end (--udp-engine nio) run the
    same answer step: every response, byte for byte, is the same."""
    import shutil
    from conftest import FIXTURE_ZONES, Server
    servers = []
    for engine in ("batch", "nio"):
        z = tmp_path / engine
        shutil.copytree(FIXTURE_ZONES, z)
        servers.append(Server(str(z), ["--udp-engine", engine, "--cookie-secret-file", str(write_secret(tmp_path))]))
    cookie_opt = dns.edns.GenericOption(10, bytes.fromhex("2464c4abcf10c957"))
    queries = [
        dns.message.make_query("www.example.test.", "A").to_wire(),
        dns.message.make_query("nope.example.test.", "AAAA", use_edns=0).to_wire(),
        dns.message.make_query("big.example.test.", "TXT", use_edns=0, payload=4096).to_wire(),
        dns.message.make_query("big.example.test.", "TXT").to_wire(),
        dns.message.make_query("alias.example.test.", "A", use_edns=0, options=[cookie_opt]).to_wire(),
        dns.message.make_query("x.wild.example.test.", "TXT", use_edns=0,
                               options=[dns.edns.ECSOption("10.2.0.0", 24)]).to_wire(),
        header(flags=0x0100, qd=2) + QUESTION + QUESTION,
        header(flags=0x2900) + QUESTION,
        header() + QUESTION[:-2],
    ]
    try:
        for q in queries:
            replies = [raw_udp(s, q, timeout=2) for s in servers]
            if q is queries[4]:
                # The server cookie's last 16 octets hold a timestamp and its hash.
                replies = [r[:-16] if r else r for r in replies]
            assert replies[0] is not None and replies[0] == replies[1], (q, replies)
        # A query whose datagram is larger than any DNS query is dropped, not answered.
        assert raw_udp(servers[0], header() + QUESTION + b"\0" * 5000, timeout=0.5) is None
    finally:
        for s in servers:
            s.stop()


def write_secret(tmp_path):
    p = tmp_path / "cookie.secret"
    p.write_text("e5e973e5a6b2a43f48e7dc849e37bfcf\n")
    return p
