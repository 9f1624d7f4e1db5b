"""The monitoring material in deploy/ (issue 19): the alert rules pass promtool's checks and
their unit tests."""
import os
import subprocess

from conftest import ROOT

RULES = os.path.join(ROOT, "deploy", "prometheus")


def test_alert_rules_check_and_pass_their_unit_tests():
    check = subprocess.run(["promtool", "check", "rules", "meridian-rules.yml"], cwd=RULES, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    tests = subprocess.run(["promtool", "test", "rules", "meridian-rules.test.yml"], cwd=RULES, capture_output=True, text=True, timeout=60)
    assert tests.returncode == 0, tests.stdout + tests.stderr


def test_grafana_dashboard_queries_only_exported_metrics(tmp_path):
    """Every query of the dashboard is valid PromQL to promtool and names only metrics that
    Meridian exports (MetricCatalog)."""
    import json
    import re
    catalog = open(os.path.join(ROOT, "Sources", "AdminAPI", "MetricCatalog.swift")).read()
    exported = set(re.findall(r'"(meridian_[a-z_]+)":', catalog))
    dash = json.load(open(os.path.join(ROOT, "deploy", "grafana", "meridian.json")))
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    for e in exprs:
        for name in re.findall(r"\b(meridian_[a-z_]+)", e):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert base in exported, (name, e)
    used = {re.sub(r"_(bucket|sum|count)$", "", n) for e in exprs for n in re.findall(r"\b(meridian_[a-z_]+)", e)}
    assert len(used) >= 15, used
    # promtool parses each query (as a recording rule).
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:panel_{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    (tmp_path / "dashboard.yml").write_text(json.dumps(rules))
    check = subprocess.run(["promtool", "check", "rules", str(tmp_path / "dashboard.yml")], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_prometheus_scrapes_a_group_and_the_member_down_alert_fires(binary, tmp_path):
    """Debian's Prometheus scrapes a running three-instance group with the shipped rules (their
    `for:` shortened to 2 s so the test is short); a backend is killed and Prometheus' own API
    reports MeridianMemberDown firing for its pool, from every instance."""
    import json
    import re
    import signal
    import time
    import urllib.request

    from conftest import free_port
    from test_peers import Group, wait_for

    g = Group(tmp_path, 3)
    prom = None
    try:
        g.start()
        rules = open(os.path.join(RULES, "meridian-rules.yml")).read()
        (tmp_path / "rules.yml").write_text(re.sub(r"for: \d+m", "for: 2s", rules))
        targets = ", ".join(f'"{i.ip}:{i.admin}"' for i in g.instances)
        (tmp_path / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{tmp_path / 'rules.yml'}]\n"
            f"scrape_configs:\n  - job_name: meridian\n    static_configs:\n      - targets: [{targets}]\n")
        port = free_port()
        log = open(tmp_path / "prometheus.log", "w")
        prom = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)

        def api(path):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                    return json.load(r)["data"]
            except OSError:
                return None

        def up_targets():
            d = api("/api/v1/targets")
            return d and sum(t["health"] == "up" for t in d["activeTargets"])

        wait_for(lambda: up_targets() == 3, 30, "Prometheus scrapes all three instances")
        g.backends["127.0.2.3"].kill()

        def firing():
            d = api("/api/v1/alerts")
            return {a["labels"]["instance"] for a in (d or {}).get("alerts", [])
                    if a["labels"]["alertname"] == "MeridianMemberDown" and a["state"] == "firing" and a["labels"].get("pool") == "www"}

        wait_for(lambda: len(firing()) == 3, 40, "MeridianMemberDown firing for pool www on all three instances")
        alert = next(a for a in api("/api/v1/alerts")["alerts"] if a["labels"]["alertname"] == "MeridianMemberDown" and a["labels"]["pool"] == "www")
        assert alert["annotations"]["summary"] == "1 members of pool www are down", alert
    finally:
        if prom:
            prom.send_signal(signal.SIGTERM)
            try:
                prom.wait(timeout=15)
            except subprocess.TimeoutExpired:
                prom.kill()
        g.stop()
