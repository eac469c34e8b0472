//! tern: a STUN/TURN server.
//!
//! Architecture: `proto` is a sans-IO state machine (bytes, addresses and
//! time in; replies, relay sends and deadlines out); `io` is the driver
//! (one `mio` thread per core) that moves bytes and reads the clock;
//! `config` turns the TOML file and CLI flags into `Settings`.

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
