#!/usr/bin/env bash
# Property-based API testing of a real attachd against its own /openapi.json with schemathesis:
# no 5xx, and every response conforms to the document (status codes, content types, schemas).
# The dashboard's event stream never ends by design; its own e2e test covers it.
#
#   tests/schemathesis/run.sh            # or: make schemathesis
#   MAX_EXAMPLES=50 SEED=1 tests/schemathesis/run.sh
#
# Needs python3 (with venv) and cargo; installs a pinned schemathesis into
# target/schemathesis-venv. Reports go to target/schemathesis-report/.
set -euo pipefail

SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
MAX_EXAMPLES="${MAX_EXAMPLES:-100}"
TIME_LIMIT="${TIME_LIMIT:-170}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

if ! command -v python3 >/dev/null 2>&1; then
  echo "schemathesis: python3 is required (apt-get install python3 python3-venv)" >&2
  exit 1
fi
VENV="$ROOT/target/schemathesis-venv"
if [ ! -x "$VENV/bin/st" ] || ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  mkdir -p "$ROOT/target"
  python3 -m venv "$VENV" || {
    echo "schemathesis: python3 -m venv failed (apt-get install python3-venv)" >&2
    exit 1
  }
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

BIN="${ATTACHD_BIN:-}"
if [ -z "$BIN" ]; then
  ${CARGO:-cargo} build --quiet --bin attachd
  BIN="$ROOT/target/debug/attachd"
fi
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

WORK="$(mktemp -d)"
PID=""
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# A fresh static token (only its SHA-256 goes into the config) and two free loopback ports.
read -r TOKEN DIGEST PORT ADMIN_PORT < <(python3 - <<'PY'
import hashlib, secrets, socket
def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
t = "st-" + secrets.token_urlsafe(24)
print(t, hashlib.sha256(t.encode()).hexdigest(), port(), port())
PY
)

cat > "$WORK/attachd.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
admin_listen = "127.0.0.1:$ADMIN_PORT"
tls_terminated_upstream = true
allowed_origins = ["https://app.example.com"]

[limits]
ip_attempts = 100000

[audit]
path = "$WORK/audit.log"

[session.local]
command = ["/bin/cat"]

[[auth.static_tokens]]
subject = "schemathesis"
tenant = "acme"
scopes = ["sessions:read", "sessions:write", "attach:observe", "attach:drive", "attach:moderate", "audit:read"]
sha256 = "$DIGEST"
TOML

(cd "$WORK" && exec "$BIN" serve --config "$WORK/attachd.toml" >"$WORK/attachd.log" 2>&1) &
PID=$!

python3 - "$PORT" <<'PY' || { echo "attachd did not become healthy:"; cat "$WORK/attachd.log"; exit 1; }
import sys, time, urllib.request
for _ in range(200):
    try:
        if urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=1).status == 200:
            sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit(1)
PY

REPORT="$ROOT/target/schemathesis-report"
rm -rf "$REPORT"
SEED_ARGS=()
[ -n "${SEED:-}" ] && SEED_ARGS=(--seed "$SEED")
set +e
timeout "$TIME_LIMIT" "$VENV/bin/st" run "http://127.0.0.1:$PORT/openapi.json" \
  --header "Authorization: Bearer $TOKEN" \
  --checks "${CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance}" \
  --max-examples "$MAX_EXAMPLES" \
  --workers 1 \
  --request-timeout 10 \
  --exclude-path /api/v1/dashboard/events \
  --output-sanitize true \
  --report junit,ndjson --report-dir "$REPORT" \
  "${SEED_ARGS[@]}"
STATUS=$?
set -e

if ! kill -0 "$PID" 2>/dev/null; then
  echo "schemathesis: attachd died during the run:" >&2
  tail -50 "$WORK/attachd.log" >&2
  exit 1
fi
if grep -q '"level":"ERROR"' "$WORK/attachd.log"; then
  echo "schemathesis: attachd logged errors during the run:" >&2
  grep '"level":"ERROR"' "$WORK/attachd.log" | head -20 >&2
fi
exit "$STATUS"
