#!/usr/bin/env bash
# What open dashboards cost the echo: alternating runs of echo with 0 and with N dashboards open
# (each an event stream with thumbnails of the session being measured), on one fresh attachd
# per round, in the same minutes on the same machine:
#   bash bench/dashboard.sh [ROUNDS] [DASHBOARDS]
# ATTACHD_BIN and BENCH_BIN pick the binaries (default: this checkout's release builds). JSON
# lines go to bench/results/dashboard.jsonl, table rows to bench/results/dashboard.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3} dashboards=${2:-10}
attachd=${ATTACHD_BIN:-$root/target/release/attachd}
bench=${BENCH_BIN:-$root/target/release/attachd-bench}
for b in "$attachd" "$bench"; do
  [ -x "$b" ] || { echo "missing $b: cargo build --release -p attachd -p attachd-bench" >&2; exit 2; }
done
ECHO_SAMPLES=${ECHO_SAMPLES:-2000}
work=$(mktemp -d /tmp/attachd-dash.XXXXXX)
out="$root/bench/results/dashboard.jsonl"
md="$root/bench/results/dashboard.md"
mkdir -p "$root/bench/results"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
secret="dash-$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
sha=$(printf %s "$secret" | sha256sum | cut -d' ' -f1)
export ATTACHD_BENCH_TOKEN="$secret"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

for r in $(seq "$rounds"); do
  port=$(free_port)
  dir="$work/$port"
  mkdir -p "$dir"
  bench_config "$dir/attachd.toml" "$port" "$(free_port)" "$dir/audit.log" "$sha"
  (cd "$dir" && RUST_LOG=warn exec "$attachd" serve --config attachd.toml >"$dir/log" 2>&1) &
  pid=$!
  for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break; sleep 0.1; done
  for n in 0 "$dashboards"; do
    "$bench" --label "dashboards-$n-r$r" --target "http://127.0.0.1:$port" --server-pid "$pid" \
      --out "$out" --md "$md" --deadline-secs 240 \
      echo --observers 0 --samples "$ECHO_SAMPLES" --dashboards "$n" >/dev/null ||
      echo "(failed: echo with $n dashboards)" >&2
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
echo "wrote $out and $md" >&2
