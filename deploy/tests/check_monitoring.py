#!/usr/bin/env python3
"""Checks of the monitoring shipped in deploy/monitoring/, runnable without a cluster.

(a) The PrometheusRule's `spec.groups` passes `promtool check rules`, and `promtool test rules`
    runs alerts.test.yaml against it (every alert fires on synthetic series).
(b) Every alert named in the rules has a test case, and the Grafana dashboard parses as JSON
    with a Prometheus query in every panel. Which metric names the queries may use is checked
    against a running attachd by the Rust test `monitoring::dashboard_and_alerts_use_exported_metrics`.

Exit status 0 when everything holds. Needs PyYAML and promtool (Debian package `prometheus`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import yaml
except ModuleNotFoundError:
    print("FAIL: PyYAML is missing: pip install pyyaml", file=sys.stderr)
    sys.exit(2)

MON = Path(__file__).resolve().parents[1] / "monitoring"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        print(
            "FAIL: promtool not found on PATH. Install it: apt-get install prometheus "
            "(Debian's package ships /usr/bin/promtool), or a release from prometheus.io.",
            file=sys.stderr,
        )
        sys.exit(2)
    return path


def run(argv: list[str], cwd: Path) -> None:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(f"FAIL: {' '.join(argv)}\n{proc.stdout}{proc.stderr}", file=sys.stderr)
        sys.exit(1)
    print(proc.stdout.strip())


def panels(dashboard: dict):
    for p in dashboard.get("panels", []):
        yield p
        yield from p.get("panels", [])


def main() -> int:
    tool = promtool()
    rule = yaml.safe_load((MON / "prometheusrule.yaml").read_text())
    assert rule["kind"] == "PrometheusRule", "prometheusrule.yaml must be a PrometheusRule"
    groups = {"groups": rule["spec"]["groups"]}
    alerts = {r["alert"] for g in groups["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((MON / "alerts.test.yaml").read_text())
    tested = {
        case["alertname"]
        for t in tests["tests"]
        for case in t.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    untested = alerts - tested
    if untested:
        print(f"FAIL: alerts without a firing test case: {sorted(untested)}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        (scratch / "rules.yaml").write_text(yaml.safe_dump(groups, sort_keys=False))
        shutil.copy(MON / "alerts.test.yaml", scratch / "alerts.test.yaml")
        run([tool, "check", "rules", "rules.yaml"], scratch)
        run([tool, "test", "rules", "alerts.test.yaml"], scratch)

    dashboard = json.loads((MON / "grafana-dashboard.json").read_text())
    bad = [p.get("title") for p in panels(dashboard)
           if p.get("type") != "row" and not any(t.get("expr") for t in p.get("targets", []))]
    if bad:
        print(f"FAIL: dashboard panels without a query: {bad}", file=sys.stderr)
        return 1
    print(f"ok: {len(alerts)} alerts tested, dashboard {dashboard.get('uid')!r} parses")
    return 0


if __name__ == "__main__":
    sys.exit(main())
