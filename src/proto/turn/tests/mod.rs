//! State-machine tests in virtual time: no sockets, no sleeping.

#![allow(
    clippy::disallowed_methods,
    reason = "virtual time starts at a real Instant; nothing sleeps"
)]

mod allocate;
mod alternate;
mod auth;
mod hairpin;
mod inspect;
mod nat_discovery;
mod permission;
mod refresh;
mod relay;
mod sha256;
mod tcp_relay;

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::io::shared::{QuotaHold, QuotaLedger};
use crate::proto::auth::{Credentials, LongTermKey};
use crate::proto::peer_policy::PeerPolicy;
use crate::proto::stun::{
    AttrType, Class, Message, MessageType, MessageWriter, Method, TransactionId, decode_error_code,
};
use crate::proto::time::Now;

pub(super) const REALM: &str = "tern";
pub(super) const USER: &str = "alice";
pub(super) const PASS: &str = "secret";

pub(super) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub(super) fn client() -> FiveTuple {
    FiveTuple {
        client: addr("198.51.100.7:40000"),
        server: addr("203.0.113.1:3478"),
        transport: Transport::Udp,
    }
}

/// What the fake driver shares between shards, as `io::shared` does: the
/// real quota ledger, and ports held under reservation tokens (the full
/// address each was reserved on).
pub(super) struct SharedDriver {
    pub(super) quota: Arc<QuotaLedger>,
    held: RefCell<HashMap<ReservationToken, SocketAddr>>,
}

impl SharedDriver {
    pub(super) fn new(limits: &crate::proto::config::Limits) -> Rc<Self> {
        Rc::new(Self {
            quota: QuotaLedger::new(limits.max_allocations, limits.max_allocations_per_user),
            held: RefCell::default(),
        })
    }
}

/// A server in virtual time plus a fake relay-socket binder.
pub(super) struct TestServer {
    pub(super) server: Server,
    pub(super) now: Now,
    next_port: u16,
    pub(super) bound: Vec<RelayId>,
    pub(super) released: Vec<RelayId>,
    /// Families released from dual allocations (`true` = IPv6).
    pub(super) released_family: Vec<(RelayId, bool)>,
    pub(super) fail_binds: bool,
    /// RFC 6062 commands (ConnectPeer, ClosePeer, SpliceConnections), in order.
    pub(super) tcp_cmds: Vec<Command>,
    tid_counter: u32,
    driver: Rc<SharedDriver>,
    /// Quota held per live relay, given back on `ReleaseRelay`.
    holds: HashMap<RelayId, QuotaHold>,
}

impl TestServer {
    pub(super) fn new() -> Self {
        Self::with(|_| {})
    }

    pub(super) fn with(f: impl FnOnce(&mut Config)) -> Self {
        let config = test_config(f);
        let driver = SharedDriver::new(&config.limits);
        Self::on(driver, config, 1)
    }

    /// Two servers (shards) of one driver: shared quotas and reservations.
    pub(super) fn pair(f: impl Fn(&mut Config)) -> (Self, Self) {
        let config = test_config(&f);
        let driver = SharedDriver::new(&config.limits);
        let a = Self::on(Rc::clone(&driver), config, 1);
        (a, Self::on(driver, test_config(&f), 2))
    }

    fn on(driver: Rc<SharedDriver>, config: Config, shard: u8) -> Self {
        let server = Server::new(Arc::new(config), [shard; 32]);
        Self {
            server,
            now: Now {
                mono: Instant::now(),
                unix_secs: 1_700_000_000,
            },
            next_port: 50_000 + 1000 * u16::from(shard),
            bound: Vec::new(),
            released: Vec::new(),
            released_family: Vec::new(),
            fail_binds: false,
            tcp_cmds: Vec::new(),
            tid_counter: 0,
            driver,
            holds: HashMap::new(),
        }
    }

    pub(super) fn quota(&self) -> &QuotaLedger {
        &self.driver.quota
    }

    pub(super) fn advance(&mut self, d: Duration) {
        self.now.mono += d;
        self.now.unix_secs += d.as_secs();
        self.server.handle_timeout(self.now);
        self.pump();
    }

