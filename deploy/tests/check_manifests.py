#!/usr/bin/env python3
"""Static checks of attachd's deployment artefacts, runnable without a cluster or Docker.

(a) Renders deploy/overlays/{dev,prod} with `kubectl kustomize` and checks least-privilege RBAC,
    pod hardening, replicas, Service type, probes, NetworkPolicy, PDB, Ingress, config and secrets.
    prod also brings its monitoring (ServiceMonitor, PrometheusRule, Grafana dashboard).
(b) Parses docker-compose.yml and checks its wiring (3 replicas on one Redis, proxy, bench).

Exit status 0 when everything holds; otherwise every failure is printed and the status is 1.
Needs: Python >= 3.11 (tomllib), PyYAML, kubectl >= 1.27 (kustomize v5).
Over 500 lines: one short check per deployment rule; the rules, not the code, make it long.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
    print("FAIL: Python >= 3.11 is required (tomllib)", file=sys.stderr)
    sys.exit(2)

try:
    import yaml
except ModuleNotFoundError:
    print("FAIL: PyYAML is missing: pip install pyyaml", file=sys.stderr)
    sys.exit(2)

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("dev", "prod")
GATEWAY_NS = "attachd"
SANDBOX_NS = "sandboxes"
SERVICE_ACCOUNT = "attachd"
HTTP_PORT = 8080
# pods/exec and pods/attach: `get` is what a WebSocket (GET) upgrade is authorized as up to
# Kubernetes 1.34, `create` what 1.35+ additionally checks (and what SPDY/POST always needed).
EXPECTED_RULES = {
    ("", "pods"): {"get", "list", "watch"},
    ("", "pods/exec"): {"get", "create"},
    ("", "pods/attach"): {"get", "create"},
}
SECRET_WORDS = re.compile(r"(password|passwd|secret|token|private|apikey|api_key)", re.I)
PLACEHOLDER = re.compile(r"(NOT-A-SECRET|dev-only|placeholder|change-me)", re.I)

failures: list[str] = []


def fail(where: str, message: str) -> None:
    failures.append(f"{where}: {message}")


def check(cond: bool, where: str, message: str) -> bool:
    if not cond:
        fail(where, message)
    return cond


# --------------------------------------------------------------------------- kubectl / kustomize


def kubectl_install_hint() -> str:
    return (
        "kubectl is required (for `kubectl kustomize`, kustomize v5).\n"
        "  Debian/Ubuntu: add the Kubernetes apt repository and install the `kubectl` package:\n"
        "    curl -fsSL https://pkgs.k8s.io/core:/stable:/v1.32/deb/Release.key | "
        "sudo gpg --dearmor -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg\n"
        "    echo 'deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] "
        "https://pkgs.k8s.io/core:/stable:/v1.32/deb/ /' | "
        "sudo tee /etc/apt/sources.list.d/kubernetes.list\n"
        "    sudo apt-get update && sudo apt-get install -y kubectl\n"
        "  (or the `kubectl` package of the Google Cloud SDK apt repository). Debian's own\n"
        "  `kubernetes-client` package (1.20) is too old: its kustomize lacks `patches`/`labels`."
    )


def find_kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        print("FAIL: kubectl not found on PATH.\n" + kubectl_install_hint(), file=sys.stderr)
        sys.exit(2)
    return kubectl


def render(kubectl: str, overlay: str) -> list[dict]:
    path = ROOT / "deploy" / "overlays" / overlay
    proc = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        fail(f"overlays/{overlay}", f"`kubectl kustomize` failed:\n{proc.stderr.strip()}")
        if "unknown field" in proc.stderr or "invalid Kustomization" in proc.stderr:
            fail(f"overlays/{overlay}", "kubectl may be too old.\n" + kubectl_install_hint())
        return []
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def name_of(doc: dict) -> str:
    meta = doc.get("metadata", {})
    return f"{doc.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}"


# --------------------------------------------------------------------------- Kubernetes checks


def check_cluster_scope(overlay: str, docs: list[dict]) -> None:
    for kind in ("ClusterRole", "ClusterRoleBinding"):
        for d in by_kind(docs, kind):
            fail(overlay, f"{name_of(d)}: nothing cluster-wide is allowed")
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    for d in docs:
        if d.get("kind") not in cluster_scoped:
            check(
                bool(d.get("metadata", {}).get("namespace")),
                overlay,
                f"{name_of(d)} has no explicit namespace",
            )


def check_rbac(overlay: str, docs: list[dict]) -> None:
    roles = by_kind(docs, "Role")
    bindings = by_kind(docs, "RoleBinding")
    if not check(len(roles) == 1, overlay, f"expected exactly one Role, found {len(roles)}"):
        return
    role = roles[0]
    where = f"{overlay} {name_of(role)}"
    check(role["metadata"].get("namespace") == SANDBOX_NS, where, f"must live in {SANDBOX_NS!r}")
    seen: dict[tuple[str, str], set[str]] = {}
    for rule in role.get("rules", []):
        for group in rule.get("apiGroups", []):
            for res in rule.get("resources", []):
                verbs = set(rule.get("verbs", []))
                check("*" not in verbs and "*" != res and "*" != group, where, "no wildcards")
                seen.setdefault((group, res), set()).update(verbs)
    check(
        seen == EXPECTED_RULES,
        where,
        f"rules must be exactly {sorted((k, sorted(v)) for k, v in EXPECTED_RULES.items())}, "
        f"got {sorted((k, sorted(v)) for k, v in seen.items())}",
    )
    if not check(len(bindings) == 1, overlay, f"expected one RoleBinding, found {len(bindings)}"):
        return
    rb = bindings[0]
    where = f"{overlay} {name_of(rb)}"
    check(rb["metadata"].get("namespace") == SANDBOX_NS, where, f"must live in {SANDBOX_NS!r}")
    check(
        rb.get("roleRef", {}).get("kind") == "Role"
        and rb["roleRef"].get("name") == role["metadata"]["name"],
        where,
        "must reference the Role (not a ClusterRole)",
    )
    check(
        rb.get("subjects")
        == [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": GATEWAY_NS}],
        where,
        f"the only subject must be ServiceAccount {GATEWAY_NS}/{SERVICE_ACCOUNT}",
    )
    sas = [d for d in by_kind(docs, "ServiceAccount") if d["metadata"]["name"] == SERVICE_ACCOUNT]
    check(len(sas) == 1, overlay, f"ServiceAccount {SERVICE_ACCOUNT} missing")


def container_port(container: dict, port) -> int | None:
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def check_pod_security(where: str, spec: dict) -> None:
    psc = spec.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, where, "pod securityContext.runAsNonRoot must be true")
    check(
        psc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
        where,
        "pod seccompProfile must be RuntimeDefault",
    )
    check(not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"),
          where, "no host namespaces")
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        cw = f"{where} container {c.get('name')}"
        sc = c.get("securityContext", {})
        check(sc.get("allowPrivilegeEscalation") is False, cw, "allowPrivilegeEscalation must be false")
        check(sc.get("readOnlyRootFilesystem") is True, cw, "readOnlyRootFilesystem must be true")
        check(sc.get("capabilities", {}).get("drop") == ["ALL"], cw, "capabilities.drop must be [ALL]")
        check(not sc.get("capabilities", {}).get("add"), cw, "no added capabilities")
        check(sc.get("privileged") in (None, False), cw, "must not be privileged")
        check(
            sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True,
            cw,
            "must run as non-root",
        )
        check(
            sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type") == "RuntimeDefault",
            cw,
            "seccompProfile must be RuntimeDefault",
        )
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                check(r in res.get(kind, {}), cw, f"resources.{kind}.{r} must be set")
        image = c.get("image", "")
        check(":" in image.rsplit("/", 1)[-1] or "@sha256:" in image, cw, f"image {image!r} is not pinned")
        check(not image.endswith(":latest"), cw, "image must not be :latest")
        for env in c.get("env", []):
            if "value" in env and SECRET_WORDS.search(env["name"]):
                fail(cw, f"env {env['name']} looks secret but is a literal; use valueFrom")


def check_gateway(overlay: str, docs: list[dict]) -> dict | None:
    deps = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "attachd"]
    if not check(len(deps) == 1, overlay, "Deployment attachd missing"):
        return None
    dep = deps[0]
    where = f"{overlay} {name_of(dep)}"
    check(dep["metadata"].get("namespace") == GATEWAY_NS, where, f"must live in {GATEWAY_NS!r}")
    check(dep["spec"].get("replicas", 1) >= 2, where, "needs at least 2 replicas")
    spec = dep["spec"]["template"]["spec"]
    check(spec.get("serviceAccountName") == SERVICE_ACCOUNT, where, "must use the attachd ServiceAccount")
    check_pod_security(where, spec)
    c = spec["containers"][0]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        http = c.get(probe, {}).get("httpGet", {})
        check(http.get("path") == path, where, f"{probe} must GET {path}")
        check(container_port(c, http.get("port")) == HTTP_PORT, where, f"{probe} must use port {HTTP_PORT}")
    check(
        any(p.get("containerPort") == HTTP_PORT for p in c.get("ports", [])),
        where,
        f"container must expose {HTTP_PORT}",
    )
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    check("/data" in mounts, where, "the audit log needs a writable /data volume")
    return dep


def check_services(overlay: str, docs: list[dict]) -> None:
    for svc in by_kind(docs, "Service"):
        where = f"{overlay} {name_of(svc)}"
        check(svc["spec"].get("type", "ClusterIP") == "ClusterIP", where, "must be ClusterIP")
        check(all("nodePort" not in p for p in svc["spec"].get("ports", [])), where, "no nodePort")
    gw = [s for s in by_kind(docs, "Service") if s["metadata"]["name"] == "attachd"]
    check(len(gw) == 1, overlay, "Service attachd missing")


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def check_policies(overlay: str, docs: list[dict], dep: dict | None) -> None:
    if dep is None:
        return
    labels = dep["spec"]["template"]["metadata"]["labels"]
    pdbs = [p for p in by_kind(docs, "PodDisruptionBudget") if selects(p["spec"].get("selector", {}), labels)]
    check(len(pdbs) >= 1, overlay, "no PodDisruptionBudget covers the attachd pods")
    nps = [
        n
        for n in by_kind(docs, "NetworkPolicy")
        if n["metadata"].get("namespace") == GATEWAY_NS
        and selects(n["spec"].get("podSelector", {}), labels)
    ]
    if check(len(nps) >= 1, overlay, "no NetworkPolicy selects the attachd pods"):
        types = set().union(*(set(n["spec"].get("policyTypes", [])) for n in nps))
        check({"Ingress", "Egress"} <= types, overlay, "attachd NetworkPolicy must restrict Ingress and Egress")
        for n in nps:
            for rule in n["spec"].get("ingress", []):
                check(bool(rule.get("from")), f"{overlay} {name_of(n)}", "ingress rules must name their sources")


def check_ingress(overlay: str, docs: list[dict]) -> None:
    ings = by_kind(docs, "Ingress")
    if not check(len(ings) == 1, overlay, f"expected one Ingress, found {len(ings)}"):
        return
    ing = ings[0]
    where = f"{overlay} {name_of(ing)}"
    tls = ing["spec"].get("tls", [])
    check(bool(tls) and all(t.get("secretName") for t in tls), where, "needs TLS with a secretName")
    hosts = {h for t in tls for h in t.get("hosts", [])}
    for rule in ing["spec"].get("rules", []):
        check(rule.get("host") in hosts, where, f"host {rule.get('host')} is not covered by TLS")
    ann = ing["metadata"].get("annotations", {})
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        value = ann.get(f"nginx.ingress.kubernetes.io/{key}")
        check(value is not None and int(value) >= 300, where, f"{key} must allow long-lived WebSockets")
    check(ann.get("nginx.ingress.kubernetes.io/ssl-redirect") == "true", where, "ssl-redirect must be on")
    check(
        not any("snippet" in k for k in ann),
        where,
        "no configuration snippets (disabled by default in ingress-nginx for good reason)",
    )


def config_of(overlay: str, docs: list[dict]) -> dict | None:
    cms = [c for c in by_kind(docs, "ConfigMap") if c["metadata"]["name"].startswith("attachd-config")]
    if not check(len(cms) == 1, overlay, "ConfigMap attachd-config missing"):
        return None
    text = cms[0].get("data", {}).get("attachd.toml")
    if not check(text is not None, overlay, "ConfigMap has no attachd.toml"):
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        fail(overlay, f"attachd.toml does not parse: {e}")
        return None


def check_config(overlay: str, cfg: dict | None, role_ns: str) -> None:
    if cfg is None:
        return
    where = f"{overlay} attachd.toml"
    check(cfg.get("env") == "prod", where, 'env must be "prod"')
    server = cfg.get("server", {})
    check(server.get("tls_terminated_upstream") is True, where, "server.tls_terminated_upstream must be true behind the Ingress")
    check(bool(server.get("allowed_origins")), where, "server.allowed_origins must list the UI origin")
    check(all(o.startswith("https://") for o in server.get("allowed_origins", [])), where, "origins must be https")
    check(bool(cfg.get("redis", {}).get("url")), where, "redis.url must be set")
    check(cfg.get("session", {}).get("backend") == "kube", where, 'session.backend must be "kube"')
    kube = cfg.get("kube", {})
    check(kube.get("namespace") == role_ns, where, f"kube.namespace must be the Role's namespace {role_ns!r}")
    check(bool(kube.get("label_selector")), where, "kube.label_selector must not be empty")
    check(kube.get("mode", "attach") in ("attach", "exec"), where, "kube.mode must be attach or exec")
    check(str(cfg.get("audit", {}).get("path", "")).startswith("/data/"), where, "audit.path must be on the /data volume")
    check(cfg.get("audit", {}).get("on_failure", "deny") == "deny", where, "audit.on_failure must stay deny")
    check(str(cfg.get("recording", {}).get("dir", "")).startswith("/data/"), where, "recording.dir must be on the /data volume")
    url = cfg.get("redis", {}).get("url", "")
    check("@" not in url, where, "redis.url must not carry credentials (they come from the Secret)")
    auth = cfg.get("auth", {})
    check(not auth.get("static_tokens") or all("sha256" in t for t in auth["static_tokens"]), where, "static tokens must be hashes")
    jwt = auth.get("jwt")
    if jwt:
        for k in ("hs256_secret_file", "public_key_file"):
            if k in jwt:
                check(str(jwt[k]).startswith("/etc/attachd/secrets/"), where, f"auth.jwt.{k} must come from the Secret volume")


def check_secrets(overlay: str, docs: list[dict]) -> None:
    secrets = by_kind(docs, "Secret")
    if overlay == "prod":
        for s in secrets:
            fail(overlay, f"{name_of(s)}: prod must not render Secrets (create them out of band)")
        return
    import base64

    for s in secrets:
        for key, value in (s.get("data") or {}).items():
            plain = base64.b64decode(value).decode("utf-8", "replace")
            check(bool(PLACEHOLDER.search(plain)), f"{overlay} {name_of(s)}", f"{key} must be an obvious dev placeholder")
        for key, plain in (s.get("stringData") or {}).items():
            check(bool(PLACEHOLDER.search(plain)), f"{overlay} {name_of(s)}", f"{key} must be an obvious dev placeholder")


def check_monitoring(overlay: str, docs: list[dict], dep: dict | None) -> None:
    """prod brings its monitoring: a ServiceMonitor on the admin port, the alerts, the dashboard."""
    mons = by_kind(docs, "ServiceMonitor")
    if not check(len(mons) == 1, overlay, f"expected one ServiceMonitor, found {len(mons)}"):
        return
    mon = mons[0]
    where = f"{overlay} {name_of(mon)}"
    svcs = [
        s
        for s in by_kind(docs, "Service")
        if selects(mon["spec"].get("selector", {}), s["metadata"].get("labels", {}))
        and s["metadata"].get("namespace") in mon["spec"].get("namespaceSelector", {}).get("matchNames", [])
    ]
    if check(len(svcs) == 1, where, f"must select exactly one Service, selects {[name_of(s) for s in svcs]}"):
        ports = {p.get("name"): p for p in svcs[0]["spec"].get("ports", [])}
        for ep in mon["spec"].get("endpoints", []):
            check(ep.get("path") == "/metrics", where, "endpoints must scrape /metrics")
            port = ports.get(ep.get("port"))
            if check(port is not None, where, f"port {ep.get('port')!r} is not a port of the Service"):
                target = port.get("targetPort")
                if dep is not None:
                    c = dep["spec"]["template"]["spec"]["containers"][0]
                    check(container_port(c, target) == 9090, where, "must scrape the admin listener (9090)")
    rules = by_kind(docs, "PrometheusRule")
    if check(len(rules) == 1, overlay, f"expected one PrometheusRule, found {len(rules)}"):
        alerts = {r.get("alert") for g in rules[0]["spec"].get("groups", []) for r in g.get("rules", [])}
        for name in ("AttachdAuditWriteErrors", "AttachdNotReady", "AttachdRedisDegraded",
                     "AttachdHandshakeRefusalsSpike", "AttachdStalls"):
            check(name in alerts, f"{overlay} {name_of(rules[0])}", f"alert {name} missing")
    boards = [c for c in by_kind(docs, "ConfigMap") if c["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    if check(len(boards) == 1, overlay, "expected one ConfigMap labelled grafana_dashboard=1"):
        import json

        for key, text in (boards[0].get("data") or {}).items():
            try:
                json.loads(text)
            except json.JSONDecodeError as e:
                fail(f"{overlay} {name_of(boards[0])}", f"{key} is not JSON: {e}")


def check_overlay(kubectl: str, overlay: str) -> None:
    docs = render(kubectl, overlay)
    if not docs:
        return
    check_cluster_scope(overlay, docs)
    check_rbac(overlay, docs)
    dep = check_gateway(overlay, docs)
    for d in by_kind(docs, "Deployment"):
        if d["metadata"]["name"] != "attachd":
            check_pod_security(f"{overlay} {name_of(d)}", d["spec"]["template"]["spec"])
    check_services(overlay, docs)
    check_policies(overlay, docs, dep)
    check_ingress(overlay, docs)
    roles = by_kind(docs, "Role")
    role_ns = roles[0]["metadata"].get("namespace") if roles else SANDBOX_NS
    check_config(overlay, config_of(overlay, docs), role_ns)
    check_secrets(overlay, docs)
    if overlay == "prod" and dep is not None:
        check(dep["spec"].get("replicas", 1) >= 3, "prod", "prod runs at least 3 replicas")
    if overlay == "prod":
        check_monitoring(overlay, docs, dep)


# --------------------------------------------------------------------------- docker compose


def as_env(value) -> dict:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    out = {}
    for item in value or []:
        k, _, v = str(item).partition("=")
        out[k] = v
    return out


def as_list(value) -> list[str]:
    if isinstance(value, dict):
        return list(value)
    return list(value or [])


def check_compose() -> None:
    path = ROOT / "docker-compose.yml"
    where = "docker-compose.yml"
    if not check(path.exists(), where, "missing"):
        return
    compose = yaml.safe_load(path.read_text())
    services = compose.get("services", {})
    check("redis" in services, where, "needs a `redis` service")
    replicas = {
        n: s for n, s in services.items()
        if (s.get("command") or [None])[0] == "serve"
    }
    check(len(replicas) == 3, where, f"needs exactly 3 attachd replicas, found {sorted(replicas)}")
    toml_files = set()
    for name, svc in replicas.items():
        sw = f"{where} {name}"
        env = as_env(svc.get("environment"))
        check(env.get("ATTACHD__REDIS__URL", "").startswith("redis://redis:"), sw, "ATTACHD__REDIS__URL must point at the redis service")
        check("redis" in as_list(svc.get("depends_on")), sw, "must depend on redis")
        check("kube-emu" in as_list(svc.get("depends_on")), sw, "must depend on kube-emu")
        check(env.get("ATTACHD__KUBE__API_URL", "").startswith("http://kube-emu:"), sw, "must use kube-emu as the kube API")
        build = svc.get("build", {})
        check(isinstance(build, dict) and build.get("target") == "runtime", sw, "must build the Dockerfile's runtime target")
        mounts = [str(v) for v in svc.get("volumes", [])]
        cfg = [m for m in mounts if m.endswith(":/etc/attachd/attachd.toml:ro")]
        if check(len(cfg) == 1, sw, "must mount deploy/compose/attachd.toml read-only at /etc/attachd/attachd.toml"):
            toml_files.add(cfg[0].split(":")[0])
        check(any(m.endswith(":/data") for m in mounts), sw, "needs its own /data volume (one audit writer per file)")
        check(svc.get("read_only") is True, sw, "read_only root filesystem")
        check("ALL" in (svc.get("cap_drop") or []), sw, "cap_drop ALL")
    audit_volumes = {m for s in replicas.values() for m in map(str, s.get("volumes", [])) if m.endswith(":/data")}
    check(len(audit_volumes) == len(replicas), where, "each replica needs a distinct audit volume")
    for rel in toml_files:
        p = (ROOT / rel).resolve()
        check(str(p).startswith(str(ROOT / "deploy" / "compose")), where, f"{rel} must live under deploy/compose/")
        if check(p.exists(), where, f"{rel} does not exist"):
            cfg = tomllib.loads(p.read_text())
            check(cfg.get("session", {}).get("backend") == "kube", str(rel), 'session.backend must be "kube"')
            check(str(cfg.get("redis", {}).get("url", "")).startswith("redis://redis:"), str(rel), "redis.url must point at the redis service")
    proxy = services.get("proxy")
    if check(proxy is not None, where, "needs a `proxy` service"):
        deps = set(as_list(proxy.get("depends_on")))
        check(set(replicas) <= deps, where, f"proxy must depend on every replica, has {sorted(deps)}")
        cfgs = [str(v).split(":")[0] for v in proxy.get("volumes", []) if "haproxy.cfg" in str(v) or "nginx" in str(v)]
        if check(len(cfgs) == 1, where, "proxy must mount its config from deploy/compose/"):
            text = (ROOT / cfgs[0]).read_text()
            for name in replicas:
                check(f"{name}:8080" in text, cfgs[0], f"does not route to {name}")
            check("cookie" in text, cfgs[0], "needs sticky sessions (cookie)")
            check("timeout tunnel" in text or "proxy_read_timeout" in text, cfgs[0], "needs a WebSocket tunnel timeout")
    emu = services.get("kube-emu")
    if check(emu is not None, where, "needs the kube-emu service"):
        cmd = emu.get("command") or []
        check(cmd[:1] == ["kube-emu"], where, "kube-emu service must run kube-emu")
        check("--token" in cmd or "--token-file" in cmd, where, "kube-emu needs a token")
    bench = services.get("bench")
    if check(bench is not None, where, "needs a `bench` service"):
        check("bench" in (bench.get("profiles") or []), where, "bench must be in the `bench` profile")
        argv = " ".join(list(bench.get("entrypoint") or []) + list(bench.get("command") or []))
        check("attachd-bench" in argv, where, "bench must run attachd-bench")
        # attachd-bench refuses non-loopback targets: inside the proxy's network namespace
        # http://127.0.0.1:8080 is the proxy.
        via_proxy_ns = bench.get("network_mode") == "service:proxy"
        check(
            "--target http://proxy:8080" in argv
            or (via_proxy_ns and "--target http://127.0.0.1:8080" in argv),
            where,
            "bench must target the proxy (http://proxy:8080, or 127.0.0.1:8080 in its network namespace)",
        )
        check("ATTACHD_BENCH_TOKEN" not in str(bench.get("environment", "")), where, "no literal bench token in the environment")
    for name, secret in (compose.get("secrets") or {}).items():
        f = secret.get("file")
        if f:
            text = (ROOT / f).read_text() if (ROOT / f).exists() else ""
            check(bool(PLACEHOLDER.search(text)), where, f"secret {name} ({f}) must be an obvious dev placeholder")


def check_dockerfile() -> None:
    path = ROOT / "Dockerfile"
    if not check(path.exists(), "Dockerfile", "missing"):
        return
    text = path.read_text()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.M | re.I)
    for stage in ("web", "builder", "runtime", "devtools"):
        check(stage in stages, "Dockerfile", f"stage {stage!r} missing")
    check(stages[-1:] == ["runtime"], "Dockerfile", "the last (default) stage must be runtime")
    runtime = text[text.rfind("AS runtime"):]
    check(re.search(r"^USER\s+(?!0|root)", runtime, re.M) is not None, "Dockerfile", "runtime must run as a non-root USER")
    check("kube-emu" not in runtime, "Dockerfile", "the runtime image must not contain kube-emu")
    check("npm ci" in text and "npm run build" in text, "Dockerfile", "web/ must be built with npm ci && npm run build")


def main() -> int:
    kubectl = find_kubectl()
    for overlay in OVERLAYS:
        check_overlay(kubectl, overlay)
    check_compose()
    check_dockerfile()
    if failures:
        print(f"FAIL: {len(failures)} problem(s):", file=sys.stderr)
        for f in failures:
            print(f"  - {f}", file=sys.stderr)
        return 1
    print(f"ok: overlays {', '.join(OVERLAYS)}, docker-compose.yml and Dockerfile pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
