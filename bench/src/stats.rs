//! Latency summaries from raw samples (sorted copies; sample counts here are small) and
//! rates, as JSON objects with fixed field names.

use serde_json::{json, Value};

/// Nearest-rank percentile of sorted samples (`q` in 0..=100).
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // The epsilon keeps float noise (99.9 / 100 * 1000 = 999.0000000000001) off the next rank.
    let rank = ((q / 100.0) * sorted.len() as f64 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `{n, min, p50, p90, p99, p999, max, mean}` of microsecond samples.
pub fn summary_us(samples: &[u64]) -> Value {
    let mut s = samples.to_vec();
    s.sort_unstable();
    let mean = if s.is_empty() {
        0.0
    } else {
        s.iter().sum::<u64>() as f64 / s.len() as f64
    };
    json!({
        "n": s.len(),
        "min": s.first().copied().unwrap_or(0),
        "p50": percentile(&s, 50.0),
        "p90": percentile(&s, 90.0),
        "p99": percentile(&s, 99.0),
        "p999": percentile(&s, 99.9),
        "max": s.last().copied().unwrap_or(0),
        "mean": round1(mean),
    })
}

/// One decimal.
pub fn round1(x: f64) -> f64 {
    round_to(x, 1)
}

/// `decimals` decimals.
pub fn round_to(x: f64, decimals: i32) -> f64 {
    let m = 10f64.powi(decimals);
    (x * m).round() / m
}

/// Bytes per second over `secs` (0 when no time passed).
pub fn rate(bytes: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        bytes as f64 / secs
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let s: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&s, 50.0), 500);
        assert_eq!(percentile(&s, 99.0), 990);
        assert_eq!(percentile(&s, 99.9), 999);
        assert_eq!(percentile(&s, 100.0), 1000);
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(summary_us(&[3, 1, 2])["p50"], 2);
    }
}
