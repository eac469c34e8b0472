//! The tokio driver: the only code that touches sockets and clocks.

use std::net::SocketAddr;

use crate::settings::Settings;

/// A running server. Dropping it without `shutdown` leaves the threads running
/// until the process exits.
#[derive(Debug)]
pub struct Handle {
    udp: Vec<SocketAddr>,
    tcp: Vec<SocketAddr>,
}

impl Handle {
    /// The bound UDP listener addresses (real ports, also when 0 was asked).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp
    }

    /// The bound TCP listener addresses.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp
    }

    /// Stops every worker and waits for them; all allocations end.
    pub fn shutdown(self) {
        todo!()
    }
}

/// Binds every listener, starts the workers and returns once the server
/// answers (the returned addresses are ready to use).
pub fn start(settings: Settings) -> std::io::Result<Handle> {
    todo!("{settings:?}")
}
