//! tern: a STUN/TURN server.
//!
//! Architecture: `proto` is a sans-IO state machine (bytes, addresses and
//! time in; replies, relay sends and deadlines out); `io` is the tokio driver
//! that moves bytes; `config` turns the TOML file and CLI flags into
//! `Settings`.

pub mod cli;
pub mod client;
pub mod client_nat;
pub mod cmd;
pub mod config;
pub mod io;
pub mod issuer;
pub mod load;
pub mod proto;
pub mod secret;
pub mod settings;
pub mod telemetry;
