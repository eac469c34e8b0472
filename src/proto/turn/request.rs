//! Request dispatch: parsing, retransmission replay, 420, the
//! authentication gate (see `auth.rs`), Binding, and the reply builder
//! shared by all methods.

use std::net::SocketAddr;
use std::sync::Arc;

use super::auth::ReplyKey;
use super::relay::{ClientAction, DropReason};
use super::{FiveTuple, Server, Transmit};
use crate::proto::auth::OFFERED_ALGORITHMS;
use crate::proto::stun::{
    AttrType, Class, ErrorCode, Message, MessageType, MessageWriter, Method, TransactionId,
};
use crate::proto::time::Now;

/// A request that passed authentication.
#[derive(Debug)]
pub(super) struct Authed {
    pub(super) username: String,
    pub(super) key: ReplyKey,
}

/// Context for a reply.
#[derive(Clone, Copy, Debug)]
pub(super) struct Req {
    pub(super) from: FiveTuple,
    pub(super) method: Method,
    pub(super) tid: TransactionId,
}

/// Extra attributes of an error response.
#[derive(Clone, Copy, Debug)]
pub(super) enum ErrExtra<'a> {
    None,
    /// 401 / 438: REALM and a fresh NONCE, no MESSAGE-INTEGRITY.
    Challenge,
    /// 420: the unknown attributes.
    Unknown(&'a [AttrType]),
}

const COMMON_KNOWN: &[AttrType] = &[
    AttrType::USERNAME,
    AttrType::USERHASH,
    AttrType::PASSWORD_ALGORITHM,
    AttrType::PASSWORD_ALGORITHMS,
    AttrType::MESSAGE_INTEGRITY,
    AttrType::MESSAGE_INTEGRITY_SHA256,
    AttrType::REALM,
    AttrType::NONCE,
];

fn known_attrs(method: Method) -> Option<&'static [AttrType]> {
    Some(match method {
        // ICE attributes are tolerated in Binding so a connectivity check
        // sent to the server still gets its mapped address.
        Method::BINDING => &[AttrType::PRIORITY, AttrType::USE_CANDIDATE],
        Method::ALLOCATE => &[
            AttrType::LIFETIME,
            AttrType::REQUESTED_TRANSPORT,
            AttrType::DONT_FRAGMENT,
            AttrType::EVEN_PORT,
            AttrType::RESERVATION_TOKEN,
            AttrType::REQUESTED_ADDRESS_FAMILY,
        ],
        Method::REFRESH => &[AttrType::LIFETIME, AttrType::REQUESTED_ADDRESS_FAMILY],
        Method::CREATE_PERMISSION => &[AttrType::XOR_PEER_ADDRESS],
        Method::CHANNEL_BIND => &[AttrType::CHANNEL_NUMBER, AttrType::XOR_PEER_ADDRESS],
        Method::CONNECT => &[AttrType::XOR_PEER_ADDRESS],
        Method::CONNECTION_BIND => &[AttrType::CONNECTION_ID],
        _ => return None,
    })
}

impl Server {
    pub(super) fn handle_stun(&mut self, now: Now, from: FiveTuple, buf: &[u8]) -> ClientAction {
        let msg = match Message::parse(buf) {
            Ok(m) => m,
            Err(_) => {
                self.stats.malformed += 1;
                return ClientAction::Dropped(DropReason::Malformed);
            }
        };
        if msg.has_fingerprint() && msg.check_fingerprint().is_err() {
            self.stats.malformed += 1;
            return ClientAction::Dropped(DropReason::Malformed);
        }
        let mtype = msg.message_type();
        match mtype.class {
            Class::Request => {
                self.stats.requests += 1;
                self.handle_request(now, from, &msg);
                ClientAction::Handled
            }
            Class::Indication if mtype.method == Method::SEND => {
                self.send_indication(now.mono, from, &msg, buf)
            }
            // Stray responses and other indications are never answered.
            Class::Indication | Class::Success | Class::Error => {
                self.stats.dropped += 1;
                ClientAction::Dropped(DropReason::NotForUs)
            }
        }
    }

