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
