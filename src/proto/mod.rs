//! The sans-IO protocol core: no sockets, no clocks, no tokio, no files.
//!
//! Inputs are bytes, addresses and a [`time::Now`]; outputs are values the
//! driver (`crate::io`) carries out. See `turn::Server` for the run loop.

pub mod auth;
pub mod channel_data;
pub mod config;
pub mod framing;
pub mod limiter;
pub mod peer_policy;
pub mod proxy_protocol;
pub mod stun;
pub mod time;
pub mod turn;
