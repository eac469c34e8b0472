//! STUN on plain sockets and a small TURN client that controls exactly
//! when Send indications and when ChannelData are used.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tern::proto::auth::LongTermKey;
use tern::proto::channel_data::{ChannelData, ChannelNumber, write_header};
use tern::proto::framing::frame_len;
use tern::proto::stun::{
    AttrType, Class, Message, MessageType, MessageWriter, Method, TransactionId, decode_error_code,
    decode_xor_addr,
};

use crate::{PASS, REALM, TERN_IP, USER};

fn new_tid() -> TransactionId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let mut tid = [0u8; 12];
    tid[..4].copy_from_slice(&std::process::id().to_be_bytes());
    tid[4..].copy_from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    TransactionId(tid)
}

/// Sends a Binding request up to `tries` times (one read timeout apart) and
/// returns XOR-MAPPED-ADDRESS from the first matching response.
pub(crate) fn binding(sock: &UdpSocket, server: SocketAddr, tries: u32) -> Option<SocketAddr> {
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
                let v = msg.get(AttrType::XOR_MAPPED_ADDRESS)?;
                return decode_xor_addr(v, &tid).ok();
            }
        }
    }
    None
}

/// The client-server leg: a UDP socket, or a TCP stream carrying STUN and
/// padded ChannelData frames (RFC 8656 §12.5).
enum Transport {
    Udp { sock: UdpSocket, server: SocketAddr },
    Tcp { stream: TcpStream, buf: Vec<u8> },
}

impl Transport {
    fn send(&mut self, frame: &[u8]) {
        match self {
            Self::Udp { sock, server } => {
                sock.send_to(frame, *server).expect("UDP send");
            }
            Self::Tcp { stream, .. } => stream.write_all(frame).expect("TCP send"),
        }
    }

