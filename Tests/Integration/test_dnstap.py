"""dnstap (issue 19): Meridian's query log read by Debian's own readers: dnstap-ldns reads the
Frame Streams file, and fstrm_capture takes the socket stream (the bidirectional handshake),
goes away and comes back; sampling and the message choice do what they say."""
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import dns.message
import dns.query
import pytest

from conftest import BIN, FIXTURE_ZONES, Server
from test_admin import metric, Api
from test_peers import wait_for

pytestmark = pytest.mark.skipif(not shutil.which("dnstap-ldns") or not shutil.which("fstrm_capture"),
                                reason="dnstap-ldns and fstrm_capture (Debian's dnstap-ldns and fstrm-bin) are not installed")


def zones(tmp_path):
    z = tmp_path / "zones"
    shutil.copytree(FIXTURE_ZONES, z)
    return str(z)


def read(path):
    out = subprocess.run(["dnstap-ldns", "-r", str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line.strip()]


def ask(port, name, tcp=False, sock=None):
    q = dns.message.make_query(name, "A")
    if tcp:
        return dns.query.tcp(q, "127.0.0.1", port=port, timeout=2)
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=2, sock=sock)


def test_the_file_holds_every_query_and_response_as_dnstap_ldns_reads_it(binary, tmp_path):
    out = tmp_path / "log.fstrm"
    srv = Server(zones(tmp_path), ["--dnstap-file", str(out), "--dnstap-identity", "ns-test"], listen_v6=False)
    try:
        for i in range(5):
            ask(srv.port, f"www.example.test.")
        ask(srv.port, "example.test.", tcp=True)
        ask(srv.port, "nope.example.test.")
    finally:
        srv.stop()
    lines = read(out)
    # The readiness probe's SOA queries come first; then ours, query and response each.
    ours = [l for l in lines if "www.example.test." in l or "nope.example.test." in l or ('"example.test." IN A' in l)]
    assert len([l for l in ours if " AQ 127.0.0.1 UDP " in l and '"www.example.test." IN A' in l]) == 5, lines
    assert len([l for l in ours if " AR 127.0.0.1 UDP " in l and '"www.example.test." IN A' in l]) == 5, lines
    assert any(" AQ 127.0.0.1 TCP " in l and '"example.test." IN A' in l for l in ours), lines
    assert any(" AR 127.0.0.1 TCP " in l for l in ours), lines
    yaml = subprocess.run(["dnstap-ldns", "-y", "-r", str(out)], capture_output=True, text=True, timeout=30).stdout
    assert 'identity: "ns-test"' in yaml and re.search(r'version: "Meridian [0-9.]+', yaml)
    assert "rcode: NXDOMAIN" in yaml and re.search(r"query_port: \d+", yaml)


def test_sampling_and_the_message_choice(binary, tmp_path):
    out = tmp_path / "log.fstrm"
    srv = Server(zones(tmp_path), ["--dnstap-file", str(out), "--dnstap-sample", "10", "--dnstap-messages", "queries", "--threads", "1"],
                 listen_v6=False)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            for _ in range(100):
                ask(srv.port, "www.example.test.", sock=s)
    finally:
        srv.stop()
    lines = read(out)
    assert not [l for l in lines if " AR " in l], lines
    # One thread: the first query and every tenth after it, with the readiness probes counted too.
    www = [l for l in lines if '"www.example.test." IN A' in l]
    assert 9 <= len(www) <= 11, lines


def test_the_socket_reader_gets_the_stream_and_a_new_reader_is_reconnected_to(binary, tmp_path):
    sock = tmp_path / "dnstap.sock"
    first, second = tmp_path / "one.fstrm", tmp_path / "two.fstrm"

    def capture(path):
        p = subprocess.Popen(["fstrm_capture", "-t", "protobuf:dnstap.Dnstap", "-u", str(sock), "-w", str(path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: sock.exists(), 10, "fstrm_capture listening")
        return p

    reader = capture(first)
    srv = Server(zones(tmp_path), ["--dnstap-socket", str(sock)], listen_v6=False)
    api = Api(srv.admin, token="")
    try:
        wait_for(lambda: metric(api.metrics(), "meridian_dnstap_connected") == 1, 10, "connected to fstrm_capture")
        assert 'meridian_dnstap_dropped_total{reason="queue full"} 0' in api.metrics_text()
        for _ in range(20):
            ask(srv.port, "www.example.test.")
        wait_for(lambda: metric(api.metrics(), "meridian_dnstap_frames_total") >= 40, 10, "frames written")
        reader.send_signal(signal.SIGINT)
        reader.wait(timeout=10)
        assert len([l for l in read(first) if '"www.example.test." IN A' in l]) == 40
        # No reader: answers go on, frames are dropped and counted.
        os.unlink(sock) if sock.exists() else None
        wait_for(lambda: (ask(srv.port, "www.example.test."), metric(api.metrics(), "meridian_dnstap_dropped_total", reason="no reader") >= 1)[1],
                 15, "frames dropped without a reader")
        assert metric(api.metrics(), "meridian_dnstap_connected") == 0
        reader = capture(second)
        wait_for(lambda: metric(api.metrics(), "meridian_dnstap_connected") == 1, 30, "reconnected to the new reader")
        for _ in range(10):
            ask(srv.port, "nope.example.test.")
        wait_for(lambda: metric(api.metrics(), "meridian_dnstap_frames_total") >= 60, 10, "frames written to the new reader")
    finally:
        srv.stop()
        reader.send_signal(signal.SIGINT)
        reader.wait(timeout=10)
    assert len([l for l in read(second) if '"nope.example.test." IN A' in l]) == 20


def test_a_dnstap_file_that_cannot_be_opened_stops_the_start_with_its_reason(binary, tmp_path):
    z = zones(tmp_path)
    out = subprocess.run([BIN, "serve", "--zones", z, "--listen", "127.0.0.1:0", "--no-admin",
                          "--dnstap-file", str(tmp_path / "missing" / "log.fstrm")], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "--dnstap-file" in out.stderr and "No such file or directory" in out.stderr, out.stderr
    both = subprocess.run([BIN, "serve", "--zones", z, "--dnstap-file", "a", "--dnstap-socket", "b"],
                          capture_output=True, text=True, timeout=30)
    assert both.returncode != 0 and "give one" in both.stderr
