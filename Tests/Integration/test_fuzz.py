"""A bounded fuzz run against the live server: random and mutated packets over UDP and TCP,
then a normal query must still be answered (issue: DNS core, "Tests")."""
import random
import socket
import struct
import time

import dns.edns
import dns.message

from helpers import ask, frame, mutate, seeds


def test_fuzz_udp_and_tcp(fresh_server):
    srv = fresh_server()
    rng = random.Random(7)
    base = seeds()
    answered = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.0)
        deadline = time.time() + 20
        for i in range(5000):
            if time.time() > deadline:
                break
            if i % 5 == 0:
                pkt = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
            else:
                pkt = mutate(rng, rng.choice(base))
            s.sendto(pkt, ("127.0.0.1", srv.port))
            if i % 50 == 0:
                time.sleep(0.01)
            try:
                while True:
                    s.recv(65535)
                    answered += 1
            except (BlockingIOError, socket.timeout):
                pass
    assert answered > 0
    # TCP: mutated frames on a few connections.
    for c in range(20):
        t = socket.create_connection(("127.0.0.1", srv.port), timeout=2)
        try:
            for _ in range(20):
                pkt = mutate(rng, rng.choice(base))
                t.sendall(frame(pkt) if rng.random() < 0.8 else pkt)
        except OSError:
            pass
        t.close()
    assert srv.alive()
    assert ask(srv, "www.example.test.").answer
    assert ask(srv, "www.example.test.", tcp=True).answer
