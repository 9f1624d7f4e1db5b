#!/usr/bin/env python3
"""Benchmark: dnsperf against Meridian (release build) and reference servers in the same run.

Every server serves the same zone on loopback. Rounds are interleaved (for each round, each
test, each server), each run is bounded by dnsperf's -l, and every server started here is
stopped by PID at the end. Prints queries per second and server CPU time per 100k answers,
medians over the rounds, and Meridian's ratios to each reference server.

Tests (TESTS, default all):
  static      six static names (apex, plain, CNAME followed, wildcard): meridian, gdnsd, nsd
  geo-ecs     a GeoIP-selected name with ECS 10.2.0.0/24: meridian (multi-site pool) vs gdnsd
              (geoip plugin), same MMDB (GeoData/test.mmdb), same continent map and sites
  direct-10k  meridian only: a direct-to-node pool of 10,000 nodes (consistent hash) with the
              same ECS, compared with meridian's own geo-ecs figure
  signed-static  the static mix with DO=1: meridian (online signing, ECDSA P-256 CSK) vs knot
              (mod-onlinesign, its default ECDSA P-256 policy); meridian's CPU per signed answer
              is also compared with its own unsigned static figure, and its signature cache hit
              rate is read from /metrics
  signed-geo  the geo-ecs pool answer with DO=1: meridian, compared with its unsigned geo-ecs
  signed-miss 5,000 distinct wildcard names with DO=1: meridian, and meridian-nocache (a
              16-entry signature cache, so nearly every answer is signed afresh): the cost of a miss

Server "meridian-nio" is Meridian answering UDP through SwiftNIO channels (--udp-engine nio)
instead of its batched data plane; include it in SERVERS.

PIN=1 pins every server to core 0 and dnsperf to core 1 (taskset).

Server "meridian-base" (with MERIDIAN_BASE_BIN, another build of Meridian) runs wherever
"meridian" does, to compare two versions in one run.

Server "meridian-scraped" (in SERVERS to include it; static test only) is Meridian with its
admin API on and a Prometheus-style scraper fetching /metrics every second while dnsperf runs:
what scraping costs the answer path.

Servers "meridian-dnstap" (dnstap of every query and response to a real reader, Debian's
fstrm_capture writing to /dev/null) and "meridian-dnstap-noreader" (dnstap to a socket nobody
listens on: every message encoded, queued and dropped) run the static test when in SERVERS:
what the query log costs the answer path, with and without a reader (the writer thread's CPU
is the server's).

Environment: DURATION (s, default 8), ROUNDS (3), CLIENTS (4), OUTSTANDING (100),
SERVERS (meridian,gdnsd,nsd,knot), TESTS (static,geo-ecs,direct-10k,signed-static,signed-geo,signed-miss),
MERIDIAN_BIN (.build/release/meridian), THREADS (2).
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("MERIDIAN_BIN", os.path.join(ROOT, ".build", "release", "meridian"))
BASE_BIN = os.environ.get("MERIDIAN_BASE_BIN")
DURATION = int(os.environ.get("DURATION", "8"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
CLIENTS = os.environ.get("CLIENTS", "4")
OUTSTANDING = os.environ.get("OUTSTANDING", "100")
THREADS = os.environ.get("THREADS", "2")
PIN = os.environ.get("PIN", "") not in ("", "0")
SERVER_PIN = ["taskset", "-c", "0"] if PIN else []
CLIENT_PIN = ["taskset", "-c", "1"] if PIN else []
SERVERS = os.environ.get("SERVERS", "meridian,gdnsd,nsd,knot").split(",") + (["meridian-base"] if os.environ.get("MERIDIAN_BASE_BIN") else [])
TESTS = os.environ.get("TESTS", "static,geo-ecs,direct-10k,signed-static,signed-geo,signed-miss").split(",")
SIGNED = any(t.startswith("signed") for t in TESTS)
GEODB = os.path.join(ROOT, "GeoData", "test.mmdb")
# ECS 10.2.0.0/24 (GeoData: NA, US) as a dnsperf -E option: code 8, family 1, /24, scope 0.
ECS_OPTION = "8:000118000a0200"

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
STATIC_QUERIES = ["static.example.test A", "example.test A", "mail.example.test A", "ns1.example.test A",
                  "alias.example.test A", "foo.wild.example.test A"]

# test -> (queries, extra dnsperf arguments, servers that take part)
TEST_SPECS = {
    "static": (STATIC_QUERIES, [], ["meridian", "meridian-nio", "meridian-base", "meridian-scraped", "meridian-dnstap", "meridian-dnstap-noreader", "gdnsd", "nsd"]),
    "geo-ecs": (["www.example.test A"], ["-E", ECS_OPTION], ["meridian", "meridian-nio", "meridian-base", "gdnsd"]),
    "direct-10k": (["app.example.test A"], ["-E", ECS_OPTION], ["meridian", "meridian-base"]),
    "signed-static": (STATIC_QUERIES, ["-D"], ["meridian", "knot"]),
    "signed-geo": (["www.example.test A"], ["-E", ECS_OPTION, "-D"], ["meridian"]),
    "signed-miss": ([f"w{i}.wild.example.test A" for i in range(5000)], ["-D"], ["meridian", "meridian-nocache"]),
}

SITES = {"fra": ["192.0.2.11", "192.0.2.12"], "iad": ["198.51.100.21", "198.51.100.22"], "nrt": ["203.0.113.31", "203.0.113.32"]}
CONTINENT_MAP = {"EU": ["fra", "iad", "nrt"], "NA": ["iad", "fra", "nrt"], "SA": ["iad", "fra", "nrt"],
                 "AS": ["nrt", "iad", "fra"], "OC": ["nrt", "iad", "fra"]}


def meridian_pools(latency=False):
    lines = [f"geoip: {GEODB}", "pools:", "  www:", "    names: [www.example.test.]", "    ttl: 60", "    sites:"]
    for site, addrs in SITES.items():
        lines.append(f"      {site}: {{members: [{', '.join(addrs)}]}}")
    lines += ["    order:"]
    if latency:
        lines += ["      latency: {tolerance_ms: 10, min_samples: 5, fallback: geo}"]
    lines += ["      geo:"]
    for cont, order in CONTINENT_MAP.items():
        lines.append(f"        continent:{cont}: [{', '.join(order)}]")
    lines += ["      default: [fra, iad, nrt]",
              "  app:", "    names: [app.example.test.]", "    mode: direct", "    method: consistent-hash",
              "    max_answers: 2", "    members:"]
    for i in range(10_000):
        lines.append(f"      - {{name: n{i}, address: 10.{100 + i // 65536}.{(i // 256) % 256}.{i % 256}}}")
    return "\n".join(lines) + "\n"


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
        # dig prints errors on stdout too, behind ";;": only a real answer counts.
        if any(line and not line.startswith(";") for line in r.stdout.splitlines()):
            return True
        time.sleep(0.2)
    return False


def start_meridian_nio(work, port):
    return start_meridian(work, port, extra=["--udp-engine", "nio"])


def start_meridian_base(work, port):
    return start_meridian(work, port, binary=BASE_BIN)


def signing_keys(work):
    """One ECDSA P-256 CSK for example.test., made once per run with `meridian keygen`."""
    keys = os.path.join(work, "keys")
    if not os.path.isdir(keys):
        subprocess.run([BIN, "keygen", "--zone", "example.test", "--dir", keys], check=True, capture_output=True, timeout=30)
    return keys


def start_meridian(work, port, admin=None, binary=None, extra=()):
    zones = os.path.join(work, f"meridian-{port}")
    os.makedirs(zones)
    open(os.path.join(zones, "example.test.zone"), "w").write(ZONE)
    open(os.path.join(zones, "pools.yaml"), "w").write(meridian_pools())
    if SIGNED and binary is None:
        # Signed tests read the signature counters from /metrics.
        extra = ["--keys", signing_keys(work), *extra]
        admin = admin or port + 1000
    adm = ["--admin-listen", f"127.0.0.1:{admin}"] if admin else (["--no-admin"] if binary is None else [])
    return subprocess.Popen([*SERVER_PIN, binary or BIN, "serve", "--zones", zones, "--listen", f"127.0.0.1:{port}", *adm, "--threads", THREADS,
                             "--log-level", "warning", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_meridian_scraped(work, port):
    return start_meridian(work, port, admin=port + 1000)


EXTRA_PROCS = []


def start_meridian_dnstap(work, port):
    sock = os.path.join(work, f"dnstap-{port}.sock")
    reader = subprocess.Popen(["fstrm_capture", "-t", "protobuf:dnstap.Dnstap", "-u", sock, "-w", "/dev/null"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    EXTRA_PROCS.append(reader)
    deadline = time.time() + 10
    while not os.path.exists(sock) and time.time() < deadline:
        time.sleep(0.05)
    return start_meridian(work, port, extra=["--dnstap-socket", sock])


def start_meridian_dnstap_noreader(work, port):
    return start_meridian(work, port, extra=["--dnstap-socket", os.path.join(work, "nobody-listens.sock")])


def start_meridian_nocache(work, port):
    return start_meridian(work, port, extra=["--signature-cache-size", "16"])


def start_knot(work, port):
    """Knot DNS with mod-onlinesign: every answer signed as it is sent, keys made by its default policy."""
    d = os.path.join(work, "knot")
    os.makedirs(d)
    open(os.path.join(d, "example.test.zone"), "w").write(ZONE)
    open(os.path.join(d, "knot.conf"), "w").write(f"""server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
    udp-workers: {THREADS}
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{d}"
log:
  - target: stderr
    any: critical
