"""Answers from zone data, over UDP and TCP, from the real binary (issue: DNS core, "Answering")."""
import dns.flags
import dns.query
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from helpers import ask, dig, rrs

SOA = ("example.test.", "SOA")


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
class TestAnswers:
    def test_positive_answer_is_authoritative(self, server, tcp):
        r = ask(server, "www.example.test.", tcp=tcp)
        assert r.rcode() == dns.rcode.NOERROR
        assert r.flags & dns.flags.AA and r.flags & dns.flags.RD and not r.flags & dns.flags.RA
        assert rrs(r) == [("www.example.test.", "A", "192.0.2.80"), ("www.example.test.", "A", "192.0.2.81")]

    def test_nxdomain_and_nodata_carry_soa_with_negative_ttl(self, server, tcp):
        nx = ask(server, "nothere.example.test.", tcp=tcp)
        assert nx.rcode() == dns.rcode.NXDOMAIN and nx.flags & dns.flags.AA
        assert [(r.name.to_text(), r.ttl, dns.rdatatype.to_text(r.rdtype)) for r in nx.authority] == [("example.test.", 300, "SOA")]
        nodata = ask(server, "www.example.test.", "AAAA", tcp=tcp)
        assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
        assert nodata.authority[0].ttl == 300

    def test_empty_non_terminal_is_nodata(self, server, tcp):
        r = ask(server, "b.ent.example.test.", tcp=tcp)
        assert r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority[0].rdtype == dns.rdatatype.SOA

    def test_cname_chain_followed(self, server, tcp):
        r = ask(server, "chain1.example.test.", tcp=tcp)
        assert rrs(r) == sorted([
            ("chain1.example.test.", "CNAME", "chain2.example.test."),
            ("chain2.example.test.", "CNAME", "www.example.test."),
            ("www.example.test.", "A", "192.0.2.80"), ("www.example.test.", "A", "192.0.2.81")])

    def test_cname_loop_is_stopped(self, server, tcp):
        r = ask(server, "loop1.example.test.", tcp=tcp)
        assert r.rcode() == dns.rcode.NOERROR
        assert all(rrset.rdtype == dns.rdatatype.CNAME for rrset in r.answer)

    def test_qtype_cname_answered_directly(self, server, tcp):
        r = ask(server, "alias.example.test.", "CNAME", tcp=tcp)
        assert rrs(r) == [("alias.example.test.", "CNAME", "www.example.test.")]

    def test_cname_into_child_zone(self, server, tcp):
        r = ask(server, "tochild.example.test.", tcp=tcp)
        assert ("www.sub.example.test.", "A", "192.0.2.211") in rrs(r)

    def test_wildcards(self, server, tcp):
        assert rrs(ask(server, "any.thing.wild.example.test.", tcp=tcp)) == [("any.thing.wild.example.test.", "A", "192.0.2.99")]
        exists = ask(server, "exists.wild.example.test.", "TXT", tcp=tcp)
        assert not exists.answer and exists.rcode() == dns.rcode.NOERROR
        nodata = ask(server, "x.wild.example.test.", "MX", tcp=tcp)
        assert not nodata.answer and nodata.rcode() == dns.rcode.NOERROR and nodata.authority

    def test_referral_with_glue(self, server, tcp):
        r = ask(server, "www.deleg.example.test.", tcp=tcp)
        assert r.rcode() == dns.rcode.NOERROR and not r.flags & dns.flags.AA and not r.answer
        assert rrs(r, "authority") == [("deleg.example.test.", "NS", "ns.deleg.example.test."),
                                        ("deleg.example.test.", "NS", "ns.other.example.net.")]
        assert rrs(r, "additional") == [("ns.deleg.example.test.", "A", "192.0.2.200")]

    def test_ds_from_parent_side(self, server, tcp):
        r = ask(server, "deleg.example.test.", "DS", tcp=tcp)
        assert r.flags & dns.flags.AA and r.answer[0].rdtype == dns.rdatatype.DS
        child = ask(server, "sub.example.test.", "DS", tcp=tcp)
        assert child.answer[0].rdtype == dns.rdatatype.DS and child.answer[0].name.to_text() == "sub.example.test."

    def test_child_zone_served(self, server, tcp):
        r = ask(server, "nope.sub.example.test.", tcp=tcp)
        assert r.rcode() == dns.rcode.NXDOMAIN and r.authority[0].name.to_text() == "sub.example.test."

    def test_outside_zones_refused(self, server, tcp):
        r = ask(server, "www.example.org.", tcp=tcp)
        assert r.rcode() == dns.rcode.REFUSED and not r.flags & dns.flags.AA

    def test_any_returns_one_rrset(self, server, tcp):
        r = ask(server, "example.test.", "ANY", tcp=tcp)
        assert len(r.answer) == 1

    def test_record_types(self, server, tcp):
        for name, t in [("example.test.", "MX"), ("_sip._tcp.example.test.", "SRV"), ("caa.example.test.", "CAA"),
                        ("ptr.example.test.", "PTR"), ("naptr.example.test.", "NAPTR"), ("multi.example.test.", "TXT"),
                        ("unknown.example.test.", "TYPE65280"), ("example.test.", "NS"), ("example.test.", "SOA")]:
            r = ask(server, name, t, tcp=tcp)
            assert r.answer and r.answer[0].rdtype == dns.rdatatype.from_text(t), (name, t)

    def test_additional_addresses(self, server, tcp):
        r = ask(server, "example.test.", "MX", tcp=tcp)
        assert ("mail.example.test.", "A", "192.0.2.25") in rrs(r, "additional")


def test_query_case_is_echoed(server):
    q = dns.message.make_query("WwW.eXaMpLe.TeSt.", "A")
    q.id = 4242

    r = dns.query.udp(q, "127.0.0.1", port=server.port, timeout=3)
    assert r.id == 4242 and r.question[0].name.to_text() == "WwW.eXaMpLe.TeSt."
    assert len(r.answer[0]) == 2


def test_rd_clear_stays_clear(server):
    r = ask(server, "www.example.test.", flags=0)
    assert not r.flags & dns.flags.RD and not r.flags & dns.flags.RA


def test_dig_answers_over_ipv6_and_ipv4(server):
    out6 = dig(server, "www.example.test", "+short", host="::1")
    out4 = dig(server, "www.example.test", "+short", "+tcp")
    assert sorted(out6.split()) == ["192.0.2.80", "192.0.2.81"] == sorted(out4.split())


def test_dig_shows_aa_and_referral(server):
    out = dig(server, "www.deleg.example.test", "+norec")
    assert "status: NOERROR" in out and "flags: qr;" in out and "ns.deleg.example.test." in out
