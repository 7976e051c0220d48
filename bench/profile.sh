#!/usr/bin/env bash
# Profiles a release attachd under one bench scenario with perf (cpu-clock, DWARF stacks) and
# prints the top symbols. Usage: bench/profile.sh echo|fanout|storm  (release build needed:
# `cargo build --release -p attachd-bench -p attachd`). Output stays in a temp dir it prints.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-echo}
bench="$root/target/release/attachd-bench"
attachd="$root/target/release/attachd"
work=$(mktemp -d /tmp/attachd-profile.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
secret="prof-$(head -c 12 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
cat >"$work/attachd.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
admin_listen = "127.0.0.1:$(free_port)"
tls_terminated_upstream = true
[limits]
ip_attempts = 10000000
subject_connections = 1000000
session_participants = 1000
[ws]
stdin_messages_per_sec = 1000000
stdin_bytes_per_sec = 1073741824
[audit]
path = "$work/audit.log"
[[auth.static_tokens]]
subject = "bench"
tenant = "bench"
scopes = ["sessions:write", "attach:observe", "attach:drive"]
sha256 = "$(printf %s "$secret" | sha256sum | cut -d' ' -f1)"
EOF
(cd "$work" && RUST_LOG=info exec "$attachd" serve --config attachd.toml >attachd.log 2>&1) &
spid=$!
trap 'kill $spid 2>/dev/null || true' EXIT
until curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz"; do sleep 0.1; done
case $what in
  echo) args=(echo --observers 100 --samples 4000) ;;
  fanout) args=(fanout --observers 50 --bytes 20000000) ;;
  storm) args=(connect-storm --n 4000 --concurrency 64) ;;
  *) echo "usage: $0 echo|fanout|storm" >&2; exit 2 ;;
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
