#!/usr/bin/env bash
# `make bench-scale`: many idle attached connections on one machine (not part of `make bench`
# or `make test`). Three parts, each bounded in count and time, loopback only:
#   crowd  3,000 observers of one session, joined and closed twice on one replica: RSS before,
#          held and after each cycle (allocator retention reuses the same pages; a leak grows);
#   fleet  SCALE_REPLICAS replicas sharing one redis-server, each loaded by its own client
#          process with SCALE_PER idle connections from its own source addresses: RSS per
#          connection, idle CPU, attach rate during the ramp, and the SIGTERM drain time;
#   full   one replica offered SCALE_FULL connections by two client processes, past its
#          open-file limit: how many it holds, what the rest are told, whether it stays healthy.
# Results: bench/results/scale.jsonl (one record per client process) and scale.md.
# Sizes: SCALE_REPLICAS=6 SCALE_PER=16700 SCALE_HOLD=20 SCALE_FULL=20500 SCALE_CROWD=3000;
# SCALE_PARTS="crowd fleet full" chooses parts; SCALE_WS adds keys to the fleet replicas' [ws]
# table (SCALE_WS='ping_interval = "30s"' …).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
REPLICAS=${SCALE_REPLICAS:-6}
PER=${SCALE_PER:-16700}
HOLD=${SCALE_HOLD:-20}
FULL=${SCALE_FULL:-20500}
CROWD=${SCALE_CROWD:-3000}
PARTS=${SCALE_PARTS:-crowd fleet full}

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
bench_env scale

soak() { # label port pid args... (one client process, in the background)
  local label=$1 p=$2 pid=$3
  shift 3
  "$bench" --label "$label" --target "http://127.0.0.1:$p" --server-pid "$pid" \
    --out "$jsonl" --deadline-secs 600 soak "$@" >/dev/null 2>>"$work/clients.log" &
}

has() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

if has crowd; then
  echo "== crowd: $CROWD observers of one session, two cycles" >&2
  ATTACHD__LIMITS__SESSION_PARTICIPANTS=$((CROWD + 100)) start_attachd
  for cycle in 1 2; do
    soak "crowd-cycle-$cycle" "$port" "$server_pid" --connections "$CROWD" \
      --per-session "$CROWD" --seconds 5 --concurrency 64
    wait $!
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" || echo "   crowd: replica unhealthy" >&2
  stop_pid "$server_pid"
fi

if has fleet; then
  echo "== fleet: $REPLICAS replicas × $PER connections sharing Redis, hold ${HOLD}s, SIGTERM" >&2
  rport=$(free_port)
  redis-server --bind 127.0.0.1 --port "$rport" --save "" --appendonly no \
    --dir "$work" >"$work/redis.log" 2>&1 &
  rpid=$!
  pids+=("$rpid")
  sleep 0.5
  ports=()
  spids=()
  for _ in $(seq "$REPLICAS"); do
    start_attachd "[redis]
url = \"redis://127.0.0.1:$rport/0\"" "${SCALE_WS:-}"
    ports+=("$port")
    spids+=("$server_pid")
  done
  clients=()
  for i in $(seq 0 $((REPLICAS - 1))); do
    soak "fleet-replica-$((i + 1))" "${ports[$i]}" "${spids[$i]}" --connections "$PER" \
      --seconds "$HOLD" --sources 5 --source-base $((i * 5)) --concurrency 32 --sigterm
    clients+=($!)
  done
  for c in "${clients[@]}"; do wait "$c" || echo "   (a fleet client failed)" >&2; done
  for p in "${spids[@]}"; do wait "$p" 2>/dev/null || true; done
  stop_pid "$rpid"
fi

if has full; then
  half=$((FULL / 2))
  echo "== full: one replica offered $FULL connections (open-file limit $hard_nofile)" >&2
  start_attachd
  soak "full-a" "$port" "$server_pid" --connections "$half" --seconds 15 --sources 4 \
    --source-base 40 --concurrency 32
  a=$!
  soak "full-b" "$port" "$server_pid" --connections $((FULL - half)) --seconds 15 --sources 4 \
    --source-base 50 --concurrency 32
  b=$!
  # While it is full: does it still answer health checks?
  sleep 25
  health=$(curl -s -m 5 -o /dev/null -w '%{http_code} in %{time_total}s' \
    "http://127.0.0.1:$port/healthz" || echo "no answer within 5 s")
  echo "   healthz while full: $health" >&2
  echo "{\"label\":\"full-healthz\",\"healthz\":\"$health\"}" >>"$jsonl"
  wait "$a" || true
  wait "$b" || true
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "   replica alive after the overload" >&2
    echo '{"label":"full-alive","alive":true}' >>"$jsonl"
  else
    echo "   replica DIED" >&2
    echo '{"label":"full-alive","alive":false}' >>"$jsonl"
  fi
  grep -c -i "too many open files" "$work/attachd-$port/attachd.log" |
    sed 's/^/   "too many open files" log lines: /' >&2 || true
  stop_pid "$server_pid"
fi

machine="$(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB, $(uname -sr), $(date -u +%F)"
cp "$jsonl" "$results/scale.jsonl"
python3 "$root/bench/scale_report.py" "$jsonl" "$machine" >"$results/scale.md"
cat "$results/scale.md"
