//! Allocation quotas shared by all shards: total and per username.
//!
//! Touched only when an allocation starts or ends, never per packet, so a
//! short mutex here is not on the hot path.

use std::collections::HashMap;
use std::sync::Mutex;

/// Why an allocation was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum QuotaError {
    /// Per-user limit: 486 Allocation Quota Reached.
    User,
    /// Server-wide limit: 508 Insufficient Capacity.
    Total,
}

#[derive(Debug, Default)]
pub struct QuotaLedger {
    inner: Mutex<Ledger>,
}

#[derive(Debug, Default)]
struct Ledger {
    total: u32,
    per_user: HashMap<String, u32>,
    /// RESERVATION-TOKEN → reserved port. Shared because the Allocate that
    /// claims a token often comes from another client socket, which the
    /// kernel may hash to another worker.
    reservations: HashMap<u64, u16>,
}

impl QuotaLedger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one allocation for `user` if both limits allow it.
    pub fn acquire(&self, user: &str, max_total: u32, max_per_user: u32) -> Result<(), QuotaError> {
        let mut l = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if l.total >= max_total {
            return Err(QuotaError::Total);
        }
        let n = l.per_user.get(user).copied().unwrap_or(0);
        if n >= max_per_user {
            return Err(QuotaError::User);
        }
        l.total += 1;
        *l.per_user.entry(user.to_owned()).or_insert(0) += 1;
        Ok(())
    }

    pub fn release(&self, user: &str) {
        let mut l = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        l.total = l.total.saturating_sub(1);
        if let Some(n) = l.per_user.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                l.per_user.remove(user);
            }
        }
    }

    /// Records a reservation token for `port`.
    pub fn reserve(&self, token: u64, port: u16) {
        self.lock().reservations.insert(token, port);
    }

    /// Takes the port of a token (claim or expiry); `None` if already taken.
    pub fn take_reservation(&self, token: u64) -> Option<u16> {
        self.lock().reservations.remove(&token)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn total(&self) -> u32 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}
