//! Worker progress for `/livez` and the systemd watchdog.
//!
//! Each worker stores, once per loop iteration, the time it last ran as
//! milliseconds since a shared epoch ([`Liveness::stamp`] into
//! `WorkerMetrics::heartbeat`). The check compares those stamps with the
//! current time: a worker whose stamp is older than `max_stall` is wedged.
//! Time-based rather than "did the counter change since the last check",
//! so the answer does not depend on how often anyone asks. For it to work
//! a worker must wake at least every `max_stall / 2` even when idle (cap
//! its poll timeout).

use std::time::{Duration, Instant};

use super::metrics::Metrics;

/// The epoch workers stamp against and the allowed stall.
#[derive(Clone, Copy, Debug)]
pub struct Liveness {
    epoch: Instant,
    max_stall: Duration,
}

impl Liveness {
    /// `epoch` is any instant before the workers start (e.g. process start).
    pub fn new(epoch: Instant, max_stall: Duration) -> Self {
        Self { epoch, max_stall }
    }

    /// The heartbeat value for a loop iteration at `now`. Never 0, so a
    /// worker that never ran (0) is told apart from one that ran at the epoch.
    pub fn stamp(&self, now: Instant) -> u64 {
        let ms = now.saturating_duration_since(self.epoch).as_millis();
        u64::try_from(ms).unwrap_or(u64::MAX).saturating_add(1)
    }

    /// `Err(indexes of stalled workers)` at `now`.
    pub fn check(&self, metrics: &Metrics, now: Instant) -> Result<(), Vec<usize>> {
        let limit = self.stamp(now).saturating_sub(self.max_stall_ms());
        let stalled: Vec<usize> = metrics
            .workers
            .iter()
            .enumerate()
            .filter(|(_, w)| {
                let beat = w.heartbeat.get();
                beat == 0 || beat < limit
            })
            .map(|(i, _)| i)
            .collect();
        if stalled.is_empty() {
            Ok(())
        } else {
            Err(stalled)
        }
    }

    fn max_stall_ms(&self) -> u64 {
        u64::try_from(self.max_stall.as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "tests start virtual time at a real Instant"
)]
mod tests {
    use super::*;

    #[test]
    fn a_wedged_worker_fails_the_check() {
        let t0 = Instant::now();
        let live = Liveness::new(t0, Duration::from_secs(5));
        let m = Metrics::new(2);
        // Nobody has run yet: both stalled.
        assert_eq!(live.check(&m, t0), Err(vec![0, 1]));
        let t1 = t0 + Duration::from_secs(1);
        m.workers[0].beat(live.stamp(t1));
        m.workers[1].beat(live.stamp(t1));
        assert_eq!(live.check(&m, t1 + Duration::from_secs(4)), Ok(()));
        // Worker 0 keeps going, worker 1 wedges.
        let t2 = t1 + Duration::from_secs(10);
        m.workers[0].beat(live.stamp(t2));
        assert_eq!(live.check(&m, t2), Err(vec![1]));
        m.workers[1].beat(live.stamp(t2));
        assert_eq!(live.check(&m, t2), Ok(()));
    }
}
