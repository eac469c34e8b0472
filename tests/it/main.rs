//! End-to-end tests: a real tern on 127.0.0.1 driven by independent clients
//! (hand-rolled STUN, the webrtc-rs `turn` crate, coturn's `turnutils_*`).
//!
//! One binary with modules (hickory-dns style) so the harness links once.
//! Every test starts its own server on ephemeral listener ports and its own
//! slice of the relay port range, so the tests run in parallel.
//!
//! `TERN_IT_SERVER=coturn` runs the same tests against a coturn `turnserver`
//! started with the equivalent configuration. That checks the tests
//! themselves: a test that fails against coturn is suspect, not tern.
//! Assertions on tern-only behaviour are skipped in that mode.
//!
//! `TERN_REQUIRE_INTEROP=1` (set by `.ci/run`) turns a missing coturn tool
//! into a failure instead of a loud skip.

#![allow(
    clippy::disallowed_methods,
    reason = "tests measure deadlines against the real clock; the clock wall is for the server code"
)]

mod browser;
mod client;
mod harness;
mod http;
mod import_coturn;
mod interop_coturn;
mod ipv6;
mod issuer;
mod relay_to_relay;
mod security;
mod selfcheck;
mod stun_binding;
mod tcp_relay;
mod turn_webrtc_rs;
