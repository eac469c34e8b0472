//! Per-token rate limit: one token bucket per configured bearer token.
//!
//! The buckets are a vector indexed by the token's position in the token
//! file, so memory is fixed at start: a request is matched to a token
//! before it reaches the limiter, and unknown tokens get 401 without
//! touching it.

/// Token buckets refilled `rate` per second up to `2 * rate`.
#[derive(Debug)]
pub(crate) struct Buckets {
    rate: u64,
    burst: u64,
    /// (tokens left, unix second of the last refill), per bearer token.
    state: Vec<(u64, u64)>,
}

impl Buckets {
    /// `count` buckets, full. `rate` 0 is treated as 1 (config rejects 0).
    pub(crate) fn new(count: usize, rate: u32) -> Self {
        let rate = u64::from(rate.max(1));
        let burst = rate * 2;
        Self {
            rate,
            burst,
            state: vec![(burst, 0); count],
        }
    }

    /// Takes one request from bucket `index` at `now` (unix seconds);
    /// `false` = over the limit. Time going backwards refills nothing.
    pub(crate) fn take(&mut self, index: usize, now: u64) -> bool {
        let Some((left, last)) = self.state.get_mut(index) else {
            return false;
        };
        let elapsed = now.saturating_sub(*last);
        if elapsed > 0 {
            *left = left
                .saturating_add(elapsed.saturating_mul(self.rate))
                .min(self.burst);
            *last = now;
        }
        if *left == 0 {
            return false;
        }
        *left -= 1;
        true
    }
}