    fn handle_request(&mut self, now: Now, from: FiveTuple, msg: &Message<'_>) {
        let req = Req {
            from,
            method: msg.message_type().method,
            tid: msg.transaction_id(),
        };
        if let Some(cached) = self.replay.get(&from, &req.tid) {
            let data = cached.to_vec();
            self.transmits.push_back(Transmit { to: from, data });
            return;
        }
        let Some(known) = known_attrs(req.method) else {
            self.reject(now, req, ErrorCode::BAD_REQUEST, None);
            return;
        };
        let nat = match req.method {
            Method::BINDING => self.nat_attrs(&from),
            _ => &[],
        };
        let (unknown, n) = msg.unknown_required(&[COMMON_KNOWN, known, nat].concat());
        if n > 0 {
            self.error(
                now,
                req,
                ErrorCode::UNKNOWN_ATTRIBUTE,
                ErrExtra::Unknown(&unknown[..n]),
                None,
            );
            return;
        }
        if req.method == Method::BINDING {
            self.binding(now, req, msg);
            return;
        }
        let Some(auth) = self.authenticate(now, req, msg) else {
            return;
        };
        // RFC 8656 §5: requests on an existing allocation must use the
        // credentials that created it.
        if let Some(alloc) = self.allocation(&from)
            && alloc.username != auth.username
        {
            self.reject(now, req, ErrorCode::WRONG_CREDENTIALS, Some(auth.key));
            return;
        }
        match req.method {
            Method::ALLOCATE => self.allocate(now, req, msg, auth),
            Method::REFRESH => self.refresh(now, req, msg, auth),
            Method::CREATE_PERMISSION => self.create_permission(now, req, msg, auth),
            Method::CHANNEL_BIND => self.channel_bind(now, req, msg, auth),
            Method::CONNECT => self.connect(now, req, msg, auth),
            Method::CONNECTION_BIND => self.connection_bind(now, req, msg, auth),
            // invariant: known_attrs returned Some only for the methods above and Binding.
            _ => self.reject(now, req, ErrorCode::BAD_REQUEST, Some(auth.key)),
        }
    }

    /// Queues an error response without extra attributes; see [`Server::error`].
    pub(super) fn reject(&mut self, now: Now, req: Req, code: ErrorCode, key: Option<ReplyKey>) {
        self.error(now, req, code, ErrExtra::None, key);
    }

    /// Queues an error response. With `key` (an authenticated request) it
    /// carries MESSAGE-INTEGRITY and is kept for retransmissions.
    pub(super) fn error(
        &mut self,
        now: Now,
        req: Req,
        code: ErrorCode,
        extra: ErrExtra<'_>,
        key: Option<ReplyKey>,
    ) {
        // Unauthenticated senders may be spoofed: answer each source IP at
        // a bounded rate so tern cannot be turned into a reflector.
        if key.is_none() && !self.unauth_limiter.allow(req.from.client.ip(), now.mono) {
            self.stats.rate_limited += 1;
            return;
        }
        let config = Arc::clone(&self.config);
        let nonce = matches!(extra, ErrExtra::Challenge).then(|| {
            config
                .credentials
                .nonce_key()
                .make(now.unix_secs, req.from.client.ip())
        });
        let cache = key.is_some().then_some(now);
        self.reply(cache, req, Class::Error, key, |w| {
            w.push_error_code(code.code(), code.reason());
            match extra {
                ErrExtra::None => {}
                ErrExtra::Challenge => {
                    w.push(AttrType::REALM, config.realm.as_bytes());
                    if let Some(n) = &nonce {
                        w.push(AttrType::NONCE, n);
                    }
                    // RFC 8489 §9.2.4: the algorithms the client may pick.
                    w.push(AttrType::PASSWORD_ALGORITHMS, &OFFERED_ALGORITHMS);
                }
                ErrExtra::Unknown(types) => {
                    w.push_unknown_attributes(types);
                }
            }
        });
    }

    /// Builds and queues a response: the attributes `f` writes, then
    /// SOFTWARE (if configured), MESSAGE-INTEGRITY (with `key`) and
    /// FINGERPRINT. With `cache = Some(now)` it is also remembered for
    /// retransmissions of the same request.
    pub(super) fn reply(
        &mut self,
        cache: Option<Now>,
        req: Req,
        class: Class,
        key: Option<ReplyKey>,
        f: impl FnOnce(&mut MessageWriter<'_>),
    ) {
        let mut out = Vec::with_capacity(128);
        let mut w = MessageWriter::new(&mut out, MessageType::new(req.method, class), req.tid);
        f(&mut w);
        if let Some(sw) = &self.config.software {
            w.push(AttrType::SOFTWARE, sw.as_bytes());
        }
        if let Some(k) = key {
            k.push_integrity(&mut w);
        }
        w.push_fingerprint();
        if let Some(now) = cache {
            self.replay.insert(now.mono, req.from, req.tid, out.clone());
        }
        self.transmits.push_back(Transmit {
            to: req.from,
            data: out,
        });
    }
}

/// Decodes the first XOR-PEER-ADDRESS-like attribute `t`.
pub(super) fn xor_addr(msg: &Message<'_>, t: AttrType) -> Option<Result<SocketAddr, ()>> {
    let tid = msg.transaction_id();
    msg.get(t)
        .map(|v| crate::proto::stun::decode_xor_addr(v, &tid).map_err(|_| ()))
}
