//! A small blocking TURN client over UDP or TCP for tests that need exact
//! control of what is sent (security, quotas, hostile input). The interop
//! tests use clients others wrote; this one builds messages with tern's
//! codec, which the RFC 5769 vectors check independently.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use tern::proto::auth::LongTermKey;
use tern::proto::stun::{
    AttrType, Class, Message, MessageType, MessageWriter, Method, TransactionId, decode_error_code,
    decode_xor_addr,
};

use crate::harness::{IO_TIMEOUT, PASS, REALM, USER, random_tid};

pub(crate) enum Link {
    Udp(UdpSocket, SocketAddr),
    Tcp(TcpStream, Vec<u8>),
}

impl Link {
    pub(crate) fn udp(server: SocketAddr) -> Self {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        Self::Udp(s, server)
    }

    /// A UDP socket of the server address's family on loopback.
    pub(crate) fn udp_any(server: SocketAddr) -> Self {
        let bind = if server.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        let s = UdpSocket::bind(bind).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        Self::Udp(s, server)
    }

    pub(crate) fn tcp(server: SocketAddr) -> Self {
        let s = TcpStream::connect_timeout(&server, IO_TIMEOUT).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        Self::Tcp(s, Vec::new())
    }

    pub(crate) fn send(&mut self, bytes: &[u8]) {
        match self {
            Self::Udp(s, to) => {
                s.send_to(bytes, *to).unwrap();
            }
            Self::Tcp(s, _) => s.write_all(bytes).unwrap(),
        }
    }

    /// One datagram or one frame; `None` on timeout.
    pub(crate) fn recv(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        match self {
            Self::Udp(s, _) => {
                s.set_read_timeout(Some(timeout)).unwrap();
                let mut buf = vec![0u8; 65_536];
                let (n, _) = s.recv_from(&mut buf).ok()?;
                buf.truncate(n);
                Some(buf)
            }
            Self::Tcp(s, pending) => {
                s.set_read_timeout(Some(timeout)).unwrap();
                loop {
                    if let Ok(Some(len)) = tern::proto::framing::frame_len(pending, 65_600)
                        && pending.len() >= len
                    {
                        return Some(pending.drain(..len).collect());
                    }
                    let mut buf = [0u8; 4096];
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return None,
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                    }
                }
            }
        }
    }
}

/// A TURN client with long-term credentials.
pub(crate) struct Client {
    pub(crate) link: Link,
    user: String,
    key: LongTermKey,
    nonce: Vec<u8>,
}

/// A response: success, or an error code.
pub(crate) type Reply = Result<Vec<u8>, u16>;

impl Client {
    pub(crate) fn new(link: Link) -> Self {
        Self::with_credentials(link, USER, PASS)
    }

    pub(crate) fn with_credentials(link: Link, user: &str, pass: &str) -> Self {
        Self {
            link,
            user: user.to_owned(),
            key: LongTermKey::derive(user, REALM, pass),
            nonce: Vec::new(),
        }
    }

    /// Sends an authenticated request (doing the 401/438 dance) and returns
    /// the final reply.
    pub(crate) fn request(
        &mut self,
        method: Method,
        attrs: impl Fn(&mut MessageWriter<'_>),
    ) -> Reply {
        for _ in 0..3 {
            let tid = TransactionId(random_tid());
            let mut out = Vec::new();
            let mut w = MessageWriter::new(&mut out, MessageType::new(method, Class::Request), tid);
            attrs(&mut w);
            if !self.nonce.is_empty() {
                w.push(AttrType::USERNAME, self.user.as_bytes());
                w.push(AttrType::REALM, REALM.as_bytes());
                w.push(AttrType::NONCE, &self.nonce);
                w.push_integrity(&self.key.0);
            }
            w.push_fingerprint();
            self.link.send(&out);
            let resp = loop {
                let r = self
                    .link
                    .recv(IO_TIMEOUT)
                    .expect("no response from the server");
                let m = Message::parse(&r).expect("response parses");
                if m.transaction_id() == tid {
                    break r;
                }
            };
            let m = Message::parse(&resp).unwrap();
            if m.message_type().class == Class::Success {
                return Ok(resp);
            }
            let code = decode_error_code(m.get(AttrType::ERROR_CODE).unwrap())
                .unwrap()
                .0;
            if (code == 401 && self.nonce.is_empty()) || code == 438 {
                self.nonce = m.get(AttrType::NONCE).expect("NONCE in 401/438").to_vec();
                continue;
            }
            return Err(code);
        }
        panic!("authentication loop did not settle");
    }

    pub(crate) fn allocate(&mut self) -> Result<SocketAddr, u16> {
        let r = self.request(Method::ALLOCATE, |w| {
            w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        })?;
        let m = Message::parse(&r).unwrap();
        Ok(decode_xor_addr(
            m.get(AttrType::XOR_RELAYED_ADDRESS).unwrap(),
            &m.transaction_id(),
        )
        .unwrap())
    }

    pub(crate) fn create_permission(&mut self, peer: SocketAddr) -> Result<(), u16> {
        self.request(Method::CREATE_PERMISSION, |w| {
            w.push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer);
        })
        .map(drop)
    }

    pub(crate) fn channel_bind(&mut self, ch: u16, peer: SocketAddr) -> Result<(), u16> {
        self.request(Method::CHANNEL_BIND, |w| {
            w.push(AttrType::CHANNEL_NUMBER, &[(ch >> 8) as u8, ch as u8, 0, 0]);
            w.push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer);
        })
        .map(drop)
    }

    pub(crate) fn refresh(&mut self, lifetime: u32) -> Result<(), u16> {
        self.request(Method::REFRESH, |w| {
            w.push_u32(AttrType::LIFETIME, lifetime);
        })
        .map(drop)
    }

    pub(crate) fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) {
        let mut out = Vec::new();
        let mut w = MessageWriter::new(
            &mut out,
            MessageType::new(Method::SEND, Class::Indication),
            TransactionId(random_tid()),
        );
        w.push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer);
        w.push(AttrType::DATA, data);
        self.link.send(&out);
    }

    /// ChannelData, padded to 4 bytes (required on TCP, harmless on UDP).
    pub(crate) fn channel_data(&mut self, ch: u16, data: &[u8]) {
        let mut out = vec![
            (ch >> 8) as u8,
            ch as u8,
            (data.len() >> 8) as u8,
            data.len() as u8,
        ];
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        self.link.send(&out);
    }
}
