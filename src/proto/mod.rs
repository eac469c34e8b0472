//! The sans-IO protocol core: no sockets, no clocks, no tokio, no files.
//!
//! Inputs are bytes, addresses and a [`time::Now`]; outputs are values the
//! driver (`crate::io`) carries out. No locks and no OS randomness either:
//! what spans shards (quotas, reserved ports) is the driver's, and the keys
//! the core needs come in through `turn::Server::new`. See `turn::Server`
//! for the run loop.

pub mod auth;
pub mod channel_data;
pub mod config;
pub mod framing;
pub mod hash;
pub mod limiter;
pub mod peer_policy;
pub mod proxy_protocol;
pub mod stun;
pub mod time;
pub mod turn;
