#!/usr/bin/env python3
"""Checks of the monitoring shipped in deploy/monitoring/, runnable without a cluster.

(a) The PrometheusRule's `spec.groups` passes `promtool check rules`, and `promtool test rules`
    runs alerts.test.yaml against it (every alert fires on synthetic series).
(b) Every alert named in the rules has a test case, and the Grafana dashboard parses as JSON
    with a Prometheus query in every panel. Which metric names the queries may use is checked
    against a running attachd by the Rust test `monitoring::dashboard_and_alerts_use_exported_metrics`.
(c) docker-compose.yml's `monitoring` profile: every file it mounts exists, Prometheus scrapes
    every replica's admin listener, the rule file its entrypoint extracts from the PrometheusRule
    is that rule's `spec`, `promtool check config` passes with it, and Grafana is provisioned with
    that Prometheus and the committed dashboard.

Exit status 0 when everything holds. Needs PyYAML and promtool (Debian package `prometheus`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

try:
    import yaml
except ModuleNotFoundError:
    print("FAIL: PyYAML is missing: pip install pyyaml", file=sys.stderr)
    sys.exit(2)

ROOT = Path(__file__).resolve().parents[2]
MON = ROOT / "deploy" / "monitoring"


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


def run(argv: list[str], cwd: Path) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(f"FAIL: {' '.join(argv)}\n{proc.stdout}{proc.stderr}", file=sys.stderr)
        sys.exit(1)
    print(proc.stdout.strip())
    return proc.stdout


def panels(dashboard: dict):
    for p in dashboard.get("panels", []):
        yield p
        yield from p.get("panels", [])


def fail(message: str) -> int:
    print(f"FAIL: {message}", file=sys.stderr)
    return 1


def bind_mounts(svc: dict) -> dict[str, Path]:
    """Container path -> repository path of a service's `./` bind mounts."""
    out = {}
    for v in svc.get("volumes", []):
        parts = str(v).split(":")
        if parts[0].startswith("./"):
            out[parts[1]] = ROOT / parts[0]
    return out


def host_path(mounts: dict[str, Path], inside: str) -> Path | None:
    """The repository file a container path comes from, through the service's bind mounts."""
    for target, source in mounts.items():
        if inside == target:
            return source
        if inside.startswith(target.rstrip("/") + "/"):
            return source / inside[len(target.rstrip("/")) + 1:]
    return None


def check_compose_monitoring(tool: str) -> int:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose.get("services", {})
    prom, graf = services.get("prometheus"), services.get("grafana")
    if prom is None or graf is None:
        return fail("docker-compose.yml needs `prometheus` and `grafana` services")
    for name, svc in (("prometheus", prom), ("grafana", graf)):
        if "monitoring" not in (svc.get("profiles") or []):
            return fail(f"docker-compose.yml {name} must be in the `monitoring` profile")
        for target, source in bind_mounts(svc).items():
            if not source.exists():
                return fail(f"docker-compose.yml {name} mounts {source.relative_to(ROOT)}, which does not exist")
    pm = bind_mounts(prom)
    # The entrypoint: sh extract-rules.sh RULE OUT prometheus --config.file=CONFIG ...
    argv = [str(a) for a in prom.get("entrypoint") or []]
    if len(argv) < 5 or not argv[1].endswith("extract-rules.sh"):
        return fail("prometheus must start through extract-rules.sh RULE OUT prometheus ...")
    script, rule_in, rule_out = host_path(pm, argv[1]), host_path(pm, argv[2]), argv[3]
    if script is None or rule_in is None:
        return fail(f"prometheus: {argv[1]} and {argv[2]} must be mounted from the repository")
    if rule_in.resolve() != (MON / "prometheusrule.yaml").resolve():
        return fail("prometheus must load deploy/monitoring/prometheusrule.yaml")
    config_arg = next((a for a in argv if a.startswith("--config.file=")), None)
    config = host_path(pm, config_arg.split("=", 1)[1]) if config_arg else None
    if config is None:
        return fail("prometheus needs --config.file= a mounted file")
    cfg = yaml.safe_load(config.read_text())
    if cfg.get("rule_files") != [rule_out]:
        return fail(f"{config.relative_to(ROOT)} rule_files must be [{rule_out!r}], what the entrypoint writes")
    admin = tomllib.loads((ROOT / "deploy/compose/attachd.toml").read_text())["server"]["admin_listen"]
    port = admin.rsplit(":", 1)[1]
    replicas = sorted(n for n, s in services.items() if (s.get("command") or [None])[0] == "serve")
    targets = sorted(t for job in cfg.get("scrape_configs", []) for sc in job.get("static_configs", [])
                     for t in sc.get("targets", []))
    if targets != [f"{r}:{port}" for r in replicas]:
        return fail(f"prometheus must scrape {[f'{r}:{port}' for r in replicas]} (admin_listen), scrapes {targets}")
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        out = scratch / "rules.yaml"
        run(["sh", str(script), str(rule_in), str(out), "true"], scratch)
        if yaml.safe_load(out.read_text()) != yaml.safe_load(rule_in.read_text())["spec"]:
            return fail("extract-rules.sh does not reproduce the PrometheusRule's spec")
        cfg["rule_files"] = [str(out)]
        (scratch / "prometheus.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        checked = run([tool, "check", "config", "prometheus.yml"], scratch)
        if "1 rule files found" not in checked:
            return fail(f"promtool check config did not load the rule file:\n{checked}")
    gm = bind_mounts(graf)
    board = [t for t, s in gm.items() if s.resolve() == (MON / "grafana-dashboard.json").resolve()]
    prov = next((s for t, s in gm.items() if t == "/etc/grafana/provisioning"), None)
    if not board or prov is None:
        return fail("grafana must mount deploy/monitoring/grafana-dashboard.json and its provisioning")
    providers = [p for f in (prov / "dashboards").glob("*.yaml")
                 for p in yaml.safe_load(f.read_text()).get("providers", [])]
    if not any(board[0].startswith(p.get("options", {}).get("path", "").rstrip("/") + "/") for p in providers):
        return fail(f"no Grafana dashboard provider reads {board[0]}")
    sources = [d for f in (prov / "datasources").glob("*.yaml")
               for d in yaml.safe_load(f.read_text()).get("datasources", [])]
    if not any(d.get("type") == "prometheus" and d.get("url") == "http://prometheus:9090" and d.get("isDefault")
               for d in sources):
        return fail("Grafana needs the compose Prometheus (http://prometheus:9090) as its default data source")
    print(f"ok: compose monitoring scrapes {', '.join(replicas)}; Grafana loads {board[0]}")
    return 0


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
    return check_compose_monitoring(tool)


if __name__ == "__main__":
    sys.exit(main())
