//! The hook for the NAT type in front of the probe (RFC 5780 §4.3
//! mapping and §4.4 filtering), reported as `addresses.nat_type`.
//!
//! The RFC 5780 client routine (`mapping` / `filtering`, from the
//! `nat5780` work) is not in this tree yet. When it is, `discover` runs
//! both tests on fresh UDP sockets (one per test, as RFC 5780 §4 asks),
//! and renders e.g. "endpoint-independent mapping, address-dependent
//! filtering"; a server without an alternate address gives
//! "unknown (the server has no alternate address: [server] alternate_listen)".
//! Until then it reports nothing, and the report leaves `nat_type` out.

use std::net::SocketAddr;

/// The NAT type between this host and `server` (UDP), if it can be told.
pub(super) fn discover(_server: SocketAddr) -> Option<String> {
    None
}
