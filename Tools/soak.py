#!/usr/bin/env python3
"""Soak benchmark (not a test): Meridian under steady load while everything around it changes.

    swift build -c release && python3 Tools/soak.py     # SOAK_SECONDS=600 by default

Two instances gossip as a group (the integration tests' harness, release binary, loopback
only). dnsperf first measures ns1's peak over 10 s, then sends 80% of it for SOAK_SECONDS while:
  - a backend is killed or revived every 5 s (health checks flap; check interval 200 ms);
  - ns1 reloads its configuration (SIGHUP) every 30 s;
  - the gossip peer ns2 is killed (-9) and restarted every 60 s;
  - a checker asks ns1 every 50 ms for a static name and both pools and counts wrong answers
    (an address outside the configuration, or an rcode other than NOERROR);
  - ns1's resident memory is sampled every second.
Reports dnsperf's sent, completed and lost queries, wrong answers, and RSS at start, peak and
end. Every process it starts is stopped by PID; every wait is bounded.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("MERIDIAN_BIN", str(ROOT / ".build" / "release" / "meridian"))
sys.path.insert(0, str(ROOT / "Tests" / "Integration"))

from test_peers import BACKENDS, Backend, Group  # noqa: E402

SOAK = int(os.environ.get("SOAK_SECONDS", "600"))
# Which disturbances run (to find what a growth comes from): flip, reload, restart.
EVENTS = set(os.environ.get("SOAK_EVENTS", "flip,reload,restart").split(","))
VALID = set(BACKENDS) | {"127.0.0.1"}


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def dnsperf(inst, queries, seconds, rate=None):
    args = ["dnsperf", "-s", inst.ip, "-p", str(inst.port), "-d", str(queries), "-l", str(seconds), "-c", "4", "-q", "100", "-t", "2"]
    if rate:
        args += ["-Q", str(int(rate))]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def field(out, name):
    m = re.search(rf"{name}:\s+([\d.]+)", out)
    return float(m.group(1)) if m else float("nan")


def main():
    if not os.path.exists(os.environ["MERIDIAN_BIN"]):
        sys.exit("soak: build first: swift build -c release")
    work = Path(tempfile.mkdtemp(prefix="meridian-soak-"))
    queries = work / "queries.txt"
    queries.write_text("ns1.peers.test A\nwww.peers.test A\napp.peers.test A\n" * 100)
    g = Group(work, 2)
    stop = threading.Event()
    wrong = []
    checked = [0]
    try:
        g.start()
        ns1, ns2 = g.instances
        peak = dnsperf(ns1, queries, 10).communicate(timeout=60)[0]
        max_qps = field(peak, "Queries per second")
        rate = 0.8 * max_qps
        print(f"soak: ns1 peak {max_qps:,.0f} q/s; running at {rate:,.0f} q/s for {SOAK} s")

        def checker():
            while not stop.is_set():
                for name in ("ns1.peers.test", "www.peers.test", "app.peers.test"):
                    try:
                        import dns.message
                        import dns.query
                        r = dns.query.udp(dns.message.make_query(name, "A"), ns1.ip, port=ns1.port, timeout=2)
                        got = {rd.to_text() for rrset in r.answer for rd in rrset}
                        checked[0] += 1
                        if r.rcode() != 0 or not got or not got <= VALID:
                            wrong.append((name, r.rcode(), got))
                    except Exception as e:  # noqa: BLE001
                        wrong.append((name, "no answer", str(e)))
                time.sleep(0.05)

        t = threading.Thread(target=checker, daemon=True)
        t.start()
        load = dnsperf(ns1, queries, SOAK, rate)
        rss = [rss_kib(ns1.proc.pid)]
        start = time.time()
        flips = restarts = reloads = 0
        while load.poll() is None and time.time() - start < SOAK + 60:
            elapsed = time.time() - start
            time.sleep(1)
            rss.append(rss_kib(ns1.proc.pid))
            second = int(elapsed) + 1
            if second % 5 == 0 and "flip" in EVENTS:
                ip = BACKENDS[(second // 5) % len(BACKENDS)]
                b = g.backends[ip]
                if b.running:
                    b.kill()
                else:
                    g.backends[ip] = Backend(ip, g.port)
                flips += 1
            if second % 30 == 0 and "reload" in EVENTS:
                ns1.proc.send_signal(signal.SIGHUP)
                reloads += 1
            if second % 60 == 0 and "restart" in EVENTS:
                ns2.stop(signal.SIGKILL)
                ns2.start()
                restarts += 1
        out = load.communicate(timeout=120)[0]
        stop.set()
        t.join(timeout=10)
        sent, done, lost = field(out, "Queries sent"), field(out, "Queries completed"), field(out, "Queries lost")
        print(f"soak: {SOAK} s at {rate:,.0f} q/s: {sent:,.0f} sent, {done:,.0f} completed, {lost:,.0f} lost "
              f"({flips} backend flips, {reloads} reloads, {restarts} peer restarts)")
        print(f"soak: checker: {checked[0]} answers checked, {len(wrong)} wrong{': ' + str(wrong[:5]) if wrong else ''}")
        print(f"soak: ns1 RSS: start {rss[0] / 1024:.1f} MiB, peak {max(rss) / 1024:.1f} MiB, end {rss[-1] / 1024:.1f} MiB")
        print("soak: ns1 RSS each minute (MiB): " + ", ".join(f"{rss[i] / 1024:.1f}" for i in range(0, len(rss), int(os.environ.get("SOAK_RSS_EVERY", "60")))))
    finally:
        stop.set()
        g.stop()


if __name__ == "__main__":
    main()
