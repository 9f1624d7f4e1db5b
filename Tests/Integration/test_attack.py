"""The short pass of Tools/attack.py (issue 18, "Proof"): the wire fuzzer over UDP and TCP,
admin and gossip floods, and spoofed RRL floods against the real binary, 24 s in all. The long
pass is by hand: `python3 Tools/attack.py --seconds 600`."""
import json
import os
import subprocess
import sys

from conftest import BIN, ROOT


def test_attack_script_short_pass(binary, tmp_path):
    out = tmp_path / "attack.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "Tools", "attack.py"), "--binary", BIN, "--seconds", "24",
                        "--seed", "18", "--json", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    report = json.loads(out.read_text())
    phases = report["phases"]
    assert phases["wire"]["datagrams"] > 1000 and phases["wire"]["checks"] > 5, phases
    assert phases["admin"]["healthz_checks"] > 0 and phases["admin"]["lockouts"] == 0, phases
    assert phases["gossip"]["dropped_counted"] > 0, phases
    if os.geteuid() == 0:
        assert sum(phases["rrl"]["floods"].values()) >= 2, phases
