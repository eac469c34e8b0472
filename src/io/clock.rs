//! The one place that reads clocks or sleeps.
//!
//! `clippy.toml` disallows `Instant::now`, `SystemTime::now` and
//! `thread::sleep` everywhere else, so the time the core sees (`Now`) and
//! the time the driver acts on come from here.

#![allow(
    clippy::disallowed_methods,
    reason = "the clock module is the one place allowed to read clocks"
)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::proto::time::Now;

/// Monotonic and wall time, as the core takes them.
pub(crate) fn now() -> Now {
    Now {
        mono: mono(),
        unix_secs: unix_secs(),
    }
}

/// Monotonic time only (deadlines, idle timers).
#[inline]
pub(crate) fn mono() -> Instant {
    Instant::now()
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Blocks the calling worker for `d` (interrupt coalescing).
pub(crate) fn sleep(d: Duration) {
    std::thread::sleep(d);
}
