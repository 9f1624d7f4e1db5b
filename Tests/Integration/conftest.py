"""Starts the real `meridian` binary on loopback for the integration tests.

The binary comes from $MERIDIAN_BIN (default .build/debug/meridian). Every wait is bounded.
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import time

import dns.message
import dns.query
import dns.rdatatype
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("MERIDIAN_BIN", os.path.join(ROOT, ".build", "debug", "meridian"))
FIXTURE_ZONES = os.path.join(ROOT, "Tests", "Fixtures", "zones")


_rng = random.Random()
_issued = set()


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 and ::1, chosen below the kernel's
    ephemeral range (32768-60999): a port the kernel hands out for an outgoing connection (a
    health check leaving from an instance's own address) can never be one a test reserved for a
    listener that starts later."""
    for _ in range(200):
        port = _rng.randrange(20000, 32000)
        if port in _issued:
            continue  # handed out already: its listener may not have started yet
        try:
            for fam, typ, host in ((socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1"),
                                   (socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1"),
                                   (socket.AF_INET6, socket.SOCK_DGRAM, "::1"),
                                   (socket.AF_INET6, socket.SOCK_STREAM, "::1")):
                with socket.socket(fam, typ) as s:
                    s.bind((host, port))
            _issued.add(port)
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


class Server:
    def __init__(self, zones, extra_args=(), listen_v6=True, ready_name="example.test."):
        self.ready_name = ready_name
        self.port = free_port()
        self.zones = zones
        args = [BIN, "serve", "--zones", zones, "--listen", f"127.0.0.1:{self.port}", "--threads", "2"]
        if listen_v6:
            args += ["--listen", f"[::1]:{self.port}"]
        args += list(extra_args)
        # Every server gets its own admin API port (the default, 127.0.0.1:8053, would clash).
        self.admin = None
        if "--no-admin" not in args and "--admin-listen" not in args:
            self.admin = free_port()
            args += ["--admin-listen", f"127.0.0.1:{self.admin}"]
        self.log = open(os.path.join(zones, "..", f"server-{self.port}.log") if os.access(os.path.dirname(zones), os.W_OK) else os.devnull, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_ready()

    def wait_ready(self, timeout=20.0):
        deadline = time.time() + timeout
        q = dns.message.make_query(self.ready_name, "SOA")
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"meridian exited with {self.proc.returncode}")
            try:
                dns.query.udp(q, "127.0.0.1", port=self.port, timeout=0.2)
                # The admin API starts after the DNS listeners: wait for it too.
                if getattr(self, "admin", None):
                    socket.create_connection(("127.0.0.1", self.admin), timeout=0.2).close()
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("meridian did not start in time")

    def alive(self):
        return self.proc.poll() is None

    def log_text(self):
        """What the server logged so far ('' when its log goes nowhere)."""
        try:
            with open(self.log.name) as f:
                return f.read()
        except (OSError, ValueError):
            return ""

    def wait_log(self, text, count=1, timeout=10.0):
        """Waits until `text` was logged `count` times (bounded); raises on a timeout."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.log_text().count(text) >= count:
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout} s waiting for {count} x {text!r} in the log")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


@pytest.fixture(scope="session")
def binary():
    if not os.path.exists(BIN):
        pytest.fail(f"{BIN} not built: run `swift build` first (make test does)")
    return BIN


@pytest.fixture(scope="session")
def server(binary, tmp_path_factory):
    """One server for the read-only tests, with identity options set."""
    d = tmp_path_factory.mktemp("zones")
    zones = str(d / "zones")
    shutil.copytree(FIXTURE_ZONES, zones)
    s = Server(zones, ["--nsid", "meridian-ci", "--identity", "ci-1"])
    yield s
    s.stop()


@pytest.fixture()
def fresh_server(binary, tmp_path):
    """A server of its own, for tests that change zones or stress it."""
    zones = str(tmp_path / "zones")
    shutil.copytree(FIXTURE_ZONES, zones)
    servers = []

    def start(*args, **kw):
        s = Server(zones, args, **kw)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()
