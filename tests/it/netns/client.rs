//! The library's blocking TURN client (`tern::tools::client`) for the namespace
//! tests: the test user, and panics with a clear message where a step must
//! succeed.

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

pub(crate) use tern::tools::client::{Delivery, binding};

use super::{PASS, TERN_IP, USER};

pub(crate) struct TurnClient {
    inner: tern::tools::client::Client,
    /// The relayed address, once allocated.
    pub(crate) relay: SocketAddr,
}

impl TurnClient {
    pub(crate) fn udp(sock: UdpSocket, server: SocketAddr) -> Self {
        Self::new(tern::tools::client::Client::udp(sock, server, USER, PASS))
    }

    pub(crate) fn tcp(stream: TcpStream) -> Self {
        Self::new(tern::tools::client::Client::tcp(stream, USER, PASS))
    }

    fn new(inner: tern::tools::client::Client) -> Self {
        Self {
            inner,
            relay: SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }

    pub(crate) fn binding(&mut self) -> SocketAddr {
        self.inner
            .binding()
            .unwrap_or_else(|e| panic!("Binding: {e}"))
    }

    pub(crate) fn allocate(&mut self) {
        self.relay = self
            .inner
            .allocate()
            .unwrap_or_else(|e| panic!("Allocate: {e}"));
        assert_eq!(self.relay.ip(), TERN_IP, "relayed address");
    }

    pub(crate) fn create_permission(&mut self, peer: SocketAddr) {
        if let Err(code) = self.try_create_permission(peer) {
            panic!("CreatePermission {peer} failed: {code}");
        }
    }

    /// CreatePermission; `Err` holds the error code of an error response.
    pub(crate) fn try_create_permission(&mut self, peer: SocketAddr) -> Result<(), u16> {
        self.inner
            .create_permission(peer)
            .map_err(|e| e.code().unwrap_or_else(|| panic!("{e}")))
    }

    pub(crate) fn channel_bind(&mut self, channel: u16, peer: SocketAddr) {
        if let Err(code) = self.try_channel_bind(channel, peer) {
            panic!("ChannelBind {channel:#x} to {peer} failed: {code}");
        }
    }

    /// ChannelBind; `Err` holds the error code of an error response.
    pub(crate) fn try_channel_bind(&mut self, channel: u16, peer: SocketAddr) -> Result<(), u16> {
        self.inner
            .channel_bind(channel, peer)
            .map_err(|e| e.code().unwrap_or_else(|| panic!("{e}")))
    }

    pub(crate) fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) {
        self.inner
            .send_indication(peer, data)
            .expect("send a Send indication");
    }

    pub(crate) fn send_channel(&mut self, channel: u16, data: &[u8]) {
        self.inner
            .send_channel(channel, data)
            .expect("send ChannelData");
    }

    /// The next relayed payload and how it came, or `None` after `timeout`.
    pub(crate) fn recv_data(&mut self, timeout: Duration) -> Option<(Delivery, Vec<u8>)> {
        self.inner
            .recv_data(timeout)
            .unwrap_or_else(|e| panic!("receive: {e}"))
    }
}
