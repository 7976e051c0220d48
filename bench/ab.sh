#!/usr/bin/env bash
# A/B of two attachd builds, alternating runs on the same machine in the same minutes:
#   bash bench/ab.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]    (AB_FIRST=N: the first N scenarios;
#   AB_SCENARIOS: others)
# Each round starts each binary fresh (same config as `make bench`) and runs, with the release
# `attachd-bench` of this checkout: the single-stream rate (fan-out with 0 observers), echo with
# 0, 10 and 100 observers, and fan-out to 50 observers. Markdown rows go to bench/results/ab.md,
# JSON lines to bench/results/ab.jsonl; after each server's runs, what it recorded (bytes written
# per MB sent to participants, which is per MB of output while no observer is attached, as with
# AB_FIRST=2; bytes dropped) is printed and added to bench/results/ab-recording.md.
# Loopback only; every run is bounded.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
before=$1 after=$2 rounds=${3:-3}
bench="$root/target/release/attachd-bench"
[ -x "$bench" ] || { echo "build it first: cargo build --release -p attachd-bench" >&2; exit 2; }
ECHO_SAMPLES=${ECHO_SAMPLES:-2000} FAN_BYTES=${FAN_BYTES:-20000000}
scenarios=("fanout --observers 0 --bytes $FAN_BYTES"
           "echo --observers 0 --samples $ECHO_SAMPLES"
           "echo --observers 10 --samples $ECHO_SAMPLES"
           "echo --observers 100 --samples $ECHO_SAMPLES"
           "fanout --observers 50 --bytes $FAN_BYTES")
# AB_FIRST=N runs only the first N of them (AB_FIRST=1: the single stream alone);
# AB_SCENARIOS="connect-storm --n 2000;echo --observers 0" runs those instead (';' between).
scenarios=("${scenarios[@]:0:${AB_FIRST:-${#scenarios[@]}}}")
if [ -n "${AB_SCENARIOS:-}" ]; then IFS=';' read -r -a scenarios <<<"$AB_SCENARIOS"; fi
work=$(mktemp -d /tmp/attachd-ab.XXXXXX)
out="$root/bench/results/ab.jsonl"
md="$root/bench/results/ab.md"
mkdir -p "$root/bench/results"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
secret="ab-$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
sha=$(printf %s "$secret" | sha256sum | cut -d' ' -f1)
export ATTACHD_BENCH_TOKEN="$secret"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

start() { # binary → $port, $admin, $pid
  port=$(free_port) admin=$(free_port)
  local dir="$work/$port"
  mkdir -p "$dir"
  bench_config "$dir/attachd.toml" "$port" "$admin" "$dir/audit.log" "$sha"
  (cd "$dir" && RUST_LOG=warn exec "$1" serve --config attachd.toml >"$dir/log" 2>&1) &
  pid=$!
  for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && return; sleep 0.1; done
  echo "server did not start" >&2; exit 1
}

recorded() { # label: the server's recording counters (chunks are sealed within 1 s)
  sleep 1.5
  local m
  m=$(curl -fsS "http://127.0.0.1:$admin/metrics" 2>/dev/null) || return 0
  python3 - "$1" "$m" <<'EOF_PY' | tee -a "$root/bench/results/ab-recording.md"
import sys
label, text = sys.argv[1], sys.argv[2]
v = {}
for line in text.splitlines():
    name, _, value = line.rpartition(" ")
    if name and not line.startswith("#"):
        try:
            v[name] = float(value)
        except ValueError:
            pass
out = v.get("attachd_bytes_out_total", 0)
w = v.get("attachd_recording_written_bytes_total", 0)
d = v.get("attachd_recording_dropped_bytes_total", 0)
per = f"{w / out * 1e6:,.0f}" if out else "-"
print(f"| {label} | sent {out:,.0f} B | recorded {w:,.0f} B ({per} B per MB sent) | dropped {d:,.0f} B |")
EOF_PY
}

for r in $(seq "$rounds"); do
  for side in before after; do
    bin=$before; [ $side = after ] && bin=$after
    start "$bin"
    for args in "${scenarios[@]}"; do
      # shellcheck disable=SC2086
      "$bench" --label "$side-r$r" --target "http://127.0.0.1:$port" --server-pid "$pid" \
        --out "$out" --md "$md" --deadline-secs 240 $args >/dev/null || echo "(failed: $side $args)" >&2
    done
    recorded "$side-r$r" || true
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  done
done
