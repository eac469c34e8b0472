//! TCP relays (RFC 6062), driver side.

use std::net::SocketAddr;

use super::worker::Worker;
use crate::proto::turn::{BindError, ConnectionId, FiveTuple, RelayBound, RelayId};

impl Worker {
    pub(super) fn listen_tcp_relay(
        &mut self,
        _relay: RelayId,
        _username: &str,
        _ipv6: bool,
    ) -> Result<RelayBound, BindError> {
        Err(BindError::NoSocket)
    }
    pub(super) fn connect_peer(&mut self, _relay: RelayId, _id: ConnectionId, _peer: SocketAddr) {}
    pub(super) fn close_peer(&mut self, _id: ConnectionId) {}
    pub(super) fn splice(&mut self, _id: ConnectionId, _data: FiveTuple) {}
}
