//! tern's TURN client (RFC 8656), for `tern load`, the tests and
//! diagnostics. It is not the relay path of anything.
//!
//! One codec ([`codec`]: requests out, relayed addresses and data in), one
//! credential handler ([`auth`]: REALM/NONCE from 401/438, stale-nonce
//! retry, MESSAGE-INTEGRITY checked on every success), two ways to drive
//! them:
//! - [`Client`], blocking, one request at a time over UDP, TCP or TLS
//!   ([`transport`]). It controls exactly when Send indications and when
//!   ChannelData are used. Each call is one protocol step, so a caller can
//!   walk Binding → Allocate → CreatePermission → ChannelBind → data →
//!   Refresh(0) and time each step; [`Client::exchanges`] breaks the last
//!   step into its round trips (an Allocate is a 401, then a success).
//! - `pipeline::Pipeline`, nonblocking: many UDP sockets, many requests in
//!   flight, retransmissions on a timer (the setup and teardown of `tern
//!   load`).
//!
//! [`nat`] is separate: RFC 5780 NAT behaviour discovery (mapping and
//! filtering) with plain Binding requests.

pub mod auth;
pub mod codec;
pub mod nat;
pub mod pipeline;
pub mod transport;

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use auth::{Auth, Verdict};
pub use codec::{Delivery, new_tid};
use codec::{
    allocate_attrs, channel_bind_attrs, read_relayed, relayed_addresses, write_channel_data,
    write_request, write_send_indication,
};
use transport::Transport;
pub use transport::{Stream, binding};

use crate::proto::stun::{AttrType, Message, MessageWriter, Method, decode_error_code};