template:
  - id: default
    storage: "{d}"
    semantic-checks: off
zone:
  - domain: example.test
    file: "{d}/example.test.zone"
    module: mod-onlinesign
""")
    return subprocess.Popen([*SERVER_PIN, "knotd", "-c", os.path.join(d, "knot.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def signature_counters(admin_port):
    """(made, from the cache) from meridian's /metrics."""
    made = cached = 0
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("meridian_dnssec_signatures_total"):
                value = float(line.rsplit(" ", 1)[1])
                if 'source="made"' in line:
                    made += value
                elif 'source="cache"' in line:
                    cached += value
    return made, cached


class Scraper:
    """Fetches /metrics once a second (bounded: stops with the run), as Prometheus would."""

    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.stop = threading.Event()
        self.scrapes = 0
        self.bytes = 0
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    self.bytes += len(r.read())
                    self.scrapes += 1
            except OSError:
                pass
            self.stop.wait(1.0)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)


def start_gdnsd(work, port):
    d = os.path.join(work, "gdnsd")
    os.makedirs(os.path.join(d, "zones"))
    os.makedirs(os.path.join(d, "run"))
    os.makedirs(os.path.join(d, "state"))
    open(os.path.join(d, "zones", "example.test"), "w").write(ZONE + "www 60 DYNA geoip!www\n")
    # Health comes from a file saying every address is UP: nothing probes these addresses.
    open(os.path.join(d, "extfile-up"), "w").write("".join(f"{a} => UP\n" for addrs in SITES.values() for a in addrs))
    dcmap = "\n".join(f"          {site} => {{ {' '.join(f'{chr(97 + i)} => {a},' for i, a in enumerate(addrs)).rstrip(',')} }}"
                       for site, addrs in SITES.items())
    cmap = "\n".join(f"          {c} => [ {', '.join(o)} ]" for c, o in CONTINENT_MAP.items())
    open(os.path.join(d, "config"), "w").write(f"""options => {{
  listen => [ 127.0.0.1:{port} ]
  udp_threads => {THREADS}
  tcp_threads => 1
  run_dir => {d}/run
  state_dir => {d}/state
  edns_client_subnet => true
}}
service_types => {{
  extf => {{ plugin => extfile, file => {d}/extfile-up, direct => true }}
}}
plugins => {{
  geoip => {{
    maps => {{
      geomap => {{
        geoip2_db => {GEODB}
        datacenters => [ fra, iad, nrt ]
        map => {{
          default => [ fra, iad, nrt ]
{cmap}
        }}
      }}
    }}
    resources => {{
      www => {{
        map => geomap
        service_types => extf
        dcmap => {{
{dcmap}
        }}
      }}
    }}
  }}
}}
""")
    return subprocess.Popen([*SERVER_PIN, "gdnsd", "-c", d, "start"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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
    return subprocess.Popen([*SERVER_PIN, "nsd", "-d", "-c", os.path.join(d, "nsd.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


STARTERS = {"meridian": start_meridian, "meridian-nio": start_meridian_nio, "meridian-base": start_meridian_base, "meridian-scraped": start_meridian_scraped,
            "meridian-nocache": start_meridian_nocache,
            "meridian-dnstap": start_meridian_dnstap, "meridian-dnstap-noreader": start_meridian_dnstap_noreader, "gdnsd": start_gdnsd, "nsd": start_nsd, "knot": start_knot}
BINARIES = {"knot": "knotd"}


def dnsperf_output(port, qfile, extra, timeout_extra=30):
    return subprocess.run([*CLIENT_PIN, "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile, "-l", str(DURATION),
                           "-c", CLIENTS, "-q", OUTSTANDING, "-T", "1", *extra], capture_output=True, text=True,
                          timeout=DURATION + timeout_extra).stdout


def dnsperf_summary(out):
    """(queries/s, completed, lost, average latency in ms) from dnsperf's summary lines."""
    qps = completed = lost = latency = None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Queries per second:"):
            qps = float(line.split()[-1])
        elif line.startswith("Queries completed:"):
            completed = int(line.split()[2])
        elif line.startswith("Queries lost:"):
            lost = int(line.split()[2])
        elif line.startswith("Average Latency (s):"):
            latency = float(line.split()[3]) * 1000
    return qps, completed, lost, latency


def run_dnsperf_full(port, qfile, extra):
    """(queries/s, completed, lost, average latency in ms) of one dnsperf run."""
    return dnsperf_summary(dnsperf_output(port, qfile, extra))


def run_dnsperf_percentiles(port, qfile, extra):
    """(queries/s, completed, lost, average, p50, p99, p99.9 latency in ms) of one dnsperf run
    with per-query output (-v), for fixed-rate runs."""
    out = dnsperf_output(port, qfile, ["-v", *extra], timeout_extra=60)
    samples = sorted(float(line.rsplit(" ", 1)[1]) * 1000 for line in out.splitlines()
                     if line.startswith("> ") and line.rsplit(" ", 1)[1].replace(".", "", 1).isdigit())

    def pct(p):
        return samples[min(len(samples) - 1, int(len(samples) * p))] if samples else float("nan")
    return (*dnsperf_summary(out), pct(0.5), pct(0.99), pct(0.999))


def run_dnsperf(port, qfile, extra):
    return run_dnsperf_full(port, qfile, extra)[:3]


def verify(procs):
    """Each server gives the expected answer before anything is measured."""
    checks = {"static": ("static.example.test", [], "192.0.2.80"),
              "geo-ecs": ("www.example.test", ["+subnet=10.2.0.0/24"], "198.51.100.21"),
              "direct-10k": ("app.example.test", ["+subnet=10.2.0.0/24"], "10.1"),
              "signed-static": ("static.example.test", ["+dnssec"], "A 13 3 300"),
              "signed-geo": ("www.example.test", ["+subnet=10.2.0.0/24", "+dnssec"], "A 13 3 60"),
              "signed-miss": ("w1.wild.example.test", ["+dnssec"], "A 13 4 300")}
    for test in TESTS:
        name, args, expect = checks[test]
        for server in TEST_SPECS[test][2]:
            if server not in procs:
                continue
            out = subprocess.run(["dig", "@127.0.0.1", "-p", str(procs[server][1]), name, "+short", "+time=2", "+tries=1", *args],
                                 capture_output=True, text=True).stdout
            if expect not in out:
                sys.exit(f"bench: {server} answered {test} wrongly: {out.strip()!r} (expected {expect})")


def main():
    if "meridian" in SERVERS and not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: build it with `swift build -c release --product meridian`")
    work = tempfile.mkdtemp(prefix="meridian-bench-")
    qfiles = {}
    for test in TESTS:
        qfiles[test] = os.path.join(work, f"{test}.txt")
        open(qfiles[test], "w").write("\n".join(TEST_SPECS[test][0]) + "\n")
    procs = {}
    results = {}
    signature_totals = None
    try:
        for i, name in enumerate(SERVERS):
            if not name.startswith("meridian") and shutil.which(BINARIES.get(name, name)) is None:
                print(f"bench: {name} not installed, skipped")
                continue
            port = 5310 + i
            procs[name] = (STARTERS[name](work, port), port)
            if not wait_port(port):
                sys.exit(f"bench: {name} did not answer on port {port}")
        verify(procs)
        for r in range(ROUNDS):
            for test in TESTS:
                for name in TEST_SPECS[test][2]:
                    if name not in procs:
                        continue
                    proc, port = procs[name]
                    c0 = cpu_seconds(proc.pid)
                    if name == "meridian-scraped":
                        with Scraper(port + 1000) as scraper:
                            qps, completed, lost = run_dnsperf(port, qfiles[test], TEST_SPECS[test][1])
                        if scraper.scrapes == 0:
                            sys.exit("bench: the scraper got no /metrics reply")
                    else:
                        qps, completed, lost = run_dnsperf(port, qfiles[test], TEST_SPECS[test][1])
                    cpu = cpu_seconds(proc.pid) - c0
                    per100k = cpu / completed * 100_000 if completed else float("nan")
                    results.setdefault((test, name), []).append((qps, per100k, lost))
                    print(f"round {r + 1} {test:10s} {name:9s} {qps:>10,.0f} q/s  {per100k:6.2f} CPU-s/100k  lost {lost}", flush=True)
        if SIGNED and "meridian" in procs:
            signature_totals = signature_counters(procs["meridian"][1] + 1000)
    finally:
        for proc, _ in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in EXTRA_PROCS:
            proc.send_signal(signal.SIGINT)
        for proc in [p for p, _ in procs.values()] + EXTRA_PROCS:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nmedians over {ROUNDS} rounds of {DURATION} s (dnsperf -c {CLIENTS} -q {OUTSTANDING} -T 1, server threads {THREADS}):")
    med = {}
    for (test, name), rows in results.items():
        q = statistics.median(r[0] for r in rows)
        c = statistics.median(r[1] for r in rows)
        med[(test, name)] = (q, c)
        print(f"  {test:10s} {name:9s} {q:>10,.0f} q/s   {c:6.2f} CPU-s per 100k answers")
    for test in TESTS:
        mine = med.get((test, "meridian"))
        if not mine:
            continue
        for (t, ref), theirs in med.items():
            if t != test or ref in ("meridian", "meridian-scraped", "meridian-dnstap", "meridian-dnstap-noreader"):
                continue
            cpu_ratio = mine[1] / theirs[1] if theirs[1] > 0 else float("nan")
            print(f"  {test}: meridian/{ref} = {mine[0] / theirs[0]:.2f}x queries per second, {cpu_ratio:.2f}x CPU per answer")
    if ("static", "meridian-scraped") in med and ("static", "meridian") in med:
        sc, plain = med[("static", "meridian-scraped")], med[("static", "meridian")]
        print(f"  static, scraped every 1 s vs not scraped (meridian): {sc[0] / plain[0]:.3f}x queries per second, {sc[1] / plain[1]:.3f}x CPU per answer")
    for variant, what in (("meridian-dnstap", "dnstap to fstrm_capture"), ("meridian-dnstap-noreader", "dnstap without a reader")):
        if ("static", variant) in med and ("static", "meridian") in med:
            a, b = med[("static", variant)], med[("static", "meridian")]
            print(f"  static, {what} vs none (meridian): {a[0] / b[0]:.3f}x queries per second, {a[1] / b[1]:.3f}x CPU per answer"
                  f" ({(a[1] - b[1]) * 10:+.2f} µs per answer)")
    for signed, plain in (("signed-static", "static"), ("signed-geo", "geo-ecs")):
        if (signed, "meridian") in med and (plain, "meridian") in med:
            a, b = med[(signed, "meridian")], med[(plain, "meridian")]
            print(f"  {signed} vs {plain} (meridian): {a[0] / b[0]:.2f}x queries per second, {a[1] / b[1]:.2f}x CPU per answer")
    if ("signed-miss", "meridian-nocache") in med and ("signed-miss", "meridian") in med:
        miss, hit = med[("signed-miss", "meridian-nocache")], med[("signed-miss", "meridian")]
        print(f"  signature cache miss: {(miss[1] - hit[1]) * 10:.1f} µs of CPU more per answer than a hit ({miss[1] / hit[1]:.2f}x)")
    if signature_totals:
        made, cached = signature_totals
        print(f"  meridian signature cache: {cached:,.0f} hits, {made:,.0f} signatures made: {100 * cached / max(made + cached, 1):.3f}% hits")
    if ("direct-10k", "meridian") in med and ("geo-ecs", "meridian") in med:
        d, g = med[("direct-10k", "meridian")], med[("geo-ecs", "meridian")]
        print(f"  direct-10k vs geo-ecs (meridian): {d[0] / g[0]:.2f}x queries per second, {d[1] / g[1]:.2f}x CPU per answer")


if __name__ == "__main__":
    main()