    /// The next frame from the server, or `None` after `timeout`.
    fn recv(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        match self {
            Self::Udp { sock, server } => {
                let mut buf = vec![0u8; 2048];
                while Instant::now() < deadline {
                    match sock.recv_from(&mut buf) {
                        Ok((n, from)) if from == *server => return Some(buf[..n].to_vec()),
                        Ok(_) => {}
                        Err(e) if is_timeout(&e) => {}
                        Err(e) => panic!("UDP receive: {e}"),
                    }
                }
                None
            }
            Self::Tcp { stream, buf } => loop {
                match frame_len(buf, 70_000).expect("bad frame from tern") {
                    Some(n) if buf.len() >= n => return Some(buf.drain(..n).collect()),
                    _ => {}
                }
                let left = deadline.checked_duration_since(Instant::now())?;
                stream
                    .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .expect("set timeout");
                let mut chunk = [0u8; 4096];
                match stream.read(&mut chunk) {
                    Ok(0) => panic!("tern closed the TCP connection"),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) if is_timeout(&e) => return None,
                    Err(e) => panic!("TCP receive: {e}"),
                }
            },
        }
    }

    fn is_tcp(&self) -> bool {
        matches!(self, Self::Tcp { .. })
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// What arrived from a peer through the relay.
#[derive(Debug, PartialEq)]
pub(crate) enum Delivery {
    /// A Data indication with this XOR-PEER-ADDRESS.
    Data(SocketAddr),
    /// ChannelData on this channel.
    Channel(u16),
}

pub(crate) struct TurnClient {
    transport: Transport,
    key: LongTermKey,
    nonce: Vec<u8>,
    pub(crate) relay: SocketAddr,
}

impl TurnClient {
    pub(crate) fn udp(sock: UdpSocket, server: SocketAddr) -> Self {
        Self::new(Transport::Udp { sock, server })
    }

    pub(crate) fn tcp(stream: TcpStream) -> Self {
        Self::new(Transport::Tcp {
            stream,
            buf: Vec::new(),
        })
    }

    fn new(transport: Transport) -> Self {
        Self {
            transport,
            key: LongTermKey::derive(USER, REALM, PASS),
            nonce: Vec::new(),
            relay: SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }

    /// Sends a request and returns the response (success or error) with the
    /// same transaction id; UDP retransmits, TCP waits.
    fn transact(
        &mut self,
        method: Method,
        add: &dyn Fn(&mut MessageWriter<'_>),
        auth: bool,
    ) -> Vec<u8> {
        let tid = new_tid();
        let mut req = Vec::new();
        let mut w = MessageWriter::new(&mut req, MessageType::new(method, Class::Request), tid);
        add(&mut w);
        if auth {
            w.push(AttrType::USERNAME, USER.as_bytes())
                .push(AttrType::REALM, REALM.as_bytes())
                .push(AttrType::NONCE, &self.nonce)
                .push_integrity(&self.key.0);
        }
        w.push_fingerprint();
        let (tries, wait) = if self.transport.is_tcp() {
            (1, Duration::from_secs(5))
        } else {
            (10, Duration::from_millis(500))
        };
        for _ in 0..tries {
            self.transport.send(&req);
            let deadline = Instant::now() + wait;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                let Some(frame) = self.transport.recv(left) else {
                    break;
                };
                match Message::parse(&frame) {
                    Ok(m) if m.transaction_id() == tid => return frame,
                    _ => {} // stray data or an old retransmitted answer
                }
            }
        }
        panic!("no response to {method:?}");
    }

    /// An authenticated request: the 401/438 dance, then a checked success.
    fn request(&mut self, method: Method, add: &dyn Fn(&mut MessageWriter<'_>)) -> Vec<u8> {
        self.try_request(method, add)
            .unwrap_or_else(|(code, reason)| panic!("{method:?} failed: {code} {reason}"))
    }

    /// An authenticated request: the 401/438 dance, then a checked success,
    /// or the error code and reason of any other error response.
    fn try_request(
        &mut self,
        method: Method,
        add: &dyn Fn(&mut MessageWriter<'_>),
    ) -> Result<Vec<u8>, (u16, String)> {
        for _ in 0..3 {
            let auth = !self.nonce.is_empty();
            let resp = self.transact(method, add, auth);
            let msg = Message::parse(&resp).expect("parse response");
            if msg.class() == Class::Success {
                msg.check_integrity(&self.key.0)
                    .unwrap_or_else(|e| panic!("{method:?} response integrity: {e:?}"));
                return Ok(resp);
            }
            let (code, reason) = msg
                .get(AttrType::ERROR_CODE)
                .and_then(|v| decode_error_code(v).ok())
                .expect("error response without ERROR-CODE");
            if !matches!(code, 401 | 438) {
                return Err((code, reason.to_string()));
            }
            let realm = msg.get(AttrType::REALM).expect("401 without REALM");
            assert_eq!(realm, REALM.as_bytes());
            self.nonce = msg
                .get(AttrType::NONCE)
                .expect("401 without NONCE")
                .to_vec();
        }
        panic!("{method:?}: authentication did not converge");
    }

    pub(crate) fn binding(&mut self) -> SocketAddr {
        let resp = self.transact(Method::BINDING, &|_| {}, false);
        let msg = Message::parse(&resp).expect("parse Binding response");
        assert_eq!(msg.class(), Class::Success, "Binding failed");
        let v = msg
            .get(AttrType::XOR_MAPPED_ADDRESS)
            .expect("XOR-MAPPED-ADDRESS");
        decode_xor_addr(v, &msg.transaction_id()).expect("decode mapped address")
    }

    pub(crate) fn allocate(&mut self) {
        let resp = self.request(Method::ALLOCATE, &|w| {
            // UDP (17) in the top byte (RFC 8656 §18.8).
            w.push_u32(AttrType::REQUESTED_TRANSPORT, 17 << 24);
        });
        let msg = Message::parse(&resp).expect("parse Allocate response");
        let v = msg
            .get(AttrType::XOR_RELAYED_ADDRESS)
            .expect("XOR-RELAYED-ADDRESS");
        self.relay = decode_xor_addr(v, &msg.transaction_id()).expect("relayed address");
        assert_eq!(self.relay.ip(), TERN_IP, "relayed address");
    }

    pub(crate) fn create_permission(&mut self, peer: SocketAddr) {
        if let Err(code) = self.try_create_permission(peer) {
            panic!("CreatePermission {peer} failed: {code}");
        }
    }

    /// CreatePermission; `Err` holds the error code of an error response.
    pub(crate) fn try_create_permission(&mut self, peer: SocketAddr) -> Result<(), u16> {
        self.try_request(Method::CREATE_PERMISSION, &|w| {
            w.push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer);
        })
        .map(drop)
        .map_err(|(code, _)| code)
    }

    pub(crate) fn channel_bind(&mut self, channel: u16, peer: SocketAddr) {
        if let Err(code) = self.try_channel_bind(channel, peer) {
            panic!("ChannelBind {channel:#x} to {peer} failed: {code}");
        }
    }

    /// ChannelBind; `Err` holds the error code of an error response.
    pub(crate) fn try_channel_bind(&mut self, channel: u16, peer: SocketAddr) -> Result<(), u16> {
        self.try_request(Method::CHANNEL_BIND, &|w| {
            w.push_u32(AttrType::CHANNEL_NUMBER, u32::from(channel) << 16)
                .push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer);
        })
        .map(drop)
        .map_err(|(code, _)| code)
    }

    pub(crate) fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) {
        let mut msg = Vec::new();
        let send = MessageType::new(Method::SEND, Class::Indication);
        MessageWriter::new(&mut msg, send, new_tid())
            .push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer)
            .push(AttrType::DATA, data);
        self.transport.send(&msg);
    }

    pub(crate) fn send_channel(&mut self, channel: u16, data: &[u8]) {
        let number = ChannelNumber::new(channel).expect("channel number");
        let len = u16::try_from(data.len()).expect("payload fits");
        let mut frame = write_header(number, len).to_vec();
        frame.extend_from_slice(data);
        if self.transport.is_tcp() {
            // RFC 8656 §12.5: padded to 4 bytes over TCP.
            frame.resize(frame.len().next_multiple_of(4), 0);
        }
        self.transport.send(&frame);
    }

    /// The next relayed payload and how it came, or `None` after `timeout`.
    pub(crate) fn recv_data(&mut self, timeout: Duration) -> Option<(Delivery, Vec<u8>)> {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let frame = self.transport.recv(left)?;
            if let Ok(cd) = ChannelData::parse(&frame) {
                return Some((Delivery::Channel(cd.channel.get()), cd.payload.to_vec()));
            }
            let msg = Message::parse(&frame).expect("neither STUN nor ChannelData from tern");
            let data = MessageType::new(Method::DATA, Class::Indication);
            if msg.message_type() == data {
                let peer = msg
                    .get(AttrType::XOR_PEER_ADDRESS)
                    .expect("Data without peer");
                let peer = decode_xor_addr(peer, &msg.transaction_id()).expect("peer address");
                let payload = msg.get(AttrType::DATA).expect("Data without DATA");
                return Some((Delivery::Data(peer), payload.to_vec()));
            }
        }
        None
    }
}
