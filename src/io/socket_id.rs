//! Which socket a `mio` event is for: a typed id with one encoding to and
//! from [`Token`], instead of integer ranges.
//!
//! Layout of the token: the low 3 bits are the kind, the rest the index
//! (for a relay, `slot << 1 | family`). Relay slots are the core's
//! `RelayId::slot` (u32), so every id fits a 64-bit `usize` with room.

use mio::Token;

use crate::proto::turn::RelayId;

/// A socket of one worker.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum SocketId {
    /// The waker that interrupts `poll` for shutdown.
    Waker,
    /// UDP listener `n` (index into the worker's listeners).
    Udp(usize),
    /// TCP or TLS listener `n`.
    StreamListener(usize),
    /// Accepted stream connection `n` (key in the worker's connection table).
    Conn(usize),
    /// The relay socket of core slot `slot`, IPv4 or IPv6 half.
    Relay { slot: u32, ipv6: bool },
    /// The TCP relay listener of core slot `slot` (RFC 6062).
    TcpRelay { slot: u32 },
    /// TCP peer connection `n` (key in the worker's peer table).
    Peer(usize),
}

const KIND_BITS: u32 = 3;
const KIND_MASK: usize = (1 << KIND_BITS) - 1;
const WAKER: usize = 0;
const UDP: usize = 1;
const STREAM_LISTENER: usize = 2;
const CONN: usize = 3;
const RELAY: usize = 4;
const TCP_RELAY: usize = 5;
const PEER: usize = 6;

impl SocketId {
    /// The relay socket of `relay` for a peer of the given family.
    #[inline]
    pub(crate) fn relay(relay: RelayId, ipv6: bool) -> Self {
        Self::Relay {
            slot: relay.slot,
            ipv6,
        }
    }

    #[inline]
    pub(crate) fn token(self) -> Token {
        let (kind, index) = match self {
            Self::Waker => (WAKER, 0),
            Self::Udp(n) => (UDP, n),
            Self::StreamListener(n) => (STREAM_LISTENER, n),
            Self::Conn(n) => (CONN, n),
            Self::Relay { slot, ipv6 } => (RELAY, (slot as usize) << 1 | usize::from(ipv6)),
            Self::TcpRelay { slot } => (TCP_RELAY, slot as usize),
            Self::Peer(n) => (PEER, n),
        };
        Token(index << KIND_BITS | kind)
    }

    /// The id a token encodes; `None` for a token no id makes.
    #[inline]
    pub(crate) fn from_token(t: Token) -> Option<Self> {
        let index = t.0 >> KIND_BITS;
        Some(match t.0 & KIND_MASK {
            WAKER if index == 0 => Self::Waker,
            UDP => Self::Udp(index),
            STREAM_LISTENER => Self::StreamListener(index),
            CONN => Self::Conn(index),
            RELAY => Self::Relay {
                slot: u32::try_from(index >> 1).ok()?,
                ipv6: index & 1 == 1,
            },
            TCP_RELAY => Self::TcpRelay {
                slot: u32::try_from(index).ok()?,
            },
            PEER => Self::Peer(index),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_round_trips_through_its_token() {
        let ids = [
            SocketId::Waker,
            SocketId::Udp(0),
            SocketId::Udp(7),
            SocketId::StreamListener(3),
            SocketId::Conn(0),
            SocketId::Conn(1 << 30),
            SocketId::Relay {
                slot: 0,
                ipv6: false,
            },
            SocketId::Relay {
                slot: 0,
                ipv6: true,
            },
            SocketId::Relay {
                slot: u32::MAX,
                ipv6: true,
            },
            SocketId::TcpRelay { slot: 0 },
            SocketId::TcpRelay { slot: u32::MAX },
            SocketId::Peer(0),
            SocketId::Peer(1 << 30),
        ];
        for id in ids {
            assert_eq!(SocketId::from_token(id.token()), Some(id), "{id:?}");
        }
        // Distinct ids, distinct tokens.
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                assert_ne!(a.token(), b.token(), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn foreign_tokens_decode_to_nothing() {
        assert_eq!(SocketId::from_token(Token(7)), None); // kind 7 is unused
        assert_eq!(SocketId::from_token(Token(7 | (3 << KIND_BITS))), None);
        assert_eq!(SocketId::from_token(Token(5 | (1 << 40))), None); // TCP relay slot > u32
        assert_eq!(SocketId::from_token(Token(1 << KIND_BITS)), None); // waker with an index
    }
}
