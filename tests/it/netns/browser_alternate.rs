//! Chromium follows 300 Try Alternate: a real client (libwebrtc) is given a
//! draining tern node A and gets its relay candidate from node B.
//!
//! What libwebrtc needs to follow a 300 (its `p2p/base/turn_port.cc`):
//! - the alternate is not a loopback address (`TurnPort::SetAlternateServer`:
//!   "Blocking attempted redirect to loopback address", crbug.com/649118),
//!   so this cannot run on 127.0.0.1;
//! - the alternate accepts the NONCE the first node gave: libwebrtc copies
//!   REALM and NONCE into its next Allocate, and a 438 Stale Nonce to an
//!   Allocate is fatal (`TurnAllocateRequest::OnErrorResponse` handles 401,
//!   300 and 437 only). tern's nonce is an HMAC of time and client IP, so
//!   the nodes share `cluster.nonce_key_file`, and the client reaches both
//!   from one IP — as across the internet, and here through a router
//!   rather than from addresses on the nodes' own interface.
//!
//! Two network namespaces:
//!
//! ```text
//!   ternalt<PID>-cli                       ternalt<PID>-srv
//!     lo  127.0.0.1 page server              lo  127.0.0.1 A's admin API
//!     c0  198.51.100.2/24 ---- veth ----     s0  198.51.100.1/24
//!         203.0.113.0/24 via .1              d0  203.0.113.1 node A: 3478/udp,
//!     Chromium, tern's client                        issuer :8480, relay 50000-50049
//!                                                203.0.113.2 node B: 3478/udp,
//!                                                    relay 50050-50099
//! ```
//!
//! Both nodes list each other in `cluster.alternate_servers` and share a
//! REST secret and the nonce key. A holds an allocation (a drain with none
//! left ends the process) and is drained with `tern ctl drain`; tern's own
//! client then gets 300 naming B. Headless Chromium loads the page with
//! `transports=udp`: it fetches a credential from A's issuer whose only URL
//! is A's, and connects two peer connections with `iceTransportPolicy:
//! "relay"`. Both ends of the selected pair must be relay candidates on B's
//! address and relay ports while the candidate's `url` is still A's:
//! libwebrtc allocated on B because A redirected it.
//!
//! Needs root (`ip netns`) and Chromium; skips loudly without either
//! (fails with `CI=true` / `TERN_REQUIRE_INTEROP=1`, as the other tests).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use tern::tools::client::{Client, Error};

use super::namespace::{
    Netns, Tern, add_d0, in_netns, may_run, remove_stale_namespaces, run, udp_in,
};
use crate::http::HttpServer;

const A_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
const A_RELAY: (u16, u16) = (50_000, 50_049);
const B_RELAY: (u16, u16) = (50_050, 50_099);
const SECRET: &str = "alternate-browser-secret";
const TOKEN: &str = "alternate-browser-token-0123";
const ADMIN_A: &str = "127.0.0.1:9641";
const ISSUER_A: &str = "203.0.113.1:8480";
const USER: &str = "probe";
const PASS: &str = "probe-password";

/// The page server, listening inside the client namespace. Its `Drop`
/// wakes the accept loop with a connection, which must come from inside.
struct PageInNetns {
    ns: String,
    server: Option<HttpServer>,
}

impl PageInNetns {
    fn url(&self) -> String {
        self.server
            .as_ref()
            .map(HttpServer::url)
            .unwrap_or_default()
    }
}

impl Drop for PageInNetns {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            in_netns(&self.ns, move || drop(server));
        }
    }
}

/// The two namespaces of the module docs, linked by a veth pair.
fn network() -> (Netns, Netns) {
    let pid = std::process::id();
    let cli = Netns::create(&format!("ternalt{pid}-cli"));
    let srv = Netns::create(&format!("ternalt{pid}-srv"));
    let (c, s) = (cli.name.as_str(), srv.name.as_str());
    run(
        "ip",
        &[
            "-n", c, "link", "add", "c0", "type", "veth", "peer", "name", "s0", "netns", s,
        ],
    );
    run(
        "ip",
        &["-n", c, "addr", "add", "198.51.100.2/24", "dev", "c0"],
    );
    run("ip", &["-n", c, "link", "set", "c0", "up"]);
    run(
        "ip",
        &[
            "-n",
            c,
            "route",
            "add",
            "203.0.113.0/24",
            "via",
            "198.51.100.1",
        ],
    );
    run(
        "ip",
        &["-n", s, "addr", "add", "198.51.100.1/24", "dev", "s0"],
    );
    run("ip", &["-n", s, "link", "set", "s0", "up"]);
    add_d0(s, &["203.0.113.1/24", "203.0.113.2/24"]);
    (cli, srv)
}

