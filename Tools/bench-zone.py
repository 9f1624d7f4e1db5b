#!/usr/bin/env python3
"""Benchmark of zone loading, on loopback only.

Generates a zone of RECORDS records (A, AAAA, TXT and MX at RECORDS/4 names, plus SOA, NS and
glue) in a temporary directory (never committed), computes the size of its records' wire form
(owner, type, class, TTL, RDLENGTH, RDATA, uncompressed), and reports:
  1. `meridian check` beside `nsd-checkzone` and `ldns-read-zone` on the same file: wall time and
     peak resident memory (GNU time's %M), ROUNDS runs each, medians; and `meridian check` on a
     three-record zone, the process's own floor (runtime and libraries), so the zone's share of
     the peak is the difference;
  2. `meridian serve` with the zone: resident memory once it answers;
  3. RELOADS SIGHUP reloads RELOAD_GAP s apart while dnsperf offers QPS queries a second for
     names of the zone over UDP and a client asks one query at a time over TCP: UDP queries lost,
     average and slowest UDP latency, the slowest TCP answer, resident memory at its peak during
     the reloads (sampled every 20 ms) and after each (a reload builds one new copy beside the
     serving one).
Every process started here is stopped by PID; every phase is bounded in time.

Environment: RECORDS (1000000), ROUNDS (3), RELOADS (3), RELOAD_GAP (5), QPS (50000),
MERIDIAN_BIN (.build/release/meridian).
"""
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402  (reuses its dnsperf helpers)

