#!/usr/bin/env python3
"""Instructions per answer of the answer function alone (no sockets), under callgrind.

Builds the benchmark's zone and pools (Tools/bench.py), then runs `meridian-answer-bench` under
valgrind twice, answering each test's queries 0 and N times; the difference divided by N is the
instruction count per answer, which timing noise on two shared cores does not move. The binary
is copied without its DWARF (valgrind 3.19 cannot read Swift's), keeping its symbols.

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


def instructions(binary, zones, n, queries):
    # Swift seeds its hashing per process; fixed here, so the setup costs the same in both runs.
    env = dict(os.environ, SWIFT_DETERMINISTIC_HASHING="1")
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
        for test, queries in TESTS.items():
            base = instructions(binary, work, 0, queries)
            full = instructions(binary, work, N, queries)
            print(f"{test:8} {(full - base) / (N * len(queries)):8.0f} instructions per answer ({len(queries)} queries x {N})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
