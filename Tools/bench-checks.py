#!/usr/bin/env python3
"""Benchmark of the health-check engine at scale, on loopback only.

Starts target servers (`meridian-bench-target`: TCP accept-and-close, a minimal HTTP
responder, SwiftNIO, so the targets keep up) on 127.0.0.1, and two
Meridian release builds: `checked` with N_TCP members under a TCP check and N_HTTP members
under an HTTP check (every member's monitor address is 127.0.0.1; answers are documentation
addresses), and `plain` with the same zone and no pools. Then:
  1. checks only, for DURATION s: the engine's checks per second (counted by the targets), its
     CPU use, and, at shutdown, the missed deadlines it reports;
  2. dnsperf on static names in interleaved rounds: against `checked` while its checks run,
     against `plain` with nothing else running (the checked instance and the targets are paused
     with SIGSTOP), and, when a C compiler is present, against `plain` while `check-floor`
     (Tools/check-floor.c: the least a TCP connect check can cost, plain C and epoll) makes the
     same number of connects a second to the same targets: what that check load costs the
     answer path on this machine with no engine overhead at all. Each ratio is the median over rounds
     of (QPS in that round / QPS of `plain` in the same round).
Every process started here is stopped by PID; every phase is bounded in time.

With FIXED_QPS=N, dnsperf offers a fixed N queries a second (-Q) instead of as many as the
servers answer, and each round reports the answers a second, losses and average latency: how
the answer path fares at a load with headroom, as production servers run, rather than its
ceiling on a machine that the load generator shares.

Environment: N_TCP (5000), N_HTTP (1000), INTERVAL (1), DURATION (20), ROUNDS (6), QDURATION (5),
FLOOR (1: run the floor comparison), FIXED_QPS (0: off), MERIDIAN_BIN (.build/release/meridian).
"""
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402  (reuses its CPU accounting, waiting and dnsperf helpers)

N_TCP = int(os.environ.get("N_TCP", "5000"))
N_HTTP = int(os.environ.get("N_HTTP", "1000"))
INTERVAL = float(os.environ.get("INTERVAL", "1"))
DURATION = int(os.environ.get("DURATION", "20"))
ROUNDS = int(os.environ.get("ROUNDS", "6"))
bench.DURATION = int(os.environ.get("QDURATION", "5"))
FLOOR = os.environ.get("FLOOR", "1") == "1"
FIXED_QPS = int(os.environ.get("FIXED_QPS", "0"))
BIN = bench.BIN


def dnsperf_round(port, qfile):
    """(answers/s, completed, lost, average latency in ms, p99 in ms or None) of one dnsperf
    run; at a fixed rate, with every query's latency (dnsperf -v) for the percentiles."""
    if FIXED_QPS:
        qps, completed, lost, avg, _, p99, _ = bench.run_dnsperf_percentiles(port, qfile, ["-Q", str(FIXED_QPS)])
        return qps, completed, lost, avg, p99
    return (*bench.run_dnsperf_full(port, qfile, []), None)


class Targets:
    """meridian-bench-target in its own process; its last printed line holds the counts."""

    def __init__(self, tcp_port, http_port):
        path = os.path.join(os.path.dirname(BIN), "meridian-bench-target")
        self.out = tempfile.NamedTemporaryFile("w+", delete=False)
        self.proc = subprocess.Popen([path, "127.0.0.1", str(tcp_port), str(http_port)], stdout=self.out, stderr=subprocess.STDOUT)

    def counts(self):
        self.out.flush()
        lines = [l for l in open(self.out.name).read().splitlines() if re.match(r"^\d+ \d+$", l)]
        return tuple(int(x) for x in lines[-1].split()) if lines else (0, 0)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        os.unlink(self.out.name)


