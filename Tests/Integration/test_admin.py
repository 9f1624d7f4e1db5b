"""The admin HTTP API, metrics, overrides, reloads and the status page, through the real binary
with real clients (urllib, dnspython, dig, headless Chromium) (issue: operating Meridian)."""
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import dns.message
import dns.query
import dns.rcode

from conftest import BIN, FIXTURE_ZONES, ROOT, Server, free_port
from test_peers import Group, wait_for

TOKEN = "test-admin-token-0123456789"

POOLS = """pools:
  lb:
    names: [lb.example.test.]
    mode: multi-site
    ttl: 20
    sites:
      a: {{members: [192.0.2.1, 192.0.2.2]}}
      b: {{members: [192.0.2.3]}}
    order: {{default: [a, b]}}
  web:
    names: [web.example.test.]
    mode: multi-site
    sites:
      only: {{members: [127.0.3.1]}}
    checks:
      - {{type: tcp, port: {port}, interval: 200ms, timeout: 150ms, rise: 1, fall: 1}}
"""


def zones_with_pools(tmp_path, backend_port=9):
    z = tmp_path / "zones"
    shutil.copytree(FIXTURE_ZONES, z)
    (z / "pools.yaml").write_text(POOLS.format(port=backend_port))
    return str(z)


class Api:
    def __init__(self, port, token=TOKEN, host="127.0.0.1"):
        self.base = f"http://{host}:{port}"
        self.token = token

    def call(self, method, path, body=None, token=None, auth=None):
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        req = urllib.request.Request(self.base + path, data=data, method=method)
        t = self.token if token is None else token
        if auth:
            req.add_header("Authorization", auth)
        elif t:
            req.add_header("Authorization", f"Bearer {t}")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw = r.read()
                return r.status, r.headers.get("Content-Type", ""), raw
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read()

    def json(self, method, path, body=None, **kw):
        status, ctype, raw = self.call(method, path, body, **kw)
        return status, json.loads(raw) if raw else None

    def metrics_text(self):
        status, _, raw = self.call("GET", "/metrics", token="")
        assert status == 200
        return raw.decode()

    def metrics(self):
        status, _, raw = self.call("GET", "/metrics", token="")
        assert status == 200
        out = {}
        for line in raw.decode().splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                out[key] = float(value)
        return out


def metric(m, name, **labels):
    """Sum of a metric's series whose labels include `labels`."""
    total = 0.0
    for key, v in m.items():
        if key.split("{")[0] != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', key))
        if all(have.get(k) == val for k, val in labels.items()):
            total += v
    return total


def start(tmp_path, *args, zones=None, token=True):
    (tmp_path / "token").write_text("# admin token\n" + TOKEN + "\n")
    extra = list(args) + (["--admin-token-file", str(tmp_path / "token")] if token else [])
    s = Server(zones or zones_with_pools(tmp_path), extra)
    return s, Api(s.admin)


def answers(port, name, tcp=False):
    q = dns.message.make_query(name, "A")
    r = (dns.query.tcp if tcp else dns.query.udp)(q, "127.0.0.1", port=port, timeout=2)
    return sorted(rd.address for rrset in r.answer for rd in rrset)


def test_every_endpoint_needs_the_token_and_errors_are_json(binary, tmp_path):
    srv, api = start(tmp_path, "--state", str(tmp_path / "state.txt"))
    try:
        for path in ("/status", "/overrides", "/explain?name=lb.example.test&client=192.0.2.9", "/"):
            status, ctype, raw = api.call("GET", path, token="")
            assert status == 401 and ctype.startswith("application/json") and "token" in json.loads(raw)["error"], (path, raw)
            status, _, raw = api.call("GET", path, token="wrong-token-wrong-token")
            assert status == 401 and json.loads(raw)["error"] == "wrong token"
            assert api.call("GET", path)[0] == 200
        assert api.call("POST", "/reload", token="")[0] == 401
        assert api.call("DELETE", "/overrides/abc", token="")[0] == 401
        # A browser's Basic credentials with the token as the password.
        basic = "Basic " + base64.b64encode(f"admin:{TOKEN}".encode()).decode()
        assert api.call("GET", "/status", auth=basic)[0] == 200
        # /metrics and /healthz are open to the scraper and the supervisor.
        assert api.call("GET", "/healthz", token="")[0] == 200
        status, ctype, _ = api.call("GET", "/metrics", token="")
        assert status == 200 and ctype.startswith("text/plain")
        # Bad input: a JSON error with a message, never an empty 500.
        for method, path, body, code in [
            ("POST", "/overrides", b"not json", 400), ("POST", "/overrides", {"member": "x"}, 400),
            ("POST", "/overrides", {"member": "a b", "state": "down"}, 400), ("POST", "/overrides", {"member": "x", "state": "sideways"}, 400),
            ("POST", "/overrides", {"member": "x", "state": "down", "weight": 400}, 400),
            ("POST", "/overrides", {"member": "x", "state": "down", "expires": "2001-01-01T00:00:00Z"}, 400),
            ("POST", "/overrides", b"{" * 100_000, 413), ("DELETE", "/overrides/000000000000", None, 404),
            ("GET", "/explain?name=lb.example.test", None, 400), ("GET", "/explain?name=x&client=not-an-ip", None, 400),
            ("GET", "/explain?name=x&client=192.0.2.1&type=BOGUS", None, 400), ("GET", "/no/such/path", None, 404),
            ("PUT", "/status", None, 404),
        ]:
            status, ctype, raw = api.call(method, path, body)
            assert status == code and ctype.startswith("application/json"), (method, path, status, raw[:200])
            assert json.loads(raw)["error"], raw
        # The server still answers, and nothing changed.
        assert api.json("GET", "/overrides")[1] == []
        assert answers(srv.port, "lb.example.test.") == ["192.0.2.1", "192.0.2.2"]
    finally:
        srv.stop()


