#!/usr/bin/env bash
# `make bench`: builds release binaries, starts a release attachd (fresh config, free loopback
# ports, its own audit dir), runs the standard set against it and, when they can be installed,
# against the terminado and wetty peers; writes bench/results/latest.{json,md}; stops all it
# started. Every run is bounded (counts and --deadline-secs) and talks to 127.0.0.0/8 only.
#
# Sizes (environment): STORM_N=2000 ECHO_SAMPLES=2000 FAN_OBS=50 FAN_BYTES=20000000
# SOAK_C=2000 SOAK_BIG=10000 SOAK_T=20 PEER_SOAK_C=2000 WETTY_SOAK_C=500
# BENCH_PEERS=0 skips the peers; BENCH_QUICK=1 runs small sizes (a smoke test);
# BENCH_OUT=name writes bench/results/name.{json,md} instead of latest.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
results="$root/bench/results"
mkdir -p "$results"

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  : "${STORM_N:=300}" "${ECHO_SAMPLES:=200}" "${FAN_BYTES:=2000000}" "${SOAK_C:=200}"
  : "${SOAK_BIG:=0}" "${SOAK_T:=3}" "${PEER_SOAK_C:=100}" "${WETTY_SOAK_C:=20}"
fi
STORM_N=${STORM_N:-2000}
ECHO_SAMPLES=${ECHO_SAMPLES:-2000}
FAN_OBS=${FAN_OBS:-50}
FAN_BYTES=${FAN_BYTES:-20000000}
SOAK_C=${SOAK_C:-2000}
SOAK_BIG=${SOAK_BIG:-10000}
SOAK_T=${SOAK_T:-20}
PEER_SOAK_C=${PEER_SOAK_C:-2000}
WETTY_SOAK_C=${WETTY_SOAK_C:-500}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
cargo build --release -p attachd-bench -p attachd
bench="$root/target/release/attachd-bench"
attachd="$root/target/release/attachd"

work=$(mktemp -d /tmp/attachd-bench.XXXXXX)
jsonl="$work/results.jsonl"
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

hard_nofile=$(ulimit -Hn)
secret="bench-$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
sha=$(printf %s "$secret" | sha256sum | cut -d' ' -f1)
export ATTACHD_BENCH_TOKEN="$secret"

run() { # label proto port pid scenario args...
  local label=$1 proto=$2 p=$3 pid=$4
  shift 4
  echo "== $label: $*" >&2
  case $p in http*) ;; *) p="http://127.0.0.1:$p" ;; esac
  "$bench" --proto "$proto" --label "$label" --target "$p" --server-pid "$pid" \
    --out "$jsonl" --md /dev/stderr --deadline-secs 240 "$@" >/dev/null ||
    echo "   (failed: $label $*)" >&2
}

# --- attachd ---------------------------------------------------------------------------
start_attachd
a() { run attachd attachd "$port" "$server_pid" "$@"; }
a connect-storm --n "$STORM_N" --concurrency 64
for k in 0 10 100; do
  a echo --observers "$k" --samples "$ECHO_SAMPLES"
done
# The 50-observer fan-out is repeated: slow-consumer cuts (4003) vary from run to run.
for n in 0 10 "$FAN_OBS" "$FAN_OBS" "$FAN_OBS"; do
  a fanout --observers "$n" --bytes "$FAN_BYTES"
done
stop_pid "$server_pid"
# The same with the queue README recommends for bulk fan-out (8 MiB instead of SPEC's 1 MiB
# default): with the generator on the same 2 vCPUs, the cuts above are its reading falling behind.
start_attachd "" "max_outbound_bytes = 8388608"
for n in 0 "$FAN_OBS" "$FAN_OBS"; do
  run attachd-8mib attachd "$port" "$server_pid" fanout --observers "$n" --bytes "$FAN_BYTES"
done
stop_pid "$server_pid"

# --- the floor: a one-thread WebSocket-to-PTY bridge with ttyd's shape (bench/src/floor.rs) --
# Same client, same machine: how far attachd's echo is from the least a gateway can do here.
start_floor() { # sets $fport and $fpid
  fport=$(free_port)
  "$bench" floor-server --listen "127.0.0.1:$fport" >"$work/floor.log" 2>&1 &
  fpid=$!
  pids+=("$fpid")
  sleep 0.3
}
start_floor
run floor floor "$fport" "$fpid" echo --observers 0 --samples "$ECHO_SAMPLES"
stop_pid "$fpid"
# And the bare PTY (no network), beside the quoted raw PTY figure: how fast this machine is.
run raw-pty attachd 1 0 pty-echo --samples "$ECHO_SAMPLES"

