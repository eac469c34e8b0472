//! A small blocking TURN client (RFC 8656) over UDP or TCP.
//!
//! For tests, diagnostics and examples: it controls exactly when Send
//! indications and when ChannelData are used, checks MESSAGE-INTEGRITY on
//! every success, and learns REALM and NONCE from the server's 401 (and
//! 438). It is not the relay path of anything; `tern load` has its own
//! pipelined client for many allocations at once.

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};

use crate::proto::auth::LongTermKey;
use crate::proto::channel_data::{ChannelData, ChannelNumber, write_header};
use crate::proto::framing::frame_len;
use crate::proto::stun::{
    AttrType, Class, Message, MessageType, MessageWriter, Method, TransactionId, decode_error_code,
    decode_xor_addr,
};
use crate::secret::Secret;

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
            Self::Timeout(m) => write!(f, "no response to {m:?}"),
            Self::Status {
                method,
                code,
                reason,
            } => write!(f, "{method:?} failed: {code} {reason}"),
            Self::Protocol(what) => write!(f, "protocol error: {what}"),
            Self::TryAlternate { method, servers } => {
                write!(f, "{method:?}: 300 Try Alternate {servers:?}")
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// A random transaction id (RFC 8489 §6: random, so that responses
/// cannot be forged by an off-path attacker).
pub fn new_tid() -> TransactionId {
    let mut tid = [0u8; 12];
    // invariant: the system RNG does not fail on Linux once booted.
    SystemRandom::new()
        .fill(&mut tid)
        .expect("system random number generator");
    TransactionId(tid)
}

/// Sends a Binding request up to `tries` times (one read timeout of `sock`
/// apart) and returns XOR-MAPPED-ADDRESS from the first matching response.
pub fn binding(sock: &UdpSocket, server: SocketAddr, tries: u32) -> Option<SocketAddr> {
    let tid = new_tid();
    let mut req = Vec::new();
    MessageWriter::new(
        &mut req,
        MessageType::new(Method::BINDING, Class::Request),
        tid,
    )
    .push_fingerprint();
    let mut buf = [0u8; 1500];
    for _ in 0..tries {
        let _ = sock.send_to(&req, server);
        let deadline = Instant::now() + sock.read_timeout().ok()??;
        while Instant::now() < deadline {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                break;
            };
            let Ok(msg) = Message::parse(&buf[..n]) else {
                continue;
            };
            if from == server && msg.transaction_id() == tid && msg.class() == Class::Success {
                return decode_xor_addr(msg.get(AttrType::XOR_MAPPED_ADDRESS)?, &tid).ok();
            }
        }
    }
    None
}

/// A byte stream to the server (TCP, or TLS over TCP) whose reads can time out.
pub trait Stream: Read + Write + Send {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl Stream for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
}

impl Stream for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(timeout)
    }
}

/// The client-server leg: a UDP socket, or a stream carrying STUN and
/// padded ChannelData frames (RFC 8656 §12.5).
enum Transport {
    Udp {
        sock: UdpSocket,
        server: SocketAddr,
    },
    Tcp {
        stream: Box<dyn Stream>,
        buf: Vec<u8>,
    },
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

impl Transport {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        match self {
            Self::Udp { sock, server } => sock.send_to(frame, *server).map(drop),
            Self::Tcp { stream, .. } => stream.write_all(frame),
        }
    }

    /// The next datagram or frame from the server; `Ok(None)` after `timeout`.
    fn recv(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, Error> {
        let deadline = Instant::now() + timeout;
        match self {
            Self::Udp { sock, server } => {
                let mut buf = vec![0u8; 65_536];
                while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                    sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
                    match sock.recv_from(&mut buf) {
                        Ok((n, from)) if from == *server => return Ok(Some(buf[..n].to_vec())),
                        Ok(_) => {} // not from the server
                        Err(e) if is_timeout(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(None)
            }
            Self::Tcp { stream, buf } => loop {
                match frame_len(buf, 70_000) {
                    Ok(Some(n)) if buf.len() >= n => return Ok(Some(buf.drain(..n).collect())),
                    Ok(_) => {}
                    Err(_) => return Err(Error::Protocol("unframeable bytes on the TCP stream")),
                }
                let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                    return Ok(None);
                };
                stream.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
                let mut chunk = [0u8; 4096];
                match stream.read(&mut chunk) {
                    Ok(0) => return Err(Error::Protocol("the server closed the TCP connection")),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) if is_timeout(&e) => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
            },
        }
    }

    fn is_stream(&self) -> bool {
        matches!(self, Self::Tcp { .. })
    }
}

/// What arrived from a peer through the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A Data indication with this XOR-PEER-ADDRESS.
    Data(SocketAddr),
    /// ChannelData on this channel.
    Channel(u16),
}

/// A TURN client with long-term credentials.
pub struct Client {
    transport: Transport,
    username: String,
    password: Secret<String>,
    realm: Vec<u8>,
    key: Option<LongTermKey>,
    nonce: Vec<u8>,
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
            username: username.to_owned(),
            password: Secret::new(password.to_owned()),
            realm: Vec::new(),
            key: None,
            nonce: Vec::new(),
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

