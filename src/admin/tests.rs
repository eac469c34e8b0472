//! The admin API end to end: a real listener on 127.0.0.1:0, a fake
//! `AdminState`, and hostile clients.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client::{HttpResponse, exchange, parse, request};
use super::*;
use crate::secret::Secret;

const T: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(crate) struct Fake {
    calls: Mutex<Vec<String>>,
    draining: AtomicBool,
    stalled: AtomicBool,
    pub(crate) reload_fails: AtomicBool,
}

impl Fake {
    fn log(&self, s: String) {
        self.calls.lock().unwrap().push(s);
    }
    pub(crate) fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

fn alloc(user: &str) -> AllocationInfo {
    AllocationInfo {
        id: "7".to_owned(),
        user: user.to_owned(),
        client: "192.0.2.1:5000".parse().unwrap(),
        transport: "udp".to_owned(),
        relay: vec!["203.0.113.1:50000".parse().unwrap()],
        age_secs: 12,
        packets_to_peer: 1,
        bytes_to_peer: 100,
        packets_to_client: 2,
        bytes_to_client: 200,
    }
}

impl AdminState for Fake {
    fn metrics(&self, out: &mut String) {
        prometheus::render(&Metrics::new(1), out);
    }
    fn liveness(&self) -> Result<(), Vec<usize>> {
        if self.stalled.load(Ordering::Relaxed) {
            Err(vec![1])
        } else {
            Ok(())
        }
    }
    fn readiness(&self) -> Result<(), NotReady> {
        match self.draining.load(Ordering::Relaxed) {
            true => Err(NotReady {
                reason: "draining".to_owned(),
            }),
            false => Ok(()),
        }
    }
    fn status(&self) -> Status {
        Status {
            version: "test".to_owned(),
            draining: self.draining.load(Ordering::Relaxed),
            ..Status::default()
        }
    }
    fn allocations(&self, user: Option<&str>) -> Vec<AllocationInfo> {
        self.log(format!("allocations {user:?}"));
        ["alice", "bob", "1700000000:carol"]
            .into_iter()
            .filter(|u| user.is_none_or(|w| w == *u))
            .map(alloc)
            .collect()
    }
    fn kick(&self, user: &str) -> usize {
        self.log(format!("kick {user}"));
        3
    }
    fn set_draining(&self, d: bool) -> bool {
        self.draining.store(d, Ordering::Relaxed);
        d
    }
    fn reload(&self) -> Result<ReloadSummary, String> {
        if self.reload_fails.load(Ordering::Relaxed) {
            return Err("tern.toml: relay.ports: bad".to_owned());
        }
        Ok(ReloadSummary {
            at_unix: 1,
            ok: true,
            message: "users +1".to_owned(),
        })
    }
}

pub(crate) struct Running {
    pub(crate) fake: Arc<Fake>,
    handle: ServerHandle,
}

impl Running {
    pub(crate) fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }
    fn req(&self, method: &str, path: &str) -> HttpResponse {
        request(self.addr(), method, path, None, T).unwrap()
    }
}

pub(crate) fn run(token: Option<&str>, limits: Limits) -> Running {
    let fake = Arc::new(Fake::default());
    let token = token.map(|t| Secret::new(t.to_owned()));
    let router = Arc::new(AdminRouter::new(Arc::clone(&fake), token.as_ref()));
    let handle = server::spawn("127.0.0.1:0".parse().unwrap(), router, limits, "t-admin").unwrap();
    Running { fake, handle }
}

fn json(r: &HttpResponse) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

