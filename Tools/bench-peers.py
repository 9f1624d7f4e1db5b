#!/usr/bin/env python3
"""Peers benchmark (not a test): how fast a group of Meridian instances agrees, and what gossip
costs. Uses the release binary and the integration tests' harness (loopback only; every wait
bounded; every process it starts is stopped by PID).

    swift build -c release && python3 Tools/bench-peers.py

1. Real instances (3 and 5, on 127.0.1.x), TRIALS backend deaths each: the time from the death
   until every instance answers without the backend, and from the deciding observation (the
   probers' observation times, as `explain --peer` reports them in milliseconds; under
   `majority` with 2 probers, the later of the two) until every instance agrees.
2. Simulated (the SWIM core under the test suite's simulated network, virtual time): 100
   members, SIM_SEEDS runs: from one member's observation until all 100 hold it.
3. Steady state: MEMBERS checked members (TCP, 1 s interval; with AGENTS=1, the default, also a
   feedback agent polled every 2 s whose spare capacity wanders 50% +- 2 points from reply to
   reply, as loaded nodes report) on 3 instances with the default
   protocol timings: gossip octets per second per instance, UDP and push-pull TCP both, from the
   instances' own 30 s report lines, and CPU per instance, over STEADY seconds after a WARMUP
   (default 200 s: the start-up burst, every instance's first results gossiped 4 x log10(n+1)
   ticks each, takes about two minutes to drain at 1,000 members; its rates are printed too).
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("MERIDIAN_BIN", str(ROOT / ".build" / "release" / "meridian"))
sys.path.insert(0, str(ROOT / "Tests" / "Integration"))

from test_peers import SUBNETS, Backend, Group, wait_for  # noqa: E402

BIN = os.environ["MERIDIAN_BIN"]
TRIALS = int(os.environ.get("TRIALS", "5"))
SIM_SEEDS = int(os.environ.get("SIM_SEEDS", "10"))
MEMBERS = int(os.environ.get("MEMBERS", "1000"))
STEADY = int(os.environ.get("STEADY", "60"))
PARTS = os.environ.get("PARTS", "agree,sim,steady").split(",")
WARMUP = int(os.environ.get("WARMUP", "200"))
AGENTS = os.environ.get("AGENTS", "1") == "1"


def wandering_agent(port):
    """A feedback agent for every member on one port: each reply is 48% to 52% (a steady node)."""
    import random
    rng = random.Random(1)
    return Backend("0.0.0.0", port, reply=lambda: f"{50 + rng.randint(-2, 2)}%\n".encode())


def utc_seconds_of_day(text):
    h, m, s = text.rstrip("Z").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def now_of_day():
    t = time.time()
    return t % 86400


def deciding_observation(group, ip):
    """The time of the observation that made the member down: explain --peer on ns1."""
    ns1 = group.instances[0]
    out = subprocess.run([BIN, "explain", "app.peers.test", "--client", "10.0.0.1", "--zones", ns1.zones, "--peer", ns1.gossip,
                          "--gossip-key-file", group.key_file], capture_output=True, text=True, timeout=30).stdout
    block = out.split(f"app/default/{ip}:", 1)[1].split("verdict:", 1)[0]
    downs = sorted(utc_seconds_of_day(t) for t in re.findall(r"DOWN \(.*?\) since (\S+)", block))
    observers = len(re.findall(r" sees: ", block))
    need = observers // 2 + 1
    return downs[need - 1] if len(downs) >= need else None


def agreement_trials(n):
    work = Path(tempfile.mkdtemp(prefix=f"meridian-bench-peers-{n}-"))
    g = Group(work, n)
    from_death, from_observation = [], []
    try:
        g.start()
        time.sleep(1.0)
        for trial in range(TRIALS):
            ip = f"127.0.2.{trial % 6 + 1}"
            # Subnets whose answer holds this backend now: agreement is every instance
            # answering all of them without it.
            ns1 = g.instances[0]
            watched = [s for s in SUBNETS[:400] if ip in ns1.answer("app.peers.test", s)][:10]
            assert watched, f"no subnet is answered {ip}"
            g.backends[ip].kill()
            died = time.time()
            died_of_day = now_of_day()
            wait_for(lambda: all(ip not in inst.answer("app.peers.test", s) for inst in g.instances for s in watched), 10, f"all drop {ip}")
            agreed = time.time()
            agreed_of_day = died_of_day + (agreed - died)
            decided = deciding_observation(g, ip)
            from_death.append(agreed - died)
            if decided is not None:
                from_observation.append(agreed_of_day - decided)
            g.backends[ip] = Backend(ip, g.port)
            wait_for(lambda: any(ip in inst.answer("www.peers.test") or any(ip in inst.answer("app.peers.test", s) for s in SUBNETS[:50])
                                 for inst in g.instances), 10, f"{ip} back")
            time.sleep(1.5)
    finally:
        g.stop()
    return from_death, from_observation


def simulated():
    env = dict(os.environ, MERIDIAN_SIM_SEEDS=str(SIM_SEEDS))
    p = subprocess.run(["swift", "test", "--filter", "hundredMembersFormAndSpread"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    return [float(x) for x in re.findall(r"sim100: seed \d+: spread in ([\d.]+) s", p.stdout + p.stderr)]


def steady_state():
    work = Path(tempfile.mkdtemp(prefix="meridian-bench-steady-"))
    addresses = [f"127.0.{3 + i // 256}.{i % 256}" for i in range(MEMBERS)]
    from conftest import free_port
    port = free_port()
    agent_port = free_port()
    pools = ("pools:\n  big:\n    names: [big.peers.test.]\n    mode: direct\n    max_answers: 2\n"
             f"    members: [{', '.join(addresses)}]\n    checks:\n"
             f"      - {{{{type: tcp, port: {port}, interval: 1, timeout: 500ms, rise: 2, fall: 2}}}}\n")
    if AGENTS:
        pools += f"    agent: {{{{port: {agent_port}, interval: 2, timeout: 1, max_age: 30}}}}\n"
    listener = Backend("0.0.0.0", port)
    agent = wandering_agent(agent_port) if AGENTS else None
    g = Group(work, 3, pools=pools, timings=None, backends=[])
    try:
        g.start()
        pids = [i.proc.pid for i in g.instances]
        time.sleep(WARMUP)
        cpu0 = [cpu_seconds(p) for p in pids]
        t0 = time.time()
        time.sleep(STEADY)
        cpu1 = [cpu_seconds(p) for p in pids]
        elapsed = time.time() - t0
        time.sleep(2)
        rates = []
        for inst in g.instances:
            lines = re.findall(r"gossip: (\d+) s: .*? octets out \((\d+) B/s\), \d+ in \((\d+) B/s\), (\d+) live, (\d+) entries", inst.text())
            # A report line every 30 s from the start: those after the warm-up are steady state.
            steady = lines[WARMUP // 30 + 1:]
            burst = [int(l[1]) for l in lines[:WARMUP // 30 + 1]]
            rates.append((statistics.mean(int(l[1]) for l in steady) if steady else float("nan"), lines[-1][4] if lines else "?", burst))
        cpu = [(b - a) / elapsed for a, b in zip(cpu0, cpu1)]
        return rates, cpu
    finally:
        g.stop()
        listener.kill()
        if agent:
            print(f"agent replies: {agent.accepted}")
            agent.kill()


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ms(xs):
    return f"median {statistics.median(xs) * 1000:.0f} ms, max {max(xs) * 1000:.0f} ms (n={len(xs)})" if xs else "no data"


def main():
    if not os.path.exists(BIN):
        sys.exit(f"bench-peers: {BIN} not built: swift build -c release")
    print(f"bench-peers: {BIN}; check interval 200 ms, rise/fall 1, gossip every 100 ms to 3 peers (test timings)")
    for n in (3, 5) if "agree" in PARTS else ():
        death, obs = agreement_trials(n)
        print(f"{n} real instances: backend death -> all agree: {ms(death)}")
        print(f"{n} real instances: deciding observation -> all agree: {ms(obs)}")
    sims = simulated() if "sim" in PARTS else []
    if sims:
        print(f"100 simulated members (default timings, gossip 200 ms to 3): observation -> all hold it: {ms(sims)}")
    elif "sim" in PARTS:
        print("100 simulated members: no figures (swift test did not print them)")
    if "steady" not in PARTS:
        return
    rates, cpu = steady_state()
    for i, ((rate, entries, burst), c) in enumerate(zip(rates, cpu), 1):
        print(f"steady state, {MEMBERS} checked members{' with agents' if AGENTS else ''}, 3 instances, default timings: ns{i}: {rate:.0f} B/s gossip out "
              f"({entries} ledger entries), CPU {c * 100:.1f}% of a core (checks included); start-up, B/s per 30 s: {burst}")


if __name__ == "__main__":
    main()
