//! Prometheus metrics of the actor system, registered once in the default registry.
//! Labels are small fixed sets (roles, reasons); never ids, subjects or tokens.

use std::sync::LazyLock;

use prometheus::{
    register_counter, register_histogram, register_int_counter, register_int_counter_vec,
    register_int_gauge, register_int_gauge_vec, Counter, Histogram, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec,
};

use crate::register::must;

/// Open attach connections by role.
pub static CONNECTIONS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    must(
        register_int_gauge_vec!(
            "attachd_connections",
            "Open attach connections by role",
            &["role"]
        ),
        "attachd_connections",
    )
});

/// Handshake outcomes by reason (`ok` or the SPEC error code).
pub static HANDSHAKES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    must(
        register_int_counter_vec!(
            "attachd_handshakes_total",
            "Attach handshake outcomes by reason",
            &["outcome"]
        ),
        "attachd_handshakes_total",
    )
});

/// Rate-limit decisions by limit and decision.
pub static RATE_LIMIT_DECISIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    must(
        register_int_counter_vec!(
            "attachd_rate_limit_decisions_total",
            "Rate-limit decisions by limit, decision and source (redis or local)",
            &["limit", "decision", "source"]
        ),
        "attachd_rate_limit_decisions_total",
    )
});

/// Terminal output bytes delivered into participant queues.
pub static BYTES_OUT: LazyLock<IntCounter> = LazyLock::new(|| {
    must(
        register_int_counter!(
            "attachd_bytes_out_total",
            "Terminal output bytes queued to participants"
        ),
        "attachd_bytes_out_total",
    )
});

/// stdin bytes received from drivers.
pub static BYTES_IN: LazyLock<IntCounter> = LazyLock::new(|| {
    must(
        register_int_counter!("attachd_bytes_in_total", "stdin bytes received"),
        "attachd_bytes_in_total",
    )
});

/// Participants closed for a full outbound queue.
pub static SLOW_CONSUMER_CLOSES: LazyLock<IntCounter> = LazyLock::new(|| {
    must(
        register_int_counter!(
            "attachd_slow_consumer_closes_total",
            "Connections closed with 4003 for a full outbound queue"
        ),
        "attachd_slow_consumer_closes_total",
    )
});

/// Control changes by reason.
pub static CONTROL_CHANGES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    must(
        register_int_counter_vec!(
            "attachd_control_changes_total",
            "Control seat changes by reason",
            &["reason"]
        ),
        "attachd_control_changes_total",
    )
});

/// Connection closes by close code.
pub static CLOSES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    must(
        register_int_counter_vec!(
            "attachd_closes_total",
            "Attach connection closes by close code",
            &["code"]
        ),
        "attachd_closes_total",
    )
});

/// Redis command latency.
pub static REDIS_LATENCY: LazyLock<Histogram> = LazyLock::new(|| {
    must(
        register_histogram!(
            "attachd_redis_latency_seconds",
            "Latency of Redis decisions",
            vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]
        ),
        "attachd_redis_latency_seconds",
    )
});

/// Redis errors.
pub static REDIS_ERRORS: LazyLock<IntCounter> = LazyLock::new(|| {
    must(
        register_int_counter!("attachd_redis_errors_total", "Failed Redis operations"),
        "attachd_redis_errors_total",
    )
});

/// Decisions taken without Redis (outage fallback).
pub static REDIS_DEGRADED: LazyLock<IntCounter> = LazyLock::new(|| {
    must(
        register_int_counter!(
            "attachd_redis_degraded_decisions_total",
            "Limit, ticket and lease decisions taken without Redis under redis.on_error"
        ),
        "attachd_redis_degraded_decisions_total",
    )
});

/// Snapshots sent, by reason (`join`, `resync`, `resume_gap`).
pub static SNAPSHOTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    must(
        register_int_counter_vec!(
            "attachd_snapshots_total",
            "Terminal snapshots sent to participants, by reason",
            &["reason"]
        ),
        "attachd_snapshots_total",
    )
});

/// Size of built snapshots.
pub static SNAPSHOT_BYTES: LazyLock<Histogram> = LazyLock::new(|| {
    must(
        register_histogram!(
            "attachd_snapshot_bytes",
            "Size of terminal snapshots built",
            vec![512.0, 2048.0, 8192.0, 32768.0, 131072.0, 524288.0, 2097152.0]
        ),
        "attachd_snapshot_bytes",
    )
});

/// Resume attempts by outcome (`exact`: the missing bytes were replayed; `gap`: a snapshot).
pub static RESUMES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    must(
        register_int_counter_vec!(
            "attachd_resumes_total",
            "Resumed attaches by outcome",
            &["outcome"]
        ),
        "attachd_resumes_total",
    )
});

/// Times the backend stopped being read (emulator lag or the holder's window).
pub static PACED_WAITS: LazyLock<IntCounter> = LazyLock::new(|| {
    must(
        register_int_counter!(
            "attachd_paced_waits_total",
            "Times a session stopped reading its backend to pace the program"
        ),
        "attachd_paced_waits_total",
    )
});

