//! A shared time grid for periodic work: timers of many actors that round their deadlines up
//! to the same grid points wake a worker thread once per point, together, instead of once each.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The first point at or after `t` on the grid of `step` (a little late, never early).
pub fn on_grid(t: Instant, step: Duration) -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    let step = step.as_nanos().max(1);
    let steps = t.saturating_duration_since(epoch).as_nanos().div_ceil(step);
    epoch + Duration::from_nanos(u64::try_from(steps * step).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_never_early_and_shared() {
        let step = Duration::from_millis(100);
        let t = Instant::now() + Duration::from_millis(7);
        let g = on_grid(t, step);
        assert!(g >= t);
        assert!(g - t < step);
        assert_eq!(on_grid(g, step), g);
        let other = on_grid(t + Duration::from_millis(30), step);
        assert!(other == g || other == g + step);
        // A coarser grid's points are points of the finer one (both count from one epoch).
        let coarse = on_grid(t, Duration::from_secs(1));
        assert_eq!(on_grid(coarse, step), coarse);
    }
}
