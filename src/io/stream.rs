//! The stream rooms of a worker: TCP and TLS connections from accept to
//! close (connection caps, PROXY phase, STUN/ChannelData framing, idle and
//! handshake timeouts). The connection itself (buffers, TLS session, PROXY
//! parsing) is `tcp::Conn`; this file decides when connections come and go.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Instant;

use super::clock;
use super::socket_id::SocketId;
use super::tcp::{Conn, ListenerKind, ProxyPhase, ReadState};
use super::worker::Worker;
use crate::admin::metrics::{Label, QuotaKind};
use crate::admin::turn_events;
use crate::proto::framing::frame_len;
use crate::proto::turn::FiveTuple;

impl Worker {
    /// Accepts every pending connection on stream listener `i`.
    pub(super) fn accept(&mut self, i: usize) {
        loop {
            let Some((l, local, kind)) = self.stream_listeners.get(i) else {
                return;
            };
            let local = *local;
            let kind = kind.clone();
            let (stream, from) = match l.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    return;
                }
            };
            let proxy = self.proxy_phase(&kind, from);
            // A trusted PROXY sender takes no per-IP slot of its own: the
            // client its header names does (`rekey`).
            let limit_ip = (proxy != ProxyPhase::Expect).then_some(from.ip());
            let limits = &self.shared.limits;
            if let Err(kind) = limits.admit(limit_ip) {
                tracing::debug!(client = %from, limit = kind.name(), "TCP connection refused: connection limit reached");
                self.ops.metrics.quota_rejection(kind);
                continue;
            }
            let tls = match kind.tls.map(rustls::ServerConnection::new) {
                None => None,
                Some(Ok(t)) => Some(t),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "cannot start a TLS session");
                    limits.release(limit_ip);
                    continue;
                }
            };
            if self.conn_by_client.contains_key(&from) {
                // Only possible with a proxy reporting this very address.
                limits.release(limit_ip);
                continue;
            }
            let max_frame = self.shared.settings.tcp.max_frame;
            let conn = Conn::new(stream, from, local, max_frame, tls, proxy, clock::mono());
            let idx = self.conns.insert(conn);
            let registered = match self.conns.get_mut(idx) {
                Some(c) => c.register(self.poll.registry(), SocketId::Conn(idx).token()),
                None => continue,
            };
            if let Err(e) = registered {
                tracing::warn!(error = %e, "cannot register a TCP connection");
                self.shared.limits.release(limit_ip);
                self.conns.remove(idx);
                continue;
            }
            self.conn_by_client.insert(from, idx);
        }
    }

    /// The PROXY phase a new connection from `from` starts in.
    fn proxy_phase(&self, kind: &ListenerKind, from: SocketAddr) -> ProxyPhase {
        let trusted = &self.shared.settings.proxy_protocol.trusted;
        match kind.proxy {
            false => ProxyPhase::Done,
            true if trusted.iter().any(|n| n.contains(&from.ip())) => ProxyPhase::Expect,
            true => ProxyPhase::Refuse,
        }
    }

    /// Readiness of connection `i`: flush what waits, then read, frame and
    /// hand each frame to the core until the socket is drained.
    pub(super) fn conn_event(&mut self, i: usize, readable: bool, writable: bool) {
        if self.tcp_relay.is_spliced(i) {
            return self.data_conn_event(i, readable, writable);
        }
        let token = SocketId::Conn(i).token();
        if writable {
            let ok = match self.conns.get_mut(i) {
                Some(c) => c.flush(self.poll.registry(), token),
                None => return,
            };
            if !ok {
                return self.close_conn(i);
            }
        }
        if !readable {
            return;
        }
        loop {
            let Some(conn) = self.conns.get_mut(i) else {
                return;
            };
            let mut rbuf = conn.take_rbuf();
            let read = conn.read_into(&mut rbuf);
            let ok = conn.flush(self.poll.registry(), token);
            let reported = conn.take_reported();
            if let Some(to) = reported
                && !self.rekey(i, to)
            {
                return self.close_conn(i);
            }
            let Some(conn) = self.conns.get_mut(i) else {
                return;
            };
            let five = conn.five();
            if let Err(e) = &read {
                tracing::debug!(client = %five.client, transport = ?five.transport, error = %e, "closing stream connection");
            }
            let mut fatal = read.is_err() || !ok;
            let mut consumed = 0;
            if !fatal {
                let bad_frame;
                (consumed, bad_frame) = self.frames(five, &rbuf);
                fatal = bad_frame;
            }
            rbuf.drain(..consumed);
            match self.conns.get_mut(i) {
                Some(c) => c.put_rbuf(rbuf, (consumed > 0).then(clock::mono)),
                None => return,
            }
            // RFC 6062: a ConnectionBind made this a data connection (the
            // rest of `rbuf` is raw bytes for the peer), or it belongs to
            // the worker that owns its CONNECTION-ID.
            if let Some(w) = self.tcp_relay.handoff_to.take() {
                return self.hand_off(i, w);
            }
            if self.tcp_relay.is_spliced(i) {
                return self.data_conn_event(i, true, false);
            }
            match read {
                Ok(ReadState::Full) if !fatal => continue,
                Ok(ReadState::Drained) if !fatal => return,
                _ => return self.close_conn(i),
            }
        }
    }

    /// Hands every whole frame in `rbuf` to the core; returns the bytes
    /// consumed and whether the framing was bad (the connection closes).
    fn frames(&mut self, five: FiveTuple, rbuf: &[u8]) -> (usize, bool) {
        let max_frame = self.shared.settings.tcp.max_frame;
        let mut consumed = 0;
        let mut bad = false;
        loop {
            let rest = &rbuf[consumed..];
            match frame_len(rest, max_frame) {
                Ok(Some(len)) if rest.len() >= len => {
                    let frame = &rest[..len];
                    if let Some(w) = self.bind_elsewhere(&five, frame) {
                        self.tcp_relay.handoff_to = Some(w);
                        break;
                    }
                    let transport = turn_events::transport_of(five.transport);
                    turn_events::record_request(&self.ops.metrics, transport, frame);
                    let action = self.server.handle_client(clock::now(), five, frame);
                    self.client_action(action, frame);
                    self.drain();
                    consumed += len;
                    if self.is_data_conn(&five) {
                        break; // the rest is raw bytes for the peer
                    }
                }
                Ok(_) => break,
                Err(e) => {
                    tracing::debug!(client = %five.client, error = %e, "closing TCP connection: bad framing");
                    bad = true;
                    break;
                }
            }
        }
        self.flush_batch();
        (consumed, bad)
    }

    /// Applies the client address a trusted proxy reported for connection
    /// `i`: the per-IP limit and the map key become the reported ones (the
    /// core sees that address in the FiveTuple). False: refuse the connection.
    fn rekey(&mut self, i: usize, to: SocketAddr) -> bool {
        let Some(conn) = self.conns.get_mut(i) else {
            return false;
        };
        let from = conn.five().client;
        if from != to && self.conn_by_client.contains_key(&to) {
            tracing::debug!(client = %to, proxy = %from, "PROXY header names a client already connected");
            return false;
        }
        // The proxy held no per-IP slot (`accept`); the client it names takes one.
        if conn.limit_ip().is_none() {
            if let Err(kind) = self.shared.limits.admit_ip(to.ip()) {
                tracing::debug!(client = %to, proxy = %from, "connection refused: per-IP connection limit reached");
                self.ops.metrics.quota_rejection(kind);
                return false;
            }
            conn.set_limit_ip(to.ip());
        }
        if from == to {
            return true;
        }
        conn.set_client(to);
        self.conn_by_client.remove(&from);
        self.conn_by_client.insert(to, i);
        tracing::debug!(client = %to, proxy = %from, "PROXY header accepted");
        true
    }

    /// Queues bytes for the stream client of `to`; closes it on error.
    pub(super) fn send_to_conn(&mut self, to: &FiveTuple, data: &[u8]) {
        if let Some(&i) = self.conn_by_client.get(&to.client) {
            let token = SocketId::Conn(i).token();
            let ok = match self.conns.get_mut(i) {
                Some(c) => c.queue(data, self.poll.registry(), token),
                None => true,
            };
            if !ok {
                self.close_conn(i);
            }
        }
    }

    /// Closes connection `i` (TLS with close_notify); its allocation ends.
    pub(super) fn close_conn(&mut self, i: usize) {
        let Some(mut c) = self.conns.remove(i) else {
            return;
        };
        c.close();
        let _ = c.deregister(self.poll.registry());
        let five = c.five();
        self.conn_by_client.remove(&five.client);
        self.shared.limits.release(c.limit_ip());
        self.data_conn_closed(i);
        self.server.handle_client_closed(&five);
        self.drain();
    }

    /// Closes connections idle past `tcp.idle_timeout`, or still in the
    /// PROXY phase or TLS handshake past `tcp.handshake_timeout`.
    pub(super) fn close_idle(&mut self, now: Instant) {
        let idle = self.shared.settings.tcp.idle_timeout;
        let handshake = self.shared.settings.tcp.handshake_timeout;
        let stale: Vec<(usize, bool)> = self
            .conns
            .iter()
            .filter_map(|(i, c)| {
                let handshake = c.handshake_expired(now, handshake);
                // A spliced data connection carries raw bytes, no frames.
                let idle =
                    !self.tcp_relay.is_spliced(i) && now.duration_since(c.last_frame()) > idle;
                (handshake || idle).then_some((i, handshake))
            })
            .collect();
        for (i, handshake) in stale {
            if handshake {
                tracing::debug!(
                    "closing TCP connection: PROXY header or TLS handshake not done in time"
                );
                self.ops
                    .metrics
                    .quota_rejection(QuotaKind::TcpHandshakeTimeout);
            } else {
                tracing::debug!("closing idle TCP connection");
            }
            self.close_conn(i);
        }
    }
}