    /// Carries out commands like the driver would.
    pub(super) fn pump(&mut self) {
        while let Some(cmd) = self.server.poll_command() {
            match cmd {
                Command::BindRelay {
                    relay,
                    username,
                    port,
                    ipv6,
                    additional_ipv6,
                } => {
                    let result = self.bind(relay, &username, ipv6, additional_ipv6, port);
                    self.server.handle_relay_bound(self.now, relay, result);
                }
                Command::ReleaseRelay { relay } => {
                    self.holds.remove(&relay);
                    self.released.push(relay);
                }
                Command::ReleaseRelayFamily { relay, ipv6 } => {
                    self.released_family.push((relay, ipv6));
                }
                Command::ReleaseReservation { token } => {
                    self.driver.held.borrow_mut().remove(&token);
                }
                Command::ListenTcpRelay {
                    relay,
                    username,
                    ipv6,
                } => {
                    let result = self.bind(relay, &username, ipv6, false, PortRequest::Any);
                    self.server.handle_relay_bound(self.now, relay, result);
                }
                cmd @ (Command::ConnectPeer { .. }
                | Command::ClosePeer { .. }
                | Command::SpliceConnections { .. }) => self.tcp_cmds.push(cmd),
            }
        }
    }

    /// A fake bind in the driver's order: token, quota, socket.
    fn bind(
        &mut self,
        relay: RelayId,
        username: &str,
        ipv6: bool,
        additional_ipv6: bool,
        port: PortRequest,
    ) -> Result<RelayBound, BindError> {
        let claimed = match port {
            PortRequest::Reserved(t) => Some(
                self.driver
                    .held
                    .borrow_mut()
                    .remove(&t)
                    .ok_or(BindError::UnknownToken)?,
            ),
            PortRequest::Any | PortRequest::Even { .. } => None,
        };
        let hold = self.driver.quota.acquire(username)?;
        if self.fail_binds {
            return Err(BindError::NoSocket);
        }
        self.next_port += 2;
        let ip = if ipv6 { "2001:db8::1" } else { "203.0.113.1" };
        let addr = claimed.unwrap_or_else(|| SocketAddr::new(ip.parse().unwrap(), self.next_port));
        let reservation = match port {
            PortRequest::Even { reserve: Some(t) } => {
                let next = SocketAddr::new(addr.ip(), addr.port() + 1);
                self.driver.held.borrow_mut().insert(t, next);
                Some(t)
            }
            _ => None,
        };
        self.bound.push(relay);
        self.holds.insert(relay, hold);
        Ok(RelayBound {
            addr,
            additional: additional_ipv6
                .then(|| SocketAddr::new("2001:db8::1".parse().unwrap(), addr.port())),
            reservation,
        })
    }

    pub(super) fn tid(&mut self) -> TransactionId {
        self.tid_counter += 1;
        let mut t = [0u8; 12];
        t[..4].copy_from_slice(&self.tid_counter.to_be_bytes());
        TransactionId(t)
    }

    /// Sends raw bytes; returns the action and every reply queued.
    pub(super) fn input(&mut self, from: FiveTuple, bytes: &[u8]) -> (ClientAction, Vec<Vec<u8>>) {
        let action = self.server.handle_client(self.now, from, bytes);
        self.pump();
        let mut out = Vec::new();
        while let Some(t) = self.server.poll_transmit() {
            assert_eq!(t.to, from);
            out.push(t.data);
        }
        (action, out)
    }

    /// Sends a request and returns its single response.
    pub(super) fn request(&mut self, from: FiveTuple, bytes: &[u8]) -> Vec<u8> {
        let (action, mut out) = self.input(from, bytes);
        assert_eq!(action, ClientAction::Handled);
        assert_eq!(out.len(), 1, "expected exactly one response");
        out.pop().unwrap()
    }

    /// A fresh nonce, as a 401 would give.
    pub(super) fn nonce(&self, from: &FiveTuple) -> Vec<u8> {
        self.server
            .config()
            .credentials
            .nonce_key()
            .make(self.now.unix_secs, from.client.ip())
            .to_vec()
    }

