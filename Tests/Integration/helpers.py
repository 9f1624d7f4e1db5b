import os
import socket
import sys
import time
import struct
import subprocess

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype


def ask(server, name, rdtype="A", tcp=False, host="127.0.0.1", use_edns=None, payload=1232, options=None,
        rdclass="IN", want_dnssec=False, flags=None, ednsflags=0):
    if use_edns is None and not options and not want_dnssec:
        use_edns = False  # a plain query without OPT
    q = dns.message.make_query(name, rdtype, rdclass=rdclass, use_edns=use_edns, payload=payload,
                               options=options, want_dnssec=want_dnssec, ednsflags=ednsflags)
    if flags is not None:
        q.flags = flags
    if tcp:
        return dns.query.tcp(q, host, port=server.port, timeout=3)
    return dns.query.udp(q, host, port=server.port, timeout=3, ignore_trailing=False)


def raw_udp(server, payload, timeout=1.0, host="127.0.0.1"):
    """Sends raw octets; returns the raw response or None when nothing comes back in time."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(payload, (host, server.port))
        try:
            return s.recv(65535)
        except socket.timeout:
            return None


def tcp_connect(server, host="127.0.0.1"):
    s = socket.create_connection((host, server.port), timeout=3)
    return s


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def recv_frame(sock):
    (length,) = struct.unpack("!H", recv_exact(sock, 2))
    return recv_exact(sock, length)


def frame(wire):
    return struct.pack("!H", len(wire)) + wire


def dig(server, *args, host="127.0.0.1"):
    out = subprocess.run(["dig", f"@{host}", "-p", str(server.port), "+time=2", "+tries=1", *args],
                         capture_output=True, text=True, timeout=15)
    return out.stdout


def rrs(msg, section="answer"):
    """Records of a section as (name, type, text) tuples, names lowercased."""
    out = []
    for rrset in getattr(msg, section):
        for rd in rrset:
            out.append((rrset.name.to_text().lower(), dns.rdatatype.to_text(rrset.rdtype), rd.to_text()))
    return sorted(out)



# The attack script's pieces, shared with the tests (Tools/attack.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tools"))
from attack import count_closed, http_get, mutate, seeds, udp_packet  # noqa: E402,F401
