//! Three tern nodes and the credential issuer, all through the `tern`
//! binary on 127.0.0.1: every node names the others in
//! `cluster.alternate_servers`, node A also runs the issuer with
//! `[[cluster.nodes]]` for all three. A live allocation on A relays; A is
//! drained with `tern ctl drain`; new Allocates to A get 300 and tern's
//! following client lands on B or C while A's allocation keeps relaying;
//! the issuer stops handing out A, then C once C is killed, then answers
//! 503 once B drains too. Every wait polls a readiness signal (`/readyz`,
//! the issuer's `GET /v1/nodes`) with a bound; nothing sleeps blindly.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tern::admin::client::{HttpResponse, exchange, parse, request};
use tern::tools::client::{Client, Delivery, Error};

use crate::harness::IO_TIMEOUT;
use crate::ops::{PASS, Policy, Tern, USER};

const TOKEN: &str = "fleet-token-0123456789";
const SECRET: &str = "fleet-shared-rest-secret";
const NAMES: [&str; 3] = ["a", "b", "c"];

fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A UDP (TURN) or TCP (HTTP) port that was free on 127.0.0.1 a moment ago.
fn free_port(udp: bool) -> u16 {
    let addr = if udp {
        UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr())
    } else {
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|s| s.local_addr())
    };
    addr.unwrap().port()
}

/// The fleet: three nodes (A runs the issuer at `issuer`).
struct Fleet {
    nodes: Vec<Option<Tern>>,
    issuer: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Fleet {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("issuer-tokens");
        std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
        let servers: Vec<SocketAddr> = (0..3).map(|_| localhost(free_port(true))).collect();
        let admins: Vec<SocketAddr> = (0..3).map(|_| localhost(free_port(false))).collect();
        let issuer = localhost(free_port(false));
        let alternates: Vec<String> = servers.iter().map(|s| format!("\"{s}\"")).collect();
        let cluster = format!(
            "[cluster]\nalternate_servers = [{}]\n",
            alternates.join(", ")
        );
        let mut nodes_toml = String::new();
        for i in 0..3 {
            nodes_toml.push_str(&format!(
                "[[cluster.nodes]]\nname = \"{}\"\nurls = [\"turn:{}?transport=udp\"]\n\
                 admin = \"http://{}\"\n",
                NAMES[i], servers[i], admins[i]
            ));
        }
        let issuer_toml = format!(
            "[issuer]\nlisten = \"{issuer}\"\ntoken_file = {:?}\n",
            token_file.display().to_string()
        );
        let nodes = (0..3)
            .map(|i| {
                let mut extra = cluster.clone();
                if i == 0 {
                    extra.push_str(&issuer_toml);
                    extra.push_str(&nodes_toml);
                }
                let policy = Policy {
                    secrets: vec![SECRET.to_owned()],
                    drain_timeout_secs: 600,
                    ..Policy::default()
                };
                let mut t = Tern::spawn_at(&policy, None, servers[i], admins[i], &extra);
                t.wait_ready();
                Some(t)
            })
            .collect();
        Self {
            nodes,
            issuer,
            _dir: dir,
        }
    }

    fn node(&self, i: usize) -> &Tern {
        self.nodes[i].as_ref().expect("node is running")
    }

