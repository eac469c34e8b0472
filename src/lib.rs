//! tern: a STUN/TURN server (RFC 8489, RFC 8656) for WebRTC.
//!
//! # Where to start reading
//! 1. [`proto::turn::Server`]: the protocol as a state machine. Its module
//!    docs list the inputs and outputs; `src/proto/turn/tests/` drives it in
//!    virtual time, one file per method.
//! 2. [`io`]: the driver that feeds it, one `mio` thread per core. The loop
//!    and its drain contract are in `src/io/worker.rs`.
//! 3. [`config`] and [`settings`]: how `tern.toml` plus the command line
//!    become the one [`settings::Settings`] value the driver starts with.
//! 4. [`cmd`]: one file per subcommand; `serve` ties the above together.
//!
//! # The wall between `proto` and `io`
//! `proto` is sans-IO: it never touches a socket, a file, a clock, the
//! environment, a lock or the OS random generator (`tests/it/layering.rs`
//! fails if it does). It takes bytes, addresses and a [`proto::time::Now`]
//! and returns values. `io` is the only code that owns sockets and reads
//! clocks, and `src/io/clock.rs` is the only place in the crate that calls
//! `Instant::now`, `SystemTime::now` or `thread::sleep` (clippy's
//! `disallowed-methods` in `clippy.toml` enforces it; the client tooling in
//! [`tools`] and the tests are the named exceptions).
//!
//! # The run loop: input → core → output
//! Each worker owns one [`proto::turn::Server`], its listeners (SO_REUSEPORT)
//! and the relay sockets of the allocations it created, so nothing on the
//! relay path is shared between threads. For every input it:
//! 1. hands the input to the core: `handle_client` (a datagram or stream
//!    frame from a client), `handle_peer` (a datagram on a relay socket),
//!    `handle_relay_bound` (the answer to a `BindRelay` command),
//!    `handle_client_closed`, or `handle_timeout` when the core's deadline
//!    (`poll_timeout`) has passed;
//! 2. carries out what the call returned: relay traffic comes back as a
//!    range into the caller's own buffer (ChannelData and Send payloads are
//!    never copied by the core; peer data is received behind `HEADROOM` so
//!    the core writes the ChannelData header or Data indication in place);
//! 3. drains the core until it is empty: `poll_command` (bind or release
//!    relay sockets), `poll_transmit` (replies), `poll_event` (logs and
//!    counters);
//! 4. sleeps in `epoll` until a socket is readable or the next deadline.
//!
//! # How time and randomness enter
//! Time comes in as [`proto::time::Now`] on every `handle_*` call: a
//! monotonic `Instant` for lifetimes and timers, and Unix seconds for the
//! wall-clock parts of the protocol (TURN REST expiry, nonce age). Secrets
//! come in as keys: the nonce key in `proto::config::Config` (random per
//! process, so nonces are stateless HMACs), and a 32-byte
//! key per worker passed to `Server::new`, from which reservation tokens
//! and the per-IP limiter's hash are derived. The driver reads both from the
//! OS; the core only computes with them, so tests replay exactly.
//!
//! # What spans workers
//! Only what must: the allocation quotas and the sockets held for
//! RESERVATION-TOKENs live in `io::shared`, touched once per allocation,
//! never per packet; and the TCP connection caps, touched once per
//! connection. Both sit behind short mutexes in the driver.
//!
//! # Panics
//! Network input never panics: every length is checked before it is used,
//! and bad input is answered with the RFC's error or dropped and counted.
//! An `unwrap` or `expect` outside tests marks a local invariant and says so
//! in an `// invariant:` comment.

pub mod admin;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod io;
pub mod issuer;
pub mod proto;
pub mod secret;
pub mod selfcheck;
pub mod settings;
pub mod telemetry;
#[cfg(feature = "tools")]
#[allow(
    clippy::disallowed_methods,
    reason = "client tooling, not the server: paces and times its own traffic"
)]
pub mod tools;