#[test]
fn every_route_answers_from_the_state() {
    let s = run(None, Limits::default());
    let m = s.req("GET", "/metrics");
    assert_eq!(m.status, 200);
    assert!(
        m.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    assert!(m.body.contains("# TYPE tern_allocations gauge"));
    assert_eq!(s.req("GET", "/livez").status, 200);
    assert_eq!(s.req("GET", "/readyz").status, 200);
    assert_eq!(json(&s.req("GET", "/status"))["version"], "test");

    let all = json(&s.req("GET", "/v1/allocations"));
    assert_eq!(all.as_array().unwrap().len(), 3);
    let carol = json(&s.req("GET", "/v1/allocations?user=1700000000%3Acarol"));
    assert_eq!(carol[0]["user"], "1700000000:carol");
    assert_eq!(carol[0]["relay"][0], "203.0.113.1:50000");
    assert_eq!(carol.as_array().unwrap().len(), 1);
    assert_eq!(s.req("GET", "/v1/allocations?usr=x").status, 400);
    assert_eq!(s.req("GET", "/v1/allocations?user=%zz").status, 400);

    let k = s.req("DELETE", "/v1/users/1700000000%3Acarol/allocations");
    assert_eq!(json(&k)["ended"], 3);
    assert_eq!(s.req("DELETE", "/v1/users//allocations").status, 400);
    assert_eq!(s.req("GET", "/v1/users/bob/allocations").status, 405);
    assert!(s.fake.calls().contains(&"kick 1700000000:carol".to_owned()));

    assert_eq!(json(&s.req("POST", "/v1/drain"))["draining"], true);
    let r = s.req("GET", "/readyz");
    assert_eq!(
        (r.status, json(&r)["reason"].as_str()),
        (503, Some("draining"))
    );
    assert_eq!(json(&s.req("GET", "/status"))["draining"], true);
    assert_eq!(json(&s.req("POST", "/v1/undrain"))["draining"], false);
    assert_eq!(s.req("GET", "/readyz").status, 200);

    assert_eq!(json(&s.req("POST", "/v1/reload"))["message"], "users +1");
    s.fake.reload_fails.store(true, Ordering::Relaxed);
    let r = s.req("POST", "/v1/reload");
    assert_eq!(r.status, 422);
    assert!(json(&r)["error"].as_str().unwrap().contains("relay.ports"));

    s.fake.stalled.store(true, Ordering::Relaxed);
    let r = s.req("GET", "/livez");
    assert_eq!((r.status, json(&r)["workers"][0].as_u64()), (503, Some(1)));

    assert_eq!(s.req("GET", "/nope").status, 404);
    assert_eq!(s.req("GET", "/v1/drain").status, 405);
    assert_eq!(s.req("POST", "/metrics").status, 405);
}

#[test]
fn scraped_metrics_pass_promtool() {
    let s = run(None, Limits::default());
    let m = s.req("GET", "/metrics");
    assert_eq!(m.status, 200);
    prometheus::tests::promtool_check(&m.body);
}

#[test]
fn token_is_required_and_checked() {
    let s = run(Some("s3cret"), Limits::default());
    let none = s.req("GET", "/metrics");
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    let wrong = request(s.addr(), "POST", "/v1/drain", Some("s3cre"), T).unwrap();
    assert_eq!(wrong.status, 401);
    assert!(
        !s.fake.draining.load(Ordering::Relaxed),
        "a wrong token drained"
    );
    let right = request(s.addr(), "POST", "/v1/drain", Some("s3cret"), T).unwrap();
    assert_eq!(right.status, 200);
    assert!(s.fake.draining.load(Ordering::Relaxed));
    // Probes answer without it.
    assert_eq!(s.req("GET", "/livez").status, 200);
    assert_eq!(s.req("GET", "/readyz").status, 503);
    // The 401 body never echoes the token.
    assert!(!wrong.body.contains("s3cre"));
}

#[test]
fn malformed_and_oversized_requests_are_refused() {
    let s = run(None, Limits::default());
    let r = parse(&exchange(s.addr(), b"GARBAGE\r\n\r\n", T).unwrap()).unwrap();
    assert_eq!(r.status, 400);
    let r = exchange(
        s.addr(),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        T,
    )
    .unwrap();
    assert!(r.is_empty() || parse(&r).unwrap().status == 400);

    let big = format!(
        "GET /metrics HTTP/1.1\r\nx-big: {}\r\n\r\n",
        "a".repeat(100_000)
    );
    let raw = exchange(s.addr(), big.as_bytes(), T);
    // 431, or the connection reset while we were still writing: never a 200.
    if let Ok(raw) = raw {
        assert!(
            raw.is_empty() || parse(&raw).unwrap().status == 431,
            "{raw:?}"
        );
    }

    let body = "x".repeat(100_000);
    let post = format!(
        "POST /v1/reload HTTP/1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    if let Ok(raw) = exchange(s.addr(), post.as_bytes(), T) {
        assert_eq!(parse(&raw).unwrap().status, 413);
    }
    assert!(!s.fake.calls().iter().any(|c| c.contains("reload")));
    // And the server still serves.
    assert_eq!(s.req("GET", "/livez").status, 200);
}

#[test]
fn slow_client_is_cut_off_without_blocking_others() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(200),
        connection_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let s = run(None, limits);
    let mut slow = TcpStream::connect(s.addr()).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n")
        .unwrap();
    // Others are served while it dawdles.
    assert_eq!(s.req("GET", "/livez").status, 200);
    // The server closes it (EOF or reset), long before our 10 s read timeout.
    slow.set_read_timeout(Some(T)).unwrap();
    let mut buf = Vec::new();
    match slow.read_to_end(&mut buf) {
        Ok(_) => assert!(buf.is_empty() || parse(&buf).is_some_and(|r| r.status == 408)),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
}

#[test]
fn connections_over_the_cap_get_503() {
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let s = run(None, limits);
    // Two keep-alive connections, each proven accepted by a response.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(s.addr()).unwrap();
        c.set_read_timeout(Some(T)).unwrap();
        c.write_all(b"GET /livez HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 512];
        let n = c.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(c);
    }
    let r = s.req("GET", "/livez");
    assert_eq!(r.status, 503);
    drop(held);
}

#[test]
fn start_honours_settings() {
    let off = AdminSettings {
        listen: None,
        token: None,
    };
    assert!(start(&off, Arc::new(Fake::default())).unwrap().is_none());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = AdminSettings {
        listen: Some(taken.local_addr().unwrap()),
        token: None,
    };
    let e = start(&busy, Arc::new(Fake::default()))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("admin.listen: cannot listen on 127.0.0.1:"),
        "{e}"
    );
}