RECORDS = int(os.environ.get("RECORDS", "1000000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
RELOADS = int(os.environ.get("RELOADS", "3"))
RELOAD_GAP = float(os.environ.get("RELOAD_GAP", "5"))
QPS = int(os.environ.get("QPS", "50000"))
BIN = bench.BIN
ORIGIN = "big.test."


def wire_name_length(name):
    return sum(len(label) + 1 for label in name.rstrip(".").split(".")) + 1


def generate(path):
    """Writes the zone; returns (records, octets of their wire form)."""
    wire = 0
    count = 0
    with open(path, "w") as f:
        def record(owner, rtype, rdata_text, rdata_len):
            nonlocal wire, count
            f.write(f"{owner} {rtype} {rdata_text}\n")
            wire += wire_name_length(owner + "." + ORIGIN if owner != "@" else ORIGIN) + 10 + rdata_len
            count += 1
        f.write("$TTL 300\n")
        record("@", "SOA", "ns1 hostmaster 1 3600 600 604800 300", wire_name_length("ns1." + ORIGIN) + wire_name_length("hostmaster." + ORIGIN) + 20)
        record("@", "NS", "ns1", wire_name_length("ns1." + ORIGIN))
        record("ns1", "A", "192.0.2.1", 4)
        for i in range(RECORDS // 4):
            h = f"h{i}"
            record(h, "A", f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}", 4)
            record(h, "AAAA", f"2001:db8:{i >> 16:x}::{i & 0xffff:x}", 16)
            txt = f"v=spf1 include:_spf{i}.example.net ~all"
            record(h, "TXT", f'"{txt}"', len(txt) + 1)
            mx = f"mail{i}.example.net."
            record(h, "MX", f"10 {mx}", 2 + wire_name_length(mx))
    return count, wire


def timed(cmd):
    """(seconds, peak resident KB) of one command that must succeed."""
    out = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M", *cmd], capture_output=True, text=True, timeout=600)
    line = [l for l in out.stderr.splitlines() if l.startswith("TIME ")]
    if out.returncode != 0 or not line:
        sys.exit(f"bench-zone: {' '.join(cmd)} failed: {out.stderr[-500:]}")
    _, secs, kb = line[-1].split()
    return float(secs), int(kb)


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wait_name(port, name, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), name, "+short", "+time=1", "+tries=1"], capture_output=True, text=True)
        if r.stdout.strip() and not r.stdout.startswith(";"):
            return True
        time.sleep(0.2)
    return False


def load_times(work, zone_file, tiny):
    rows = {"meridian check": ([BIN, "check", work], []), "meridian check (3-record zone)": ([BIN, "check", tiny], [])}
    if shutil.which("nsd-checkzone"):
        rows["nsd-checkzone"] = (["nsd-checkzone", ORIGIN.rstrip("."), zone_file], [])
    if shutil.which("ldns-read-zone"):
        rows["ldns-read-zone"] = (["sh", "-c", f"ldns-read-zone -q {zone_file} >/dev/null"], [])
    for _ in range(ROUNDS):
        for cmd, results in rows.values():
            results.append(timed(cmd))
    return {k: (statistics.median(s for s, _ in r), statistics.median(m for _, m in r)) for k, (_, r) in rows.items()}


def tcp_prober(port, stop, out):
    """One TCP connection, one query at a time, until `stop`: the slowest answer and the count."""
    query = b"\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x02h1\x03big\x04test\x00" + b"\x00\x01\x00\x01"
    frame = struct.pack("!H", len(query)) + query
    sock = None
    while not stop.is_set():
        try:
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            t0 = time.monotonic()
            sock.sendall(frame)
            need, got = 2, b""
            while len(got) < need:
                chunk = sock.recv(65535)
                if not chunk:
                    raise ConnectionError("closed")
                got += chunk
                if len(got) >= 2:
                    need = 2 + struct.unpack("!H", got[:2])[0]
            out["worst"] = max(out["worst"], time.monotonic() - t0)
            out["n"] += 1
        except OSError:
            out["errors"] += 1
            if sock:
                sock.close()
            sock = None


def rss_sampler(pid, stop, out):
    while not stop.is_set():
        try:
            out["peak"] = max(out["peak"], rss_kb(pid))
        except (OSError, ValueError):
            pass
        time.sleep(0.02)


def serve_and_reload(work, port):
    proc = subprocess.Popen([BIN, "serve", "--zones", work, "--listen", f"127.0.0.1:{port}", "--no-admin", "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_name(port, "h1.big.test", 120):
            sys.exit("bench-zone: meridian serve did not answer within 120 s")
        serving = rss_kb(proc.pid)
        qfile = os.path.join(work, "queries.txt")
        n = max(1, RECORDS // 4)
        open(qfile, "w").write("".join(f"h{(i * 7919) % n}.big.test {t}\n" for i, t in zip(range(4000), ["A", "AAAA", "TXT", "MX"] * 1000)))
        bench.DURATION = int(RELOADS * RELOAD_GAP + RELOAD_GAP)
        # Every answer's latency (-v) goes to a file: a pipe read only at the end would fill and stall dnsperf.
        log = open(os.path.join(work, "dnsperf.txt"), "w+")
        perf = subprocess.Popen(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile, "-l", str(bench.DURATION), "-Q", str(QPS), "-v"],
                                stdout=log, stderr=subprocess.DEVNULL, text=True)
        after = []
        stop = threading.Event()
        tcp = {"worst": 0.0, "n": 0, "errors": 0}
        mem = {"peak": 0}
        threads = [threading.Thread(target=tcp_prober, args=(port, stop, tcp), daemon=True),
                   threading.Thread(target=rss_sampler, args=(proc.pid, stop, mem), daemon=True)]
        for t in threads:
            t.start()
        for _ in range(RELOADS):
            time.sleep(RELOAD_GAP)
            os.kill(proc.pid, signal.SIGHUP)
            time.sleep(RELOAD_GAP * 0.8)
            after.append(rss_kb(proc.pid))
        perf.wait(timeout=bench.DURATION + 60)
        stop.set()
        for t in threads:
            t.join(timeout=15)
        log.seek(0)
        out = log.read()
        latencies = [float(l.rsplit(" ", 1)[1]) * 1000 for l in out.splitlines()
                     if l.startswith("> ") and l.rsplit(" ", 1)[1].replace(".", "", 1).isdigit()]
        qps, completed, lost, avg = bench.dnsperf_summary(out)
        return serving, after, completed, lost, avg, max(latencies) if latencies else float("nan"), tcp, mem["peak"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: build it with `swift build -c release --product meridian`")
    work = tempfile.mkdtemp(prefix="meridian-bench-zone-")
    tiny = tempfile.mkdtemp(prefix="meridian-bench-zone-tiny-")
    try:
        zone_file = os.path.join(work, ORIGIN + "zone")
        records, wire = generate(zone_file)
        open(os.path.join(tiny, "t.test.zone"), "w").write("$TTL 300\n@ SOA ns1 h 1 3600 600 604800 300\n@ NS ns1\nns1 A 192.0.2.1\n")
        text = os.path.getsize(zone_file)
        print(f"zone: {records} records, {text / 1e6:.1f} MB of text, {wire / 1e6:.1f} MB in wire form (2x = {2 * wire / 1e6:.1f} MB)")
        results = load_times(work, zone_file, tiny)
        floor = results["meridian check (3-record zone)"][1]
        print(f"\n{'loader':34} {'time (s)':>9} {'peak MB':>9}")
        for name, (secs, kb) in results.items():
            print(f"{name:34} {secs:9.2f} {kb / 1024:9.1f}")
        peak = results["meridian check"][1]
        print(f"meridian's zone share of the peak: {(peak - floor) / 1024:.1f} MB = {(peak - floor) * 1024 / wire:.2f}x the wire form")
        serving, after, completed, lost, avg, worst, tcp, peak = serve_and_reload(work, 20000 + os.getpid() % 20000)
        print(f"\nserve: {serving / 1024:.1f} MB resident once answering ({(serving - floor) * 1024 / wire:.2f}x the wire form above the floor)")
        print(f"{RELOADS} reloads under {QPS} q/s: {completed} answered, {lost} lost, average {avg:.2f} ms, slowest {worst:.1f} ms")
        print(f"TCP, one query at a time throughout: {tcp['n']} answered, slowest {tcp['worst'] * 1000:.1f} ms, {tcp['errors']} errors")
        print(f"resident at the peak during the reloads: {peak / 1024:.0f} MB; after each reload (MB): " + ", ".join(f"{kb / 1024:.0f}" for kb in after))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(tiny, ignore_errors=True)


if __name__ == "__main__":
    main()
