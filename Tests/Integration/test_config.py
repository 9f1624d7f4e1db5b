"""The operator's command line (issue 19): `--version`, help without arguments, durations in one
format, and `serve --config FILE` with the command line overriding it."""
import os
import re
import shutil
import subprocess

import dns.message
import dns.query

from conftest import BIN, FIXTURE_ZONES, Server, free_port


def run(*args, timeout=30):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)


def test_version_names_the_version_and_the_commit(binary):
    for args in (["--version"], ["version"]):
        r = run(*args)
        assert r.returncode == 0, r.stderr
        assert re.fullmatch(r"meridian \d+\.\d+\.\d+\S* \(commit ([0-9a-f]{12}(-dirty)?|unknown)\)\n", r.stdout), r.stdout
    from conftest import ROOT
    version = open(os.path.join(ROOT, "VERSION")).read().strip()
    assert version in run("--version").stdout


def test_no_arguments_prints_help_and_serves_nothing(binary):
    r = run(timeout=10)
    assert r.returncode == 0
    assert "USAGE: meridian <subcommand>" in r.stdout and "serve" in r.stdout and "version" in r.stdout, r.stdout


def test_serve_takes_a_config_file_and_the_command_line_overrides_it(binary, tmp_path):
    zones = tmp_path / "zones"
    shutil.copytree(FIXTURE_ZONES, zones)
    unused, port = free_port(), free_port()
    cfg = tmp_path / "meridian.yaml"
    cfg.write_text(f"zones: {zones}\nlisten: [\"127.0.0.1:{unused}\"]\nno-admin: true\nrrl_rate: 20\nstartup-timeout: 500ms\n"
                   "tcp-idle-timeout: 1m\nsignature-validity: 14d\nthreads: 1\n")
    assert run("check", "--config", str(cfg)).returncode == 0
    # --listen on the command line replaces the file's list; everything else comes from the file.
    srv = Server.__new__(Server)
    srv.ready_name, srv.port, srv.zones, srv.admin = "example.test.", port, str(zones), None
    srv.log = open(tmp_path / "serve.log", "w")
    srv.proc = subprocess.Popen([BIN, "serve", "--config", str(cfg), "--listen", f"127.0.0.1:{port}"], stdout=srv.log, stderr=subprocess.STDOUT)
    try:
        srv.wait_ready()
        r = dns.query.udp(dns.message.make_query("www.example.test.", "A"), "127.0.0.1", port=port, timeout=2)
        assert r.answer
        log = srv.log_text()
        assert f"127.0.0.1:{unused}" not in log and f"127.0.0.1:{port}" in log, log
        assert "admin API" not in log, log
    finally:
        srv.stop()


def test_a_bad_config_file_is_refused_with_file_and_line(binary, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"zones: {FIXTURE_ZONES}\nbogus: 3\nthreads: [1, 2]\nwatch: maybe\nrrl-rate: 2000000\n")
    r = run("check", "--config", str(cfg))
    assert r.returncode == 1
    for expected in (f"{cfg}:2: unknown option 'bogus'", f"{cfg}:3: threads takes one value, not a list", f"{cfg}:4: watch is a flag: true or false"):
        assert expected in r.stdout, r.stdout
    r = run("serve", "--config", str(cfg))
    assert r.returncode != 0 and f"{cfg}:2: unknown option 'bogus'" in r.stderr, r.stderr
    # Values are checked as serve checks them.
    cfg.write_text(f"zones: {FIXTURE_ZONES}\nrrl-rate: 2000000\n")
    r = run("check", "--config", str(cfg))
    assert r.returncode == 1 and "--rrl-rate must be from 0 (off) to 1000000" in r.stdout, r.stdout


