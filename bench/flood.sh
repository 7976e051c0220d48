#!/usr/bin/env bash
# `make bench-flood`: FLOOD_OBSERVERS observers of one session receiving a flood, spread over
# FLOOD_PROCS client processes (each within the open-file limit, each from its own loopback
# source address), on one replica with `limits.session_participants` raised for it. A process
# of its own drives: it waits until the session has every observer, types FLOOD_BYTES of
# flood and a known final screen, and waits for the observers to leave. Every observer must
# end on the driver's final screen (judged by the client's own vt100 emulator, cell text and
# cursor); resyncs are counted. Not part of `make bench` or `make test`; loopback only, each
# client bounded by FLOOD_DEADLINE seconds.
# Results: bench/results/$FLOOD_OUT.jsonl (one record per client process, plus the server's
# health) and $FLOOD_OUT.md.
# Sizes: FLOOD_OBSERVERS=10000 FLOOD_PROCS=4 FLOOD_BYTES=6000000 FLOOD_DEADLINE=900
# FLOOD_OUT=flood.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
N=${FLOOD_OBSERVERS:-10000}
PROCS=${FLOOD_PROCS:-4}
BYTES=${FLOOD_BYTES:-6000000}
DEADLINE=${FLOOD_DEADLINE:-900}
OUT=${FLOOD_OUT:-flood}
[ "$PROCS" -ge 1 ] && [ "$N" -ge "$PROCS" ] || { echo "need FLOOD_OBSERVERS >= FLOOD_PROCS >= 1" >&2; exit 2; }

bench_env flood
per=$(((N + PROCS - 1) / PROCS))
if [ $((per + 100)) -gt "$hard_nofile" ]; then
  echo "$per observers per process exceed the open-file limit $hard_nofile: raise FLOOD_PROCS" >&2
  exit 2
fi

echo "== flood: $N observers of one session over $PROCS client processes, $BYTES bytes" >&2
ATTACHD__LIMITS__SESSION_PARTICIPANTS=$((N + 100)) start_attachd
sid=$(curl -fsS -X POST -H "Authorization: Bearer $secret" -H 'Content-Type: application/json' \
  -d '{"name":"flood"}' "http://127.0.0.1:$port/api/v1/sessions" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')

run_client() { # label args... (one client process, in the background)
  local label=$1
  shift
  "$bench" --label "$label" --target "http://127.0.0.1:$port" --server-pid "$server_pid" \
    --out "$jsonl" --deadline-secs "$DEADLINE" crowd-flood --session "$sid" --bytes "$BYTES" \
    "$@" >/dev/null 2>>"$work/clients.log" &
  clients+=($!)
}
clients=()
# The driver has a process of its own: the flood runs at its pace, not the observers'.
run_client flood-driver --observers 0 --drive --expect-observers "$N" --wait-secs $((DEADLINE / 3))
left=$N
for i in $(seq 0 $((PROCS - 1))); do
  n=$per
  [ "$n" -le "$left" ] || n=$left
  left=$((left - n))
  run_client "flood-client-$((i + 1))" --observers "$n" --sources 1 --source-base $((60 + i)) \
    --concurrency 32
done
failed=0
for c in "${clients[@]}"; do wait "$c" || failed=$((failed + 1)); done
[ "$failed" -eq 0 ] || { echo "   $failed client process(es) failed:" >&2; tail -5 "$work/clients.log" >&2; }

alive=false
kill -0 "$server_pid" 2>/dev/null && alive=true
health=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz" || echo none)
panics=$(grep -c -i -E 'panicked|overflowed' "$work/attachd-$port/attachd.log" || true)
# How the server closed attach connections, by close code (attachd_closes_total), and how many
# of them it cut as stalled or slow consumers (SPEC §8).
closes=$(curl -fsS -m 5 "http://127.0.0.1:$admin/metrics" 2>/dev/null | python3 -c '
import json, re, sys
v = {}
for line in sys.stdin:
    m = re.match(r"attachd_closes_total\{code=\"(\d+)\"\} (\d+)", line)
    if m:
        v[m.group(1)] = int(m.group(2))
    m = re.match(r"attachd_(stall|slow_consumer)_closes_total (\d+)", line)
    if m:
        v[m.group(1)] = int(m.group(2))
print(json.dumps(v))' || echo null)
echo "{\"label\":\"flood-server\",\"alive\":$alive,\"healthz\":\"$health\",\"panics\":${panics:-0},\"closes\":$closes,\"client_failures\":$failed}" >>"$jsonl"
stop_pid "$server_pid"

machine="$(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB, $(uname -sr), $(date -u +%F)"
cp "$jsonl" "$results/$OUT.jsonl"
python3 "$root/bench/flood_report.py" "$jsonl" "$machine" >"$results/$OUT.md"
cat "$results/$OUT.md"