#[test]
fn percent_coding_round_trips() {
    for s in ["alice", "1700000000:alice", "a b/c%", "é"] {
        assert_eq!(
            api::percent_decode(&api::percent_encode(s)).as_deref(),
            Some(s)
        );
    }
    assert_eq!(api::percent_decode("%4"), None);
    assert_eq!(api::percent_decode("%ff"), None);
}

#[test]
fn the_credential_issuer_runs_on_the_same_server() {
    use crate::issuer::{Issuer, IssuerSettings};
    let token = "tok-0123456789abcdef";
    let issuer = Arc::new(Issuer::new(IssuerSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        tokens: vec![Secret::new(token.to_owned())],
        secret: Secret::new(b"s3cret".to_vec()),
        stun_urls: vec!["stun:turn.example.com:3478".to_owned()],
        turn_urls: vec!["turn:turn.example.com:3478?transport=udp".to_owned()],
        default_ttl: 600,
        max_ttl: 86_400,
        rate_per_sec: 5,
        allowed_origins: Vec::new(),
        nodes: Vec::new(),
    }));
    fn wall() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }
    let h = start_issuer(issuer, wall).unwrap();
    let r = request(h.local_addr(), "GET", "/ice?username=alice", Some(token), T).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let v = json(&r);
    assert!(v["username"].as_str().unwrap().ends_with(":alice"), "{v}");
    assert_eq!(
        v["iceServers"][1]["urls"][0],
        "turn:turn.example.com:3478?transport=udp"
    );
    let r = request(h.local_addr(), "GET", "/ice?username=alice", None, T).unwrap();
    assert_eq!(r.status, 401);
    // A body over the issuer's cap is refused by the server before the handler.
    let body = "x".repeat(crate::issuer::MAX_BODY + 1);
    let post = format!(
        "POST /v1/ice-servers HTTP/1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let raw = exchange(h.local_addr(), post.as_bytes(), T).unwrap();
    assert_eq!(parse(&raw).unwrap().status, 413);
}