    /// Builds a message with a fresh transaction id and whatever `f`
    /// writes (no authentication, no FINGERPRINT).
    pub(super) fn message(
        &mut self,
        method: Method,
        class: Class,
        f: impl FnOnce(&mut MessageWriter<'_>),
    ) -> (TransactionId, Vec<u8>) {
        let tid = self.tid();
        let mut out = Vec::new();
        f(&mut MessageWriter::new(
            &mut out,
            MessageType::new(method, class),
            tid,
        ));
        (tid, out)
    }

    /// Builds an authenticated request for `user`/`pass`.
    pub(super) fn authed(
        &mut self,
        from: &FiveTuple,
        method: Method,
        user: &str,
        pass: &str,
        f: impl FnOnce(&mut MessageWriter<'_>, &TransactionId),
    ) -> (TransactionId, Vec<u8>) {
        let tid = self.tid();
        let nonce = self.nonce(from);
        let key = LongTermKey::derive(user, REALM, pass);
        let mut out = Vec::new();
        let mut w = MessageWriter::new(&mut out, MessageType::new(method, Class::Request), tid);
        f(&mut w, &tid);
        w.push(AttrType::USERNAME, user.as_bytes());
        w.push(AttrType::REALM, REALM.as_bytes());
        w.push(AttrType::NONCE, &nonce);
        w.push_integrity(&key.0);
        w.push_fingerprint();
        (tid, out)
    }

    pub(super) fn req(
        &mut self,
        from: &FiveTuple,
        method: Method,
        f: impl FnOnce(&mut MessageWriter<'_>, &TransactionId),
    ) -> Vec<u8> {
        self.authed(from, method, USER, PASS, f).1
    }

    /// Allocates for `from`; returns the relay address.
    pub(super) fn allocate(&mut self, from: FiveTuple) -> SocketAddr {
        let req = self.req(&from, Method::ALLOCATE, |w, _| {
            w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        });
        let resp = self.request(from, &req);
        let m = expect_success(&resp, Method::ALLOCATE);
        xor_attr(&m, AttrType::XOR_RELAYED_ADDRESS)
    }

    pub(super) fn create_permission(&mut self, from: FiveTuple, peers: &[SocketAddr]) -> Vec<u8> {
        let req = self.req(&from, Method::CREATE_PERMISSION, |w, _| {
            for p in peers {
                w.push_xor_addr(AttrType::XOR_PEER_ADDRESS, *p);
            }
        });
        self.request(from, &req)
    }

    pub(super) fn channel_bind(&mut self, from: FiveTuple, ch: u16, peer: SocketAddr) -> Vec<u8> {
        let req = self.req(&from, Method::CHANNEL_BIND, |w, _| {
            w.push(AttrType::CHANNEL_NUMBER, &[(ch >> 8) as u8, ch as u8, 0, 0]);
            w.push_xor_addr(AttrType::XOR_PEER_ADDRESS, peer);
        });
        self.request(from, &req)
    }

    pub(super) fn refresh(&mut self, from: FiveTuple, lifetime: Option<u32>) -> Vec<u8> {
        let req = self.req(&from, Method::REFRESH, |w, _| {
            if let Some(l) = lifetime {
                w.push_u32(AttrType::LIFETIME, l);
            }
        });
        self.request(from, &req)
    }

    /// A peer datagram arriving on `relay`: returns the bytes sent to the client.
    pub(super) fn peer_sends(
        &mut self,
        relay: RelayId,
        peer: SocketAddr,
        payload: &[u8],
    ) -> Option<(FiveTuple, Vec<u8>)> {
        let mut buf = vec![0u8; HEADROOM + payload.len() + TAILROOM];
        buf[HEADROOM..HEADROOM + payload.len()].copy_from_slice(payload);
        match self.server.handle_peer(
            self.now,
            relay,
            peer,
            &mut buf,
            HEADROOM..HEADROOM + payload.len(),
        ) {
            PeerAction::Forward { to, bytes } => Some((to, buf[bytes].to_vec())),
            PeerAction::Dropped(_) => None,
        }
    }
}

/// The configuration of every test server: users alice and bob, a REST
/// secret, no peer restrictions; then `f`.
fn test_config(f: impl FnOnce(&mut Config)) -> Config {
    let mut creds = Credentials::new([9; 32]);
    creds.add_user_password(USER, REALM, PASS);
    creds.add_user_password("bob", REALM, "bobpw");
    creds.add_rest_secret("restsecret");
    let mut config = Config::new(REALM, creds);
    config.peer_policy = PeerPolicy::default();
    f(&mut config);
    config
}

pub(super) fn expect_success(resp: &[u8], method: Method) -> Message<'_> {
    let m = Message::parse(resp).expect("response parses");
    if m.message_type().class == Class::Error {
        let (code, reason) = decode_error_code(m.get(AttrType::ERROR_CODE).unwrap()).unwrap();
        panic!("expected success, got {code} {reason}");
    }
    assert_eq!(m.message_type(), MessageType::new(method, Class::Success));
    assert!(m.check_fingerprint().is_ok());
    m
}

/// The address in XOR address attribute `t` of a parsed message.
pub(super) fn xor_attr(m: &Message<'_>, t: AttrType) -> SocketAddr {
    let v = m.get(t).unwrap_or_else(|| panic!("{t:?} missing"));
    crate::proto::stun::decode_xor_addr(v, &m.transaction_id()).unwrap()
}

/// The LIFETIME of a parsed response.
pub(super) fn lifetime(m: &Message<'_>) -> u32 {
    crate::proto::stun::decode_u32(m.get(AttrType::LIFETIME).expect("LIFETIME")).unwrap()
}

pub(super) fn error_code(resp: &[u8]) -> u16 {
    let m = Message::parse(resp).expect("response parses");
    assert_eq!(
        m.message_type().class,
        Class::Error,
        "expected an error response"
    );
    decode_error_code(m.get(AttrType::ERROR_CODE).expect("ERROR-CODE"))
        .unwrap()
        .0
}
