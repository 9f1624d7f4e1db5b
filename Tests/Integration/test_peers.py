"""Peers through the real binary: 3 to 5 `meridian` processes on 127.0.x loopback addresses
gossiping as one group (issue: peers). Backends are TCP listeners owned by the test; killing one
closes its socket. Every wait is bounded."""
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.request

import dns.edns
import dns.message
import dns.query
import pytest

from conftest import BIN, free_port
from helpers import count_closed

ZONE = """$ORIGIN peers.test.
$TTL 300
@ IN SOA ns1 hostmaster 1 3600 600 604800 60
  IN NS ns1
ns1 IN A 127.0.0.1
"""

BACKENDS = [f"127.0.2.{i}" for i in range(1, 7)]

POOLS = """pools:
  www:
    names: [www.peers.test.]
    mode: multi-site
    address_order: sticky
    sites:
      a: {{members: [127.0.2.1, 127.0.2.2]}}
      b: {{members: [127.0.2.3, 127.0.2.4]}}
    order: {{default: [a, b]}}
    checks:
      - {{type: tcp, port: {port}, interval: 200ms, timeout: 150ms, rise: 1, fall: 1}}
  app:
    names: [app.peers.test.]
    mode: direct
    method: consistent-hash
    max_answers: 2
    members: [127.0.2.1, 127.0.2.2, 127.0.2.3, 127.0.2.4, 127.0.2.5, 127.0.2.6]
    checks:
      - {{type: tcp, port: {port}, interval: 200ms, timeout: 150ms, rise: 1, fall: 1}}
"""

KEY = base64.b64encode(bytes(range(32))).decode()


class Backend:
    """A TCP listener that accepts and closes (after `reply()`, when given), counting
    connections (each is one probe)."""

    def __init__(self, ip, port, reply=None):
        self.ip = ip
        self.reply = reply  # a function giving the octets to send before closing (a feedback agent)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(256)
        self.sock.settimeout(0.2)
        self.accepted = 0
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while self.running:
            try:
                c, _ = self.sock.accept()
                self.accepted += 1
                if self.reply:
                    c.sendall(self.reply())
                c.close()
            except (socket.timeout, OSError):
                continue

    def kill(self):
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()


class Partition:
    """Cuts gossip between two sets of instances in the kernel (iptables, INPUT: packets
    between their gossip addresses are dropped on arrival, both ways), as a split network
    would; `heal` removes exactly the rules it added."""

    def __init__(self, a, b):
        self.rules = []
        for x in a:
            for y in b:
                for src, dst in ((x, y), (y, x)):
                    self.rules.append(["INPUT", "-s", src.gossip.rsplit(":", 1)[0], "-d", dst.gossip.rsplit(":", 1)[0], "-j", "DROP"])
        for r in self.rules:
            subprocess.run(["iptables", "-I", *r], check=True, capture_output=True, timeout=10)

    def heal(self):
        for r in self.rules:
            subprocess.run(["iptables", "-D", *r], capture_output=True, timeout=10)
        self.rules = []


class Instance:
    def __init__(self, name, dns_ip, gossip, zones, key_file, log_dir, extra=(), observer=False):
        self.observer = observer
        self.name = name
        self.ip = dns_ip
        self.port = free_port()
        self.admin = free_port()
        self.gossip = gossip
        self.zones = zones
        self.key_file = key_file
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self.extra = list(extra)
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "a")
        args = [BIN, "serve", "--zones", self.zones, "--listen", f"{self.ip}:{self.port}", "--threads", "1",
                "--node-name", self.name, "--gossip-key-file", self.key_file,
                "--startup-timeout", "3", "--admin-listen", f"{self.ip}:{self.admin}"] + self.extra
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        q = dns.message.make_query("peers.test.", "SOA")
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.text()[-2000:]}")
            try:
                # Ready when its admin API answers (it may start after DNS) and, unless an
                # observer (which serves no DNS), DNS does.
                urllib.request.urlopen(f"http://{self.ip}:{self.admin}/healthz", timeout=0.2).close()
                if not self.observer:
                    dns.query.udp(q, self.ip, port=self.port, timeout=0.2)
                return self
            except Exception:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start")

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc:
            self.log.close()


    def answer(self, name, subnet=None):
        opts = [dns.edns.ECSOption(subnet, 24)] if subnet else None
        q = dns.message.make_query(name, "A", use_edns=0 if subnet else None, options=opts)
        r = dns.query.udp(q, self.ip, port=self.port, timeout=2)
        return [rd.to_text() for rrset in r.answer for rd in rrset]