def build_floor(work):
    """Compiles Tools/check-floor.c; None without a C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None
    out = os.path.join(work, "check-floor")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check-floor.c")
    return out if subprocess.run([cc, "-O2", "-o", out, src]).returncode == 0 else None


def pools(tcp_port, http_port):
    lines = ["pools:"]
    for name, n, check in [("tcp", N_TCP, f"{{type: tcp, port: {tcp_port}, interval: {INTERVAL}, timeout: 500ms}}"),
                           ("http", N_HTTP, f"{{type: http, port: {http_port}, path: /, interval: {INTERVAL}, timeout: 500ms}}")]:
        if n == 0:
            continue
        lines += [f"  {name}:", f"    names: [{name}.example.test.]", "    mode: direct", "    members:"]
        base = 100 if name == "tcp" else 150
        for i in range(n):
            lines.append(f"      - {{name: m{i}, address: 10.{base + i // 65536}.{(i // 256) % 256}.{i % 256}, monitor: 127.0.0.1}}")
        lines += ["    checks:", f"      - {check}"]
    return "\n".join(lines) + "\n"


def main():
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: build it with `swift build -c release --product meridian`")
    work = tempfile.mkdtemp(prefix="meridian-bench-checks-")
    tcp_port, http_port = 5320, 5321
    target = Targets(tcp_port, http_port)
    procs = []
    try:
        dirs = {}
        for kind in ("checked", "plain"):
            d = os.path.join(work, kind)
            os.makedirs(d)
            open(os.path.join(d, "example.test.zone"), "w").write(bench.ZONE)
            if kind == "checked":
                open(os.path.join(d, "pools.yaml"), "w").write(pools(tcp_port, http_port))
            dirs[kind] = d
        time.sleep(0.5)
        ports = {"checked": 5322, "plain": 5323}
        logs = {}
        for kind, port in ports.items():
            logs[kind] = os.path.join(work, f"{kind}.log")
            p = subprocess.Popen([BIN, "serve", "--zones", dirs[kind], "--listen", f"127.0.0.1:{port}", "--no-admin", "--threads", "2",
                                  "--log-level", "info", "--startup-timeout", "10"], stdout=open(logs[kind], "w"), stderr=subprocess.STDOUT)
            procs.append(p)
            if not bench.wait_port(port, timeout=60):
                sys.exit(f"bench-checks: meridian ({kind}) did not start; see {logs[kind]}")
        checked = procs[0]
        first = [l for l in open(logs["checked"]) if "first round" in l]
        print(f"members: {N_TCP} TCP + {N_HTTP} HTTP at {INTERVAL} s; {first[0].split('] ')[-1].strip() if first else ''}")

        # 1. Checks only.
        time.sleep(2)
        c0, t0, n0, tc0 = bench.cpu_seconds(checked.pid), time.time(), target.counts(), bench.cpu_seconds(target.proc.pid)
        time.sleep(DURATION)
        c1, t1, n1, tc1 = bench.cpu_seconds(checked.pid), time.time(), target.counts(), bench.cpu_seconds(target.proc.pid)
        elapsed = t1 - t0
        tcp_rate, http_rate = (n1[0] - n0[0]) / elapsed, (n1[1] - n0[1]) / elapsed
        expected = (N_TCP + N_HTTP) / INTERVAL
        print(f"checks only, {DURATION} s: {tcp_rate:,.0f} TCP + {http_rate:,.0f} HTTP checks/s "
              f"({(tcp_rate + http_rate) / expected * 100:.1f}% of the {expected:,.0f}/s scheduled), "
              f"meridian CPU {((c1 - c0) / elapsed) * 100:.1f}% of one core (targets {((tc1 - tc0) / elapsed) * 100:.1f}%)")

        # 2. The answer path while checks run, against a server without checks.
        qfile = os.path.join(work, "static.txt")
        open(qfile, "w").write("\n".join(bench.STATIC_QUERIES) + "\n")
        floor = build_floor(work) if FLOOR else None
        kinds = ["plain", "checked"] + (["floor"] if floor else [])
        rate = int((N_TCP + N_HTTP) / INTERVAL)
        results = {k: [] for k in kinds}
        floor_cpu = []
        for r in range(ROUNDS):
            for kind in kinds:
                port = ports["checked"] if kind == "checked" else ports["plain"]
                p = procs[0] if kind == "checked" else procs[1]
                # Only the load being measured runs: the checked instance is paused unless it is
                # measured, and the targets are paused while `plain` is.
                paused = {"plain": [procs[0].pid, target.proc.pid], "checked": [], "floor": [procs[0].pid]}[kind]
                for pid in paused:
                    os.kill(pid, signal.SIGSTOP)
                checker = None
                try:
                    if kind == "floor":
                        checker = subprocess.Popen([floor, "check", "127.0.0.1", str(tcp_port), str(rate), str(bench.DURATION + 1)],
                                                   stdout=subprocess.PIPE, text=True)
                        time.sleep(0.3)
                    c0 = bench.cpu_seconds(p.pid)
                    qps, completed, lost, latency, p99 = dnsperf_round(port, qfile)
                    cpu = bench.cpu_seconds(p.pid) - c0
                    if checker:
                        out = checker.communicate(timeout=bench.DURATION + 10)[0].split()
                        started, ok, failed, seconds = int(out[0]), int(out[1]), int(out[2]), float(out[3])
                        floor_cpu.append((ok, failed, seconds / max(started, 1) * 1e6))
                finally:
                    if checker and checker.poll() is None:
                        checker.kill()
                        checker.wait()
                    for pid in paused:
                        os.kill(pid, signal.SIGCONT)
                results[kind].append((qps, cpu / completed * 100_000 if completed else float("nan"), latency, p99, lost))
                print(f"round {r + 1} {kind:8s} {qps:>10,.0f} q/s  {results[kind][-1][1]:.2f} CPU-s/100k (server process)  lost {lost}"
                      + (f"  latency {latency:.3f} ms, p99 {p99:.3f} ms" if FIXED_QPS else ""), flush=True)
        plain = [x[0] for x in results["plain"]]
        q = {k: statistics.median(x[0] for x in v) for k, v in results.items()}
        ratio = {k: statistics.median(x[0] / p for x, p in zip(v, plain)) for k, v in results.items()}
        print(f"answer path while checks run: {q['checked']:,.0f} q/s vs {q['plain']:,.0f} q/s without checks "
              f"(medians); median per-round ratio {ratio['checked']:.3f}x ({(1 - ratio['checked']) * 100:+.1f}% drop)")
        if FIXED_QPS:
            lat = {k: statistics.median(x[2] for x in v) for k, v in results.items()}
            p99 = {k: statistics.median(x[3] for x in v) for k, v in results.items()}
            lost = {k: sum(x[4] for x in v) for k, v in results.items()}
            print(f"at a fixed {FIXED_QPS:,} q/s offered: median of the rounds' average latency " + ", ".join(f"{k} {v:.3f} ms" for k, v in lat.items()))
            print("  median of the rounds' 99th percentile " + ", ".join(f"{k} {v:.3f} ms" for k, v in p99.items())
                  + "; queries lost over all rounds " + ", ".join(f"{k} {v}" for k, v in lost.items()))
        if floor:
            ok = sum(x[0] for x in floor_cpu)
            failed = sum(x[1] for x in floor_cpu)
            print(f"floor: plain server while check-floor makes {rate:,} TCP connects/s: {q['floor']:,.0f} q/s, "
                  f"median per-round ratio {ratio['floor']:.3f}x ({(1 - ratio['floor']) * 100:+.1f}% drop); "
                  f"check-floor {statistics.median(x[2] for x in floor_cpu):.1f} us CPU per check, {ok:,} ok, {failed:,} failed")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        target.stop()
    stats = [l.split("] ")[-1].strip() for l in open(logs["checked"]) if "health checks:" in l]
    if stats:
        print(f"engine's own count at shutdown: {stats[-1]}")
    down_lines = [l.split("] ")[-1].strip() for l in open(logs["checked"]) if " down: " in l]
    print(f"members marked down during the run (should be 0): {len(down_lines)}")
    reasons = {}
    for l in down_lines:
        reason = re.sub(r"^\S+ down: ", "", l)
        reason = re.sub(r"after \d+ failures", "after N failures", reason)
        reasons[reason] = reasons.get(reason, 0) + 1
    for r, n in sorted(reasons.items(), key=lambda x: -x[1])[:5]:
        print(f"  {n} x {r}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
