//! Tests that build networks inside the machine: network namespaces, veth
//! pairs and nftables, with tern started as a child process in one of them.
//! They need root; without it they skip loudly, and with `CI=true` they fail
//! ([`namespace::may_run`]).
//!
//! - [`nat`]: two hosts behind symmetric NATs talk through tern.
//! - [`security`]: the default peer policy against real listeners at the
//!   addresses it protects.
//!
//! Each test names its namespaces `{prefix}{PID}…` with its own prefix, so
//! both run at once in this one test process.

mod browser_alternate;
mod client;
mod namespace;
mod nat;
mod security;

use std::net::Ipv4Addr;

/// tern's address inside the namespaces (RFC 5737 documentation range, not
/// denied by the default peer policy).
const TERN_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// The test user, given to every tern these tests start.
const USER: &str = "nat";
const PASS: &str = "nat-test-password";
