#!/usr/bin/env python3
"""Attacks a running Meridian over the network, as an unauthenticated attacker on its networks
would, and checks that it keeps answering correctly (issue 18, "Proof").

It starts its own instance on loopback (a signed copy of the test zones, RRL on, the admin API,
and a gossip listener in a group of two whose second member never comes), then runs each phase
for its share of --seconds, one after another:

  wire    mutated and random packets over UDP, and mutated frames over TCP (pipelined, split,
          unframed); every 200 packets a known query over UDP and TCP must get the right answer
  admin   idle, trickling and garbage connections to the admin API from one host and from one
          /24; /healthz from another network must answer throughout
  gossip  connections to the gossip listener declaring 16 MB frames, trickling, or sending
          garbage, from many sources; garbage datagrams to the gossip port; the instance must
          stay up and count what it dropped
  rrl     spoofed floods from a raw socket naming a victim (random names with DO=1, random
          names under a wildcard, one name): the victim gets at most the budget

Bounded: each phase stops by itself, and the instance is stopped at the end. Exits 1 when the
server died, answered wrongly, let a flood through, or locked a legitimate client out.

    sudo python3 Tools/attack.py --seconds 600            # the long pass, by hand
    python3 Tools/attack.py --seconds 20 --binary PATH    # the short pass (test_attack.py)
"""
import argparse
import json
import os
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
ZONES = os.path.join(ROOT, "Tests", "Fixtures", "zones")
RATE = 10
WWW = {"192.0.2.80", "192.0.2.81"}


def free_port(rng):
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        try:
            for typ in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, typ) as s:
                    s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