    /// Sends a request and returns the response with the same transaction
    /// id (success or error). UDP retransmits; TCP waits once.
    pub fn transact(
        &mut self,
        method: Method,
        add: &dyn Fn(&mut MessageWriter<'_>),
        auth: bool,
    ) -> Result<Vec<u8>, Error> {
        let tid = new_tid();
        let mut req = Vec::new();
        let mut w = MessageWriter::new(&mut req, MessageType::new(method, Class::Request), tid);
        add(&mut w);
        if auth && let Some(key) = &self.key {
            w.push(AttrType::USERNAME, self.username.as_bytes())
                .push(AttrType::REALM, &self.realm)
                .push(AttrType::NONCE, &self.nonce)
                .push_integrity(&key.0);
        }
        w.push_fingerprint();
        let (tries, wait) = if self.transport.is_stream() {
            (1, Duration::from_secs(5))
        } else {
            (10, Duration::from_millis(500))
        };
        for _ in 0..tries {
            self.transport.send(&req)?;
            let deadline = Instant::now() + wait;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                let Some(frame) = self.transport.recv(left)? else {
                    break;
                };
                match Message::parse(&frame) {
                    Ok(m) if m.transaction_id() == tid => return Ok(frame),
                    _ => {} // relayed data or an answer to an earlier retransmission
                }
            }
        }
        Err(Error::Timeout(method))
    }

