//! Request dispatch: parsing, retransmission replay, 420, authentication
//! (RFC 8489 §9.2), Binding, and the reply builder shared by all methods.

use std::net::SocketAddr;
use std::sync::Arc;

use super::relay::{ClientAction, DropReason};
use super::{Event, FiveTuple, Server, Transmit};
use crate::proto::auth::{AuthError, LongTermKey, NonceState};
use crate::proto::stun::{
    AttrType, Class, Message, MessageType, MessageWriter, Method, TransactionId,
};
use crate::proto::time::Now;

/// A request that passed authentication.
#[derive(Debug)]
pub(super) struct Authed {
    pub(super) username: String,
    pub(super) key: LongTermKey,
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
        _ => return None,
    })
}

pub(super) fn reason(code: u16) -> &'static str {
    match code {
        300 => "Try Alternate",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        420 => "Unknown Attribute",
        437 => "Allocation Mismatch",
        438 => "Stale Nonce",
        440 => "Address Family not Supported",
        441 => "Wrong Credentials",
        442 => "Unsupported Transport Protocol",
        443 => "Peer Address Family Mismatch",
        486 => "Allocation Quota Reached",
        508 => "Insufficient Capacity",
        _ => "Server Error",
    }
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
            self.error(now, req, 400, ErrExtra::None, None);
            return;
        };
        let nat = match req.method {
            Method::BINDING => self.nat_attrs(&from),
            _ => &[],
        };
        let (unknown, n) = msg.unknown_required(&[COMMON_KNOWN, known, nat].concat());
        if n > 0 {
            self.error(now, req, 420, ErrExtra::Unknown(&unknown[..n]), None);
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
            self.error(now, req, 441, ErrExtra::None, Some(auth.key));
            return;
        }
        match req.method {
            Method::ALLOCATE => self.allocate(now, req, msg, auth),
            Method::REFRESH => self.refresh(now, req, msg, auth),
            Method::CREATE_PERMISSION => self.create_permission(now, req, msg, auth),
            Method::CHANNEL_BIND => self.channel_bind(now, req, msg, auth),
            // invariant: known_attrs returned Some only for the methods above and Binding.
            _ => self.error(now, req, 400, ErrExtra::None, Some(auth.key)),
        }
    }

    /// The long-term credential check of RFC 8489 §9.2.4. Returns `None`
    /// after queueing the error response.
    fn authenticate(&mut self, now: Now, req: Req, msg: &Message<'_>) -> Option<Authed> {
        if !msg.has_integrity() {
            self.error(now, req, 401, ErrExtra::Challenge, None);
            return None;
        }
        let (Some(username), Some(_realm), Some(nonce)) = (
            msg.get(AttrType::USERNAME),
            msg.get(AttrType::REALM),
            msg.get(AttrType::NONCE),
        ) else {
            self.error(now, req, 400, ErrExtra::None, None);
            return None;
        };
        let config = Arc::clone(&self.config);
        let lifetime = config.nonce_lifetime.as_secs();
        match config.credentials.nonce_key().check(
            nonce,
            now.unix_secs,
            req.from.client.ip(),
            lifetime,
        ) {
            NonceState::Valid => {}
            NonceState::Stale | NonceState::Invalid => {
                self.error(now, req, 438, ErrExtra::Challenge, None);
                return None;
            }
        }
        let Ok(username) = std::str::from_utf8(username) else {
            self.auth_failed(
                now,
                req,
                String::from("<not utf-8>"),
                "username is not UTF-8",
            );
            return None;
        };
        let mut found = None;
        let result = config
            .credentials
            .keys_for(username, &config.realm, now.unix_secs, |k| {
                let ok = msg.check_integrity(&k.0).is_ok();
                if ok {
                    found = Some(k);
                }
                ok
            });
        match (result, found) {
            (Ok(true), Some(key)) => Some(Authed {
                username: username.to_owned(),
                key,
            }),
            (Err(AuthError::Expired), _) => {
                self.auth_failed(now, req, username.to_owned(), "REST credential expired");
                None
            }
            (Err(AuthError::UnknownUser), _) => {
                self.auth_failed(now, req, username.to_owned(), "unknown username");
                None
            }
            _ => {
                self.auth_failed(
                    now,
                    req,
                    username.to_owned(),
                    "bad MESSAGE-INTEGRITY (wrong password)",
                );
                None
            }
        }
    }

    fn auth_failed(&mut self, now: Now, req: Req, username: String, reason: &'static str) {
        self.stats.auth_failures += 1;
        self.events.push_back(Event::AuthFailed {
            client: req.from,
            username,
            reason,
        });
        self.error(now, req, 401, ErrExtra::Challenge, None);
    }

    /// Queues an error response. With `key` (an authenticated request) it
    /// carries MESSAGE-INTEGRITY and is kept for retransmissions.
    pub(super) fn error(
        &mut self,
        now: Now,
        req: Req,
        code: u16,
        extra: ErrExtra<'_>,
        key: Option<LongTermKey>,
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
            w.push_error_code(code, reason(code));
            match extra {
                ErrExtra::None => {}
                ErrExtra::Challenge => {
                    w.push(AttrType::REALM, config.realm.as_bytes());
                    if let Some(n) = &nonce {
                        w.push(AttrType::NONCE, n);
                    }
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
        key: Option<LongTermKey>,
        f: impl FnOnce(&mut MessageWriter<'_>),
    ) {
        let mut out = Vec::with_capacity(128);
        let mut w = MessageWriter::new(&mut out, MessageType::new(req.method, class), req.tid);
        f(&mut w);
        if let Some(sw) = &self.config.software {
            w.push(AttrType::SOFTWARE, sw.as_bytes());
        }
        if let Some(k) = key {
            w.push_integrity(&k.0);
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
