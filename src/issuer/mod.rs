//! The credential issuer: an HTTP endpoint that mints TURN REST credentials
//! and returns them as WebRTC `iceServers`, so a web app's backend (or, with
//! CORS, the page itself) gets a ready `RTCPeerConnection` configuration.
//!
//! Routes:
//!
//! - `POST /v1/ice-servers` with `{"ttl":3600,"user":"alice"}` (both
//!   optional) → `201 Created`.
//! - `GET /ice?username=alice&ttl=3600` (STUNner's auth service style;
//!   `service=turn` accepted as in draft-uberti-behave-turn-rest-00) → `200`.
//!
//! Both answer, with `Cache-Control: no-store`:
//!
//! ```json
//! {"iceServers":[{"urls":["stun:turn.example.com:3478"]},
//!                {"urls":["turn:turn.example.com:3478?transport=udp", "…"],
//!                 "username":"1767225600:alice","credential":"<base64 HMAC-SHA1>"}],
//!  "ttl":3600,"expiresAt":"2026-01-01T00:00:00Z",
//!  "username":"1767225600:alice","password":"<same>","uris":["turn:…"]}
//! ```
//!
//! With `[[cluster.nodes]]` each answer carries the URLs of one node of the
//! fleet, the least-loaded ready one (see [`fleet`]), and names it in a
//! top-level `"node"`; a request may ask for a node by name (`"node"` in
//! the body, `node=` in the query) to put both peers of a call on the same
//! one. `GET /v1/nodes` lists the issuer's view of every node. With no node
//! usable, the answer is `503` with `Retry-After`.
//!
//! Every request needs `Authorization: Bearer <token>` with a token from
//! `issuer.token_file` (401 otherwise); each token has its own rate limit
//! (429). Credentials are signed with the first `auth.rest_secrets` entry,
//! so every tern node sharing the secrets accepts them.
//!
//! This module is transport-free: [`Issuer::handle`] maps an
//! `http::Request<Bytes>` and the current Unix time to an
//! `http::Response<Vec<u8>>`. The HTTP server that calls it lives
//! elsewhere; it must stop reading a body beyond [`MAX_BODY`] bytes (and
//! may answer 413 itself, as `handle` does for a longer one). Tokens and
//! credentials are never logged.

mod cluster;
mod config;
pub mod fleet;
#[cfg(test)]
mod fleet_tests;
mod limiter;
mod mint;
mod poll;
mod routes;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use subtle::ConstantTimeEq;

pub use cluster::{MAX_NODE_NAME, NodeSettings};
pub use config::{MIN_TOKEN_LEN, parse_tokens, resolve};

use crate::secret::Secret;
use fleet::Fleet;
use limiter::Buckets;

/// Largest request body read, in bytes; the JSON request is tiny.
pub const MAX_BODY: usize = 4096;

/// The resolved `[issuer]` section.
#[derive(Clone, Debug)]
pub struct IssuerSettings {
    /// Where the HTTP server listens.
    pub listen: SocketAddr,
    /// Accepted bearer tokens, in token-file order.
    pub tokens: Vec<Secret<String>>,
    /// The REST secret credentials are signed with (first `auth.rest_secrets`).
    pub secret: Secret<Vec<u8>>,
    /// `stun:` URLs (the entry without credentials).
    pub stun_urls: Vec<String>,
    /// `turn:`/`turns:` URLs (the entry with credentials); never empty.
    pub turn_urls: Vec<String>,
    /// Lifetime when the request names none.
    pub default_ttl: u64,
    /// Longest lifetime a request may ask for.
    pub max_ttl: u64,
    /// Requests per second per token (burst: twice that).
    pub rate_per_sec: u32,
    /// Origins that get CORS headers; empty = none.
    pub allowed_origins: Vec<String>,
    /// `[[cluster.nodes]]`: when not empty, each answer hands out one of
    /// these nodes' URLs instead of `stun_urls`/`turn_urls`.
    pub nodes: Vec<NodeSettings>,
}

/// The issuer: settings plus the per-token rate-limit state. Share it
/// behind an `Arc` between connections; `handle` takes `&self`.
#[derive(Debug)]
pub struct Issuer {
    settings: IssuerSettings,
    buckets: Mutex<Buckets>,
    /// The fleet's view, when `settings.nodes` is not empty.
    fleet: Option<Arc<Fleet>>,
}

impl Issuer {
    pub fn new(settings: IssuerSettings) -> Self {
        Self::build(settings, None)
    }

    /// [`Issuer::new`], publishing the fleet's `tern_issuer_*` metrics in
    /// `metrics` (the server's registry).
    pub fn with_metrics(settings: IssuerSettings, metrics: Arc<crate::admin::Metrics>) -> Self {
        Self::build(settings, Some(metrics))
    }

    fn build(settings: IssuerSettings, metrics: Option<Arc<crate::admin::Metrics>>) -> Self {
        let buckets = Mutex::new(Buckets::new(settings.tokens.len(), settings.rate_per_sec));
        let fleet = (!settings.nodes.is_empty())
            .then(|| Arc::new(Fleet::new(settings.nodes.clone(), metrics)));
        Self {
            settings,
            buckets,
            fleet,
        }
    }

    pub fn settings(&self) -> &IssuerSettings {
        &self.settings
    }

    /// The fleet's view, when `[[cluster.nodes]]` is configured.
    pub fn fleet(&self) -> Option<&Arc<Fleet>> {
        self.fleet.as_ref()
    }

    /// The task that keeps the fleet's view fresh, for the listener's
    /// runtime (`admin::server::spawn_with`); `None` without nodes.
    pub fn fleet_task(&self) -> Option<crate::admin::server::Background> {
        let fleet = Arc::clone(self.fleet.as_ref()?);
        Some(Box::pin(poll::run(fleet)))
    }

    /// One round of `/status` reads of every node, for tests that drive
    /// the view without the background task.
    pub async fn read_fleet(&self) {
        if let Some(f) = &self.fleet {
            poll::read_all(f).await;
        }
    }

    /// Answers one request at `now_unix` (seconds since the Unix epoch).
    /// Never panics on any input.
    pub fn handle(&self, req: &Request<Bytes>, now_unix: u64) -> Response<Vec<u8>> {
        let mut resp = routes::route(self, req, now_unix);
        routes::add_cors(&self.settings.allowed_origins, req, &mut resp);
        resp
    }

    /// The index of the bearer token in `Authorization`, compared in
    /// constant time against every configured token.
    fn authenticate(&self, req: &Request<Bytes>) -> Option<usize> {
        let value = req.headers().get(http::header::AUTHORIZATION)?;
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let token = token.trim().as_bytes();
        let mut found = None;
        for (i, t) in self.settings.tokens.iter().enumerate() {
            if bool::from(t.expose().as_bytes().ct_eq(token)) && found.is_none() {
                found = Some(i);
            }
        }
        found
    }

    /// One request against token `index`'s bucket; `false` = 429.
    fn allow(&self, index: usize, now: u64) -> bool {
        // A poisoned lock only means another request panicked mid-update;
        // the buckets are still plain numbers.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        buckets.take(index, now)
    }
}
