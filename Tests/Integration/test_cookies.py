"""DNS Cookies through the real binary (RFC 7873, server cookies per RFC 9018)."""
import os
import shutil
import socket
import struct

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode

from conftest import FIXTURE_ZONES, Server

CLIENT = bytes.fromhex("2464c4abcf10c957")


def cookie_of(r):
    for o in r.options:
        if o.otype == 10:
            return o.to_wire() if hasattr(o, "to_wire") else o.data
    return None


def query(srv, cookie, tcp=False):
    q = dns.message.make_query("www.example.test.", "A", use_edns=0, options=[dns.edns.GenericOption(10, cookie)])
    return (dns.query.tcp if tcp else dns.query.udp)(q, "127.0.0.1", port=srv.port, timeout=3)


def start(tmp_path, name, *args):
    zones = str(tmp_path / name)
    shutil.copytree(FIXTURE_ZONES, zones)
    return Server(zones, list(args))


def test_shared_secret_instances_accept_each_others_cookies(binary, tmp_path):
    secret = tmp_path / "cookie.secret"
    secret.write_text("# shared by every instance behind the anycast address\ne5e973e5a6b2a43f48e7dc849e37bfcf\n")
    a = start(tmp_path, "a", "--cookie-secret-file", str(secret))
    b = start(tmp_path, "b", "--cookie-secret-file", str(secret))
    other = tmp_path / "other.secret"
    other.write_text("00112233445566778899aabbccddeeff\n")
    c = start(tmp_path, "c", "--cookie-secret-file", str(other))
    try:
        r = query(a, CLIENT)
        assert r.rcode() == dns.rcode.NOERROR and r.answer
        cookie = cookie_of(r)
        assert cookie is not None and len(cookie) == 24 and cookie[:8] == CLIENT and cookie[8] == 1
        r = query(b, cookie)
        assert r.rcode() == dns.rcode.NOERROR and r.answer
        # A server with another secret says BADCOOKIE and hands out its own.
        r = query(c, cookie)
        assert r.rcode() == dns.rcode.BADCOOKIE and not r.answer
        fresh = cookie_of(r)
        assert fresh is not None and fresh != cookie
        assert query(c, fresh).rcode() == dns.rcode.NOERROR
        # Malformed COOKIE options are FORMERR.
        assert query(a, b"\x01\x02\x03").rcode() == dns.rcode.FORMERR
    finally:
        for s in (a, b, c):
            s.stop()


def test_valid_cookie_is_not_rate_limited(binary, tmp_path):
    srv = start(tmp_path, "z", "--rrl-rate", "5", "--rrl-slip", "0")
    try:
        cookie = cookie_of(query(srv, CLIENT))
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1.0)
        answered = {}
        for label, opt in (("cookie", cookie), ("none", None)):
            q = dns.message.make_query("www.example.test.", "A", use_edns=0, options=[dns.edns.GenericOption(10, opt)] if opt else [])
            wire = q.to_wire()
            for i in range(60):
                s.sendto(struct.pack("!H", i) + wire[2:], ("127.0.0.1", srv.port))
            n = 0
            try:
                while True:
                    s.recv(4096)
                    n += 1
            except socket.timeout:
                pass
            answered[label] = n
        s.close()
        # All of them (a datagram or two may be lost on a loaded loopback), against at most a
        # second or two of the 5/s budget without a cookie.
        assert answered["cookie"] >= 55, answered
        assert answered["none"] <= 15, answered
    finally:
        srv.stop()


def test_dig_sees_a_good_cookie(server):
    import subprocess
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(server.port), "www.example.test.", "+cookie"], capture_output=True, text=True, timeout=10).stdout
    assert "COOKIE:" in out and "(good)" in out, out


def test_cookieless_large_udp_answers_are_truncated_and_dig_gets_them(binary, tmp_path):
    """--cookieless-udp-max: a spoofed source (no cookie) draws at most a small TC=1 reply;
    a client holding a valid server cookie gets the whole answer over UDP, and dig without
    cookies still gets it by retrying over TCP."""
    srv = start(tmp_path, "z", "--cookieless-udp-max", "512", "--max-udp-size", "4096")
    try:
        def big(cookie):
            opts = [dns.edns.GenericOption(10, cookie)] if cookie else []
            q = dns.message.make_query("big.example.test.", "TXT", use_edns=0, payload=4096, options=opts)
            return dns.query.udp(q, "127.0.0.1", port=srv.port, timeout=3)
        bare = big(None)
        assert bare.flags & dns.flags.TC and not bare.answer
        first = big(CLIENT)
        assert first.flags & dns.flags.TC
        full = big(cookie_of(first))
        assert not full.flags & dns.flags.TC and len(full.answer[0]) == 12
        # Small answers are not affected.
        assert query(srv, CLIENT).answer
        import subprocess
        out = subprocess.run(["dig", "@127.0.0.1", "-p", str(srv.port), "+nocookie", "+bufsize=4096",
                              "+tries=1", "+time=3", "big.example.test.", "TXT"], capture_output=True, text=True, timeout=20).stdout
        assert "Truncated, retrying in TCP mode" in out and out.count("record-") == 12, out
    finally:
        srv.stop()
