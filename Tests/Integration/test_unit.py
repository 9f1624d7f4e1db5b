"""The systemd unit (issue 19): every system call Meridian makes, from start to shutdown, is
allowed by the unit's SystemCallFilter as systemd itself expands it. Meridian runs under
`strace -f` doing all of it: signing, checks of every type (TCP, HTTP, DNS, exec, agent),
gossip, the admin API, overrides, a reload by API and by SIGHUP, and a clean shutdown; and
`meridian check --config`. Under the unit's earlier filter (~@resources) Dispatch's
setpriority and the descriptor limit's setrlimit were refused (SIGSYS)."""
import base64
import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import dns.message
import dns.query

from conftest import BIN, FIXTURE_ZONES, ROOT, free_port

UNIT = os.path.join(ROOT, "deploy", "meridian.service")


def expand(name, seen=None):
    """The system calls a name stands for, as `systemd-analyze syscall-filter` lists them."""
    seen = seen if seen is not None else set()
    if not name.startswith("@"):
        return {name}
    if name in seen:
        return set()
    seen.add(name)
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True, timeout=30, check=True).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if item and not item.startswith("#"):
            calls |= expand(item, seen)
    return calls


def allowed_by_unit():
    """SystemCallFilter= lines in order: the first allow list, then ~ lines taking away."""
    allowed = None
    for line in open(UNIT):
        m = re.match(r"SystemCallFilter=(~?)(.*)", line.strip())
        if not m:
            continue
        names = set()
        for n in m.group(2).split():
            names |= expand(n)
        if m.group(1):
            allowed = (allowed or set()) - names
        else:
            allowed = names if allowed is None else allowed | names
    return allowed


POOLS = """pools:
  mixed:
    names: [mixed.example.test.]
    mode: direct
    members: [127.0.4.1]
    checks:
      - {{type: tcp, port: {tcp}, interval: 300ms, timeout: 200ms}}
      - {{type: http, port: {http}, path: /health, interval: 300ms, timeout: 200ms}}
      - {{type: dns, port: {dns}, name: example.test., qtype: SOA, interval: 300ms, timeout: 200ms}}
      - {{type: exec, command: [/bin/true], interval: 1s, timeout: 1s}}
    agent: {{port: {agent}, interval: 300ms, timeout: 200ms}}
"""


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *a):
        pass


def test_every_system_call_is_allowed_by_the_units_filter(binary, tmp_path):
    allowed = allowed_by_unit()
    assert allowed and "read" in allowed and "reboot" not in allowed
    ip = "127.0.4.1"
    tcp, http_port, agent, port, admin, gossip = (free_port() for _ in range(6))
    listeners = []
    t = socket.socket()
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((ip, tcp))
    t.listen(64)
    listeners.append(t)
    httpd = http.server.ThreadingHTTPServer((ip, http_port), Health)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    a = socket.socket()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    a.bind((ip, agent))
    a.listen(64)
    listeners.append(a)
    stop = threading.Event()

    def accept_loop(sock, reply):
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = sock.accept()
                if reply:
                    c.sendall(reply)
                c.close()
            except OSError:
                continue
    for sock, reply in ((t, None), (a, b"up 80%\n")):
        threading.Thread(target=accept_loop, args=(sock, reply), daemon=True).start()

    zones = tmp_path / "zones"
    shutil.copytree(FIXTURE_ZONES, zones)
    (zones / "pools.yaml").write_text(POOLS.format(tcp=tcp, http=http_port, dns=port, agent=agent))
    (zones / "cluster.yaml").write_text(f"peers:\n  u1: 127.0.0.1:{gossip}\n  u2: 127.0.9.8:{free_port()}\n")
    keys = tmp_path / "keys"
    subprocess.run([BIN, "keygen", "--zone", "example.test", "--dir", str(keys), "--role", "csk"], capture_output=True, timeout=30, check=True)
    (tmp_path / "gossip.key").write_text(base64.b64encode(bytes(range(32))).decode() + "\n")
    (tmp_path / "token").write_text("t0ken-for-the-unit-test\n")
    (tmp_path / "state").write_text("")
    cfg = tmp_path / "meridian.yaml"
    cfg.write_text(f"zones: {zones}\nlisten: ['127.0.0.1:{port}']\nstate: {tmp_path / 'state'}\nkeys: {keys}\n"
                   f"admin-listen: 127.0.0.1:{admin}\nadmin-token-file: {tmp_path / 'token'}\nnode-name: u1\n"
                   f"gossip-key-file: {tmp_path / 'gossip.key'}\nrrl-rate: 100\nwatch: true\nstartup-timeout: 1s\n")
    trace = tmp_path / "trace"
    check = subprocess.run(["strace", "-f", "-qq", "-o", str(trace) + ".check", BIN, "check", "--config", str(cfg)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen(["strace", "-f", "-qq", "-o", str(trace), BIN, "serve", "--config", str(cfg)], stdout=log, stderr=subprocess.STDOUT)

    def tracee():
        """meridian's PID: strace's child (signals go to it, not to strace)."""
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                kids = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
                if kids:
                    return int(kids[0])
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("strace started no child")
    pid = tracee()
    try:
        q = dns.message.make_query("mixed.example.test.", "A", want_dnssec=True)
        deadline = time.time() + 60
        answered = None
        while time.time() < deadline and answered is None:
            assert proc.poll() is None, open(tmp_path / "serve.log").read()[-3000:]
            try:
                r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.5)
                if r.answer:
                    answered = r
            except Exception:
                time.sleep(0.1)
        assert answered, open(tmp_path / "serve.log").read()[-3000:]
        assert dns.query.tcp(q, "127.0.0.1", port=port, timeout=2).answer
        auth = {"Authorization": "Bearer t0ken-for-the-unit-test"}

        def call(method, path, body=None):
            req = urllib.request.Request(f"http://127.0.0.1:{admin}{path}", data=body, method=method, headers=auth)
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.read()
        call("GET", "/status")
        call("GET", "/metrics")
        call("GET", "/")
        call("POST", "/overrides", b'{"member": "mixed/*/127.0.4.1", "state": "drain", "reason": "unit test", "expires_in": "1m"}')
        call("POST", "/reload")
        os.kill(pid, signal.SIGHUP)
        deadline = time.time() + 20
        while time.time() < deadline and open(tmp_path / "serve.log").read().count("reloaded") < 2:
            time.sleep(0.1)
        assert open(tmp_path / "serve.log").read().count("reloaded") >= 2
    finally:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
        stop.set()
        httpd.shutdown()
        for s in listeners:
            s.close()
        log.close()
    assert proc.returncode == 0, open(tmp_path / "serve.log").read()[-3000:]
    used = set()
    for path in (trace, str(trace) + ".check"):
        for line in open(path):
            m = re.match(r"\d+\s+([a-z0-9_]+)\(", line)
            if m:
                used.add(m.group(1))
    # The tracer's own first call (execve of the binary) is made before the filter applies.
    assert len(used) > 30, used
    refused = sorted(used - allowed)
    assert not refused, f"system calls the unit's filter refuses: {refused}"
