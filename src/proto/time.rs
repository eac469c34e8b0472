//! The time model: the core never reads a clock; the driver passes `Now` in.

use std::time::Instant;

/// The current time as the driver read it.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    /// Monotonic time for every timer.
    pub mono: Instant,
    /// Wall-clock seconds since the Unix epoch, for TURN REST expiry and nonces.
    pub unix_secs: u64,
}