/// Time the backend was not read to pace the program.
pub static PACED_SECONDS: LazyLock<Counter> = LazyLock::new(|| {
    must(
        register_counter!(
            "attachd_paced_seconds_total",
            "Time sessions spent not reading their backend to pace the program"
        ),
        "attachd_paced_seconds_total",
    )
});

/// Output bytes observers skipped through a resync.
pub static SKIPPED_BYTES: LazyLock<IntCounter> = LazyLock::new(|| {
    must(
        register_int_counter!(
            "attachd_resync_skipped_bytes_total",
            "Output bytes that resynced observers did not receive"
        ),
        "attachd_resync_skipped_bytes_total",
    )
});

/// Participants cut for making no progress for `ws.stall_timeout`.
pub static STALL_CLOSES: LazyLock<IntCounter> = LazyLock::new(|| {
    must(
        register_int_counter!(
            "attachd_stall_closes_total",
            "Connections closed with 4003 after ws.stall_timeout without progress"
        ),
        "attachd_stall_closes_total",
    )
});

/// 1 while `/readyz` would answer 200, 0 otherwise (set when metrics are gathered).
pub static READY: LazyLock<IntGauge> = LazyLock::new(|| {
    must(
        register_int_gauge!(
            "attachd_ready",
            "1 while this replica is ready (what /readyz answers), 0 otherwise"
        ),
        "attachd_ready",
    )
});

/// 1 while Redis is configured and unreachable (set when metrics are gathered).
pub static REDIS_DOWN: LazyLock<IntGauge> = LazyLock::new(|| {
    must(
        register_int_gauge!(
            "attachd_redis_down",
            "1 while redis.url is set and Redis is unreachable (decisions follow redis.on_error)"
        ),
        "attachd_redis_down",
    )
});

/// Open client connections on the API listener, HTTP and WebSocket (set when metrics are
/// gathered).
pub static API_CONNECTIONS: LazyLock<IntGauge> = LazyLock::new(|| {
    must(
        register_int_gauge!(
            "attachd_api_connections",
            "Open client connections on the API listener (HTTP and WebSocket)"
        ),
        "attachd_api_connections",
    )
});

/// `server.max_connections` in force.
pub static API_CONNECTIONS_MAX: LazyLock<IntGauge> = LazyLock::new(|| {
    must(
        register_int_gauge!(
            "attachd_api_connections_max",
            "server.max_connections: past it attaches get 503 at_capacity"
        ),
        "attachd_api_connections_max",
    )
});

/// Connections refused for capacity: `answered` (an attach got 503 `at_capacity`) or `closed`
/// (closed as soon as accepted, past the headroom).
pub static CAPACITY_REFUSALS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    must(
        register_int_counter_vec!(
            "attachd_capacity_refusals_total",
            "Connections refused at capacity: answered 503 at_capacity, or closed when accepted",
            &["how"]
        ),
        "attachd_capacity_refusals_total",
    )
});

/// The label values of `attachd_rate_limit_decisions_total` that dashboards are drawn over.
const RATE_LIMITS: [&str; 2] = ["ip_attempts", "connections"];

/// Touches every metric so it is exported (with zero) from the start, with the label values
/// alerts are written against (close codes, handshake `ok`, audit errors).
pub fn init() {
    for reason in ["join", "resync", "resume_gap"] {
        SNAPSHOTS.with_label_values(&[reason]);
    }
    for outcome in ["exact", "gap"] {
        RESUMES.with_label_values(&[outcome]);
    }
    LazyLock::force(&SNAPSHOT_BYTES);
    LazyLock::force(&PACED_WAITS);
    LazyLock::force(&PACED_SECONDS);
    LazyLock::force(&SKIPPED_BYTES);
    LazyLock::force(&STALL_CLOSES);
    for role in ["driver", "observer"] {
        CONNECTIONS.with_label_values(&[role]);
    }
    LazyLock::force(&HANDSHAKES);
    for limit in RATE_LIMITS {
        for decision in ["allow", "deny"] {
            for source in ["redis", "local"] {
                RATE_LIMIT_DECISIONS.with_label_values(&[limit, decision, source]);
            }
        }
    }
    LazyLock::force(&READY);
    LazyLock::force(&REDIS_DOWN);
    LazyLock::force(&API_CONNECTIONS);
    LazyLock::force(&API_CONNECTIONS_MAX);
    for how in ["answered", "closed"] {
        CAPACITY_REFUSALS.with_label_values(&[how]);
    }
    LazyLock::force(&BYTES_OUT);
    LazyLock::force(&BYTES_IN);
    LazyLock::force(&SLOW_CONSUMER_CLOSES);
    // The `reason` of control frames (SPEC §5).
    for reason in ["acquired", "released", "expired", "revoked", "disconnected"] {
        CONTROL_CHANGES.with_label_values(&[reason]);
    }
    for code in crate::protocol::close::ALL {
        CLOSES.with_label_values(&[&code.to_string()]);
    }
    HANDSHAKES.with_label_values(&["ok"]);
    crate::audit::init_metrics();
    LazyLock::force(&REDIS_LATENCY);
    LazyLock::force(&REDIS_ERRORS);
    LazyLock::force(&REDIS_DEGRADED);
}