def test_ctl_takes_options_before_the_subcommand_and_the_url_from_the_environment(fresh_server):
    srv = fresh_server()
    url = f"http://127.0.0.1:{srv.admin}"
    before = run("ctl", "--server", url, "--json", "status")
    assert before.returncode == 0 and before.stdout.lstrip().startswith("{"), before.stdout + before.stderr
    env = {**os.environ, "MERIDIAN_ADMIN_URL": url}
    r = subprocess.run([BIN, "ctl", "status"], capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    # A server that cannot be reached is not a usage error: a message and exit status 2.
    r = run("ctl", "--server", "http://127.0.0.1:1", "status")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "cannot reach http://127.0.0.1:1/status" in r.stderr and "Usage" not in r.stderr, r.stderr


def test_bind_errors_name_the_option_and_a_clean_shutdown_logs_no_error(binary, tmp_path):
    import json
    import signal
    zones = tmp_path / "zones"
    shutil.copytree(FIXTURE_ZONES, zones)
    port, admin = free_port(), free_port()
    log = open(tmp_path / "a.log", "w")
    a = subprocess.Popen([BIN, "serve", "--zones", str(zones), "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}"],
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        srv = Server.__new__(Server)
        srv.ready_name, srv.port, srv.proc, srv.admin = "example.test.", port, a, admin
        srv.wait_ready()
        other = free_port()
        r = run("serve", "--zones", str(zones), "--listen", f"127.0.0.1:{other}", "--admin-listen", f"127.0.0.1:{admin}")
        assert r.returncode == 1 and f"--admin-listen 127.0.0.1:{admin}: address already in use" in r.stderr, r.stderr
        assert r.stderr.count("address already in use") == 1, r.stderr  # said once, not twice
        r = run("serve", "--zones", str(zones), "--listen", f"127.0.0.1:{port}", "--no-admin")
        assert r.returncode == 1 and f"--listen 127.0.0.1:{port} (tcp): address already in use" in r.stderr, r.stderr
        # With --log-format json every line is a JSON object, what stops the start included.
        for args in (["--listen", f"127.0.0.1:{port}", "--no-admin"], ["--threads", "0"]):
            r = run("serve", "--zones", str(zones), "--log-format", "json", *args)
            lines = [l for l in r.stderr.splitlines() if l.strip()]
            assert r.returncode != 0 and lines, r.stderr
            for l in lines:
                json.loads(l)
            assert any(json.loads(l)["level"] == "critical" for l in lines), r.stderr
    finally:
        a.send_signal(signal.SIGTERM)
        a.wait(timeout=15)
        log.close()
    text = (tmp_path / "a.log").read_text()
    assert a.returncode == 0, text
    bad = [l for l in text.splitlines() if re.search(r" (error|critical) ", l)]
    assert not bad, bad


def test_ctl_peers_and_stats_on_a_group(binary, tmp_path):
    import threading
    import time
    from test_peers import Group
    g = Group(tmp_path, 3)
    try:
        g.start()
        ns1 = g.instances[0]
        url = f"http://{ns1.ip}:{ns1.admin}"
        r = run("ctl", "--server", url, "peers")
        assert r.returncode == 0, r.stderr
        for name in ("ns2", "ns3"):
            assert re.search(rf"^{name}\s+127\.0\.1\.\d:\d+\s+ALIVE\s+\d+\s+same$", r.stdout, re.M), r.stdout
        stop = threading.Event()

        def ask():
            while not stop.is_set():
                ns1.answer("www.peers.test")
        t = threading.Thread(target=ask, daemon=True)
        t.start()
        try:
            r = run("ctl", "--server", url, "stats", "--interval", "1500ms")
        finally:
            stop.set()
            t.join(timeout=5)
        assert r.returncode == 0, r.stderr
        qps = float(re.search(r"^([0-9.]+) queries/s over", r.stdout, re.M).group(1))
        assert qps > 5, r.stdout
        assert re.search(r"^NOERROR\s+[0-9.]+$", r.stdout, re.M) and re.search(r"^www/a\s+[0-9.]+$", r.stdout, re.M), r.stdout
    finally:
        g.stop()


def test_ctl_keys_shows_states_and_the_ds(fresh_server, tmp_path):
    keys = tmp_path / "keys"
    out = run("keygen", "--zone", "example.test", "--dir", str(keys), "--role", "csk").stdout
    ds = next(l for l in out.splitlines() if " IN DS " in l)
    srv = fresh_server("--keys", str(keys))
    url = f"http://127.0.0.1:{srv.admin}"
    r = run("ctl", "--server", url, "keys")
    assert r.returncode == 0 and re.search(r"^example\.test\.\s+CSK\s+\d+\s+13\s+signing\s+", r.stdout, re.M), r.stdout
    r = run("ctl", "--server", url, "keys", "--ds")
    assert r.returncode == 0 and r.stdout.strip() == ds, (r.stdout, ds)
