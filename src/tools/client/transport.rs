//! The blocking client's leg to the server: a UDP socket, or a byte stream
//! (TCP, or TLS over TCP) carrying STUN messages and padded ChannelData
//! frames (RFC 8656 §12.5); plus a one-shot Binding on a bare UDP socket.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use super::Error;
use super::codec::{mapped_address, new_tid, write_request};
use crate::proto::framing::frame_len;
use crate::proto::stun::{Class, Message, Method};

/// Sends a Binding request up to `tries` times (one read timeout of `sock`
/// apart) and returns XOR-MAPPED-ADDRESS from the first matching response.
pub fn binding(sock: &UdpSocket, server: SocketAddr, tries: u32) -> Option<SocketAddr> {
    let tid = new_tid();
    let mut req = Vec::new();
    write_request(&mut req, Method::BINDING, tid, &|_| {}, None);
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
                return mapped_address(&msg).ok();
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
pub(super) enum Transport {
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
    pub(super) fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        match self {
            Self::Udp { sock, server } => sock.send_to(frame, *server).map(drop),
            Self::Tcp { stream, .. } => stream.write_all(frame),
        }
    }

    /// The next datagram or frame from the server; `Ok(None)` after `timeout`.
    pub(super) fn recv(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, Error> {
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

    pub(super) fn is_stream(&self) -> bool {
        matches!(self, Self::Tcp { .. })
    }
}
