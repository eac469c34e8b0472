//! End-to-end tests: a real tern on 127.0.0.1 driven by independent clients
//! (hand-rolled STUN, the webrtc-rs `turn` crate, coturn's `turnutils_*`).
//!
//! One binary with modules (hickory-dns style), so everything links once:
//! the in-process tests (`harness`, `client`, `stream` are their helpers),
//! TLS, PROXY protocol and IPv6 listeners, the `tern` binary's subcommands
//! (`cli`, `load`), the sans-IO wall (`layering`) and the root-only
//! network-namespace tests (`netns`). Every test starts its own server on
//! ephemeral listener ports and its own slice of the relay port range, so
//! the tests run in parallel.
//!
//! `TERN_IT_SERVER=coturn` runs the same tests against a coturn `turnserver`
//! started with the equivalent configuration. That checks the tests
//! themselves: a test that fails against coturn is suspect, not tern.
//! Assertions on tern-only behaviour are skipped in that mode. The modules
//! that start tern through `tern::io::start` or the binary (TLS, PROXY,
//! `load`, `cli`, `netns`) always test tern.
//!
//! `TERN_REQUIRE_INTEROP=1` (set by `.ci/run`) turns a missing coturn tool
//! into a failure instead of a loud skip.

#![allow(
    clippy::disallowed_methods,
    reason = "tests measure deadlines against the real clock; the clock wall is for the server code"
)]
#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads top to bottom; the 80-line rule is for src/"
)]

mod alternate;
mod browser;
mod cli;
mod client;
mod fleet;
mod haproxy;
mod harness;
mod http;
mod import_coturn;
mod interop_coturn;
mod ipv6;
mod issuer;
mod kubernetes;
mod layering;
mod load;
mod nat_discovery;
mod netns;
mod ops;
mod ops_reload;
mod probe;
mod proxy_protocol;
mod relay_to_relay;
mod security;
mod selfcheck;
mod stream;
mod stun_binding;
mod tcp_relay;
mod tls;
mod turn_webrtc_rs;