    /// An authenticated request: the 401/438 dance, then a success whose
    /// MESSAGE-INTEGRITY is checked, or the error of any other error response.
    pub fn request(
        &mut self,
        method: Method,
        add: &dyn Fn(&mut MessageWriter<'_>),
    ) -> Result<Vec<u8>, Error> {
        for _ in 0..3 {
            let resp = self.transact(method, add, true)?;
            let msg = Message::parse(&resp).map_err(|_| Error::Protocol("unparseable response"))?;
            if msg.class() == Class::Success {
                let key = self
                    .key
                    .ok_or(Error::Protocol("success without authentication"))?;
                msg.check_integrity(&key.0)
                    .map_err(|_| Error::Protocol("bad MESSAGE-INTEGRITY in a success"))?;
                return Ok(resp);
            }
            let (code, reason) = msg
                .get(AttrType::ERROR_CODE)
                .and_then(|v| decode_error_code(v).ok())
                .ok_or(Error::Protocol("error response without ERROR-CODE"))?;
            if code == 300 {
                return Err(self.try_alternate(method, &msg));
            }
            let retry = code == 438 || code == 401 && self.nonce.is_empty();
            if !retry {
                return Err(Error::Status {
                    method,
                    code,
                    reason: reason.to_owned(),
                });
            }
            let realm = msg
                .get(AttrType::REALM)
                .ok_or(Error::Protocol("401/438 without REALM"))?;
            self.nonce = msg
                .get(AttrType::NONCE)
                .ok_or(Error::Protocol("401/438 without NONCE"))?
                .to_vec();
            if self.key.is_none() || self.realm != realm {
                self.realm = realm.to_vec();
                let realm = std::str::from_utf8(realm)
                    .map_err(|_| Error::Protocol("REALM is not UTF-8"))?;
                self.key = Some(LongTermKey::derive(
                    &self.username,
                    realm,
                    self.password.expose(),
                ));
            }
        }
        Err(Error::Protocol("authentication did not converge"))
    }

    /// A 300's ALTERNATE-SERVER list. Only trusted with a valid
    /// MESSAGE-INTEGRITY: an unauthenticated redirect could come from anyone
    /// on the path (RFC 8489 §10 leaves it to the client).
    fn try_alternate(&self, method: Method, msg: &Message<'_>) -> Error {
        let Some(key) = self.key else {
            return Error::Protocol("300 Try Alternate before authentication");
        };
        if msg.check_integrity(&key.0).is_err() {
            return Error::Protocol("300 Try Alternate without valid MESSAGE-INTEGRITY");
        }
        let servers = msg
            .attrs()
            .filter(|(t, _)| *t == AttrType::ALTERNATE_SERVER)
            .filter_map(|(_, v)| crate::proto::stun::decode_addr(v).ok())
            .collect();
        Error::TryAlternate { method, servers }
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
        let resp = self.transact(Method::BINDING, &|_| {}, false)?;
        let msg =
            Message::parse(&resp).map_err(|_| Error::Protocol("unparseable Binding response"))?;
        let v = msg
            .get(AttrType::XOR_MAPPED_ADDRESS)
            .ok_or(Error::Protocol("no XOR-MAPPED-ADDRESS"))?;
        decode_xor_addr(v, &msg.transaction_id())
            .map_err(|_| Error::Protocol("bad XOR-MAPPED-ADDRESS"))
    }

    /// Allocate a UDP relay; `add` may append attributes (e.g. a family).
    /// Returns the response and records the relayed addresses.
    pub fn allocate_with(
        &mut self,
        add: &dyn Fn(&mut MessageWriter<'_>),
    ) -> Result<Vec<u8>, Error> {
        let resp = self.request(Method::ALLOCATE, &|w| {
            // UDP (17) in the top byte (RFC 8656 §18.8).
            w.push_u32(AttrType::REQUESTED_TRANSPORT, 17 << 24);
            add(w);
        })?;
        let msg =
            Message::parse(&resp).map_err(|_| Error::Protocol("unparseable Allocate response"))?;
        let tid = msg.transaction_id();
        self.relays = msg
            .attrs()
            .filter(|(t, _)| *t == AttrType::XOR_RELAYED_ADDRESS)
            .filter_map(|(_, v)| decode_xor_addr(v, &tid).ok())
            .collect();
        if self.relays.is_empty() {
            return Err(Error::Protocol(
                "Allocate success without XOR-RELAYED-ADDRESS",
            ));
        }
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
            w.push_u32(AttrType::CHANNEL_NUMBER, u32::from(channel) << 16)
                .push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer);
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
        MessageWriter::new(
            &mut msg,
            MessageType::new(Method::SEND, Class::Indication),
            new_tid(),
        )
        .push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer)
        .push(AttrType::DATA, data);
        Ok(self.transport.send(&msg)?)
    }

    /// ChannelData; padded to 4 bytes over TCP (RFC 8656 §12.5).
    pub fn send_channel(&mut self, channel: u16, data: &[u8]) -> Result<(), Error> {
        let number =
            ChannelNumber::new(channel).ok_or(Error::Protocol("channel number out of range"))?;
        let len =
            u16::try_from(data.len()).map_err(|_| Error::Protocol("payload over 65535 bytes"))?;
        let mut frame = write_header(number, len).to_vec();
        frame.extend_from_slice(data);
        if self.transport.is_stream() {
            frame.resize(frame.len().next_multiple_of(4), 0);
        }
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
            if let Ok(cd) = ChannelData::parse(&frame) {
                return Ok(Some((
                    Delivery::Channel(cd.channel.get()),
                    cd.payload.to_vec(),
                )));
            }
            let msg = Message::parse(&frame)
                .map_err(|_| Error::Protocol("neither STUN nor ChannelData"))?;
            if msg.message_type() == MessageType::new(Method::DATA, Class::Indication) {
                let peer = msg
                    .get(AttrType::XOR_PEER_ADDRESS)
                    .ok_or(Error::Protocol("Data without peer"))?;
                let peer = decode_xor_addr(peer, &msg.transaction_id())
                    .map_err(|_| Error::Protocol("bad XOR-PEER-ADDRESS in Data"))?;
                let payload = msg
                    .get(AttrType::DATA)
                    .ok_or(Error::Protocol("Data without DATA"))?;
                return Ok(Some((Delivery::Data(peer), payload.to_vec())));
            }
        }
        Ok(None)
    }
}
