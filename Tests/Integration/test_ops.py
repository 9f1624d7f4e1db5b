"""Start-up, `meridian check`, reload on SIGHUP (issue: DNS core, "Zones")."""
import os
import shutil
import signal
import subprocess
import time

import dns.rcode
import pytest

from conftest import BIN, FIXTURE_ZONES, ROOT, free_port
from helpers import ask


def test_check_accepts_good_zones(binary):
    r = subprocess.run([binary, "check", FIXTURE_ZONES], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout
    assert "2 zones" in r.stdout


def test_check_reports_file_and_line(binary):
    bad = os.path.join(ROOT, "Tests", "Fixtures", "bad")
    r = subprocess.run([binary, "check", bad], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert any(l.endswith("cname-beside.zone:6: A beside a CNAME at www.cname-beside. (a CNAME must be alone at its name)") for l in lines)
    assert any("syntax.zone:4: " in l for l in lines)
    assert any("below-cut.zone:7: " in l and "not glue" in l for l in lines)
    assert any("out-of-zone.zone:5: " in l for l in lines)
    assert any("no-soa.zone:" in l and "no SOA" in l for l in lines)


def test_example_zones_check(binary):
    r = subprocess.run([binary, "check", os.path.join(ROOT, "Zones")], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout


def test_server_refuses_to_start_with_bad_zones(binary):
    port = free_port()
    r = subprocess.run([binary, "serve", "--zones", os.path.join(ROOT, "Tests", "Fixtures", "bad"), "--listen", f"127.0.0.1:{port}", "--no-admin"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "cname-beside.zone:6:" in r.stderr


def wait_for(pred, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_sighup_reload_and_bad_reload_keeps_old_data(fresh_server):
    srv = fresh_server()
    zone = os.path.join(srv.zones, "example.test.zone")
    original = open(zone).read()
    with open(zone, "a") as f:
        f.write("reloaded IN A 192.0.2.123\n")
    srv.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: ask(srv, "reloaded.example.test.").answer)
    # A broken file: the server logs it and keeps serving the last good data.
    with open(zone, "w") as f:
        f.write(original + "broken IN A 999.1.1.1\n")
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log("reload failed with")  # the bad reload ran: a wait on its outcome, not on a clock
    assert srv.alive()
    assert ask(srv, "reloaded.example.test.").answer
    assert ask(srv, "www.example.test.").answer
    # A new zone file appears with the next good reload.
    with open(zone, "w") as f:
        f.write(original)
    with open(os.path.join(srv.zones, "extra.test.zone"), "w") as f:
        f.write("$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n")
    srv.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: ask(srv, "ns.extra.test.").rcode() == dns.rcode.NOERROR and ask(srv, "ns.extra.test.").answer)
    assert ask(srv, "reloaded.example.test.").rcode() == dns.rcode.NXDOMAIN


HOSTILE_TTL = "4294967295w" * 20000


def test_hostile_ttl_is_a_check_error_not_a_crash(binary, tmp_path):
    """Hardening, finding 4: this zone made `meridian check` die with an arithmetic overflow
    (exit 132); finding 9: `\\# 0` for a CNAME was accepted."""
    (tmp_path / "t.test.zone").write_text(f"$TTL {HOSTILE_TTL}\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n"
                                          "x CNAME \\# 0\n")
    r = subprocess.run([binary, "check", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, (r.returncode, r.stdout[-500:])
    assert "t.test.zone:1: $TTL needs one TTL value" in r.stdout
    assert "t.test.zone:5: CNAME record: RDATA must be exactly one domain name" in r.stdout


def test_hostile_ttl_on_reload_keeps_serving(fresh_server):
    srv = fresh_server()
    zone = os.path.join(srv.zones, "example.test.zone")
    original = open(zone).read()
    with open(zone, "w") as f:
        f.write(original + f"evil {HOSTILE_TTL} IN A 192.0.2.9\n")
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log("reload failed with")
    assert srv.alive()
    assert ask(srv, "www.example.test.").answer
    assert ask(srv, "evil.example.test.").rcode() == dns.rcode.NXDOMAIN


@pytest.mark.parametrize("option,value,message", [
    ("--nsid", "x" * 2000, "--nsid must be 1 to 128 octets"),
    ("--tcp-idle-timeout", "9223372036854775807", "--tcp-idle-timeout must be from 1 to 3600"),
    ("--startup-timeout", "400", "--startup-timeout must be from 0 to 300"),
    ("--startup-timeout", "6m", "--startup-timeout must be from 0 to 300"),
    ("--startup-timeout", "1e300", "The value '1e300' is invalid for '--startup-timeout"),
    ("--startup-timeout", "nan", "The value 'nan' is invalid for '--startup-timeout"),
    ("--tcp-idle-timeout", "1.5", "--tcp-idle-timeout must be from 1 to 3600"),
    ("--threads", "0", "--threads must be from 1 to 256"),
    ("--max-udp-size", "100000", "--max-udp-size must be from 512 to 65535"),
    ("--tcp-max-connections", "0", "--tcp-max-connections must be"),
    ("--tcp-max-buffer", "10", "--tcp-max-buffer must be"),
    ("--identity", "y" * 300, "--identity must be at most 255 octets"),
    ("--log-level", "loud", "--log-level must be one of"),
    ("--node-name", "bad name", "--node-name must be"),
    ("--listen", "nowhere", "bad --listen address nowhere"),
])
def test_options_are_validated_at_start(binary, option, value, message):
    """Hardening, finding 7: out-of-range operator values are refused with a clear message."""
    port = free_port()
    r = subprocess.run([binary, "serve", "--zones", os.path.join(ROOT, "Tests", "Fixtures", "zones"), "--listen", f"127.0.0.1:{port}", "--no-admin",
                        option, value], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
