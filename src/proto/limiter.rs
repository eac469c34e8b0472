//! Rate limiting without per-source state that can grow.
//!
//! [`SourceLimiter`] is a fixed array of token buckets indexed by a keyed
//! hash of the source IP (the pingora-limits idea; SipHash over a secret
//! prefix the driver hands in, so a client cannot aim at another's bucket,
//! and no randomness is drawn here): memory is constant
//! whatever the number of sources, at the price of sources that collide
//! sharing a bucket. It throttles error responses to unauthenticated
//! requests, so a spoofed flood cannot make tern a reflector.
//!
//! [`TokenBucket`] is the per-allocation bandwidth limit.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;
use std::time::Instant;

/// A token bucket counting in units (bytes, responses) per second.
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    tokens: u64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(now: Instant, burst: u64) -> Self {
        Self {
            tokens: burst,
            last: now,
        }
    }

    /// Takes `n` units if available after refilling at `rate` per second up to `burst`.
    #[inline]
    pub fn take(&mut self, now: Instant, n: u64, rate: u64, burst: u64) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        // Refill in whole units; keep the remainder of time by only moving
        // `last` forward by what was credited (no drift at low rates).
        let add = (elapsed.as_nanos().saturating_mul(u128::from(rate)) / 1_000_000_000) as u64;
        if add > 0 {
            self.tokens = self.tokens.saturating_add(add).min(burst);
            if self.tokens == burst {
                self.last = now;
            } else {
                self.last += std::time::Duration::from_nanos(
                    (u128::from(add) * 1_000_000_000 / u128::from(rate.max(1))) as u64,
                );
            }
        }
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

/// Buckets per limiter: 4096 × 24 bytes ≈ 96 KiB per shard.
const BUCKETS: usize = 4096;

/// Per-source-IP limiter with a bounded table.
pub struct SourceLimiter {
    buckets: Box<[Option<TokenBucket>]>,
    /// SipHash state after absorbing the secret key: cloned per lookup, so
    /// a bucket index costs one short hash (this runs for every
    /// unauthenticated request, flood included).
    keyed: DefaultHasher,
    rate: u64,
    burst: u64,
}

/// Without the keyed hash state, which would give the key away.
impl std::fmt::Debug for SourceLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceLimiter")
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl SourceLimiter {
    /// `rate` events per second per source, `burst` at once; sources are
    /// spread over the buckets by a hash keyed with `key`.
    pub fn new(rate: u64, burst: u64, key: [u8; 32]) -> Self {
        let mut keyed = DefaultHasher::new();
        keyed.write(&key);
        Self {
            buckets: vec![None; BUCKETS].into_boxed_slice(),
            keyed,
            rate,
            burst,
        }
    }

    /// May `ip` have one more event now?
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let mut h = self.keyed.clone();
        ip.hash(&mut h);
        let i = (h.finish() % BUCKETS as u64) as usize;
        let b = self.buckets[i].get_or_insert_with(|| TokenBucket::new(now, self.burst));
        b.take(now, 1, self.rate, self.burst)
    }

    /// Bytes of memory the table holds (constant).
    pub fn footprint() -> usize {
        BUCKETS * size_of::<Option<TokenBucket>>()
    }
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "tests start virtual time at a real Instant"
)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bucket_refills_at_rate_up_to_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(t0, 10);
        assert!(b.take(t0, 10, 100, 10));
        assert!(!b.take(t0, 1, 100, 10));
        assert!(b.take(t0 + Duration::from_millis(10), 1, 100, 10));
        assert!(!b.take(t0 + Duration::from_millis(10), 1, 100, 10));
        // A long pause refills only to the burst.
        assert!(b.take(t0 + Duration::from_secs(60), 10, 100, 10));
        assert!(!b.take(t0 + Duration::from_secs(60), 1, 100, 10));
    }

    #[test]
    fn low_rates_do_not_drift() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(t0, 0);
        let mut granted = 0;
        for ms in (0..10_000).step_by(7) {
            if b.take(t0 + Duration::from_millis(ms), 1, 3, 1) {
                granted += 1;
            }
        }
        assert!((29..=31).contains(&granted), "{granted}");
    }

    #[test]
    fn limiter_is_per_source_and_bounded() {
        let t0 = Instant::now();
        let mut l = SourceLimiter::new(1, 3, [5; 32]);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!((0..3).all(|_| l.allow(a, t0)));
        assert!(!l.allow(a, t0));
        // A million other sources cost no memory beyond the fixed table.
        let mut allowed = 0;
        for i in 0..1_000_000u32 {
            if l.allow(IpAddr::V4(i.into()), t0) {
                allowed += 1;
            }
        }
        assert!(allowed <= BUCKETS * 3);
        assert_eq!(
            SourceLimiter::footprint(),
            BUCKETS * size_of::<Option<TokenBucket>>()
        );
    }
}
