//! The admin API: routes over an [`AdminState`] the driver implements.
//!
//! | Route                              | Answer                                   |
//! |------------------------------------|------------------------------------------|
//! | `GET /metrics`                     | Prometheus text                          |
//! | `GET /livez`                       | 200 `ok`, or 503 naming stalled workers  |
//! | `GET /readyz`                      | 200 `ok`, or 503 `{"reason": …}`         |
//! | `GET /status`                      | [`Status`] JSON                          |
//! | `GET /v1/allocations[?user=NAME]`  | `[AllocationInfo]` JSON                  |
//! | `DELETE /v1/users/NAME/allocations`| `{"ended": N}`                           |
//! | `POST /v1/drain`, `/v1/undrain`    | `{"draining": bool}`                     |
//! | `POST /v1/reload`                  | 200 [`ReloadSummary`] or 422 `{"error"}` |
//!
//! With a token configured every route but `/livez` and `/readyz` (probes
//! that reveal nothing) needs `Authorization: Bearer TOKEN`; the check is
//! constant-time over SHA-256 digests, so neither content nor length leaks.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::server::{Request, Response, Router};
use crate::secret::Secret;

/// Why the server is not ready (the `/readyz` 503 body).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotReady {
    pub reason: String,
}

/// One allocation as `/v1/allocations` lists it. No secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationInfo {
    pub id: String,
    pub user: String,
    pub client: SocketAddr,
    /// "udp", "tcp" or "tls".
    pub transport: String,
    /// One address, or two for a dual-stack allocation.
    pub relay: Vec<SocketAddr>,
    pub age_secs: u64,
    pub packets_to_peer: u64,
    pub bytes_to_peer: u64,
    pub packets_to_client: u64,
    pub bytes_to_client: u64,
}

/// The outcome of a reload as `/status` and `POST /v1/reload` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadSummary {
    /// Unix seconds when it ran.
    pub at_unix: u64,
    pub ok: bool,
    /// One line: what changed (never secrets), or the error.
    pub message: String,
}

/// `/status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub uptime_secs: u64,
    /// Live allocations by transport ("udp", "tcp", "tls").
    pub allocations: std::collections::BTreeMap<String, u64>,
    pub draining: bool,
    /// Allocations this node takes before it sends new ones elsewhere:
    /// `cluster.soft_max_allocations`, else `limits.max_allocations`, at
    /// most the relay port count. The credential issuer weighs nodes by
    /// `allocations / capacity`. 0 = unknown (an older node).
    #[serde(default)]
    pub capacity: u64,
    /// "udp 0.0.0.0:3478", "tcp …", "tls …".
    pub listeners: Vec<String>,
    pub relay_addresses: Vec<String>,
    /// The startup self-check's warnings, each saying what to change.
    pub warnings: Vec<String>,
    pub last_reload: Option<ReloadSummary>,
}

/// What the driver provides to the admin API. Methods run on the admin
/// thread pool (not on workers) and may block briefly.
pub trait AdminState: Send + Sync + 'static {
    /// Appends the Prometheus exposition (usually `prometheus::render`).
    fn metrics(&self, out: &mut String);
    /// `Err(stalled worker indexes)` when a worker loop made no progress
    /// recently (see `Liveness`).
    fn liveness(&self) -> Result<(), Vec<usize>>;
    /// Listening, relay address known, not draining.
    fn readiness(&self) -> Result<(), NotReady>;
    fn status(&self) -> Status;
    /// Live allocations, of one user when `user` is given.
    fn allocations(&self, user: Option<&str>) -> Vec<AllocationInfo>;
    /// Ends every allocation of `user` now; how many ended.
    fn kick(&self, user: &str) -> usize;
    /// Starts (true) or cancels (false) a drain; returns the new state.
    fn set_draining(&self, draining: bool) -> bool;
    /// Re-reads and applies the config file, all or nothing.
    fn reload(&self) -> Result<ReloadSummary, String>;
}

/// The admin router: routes + token check over an `AdminState`.
pub struct AdminRouter<S> {
    state: Arc<S>,
    /// SHA-256 of the token, when one is required.
    token: Option<[u8; 32]>,
}

impl<S: AdminState> AdminRouter<S> {
    pub fn new(state: Arc<S>, token: Option<&Secret<String>>) -> Self {
        Self {
            state,
            token: token.map(|t| sha256(t.expose().as_bytes())),
        }
    }

