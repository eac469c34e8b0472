//! The client's messages on the wire, written and read with tern's own
//! STUN codec (`crate::proto::stun`, which the RFC 5769 vectors check): one
//! encoder for every request, and readers for what comes back (relayed
//! addresses, relayed data). Shared by the blocking and pipelined clients.

use std::net::SocketAddr;

use ring::rand::{SecureRandom, SystemRandom};

use super::Error;
use super::auth::{Auth, Signed};
use crate::proto::channel_data::{ChannelData, ChannelNumber, write_header};
use crate::proto::stun::{
    AttrType, Class, Message, MessageType, MessageWriter, Method, TransactionId, decode_xor_addr,
};

/// A random transaction id (RFC 8489 §6: random, so that responses cannot
/// be forged by an off-path attacker).
pub fn new_tid() -> TransactionId {
    let mut tid = [0u8; 12];
    // invariant: the system RNG does not fail on Linux once booted.
    SystemRandom::new()
        .fill(&mut tid)
        .expect("system random number generator");
    TransactionId(tid)
}

/// Writes a request into `out`: the method's attributes (`add`), then,
/// with `auth`, the credentials and MESSAGE-INTEGRITY, then FINGERPRINT.
pub fn write_request(
    out: &mut Vec<u8>,
    method: Method,
    tid: TransactionId,
    add: &dyn Fn(&mut MessageWriter<'_>),
    auth: Option<&Auth>,
) -> Signed {
    let mut w = MessageWriter::new(out, MessageType::new(method, Class::Request), tid);
    add(&mut w);
    let signed = auth.map_or(Signed::default(), |a| a.sign(&mut w));
    w.push_fingerprint();
    signed
}

/// REQUESTED-TRANSPORT UDP (protocol 17 in the top byte, RFC 8656 §18.8)
/// and, if given, LIFETIME: the attributes of an Allocate.
pub fn allocate_attrs(w: &mut MessageWriter<'_>, lifetime: Option<u32>) {
    w.push_u32(AttrType::REQUESTED_TRANSPORT, 17 << 24);
    if let Some(secs) = lifetime {
        w.push_u32(AttrType::LIFETIME, secs);
    }
}

/// CHANNEL-NUMBER and XOR-PEER-ADDRESS: the attributes of a ChannelBind.
pub fn channel_bind_attrs(w: &mut MessageWriter<'_>, channel: u16, peer: SocketAddr) {
    w.push_u32(AttrType::CHANNEL_NUMBER, u32::from(channel) << 16)
        .push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer);
}

/// Every XOR-RELAYED-ADDRESS of an Allocate success (a dual allocation has two).
pub fn relayed_addresses(msg: &Message<'_>) -> Result<Vec<SocketAddr>, Error> {
    let tid = msg.transaction_id();
    let relays: Vec<SocketAddr> = msg
        .attrs()
        .filter(|(t, _)| *t == AttrType::XOR_RELAYED_ADDRESS)
        .filter_map(|(_, v)| decode_xor_addr(v, &tid).ok())
        .collect();
    if relays.is_empty() {
        return Err(Error::Protocol(
            "Allocate success without XOR-RELAYED-ADDRESS",
        ));
    }
    Ok(relays)
}

/// XOR-MAPPED-ADDRESS of a Binding success.
pub fn mapped_address(msg: &Message<'_>) -> Result<SocketAddr, Error> {
    let v = msg
        .get(AttrType::XOR_MAPPED_ADDRESS)
        .ok_or(Error::Protocol("no XOR-MAPPED-ADDRESS"))?;
    decode_xor_addr(v, &msg.transaction_id()).map_err(|_| Error::Protocol("bad XOR-MAPPED-ADDRESS"))
}

/// A Send indication to `peer` carrying `data` (RFC 8656 §11.1).
pub fn write_send_indication(out: &mut Vec<u8>, peer: SocketAddr, data: &[u8]) {
    MessageWriter::new(
        out,
        MessageType::new(Method::SEND, Class::Indication),
        new_tid(),
    )
    .push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer)
    .push(AttrType::DATA, data);
}

/// ChannelData on `channel`; padded to 4 bytes on streams (RFC 8656 §12.5).
pub fn write_channel_data(
    out: &mut Vec<u8>,
    channel: u16,
    data: &[u8],
    padded: bool,
) -> Result<(), Error> {
    let number =
        ChannelNumber::new(channel).ok_or(Error::Protocol("channel number out of range"))?;
    let len = u16::try_from(data.len()).map_err(|_| Error::Protocol("payload over 65535 bytes"))?;
    out.clear();
    out.extend_from_slice(&write_header(number, len));
    out.extend_from_slice(data);
    if padded {
        out.resize(out.len().next_multiple_of(4), 0);
    }
    Ok(())
}

/// What arrived from a peer through the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A Data indication with this XOR-PEER-ADDRESS.
    Data(SocketAddr),
    /// ChannelData on this channel.
    Channel(u16),
}

/// Relayed data in a frame from the server: `Ok(None)` for a STUN message
/// that is not a Data indication (a late response, say).
pub fn read_relayed(frame: &[u8]) -> Result<Option<(Delivery, &[u8])>, Error> {
    if let Ok(cd) = ChannelData::parse(frame) {
        return Ok(Some((Delivery::Channel(cd.channel.get()), cd.payload)));
    }
    let msg = Message::parse(frame).map_err(|_| Error::Protocol("neither STUN nor ChannelData"))?;
    if msg.message_type() != MessageType::new(Method::DATA, Class::Indication) {
        return Ok(None);
    }
    let peer = msg
        .get(AttrType::XOR_PEER_ADDRESS)
        .ok_or(Error::Protocol("Data without peer"))?;
    let peer = decode_xor_addr(peer, &msg.transaction_id())
        .map_err(|_| Error::Protocol("bad XOR-PEER-ADDRESS in Data"))?;
    let payload = msg
        .get(AttrType::DATA)
        .ok_or(Error::Protocol("Data without DATA"))?;
    Ok(Some((Delivery::Data(peer), payload)))
}
