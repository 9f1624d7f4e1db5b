"""Pools through the real binary: site choice by ECS with dig, the reply's scope, failover from
the admin state file without a restart, explain and check (issue: GSLB pools)."""
import json
import os
import urllib.request
import re
import shutil
import subprocess
import time

import dns.edns
import dns.rcode
import pytest

from conftest import ROOT, Server
from helpers import ask, dig


@pytest.fixture()
def gslb(binary, tmp_path):
    """The example Zones/ (pools.yaml refers to ../GeoData) served with a state file."""
    shutil.copytree(os.path.join(ROOT, "Zones"), tmp_path / "Zones")
    shutil.copytree(os.path.join(ROOT, "GeoData"), tmp_path / "GeoData")
    (tmp_path / "Zones" / "cluster.yaml").unlink()  # one instance alone (test_peers.py runs groups)
    state = tmp_path / "state.txt"
    state.write_text("# no overrides\n")
    s = Server(str(tmp_path / "Zones"), ["--state", str(state)], ready_name="gslb.example.com.")
    s.state = state
    yield s
    s.stop()


def dig_answer(srv, name, *args):
    out = dig(srv, name, *args)
    answers = sorted(l.split()[-1] for l in out.splitlines() if l and not l.startswith(";") and "\tIN\t" in l and ("\tA\t" in l or "\tAAAA\t" in l or "\tCNAME\t" in l))
    m = re.search(r"CLIENT-SUBNET: (\S+)/(\d+)/(\d+)", out)
    return answers, (int(m.group(3)) if m else None), out


@pytest.mark.parametrize("subnet,expected,scope", [
    ("10.1.0.0/24", ["192.0.2.11", "192.0.2.12"], 16),     # EU -> fra
    ("10.2.0.0/24", ["198.51.100.21", "198.51.100.22"], 16),  # NA -> iad
    ("10.3.0.0/24", ["203.0.113.31", "203.0.113.32"], 16),  # AS -> nrt
    ("2001:db8:3::/48", ["203.0.113.31", "203.0.113.32"], 48),
    ("172.16.5.0/24", ["192.0.2.11", "192.0.2.12"], 16),  # topology region internal-fra
])
def test_dig_subnet_picks_site_and_scope(gslb, subnet, expected, scope):
    answers, got_scope, out = dig_answer(gslb, "www.gslb.example.com", f"+subnet={subnet}")
    assert answers == expected, out
    assert got_scope == scope, out


def test_scope_zero_for_client_independent_answers(gslb):
    # Static data does not depend on the client.
    _, scope, out = dig_answer(gslb, "ns1.gslb.example.com", "+subnet=10.1.0.0/24")
    assert scope == 0, out


def test_consistent_hash_same_subnet_same_nodes(gslb):
    a, scope, _ = dig_answer(gslb, "app.gslb.example.com", "+subnet=10.1.7.0/24")
    b, _, _ = dig_answer(gslb, "app.gslb.example.com", "+subnet=10.1.7.0/24")
    assert a == b and len(a) == 2 and scope == 24


def test_state_file_fails_over_within_a_second(gslb):
    before, _, _ = dig_answer(gslb, "www.gslb.example.com", "+subnet=10.1.0.0/24")
    assert before == ["192.0.2.11", "192.0.2.12"]
    pid = gslb.proc.pid
    gslb.state.write_text("www/fra/* DOWN\n")
    start = time.time()
    moved = None
    while time.time() - start < 3:
        r = ask(gslb, "www.gslb.example.com.", use_edns=0, options=[dns.edns.ECSOption("10.1.0.0", 24)])
        moved = sorted(rd.to_text() for rrset in r.answer for rd in rrset)
        if moved == ["198.51.100.21", "198.51.100.22"]:
            break
        time.sleep(0.05)
    elapsed = time.time() - start
    assert moved == ["198.51.100.21", "198.51.100.22"]
    assert elapsed < 1.0, f"failover took {elapsed:.2f} s"
    assert gslb.proc.pid == pid and gslb.alive()
    # Degraded TTL while a member is down.
    assert r.answer[0].ttl == 5
    # And back.
    gslb.state.write_text("")
    deadline = time.time() + 3
    while time.time() < deadline:
        r = ask(gslb, "www.gslb.example.com.", use_edns=0, options=[dns.edns.ECSOption("10.1.0.0", 24)])
        if sorted(rd.to_text() for rrset in r.answer for rd in rrset) == ["192.0.2.11", "192.0.2.12"]:
            break
        time.sleep(0.05)
    assert r.answer[0].ttl == 30