FAST_TIMINGS = "{probe_interval: 0.5, probe_timeout: 0.2, gossip_interval: 0.1, push_pull_interval: 10, rejoin_interval: 1}"


class Group:
    def __init__(self, tmp_path, n, probers="2", pools=None, timings=FAST_TIMINGS, backends=BACKENDS, state_files=False, placement=None,
                 policy="verdict: majority\nprobers: {probers}\n"):
        self.port = free_port()
        self.backends = {ip: Backend(ip, self.port) for ip in backends}
        self.dir = tmp_path
        self.key_file = str(tmp_path / "gossip.key")
        (tmp_path / "gossip.key").write_text(KEY + "\n")
        peers = {f"ns{i}": f"127.0.1.{i}:{free_port()}" for i in range(1, n + 1)}
        self.peers = peers
        placement = placement or {}
        cluster = "peers:\n" + "".join(f"  {k}: {{address: {v}, {placement[k]}}}\n" if k in placement else f"  {k}: {v}\n" for k, v in peers.items())
        cluster += policy.format(probers=probers)
        if timings:
            cluster += f"timings: {timings}\n"
        self.instances = []
        for i in range(1, n + 1):
            z = tmp_path / f"zones-ns{i}"
            z.mkdir()
            (z / "peers.test.zone").write_text(ZONE)
            (z / "pools.yaml").write_text((pools or POOLS).format(port=self.port))
            (z / "cluster.yaml").write_text(cluster)
            self.instances.append(Instance(f"ns{i}", f"127.0.1.{i}", peers[f"ns{i}"], str(z), self.key_file, str(tmp_path),
                                           observer="observer" in placement.get(f"ns{i}", "")))
            if state_files:
                (tmp_path / f"state-{i - 1}.txt").write_text("")
                self.instances[-1].extra = ["--state", str(tmp_path / f"state-{i - 1}.txt")]

    def start(self):
        for inst in self.instances:
            inst.start()
        wait_for(lambda: all(i.text().count("is alive") >= len(self.instances) - 1 for i in self.instances), 10, "group formed")
        return self

    def stop(self):
        for inst in self.instances:
            inst.stop()
        for b in self.backends.values():
            if b.running:
                b.kill()

    def running(self):
        return [i for i in self.instances if i.proc and i.proc.poll() is None]


def shares(inst):
    return [int(x) for x in re.findall(r"this instance probes (\d+) of 10 members", inst.text())]


def share_total(instances):
    return sum(shares(i)[-1] for i in instances if shares(i))


