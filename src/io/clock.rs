//! The one place that reads clocks.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::proto::time::Now;

pub(crate) fn now() -> Now {
    let unix_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Now {
        mono: Instant::now(),
        unix_secs,
    }
}
