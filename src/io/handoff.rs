//! Moving a client connection to another worker (RFC 6062 ConnectionBind):
//! which worker owns which CONNECTION-ID, and the inboxes connections are
//! moved through. Touched once per peer connection, never per byte.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use mio::Waker;

use super::tcp::Conn;
use crate::proto::turn::ConnectionId;

/// Which worker owns which CONNECTION-ID, and the inboxes connections are
/// moved through. Touched once per connection, never per byte.
#[derive(Default)]
pub(crate) struct Handoff {
    owners: Mutex<HashMap<ConnectionId, usize>>,
    inboxes: Mutex<HashMap<usize, Vec<Conn>>>,
    wakers: OnceLock<Vec<Arc<Waker>>>,
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handoff")
    }
}

impl Handoff {
    /// Called once all workers have their wakers.
    pub(crate) fn set_wakers(&self, wakers: Vec<Arc<Waker>>) {
        let _ = self.wakers.set(wakers);
    }

    pub(super) fn own(&self, id: ConnectionId, worker: usize) {
        lock(&self.owners).insert(id, worker);
    }

    pub(super) fn disown(&self, id: ConnectionId) {
        lock(&self.owners).remove(&id);
    }

    pub(super) fn owner(&self, id: ConnectionId) -> Option<usize> {
        lock(&self.owners).get(&id).copied()
    }

    /// Puts `conn` in `worker`'s inbox and wakes it; false if it cannot.
    pub(super) fn send(&self, worker: usize, conn: Conn) -> bool {
        let Some(waker) = self.wakers.get().and_then(|w| w.get(worker)) else {
            return false;
        };
        lock(&self.inboxes).entry(worker).or_default().push(conn);
        waker.wake().is_ok()
    }

    pub(super) fn take(&self, worker: usize) -> Vec<Conn> {
        lock(&self.inboxes).remove(&worker).unwrap_or_default()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
