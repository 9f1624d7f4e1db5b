"""Response rate limiting through the real binary (issue: hardening)."""
import socket
import struct
import time

import dns.flags
import dns.message
import dns.query

from helpers import ask


def burst(port, n, name="www.example.test.", bind="127.0.0.1", wait=1.0):
    """Sends n queries as fast as possible from one socket; returns the responses."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((bind, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    wire = dns.message.make_query(name, "A").to_wire()
    for i in range(n):
        s.sendto(struct.pack("!H", i) + wire[2:], ("127.0.0.1", port))
        if i % 25 == 24:
            time.sleep(0.002)  # paced a little, so loopback does not drop the burst itself
    s.settimeout(wait)
    out = []
    try:
        while True:
            out.append(dns.message.from_wire(s.recv(4096)))
    except socket.timeout:
        pass
    s.close()
    return out


def test_flood_is_limited_and_slips_send_real_clients_to_tcp(fresh_server):
    srv = fresh_server("--rrl-rate", "10", "--rrl-slip", "2")
    t0 = time.time()
    rs = burst(srv.port, 400)
    seconds = int(time.time() - t0) + 1
    full = [r for r in rs if not (r.flags & dns.flags.TC)]
    slipped = [r for r in rs if r.flags & dns.flags.TC]
    # 10 a second get real answers; of the limited ones every second is a TC=1 reply with no
    # records, the rest are dropped.
    assert 10 <= len(full) <= 10 * (seconds + 1), len(full)
    assert all(r.answer for r in full)
    assert all(not r.answer and not r.authority and not r.additional for r in slipped)
    limited = 400 - len(full)
    # Half of the limited ones slip; a few datagrams may also be lost on loopback.
    assert 0.35 * limited <= len(slipped) <= 0.55 * limited, (len(slipped), limited)
    # The real client behind the flood retries over TCP, which is not limited.
    assert ask(srv, "www.example.test.", tcp=True).answer
    # Another network has its own budget.
    assert len([r for r in burst(srv.port, 5, bind="127.0.1.9") if r.answer]) == 5


def test_off_by_default(fresh_server):
    srv = fresh_server()
    rs = burst(srv.port, 200)
    assert len([r for r in rs if r.answer]) >= 190  # loopback may drop a few under the burst
