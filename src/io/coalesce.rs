//! Adaptive interrupt coalescing: when, after a wakeup, a worker waits
//! before it polls again, so that the datagrams arriving meanwhile are
//! received and sent in one batch.
//!
//! Every wakeup costs a block and a wake in `epoll_wait` (a few µs, more
//! than the datagram it brings at moderate rates). Waiting turns several
//! wakeups into one, but every datagram that arrives during the wait pays
//! for it in latency. A fixed wait after every small wakeup (tern's first
//! design, `coalesce_us = 500`) taxed every packet at moderate rates: a p50
//! of 300–400 µs at 20 kpkt/s against coturn's 30–80 µs.
//!
//! So the worker waits only when the wait buys a batch:
//! - it estimates its arrival rate (datagrams per second, an EWMA over
//!   recent wakeups, so a burst does not flip it and an idle gap resets it
//!   within a few wakeups);
//! - it waits `BATCH / rate`, the time a batch of [`BATCH`] takes to
//!   arrive, and only if that is within the configured cap
//!   (`server.coalesce_us`): below `BATCH / cap` datagrams per second it
//!   never waits, so moderate traffic sees no added latency at all;
//! - never after a wakeup that carried a STUN request or TCP/TLS traffic
//!   (call setup: the next request is one round trip away), nor after one
//!   that already found a full batch (the worker is busy; the next poll
//!   returns at once).
//!
//! Off by default (`server.coalesce_us = 0`): measured with the
//! scheduler's exact run time (BENCHMARKS.md, 2026-11-30), the wait — a
//! `nanosleep`, itself a timer interrupt and a wakeup — cost more server
//! CPU per datagram than the epoll wakeups it saved (e.g. 100k paced
//! datagrams/s over 100 flows: 5.8–6.0 µs per datagram with a 200 µs cap
//! against 4.7–5.5 µs without) and added 50–70 µs of p50 latency. A busy
//! worker batches anyway: its `epoll_wait` returns at once with every
//! socket that filled while it worked. The mechanism stays for hosts where
//! an operator measures otherwise.
//!
//! Pure arithmetic over times handed in (no clock here), so it is tested
//! in virtual time.

use std::time::{Duration, Instant};

/// The batch a wait aims for: datagrams per wakeup at which the wakeup
/// cost (≈ one datagram's worth) is shared by enough datagrams to stop
/// mattering. A wakeup that found this many does not wait.
pub(crate) const BATCH: usize = 8;

/// EWMA weight of a new wakeup (1/8).
const WEIGHT: f64 = 0.125;

/// The coalescing state of one worker.
#[derive(Debug)]
pub(crate) struct Coalescer {
    /// The longest wait; zero = never wait.
    cap: Duration,
    /// Smoothed datagrams per wakeup and seconds between wakeups.
    avg_n: f64,
    avg_dt: f64,
    last_wake: Option<Instant>,
    /// The current wakeup handled STUN or stream traffic: do not wait after it.
    urgent: bool,
}

impl Coalescer {
    pub(crate) fn new(cap: Duration) -> Self {
        Self {
            cap,
            avg_n: 0.0,
            avg_dt: 0.0,
            last_wake: None,
            urgent: false,
        }
    }

    /// Marks the current wakeup as carrying latency-sensitive traffic
    /// (a STUN request or response, TCP/TLS data or a new connection).
    #[inline]
    pub(crate) fn urgent(&mut self) {
        self.urgent = true;
    }

    /// The smoothed arrival rate in datagrams per second (0 before two wakeups).
    pub(crate) fn rate(&self) -> f64 {
        if self.avg_dt > 0.0 {
            self.avg_n / self.avg_dt
        } else {
            0.0
        }
    }

