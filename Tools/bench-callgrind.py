#!/usr/bin/env python3
"""Instructions per answer of the answer function alone (no sockets), under callgrind.

Builds the benchmark's zone and pools (Tools/bench.py), then runs `meridian-answer-bench` under
valgrind twice, answering each test's queries 0 and N times; the difference divided by N is the
instruction count per answer, which timing noise on two shared cores does not move. The binary
is copied without its DWARF (valgrind 3.19 cannot read Swift's), keeping its symbols.

Then the static mix again with every answer logged to dnstap (DNSTAP=1), the writer's side
done in-line without its system call: what dnstap adds per answer.

Then `order: latency` against `order: geo` for an ECS query from a measured network and from an
unmeasured one (which falls back to GeoIP), with a 10,000-network latency map (LATENCY=N).

Environment: N (20000), ANSWER_BENCH_BIN (.build/release/meridian-answer-bench).
Build first: swift build -c release --product meridian-answer-bench
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402  (the zone, the pools and the query mixes)

N = int(os.environ.get("N", "20000"))
BIN = os.environ.get("ANSWER_BENCH_BIN", os.path.join(bench.ROOT, ".build", "release", "meridian-answer-bench"))
TESTS = {"static": bench.STATIC_QUERIES, "geo-ecs": ["www.example.test A 10.2.0.0/24"]}


def instructions(binary, zones, n, queries, dnstap=False, latency=0):
    # Swift seeds its hashing per process; fixed here, so the setup costs the same in both runs.
    env = dict(os.environ, SWIFT_DETERMINISTIC_HASHING="1", DNSTAP="1" if dnstap else "0", LATENCY=str(latency))
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", binary, zones, str(n), *queries],
                         capture_output=True, text=True, timeout=600, env=env)
    for line in out.stderr.splitlines():
        if "Collected :" in line:
            return int(line.split(":")[-1].strip())
    sys.exit(f"bench-callgrind: no count from valgrind: {out.stderr[-400:]}")


def main():
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: swift build -c release --product meridian-answer-bench")
    work = tempfile.mkdtemp(prefix="meridian-callgrind-")
    try:
        open(os.path.join(work, "example.test.zone"), "w").write(bench.ZONE)
        open(os.path.join(work, "pools.yaml"), "w").write(bench.meridian_pools())
        binary = os.path.join(work, "answer-bench")
        subprocess.run(["strip", "--strip-debug", "-o", binary, BIN], check=True)
        plain = {}
        for test, queries in TESTS.items():
            base = instructions(binary, work, 0, queries)
            full = instructions(binary, work, N, queries)
            plain[test] = (full - base) / (N * len(queries))
            print(f"{test:8} {plain[test]:8.0f} instructions per answer ({len(queries)} queries x {N})")
        # dnstap's cost on the answer path: the same static answers, each logged (query and
        # response encoded and queued) and drained as the writer would, without the write.
        base = instructions(binary, work, 0, TESTS["static"], dnstap=True)
        full = instructions(binary, work, N, TESTS["static"], dnstap=True)
        logged = (full - base) / (N * len(TESTS["static"]))
        print(f"static with dnstap {logged:8.0f} instructions per answer (+{logged - plain['static']:.0f}, {logged / plain['static']:.2f}x)")
        # order: latency against order: geo, the same ECS queries: a measured network (11.0.5.0/24
        # of a 10,000-network map) and an unmeasured one that falls back to GeoIP.
        lat = os.path.join(work, "latency")
        os.mkdir(lat)
        open(os.path.join(lat, "example.test.zone"), "w").write(bench.ZONE)
        open(os.path.join(lat, "pools.yaml"), "w").write(bench.meridian_pools(latency=True))
        for label, q in (("measured", "www.example.test A 11.0.5.0/24"), ("fallback", "www.example.test A 10.2.0.0/24")):
            geo_base = instructions(binary, work, 0, [q])
            geo = (instructions(binary, work, N, [q]) - geo_base) / N
            lat_base = instructions(binary, lat, 0, [q], latency=10_000)
            by_latency = (instructions(binary, lat, N, [q], latency=10_000) - lat_base) / N
            print(f"latency {label:8} {by_latency:8.0f} instructions per answer against {geo:.0f} by geo ({by_latency / geo:.3f}x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