/// Why a client operation failed.
#[derive(Debug)]
pub enum Error {
    Io(io::Error),
    /// No response to a request in time.
    Timeout(Method),
    /// An error response other than the 401/438 of the authentication dance.
    Status {
        method: Method,
        code: u16,
        reason: String,
    },
    /// The server sent something this client cannot use.
    Protocol(&'static str),
    /// 300 Try Alternate (RFC 8489 §10), authenticated, with its
    /// ALTERNATE-SERVER addresses (same family as ours first).
    TryAlternate {
        method: Method,
        servers: Vec<SocketAddr>,
    },
}

impl Error {
    /// The STUN error code, for an error response.
    pub fn code(&self) -> Option<u16> {
        match self {
            Self::Status { code, .. } => Some(*code),
            Self::TryAlternate { .. } => Some(300),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::Timeout(m) => write!(f, "no response to {}", method_name(*m)),
            Self::Status {
                method,
                code,
                reason,
            } => write!(f, "{} failed: {code} {reason}", method_name(*method)),
            Self::Protocol(what) => write!(f, "protocol error: {what}"),
            Self::TryAlternate { method, servers } => {
                write!(f, "{method:?}: 300 Try Alternate {servers:?}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// The RFC name of a method this client sends.
fn method_name(m: Method) -> &'static str {
    match m {
        Method::BINDING => "Binding",
        Method::ALLOCATE => "Allocate",
        Method::REFRESH => "Refresh",
        Method::CREATE_PERMISSION => "CreatePermission",
        Method::CHANNEL_BIND => "ChannelBind",
        _ => "a request",
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// One request/response round trip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    pub method: Method,
    /// `None` for a success, else the error code.
    pub error: Option<u16>,
    /// From the first send of the request to its response.
    pub rtt: Duration,
    /// Times the request was sent (UDP retransmits; 1 on streams).
    pub sends: u32,
}

/// A blocking TURN client with long-term credentials.
pub struct Client {
    transport: Transport,
    auth: Auth,
    /// The round trips of the last request, in order.
    exchanges: Vec<Exchange>,
    /// The relayed addresses of the last successful Allocate (a dual
    /// allocation has two); empty before.
    pub relays: Vec<SocketAddr>,
}

impl Client {
    /// A client over UDP to `server`.
    pub fn udp(sock: UdpSocket, server: SocketAddr, username: &str, password: &str) -> Self {
        Self::new(Transport::Udp { sock, server }, username, password)
    }

    /// A client over a connected TCP stream.
    pub fn tcp(stream: TcpStream, username: &str, password: &str) -> Self {
        Self::stream(Box::new(stream), username, password)
    }

    /// A client over any stream: TCP, or TLS (`turns:`) over TCP.
    pub fn stream(stream: Box<dyn Stream>, username: &str, password: &str) -> Self {
        let buf = Vec::new();
        Self::new(Transport::Tcp { stream, buf }, username, password)
    }

    fn new(transport: Transport, username: &str, password: &str) -> Self {
        Self {
            transport,
            auth: Auth::new(username, password),
            exchanges: Vec::new(),
            relays: Vec::new(),
        }
    }

    /// The first relayed address (panics before a successful Allocate: a
    /// caller bug, not a network condition).
    pub fn relay(&self) -> SocketAddr {
        // invariant: callers ask after allocate() succeeded.
        *self
            .relays
            .first()
            .expect("relay() called before a successful Allocate")
    }

    /// The REALM the server's last 401/438 named, once one has.
    pub fn realm(&self) -> Option<&str> {
        self.auth.realm()
    }

    /// The round trips of the last request or Binding: one for most, two
    /// for an Allocate that learned REALM/NONCE from a 401, more after a
    /// stale nonce (438).
    pub fn exchanges(&self) -> &[Exchange] {
        &self.exchanges
    }

    /// Sends a request (signed once credentials are known, if `auth`) and
    /// returns the response with the same transaction id (success or
    /// error) and how it was signed; logs the round trip in `exchanges`.
    /// UDP retransmits; a stream waits once.
    fn transact(
        &mut self,
        method: Method,
        add: &dyn Fn(&mut MessageWriter<'_>),
        auth: bool,
    ) -> Result<(Vec<u8>, auth::Signed), Error> {
        let tid = new_tid();
        let mut req = Vec::new();
        let signed = write_request(&mut req, method, tid, add, auth.then_some(&self.auth));
        let (tries, wait) = if self.transport.is_stream() {
            (1, Duration::from_secs(5))
        } else {
            (10, Duration::from_millis(500))
        };
        let start = Instant::now();
        for sends in 1..=tries {
            self.transport.send(&req)?;
            let deadline = Instant::now() + wait;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                let Some(frame) = self.transport.recv(left)? else {
                    break;
                };
                match Message::parse(&frame) {
                    Ok(m) if m.transaction_id() == tid => {
                        let error = m
                            .get(AttrType::ERROR_CODE)
                            .and_then(|v| decode_error_code(v).ok())
                            .map(|(code, _)| code);
                        self.exchanges.push(Exchange {
                            method,
                            error,
                            rtt: start.elapsed(),
                            sends,
                        });
                        return Ok((frame, signed));
                    }
                    _ => {} // relayed data or an answer to an earlier retransmission
                }
            }
        }
        Err(Error::Timeout(method))
    }

    /// An authenticated request: the 401/438 dance of [`auth`], then a
    /// success whose MESSAGE-INTEGRITY is checked, or the error of any
    /// other error response.
    pub fn request(
        &mut self,
        method: Method,
        add: &dyn Fn(&mut MessageWriter<'_>),
    ) -> Result<Vec<u8>, Error> {
        self.exchanges.clear();
        let mut retries = 0;
        loop {
            let (resp, signed) = self.transact(method, add, true)?;
            let msg = Message::parse(&resp).map_err(|_| Error::Protocol("unparseable response"))?;
            match self.auth.judge(&msg, signed, retries)? {
                Verdict::Success => return Ok(resp),
                Verdict::Retry => retries += 1,
                Verdict::Failed { code: 300, .. } => {
                    let servers = self.auth.alternates(&msg)?;
                    return Err(Error::TryAlternate { method, servers });
                }
                Verdict::Failed { code, reason } => {
                    return Err(Error::Status {
                        method,
                        code,
                        reason: reason.to_owned(),
                    });
                }
            }
        }
    }

    /// RFC 8489 §10 over UDP: Allocate at `server`, following 300 Try
    /// Alternate with the same credentials, but never to a server this
    /// request was already sent to ("it MUST ignore the redirection and
    /// consider the transaction to have failed"). Returns the client holding
    /// the allocation and every server tried, in order.
    pub fn allocate_udp_following(
        server: SocketAddr,
        username: &str,
        password: &str,
    ) -> (Result<Self, Error>, Vec<SocketAddr>) {
        let mut tried = vec![server];
        loop {
            let Some(&to) = tried.last() else {
                return (Err(Error::Protocol("no server")), tried);
            };
            let bind = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
            let sock = match UdpSocket::bind(bind) {
                Ok(s) => s,
                Err(e) => return (Err(e.into()), tried),
            };
            let mut c = Self::udp(sock, to, username, password);
            match c.allocate() {
                Ok(_) => return (Ok(c), tried),
                Err(Error::TryAlternate { method, servers }) => {
                    let next = servers.iter().find(|a| a.is_ipv4() == to.is_ipv4());
                    match next {
                        // At most 8 servers: the list comes from the network.
                        Some(a) if !tried.contains(a) && tried.len() < 8 => tried.push(*a),
                        _ => return (Err(Error::TryAlternate { method, servers }), tried),
                    }
                }
                Err(e) => return (Err(e), tried),
            }
        }
    }

    /// Binding over this client's transport: the mapped address.
    pub fn binding(&mut self) -> Result<SocketAddr, Error> {
        self.exchanges.clear();
        let (resp, _) = self.transact(Method::BINDING, &|_| {}, false)?;
        let msg =
            Message::parse(&resp).map_err(|_| Error::Protocol("unparseable Binding response"))?;
        codec::mapped_address(&msg)
    }

    /// Allocate a UDP relay; `add` may append attributes (e.g. a family).
    /// Returns the response and records the relayed addresses.
    pub fn allocate_with(
        &mut self,
        add: &dyn Fn(&mut MessageWriter<'_>),
    ) -> Result<Vec<u8>, Error> {
        let resp = self.request(Method::ALLOCATE, &|w| {
            allocate_attrs(w, None);
            add(w);
        })?;
        let msg =
            Message::parse(&resp).map_err(|_| Error::Protocol("unparseable Allocate response"))?;
        self.relays = relayed_addresses(&msg)?;
        Ok(resp)
    }

    /// Allocate a UDP relay; returns the (first) relayed address.
    pub fn allocate(&mut self) -> Result<SocketAddr, Error> {
        self.allocate_with(&|_| {})?;
        Ok(self.relay())
    }

    pub fn create_permission(&mut self, peer: SocketAddr) -> Result<(), Error> {
        self.request(Method::CREATE_PERMISSION, &|w| {
            w.push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer);
        })
        .map(drop)
    }

    pub fn channel_bind(&mut self, channel: u16, peer: SocketAddr) -> Result<(), Error> {
        self.request(Method::CHANNEL_BIND, &|w| {
            channel_bind_attrs(w, channel, peer);
        })
        .map(drop)
    }

    /// Refresh; a lifetime of 0 deletes the allocation.
    pub fn refresh(&mut self, lifetime: u32) -> Result<(), Error> {
        self.request(Method::REFRESH, &|w| {
            w.push_u32(AttrType::LIFETIME, lifetime);
        })
        .map(drop)
    }

    pub fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) -> Result<(), Error> {
        let mut msg = Vec::new();
        write_send_indication(&mut msg, peer, data);
        Ok(self.transport.send(&msg)?)
    }

    /// ChannelData; padded to 4 bytes over TCP (RFC 8656 §12.5).
    pub fn send_channel(&mut self, channel: u16, data: &[u8]) -> Result<(), Error> {
        let mut frame = Vec::new();
        write_channel_data(&mut frame, channel, data, self.transport.is_stream())?;
        Ok(self.transport.send(&frame)?)
    }

    /// The next datagram or frame from the server, whatever it is.
    pub fn recv_frame(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, Error> {
        self.transport.recv(timeout)
    }

    /// The next relayed payload and how it came; `Ok(None)` after `timeout`.
    pub fn recv_data(&mut self, timeout: Duration) -> Result<Option<(Delivery, Vec<u8>)>, Error> {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Some(frame) = self.transport.recv(left)? else {
                return Ok(None);
            };
            if let Some((how, payload)) = read_relayed(&frame)? {
                return Ok(Some((how, payload.to_vec())));
            }
        }
        Ok(None)
    }
}