def test_no_token_on_a_public_address_refuses_to_start(binary, tmp_path):
    port = free_port()
    r = subprocess.run([binary, "serve", "--zones", FIXTURE_ZONES, "--listen", f"127.0.0.1:{port}", "--admin-listen", f"0.0.0.0:{free_port()}"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and "needs --admin-token-file" in r.stderr, r.stderr


def test_status_and_explain_from_the_live_snapshot(binary, tmp_path):
    srv, api = start(tmp_path)
    try:
        status, s = api.json("GET", "/status")
        assert status == 200 and s["generation"] >= 1 and s["zones"][0]["name"] == "example.test."
        www = next(p for p in s["pools"] if p["name"] == "lb")
        assert [site["name"] for site in www["sites"]] == ["a", "b"]
        m = www["sites"][0]["members"][0]
        assert m["id"] == "lb/a/192.0.2.1" and m["state"] == "up" and m["effectiveWeight"] > 0 and m["decidedBy"]
        # Nothing listens on the discard port: the check says why, with its time.
        wait_for(lambda: next(p for p in api.json("GET", "/status")[1]["pools"] if p["name"] == "web")["sites"][0]["members"][0]["state"] == "down", 10, "web down")
        member = next(p for p in api.json("GET", "/status")[1]["pools"] if p["name"] == "web")["sites"][0]["members"][0]
        assert member["checks"] and member["checks"][0]["up"] is False and member["checks"][0]["at"] > 0
        # The first view had it up (no result yet); the check's failure is its transition.
        assert member["transitions"] and member["transitions"][-1]["to"] == "down" and "check tcp:9" in member["transitions"][-1]["reason"]
        status, e = api.json("GET", "/explain?name=lb.example.test&type=A&client=192.0.2.9&ecs=10.1.0.0/24")
        assert status == 200 and e["pool"] == "lb" and e["rcode"] == "NOERROR" and e["ecsScope"] == 0
        assert any("site order: a, b" in line for line in e["trace"]) and len(e["answer"]) == 2
        # The command line says the same.
        out = subprocess.run([BIN, "ctl", "explain", "lb.example.test", "--client", "192.0.2.9", "--server", api.base],
                             capture_output=True, text=True, timeout=20, env={**os.environ, "MERIDIAN_ADMIN_TOKEN": TOKEN})
        assert out.returncode == 0 and "site order: a, b" in out.stdout and "answer: NOERROR" in out.stdout, out.stdout + out.stderr
    finally:
        srv.stop()


def test_overrides_apply_within_a_second_survive_a_restart_and_expire(binary, tmp_path):
    state = tmp_path / "state.txt"
    state.write_text("# hand-written lines stay\n")
    zones = zones_with_pools(tmp_path)
    srv, api = start(tmp_path, "--state", str(state), zones=zones)
    try:
        before = api.metrics()
        t0 = time.time()
        status, o = api.json("POST", "/overrides", {"member": "lb/a/*", "state": "down", "reason": "fibre cut"})
        assert status == 201 and o["matches"] == 2 and o["state"] == "down" and o["reason"] == "fibre cut", o
        t = wait_for(lambda: answers(srv.port, "lb.example.test.") == ["192.0.2.3"], 1.0, "override applied within a second")
        print(f"override applied in {(t - t0) * 1000:.0f} ms")
        text = state.read_text()
        assert text.startswith("# hand-written lines stay\n") and 'lb/a/* DOWN set=' in text and 'reason="fibre cut"' in text
        # It is counted, and shown.
        wait_for(lambda: metric(api.metrics(), "meridian_member_transitions_total", pool="lb", to="down")
                 >= metric(before, "meridian_member_transitions_total", pool="lb", to="down") + 2, 3, "transitions counted")
        s = api.json("GET", "/status")[1]
        member = next(p for p in s["pools"] if p["name"] == "lb")["sites"][0]["members"][0]
        assert member["state"] == "down" and "fibre cut" in member["decidedBy"] and member["transitions"][-1]["to"] == "down"
        # A drain that lapses by itself.
        status, drain = api.json("POST", "/overrides", {"member": "lb/b/*", "state": "drain", "expires_in": 2})
        assert status == 201 and drain["expires"]
        srv.stop()
        srv2 = Server(zones, ["--state", str(state), "--admin-token-file", str(tmp_path / "token")])
        api2 = Api(srv2.admin)
        try:
            overrides = api2.json("GET", "/overrides")[1]
            assert any(x["member"] == "lb/a/*" and x["reason"] == "fibre cut" for x in overrides), overrides
            # The drain expired: gone from the group and from the file.
            wait_for(lambda: all(x["member"] != "lb/b/*" for x in api2.json("GET", "/overrides")[1]), 5, "drain expired")
            wait_for(lambda: "lb/b/*" not in state.read_text(), 5, "expired line dropped from the file")
            status, gone = api2.json("DELETE", f"/overrides/{o['id']}")
            assert status == 200 and gone["member"] == "lb/a/*"
            wait_for(lambda: answers(srv2.port, "lb.example.test.") == ["192.0.2.1", "192.0.2.2"], 1.0, "removal applied")
            assert "lb/a/*" not in state.read_text() and state.read_text().startswith("# hand-written lines stay")
            assert api2.call("DELETE", f"/overrides/{o['id']}")[0] == 404
        finally:
            srv2.stop()
    finally:
        srv.stop()


def test_override_set_on_one_instance_reaches_every_peer_and_removal_from_another(binary, tmp_path):
    g = Group(tmp_path, 2, state_files=True)
    try:
        g.start()
        apis = [Api(i.admin, token="", host=i.ip) for i in g.instances]
        m = apis[1].metrics()
        assert metric(m, "meridian_gossip_messages_total", direction="in") > 0 and metric(m, "meridian_gossip_bytes_total", direction="out") > 0
        assert metric(m, "meridian_gossip_live_members") == 2
        status, o = apis[0].json("POST", "/overrides", {"member": "www/a/*", "state": "down", "reason": "maintenance"})
        assert status == 201
        wait_for(lambda: all(i.answer("www.peers.test")[0] in ("127.0.2.3", "127.0.2.4") for i in g.instances), 5, "override on every instance")
        assert any(x["id"] == o["id"] and x["setBy"] == "ns1" for x in apis[1].json("GET", "/overrides")[1])
        # Removed through the other instance: gone everywhere, and ns1 drops it from its file.
        assert apis[1].json("DELETE", f"/overrides/{o['id']}")[0] == 200
        wait_for(lambda: all(i.answer("www.peers.test")[0] in ("127.0.2.1", "127.0.2.2") for i in g.instances), 5, "removal on every instance")
        wait_for(lambda: "www/a/*" not in (tmp_path / "state-0.txt").read_text(), 5, "ns1 dropped the overruled line")
        # ns1 restarts: the override does not come back.
        g.instances[0].stop()
        g.instances[0].start()
        # It answers only after its first merged view: wait for the line that says so, then check.
        wait_for(lambda: g.instances[0].text().count("health view:") >= 2, 10, "ns1's first view after the restart")
        assert all(i.answer("www.peers.test")[0] in ("127.0.2.1", "127.0.2.2") for i in g.instances)
    finally:
        g.stop()


def test_metrics_move_with_queries_reloads_and_checks(binary, tmp_path):
    srv, api = start(tmp_path)
    try:
        before = api.metrics()
        for _ in range(5):
            answers(srv.port, "lb.example.test.")
        answers(srv.port, "lb.example.test.", tcp=True)
        q = dns.message.make_query("nope.example.test.", "AAAA")
        assert dns.query.udp(q, "127.0.0.1", port=srv.port, timeout=2).rcode() == dns.rcode.NXDOMAIN
        # Counters are handed over once a second: wait for them, not for a second.
        wait_for(lambda: metric(api.metrics(), "meridian_queries_total", rcode="NXDOMAIN", qtype="AAAA") >= 1
                 and metric(api.metrics(), "meridian_queries_total", transport="tcp", qtype="A") >= 1, 5, "query counters handed over")
        m = api.metrics()
        assert metric(m, "meridian_queries_total", transport="udp", rcode="NOERROR", qtype="A") >= metric(before, "meridian_queries_total", transport="udp", rcode="NOERROR", qtype="A") + 5
        assert metric(m, "meridian_queries_total", transport="tcp", qtype="A") >= 1
        assert metric(m, "meridian_queries_total", rcode="NXDOMAIN", qtype="AAAA") >= 1
        assert metric(m, "meridian_pool_answers_total", pool="lb", site="a", route="site", fallback="no") >= 6
        assert metric(m, "meridian_members", pool="lb", state="up") == 3
        assert metric(m, "meridian_health_checks_total", type="tcp", result="fail") >= 1
        assert metric(m, "meridian_health_check_duration_seconds_count", type="tcp") >= 1
        assert "meridian_tcp_connections" in m and metric(m, "meridian_config_generation") >= 1
        # Every metric has # HELP and # TYPE, and the exposition passes Prometheus' own linter.
        m = api.metrics_text()
        families = {line.split()[2] for line in m.splitlines() if line.startswith("# TYPE ")}
        helped = {line.split()[2] for line in m.splitlines() if line.startswith("# HELP ")}
        assert families and families == helped, families ^ helped
        lint = subprocess.run(["promtool", "check", "metrics"], input=m, capture_output=True, text=True, timeout=20)
        assert lint.returncode == 0, lint.stdout + lint.stderr
        assert re.search(r'meridian_build_info\{(commit="[^"]+",version="[^"]+"|version="[^"]+",commit="[^"]+")\} 1', m), m[:3000]
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds"):
            assert re.search(rf"^{name} [0-9.e+]+$", m, re.M), name
        m = api.metrics()
        # A reload that works and one that does not: both counted; the failure says file:line.
        status, r = api.json("POST", "/reload")
        assert status == 200 and r["ok"]
        zone = os.path.join(srv.zones, "example.test.zone")
        good = open(zone).read()
        with open(zone, "a") as f:
            f.write("broken IN A 999.1.1.1\n")
        status, r = api.json("POST", "/reload")
        assert status == 422 and not r["ok"] and any(re.search(r"example\.test\.zone:\d+: ", d) for d in r["diagnostics"]), r
        with open(zone, "w") as f:
            f.write(good)
        m = api.metrics()
        assert metric(m, "meridian_reloads_total", result="ok") >= 1 and metric(m, "meridian_reloads_total", result="failed") >= 1
        assert answers(srv.port, "lb.example.test.") == ["192.0.2.1", "192.0.2.2"]
        out = subprocess.run([BIN, "ctl", "reload", "--server", api.base, "--token-file", str(tmp_path / "token")], capture_output=True, text=True, timeout=20)
        # Three configurations: the start, the good reload and this one (the failed one is none).
        assert out.returncode == 0 and "reloaded: configuration generation 3" in out.stdout, out.stdout + out.stderr
    finally:
        srv.stop()


def test_counters_exist_at_zero_from_the_start(binary, tmp_path):
    """Before any query every counter family is there (at zero), with the label sets a
    rate() would need: each rcode and qtype per transport, each pool's sites and its all-down
    route, each pool's transitions; the reload gauges say when the configuration in force was
    loaded; promtool's linter passes."""
    import time as _time
    srv, api = start(tmp_path)
    try:
        wait_for(lambda: "meridian_pool_answers_total" in api.metrics_text(), 5, "pool counters made")
        text = api.metrics_text()
        m = api.metrics()
        catalog = open(os.path.join(ROOT, "Sources", "AdminAPI", "MetricCatalog.swift")).read()
        counters = set(re.findall(r'"(meridian_[a-z_]+_total)":', catalog))
        # Gossip and dnstap counters exist only where there is a group or a log (test_peers and
        # test_dnstap cover them).
        missing = {c for c in counters if not c.startswith(("meridian_gossip_", "meridian_dnstap_")) and not re.search(rf"^{c}[{{ ]", text, re.M)}
        assert not missing, missing
        for labels in ({"transport": "udp", "rcode": "SERVFAIL", "qtype": "AAAA"}, {"transport": "tcp", "rcode": "REFUSED", "qtype": "other"}):
            assert metric(m, "meridian_queries_total", **labels) == 0 and any(
                k.startswith("meridian_queries_total{") and all(f'{a}="{b}"' in k for a, b in labels.items()) for k in m), labels
        for site in ("a", "b"):
            assert f'meridian_pool_answers_total{{fallback="no",pool="lb",route="site",site="{site}"}}' in m or any(
                k.startswith("meridian_pool_answers_total{") and f'site="{site}"' in k and 'pool="lb"' in k for k in m), site
        assert any(k.startswith("meridian_pool_answers_total{") and 'route="all-down-fail-open"' in k and 'pool="web"' in k for k in m)
        assert any(k.startswith("meridian_member_transitions_total{") and 'pool="lb"' in k and 'to="drain"' in k for k in m)
        assert any(k.startswith("meridian_rrl_responses_total{") and 'action="slipped"' in k for k in m)
        assert metric(m, "meridian_config_last_reload_successful") == 1
        assert abs(metric(m, "meridian_config_last_reload_success_timestamp_seconds") - _time.time()) < 120
        assert metric(m, "meridian_site_usable", pool="lb", site="a") == 1
        lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=20)
        assert lint.returncode == 0, lint.stdout + lint.stderr
    finally:
        srv.stop()


def test_one_zone_reloads_alone(binary, tmp_path):
    """`ctl reload ZONE` reads that zone's file again and nothing else: a name added there is
    answered while another zone file is broken and the pool file changed (neither is read);
    a full reload then fails on the broken file and says so in the metrics; an unknown zone is
    refused with the served zones listed."""
    srv, api = start(tmp_path)
    zones = srv.zones
    env = dict(os.environ, MERIDIAN_ADMIN_URL=api.base)

    def ctl(*args):
        return subprocess.run([BIN, "ctl", "--token-file", str(tmp_path / "token"), *args], capture_output=True, text=True, timeout=20, env=env)

    try:
        with open(os.path.join(zones, "example.test.zone"), "a") as f:
            f.write("zr IN A 192.0.2.77\n")
        with open(os.path.join(zones, "sub.example.test.zone"), "a") as f:
            f.write("broken IN A 999.1.1.1\n")
        pools = os.path.join(zones, "pools.yaml")
        with open(pools) as f:
            text = f.read()
        with open(pools, "w") as f:
            f.write(text.replace("192.0.2.1, 192.0.2.2", "192.0.2.5"))
        r = ctl("reload", "example.test")
        assert r.returncode == 0 and "reloaded" in r.stdout, r.stdout + r.stderr
        assert answers(srv.port, "zr.example.test.") == ["192.0.2.77"]
        assert answers(srv.port, "lb.example.test.") == ["192.0.2.1", "192.0.2.2"]
        assert answers(srv.port, "www.sub.example.test.") == ["192.0.2.211"]
        r = ctl("reload")
        assert r.returncode == 1 and re.search(r"sub\.example\.test\.zone:\d+: ", r.stdout), r.stdout + r.stderr
        m = api.metrics()
        assert metric(m, "meridian_config_last_reload_successful") == 0
        r = ctl("reload", "nope.test")
        assert r.returncode == 1 and "nope.test. is not a served zone" in r.stdout, r.stdout + r.stderr
        status, body = api.json("POST", "/reload?zone=example.test,sub.example.test")
        assert status == 422 and any("sub.example.test.zone" in d for d in body["diagnostics"]), body
        assert answers(srv.port, "zr.example.test.") == ["192.0.2.77"]
    finally:
        srv.stop()


def test_ctl_drain_status_undrain(binary, tmp_path):
    srv, api = start(tmp_path, "--state", str(tmp_path / "state.txt"))
    env = {**os.environ, "MERIDIAN_ADMIN_TOKEN": TOKEN}

    def ctl(*args):
        r = subprocess.run([BIN, "ctl", *args, "--server", api.base], capture_output=True, text=True, timeout=20, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    try:
        assert "DRAIN" in ctl("drain", "lb/a/192.0.2.1", "--reason", "kernel update", "--for", "600")
        status = ctl("status")
        assert re.search(r"lb/a/192\.0\.2\.1\s+192\.0\.2\.1\s+DRAIN", status) and "kernel update" in status, status
        data = json.loads(ctl("overrides", "--json"))
        assert data[0]["member"] == "lb/a/192.0.2.1" and data[0]["state"] == "drain"
        wait_for(lambda: answers(srv.port, "lb.example.test.") == ["192.0.2.2"], 1.0, "drain applied")
        assert "override removed" in ctl("undrain", "lb/a/192.0.2.1")
        wait_for(lambda: answers(srv.port, "lb.example.test.") == ["192.0.2.1", "192.0.2.2"], 1.0, "undrain applied")
        assert "UP" in ctl("override", "lb/b/*", "up", "--weight", "50")
        r = subprocess.run([BIN, "ctl", "status", "--server", api.base], capture_output=True, text=True, timeout=20, env={**os.environ, "MERIDIAN_ADMIN_TOKEN": "wrong-token-wrong"})
        assert r.returncode == 3 and "HTTP 401" in r.stderr
    finally:
        srv.stop()


def test_watch_reloads_twenty_times_under_load_without_a_lost_or_wrong_answer(binary, tmp_path):
    zones = zones_with_pools(tmp_path)
    srv, api = start(tmp_path, "--watch", zones=zones)
    zone = os.path.join(zones, "example.test.zone")
    base = open(zone).read()
    stop = threading.Event()
    stats = {"udp": 0, "tcp": 0, "lost": 0, "wrong": []}

    def load(tcp):
        q = dns.message.make_query("lb.example.test.", "A")
        v = dns.message.make_query("version.example.test.", "TXT")
        while not stop.is_set():
            try:
                r = (dns.query.tcp if tcp else dns.query.udp)(q, "127.0.0.1", port=srv.port, timeout=2)
                got = sorted(rd.address for rrset in r.answer for rd in rrset)
                if got != ["192.0.2.1", "192.0.2.2"]:
                    stats["wrong"].append(got)
                r = (dns.query.tcp if tcp else dns.query.udp)(v, "127.0.0.1", port=srv.port, timeout=2)
                txt = [b"".join(rd.strings).decode() for rrset in r.answer for rd in rrset]
                if len(txt) != 1 or not re.fullmatch(r"v\d+", txt[0]):
                    stats["wrong"].append(txt)
                stats["tcp" if tcp else "udp"] += 2
            except Exception:
                stats["lost"] += 1
            time.sleep(0.01)

    threads = [threading.Thread(target=load, args=(t,)) for t in (False, True)]
    try:
        with open(zone, "w") as f:
            f.write(base + "version IN TXT \"v0\"\n")
        wait_for(lambda: api.json("POST", "/reload")[1]["ok"], 5, "first version loaded")
        for t in threads:
            t.start()
        reloads0 = metric(api.metrics(), "meridian_reloads_total", result="ok")
        for i in range(1, 21):
            with open(zone, "w") as f:
                f.write(base + f"version IN TXT \"v{i}\"\n")
            wait_for(lambda: f"v{i}" in str(dns.query.udp(dns.message.make_query("version.example.test.", "TXT"), "127.0.0.1", port=srv.port, timeout=2).answer), 5, f"reload {i} seen")
        stop.set()
        for t in threads:
            t.join(timeout=10)
        reloads = metric(api.metrics(), "meridian_reloads_total", result="ok") - reloads0
        print(f"watch: {reloads:.0f} reloads, {stats['udp']} UDP and {stats['tcp']} TCP answers, {stats['lost']} lost, {len(stats['wrong'])} wrong")
        assert reloads >= 20
        assert stats["lost"] == 0 and stats["wrong"] == [], stats
        assert stats["udp"] > 100 and stats["tcp"] > 100
    finally:
        stop.set()
        srv.stop()


def chromium(*args, timeout=60):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "chromium is not installed (Tools/setup.sh installs it)"
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={CHROME_PROFILE}", *args],
                          capture_output=True, text=True, timeout=timeout)


CHROME_PROFILE = os.path.join(ROOT, ".build", "chromium-profile")


class DevTools:
    """Headless Chromium driven over its DevTools protocol: load a page in a window of a given
    size, read an element's position, take a screenshot. Bounded waits only."""

    def __init__(self, width, height):
        self.size = (width, height)

    def __enter__(self):
        import json
        import urllib.request
        from websockets.sync.client import connect
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        port = free_port()
        self.proc = subprocess.Popen([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--remote-debugging-port={port}",
                                      f"--user-data-dir={CHROME_PROFILE}-cdp", f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        ws = None
        while time.time() < deadline and ws is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=1) as r:
                    ws = next(t["webSocketDebuggerUrl"] for t in json.load(r) if t["type"] == "page")
            except (OSError, StopIteration, ValueError):
                time.sleep(0.1)
        assert ws, "Chromium's DevTools endpoint did not come up"
        self.connection = connect(ws, max_size=None, open_timeout=10)
        self.ws = self.connection.__enter__()
        self.id = 0
        self.call("Emulation.setDeviceMetricsOverride", width=self.size[0], height=self.size[1], deviceScaleFactor=1, mobile=False)
        return self

    def call(self, method, **params):
        import json
        self.id += 1
        self.ws.send(json.dumps({"id": self.id, "method": method, "params": params}))
        deadline = time.time() + 20
        while time.time() < deadline:
            m = json.loads(self.ws.recv(timeout=20))
            if m.get("id") == self.id:
                return m.get("result", {})
        raise AssertionError(f"no reply to {method}")

    def position(self, url, selector):
        """The element's box in the viewport once the page has loaded (None if absent)."""
        import json
        self.call("Page.navigate", url=url)
        deadline = time.time() + 20
        while time.time() < deadline:
            r = self.call("Runtime.evaluate", returnByValue=True, expression=(
                f"(() => {{ if (document.readyState !== 'complete') return 'loading'; const e = document.querySelector({json.dumps(selector)});"
                " if (!e) return null; const b = e.getBoundingClientRect(); return {top: b.top, bottom: b.bottom}; })()"))
            value = r.get("result", {}).get("value")
            if value != "loading":
                return value
            time.sleep(0.1)
        return None

    def evaluate(self, expression):
        return self.call("Runtime.evaluate", returnByValue=True, expression=expression).get("result", {}).get("value")

    def wait(self, expression, seconds, what):
        """Until `expression` is true in the page (it may navigate meanwhile)."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.evaluate(f"(() => {{ try {{ return document.readyState === 'complete' && !!({expression}); }} catch (e) {{ return false; }} }})()"):
                return
            time.sleep(0.1)
        raise AssertionError(f"{what}: not within {seconds} s; page: {self.evaluate('document.body && document.body.innerText')!r:.500}")

    def screenshot(self, path):
        import base64
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def __exit__(self, *exc):
        try:
            self.connection.__exit__(None, None, None)
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def test_status_page_in_chromium_shows_a_member_going_down(binary, tmp_path):
    backend_port = free_port()
    backend = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    backend.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    backend.bind(("127.0.3.1", backend_port))
    backend.listen(64)
    accepting = threading.Event()
    accepting.set()

    def serve_backend():
        backend.settimeout(0.2)
        while accepting.is_set():
            try:
                c, _ = backend.accept()
                c.close()
            except OSError:
                pass

    t = threading.Thread(target=serve_backend, daemon=True)
    t.start()
    srv, api = start(tmp_path, zones=zones_with_pools(tmp_path, backend_port))
    url = f"http://admin:{TOKEN}@127.0.0.1:{srv.admin}/"
    try:
        wait_for(lambda: 'data-member="web/only/127.0.3.1" data-state="up"' in chromium("--dump-dom", url).stdout, 20, "page shows web up")
        accepting.clear()
        t.join(timeout=5)
        backend.close()
        wait_for(lambda: 'data-member="web/only/127.0.3.1" data-state="down"' in chromium("--dump-dom", url).stdout, 20, "page shows web down")
        dom = chromium("--dump-dom", url).stdout
        assert re.search(r'<tr class="member member-down" data-member="web/only/127.0.3.1" data-state="down">', dom)
        assert "up → down" in dom
        # Problems first: the summary counts it, and the problem list names it, with since when.
        assert re.search(r'<p id="summary" class="ill">[^<]*1 member down', dom), dom[:3000]
        assert re.search(r'data-problem="member-down" data-subject="web/only/127.0.3.1">web/only/127.0.3.1 is down since [0-9T:-]+Z \([0-9.]+ s ago\)', dom), dom[:3000]
        assert re.search(r"checked [0-9.]+ (s|min) ago", dom)
        # In a 1400x900 window it is on the first screen (positions read from Chromium itself).
        with DevTools(1400, 900) as tab:
            box = tab.position(url, '[data-problem="member-down"]')
            assert box and 0 <= box["top"] and box["bottom"] <= 900, box
            shot = os.path.join(ROOT, ".build", "status-page-down.png")
            tab.screenshot(shot)
        assert os.path.getsize(shot) > 10_000
        print(f"screenshot of the page with web/only/127.0.3.1 down: {shot} (the problem at y={box['top']:.0f}..{box['bottom']:.0f})")
        # A reload that fails shows its file:line on the page.
        zone = os.path.join(srv.zones, "example.test.zone")
        with open(zone, "a") as f:
            f.write("broken IN A 999.1.1.1\n")
        status, _ = api.json("POST", "/reload")
        assert status == 422
        dom = chromium("--dump-dom", url).stdout
        assert 'data-problem="reload"' in dom and re.search(r'id="reload-errors">[^<]*example\.test\.zone:\d+: ', dom), dom[:3000]
        # Without the token the page is refused.
        for bad in (f"http://admin:nope@127.0.0.1:{srv.admin}/", f"http://127.0.0.1:{srv.admin}/"):
            r = chromium("--dump-dom", bad)
            assert "data-member" not in r.stdout and ("ERR_INVALID_AUTH_CREDENTIALS" in r.stderr or "token" in r.stdout), r.stderr[-300:]
    finally:
        accepting.clear()
        srv.stop()


def test_drain_and_undrain_from_the_page_with_confirmation_and_csrf(binary, tmp_path):
    """In Chromium: a member's form drains it (a reason is required, a confirmation page says
    what it matches first), the page shows it drained, the override's remove button undrains
    it after its own confirmation; sparklines show each pool's answers per second. A post
    without the page's CSRF token, or from another origin, is refused and changes nothing."""
    state = tmp_path / "state.txt"
    state.write_text("")
    srv, api = start(tmp_path, "--state", str(state))
    auth = "Basic " + base64.b64encode(f"admin:{TOKEN}".encode()).decode()
    base = f"http://127.0.0.1:{srv.admin}"
    member = "lb/a/192.0.2.1"
    try:
        for _ in range(30):
            answers(srv.port, "lb.example.test.")
        with DevTools(1400, 900) as tab:
            tab.call("Network.enable")
            tab.call("Network.setExtraHTTPHeaders", headers={"Authorization": auth})
            tab.call("Page.navigate", url=f"{base}/ui/member?id={urllib.parse.quote(member, safe='')}")
            tab.wait("document.querySelector('#override-form')", 20, "the member's form")
            # Without a reason the browser will not post (required); with one, a confirmation first.
            assert tab.evaluate("document.querySelector('#override-form').checkValidity()") is False
            tab.evaluate("document.querySelector('[name=reason]').value = 'kernel update'; document.querySelector('[name=state]').value = 'drain';"
                         "document.querySelector('#override-form').submit()")
            tab.wait("document.querySelector('#confirm-text')", 20, "the confirmation page")
            text = tab.evaluate("document.querySelector('#confirm-text').innerText")
            assert "DRAIN" in text and "1 member(s)" in text and member in text and "kernel update" in text, text
            assert api.json("GET", "/overrides")[1] == [], "nothing changes before the confirmation"
            tab.evaluate("document.querySelector('#confirm').click()")
            tab.wait(f"document.querySelector('[data-member=\"{member}\"][data-state=\"drain\"]')", 20, "the page shows it drained")
            overrides = api.json("GET", "/overrides")[1]
            assert len(overrides) == 1 and overrides[0]["reason"] == "kernel update" and overrides[0]["state"] == "drain", overrides
            # Undrain: the override's remove button, then its confirmation.
            tab.evaluate("document.querySelector('form.remove button').click()")
            tab.wait("document.querySelector('#confirm-text')", 20, "the removal's confirmation")
            assert "Remove the override DRAIN" in tab.evaluate("document.querySelector('#confirm-text').innerText")
            tab.evaluate("document.querySelector('#confirm').click()")
            tab.wait(f"document.querySelector('[data-member=\"{member}\"][data-state=\"up\"]')", 20, "the page shows it up again")
            assert api.json("GET", "/overrides")[1] == []
            # Sparklines: two readings of the counters (10 s apart) give a rate for the pool.
            for _ in range(30):
                answers(srv.port, "lb.example.test.")
            def rate():
                tab.call("Page.navigate", url=base + "/")
                tab.wait("document.querySelector('#summary')", 20, "the status page")
                return tab.evaluate("(() => { const e = document.querySelector('[data-pool-rate=\"lb\"] .spark-rate'); return e ? parseFloat(e.dataset.rate) : -1; })()")
            wait_for(lambda: rate() > 0, 30, "a sparkline with a rate for pool lb")
            assert tab.evaluate("!!document.querySelector('[data-pool-rate=\"lb\"] svg polyline')")
        # Forged posts: no token, a wrong one, another origin, a cross-site fetch.
        body = f"member={urllib.parse.quote(member)}&state=down&reason=x&confirm=yes"
        token_ok = re.search(r'name="csrf" value="([0-9a-f]+)"', api.call("GET", f"/ui/member?id={urllib.parse.quote(member, safe='')}")[2].decode()).group(1)
        for extra, headers in (("", {}), ("&csrf=00", {}), (f"&csrf={token_ok}", {"Origin": "http://evil.example"}),
                               (f"&csrf={token_ok}", {"Sec-Fetch-Site": "cross-site"})):
            req = urllib.request.Request(base + "/ui/override", data=(body + extra).encode(), method="POST",
                                         headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-www-form-urlencoded", **headers})
            try:
                urllib.request.urlopen(req, timeout=10)
                raise AssertionError(f"accepted: {extra} {headers}")
            except urllib.error.HTTPError as e:
                assert e.code == 403 and re.search(r"CSRF token|refused", e.read().decode()), (extra, headers)
        assert api.json("GET", "/overrides")[1] == []
        # A glob that matches nothing is refused on the confirmation step.
        req = urllib.request.Request(base + "/ui/override", data=f"member=nope/*&state=down&reason=x&csrf={token_ok}".encode(), method="POST",
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-www-form-urlencoded"})
        try:
            urllib.request.urlopen(req, timeout=10)
            raise AssertionError("a glob matching nothing was offered for confirmation")
        except urllib.error.HTTPError as e:
            assert e.code == 404 and "matches no member" in e.read().decode()
    finally:
        srv.stop()


def test_json_logs_and_user_switch(binary, tmp_path):
    """--log-format json writes one JSON object per line; --user drops root once bound (as root),
    and is refused with a clear message otherwise."""
    zones = zones_with_pools(tmp_path)
    os.chmod(tmp_path, 0o755)
    os.chmod(zones, 0o755)
    args = ["--log-format", "json"]
    root = os.geteuid() == 0
    if root:
        args += ["--user", "nobody"]
    srv = Server(zones, args)
    try:
        assert answers(srv.port, "lb.example.test.") == ["192.0.2.1", "192.0.2.2"]
        def uids():
            """Every thread's real, effective, saved and file-system uid (the main thread
            libdispatch parks included)."""
            out = set()
            for t in os.listdir(f"/proc/{srv.proc.pid}/task"):
                for line in open(f"/proc/{srv.proc.pid}/task/{t}/status"):
                    if line.startswith("Uid:"):
                        out.update(int(u) for u in line.split()[1:])
            return out
        if root:
            import pwd
            nobody = pwd.getpwnam("nobody").pw_uid
            wait_for(lambda: uids() == {nobody}, 5, "every thread switched to nobody")
            assert answers(srv.port, "lb.example.test.", tcp=True) == ["192.0.2.1", "192.0.2.2"]
        assert api_up(srv)
    finally:
        srv.stop()
    lines = [line for line in open(srv.log.name) if line.strip()]
    assert lines and all(json.loads(line)["msg"] for line in lines), lines[:3]
    first = json.loads(lines[0])
    assert {"ts", "level", "label", "msg"} <= set(first) and first["ts"].endswith("Z")
    if root:
        assert any("running as nobody" in json.loads(line)["msg"] for line in lines)
    else:
        r = subprocess.run([binary, "serve", "--zones", zones, "--listen", f"127.0.0.1:{free_port()}", "--no-admin", "--user", "root"],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode != 0 and "only root can switch" in r.stderr


def api_up(srv):
    return Api(srv.admin).call("GET", "/healthz", token="")[0] == 200


def test_admin_api_over_https(binary, tmp_path):
    cert, key = tmp_path / "admin.crt", tmp_path / "admin.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    srv, api = start(tmp_path, "--admin-tls-cert", str(cert), "--admin-tls-key", str(key))
    try:
        url = f"https://127.0.0.1:{srv.admin}"
        r = subprocess.run(["curl", "-sS", "--cacert", str(cert), "-H", f"Authorization: Bearer {TOKEN}", url + "/status"],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0 and json.loads(r.stdout)["zones"], r.stderr
        # Plain HTTP to the TLS port gets nothing useful; an unknown CA is refused by the client.
        assert subprocess.run(["curl", "-sS", url + "/healthz"], capture_output=True, timeout=20).returncode != 0
        out = subprocess.run([BIN, "ctl", "status", "--server", url, "--cacert", str(cert)], capture_output=True, text=True, timeout=20,
                             env={**os.environ, "MERIDIAN_ADMIN_TOKEN": TOKEN})
        assert out.returncode == 0 and "lb/a/192.0.2.1" in out.stdout, out.stdout + out.stderr
    finally:
        srv.stop()
    # A key without its certificate is refused at start.
    r = subprocess.run([binary, "serve", "--zones", FIXTURE_ZONES, "--listen", f"127.0.0.1:{free_port()}", "--admin-tls-key", str(key)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and "go together" in r.stderr