    /// Which node listens on `server`.
    fn name_of(&self, server: SocketAddr) -> &'static str {
        let i = self
            .nodes
            .iter()
            .position(|n| n.as_ref().is_some_and(|n| n.server == server))
            .unwrap_or_else(|| panic!("{server} is no node's"));
        NAMES[i]
    }

    /// One issuer request; (status, JSON body).
    fn issuer_call(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let raw = exchange(self.issuer, head.as_bytes(), IO_TIMEOUT).expect("issuer answers");
        let HttpResponse { status, body, .. } = parse(&raw).expect("issuer speaks HTTP");
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// `POST /v1/ice-servers` with `body`: (node, TURN server address,
    /// username, credential), checking that the URL is that node's.
    fn credential(&self, body: &str) -> (String, SocketAddr, String, String) {
        let (status, v) = self.issuer_call("POST", "/v1/ice-servers", body);
        assert_eq!(status, 201, "{v}");
        let node = v["node"]
            .as_str()
            .expect("answer names its node")
            .to_owned();
        let turn = &v["iceServers"][0];
        let url = turn["urls"][0].as_str().unwrap();
        let addr: SocketAddr = url
            .strip_prefix("turn:")
            .and_then(|u| u.strip_suffix("?transport=udp"))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected URL {url}"));
        assert_eq!(self.name_of(addr), node, "the URL is the named node's: {v}");
        let user = turn["username"].as_str().unwrap().to_owned();
        let cred = turn["credential"].as_str().unwrap().to_owned();
        (node, addr, user, cred)
    }

    /// The nodes handed out for `n` requests without a hint.
    fn handed_out(&self, n: usize) -> BTreeSet<String> {
        (0..n).map(|_| self.credential("{}").0).collect()
    }

    /// Polls the issuer's `GET /v1/nodes` until node `name` is in `health`.
    fn wait_health(&self, name: &str, health: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, v) = self.issuer_call("GET", "/v1/nodes", "");
            assert_eq!(status, 200, "{v}");
            let node = v["nodes"]
                .as_array()
                .and_then(|l| l.iter().find(|n| n["name"] == name))
                .cloned()
                .unwrap_or(Value::Null);
            if health.iter().any(|h| node["health"] == *h) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {name} never became {health:?}: {v}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Data both ways between `client` and a peer socket, through the relay.
fn relay_both_ways(client: &mut Client, peer: &UdpSocket, round: &str) {
    let peer_addr = peer.local_addr().unwrap();
    let out = format!("to peer {round}");
    client.send_indication(peer_addr, out.as_bytes()).unwrap();
    let mut buf = [0u8; 1500];
    let (n, from) = peer.recv_from(&mut buf).expect("the peer hears the client");
    assert_eq!((&buf[..n], from), (out.as_bytes(), client.relay()));
    let back = format!("to client {round}");
    peer.send_to(back.as_bytes(), client.relay()).unwrap();
    let (how, data) = client
        .recv_data(IO_TIMEOUT)
        .unwrap()
        .expect("the client hears the peer");
    assert_eq!(
        (how, data.as_slice()),
        (Delivery::Data(peer_addr), back.as_bytes())
    );
}

#[test]
fn a_drained_node_sends_new_allocations_on_and_the_issuer_steers_around_it() {
    let mut fleet = Fleet::start();
    for name in NAMES {
        fleet.wait_health(name, &["ready"]);
    }
    fleet
        .node(0)
        .wait_metric("tern_issuer_nodes_usable", |v| v == 3.0);

    // A call's first peer is put on A (a hint), and relays through it.
    let (node, addr, user, cred) = fleet.credential(r#"{"node":"a","user":"peer1"}"#);
    assert_eq!((node.as_str(), addr), ("a", fleet.node(0).server));
    let mut on_a = Client::udp(UdpSocket::bind("127.0.0.1:0").unwrap(), addr, &user, &cred);
    on_a.allocate()
        .expect("Allocate on A with an issued credential");
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    on_a.create_permission(peer.local_addr().unwrap()).unwrap();
    relay_both_ways(&mut on_a, &peer, "before the drain");

    // Drain A with the operator's command.
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["ctl", "--admin", &fleet.node(0).admin.to_string(), "drain"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fleet.node(0).get("/readyz").status, 503);

    // A new Allocate to A: 300 naming B or C; the following client lands there.
    let a = fleet.node(0).server;
    let others = [fleet.node(1).server, fleet.node(2).server];
    let mut direct = Client::udp(UdpSocket::bind("127.0.0.1:0").unwrap(), a, USER, PASS);
    match direct.allocate() {
        Err(Error::TryAlternate { servers, .. }) => {
            assert!(others.contains(&servers[0]), "{servers:?}");
        }
        other => panic!("expected 300 Try Alternate from the drained node, got {other:?}"),
    }
    let mut landed = BTreeSet::new();
    for _ in 0..2 {
        let (followed, tried) = Client::allocate_udp_following(a, USER, PASS);
        let mut followed = followed.expect("the redirect is followed");
        assert_eq!(tried.len(), 2, "one redirect: {tried:?}");
        assert_eq!(tried[0], a);
        landed.insert(fleet.name_of(tried[1]));
        followed
            .create_permission(peer.local_addr().unwrap())
            .unwrap();
        relay_both_ways(&mut followed, &peer, "after a redirect");
    }
    assert_eq!(landed, BTreeSet::from(["b", "c"]), "rotation over B and C");

    // A's existing allocation goes on: it relays and refreshes.
    relay_both_ways(&mut on_a, &peer, "while draining");
    on_a.refresh(600).expect("Refresh on the draining node");

    // The issuer sees the drain and never hands A out again, hint or not.
    fleet.wait_health("a", &["draining"]);
    let handed = fleet.handed_out(6);
    assert!(!handed.contains("a"), "{handed:?}");
    assert_eq!(handed, BTreeSet::from(["b".to_owned(), "c".to_owned()]));
    assert_ne!(fleet.credential(r#"{"node":"a"}"#).0, "a");
    // The second peer of a call can follow the first to the node it got.
    let (first, ..) = fleet.credential(r#"{"user":"peer1"}"#);
    let (second, addr, user, cred) =
        fleet.credential(&format!(r#"{{"user":"peer2","node":"{first}"}}"#));
    assert_eq!(second, first);
    let mut c2 = Client::udp(UdpSocket::bind("127.0.0.1:0").unwrap(), addr, &user, &cred);
    c2.allocate()
        .expect("an issued credential works on the node handed out");

    // C dies: after its failed reads the issuer hands out only B.
    fleet.nodes[2] = None;
    fleet.wait_health("c", &["unreachable", "stale"]);
    let handed = fleet.handed_out(6);
    assert_eq!(handed, BTreeSet::from(["b".to_owned()]));
    assert_eq!(fleet.credential(r#"{"node":"c"}"#).0, "b");

    // B drains too: nothing is left, and the issuer says so.
    let drained = request(fleet.node(1).admin, "POST", "/v1/drain", None, IO_TIMEOUT).unwrap();
    assert_eq!(drained.status, 200);
    fleet.wait_health("b", &["draining"]);
    fleet.wait_health("c", &["stale"]);
    let (status, v) = fleet.issuer_call("POST", "/v1/ice-servers", "{}");
    assert_eq!(status, 503, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(e.contains("no TURN node can take new allocations"), "{e}");
    assert!(e.contains("a draining; b draining; c stale"), "{e}");
    // ...in its metrics too (the poller publishes after each round).
    let a = fleet.node(0);
    a.wait_metric("tern_issuer_nodes_usable", |v| v == 0.0);
    assert!(a.metric("tern_issuer_no_node_total") >= Some(1.0));
    // And A's allocation, through all of it, still relays.
    relay_both_ways(&mut on_a, &peer, "at the end");
}
