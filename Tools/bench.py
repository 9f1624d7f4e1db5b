#!/usr/bin/env python3
"""Benchmark: dnsperf against Meridian (release build) and reference servers in the same run.

Every server serves the same zone on loopback. Rounds are interleaved (A B C A B C ...), each
run is bounded by dnsperf's -l, and every server started here is stopped by PID at the end.
Prints queries per second and server CPU time per 100k answers, medians over the rounds, and
Meridian's ratios to each reference server.

Environment: DURATION (s, default 8), ROUNDS (3), CLIENTS (4), OUTSTANDING (100),
SERVERS (meridian,gdnsd,nsd), MERIDIAN_BIN (.build/release/meridian), THREADS (2).
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("MERIDIAN_BIN", os.path.join(ROOT, ".build", "release", "meridian"))
DURATION = int(os.environ.get("DURATION", "8"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
CLIENTS = os.environ.get("CLIENTS", "4")
OUTSTANDING = os.environ.get("OUTSTANDING", "100")
THREADS = os.environ.get("THREADS", "2")
SERVERS = os.environ.get("SERVERS", "meridian,gdnsd,nsd").split(",")

ZONE = """$ORIGIN example.test.
$TTL 300
@        IN SOA   ns1.example.test. hostmaster.example.test. ( 2024010101 3600 600 604800 300 )
@        IN NS    ns1.example.test.
@        IN NS    ns2.example.test.
ns1      IN A     192.0.2.53
ns2      IN A     198.51.100.53
@        IN A     192.0.2.1
@        IN AAAA  2001:db8::1
@        IN MX    10 mail.example.test.
@        IN TXT   "v=spf1 mx -all"
mail     IN A     192.0.2.25
mail     IN AAAA  2001:db8::25
static   IN A     192.0.2.80
static   IN AAAA  2001:db8::80
static   IN TXT   "static anchor record"
alias    IN CNAME static.example.test.
*.wild   IN A     192.0.2.99
"""
# The static mix: apex, plain names, a CNAME followed in-zone, a wildcard.
QUERIES = ["static.example.test A", "example.test A", "mail.example.test A", "ns1.example.test A",
           "alias.example.test A", "foo.wild.example.test A"]


def descendants(pid):
    """pid and every process below it, from the parent links in /proc/*/stat."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
                parent[int(entry)] = int(fields[1])
            except OSError:
                pass
    out = {pid}
    grew = True
    while grew:
        grew = False
        for p, pp in parent.items():
            if pp in out and p not in out:
                out.add(p)
                grew = True
    return out


def cpu_seconds(pid):
    """utime+stime of a process and all its descendants (live ones, plus reaped children), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in descendants(pid):
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        except OSError:
            pass
    return total / tick


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "example.test", "SOA", "+short", "+time=1", "+tries=1"],
                           capture_output=True, text=True)
        if r.stdout.strip():
            return True
        time.sleep(0.2)
    return False


def start_meridian(work, port):
    zones = os.path.join(work, "meridian")
    os.makedirs(zones)
    open(os.path.join(zones, "example.test.zone"), "w").write(ZONE)
    return subprocess.Popen([BIN, "serve", "--zones", zones, "--listen", f"127.0.0.1:{port}", "--threads", THREADS,
                             "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_gdnsd(work, port):
    d = os.path.join(work, "gdnsd")
    os.makedirs(os.path.join(d, "zones"))
    os.makedirs(os.path.join(d, "run"))
    os.makedirs(os.path.join(d, "state"))
    open(os.path.join(d, "zones", "example.test"), "w").write(ZONE)
    open(os.path.join(d, "config"), "w").write(f"""options => {{
  listen => [ 127.0.0.1:{port} ]
  udp_threads => {THREADS}
  tcp_threads => 1
  run_dir => {d}/run
  state_dir => {d}/state
}}
""")
    return subprocess.Popen(["gdnsd", "-c", d, "start"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_nsd(work, port):
    d = os.path.join(work, "nsd")
    os.makedirs(d)
    open(os.path.join(d, "example.test.zone"), "w").write(ZONE)
    open(os.path.join(d, "nsd.conf"), "w").write(f"""server:
    ip-address: 127.0.0.1@{port}
    server-count: {THREADS}
    reuseport: yes
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    pidfile: "{d}/nsd.pid"
    logfile: "{d}/nsd.log"
    verbosity: 0
    minimal-responses: yes
    rrl-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: example.test
    zonefile: example.test.zone
""")
    return subprocess.Popen(["nsd", "-d", "-c", os.path.join(d, "nsd.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


STARTERS = {"meridian": start_meridian, "gdnsd": start_gdnsd, "nsd": start_nsd}


def run_dnsperf(port, qfile):
    out = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile, "-l", str(DURATION),
                          "-c", CLIENTS, "-q", OUTSTANDING, "-T", "1"], capture_output=True, text=True,
                         timeout=DURATION + 30).stdout
    qps = completed = lost = None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Queries per second:"):
            qps = float(line.split()[-1])
        elif line.startswith("Queries completed:"):
            completed = int(line.split()[2])
        elif line.startswith("Queries lost:"):
            lost = int(line.split()[2])
    return qps, completed, lost


def main():
    if "meridian" in SERVERS and not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: build it with `swift build -c release --product meridian`")
    work = tempfile.mkdtemp(prefix="meridian-bench-")
    qfile = os.path.join(work, "queries.txt")
    open(qfile, "w").write("\n".join(QUERIES) + "\n")
    procs = {}
    results = {s: [] for s in SERVERS}
    try:
        for i, name in enumerate(SERVERS):
            if name != "meridian" and shutil.which(name) is None:
                print(f"bench: {name} not installed, skipped")
                results.pop(name)
                continue
            port = 5310 + i
            procs[name] = (STARTERS[name](work, port), port)
            if not wait_port(port):
                sys.exit(f"bench: {name} did not answer on port {port}")
        for r in range(ROUNDS):
            for name, (proc, port) in procs.items():
                c0 = cpu_seconds(proc.pid)
                qps, completed, lost = run_dnsperf(port, qfile)
                cpu = cpu_seconds(proc.pid) - c0
                per100k = cpu / completed * 100_000 if completed else float("nan")
                results[name].append((qps, per100k, lost))
                print(f"round {r + 1} {name:9s} {qps:>10,.0f} q/s  {per100k:6.2f} CPU-s/100k  lost {lost}", flush=True)
    finally:
        for proc, _ in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc, _ in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nmedians over {ROUNDS} rounds of {DURATION} s (dnsperf -c {CLIENTS} -q {OUTSTANDING} -T 1, server threads {THREADS}):")
    med = {}
    for name, rows in results.items():
        if not rows:
            continue
        q = statistics.median(r[0] for r in rows)
        c = statistics.median(r[1] for r in rows)
        med[name] = (q, c)
        print(f"  {name:9s} {q:>10,.0f} q/s   {c:6.2f} CPU-s per 100k answers")
    if "meridian" in med:
        for ref in med:
            if ref == "meridian":
                continue
            cpu_ratio = med["meridian"][1] / med[ref][1] if med[ref][1] > 0 else float("nan")
            print(f"  meridian/{ref}: {med['meridian'][0] / med[ref][0]:.2f}x queries per second, "
                  f"{cpu_ratio:.2f}x CPU per answer")


if __name__ == "__main__":
    main()
