# Shared by the bench scripts (sourced): a free loopback port, the attachd config every bench
# run uses (limits raised so they are not what gets measured, one static token), and starting
# and stopping a release attachd, and the common setup of the many-connection scripts.

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# bench_config FILE PORT ADMIN_PORT AUDIT_PATH TOKEN_SHA256 [WS_EXTRA] [EXTRA_TOML]
bench_config() {
  cat >"$1" <<EOF_CONFIG
[server]
listen = "127.0.0.1:$2"
admin_listen = "127.0.0.1:$3"
tls_terminated_upstream = true

[limits]
ip_attempts = 10000000
subject_connections = 1000000
session_participants = 1000

[ws]
stdin_messages_per_sec = 1000000
stdin_bytes_per_sec = 1073741824
${6:-}

[audit]
path = "$4"

[[auth.static_tokens]]
subject = "bench"
tenant = "bench"
scopes = ["sessions:read", "sessions:write", "attach:observe", "attach:drive"]
sha256 = "$5"

${7:-}
EOF_CONFIG
}

wait_http() { # url, seconds
  local end=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    [ "$SECONDS" -lt "$end" ] || { echo "no answer from $1" >&2; return 1; }
    sleep 0.1
  done
}

# Starts a fresh attachd (TOML in $1 appended to its config, keys in $2 added to its [ws]
# table) at its hard open-file limit; sets $port and $server_pid. Uses the caller's $work,
# $attachd, $sha and $hard_nofile, and adds the pid to its $pids.
start_attachd() {
  local extra=${1:-} ws_extra=${2:-}
  port=$(free_port)
  admin=$(free_port) # global: the last replica's admin port (metrics)
  local dir="$work/attachd-$port"
  mkdir -p "$dir"
  bench_config "$dir/attachd.toml" "$port" "$admin" "$dir/audit.log" "$sha" "$ws_extra" "$extra"
  (
    cd "$dir"
    ulimit -n "$hard_nofile"
    RUST_LOG=${BENCH_RUST_LOG:-info} exec "$attachd" serve --config attachd.toml >"$dir/attachd.log" 2>&1
  ) &
  server_pid=$!
  pids+=("$server_pid")
  wait_http "http://127.0.0.1:$port/healthz" 20
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# bench_env NAME: what the many-connection scripts (scale.sh, flood.sh) set up first. Builds the
# release binaries ($bench, $attachd; BENCH_BIN=DIR takes both from DIR instead), makes $results (bench/results) and $work with $jsonl in it, kills and reaps every pid
# in $pids on exit, raises the open-file limit to the hard one ($hard_nofile), and makes one
# static token ($secret, its $sha, ATTACHD_BENCH_TOKEN). Uses the caller's $root.
bench_env() {
  results="$root/bench/results"
  mkdir -p "$results"
  if [ -n "${BENCH_BIN:-}" ]; then
    bench="$BENCH_BIN/attachd-bench"
    attachd="$BENCH_BIN/attachd"
  else
    cargo build --release -p attachd-bench -p attachd
    bench="$root/target/release/attachd-bench"
    attachd="$root/target/release/attachd"
  fi
  work=$(mktemp -d "/tmp/attachd-$1.XXXXXX")
  jsonl="$work/$1.jsonl"
  pids=()
  trap bench_cleanup EXIT
  hard_nofile=$(ulimit -Hn)
  ulimit -n "$hard_nofile"
  secret="$1-$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
  sha=$(printf %s "$secret" | sha256sum | cut -d' ' -f1)
  export ATTACHD_BENCH_TOKEN="$secret"
  # Few log lines per connection, so the log is not what is measured.
  export BENCH_RUST_LOG=${BENCH_RUST_LOG:-warn}
}

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  # BENCH_KEEP=1 keeps the servers' logs and audit logs for a look after the run.
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
