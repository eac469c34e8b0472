//! What the workers share: the allocation quota ledger and the relay ports
//! held under RESERVATION-TOKENs.
//!
//! Both are touched once per allocation (bind, release, claim, expiry),
//! never per packet, so a short mutex here is not on the relay path. They
//! live in the driver, not in `proto`, so the core holds no shared state:
//! a worker carries out `Command::BindRelay` by taking a [`QuotaHold`] and
//! (for a token) claiming the held socket, and answers the core with a
//! typed `BindError` when it cannot.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::proto::turn::{BindError, ReservationToken};

/// Allocation counts, total and per username, against the configured
/// limits (which a config reload may change: new allocations see them).
#[derive(Debug)]
pub(crate) struct QuotaLedger {
    max_total: AtomicU32,
    max_per_user: AtomicU32,
    inner: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: u32,
    per_user: HashMap<String, u32>,
}

impl QuotaLedger {
    pub(crate) fn new(max_total: u32, max_per_user: u32) -> Arc<Self> {
        Arc::new(Self {
            max_total: AtomicU32::new(max_total),
            max_per_user: AtomicU32::new(max_per_user),
            inner: Mutex::default(),
        })
    }

    /// New limits (reload); allocations over them keep running.
    pub(crate) fn set_limits(&self, max_total: u32, max_per_user: u32) {
        self.max_total.store(max_total, Relaxed);
        self.max_per_user.store(max_per_user, Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one allocation for `user` if both limits allow it; the hold
    /// gives it back when dropped (with the relay sockets it goes with).
    pub(crate) fn acquire(self: &Arc<Self>, user: &str) -> Result<QuotaHold, BindError> {
        let mut c = self.lock();
        if c.total >= self.max_total.load(Relaxed) {
            return Err(BindError::TotalQuota);
        }
        let n = c.per_user.get(user).copied().unwrap_or(0);
        if n >= self.max_per_user.load(Relaxed) {
            return Err(BindError::UserQuota);
        }
        c.total += 1;
        *c.per_user.entry(user.to_owned()).or_insert(0) += 1;
        Ok(QuotaHold {
            ledger: Arc::clone(self),
            user: user.to_owned(),
        })
    }

    /// Allocations held now, all users.
    #[cfg_attr(not(test), allow(dead_code, reason = "read by tests and metrics"))]
    pub(crate) fn total(&self) -> u32 {
        self.lock().total
    }
}

/// One allocation's share of the quota, given back on drop.
#[derive(Debug)]
pub(crate) struct QuotaHold {
    ledger: Arc<QuotaLedger>,
    user: String,
}

impl Drop for QuotaHold {
    fn drop(&mut self) {
        let mut c = self.ledger.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_user.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                c.per_user.remove(&self.user);
            }
        }
    }
}

/// A relay socket held for a RESERVATION-TOKEN, with the full address it
/// was reserved on (the claiming Allocate names no family: RFC 8656 §7.2).
#[derive(Debug)]
pub(crate) struct HeldPort {
    pub(crate) sock: UdpSocket,
    /// The advertised relayed address given out when it is claimed.
    pub(crate) advertised: SocketAddr,
    pub(crate) expires: Instant,
}

/// Ports held under tokens. Shared because the Allocate that claims a
/// token often comes from another client socket, which the kernel may hash
/// to another worker.
#[derive(Debug, Default)]
pub(crate) struct Reservations(Mutex<HashMap<ReservationToken, HeldPort>>);

impl Reservations {
    fn lock(&self) -> MutexGuard<'_, HashMap<ReservationToken, HeldPort>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn hold(&self, token: ReservationToken, port: HeldPort) {
        self.lock().insert(token, port);
    }

    /// Takes the port held under `token`, unless unknown or expired at `now`.
    pub(crate) fn claim(&self, token: ReservationToken, now: Instant) -> Option<HeldPort> {
        let held = self.lock().remove(&token)?;
        (now < held.expires).then_some(held)
    }

    /// Closes the port of a token nobody claimed.
    pub(crate) fn release(&self, token: ReservationToken) {
        self.lock().remove(&token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_give_the_quota_back_on_drop() {
        let l = QuotaLedger::new(3, 2);
        let a = l.acquire("alice").unwrap();
        let _b = l.acquire("alice").unwrap();
        assert_eq!(l.acquire("alice").unwrap_err(), BindError::UserQuota);
        let _c = l.acquire("bob").unwrap();
        assert_eq!(l.acquire("carol").unwrap_err(), BindError::TotalQuota);
        drop(a);
        assert_eq!(l.total(), 2);
        assert!(l.acquire("alice").is_ok());
    }
}