class Target:
    """The instance under attack."""

    def __init__(self, binary, work, rng):
        self.dir = work
        zones = os.path.join(work, "zones")
        shutil.copytree(ZONES, zones)
        keys = os.path.join(work, "keys")
        subprocess.run([binary, "keygen", "--zone", "example.test", "--dir", keys, "--role", "csk"],
                       capture_output=True, timeout=30, check=True)
        self.port, self.admin, self.gossip = free_port(rng), free_port(rng), free_port(rng)
        with open(os.path.join(zones, "cluster.yaml"), "w") as f:
            f.write(f"peers:\n  a1: 127.0.0.1:{self.gossip}\n  a2: 127.0.9.9:{free_port(rng)}\n")
        key = os.path.join(work, "gossip.key")
        with open(key, "w") as f:
            f.write("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")
        self.log = open(os.path.join(work, "server.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "serve", "--zones", zones, "--listen", f"127.0.0.1:{self.port}", "--threads", "2",
             "--keys", keys, "--rrl-rate", str(RATE), "--admin-listen", f"127.0.0.1:{self.admin}",
             "--node-name", "a1", "--gossip-key-file", key, "--startup-timeout", "0"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"meridian exited with {self.proc.returncode}; see {self.log.name}")
            if self.answers_correctly(tcp=False):
                return
            time.sleep(0.1)
        raise SystemExit("meridian did not start")

    def alive(self):
        return self.proc.poll() is None

    def answers_correctly(self, tcp, source=None):
        """www.example.test A from `source`, by default from a /24 of its own each time (no
        flood shares its budget, and the checks themselves stay under it)."""
        self.checks = getattr(self, "checks", 0) + 1
        source = source or f"127.3.{self.checks % 250}.1"
        q = dns.message.make_query("www.example.test.", "A")
        try:
            if tcp:
                r = dns.query.tcp(q, "127.0.0.1", port=self.port, timeout=2, source=source)
            else:
                r = dns.query.udp(q, "127.0.0.1", port=self.port, timeout=2, source=source)
        except Exception:
            return False
        got = {rd.to_text() for rrset in r.answer for rd in rrset}
        return r.rcode() == dns.rcode.NOERROR and got == WWW

    def metrics(self):
        text = http_get(self.admin, "/metrics", "127.0.4.1") or ""
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


def http_get(port, path, source, timeout=2):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
    except OSError:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    return body.decode(errors="replace") if head.startswith(b"HTTP/1.1 200") else None


# --- wire -------------------------------------------------------------------------------------

def seeds():
    out = []
    for name, t, opts, do in [("www.example.test.", "A", None, False), ("alias.example.test.", "A", [dns.edns.ECSOption("10.2.0.0", 24)], False),
                              ("x.wild.example.test.", "ANY", [], True), ("deleg.example.test.", "DS", [dns.edns.GenericOption(10, b"\x01" * 8)], True),
                              ("nope.example.test.", "TXT", [], True), ("example.test.", "DNSKEY", [], True)]:
        m = dns.message.make_query(name, t, use_edns=0 if opts is not None else None, options=opts, want_dnssec=do)
        out.append(m.to_wire())
    return out


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(6)
        if op == 0 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif op == 1:
            del data[rng.randrange(len(data) + 1):]
        elif op == 2:
            data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
        elif op == 3 and data:
            data[rng.randrange(len(data))] = 0xC0
        elif op == 4 and len(data) > 12:
            i = rng.randrange(4, 12, 2)
            data[i:i + 2] = struct.pack("!H", rng.choice([0, 1, 2, 0xFFFF]))
        elif data:
            j = rng.randrange(len(data))
            data[j:j] = data[j:j + rng.randrange(1, 16)]
    return bytes(data)


def phase_wire(target, rng, seconds, report):
    base = seeds()
    sent = answered = checks = tcp_frames = 0
    deadline = time.time() + seconds
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.2.1", 0))
    u.setblocking(False)
    while time.time() < deadline:
        for _ in range(200):
            pkt = bytes(rng.randrange(256) for _ in range(rng.randrange(80))) if rng.random() < 0.2 else mutate(rng, rng.choice(base))
            try:
                u.sendto(pkt, ("127.0.0.1", target.port))
                sent += 1
            except OSError:
                pass
        time.sleep(0.005)  # pacing, so loopback does not drop the burst itself
        try:
            while True:
                u.recv(65535)
                answered += 1
        except BlockingIOError:
            pass
        tcp_frames += tcp_round(target, rng, base)
        checks += 1
        if not (target.alive() and target.answers_correctly(tcp=False) and target.answers_correctly(tcp=True)):
            report.failure(f"wire: wrong or no answer after {sent} datagrams and {tcp_frames} TCP frames")
            break
    u.close()
    report.phase("wire", datagrams=sent, answered=answered, tcp_frames=tcp_frames, checks=checks)


def tcp_round(target, rng, base):
    """One connection: mutated frames, pipelined, some split mid-frame, some unframed."""
    n = 0
    try:
        t = socket.create_connection(("127.0.0.1", target.port), timeout=2, source_address=("127.0.2.2", 0))
        for _ in range(rng.randint(1, 30)):
            pkt = mutate(rng, rng.choice(base))
            data = struct.pack("!H", len(pkt)) + pkt if rng.random() < 0.85 else pkt
            if rng.random() < 0.2:
                cut = rng.randrange(len(data) + 1)
                t.sendall(data[:cut])
                t.sendall(data[cut:])
            else:
                t.sendall(data)
            n += 1
        t.close()
    except OSError:
        pass
    return n


# --- admin ------------------------------------------------------------------------------------

def phase_admin(target, rng, seconds, report):
    deadline = time.time() + seconds
    opened = refused_fast = healthz = lockouts = 0
    while time.time() < deadline:
        hogs = []
        sources = ["127.0.5.1"] if rng.random() < 0.5 else [f"127.0.6.{i}" for i in range(1, 33)]
        for i in range(64):
            try:
                s = socket.create_connection(("127.0.0.1", target.admin), timeout=2, source_address=(sources[i % len(sources)], 0))
                kind = rng.randrange(3)
                if kind == 1:
                    s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n")  # a request never finished
                elif kind == 2:
                    s.sendall(os.urandom(rng.randrange(1, 2000)))
                hogs.append(s)
                opened += 1
            except OSError:
                pass
        refused_fast += count_closed(hogs, 0.5)
        # Another network still gets /healthz, with the slots of the hogs' network held.
        if http_get(target.admin, "/healthz", "127.0.7.1") is None:
            lockouts += 1
            report.failure("admin: /healthz from another network got no answer during a flood")
        healthz += 1
        for s in hogs:
            s.close()
    if not target.alive():
        report.failure("admin: the server died")
    report.phase("admin", connections=opened, closed_at_once=refused_fast, healthz_checks=healthz, lockouts=lockouts)


def count_closed(socks, within):
    deadline = time.time() + within
    pending = list(socks)
    closed = 0
    while pending and time.time() < deadline:
        ready, _, _ = select.select(pending, [], [], max(0.0, deadline - time.time()))
        for s in ready:
            pending.remove(s)
            try:
                closed += s.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                closed += 1
    return closed


# --- gossip -----------------------------------------------------------------------------------

def phase_gossip(target, rng, seconds, report):
    deadline = time.time() + seconds
    connections = datagrams = 0
    while time.time() < deadline:
        held = []
        for i in range(64):
            try:
                s = socket.create_connection(("127.0.0.1", target.gossip), timeout=2, source_address=(f"127.0.8.{i % 40 + 1}", 0))
                kind = rng.randrange(3)
                if kind == 0:
                    s.sendall(struct.pack(">I", 16 * 1024 * 1024) + os.urandom(64))
                elif kind == 1:
                    s.sendall(struct.pack(">I", rng.randrange(1, 60000))[: rng.randrange(1, 4)])
                else:
                    s.sendall(struct.pack(">I", 200) + os.urandom(200))
                held.append(s)
                connections += 1
            except OSError:
                pass
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            for _ in range(300):
                u.sendto(os.urandom(rng.randrange(1, 1500)), ("127.0.0.1", target.gossip))
                datagrams += 1
        count_closed(held, 0.3)
        for s in held:
            s.close()
        if not (target.alive() and target.answers_correctly(tcp=False)):
            report.failure("gossip: the server stopped answering")
            break
    dropped = sum(v for k, v in target.metrics().items() if k.startswith("meridian_gossip_dropped_total"))
    if dropped == 0:
        report.failure("gossip: nothing was counted as dropped")
    report.phase("gossip", connections=connections, datagrams=datagrams, dropped_counted=int(dropped))


# --- rrl --------------------------------------------------------------------------------------

def udp_packet(src, sport, dst, dport, payload):
    length = 28 + len(payload)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, length, 0, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
    s = sum(struct.unpack("!10H", header))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    header = header[:10] + struct.pack("!H", ~s & 0xFFFF) + header[12:]
    return header + struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def label(rng):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))


