"""Hardening, round two (issue 18): what an attacker still got through, each finding first
reproduced here against the real binary. Every wait is bounded."""
import os
import signal
import socket
import struct
import subprocess
import time

import dns.message
import pytest

from helpers import ask, count_closed, http_get, recv_frame


def nested_pools(depth):
    """A small pool file nested `depth` deep in flow sequences."""
    return "pools:\n  x:\n    names: " + "[" * depth + "a.example.test." + "]" * depth + "\n"


def nested_block(depth):
    """The same in block style: a sequence of sequences, one level per line."""
    lines = ["pools:", "  x:", "    names:"]
    lines += [" " * (4 + i) + "-" for i in range(depth)]
    lines[-1] += " a.example.test."
    return "\n".join(lines) + "\n"


def alias_bomb(levels=9):
    """Each anchor is ten aliases of the one before: 10^levels nodes once expanded."""
    out = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels + 1):
        out.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    out.append(f"pools:\n  x:\n    names: *a{levels}")
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("make", [lambda: nested_pools(5000), lambda: nested_block(3000), alias_bomb],
                         ids=["flow", "block", "aliases"])
def test_hostile_yaml_is_a_check_error_not_a_crash(binary, tmp_path, make):
    """Finding 1: a pool file nested 5,000 deep overflowed the stack of Yams' recursive composer
    (`meridian check` exit 139); an alias bomb would expand without bound."""
    (tmp_path / "pools.yaml").write_text(make())
    r = subprocess.run([binary, "check", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, (r.returncode, r.stdout[-500:], r.stderr[-500:])
    assert "pools.yaml:" in r.stdout and ("nested" in r.stdout or "nodes" in r.stdout), r.stdout[-500:]


def test_hostile_cluster_file_is_a_check_error_not_a_crash(binary, tmp_path):
    (tmp_path / "cluster.yaml").write_text("peers: " + "{a: " * 5000 + "b" + "}" * 5000 + "\n")
    r = subprocess.run([binary, "check", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, (r.returncode, r.stdout[-500:], r.stderr[-500:])
    assert "cluster.yaml:1:" in r.stdout and "nested" in r.stdout, r.stdout[-500:]


def test_hostile_yaml_on_reload_keeps_serving(fresh_server):
    srv = fresh_server()
    with open(os.path.join(srv.zones, "pools.yaml"), "w") as f:
        f.write(nested_pools(5000))
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log("reload failed with")
    assert srv.alive()
    assert ask(srv, "www.example.test.").answer


def closed_within(s, seconds, keep_sending=None, every=0.5):
    """Seconds until the server closes `s` (sending `keep_sending` every `every` s meanwhile),
    or None if it is still open after `seconds`."""
    start = time.time()
    s.settimeout(every)
    while time.time() - start < seconds:
        try:
            if keep_sending:
                s.send(keep_sending)
            if s.recv(1) == b"":
                return time.time() - start
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.time() - start
    return None


@pytest.mark.parametrize("frame_bytes", [b"\x00\x00", b"\x00\x03abc"], ids=["empty", "malformed"])
def test_frames_that_are_not_queries_keep_no_slot(fresh_server, frame_bytes):
    """Finding 6: any frame re-armed the deadline, even an empty one, so a connection that sent
    one now and then held its slot through four idle timeouts."""
    srv = fresh_server("--tcp-idle-timeout", "2")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    took = closed_within(s, 10, keep_sending=frame_bytes)
    assert took is not None and took < 4, took
    s.close()


def test_a_client_that_asks_keeps_its_connection(fresh_server):
    """The other side of finding 6: real queries move the deadline."""
    srv = fresh_server("--tcp-idle-timeout", "2")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    wire = dns.message.make_query("www.example.test.", "A").to_wire()
    start = time.time()
    while time.time() - start < 5:
        s.sendall(struct.pack("!H", len(wire)) + wire)
        assert dns.message.from_wire(recv_frame(s)).answer
        time.sleep(0.5)  # the pacing of a client that asks now and then, not a wait
    s.close()


def test_every_override_the_api_accepts_survives_a_restart(binary, tmp_path):
    """Finding 5: these were accepted with 201 and written as lines the reader no longer parsed
    (that override and every later one silently not applied; `state:4: unterminated quote` at
    restart). A NUL in a glob (finding 7) is refused."""
    from conftest import Server
    from test_admin import Api, start, zones_with_pools
    state = tmp_path / "state.txt"
    zones = zones_with_pools(tmp_path)
    srv, api = start(tmp_path, "--state", str(state), zones=zones)
    sent = [("lb/a/*", "\u0301combining first"), ("lb/b/*", "\ufe0f pasted emoji"), ("lb/*/192.0.2.1", "\u200dzwj"),
            ("lb/*/192.0.2.[12\u0600]", "prepended mark \u0600"), ("lb/*", 'a "quoted\u0301" \\ reason')]
    try:
        for member, reason in sent:
            status, o = api.json("POST", "/overrides", {"member": member, "state": "drain", "reason": reason})
            assert status == 201, (member, o)
        assert api.json("POST", "/overrides", {"member": "*\u0000lb/a/x", "state": "down"})[0] == 400
        # A glob that matches nothing is refused (finding 7), with the reason.
        status, err = api.json("POST", "/overrides", {"member": "nosuch/*", "state": "drain"})
        assert status == 400 and "matches no member" in str(err), err
    finally:
        srv.stop()
    srv2 = Server(zones, ["--state", str(state), "--admin-token-file", str(tmp_path / "token")])
    try:
        assert "state file" not in srv2.log_text() or "rejected" not in srv2.log_text(), srv2.log_text()[-1000:]
        got = sorted((x["member"], x["reason"]) for x in Api(srv2.admin).json("GET", "/overrides")[1])
        assert got == sorted(sent), got
    finally:
        srv2.stop()


def test_a_missing_final_dot_is_a_warning_and_fails_strict(binary, tmp_path):
    """Finding 9: `www CNAME web.gslb.example.com` (no final dot) passed check, even --strict."""
    (tmp_path / "gslb.example.com.zone").write_text(
        "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 604800 60\n@ NS ns1\nns1 A 192.0.2.1\n"
        "www CNAME web.gslb.example.com\nweb A 192.0.2.2\n")
    plain = subprocess.run([binary, "check", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert plain.returncode == 0 and "gslb.example.com.zone:5: warning: CNAME target web.gslb.example.com.gslb.example.com." in plain.stdout, plain.stdout
    strict = subprocess.run([binary, "check", "--strict", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert strict.returncode == 1, strict.stdout


@pytest.mark.parametrize("how", ["absolute", "symlink", "dotdot"])
def test_include_is_confined_to_the_zones_directory(binary, tmp_path, how):
    """Finding 8: $INCLUDE followed absolute paths and symbolic links out of the zones
    directory, and quoted the target's text in a diagnostic."""
    zones = tmp_path / "zones"
    zones.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("root:SECRET-HASH:19000:0:99999:7:::\n")
    target = {"absolute": str(secret), "symlink": "link.inc", "dotdot": "../secret.txt"}[how]
    if how == "symlink":
        os.symlink(secret, zones / "link.inc")
    (zones / "t.test.zone").write_text(f"$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n$INCLUDE {target}\n")
    r = subprocess.run([binary, "check", str(zones)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout
    assert "t.test.zone:5: $INCLUDE" in r.stdout and "is outside the zones directory" in r.stdout, r.stdout
    assert "SECRET" not in r.stdout + r.stderr


def test_idle_and_trickling_admin_connections_keep_no_slot(fresh_server):
    """Finding 3: 64 idle TCP connections took every slot of the admin server (no idle timeout,
    no request deadline), locking /healthz, /metrics and every operator out, no token needed."""
    import urllib.request
    srv = fresh_server()
    hogs = [socket.create_connection(("127.0.0.1", srv.admin), timeout=5) for _ in range(64)]
    trickler = socket.create_connection(("127.0.0.1", srv.admin), timeout=5)

    def healthz():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{srv.admin}/healthz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False
    start = time.time()
    ok = False
    while time.time() - start < 25 and not ok:
        try:
            trickler.send(b"G")  # one header byte now and then: never a whole request
        except OSError:
            pass
        ok = healthz()
    assert ok, "the admin API stayed locked out"
    print(f"/healthz answered {time.time() - start:.1f} s after 64 idle connections")
    # The trickler is closed by the request deadline, however often it sends.
    took = closed_within(trickler, 15, keep_sending=b"E", every=1.0)
    assert took is not None, "a trickling client kept its admin connection"
    for s in hogs:
        s.close()
    trickler.close()


def connect_from(src, port, timeout=3):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


@pytest.mark.parametrize("sources", [["127.0.0.1"], [f"127.0.0.{i}" for i in range(1, 33)]], ids=["one-host", "one-network"])
def test_admin_connections_from_one_host_or_network_leave_slots_for_others(fresh_server, sources):
    """Finding 3 (the per-source half): 64 idle connections from one host took every admin slot
    until their idle timeout (10 s), with no token; now a host holds 8, and a /24 8 more once
    half the slots are open, the rest closed at once."""
    srv = fresh_server()
    hogs = []
    for i in range(64):
        try:
            hogs.append(connect_from(sources[i % len(sources)], srv.admin))
        except OSError:
            pass
    try:
        closed = count_closed(hogs, 1.0)
        # One host keeps 8; a /24 keeps 32 (half the cap) before its share applies.
        assert closed >= 64 - (8 if len(sources) == 1 else 32), closed
        assert http_get(srv.admin, "/healthz", "127.0.1.1") is not None, "another network was locked out"
        if len(sources) == 1:
            assert http_get(srv.admin, "/healthz", "127.0.0.2") is not None, "another host was locked out"
        metrics = http_get(srv.admin, "/metrics", "127.0.1.2") or ""
        reason = "per-client" if len(sources) == 1 else "per-network"
        assert f'meridian_admin_refused_total{{reason="{reason}"}}' in metrics, metrics[-2000:]
    finally:
        for s in hogs:
            s.close()


def test_dns_tcp_slots_when_low_are_shared_by_network(fresh_server):
    """Finding 6 (second half): with slots running low, one /16 (/48 for IPv6) gets a share,
    so many /24s of one network cannot take every slot."""
    srv = fresh_server("--tcp-max-connections", "64", "--tcp-max-per-client", "4")
    hogs = []
    for i in range(64):
        try:
            hogs.append(connect_from(f"127.0.{i}.1", srv.port))  # 64 /24s of one /16
        except OSError:
            pass
    try:
        closed = count_closed(hogs, 1.0)
        # The /16 fills half the slots; past that its share (8) is used up.
        assert closed >= 32, closed
        s = connect_from("127.200.0.1", srv.port)
        q = dns.message.make_query("www.example.test.", "A").to_wire()
        s.sendall(struct.pack("!H", len(q)) + q)
        assert recv_frame(s), "another network got no slot"
        s.close()
    finally:
        for s in hogs:
            s.close()
