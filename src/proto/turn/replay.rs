//! Responses kept for retransmitted requests: a retransmission (same 5-tuple,
//! same transaction id) gets the original response again (RFC 8489 §6.3.1,
//! RFC 8656 §7.2 "the server ... MUST ... resend the original response"),
//! not 437. Only responses to authenticated requests are kept, so an
//! unauthenticated sender cannot make this table grow; it is also capped.

use std::collections::VecDeque;
use std::time::Instant;

use super::{FiveTuple, REPLAY_WINDOW};
use crate::proto::hash::{self, Map};
use crate::proto::stun::TransactionId;

#[derive(Debug)]
pub(super) struct ReplayCache {
    map: Map<(FiveTuple, TransactionId), Vec<u8>>,
    order: VecDeque<(Instant, FiveTuple, TransactionId)>,
    cap: usize,
}

impl ReplayCache {
    /// At most `cap` responses; `seed` keys the table's hash.
    pub(super) fn new(cap: usize, seed: u64) -> Self {
        Self {
            map: hash::keyed(seed),
            order: VecDeque::new(),
            cap,
        }
    }

    pub(super) fn get(&self, five: &FiveTuple, tid: &TransactionId) -> Option<&[u8]> {
        self.map.get(&(*five, *tid)).map(Vec::as_slice)
    }

    pub(super) fn insert(
        &mut self,
        now: Instant,
        five: FiveTuple,
        tid: TransactionId,
        response: Vec<u8>,
    ) {
        if self.map.len() >= self.cap
            && let Some((_, f, t)) = self.order.pop_front()
        {
            self.map.remove(&(f, t));
        }
        if self.map.insert((five, tid), response).is_none() {
            self.order.push_back((now + REPLAY_WINDOW, five, tid));
        }
    }

    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.order.front().map(|(t, _, _)| *t)
    }

    pub(super) fn expire(&mut self, now: Instant) {
        while let Some(&(t, f, tid)) = self.order.front() {
            if t > now {
                break;
            }
            self.order.pop_front();
            self.map.remove(&(f, tid));
        }
    }
}
