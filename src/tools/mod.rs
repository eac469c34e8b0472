//! Client-side tooling, not part of the server: a TURN client and the load
//! generator built on it. Compiled only with the `tools` cargo feature (on
//! by default, since the `tern` binary's `load` subcommand and the
//! integration tests use it); `cargo build --no-default-features` builds
//! the server alone.
//!
//! - [`client`]: one TURN client. One codec and one credential handler
//!   (401/438 retry, MESSAGE-INTEGRITY checked on successes) under a
//!   blocking mode (UDP, TCP, TLS; one step at a time) and a pipelined
//!   nonblocking mode (many sockets, many requests in flight).
//! - [`load`]: `tern load`, a load generator for any RFC 8656 server. Its
//!   data path batches UDP through the same quinn-udp layer as the server
//!   (`crate::io::udp`).
//! - [`probe`]: `tern probe`, a step-by-step check of a STUN/TURN server
//!   from the outside, with timings, addresses and a hint on failure.

pub mod client;
pub mod load;
pub mod probe;
