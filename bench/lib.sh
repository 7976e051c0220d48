# Shared by the bench scripts (sourced): a free loopback port, and the attachd config every
# bench run uses (limits raised so they are not what gets measured, one static token).

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