    /// Called once per wakeup, after it was handled: `woke` is when the
    /// poll returned, `handled` the datagrams this wakeup took. Returns how
    /// long to wait before the next poll (zero = poll at once).
    pub(crate) fn after_wakeup(&mut self, woke: Instant, handled: usize) -> Duration {
        let urgent = std::mem::take(&mut self.urgent);
        if self.cap.is_zero() {
            return Duration::ZERO;
        }
        if let Some(prev) = self.last_wake.replace(woke) {
            let dt = woke.saturating_duration_since(prev).as_secs_f64();
            self.avg_n += WEIGHT * (handled as f64 - self.avg_n);
            self.avg_dt += WEIGHT * (dt - self.avg_dt);
        }
        if urgent || handled == 0 || handled >= BATCH {
            return Duration::ZERO;
        }
        let rate = self.rate();
        if rate <= 0.0 {
            return Duration::ZERO;
        }
        let wait = BATCH as f64 / rate;
        if wait > self.cap.as_secs_f64() {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wakeups` wakeups of `n` datagrams every `every`; returns the
    /// last wait asked for.
    fn steady(
        c: &mut Coalescer,
        t: &mut Instant,
        every: Duration,
        n: usize,
        wakeups: usize,
    ) -> Duration {
        let mut wait = Duration::ZERO;
        for _ in 0..wakeups {
            *t += every;
            wait = c.after_wakeup(*t, n);
        }
        wait
    }

    #[test]
    fn moderate_traffic_never_waits() {
        // 20 kpkt/s, one datagram per wakeup: a batch of 8 would take
        // 400 µs, more than the 200 µs cap, so no wait is ever added.
        let mut c = Coalescer::new(Duration::from_micros(200));
        let mut t = crate::io::clock::mono();
        let wait = steady(&mut c, &mut t, Duration::from_micros(50), 1, 100);
        assert_eq!(wait, Duration::ZERO);
        assert!((c.rate() - 20_000.0).abs() < 1.0, "{}", c.rate());
    }

    #[test]
    fn heavy_traffic_waits_for_a_batch_within_the_cap() {
        // 100 kpkt/s, one or two datagrams per wakeup: wait 8 / 100k = 80 µs.
        let mut c = Coalescer::new(Duration::from_micros(200));
        let mut t = crate::io::clock::mono();
        let wait = steady(&mut c, &mut t, Duration::from_micros(20), 2, 200);
        let us = wait.as_secs_f64() * 1e6;
        assert!((75.0..=85.0).contains(&us), "waited {us} µs");
    }

    #[test]
    fn full_batches_urgent_wakeups_and_a_zero_cap_do_not_wait() {
        let mut c = Coalescer::new(Duration::from_micros(200));
        let mut t = crate::io::clock::mono();
        steady(&mut c, &mut t, Duration::from_micros(20), 2, 200);
        t += Duration::from_micros(20);
        assert_eq!(c.after_wakeup(t, BATCH), Duration::ZERO, "full batch");
        c.urgent();
        t += Duration::from_micros(20);
        assert_eq!(c.after_wakeup(t, 2), Duration::ZERO, "STUN in the wakeup");
        // The mark lasts one wakeup only.
        t += Duration::from_micros(20);
        assert!(c.after_wakeup(t, 2) > Duration::ZERO);

        let mut off = Coalescer::new(Duration::ZERO);
        let mut t = crate::io::clock::mono();
        assert_eq!(
            steady(&mut off, &mut t, Duration::from_micros(5), 2, 100),
            Duration::ZERO
        );
    }

    #[test]
    fn an_idle_gap_ends_the_waiting_within_a_few_wakeups() {
        let mut c = Coalescer::new(Duration::from_micros(200));
        let mut t = crate::io::clock::mono();
        steady(&mut c, &mut t, Duration::from_micros(20), 2, 200);
        // Traffic drops to 1 kpkt/s: after a handful of wakeups no more waits.
        let wait = steady(&mut c, &mut t, Duration::from_millis(1), 1, 6);
        assert_eq!(wait, Duration::ZERO);
    }
}