def metric_in(inst):
    """Gossip messages the instance has received (its /metrics)."""
    with urllib.request.urlopen(f"http://{inst.ip}:{inst.admin}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith('meridian_gossip_messages_total{direction="in"}'):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return time.time()
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for: {what}")


SUBNETS = [f"10.{i // 250}.{i % 250}.0" for i in range(1000)]


def answers_for_subnets(inst, name):
    return [tuple(inst.answer(name, s)) for s in SUBNETS]


def assert_all_agree(group, names=("www.peers.test", "app.peers.test")):
    for name in names:
        views = {i.name: answers_for_subnets(i, name) for i in group.running()}
        ref_name, ref = next(iter(views.items()))
        for n, v in views.items():
            diff = sum(1 for a, b in zip(ref, v) if a != b)
            assert diff == 0, f"{name}: {n} differs from {ref_name} for {diff} of 1000 subnets"
        yield name, ref


@pytest.fixture()
def group3(binary, tmp_path):
    g = Group(tmp_path, 3)
    yield g
    g.stop()


def test_backend_death_every_instance_agrees(group3):
    g = group3.start()
    before = dict(assert_all_agree(g))
    assert any("127.0.2.1" in a for a in before["app.peers.test"])
    g.backends["127.0.2.1"].kill()
    died = time.time()
    # Every instance stops answering it: probers see it at the next check (200 ms), the
    # observation spreads on the 100 ms gossip tick.
    probe_subnets = [s for s, a in zip(SUBNETS, before["app.peers.test"]) if "127.0.2.1" in a][:20]
    t = wait_for(lambda: all("127.0.2.1" not in inst.answer("app.peers.test", s) for inst in g.running() for s in probe_subnets)
                 and all("127.0.2.1" not in inst.answer("www.peers.test") for inst in g.running()), 5, "every instance drops 127.0.2.1")
    took = t - died
    print(f"backend death -> all 3 instances agree: {took * 1000:.0f} ms")
    assert took < 2.0
    after = dict(assert_all_agree(g))
    assert not any("127.0.2.1" in a for a in after["app.peers.test"])
    assert not any("127.0.2.1" in a for a in after["www.peers.test"])
    # Consistent hashing: only the dead node's subnets moved.
    moved = sum(1 for a, b in zip(before["app.peers.test"], after["app.peers.test"]) if a != b)
    assert moved == sum(1 for a in before["app.peers.test"] if "127.0.2.1" in a)


def test_probe_load_is_shared(group3):
    g = group3.start()
    wait_for(lambda: all(b.accepted > 0 for b in g.backends.values()), 10, "every backend probed")
    counts = {ip: b.accepted for ip, b in g.backends.items()}
    time.sleep(3.0)  # the measurement window (a rate), not a wait for a condition
    rates = {ip: (b.accepted - counts[ip]) / 3.0 for ip, b in g.backends.items()}
    # Two probers at 5 checks a second each (interval 200 ms), not three; .1-.4 are members of
    # both pools (two members each), .5 and .6 of one.
    for ip, r in rates.items():
        per_member = 10.0 * (2 if ip in ("127.0.2.1", "127.0.2.2", "127.0.2.3", "127.0.2.4") else 1)
        assert 0.7 * per_member <= r <= 1.3 * per_member, f"{ip}: {r:.1f} probes/s {rates}"
    assert share_total(g.instances) == 20


def test_kill_9_instance_others_take_over(group3):
    g = group3.start()
    ns1, ns2, ns3 = g.instances
    ns3.stop(signal.SIGKILL)
    killed = time.time()
    # The others keep answering all along, then mark it dead and probe everything themselves.
    t = wait_for(lambda: ns1.answer("www.peers.test") and ns2.answer("www.peers.test")
                 and "peer ns3 is dead" in ns1.text() and "peer ns3 is dead" in ns2.text(), 20, "ns3 declared dead")
    print(f"kill -9 -> dead on both peers: {t - killed:.1f} s")
    wait_for(lambda: all(shares(i)[-1] == 10 for i in (ns1, ns2)), 5, "ns1 and ns2 probe all 10")
    g.backends["127.0.2.3"].kill()
    wait_for(lambda: all("127.0.2.3" not in i.answer("www.peers.test", "10.0.0.0") for i in (ns1, ns2))
             and all("127.0.2.3" not in a for i in (ns1, ns2) for a in i.answer("app.peers.test", "10.0.1.0")), 5, "takeover covers every member")
    list(assert_all_agree(g))


def test_partition_and_heal(group3):
    g = group3.start()
    ns1, ns2, ns3 = g.instances
    split = Partition([ns1], [ns2, ns3])
    try:
        partitioned_run(g, split)
    finally:
        split.heal()


def partitioned_run(g, split):
    ns1, ns2, ns3 = g.instances
    wait_for(lambda: "peer ns2 is dead" in ns1.text() and "peer ns1 is dead" in ns2.text() and "peer ns1 is dead" in ns3.text(), 20, "both sides split")
    # Both sides keep answering and each side still judges members: a backend dies now.
    g.backends["127.0.2.2"].kill()
    wait_for(lambda: all("127.0.2.2" not in i.answer("www.peers.test") for i in g.instances), 5, "both sides drop 127.0.2.2")
    split.heal()
    healed = time.time()
    t = wait_for(lambda: ns1.text().count("peer ns2 is alive") >= 2 and ns2.text().count("peer ns1 is alive") >= 2
                 and ns3.text().count("peer ns1 is alive") >= 2, 15, "healed")
    print(f"heal -> membership converged: {t - healed:.1f} s")
    wait_for(lambda: share_total(g.instances) == 20 and all(shares(i)[-1] < 10 for i in g.instances), 10, "shares split again")
    list(assert_all_agree(g))


def envelope(sender, body, key, seq, kind=1, when=None):
    when = int((time.time() if when is None else when) * 1000)
    s = sender.encode()
    head = b"MG\x01" + bytes([kind]) + bytes([len(s)]) + s + struct.pack(">QQ", when, seq) + body
    return head + hmac.new(key, head, hashlib.sha256).digest()


def dead_update(name, incarnation, by):
    n, b = name.encode(), by.encode()
    return b"\x03" + bytes([len(n)]) + n + struct.pack(">Q", incarnation) + bytes([len(b)]) + b + b"\x00"


def test_hostile_datagrams_are_dropped_counted_and_change_nothing(group3):
    g = group3.start()
    ns1 = g.instances[0]
    host, port = ns1.gossip.rsplit(":", 1)
    key = base64.b64decode(KEY)
    before = dict(assert_all_agree(g))
    gossip_dead_ns2 = b"\x04" + struct.pack(">H", 1) + dead_update("ns2", 2**62, "ns3")
    seq = int(time.time() * 1_000_000) + 10**12
    valid = envelope("ns9", b"\x04\x00\x00", key, seq)  # a key holder's empty gossip message
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(envelope("ns3", gossip_dead_ns2, b"x" * 32, seq), (host, int(port)))      # forged
        s.sendto(valid, (host, int(port)))
        s.sendto(valid, (host, int(port)))                                                 # replayed
        s.sendto(envelope("ns3", gossip_dead_ns2, key, seq + 1, when=time.time() - 3600), (host, int(port)))  # stale
        s.sendto(envelope("ns9", b"\x04\xff\xff", key, seq + 2), (host, int(port)))        # malformed body
        s.sendto(b"\x00" * 3000, (host, int(port)))                                        # oversized
        s.sendto(os.urandom(200), (host, int(port)))                                       # garbage
        s.sendto(b"MG", (host, int(port)))                                                 # short
    text = lambda: ns1.text()
    for reason in ("forged", "replayed", "stale", "malformed", "oversized", "short"):
        wait_for(lambda: f": {reason}" in text(), 3, f"drop logged: {reason}")
    # Several probe rounds later (the peers' pings keep arriving), nobody was suspected.
    m0 = metric_in(ns1)
    wait_for(lambda: metric_in(ns1) > m0 + 30, 10, "30 more gossip messages received")
    assert "peer ns2 is dead" not in text() and "peer ns2 is suspected" not in text()
    assert dict(assert_all_agree(g)) == before
    ns1.stop()
    stats = re.findall(r"dropped (.*)", ns1.text())[-1]
    for reason in ("forged 1", "replayed 1", "stale 1", "malformed 1", "oversized 1", "short 1"):
        assert reason in stats, stats


def test_different_pool_file_is_reported_not_merged(binary, tmp_path):
    g = Group(tmp_path, 3)
    # ns3 checks 127.0.2.1 on another port (nothing listens there): a different definition.
    other = POOLS.format(port=g.port).replace(
        "members: [127.0.2.1, 127.0.2.2]}", "members: [127.0.2.1, 127.0.2.2]}\n      c: {members: [127.0.2.9]}")
    (tmp_path / "zones-ns3" / "pools.yaml").write_text(other)
    try:
        g.start()
        ns1 = g.instances[0]
        wait_for(lambda: "peer ns3 has a different pool configuration" in ns1.text(), 5, "mismatch logged")
        # The metric the MeridianPeerConfigurationDifferent alert reads, and the gossip
        # counters made at zero from the start.
        from test_admin import Api, metric
        api = Api(ns1.admin, host=ns1.ip, token="")
        wait_for(lambda: metric(api.metrics(), "meridian_gossip_peers_different_configuration") == 1, 5, "different configuration gauge")
        m = api.metrics()
        assert metric(m, "meridian_gossip_peers", state="alive") == 2
        assert 'meridian_gossip_dropped_total{reason="forged"} 0' in api.metrics_text()
        ns2 = Api(g.instances[1].admin, host=g.instances[1].ip, token="")
        wait_for(lambda: metric(ns2.metrics(), "meridian_gossip_peers_different_configuration") == 1, 5, "ns2 sees ns3 differ")
        out = subprocess.run([BIN, "explain", "www.peers.test", "--client", "10.0.0.1", "--zones", ns1.zones,
                              "--peer", ns1.gossip, "--gossip-key-file", g.key_file], capture_output=True, text=True, timeout=30).stdout
        assert "ns3" in out and "DIFFERENT pool configuration" in out, out
        assert "health view (verdict policy: majority)" in out, out
        # Members defined the same (the whole app pool) are still merged: ns3's results count.
        app = subprocess.run([BIN, "explain", "app.peers.test", "--client", "10.0.0.1", "--zones", ns1.zones,
                              "--peer", ns1.gossip, "--gossip-key-file", g.key_file], capture_output=True, text=True, timeout=30).stdout
        assert re.search(r"ns3 sees: tcp:\d+ up", app), app
        list(assert_all_agree(g, names=("app.peers.test",)))
    finally:
        g.stop()


def test_regions_and_an_observer(binary, tmp_path):
    """Issue 20: ns1 in region eu, ns2 and the observer ns3 in region us; one prober per region,
    verdict by regional majority. The observer serves no DNS but probes and gossips: its results
    decide for region us when it is the prober there. A backend that dies is down on both
    servers, by 2 of 2 regions."""
    from test_admin import Api
    g = Group(tmp_path, 3, placement={"ns1": "region: eu", "ns2": "region: us", "ns3": "region: us, role: observer"},
              policy="verdict: {{regions: {{policy: majority, within: majority}}}}\nprobers_per_region: 1\n")
    try:
        g.start()
        ns1, ns2, ns3 = g.instances
        assert "is an observer" in ns3.text() and "serves no DNS" in ns3.text()
        with pytest.raises(Exception):
            dns.query.udp(dns.message.make_query("peers.test.", "SOA"), ns3.ip, port=ns3.port, timeout=0.5)
        status = Api(ns1.admin, host=ns1.ip, token="").json("GET", "/status")[1]
        members = [m for p in status["pools"] if p["name"] == "www" for s in p["sites"] for m in s["members"]]
        assert status["verdictPolicy"] == "regions majority within majority", status["verdictPolicy"]
        for m in members:
            probers = m["probers"]
            assert len(probers) == 2 and "ns1" in probers and ({"ns2", "ns3"} & set(probers)), (m["id"], probers)
        # The observer probes its region's share.
        assert any("ns3" in m["probers"] for m in members), [m["probers"] for m in members]
        g.backends["127.0.2.1"].kill()
        for inst in (ns1, ns2):
            api = Api(inst.admin, host=inst.ip, token="")
            def down():
                s = api.json("GET", "/status")[1]
                m = next(m for p in s["pools"] if p["name"] == "www" for site in p["sites"] for m in site["members"] if m["id"] == "www/a/127.0.2.1")
                return m["state"] == "down" and "2 of 2 regions say down" in m["decidedBy"]
            wait_for(down, 10, f"{inst.name} sees www/a/127.0.2.1 down by 2 of 2 regions")
        assert ns1.answer("www.peers.test") == ns2.answer("www.peers.test") == ["127.0.2.2"]
    finally:
        g.stop()


def test_admin_override_on_one_instance_reaches_all(binary, tmp_path):
    g = Group(tmp_path, 3)
    state = tmp_path / "state.txt"
    state.write_text("")
    g.instances[0].extra = ["--state", str(state)]
    try:
        g.start()
        state.write_text("www/a/* DOWN\n")
        t0 = time.time()
        t = wait_for(lambda: all(i.answer("www.peers.test")[0].startswith("127.0.2.3") or i.answer("www.peers.test")[0].startswith("127.0.2.4")
                                 for i in g.instances), 5, "override reaches every instance")
        print(f"override -> all instances: {(t - t0) * 1000:.0f} ms")
        state.write_text("# removed\n")
        wait_for(lambda: all(i.answer("www.peers.test")[0] in ("127.0.2.1", "127.0.2.2") for i in g.instances), 5, "removal reaches every instance")
    finally:
        g.stop()


def test_cold_start_pulls_state_before_answering(binary, tmp_path):
    g = Group(tmp_path, 3)
    try:
        for i in g.instances[:2]:
            i.start()
        g.backends["127.0.2.5"].kill()
        g.backends["127.0.2.6"].kill()
        ns1 = g.instances[0]
        wait_for(lambda: not any(ip in ns1.answer("app.peers.test", s) for s in SUBNETS[:200] for ip in ("127.0.2.5", "127.0.2.6")), 5, "ns1 drops .5 and .6")
        ns3 = g.instances[2].start()
        assert "peers answered" in ns3.text()
        # Its very first answers already agree with the group.
        for s in SUBNETS[:200]:
            a = ns3.answer("app.peers.test", s)
            assert "127.0.2.5" not in a and "127.0.2.6" not in a, (s, a)
    finally:
        g.stop()


def test_gossip_refuses_to_start_without_a_key(binary, tmp_path):
    g = Group(tmp_path, 3)
    try:
        inst = g.instances[0]
        p = subprocess.run([BIN, "serve", "--zones", inst.zones, "--listen", f"{inst.ip}:{inst.port}", "--node-name", "ns1", "--no-admin"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0
        assert "--gossip-key-file" in p.stderr, p.stderr
        p = subprocess.run([BIN, "serve", "--zones", inst.zones, "--listen", f"{inst.ip}:{inst.port}", "--node-name", "ns7", "--no-admin",
                            "--gossip-key-file", g.key_file], capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and "not among the peers" in p.stderr, p.stderr
        (tmp_path / "bad.key").write_text("not base64!\n")
        p = subprocess.run([BIN, "serve", "--zones", inst.zones, "--listen", f"{inst.ip}:{inst.port}", "--node-name", "ns1", "--no-admin",
                            "--gossip-key-file", str(tmp_path / "bad.key")], capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and "bad.key:1: not base64" in p.stderr, p.stderr
    finally:
        g.stop()


def test_five_instances_agree_within_a_second(binary, tmp_path):
    g = Group(tmp_path, 5)
    try:
        g.start()
        list(assert_all_agree(g, names=("www.peers.test",)))
        g.backends["127.0.2.1"].kill()
        died = time.time()
        t = wait_for(lambda: all("127.0.2.1" not in i.answer("www.peers.test") for i in g.running()), 5, "all 5 drop 127.0.2.1")
        print(f"backend death -> all 5 instances agree: {(t - died) * 1000:.0f} ms")
        # Check interval (200 ms) + gossip: well inside a second of the deciding observation.
        assert t - died < 1.5
        list(assert_all_agree(g))
    finally:
        g.stop()


def test_peer_list_change_is_picked_up_on_reload(group3):
    g = group3.start()
    ns1, ns2, ns3 = g.instances
    ns3.stop(signal.SIGKILL)
    wait_for(lambda: "peer ns3 is dead" in ns1.text(), 20, "ns3 dead")

    def peers_listed():
        out = subprocess.run([BIN, "explain", "www.peers.test", "--client", "10.0.0.1", "--zones", ns1.zones, "--peer", ns1.gossip,
                              "--gossip-key-file", g.key_file], capture_output=True, text=True, timeout=30).stdout
        return out.split("query:", 1)[0]

    assert "ns3" in peers_listed()
    cluster = os.path.join(ns1.zones, "cluster.yaml")
    text = open(cluster).read()
    open(cluster, "w").write("\n".join(l for l in text.splitlines() if not l.strip().startswith("ns3:")) + "\n")
    ns1.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "ns3" not in peers_listed(), 5, "ns3 forgotten after the reload")
    # A bad cluster file on reload is rejected with file:line, and the group goes on.
    open(cluster, "w").write(text.replace("verdict: majority", "verdict: most"))
    ns1.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: re.search(r"cluster\.yaml:\d+: verdict must be", ns1.text()), 5, "reload error logged")
    assert ns1.answer("www.peers.test")
    with urllib.request.urlopen(f"http://{ns1.ip}:{ns1.admin}/status", timeout=5) as r:
        assert [p["name"] for p in json.load(r)["peers"]] == ["ns2"]  # the group goes on as it was
    # explain reads the directory as serve and check do: it rejects the bad file too, with file:line.
    out = subprocess.run([BIN, "explain", "www.peers.test", "--client", "10.0.0.1", "--zones", ns1.zones], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and re.search(r"cluster\.yaml:\d+: verdict must be", out.stdout), out.stdout


def test_mass_failure_spreads_in_bulk(binary, tmp_path):
    """60 members behind one listener: when it closes, each instance has about 40 new results at
    once, which go to the peers over TCP in one push rather than through the gossip queue."""
    port = free_port()
    members = [f"127.0.4.{i}" for i in range(1, 61)]
    pools = ("pools:\n  big:\n    names: [big.peers.test.]\n    mode: direct\n    max_answers: 2\n    when_all_down: nodata\n"
             f"    members: [{', '.join(members)}]\n    checks:\n"
             f"      - {{{{type: tcp, port: {port}, interval: 200ms, timeout: 150ms, rise: 1, fall: 1}}}}\n")
    listener = Backend("0.0.0.0", port)
    g = Group(tmp_path, 3, pools=pools, backends=[])
    try:
        g.start()
        wait_for(lambda: all(len(i.answer("big.peers.test")) == 2 for i in g.instances), 5, "answers from the big pool")
        listener.kill()
        died = time.time()
        t = wait_for(lambda: all(i.answer("big.peers.test") == [] for i in g.instances), 5, "every instance: all 60 down (NODATA)")
        print(f"60 members down -> all 3 instances agree: {(t - died) * 1000:.0f} ms")
        time.sleep(0.5)
        for i in g.instances:
            assert "dropped" not in i.text()
    finally:
        g.stop()
        if listener.running:
            listener.kill()


def hold_exchange_connections(host, port, sources, per_source, declared=16 * 1024 * 1024):
    """Opens `per_source` TCP connections to a gossip listener from each source address, each
    sending a frame length of `declared` octets and a few octets of it, then holding: an
    unauthenticated attacker. Returns the sockets."""
    held = []
    for src in sources:
        for _ in range(per_source):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((src, 0))
            s.settimeout(2)
            try:
                s.connect((host, port))
                s.sendall(struct.pack(">I", declared) + b"\x00" * 64)
            except OSError:
                s.close()
                continue
            held.append(s)
    return held


def test_exchange_listener_floods_from_non_peers_do_not_lock_peers_out(binary, tmp_path):
    """Issue 18, finding 4: 64 connections from anywhere took every slot of the exchange
    listener for 5 s each, and each could declare a 16 MB frame."""
    g = Group(tmp_path, 3)
    try:
        for i in g.instances[:2]:
            i.start()
        wait_for(lambda: all(i.text().count("is alive") >= 1 for i in g.instances[:2]), 10, "ns1 and ns2 formed")
        sources = [f"127.0.0.{i}" for i in range(1, 33)]
        held = []
        for inst in g.instances[:2]:
            host, port = inst.gossip.rsplit(":", 1)
            held += hold_exchange_connections(host, int(port), sources, 2)
        try:
            # A non-peer's share is small and its frames are short: most are closed at once
            # (a share used up, or a 16 MB length refused before its body).
            closed = count_closed(held, 1.0)
            assert closed >= len(held) - 2 * 8, (closed, len(held))
            # The third instance's join exchange still reaches both peers.
            ns3 = g.instances[2].start()
            assert re.search(r"gossip: joined as ns3 .*: 2 peers answered", ns3.text()), ns3.text()[-2000:]
        finally:
            for s in held:
                s.close()
        ns1 = g.instances[0]
        wait_for(lambda: "exchange connections of its source used up" in ns1.text() or "bad exchange frame" in ns1.text(), 5, "refusals logged")
    finally:
        g.stop()


LATENCY_POOLS = """pools:
  www:
    names: [www.peers.test.]
    mode: multi-site
    address_order: fixed
    sites:
      a: {{members: [127.0.2.1]}}
      b: {{members: [127.0.2.3]}}
    order:
      default: [a, b]
      latency: {{tolerance_ms: 5, min_samples: 3, fallback: default}}
    checks:
      - {{type: tcp, port: {port}, interval: 200ms, timeout: 150ms, rise: 1, fall: 1}}
"""


def ecs_answer(inst, name, subnet):
    q = dns.message.make_query(name, "A", use_edns=0, options=[dns.edns.ECSOption(subnet, 24)])
    r = dns.query.udp(q, inst.ip, port=inst.port, timeout=2)
    scope = next((o.scopelen for o in r.options if isinstance(o, dns.edns.ECSOption)), None)
    return [rd.to_text() for rrset in r.answer for rd in rrset], scope


def test_latency_order_from_measurements_agrees_on_every_instance(binary, tmp_path):
    """Issue 20: real-user measurements posted to one instance (which has no site of its own)
    reach the group; every instance then answers a client network with its lowest-latency
    site, with the network as the ECS scope, and moves when the measurements change. A
    network nobody measured gets the fallback (default) order. DNS-over-TCP connections to an
    instance with a site are measured passively (TCP_INFO)."""
    from test_admin import Api, metric
    g = Group(tmp_path, 3, pools=LATENCY_POOLS, placement={"ns1": "site: a", "ns2": "site: b"})
    try:
        g.start()
        ns1, ns2, ns3 = g.instances
        api3 = Api(ns3.admin, host=ns3.ip, token="")
        for inst in g.instances:
            assert ecs_answer(inst, "www.peers.test", "198.51.100.0") == (["127.0.2.1"], 24)
        post = lambda items: api3.json("POST", "/measurements", {"measurements": items})
        st, body = post([{"client": "198.51.100.0/24", "site": "a", "rtt_ms": 80}] * 5 + [{"client": "198.51.100.9", "site": "b", "rtt_ms": 15}] * 5)
        assert st == 202 and body == {"accepted": 10}, (st, body)
        wait_for(lambda: all(ecs_answer(i, "www.peers.test", "198.51.100.0") == (["127.0.2.3"], 24) for i in g.instances), 15,
                 "every instance answers 198.51.100.0/24 from b (15 ms against 80)")
        # Unmeasured: the default order, still scoped to the /24 the decision depends on.
        assert all(ecs_answer(i, "www.peers.test", "203.0.113.0") == (["127.0.2.1"], 24) for i in g.instances)
        # The status and explain show the table entries.
        st, status = Api(ns1.admin, host=ns1.ip, token="").json("GET", "/status")
        entries = {(e["network"], e["site"]): e for e in status["latency"]["entries"]}
        assert entries[("198.51.100.0/24", "b")]["rttMs"] == 15 and entries[("198.51.100.0/24", "a")]["samples"] == 5, entries
        st, ex = Api(ns2.admin, host=ns2.ip, token="").json("GET", "/explain?name=www.peers.test&client=198.51.100.7")
        assert st == 200 and any("latency from 198.51.100.0/24" in line and "b 15.0 ms" in line for line in ex["trace"]), ex
        # a gets faster: a's mean falls to about 6 ms, more than 5 ms better than b.
        st, _ = post([{"client": "198.51.100.0", "site": "a", "rtt_ms": 1}] * 60)
        assert st == 202
        wait_for(lambda: all(ecs_answer(i, "www.peers.test", "198.51.100.0") == (["127.0.2.1"], 24) for i in g.instances), 15,
                 "every instance moves 198.51.100.0/24 to a")
        # Refused: an unknown site, a network wider than /24, not JSON.
        assert post([{"client": "198.51.100.0", "site": "zz", "rtt_ms": 1}])[0] == 422
        assert post([{"client": "198.51.0.0/16", "site": "a", "rtt_ms": 1}])[0] == 422
        assert api3.call("POST", "/measurements", b"nope")[0] == 400
        # Passive: a DNS-over-TCP query to ns1 (site a) is a sample from 127.0.0.0/24 to a.
        dns.query.tcp(dns.message.make_query("www.peers.test", "A"), ns1.ip, port=ns1.port, timeout=2)
        api1 = Api(ns1.admin, host=ns1.ip, token="")
        wait_for(lambda: (metric(api1.metrics(), "meridian_latency_samples_total", source="tcp")) >= 1, 5, "ns1 counts a TCP_INFO sample")
        assert metric(api3.metrics(), "meridian_latency_samples_total", source="api") == 70
        assert metric(api3.metrics(), "meridian_latency_samples_total", source="tcp") == 0
    finally:
        g.stop()


class SlowResolver:
    """A resolver's port 53 (UDP) that answers every query after `delay` seconds and notes who
    asked: what a latency probe meets."""

    def __init__(self, ip, delay):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, 53))
        self.sock.settimeout(0.2)
        self.delay, self.asked, self.stop = delay, [], threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            self.asked.append(peer[0])
            time.sleep(self.delay)
            try:
                self.sock.sendto(dns.message.make_response(dns.message.from_wire(data)).to_wire(), peer)
            except Exception:
                pass

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def test_latency_probes_aim_only_at_resolvers_that_queried(binary, tmp_path):
    """Issue 20: an instance with a site probes the resolvers that query it: a DNS query to
    port 53 (here answered after 40 ms, so the row says about 40 ms), else a TCP connect to
    port 53 (refused: a reset is a round trip too). An address that never queried is never
    probed, and an instance started with --latency-probes off sends none."""
    from test_admin import Api, metric
    slow = SlowResolver("127.0.9.77", 0.04)
    never = SlowResolver("127.0.9.78", 0)
    g = Group(tmp_path, 2, pools=LATENCY_POOLS, placement={"ns1": "site: a", "ns2": "site: b"})
    g.instances[1].extra = g.instances[1].extra + ["--latency-probes", "off"]
    try:
        g.start()
        ns1, ns2 = g.instances
        q = dns.message.make_query("www.peers.test", "A")
        # 64 queries from each resolver (one in 32 is sighted), to both instances.
        for source in ("127.0.9.77", "127.0.10.5"):
            for inst in (ns1, ns2):
                for _ in range(64):
                    dns.query.udp(q, inst.ip, port=inst.port, timeout=2, source=source)
        api1, api2 = Api(ns1.admin, host=ns1.ip, token=""), Api(ns2.admin, host=ns2.ip, token="")
        wait_for(lambda: metric(api1.metrics(), "meridian_latency_probes_total", result="dns") >= 1
                 and metric(api1.metrics(), "meridian_latency_probes_total", result="tcp") >= 1, 15,
                 "ns1 probes 127.0.9.77 by DNS and 127.0.10.5 by TCP")

        def rows():
            st, status = api1.json("GET", "/status")
            return {(e["network"], e["site"]): e for e in status["latency"]["entries"]}
        wait_for(lambda: ("127.0.9.0/24", "a") in rows() and ("127.0.10.0/24", "a") in rows(), 15,
                 "the probe rows reach the group's table")
        r = rows()
        assert 35 <= r[("127.0.9.0/24", "a")]["rttMs"] < 200, r
        assert r[("127.0.10.0/24", "a")]["rttMs"] < 20, r
        assert ("127.0.9.0/24", "b") not in r and ("127.0.10.0/24", "b") not in r, "ns2 (site b) probes nothing"
        assert 1 <= len(slow.asked) <= 2 and ns2.ip not in slow.asked, slow.asked
        assert never.asked == [], "an address that never queried is never probed"
        assert metric(api2.metrics(), "meridian_latency_probes_total", result="dns") == 0
        assert metric(api2.metrics(), "meridian_latency_probes_total", result="tcp") == 0
        assert metric(api1.metrics(), "meridian_latency_samples_total", source="probe") >= 2
    finally:
        g.stop()
        slow.close()
        never.close()