fn node_config(dir: &Path, name: &str, ip: Ipv4Addr, relay: (u16, u16), extra: &str) -> String {
    let path = dir.join(format!("{name}.toml"));
    let nonce = dir.join("nonce.key");
    std::fs::write(&nonce, "fleet-nonce-secret-for-the-test\n").unwrap();
    let text = format!(
        "[server]\nlisten = [\"{ip}:3478\"]\ntcp = false\nworkers = 1\ndrain_timeout_secs = 600\n\
         [relay]\naddress = \"{ip}\"\nports = \"{}-{}\"\n[limits]\nmax_allocations = 50\n\
         [auth]\nrest_secrets = [\"{SECRET}\"]\n\
         users = [{{ username = \"{USER}\", password = \"{PASS}\" }}]\n\
         [cluster]\nalternate_servers = [\"{A_IP}:3478\", \"{B_IP}:3478\"]\n\
         nonce_key_file = {:?}\n{extra}",
        relay.0,
        relay.1,
        nonce.display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn chromium_follows_try_alternate_from_a_draining_node() {
    let Some(chromium) = crate::browser::chromium() else {
        return;
    };
    if !may_run(
        "chromium_follows_try_alternate_from_a_draining_node",
        "ip netns",
        "sudo -E cargo test --test it chromium_follows_try_alternate",
    ) {
        return;
    }
    remove_stale_namespaces("ternalt");
    let (cli, srv) = network();
    let dir = tempfile::tempdir().unwrap();

    let (tx, rx) = mpsc::channel();
    let page = PageInNetns {
        ns: cli.name.clone(),
        server: Some(in_netns(&cli.name, move || crate::browser::page_server(tx))),
    };
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("{TOKEN}\n")).unwrap();
    let issuer = format!(
        "[issuer]\nlisten = \"{ISSUER_A}\"\ntoken_file = {:?}\n\
         urls = [\"turn:{A_IP}:3478?transport=udp\"]\nallowed_origins = [\"{}\"]\n",
        tokens.display().to_string(),
        page.url()
    );
    let a_addr = SocketAddr::from((A_IP, 3478));
    let b_addr = SocketAddr::from((B_IP, 3478));
    let a_cfg = node_config(dir.path(), "a", A_IP, A_RELAY, &issuer);
    let b_cfg = node_config(dir.path(), "b", B_IP, B_RELAY, "");
    let _a = Tern::start_in_with_admin(&srv.name, &["--config", &a_cfg], &[a_addr], ADMIN_A);
    let _b = Tern::start_in(&srv.name, &["--config", &b_cfg], &[b_addr]);

    let any = SocketAddr::from(([0, 0, 0, 0], 0));
    let mut held = Client::udp(udp_in(&cli.name, any), a_addr, USER, PASS);
    held.allocate().expect("Allocate on A before the drain");
    let tern = env!("CARGO_BIN_EXE_tern");
    run(
        "ip",
        &[
            "netns", "exec", &srv.name, tern, "ctl", "--admin", ADMIN_A, "drain",
        ],
    );
    // The drain took effect: tern's own client is sent to B.
    match Client::udp(udp_in(&cli.name, any), a_addr, USER, PASS).allocate() {
        Err(Error::TryAlternate { servers, .. }) => assert_eq!(servers, [b_addr]),
        other => panic!("expected 300 Try Alternate from the drained node A, got {other:?}"),
    }

    let url = format!(
        "{}/?issuer=http://{ISSUER_A}&token={TOKEN}&transports=udp",
        page.url()
    );
    let result = crate::browser::page_result(
        Some(&cli.name),
        &chromium,
        dir.path(),
        &url,
        &rx,
        Duration::from_secs(40),
    );
    check_pair(&result["udp"]);
    // A's own allocation is still there after all of it.
    held.refresh(600).expect("Refresh on the draining node");
}

/// Both sides relay↔relay on B, reached through A's URL.
fn check_pair(run: &Value) {
    assert_eq!(run["gotB"], "A->B over udp", "{run}");
    assert_eq!(run["gotA"], "B->A over udp", "{run}");
    for side in ["a", "b"] {
        let pair = &run[side];
        assert_eq!(pair["state"], "succeeded", "{side}: {run}");
        let local = &pair["local"];
        assert_eq!(local["type"], "relay", "{side}: {run}");
        let given = format!("turn:{A_IP}:3478?transport=udp");
        assert_eq!(local["url"], given, "{side}: Chromium was given A: {run}");
        for end in ["local", "remote"] {
            assert_eq!(
                pair[end]["address"],
                B_IP.to_string(),
                "{side} {end} on B: {run}"
            );
            let port = pair[end]["port"].as_u64().unwrap_or_default();
            assert!(
                (u64::from(B_RELAY.0)..=u64::from(B_RELAY.1)).contains(&port),
                "{side} {end} port {port} is not one of B's relay ports: {run}"
            );
        }
    }
}
