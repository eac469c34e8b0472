//! Spreading clients over a fleet: `300 Try Alternate` with ALTERNATE-SERVER
//! on Allocate (RFC 8489 §10, §14.15; RFC 8656 §7.2).
//!
//! # When tern redirects
//! Only an *authenticated* Allocate is ever redirected, and only when
//! [`Alternates::servers`] has a usable entry and either
//! - the node is over [`Alternates::soft_max_allocations`] (the load is the
//!   larger of the count the driver hands in with [`Server::set_load`] and
//!   this shard's own count, so the core keeps no state shared between
//!   shards), or
//! - the node is draining ([`Server::set_draining`]).
//!
//! Binding, Refresh, CreatePermission, ChannelBind and data are never
//! redirected: existing allocations keep running where they are.
//!
//! # Which address
//! RFC 8489 §10: the 300 "MUST include at least one ALTERNATE-SERVER
//! attribute ..., which MUST contain an IP address of the same address
//! family as the source IP address of the request message", and "SHOULD
//! include an additional ALTERNATE-SERVER attribute for each other address
//! family". tern picks the same-family entry by rotating through the list
//! (one cursor per shard, so successive redirects spread over the nodes)
//! and adds the first entry of the other family, if any.
//!
//! The client retries "using the same transport protocol used for the
//! previous request" (§10), so for TLS the entry's IP is used with the port
//! the request arrived on (a fleet serves TLS on the same port everywhere);
//! UDP and TCP use the entry as written. No ALTERNATE-DOMAIN is sent: the
//! client then validates the next node's certificate against "the same
//! domain that was used for the connection to the first server" (§10), so
//! every node must hold a certificate for the fleet's name — the usual setup.
//!
//! # Never to itself, never in a loop
//! - An entry equal to the address the request arrived on is skipped here;
//!   `config` also drops entries equal to the node's own listen and
//!   advertised addresses.
//! - When no entry is left, a node over its soft limit serves the request
//!   (the soft limit is a preference, `limits.max_allocations` is the hard
//!   one) and a draining node answers 403 Forbidden.
//! - A server cannot tell that a request follows a redirect (the client
//!   reuses its credentials with a fresh transaction). RFC 8489
//!   §10 puts the loop rule on the client: "If the client has been
//!   redirected to a server to which it has already sent this request within
//!   the last five minutes, it MUST ignore the redirection and consider the
//!   transaction to have failed." So A → B → A ends at the client; tern's
//!   rotation means a client is sent to each other node at most once per
//!   pass. Size soft limits so the fleet is never over them everywhere at
//!   once: a redirect spreads load, it is not admission control.
//!
//! # The nonce may travel with the client
//! libwebrtc (Chromium, Safari) copies REALM and NONCE into the Allocate it
//! sends the alternate, and treats a 438 to that Allocate as final. The
//! nonce is stateless (`proto::auth::nonce`: an HMAC of time and client IP),
//! so nodes that share the key (`cluster.nonce_key_file`) accept each
//! other's nonces and such clients land; with a key per node they do not.

use std::net::SocketAddr;

use super::auth::ReplyKey;
use super::request::Req;
use super::{Server, Transport};
use crate::proto::stun::{AttrType, Class, ErrorCode};
use crate::proto::time::Now;

/// `[cluster]` as the core sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Alternates {
    /// Other nodes of the fleet, "IP:PORT" (already without this node's own addresses).
    pub servers: Vec<SocketAddr>,
    /// Allocations on this node beyond which new ones are redirected; `None` = never.
    pub soft_max_allocations: Option<u32>,
}

/// Per-shard redirect state: inputs from the driver and the rotation cursor.
#[derive(Clone, Debug, Default)]
pub(super) struct AlternateState {
    /// Allocations on the whole node, as last reported by the driver.
    load: u32,
    draining: bool,
    /// Index into `Alternates::servers` where the next search starts.
    cursor: usize,
}

/// What to do with an authenticated Allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Admission {
    Serve,
    /// 300 Try Alternate to `primary` (same family as the client), plus `other`.
    Redirect {
        primary: SocketAddr,
        other: Option<SocketAddr>,
    },
    /// Draining with nowhere to send the client: 403.
    Refuse,
}

impl Server {
    /// The driver's count of live allocations on the whole node (all
    /// shards). Call it whenever convenient; a stale value only makes the
    /// soft limit a little late.
    pub fn set_load(&mut self, total_allocations: u32) {
        self.alternate.load = total_allocations;
    }

    /// Draining: new Allocates are redirected (or refused with 403 when no
    /// alternate is left); everything else goes on.
    pub fn set_draining(&mut self, draining: bool) {
        self.alternate.draining = draining;
    }

    pub fn is_draining(&self) -> bool {
        self.alternate.draining
    }

    /// Decides whether an authenticated Allocate is served here.
    pub(super) fn admission(&mut self, req: &Req) -> Admission {
        let alt = &self.config.alternates;
        let own = u32::try_from(self.by_client.len() + self.pending.len()).unwrap_or(u32::MAX);
        let load = self.alternate.load.max(own);
        let over = alt.soft_max_allocations.is_some_and(|soft| load >= soft);
        if !over && !self.alternate.draining {
            return Admission::Serve;
        }
        let n = alt.servers.len();
        let here = req.from.server;
        let target = |entry: SocketAddr| match req.from.transport {
            Transport::Tls => SocketAddr::new(entry.ip(), here.port()),
            Transport::Udp | Transport::Tcp => entry,
        };
        let same_family = |a: &SocketAddr| a.is_ipv4() == req.from.client.is_ipv4();
        let start = self.alternate.cursor;
        let picked = (0..n)
            .map(|i| (start + i) % n)
            .map(|i| (i, target(alt.servers[i])))
            .find(|(_, a)| *a != here && same_family(a));
        let Some((i, primary)) = picked else {
            return if self.alternate.draining {
                Admission::Refuse
            } else {
                Admission::Serve
            };
        };
        self.alternate.cursor = (i + 1) % n;
        let other = alt
            .servers
            .iter()
            .map(|a| target(*a))
            .find(|a| *a != here && !same_family(a));
        Admission::Redirect { primary, other }
    }

    /// Queues the 300 (or 403) for `admission`; `false` when the request is
    /// served here. The response is authenticated (MESSAGE-INTEGRITY with the
    /// client's key, so ALTERNATE-SERVER cannot be forged on the path) and
    /// kept for retransmissions.
    pub(super) fn redirect(&mut self, now: Now, req: Req, key: ReplyKey) -> bool {
        match self.admission(&req) {
            Admission::Serve => false,
            Admission::Refuse => {
                self.reject(now, req, ErrorCode::FORBIDDEN, Some(key));
                true
            }
            Admission::Redirect { primary, other } => {
                self.stats.redirected += 1;
                self.reply(Some(now), req, Class::Error, Some(key), |w| {
                    let code = ErrorCode::TRY_ALTERNATE;
                    w.push_error_code(code.code(), code.reason());
                    // RFC 8489 §14.15: encoded like MAPPED-ADDRESS (not XORed).
                    w.push_addr(AttrType::ALTERNATE_SERVER, primary);
                    if let Some(o) = other {
                        w.push_addr(AttrType::ALTERNATE_SERVER, o);
                    }
                });
                true
            }
        }
    }
}