# Soaks on fresh processes, so RSS deltas are not hidden by memory freed earlier.
for c in "$SOAK_C" "$SOAK_BIG"; do
  [ "$c" -gt 0 ] || continue
  if [ "$hard_nofile" -lt $((c + 2000)) ]; then
    echo "   skipping soak of $c: open-file hard limit is $hard_nofile" >&2
    continue
  fi
  start_attachd
  a soak --connections "$c" --seconds "$SOAK_T"
  stop_pid "$server_pid"
done

# --- three replicas sharing Redis: attaches spread over them --------------------------
if [ "${BENCH_REDIS:-1}" != 0 ] && command -v redis-server >/dev/null; then
  rport=$(free_port)
  redis-server --bind 127.0.0.1 --port "$rport" --save "" --appendonly no \
    --dir "$work" >"$work/redis.log" 2>&1 &
  rpid=$!
  pids+=("$rpid")
  sleep 0.5
  targets=()
  replica_pids=()
  for _ in 1 2 3; do
    start_attachd "[redis]
url = \"redis://127.0.0.1:$rport/0\""
    targets+=("http://127.0.0.1:$port")
    replica_pids+=("$server_pid")
  done
  list=$(IFS=,; echo "${targets[*]}")
  run attachd-3-replicas attachd "$list" "${replica_pids[0]}" \
    connect-storm --n "$STORM_N" --concurrency 64
  # The other scenarios on a replica of the three: leases, slots and heartbeat refreshes go
  # through Redis (a session lives on one replica; every attach goes to its owner).
  r() { run attachd-redis attachd "${targets[0]}" "${replica_pids[0]}" "$@"; }
  r echo --observers 10 --samples "$ECHO_SAMPLES"
  r fanout --observers 10 --bytes "$FAN_BYTES"
  r soak --connections "$SOAK_C" --seconds "$SOAK_T"
  for p in "${replica_pids[@]}"; do stop_pid "$p"; done
  stop_pid "$rpid"
else
  echo "   multi-replica skipped (no redis-server)" >&2
fi

# --- peers -----------------------------------------------------------------------------
if [ "${BENCH_PEERS:-1}" != 0 ] && bench/peers/setup.sh; then
  # The issue's quoted peer figures come from a Python `websockets` client: the same client
  # against attachd and terminado (0 observers).
  py() { # proto port
    echo "== python websockets client: echo against $1" >&2
    bench/peers/.venv/bin/python bench/peers/py_echo.py --proto "$1" \
      --target "http://127.0.0.1:$2" --samples "$ECHO_SAMPLES" --md "$work/python.md" >/dev/null ||
      echo "   (failed: python echo against $1)" >&2
  }
  start_attachd
  py attachd "$port"
  stop_pid "$server_pid"
  start_floor
  py floor "$fport"
  stop_pid "$fpid"

  tport=$(free_port)
  bench/peers/.venv/bin/python bench/peers/terminado_server.py --port "$tport" >"$work/terminado.log" 2>&1 &
  tpid=$!
  pids+=("$tpid")
  sleep 1
  t() { run terminado terminado "$tport" "$tpid" "$@"; }
  py terminado "$tport"
  t soak --connections "$PEER_SOAK_C" --seconds "$SOAK_T"
  for k in 0 10; do
    t echo --observers "$k" --samples "$ECHO_SAMPLES"
  done
  for n in 0 10; do
    t fanout --observers "$n" --bytes "$((FAN_BYTES / 4))"
  done
  stop_pid "$tpid"

  if [ -f bench/peers/wetty/node_modules/wetty/build/main.js ]; then
    wport=$(free_port)
    (
      cd bench/peers/wetty
      exec node node_modules/wetty/build/main.js --host 127.0.0.1 --port "$wport" \
        --command /bin/sh --base /wetty/ --log-level warn
    ) >"$work/wetty.log" 2>&1 &
    wpid=$!
    pids+=("$wpid")
    wait_http "http://127.0.0.1:$wport/wetty/" 20 || true
    w() { run wetty wetty "$wport" "$wpid" "$@"; }
    w soak --connections "$WETTY_SOAK_C" --seconds "$SOAK_T" --concurrency 8
    w echo --observers 0 --samples "$ECHO_SAMPLES"
    w fanout --observers 0 --bytes "$((FAN_BYTES / 4))"
    stop_pid "$wpid"
  fi
else
  echo "   peers skipped" >&2
fi

machine="$(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB, $(uname -sr), load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)"
out=${BENCH_OUT:-latest}
cp "$jsonl" "$results/$out.jsonl"
"$bench" summarize --input "$jsonl" --json "$results/$out.json" --md "$results/$out.md" \
  --machine "$machine"
if [ -s "$work/python.md" ]; then
  {
    printf '\n## Echo with a Python websockets client (bench/peers/py_echo.py)\n\n'
    printf '| scenario | label | params | result |\n|---|---|---|---|\n'
    cat "$work/python.md"
  } >>"$results/$out.md"
fi
echo "wrote bench/results/$out.json and bench/results/$out.md" >&2
