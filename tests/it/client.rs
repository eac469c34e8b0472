//! The library's blocking TURN client (`tern::tools::client`) with the test user,
//! and error responses as plain codes so tests can `assert_eq!(.., Err(403))`.
//! The interop tests use clients others wrote; this one builds messages with
//! tern's codec, which the RFC 5769 vectors check independently.

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use tern::proto::stun::{MessageWriter, Method};
use tern::tools::client::Error;

use crate::harness::{IO_TIMEOUT, PASS, USER};

/// How the client reaches the server.
pub(crate) enum Link {
    Udp(SocketAddr),
    Tcp(SocketAddr),
}

impl Link {
    /// UDP from a loopback socket of the server address's family.
    pub(crate) fn udp(server: SocketAddr) -> Self {
        Self::Udp(server)
    }

    pub(crate) fn tcp(server: SocketAddr) -> Self {
        Self::Tcp(server)
    }
}

pub(crate) struct Client(tern::tools::client::Client);

/// The error code of an error response; anything else fails the test.
fn code(e: Error) -> u16 {
    e.code().unwrap_or_else(|| panic!("{e}"))
}

impl Client {
    pub(crate) fn new(link: Link) -> Self {
        Self(match link {
            Link::Udp(server) => {
                let bind = if server.is_ipv6() {
                    "[::1]:0"
                } else {
                    "127.0.0.1:0"
                };
                tern::tools::client::Client::udp(UdpSocket::bind(bind).unwrap(), server, USER, PASS)
            }
            Link::Tcp(server) => {
                let s = TcpStream::connect_timeout(&server, IO_TIMEOUT).unwrap();
                tern::tools::client::Client::tcp(s, USER, PASS)
            }
        })
    }

    /// An authenticated request; `Err` is the error code.
    pub(crate) fn request(
        &mut self,
        method: Method,
        attrs: impl Fn(&mut MessageWriter<'_>),
    ) -> Result<Vec<u8>, u16> {
        self.0.request(method, &attrs).map_err(code)
    }

    pub(crate) fn binding(&mut self) -> SocketAddr {
        self.0.binding().unwrap_or_else(|e| panic!("Binding: {e}"))
    }

    pub(crate) fn allocate(&mut self) -> Result<SocketAddr, u16> {
        self.0.allocate().map_err(code)
    }

    pub(crate) fn create_permission(&mut self, peer: SocketAddr) -> Result<(), u16> {
        self.0.create_permission(peer).map_err(code)
    }

    pub(crate) fn channel_bind(&mut self, ch: u16, peer: SocketAddr) -> Result<(), u16> {
        self.0.channel_bind(ch, peer).map_err(code)
    }

    pub(crate) fn refresh(&mut self, lifetime: u32) -> Result<(), u16> {
        self.0.refresh(lifetime).map_err(code)
    }

    pub(crate) fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) {
        self.0.send_indication(peer, data).unwrap();
    }

    pub(crate) fn channel_data(&mut self, ch: u16, data: &[u8]) {
        self.0.send_channel(ch, data).unwrap();
    }

    /// The next datagram or frame from the server.
    pub(crate) fn recv(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        self.0.recv_frame(timeout).unwrap()
    }
}