def phase_rrl(target, rng, seconds, report):
    try:
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    except PermissionError:
        report.phase("rrl", skipped="raw sockets need root")
        return
    deadline = time.time() + seconds
    floods = {"random-do": 0, "wildcard": 0, "one-name": 0}
    sent = 0
    over = []
    while time.time() < deadline:
        kind = list(floods)[floods_round(floods)]
        victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        victim.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        victim.bind((f"127.0.10.{rng.randrange(1, 250)}", 0))
        vaddr, vport = victim.getsockname()
        t0 = time.time()
        for i in range(1000):
            if kind == "random-do":
                q = dns.message.make_query(f"{label(rng)}.example.test.", "A", want_dnssec=True)
            elif kind == "wildcard":
                q = dns.message.make_query(f"{label(rng)}.wild.example.test.", "A")
            else:
                q = dns.message.make_query("mail.example.test.", "A")
            raw.sendto(udp_packet(vaddr, vport, "127.0.0.1", target.port, q.to_wire()), ("127.0.0.1", 0))
            sent += 1
            if i % 25 == 24:
                time.sleep(0.002)
        took = time.time() - t0
        full = 0
        victim.settimeout(1.0)
        try:
            while True:
                r = dns.message.from_wire(victim.recv(65535))
                full += not (r.flags & dns.flags.TC)
        except socket.timeout:
            pass
        victim.close()
        floods[kind] += 1
        budget = RATE * (int(took) + 2)
        if full > budget:
            over.append(f"{kind}: {full} full answers for a budget of {budget}")
        if not target.answers_correctly(tcp=False, source="127.0.11.1"):
            report.failure("rrl: a client on another network was not answered during a flood")
    raw.close()
    for o in over:
        report.failure(f"rrl: {o}")
    report.phase("rrl", spoofed_queries=sent, floods=floods)


def floods_round(floods):
    return min(range(len(floods)), key=lambda i: list(floods.values())[i])


class Report:
    def __init__(self):
        self.phases = {}
        self.failures = []

    def phase(self, name, **figures):
        self.phases[name] = figures
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in figures.items()), flush=True)

    def failure(self, text):
        if len(self.failures) < 50:
            self.failures.append(text)
        print(f"FAILURE {text}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(ROOT, ".build", "debug", "meridian"))
    ap.add_argument("--seconds", type=float, default=60, help="the whole run, shared by the phases")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--phases", default="wire,admin,gossip,rrl")
    ap.add_argument("--json", help="write the report here")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    phases = [p for p in args.phases.split(",") if p]
    work = tempfile.mkdtemp(prefix="meridian-attack-")
    report = Report()
    target = Target(args.binary, work, rng)
    print(f"attacking meridian on 127.0.0.1:{target.port} (admin {target.admin}, gossip {target.gossip}), seed {args.seed}, {args.seconds:.0f} s", flush=True)
    try:
        for p in phases:
            globals()[f"phase_{p}"](target, rng, args.seconds / len(phases), report)
            if not target.alive():
                report.failure(f"{p}: the server died (exit {target.proc.returncode})")
                break
    finally:
        target.stop()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seed": args.seed, "phases": report.phases, "failures": report.failures}, f, indent=1)
    if report.failures:
        print(f"{len(report.failures)} failures; the server's log is {target.log.name}")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("no failures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
