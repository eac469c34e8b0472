//! A blocking RFC 5780 client: classifies the NAT between a UDP socket and
//! a STUN server that has an alternate address (tern with
//! `[server] alternate_listen`, coturn with two listening IPs).
//!
//! Mapping follows RFC 5780 §4.3 and filtering §4.4
//! (<https://www.rfc-editor.org/rfc/rfc5780#section-4.3>). Each test is
//! run on a fresh socket from the caller, because a mapping created by one
//! test would let the next test's packets through a filtering NAT.
//! Terms are RFC 4787's. For the tests, `tern probe` and diagnostics.

use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

use super::new_tid;
use crate::proto::stun::{
    AttrType, Class, Message, MessageType, MessageWriter, Method, decode_addr, decode_xor_addr,
};
use crate::proto::turn::{CHANGE_IP, CHANGE_PORT, CHANGE_REQUEST};

/// How the NAT picks the public address of a flow (RFC 4787 §4.1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mapping {
    /// One public address per local socket, whatever the destination
    /// (also the answer when there is no NAT).
    EndpointIndependent,
    /// A new public address per destination IP.
    AddressDependent,
    /// A new public address per destination IP and port: "symmetric NAT".
    AddressAndPortDependent,
}

/// Which inbound packets reach a mapped socket (RFC 4787 §5).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Filtering {
    /// From anyone.
    EndpointIndependent,
    /// Only from IPs the socket has sent to.
    AddressDependent,
    /// Only from the exact IP and port the socket has sent to.
    AddressAndPortDependent,
}

/// Why discovery did not finish.
#[derive(Debug)]
pub enum Error {
    Io(io::Error),
    /// No Binding response from the server (after every retry).
    NoResponse(SocketAddr),
    /// The server sent no OTHER-ADDRESS: it has no alternate address.
    NoAlternate,
    /// A response the client cannot use.
    Protocol(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::NoResponse(a) => write!(f, "no Binding response from {a}"),
            Self::NoAlternate => write!(
                f,
                "the server sent no OTHER-ADDRESS: it is not set up for NAT discovery \
                 (tern: [server] alternate_listen)"
            ),
            Self::Protocol(what) => write!(f, "bad response: {what}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// What one Binding returned.
#[derive(Clone, Copy, Debug)]
struct Answer {
    mapped: SocketAddr,
    other: Option<SocketAddr>,
}

/// Sends a Binding request (with CHANGE-REQUEST `flags` when non-zero) up
/// to `tries` times, one read timeout of `sock` apart; the response may come
/// from any address. `Ok(None)`: nothing came back.
fn ask(sock: &UdpSocket, to: SocketAddr, flags: u8, tries: u32) -> Result<Option<Answer>, Error> {
    let tid = new_tid();
    let mut req = Vec::new();
    let mut w = MessageWriter::new(
        &mut req,
        MessageType::new(Method::BINDING, Class::Request),
        tid,
    );
    if flags != 0 {
        w.push(CHANGE_REQUEST, &[0, 0, 0, flags]);
    }
    w.push_fingerprint();
    let Some(wait) = sock.read_timeout()? else {
        return Err(Error::Protocol("the socket needs a read timeout"));
    };
    let mut buf = [0u8; 2048];
    for _ in 0..tries {
        sock.send_to(&req, to)?;
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            let Ok((n, _from)) = sock.recv_from(&mut buf) else {
                break;
            };
            let Ok(msg) = Message::parse(&buf[..n]) else {
                continue;
            };
            if msg.transaction_id() != tid {
                continue;
            }
            if msg.class() != Class::Success {
                return Err(Error::Protocol("Binding error response"));
            }
            let mapped = msg
                .get(AttrType::XOR_MAPPED_ADDRESS)
                .and_then(|v| decode_xor_addr(v, &tid).ok())
                .ok_or(Error::Protocol("no XOR-MAPPED-ADDRESS"))?;
            let other = msg
                .get(AttrType::OTHER_ADDRESS)
                .and_then(|v| decode_addr(v).ok());
            return Ok(Some(Answer { mapped, other }));
        }
    }
    Ok(None)
}

fn must(sock: &UdpSocket, to: SocketAddr, tries: u32) -> Result<Answer, Error> {
    ask(sock, to, 0, tries)?.ok_or(Error::NoResponse(to))
}

/// RFC 5780 §4.3: Binding to the primary address (test I), to the
/// alternate IP with the primary port (II), then to the alternate IP and
/// port (III), all from `sock`. Returns the mapping and the address test I
/// saw (equal to the socket's own address when there is no NAT).
pub fn mapping(
    sock: &UdpSocket,
    server: SocketAddr,
    tries: u32,
) -> Result<(Mapping, SocketAddr), Error> {
    let first = must(sock, server, tries)?;
    let other = first.other.ok_or(Error::NoAlternate)?;
    let second = must(sock, SocketAddr::new(other.ip(), server.port()), tries)?;
    if second.mapped == first.mapped {
        return Ok((Mapping::EndpointIndependent, first.mapped));
    }
    let third = must(sock, other, tries)?;
    let m = if third.mapped == second.mapped {
        Mapping::AddressDependent
    } else {
        Mapping::AddressAndPortDependent
    };
    Ok((m, first.mapped))
}

/// RFC 5780 §4.4: test I, then ask for the response from the other IP and
/// port (II), then from the other port only (III), on a fresh `sock`.
/// A test that gets no answer takes `tries` read timeouts of `sock`.
pub fn filtering(sock: &UdpSocket, server: SocketAddr, tries: u32) -> Result<Filtering, Error> {
    let first = must(sock, server, tries)?;
    first.other.ok_or(Error::NoAlternate)?;
    if ask(sock, server, CHANGE_IP | CHANGE_PORT, tries)?.is_some() {
        return Ok(Filtering::EndpointIndependent);
    }
    Ok(match ask(sock, server, CHANGE_PORT, tries)? {
        Some(_) => Filtering::AddressDependent,
        None => Filtering::AddressAndPortDependent,
    })
}