def test_bad_state_file_keeps_current_state(gslb):
    gslb.state.write_text("www/fra/* DOWN\n")
    gslb.wait_log(": 1 overrides")  # the good file was read and handed to the group
    gslb.state.write_text("www/iad/* SIDEWAYS\n")
    gslb.wait_log("state file rejected")
    answers, _, _ = dig_answer(gslb, "www.gslb.example.com", "+subnet=10.1.0.0/24")
    assert answers == ["198.51.100.21", "198.51.100.22"]
    assert gslb.alive()


def test_cname_pool_and_static_types(gslb):
    answers, _, out = dig_answer(gslb, "cdn.gslb.example.com")
    assert answers == ["edge-a.cdn.example.net."], out
    txt = dig(gslb, "www.gslb.example.com", "TXT", "+short")
    assert "static" in txt


def test_explain(binary, tmp_path):
    out = subprocess.run([binary, "explain", "www.gslb.example.com", "A", "--client", "192.0.2.1", "--ecs", "10.3.0.0/24",
                          "--zones", os.path.join(ROOT, "Zones")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "GeoIP: continent AS" in text and "order rule continent:AS" in text
    assert "site order: nrt, iad" in text
    assert "www/nrt/203.0.113.31: up" in text
    assert "A 203.0.113.31" in text and "ECS scope: /16" in text
    state = tmp_path / "s.txt"
    state.write_text("www/nrt/* DOWN\n")
    down = subprocess.run([binary, "explain", "www.gslb.example.com", "--client", "10.3.0.1", "--zones", os.path.join(ROOT, "Zones"),
                           "--state", str(state)], capture_output=True, text=True, timeout=30).stdout
    assert "site nrt: NOT usable" in down and "A 198.51.100.21" in down


def test_check_reports_pool_errors(binary, tmp_path):
    zones = tmp_path / "Zones"
    shutil.copytree(os.path.join(ROOT, "Zones"), zones)
    shutil.copytree(os.path.join(ROOT, "GeoData"), tmp_path / "GeoData")
    text = (zones / "pools.yaml").read_text().replace("members: [192.0.2.11, 192.0.2.12", "members: [192.0.2.311, 192.0.2.12", 1)
    (zones / "pools.yaml").write_text(text)
    (zones / "extra.yaml").write_text("pools:\n  stray:\n    names: [www.other.example.]\n    members: [192.0.2.1]\n")
    out = subprocess.run([binary, "check", str(zones)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert any(re.search(r"pools\.yaml:\d+: bad member '192\.0\.2\.311'", l) for l in lines), out.stdout
    assert any("extra.yaml:3: www.other.example. is not in any served zone" in l for l in lines), out.stdout


def first_address_counts(srv, name, n, subnet=None):
    import dns.message
    import dns.query
    counts = {}
    for i in range(n):
        opts = [dns.edns.ECSOption(subnet, 24)] if subnet else None
        q = dns.message.make_query(name, "A", use_edns=0 if subnet else None, options=opts)
        r = dns.query.udp(q, "127.0.0.1", port=srv.port, timeout=2)
        first = [rd.to_text() for rrset in r.answer for rd in rrset][0]
        counts[first] = counts.get(first, 0) + 1
    return counts


def chi_squared(counts, shares, n):
    return sum((counts.get(k, 0) - p * n) ** 2 / (p * n) for k, p in shares.items())


def test_first_address_follows_weights_over_many_answers(gslb):
    """The issue's client-side finding: 192.0.2.41 came first in 4,000 of 4,000 answers. Now the
    first address is spread: api is 3:1 between two pairs, each pair split evenly."""
    n = 4000
    counts = first_address_counts(gslb, "api.gslb.example.com", n)
    shares = {"192.0.2.41": 0.375, "192.0.2.42": 0.375, "198.51.100.41": 0.125, "198.51.100.42": 0.125}
    assert set(counts) == set(shares), counts
    # 3 degrees of freedom: 16.27 is the 0.1% critical value.
    assert chi_squared(counts, shares, n) < 16.27, counts


def test_first_address_follows_agent_style_weight_factor(gslb):
    """A member at 25% (the admin file here; an agent's percentage folds the same way) gets a
    quarter of its site-mate's first addresses."""
    gslb.state.write_text("www/fra/192.0.2.12 UP 25%\n")
    deadline = time.time() + 5
    while time.time() < deadline:
        out = subprocess.run([gslb.proc.args[0], "explain", "www.gslb.example.com", "--client", "10.1.0.1", "--zones", gslb.zones,
                              "--state", str(gslb.state)], capture_output=True, text=True, timeout=30).stdout
        if "192.0.2.12 20.0%" in out:
            break
        time.sleep(0.2)
    assert "first-address shares by effective weight: 192.0.2.11 80.0%, 192.0.2.12 20.0%" in out, out
    # The server applied the file: wait on what it says, not on a clock.
    def applied():
        with urllib.request.urlopen(f"http://127.0.0.1:{gslb.admin}/status", timeout=5) as r:
            s = json.load(r)
        return any(m["id"] == "www/fra/192.0.2.12" and m["weightFactor"] == 0.25
                   for p in s["pools"] for site in p["sites"] for m in site["members"])
    deadline = time.time() + 5
    while not applied() and time.time() < deadline:
        time.sleep(0.05)
    assert applied()
    n = 2000
    counts = first_address_counts(gslb, "www.gslb.example.com", n, subnet="10.1.0.0")
    assert chi_squared(counts, {"192.0.2.11": 0.8, "192.0.2.12": 0.2}, n) < 10.83, counts


def test_state_file_replaced_by_a_fifo_is_reported_and_nothing_stalls(gslb):
    """Hardening, finding 5: a FIFO (or a huge file) in place of the state file used to stall
    health checking. Now it is reported, the last good overrides stay, and answers go on."""
    gslb.state.write_text("www/iad/* DOWN\n")
    deadline = time.time() + 5
    while time.time() < deadline and "198.51.100.21" in dig_answer(gslb, "www.gslb.example.com", "+subnet=10.2.0.0/24")[0]:
        time.sleep(0.1)
    os.unlink(gslb.state)
    os.mkfifo(gslb.state)
    gslb.wait_log("not a regular file")
    answers, _, _ = dig_answer(gslb, "www.gslb.example.com", "+subnet=10.2.0.0/24")
    assert answers == ["192.0.2.11", "192.0.2.12"]  # the override still holds
    log = open(gslb.log.name).read()
    assert "not a regular file" in log
    os.unlink(gslb.state)
    gslb.state.write_text("x" * (2 << 20))
    gslb.wait_log("more than 1048576")
    assert dig_answer(gslb, "www.gslb.example.com", "+subnet=10.2.0.0/24")[0] == ["192.0.2.11", "192.0.2.12"]


def test_mmdb_replaced_in_place_does_not_crash_and_is_reloaded(binary, tmp_path):
    """Hardening, finding 6: `cp` over the memory-mapped .mmdb could kill the answer path with
    SIGBUS. The server answers from a private copy, and reloads when the file changes."""
    import threading
    shutil.copytree(os.path.join(ROOT, "Zones"), tmp_path / "Zones")
    shutil.copytree(os.path.join(ROOT, "GeoData"), tmp_path / "GeoData")
    (tmp_path / "Zones" / "cluster.yaml").unlink()
    mmdb = tmp_path / "GeoData" / "test.mmdb"
    original = mmdb.read_bytes()
    s = Server(str(tmp_path / "Zones"), [], ready_name="gslb.example.com.")
    stop = threading.Event()
    errors = []

    def hammer():
        import dns.message
        import dns.query
        while not stop.is_set():
            try:
                q = dns.message.make_query("www.gslb.example.com", "A", use_edns=0, options=[dns.edns.ECSOption("10.2.0.0", 24)])
                dns.query.udp(q, "127.0.0.1", port=s.port, timeout=2)
            except Exception as e:  # noqa: BLE001
                errors.append(e)

    t = threading.Thread(target=hammer)
    t.start()
    try:
        for i in range(30):
            # What `cp` does: truncate, then write, in place.
            with open(mmdb, "r+b") as f:
                f.truncate(0)
                f.flush()
                time.sleep(0.01)
                f.write(original[: len(original) // (1 + i % 3)])
            time.sleep(0.02)
        mmdb.write_bytes(original)
        # Reloaded from the whole file again: wait (bounded) for its answer while the load runs.
        deadline = time.time() + 10
        while dig_answer(s, "www.gslb.example.com", "+subnet=10.2.0.0/24")[0] != ["198.51.100.21", "198.51.100.22"] and time.time() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        t.join(timeout=10)
    try:
        assert s.alive(), f"server died: exit {s.proc.returncode}"
        answers, scope, out = dig_answer(s, "www.gslb.example.com", "+subnet=10.2.0.0/24")
        assert answers == ["198.51.100.21", "198.51.100.22"], out
        log = open(s.log.name).read()
        assert "GeoIP database" in log and "changed" in log, log[-2000:]
    finally:
        s.stop()
