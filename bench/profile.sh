#!/usr/bin/env bash
# Profiles a release attachd under one bench scenario with perf (cpu-clock, DWARF stacks) and
# prints the top symbols. Usage: bench/profile.sh echo|fanout|single|storm  (release build needed:
# `cargo build --release -p attachd-bench -p attachd`; ATTACHD_BIN=PATH profiles another build).
# Output stays in a temp dir it prints.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-echo}
bench="$root/target/release/attachd-bench"
attachd="${ATTACHD_BIN:-$root/target/release/attachd}"
work=$(mktemp -d /tmp/attachd-profile.XXXXXX)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
port=$(free_port)
secret="prof-$(head -c 12 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
bench_config "$work/attachd.toml" "$port" "$(free_port)" "$work/audit.log" \
  "$(printf %s "$secret" | sha256sum | cut -d' ' -f1)"
(cd "$work" && RUST_LOG=info exec "$attachd" serve --config attachd.toml >attachd.log 2>&1) &
spid=$!
trap 'kill $spid 2>/dev/null || true' EXIT
until curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz"; do sleep 0.1; done
case $what in
  echo) args=(echo --observers 100 --samples 4000) ;;
  fanout) args=(fanout --observers 50 --bytes 20000000) ;;
  single) args=(fanout --observers 0 --bytes 40000000) ;;
  storm) args=(connect-storm --n 4000 --concurrency 64) ;;
  *) echo "usage: $0 echo|fanout|single|storm" >&2; exit 2 ;;
esac
perf record -F 999 -e cpu-clock --call-graph dwarf,8192 -p "$spid" -o "$work/perf.data" 2>"$work/perf.err" &
ppid=$!
sleep 0.5
ATTACHD_BENCH_TOKEN=$secret "$bench" --target "http://127.0.0.1:$port" --server-pid "$spid" \
  --md /dev/stderr --deadline-secs 120 "${args[@]}" >"$work/record.json"
kill -INT "$ppid"
wait "$ppid" || true
perf report -i "$work/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -6
perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -30
echo "perf data: $work/perf.data (perf report -i ... -G for call graphs)" >&2