    fn authorized(&self, req: &Request<Bytes>) -> bool {
        let Some(want) = &self.token else {
            return true;
        };
        let Some(got) = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        else {
            return false;
        };
        bool::from(sha256(got).ct_eq(want))
    }

    fn route(&self, req: &Request<Bytes>) -> Response {
        let s = &*self.state;
        let path = req.uri().path();
        match (req.method(), path) {
            (&Method::GET, "/metrics") => {
                let mut out = String::with_capacity(16 * 1024);
                s.metrics(&mut out);
                Response {
                    content_type: "text/plain; version=0.0.4; charset=utf-8",
                    ..Response::text(StatusCode::OK, out)
                }
            }
            (&Method::GET, "/status") => Response::json(StatusCode::OK, &s.status()),
            (&Method::GET, "/v1/allocations") => self.list(req),
            (&Method::POST, "/v1/drain") => drain_reply(s.set_draining(true)),
            (&Method::POST, "/v1/undrain") => drain_reply(s.set_draining(false)),
            (&Method::POST, "/v1/reload") => match s.reload() {
                Ok(sum) => Response::json(StatusCode::OK, &sum),
                Err(e) => Response::error(StatusCode::UNPROCESSABLE_ENTITY, &e),
            },
            (m, p) => match p
                .strip_prefix("/v1/users/")
                .and_then(|r| r.strip_suffix("/allocations"))
            {
                Some(user) if m == Method::DELETE => match percent_decode(user) {
                    Some(u) if !u.is_empty() && !u.contains('/') => {
                        let n = s.kick(&u);
                        Response::json(StatusCode::OK, &serde_json::json!({ "ended": n }))
                    }
                    _ => Response::error(StatusCode::BAD_REQUEST, "bad user name in the path"),
                },
                _ if known_path(p) || p.starts_with("/v1/users/") => {
                    Response::error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
                }
                _ => Response::error(StatusCode::NOT_FOUND, "no such route"),
            },
        }
    }

    fn list(&self, req: &Request<Bytes>) -> Response {
        let mut user = None;
        for pair in req.uri().query().unwrap_or("").split('&') {
            match pair.split_once('=') {
                Some(("user", v)) => match percent_decode(v) {
                    Some(v) => user = Some(v),
                    None => return Response::error(StatusCode::BAD_REQUEST, "bad user= value"),
                },
                _ if pair.is_empty() => {}
                _ => {
                    let msg = format!("unknown query parameter {pair:?}; only user=NAME");
                    return Response::error(StatusCode::BAD_REQUEST, &msg);
                }
            }
        }
        Response::json(StatusCode::OK, &self.state.allocations(user.as_deref()))
    }
}

impl<S: AdminState> Router for AdminRouter<S> {
    fn handle(&self, req: &Request<Bytes>) -> hyper::Response<Vec<u8>> {
        self.answer(req).into_http()
    }
}

impl<S: AdminState> AdminRouter<S> {
    fn answer(&self, req: &Request<Bytes>) -> Response {
        let s = &*self.state;
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/livez") => {
                return match s.liveness() {
                    Ok(()) => Response::text(StatusCode::OK, "ok\n"),
                    Err(w) => Response::json(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &serde_json::json!({ "reason": "worker loop stalled", "workers": w }),
                    ),
                };
            }
            (&Method::GET, "/readyz") => {
                return match s.readiness() {
                    Ok(()) => Response::text(StatusCode::OK, "ok\n"),
                    Err(r) => Response::json(StatusCode::SERVICE_UNAVAILABLE, &r),
                };
            }
            _ => {}
        }
        if !self.authorized(req) {
            let mut r = Response::error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
            r.headers.push(("www-authenticate", "Bearer".to_owned()));
            return r;
        }
        self.route(req)
    }
}

fn known_path(p: &str) -> bool {
    matches!(
        p,
        "/metrics"
            | "/livez"
            | "/readyz"
            | "/status"
            | "/v1/allocations"
            | "/v1/drain"
            | "/v1/undrain"
            | "/v1/reload"
    )
}

fn drain_reply(draining: bool) -> Response {
    Response::json(StatusCode::OK, &serde_json::json!({ "draining": draining }))
}

fn sha256(b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, b).as_ref());
    out
}

/// Decodes `%XX` escapes (and `+` as space in queries is NOT applied: REST
/// usernames contain no spaces). `None` on a bad escape or non-UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes everything but unreserved characters (RFC 3986 §2.3).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}
