//! The fleet: which node a credential is for, in every state a node can
//! be in, through `Issuer::handle`; the poller against real HTTP servers.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};

use super::fleet::{Fleet, Health, STALE_AFTER, Seen};
use super::tests::{NOW, TOKEN, body, error_of, get, post, resolve_with, settings};
use super::*;

fn node(name: &str, admin: &str) -> NodeSettings {
    NodeSettings {
        name: name.to_owned(),
        stun_urls: vec![format!("stun:{name}.example.com:3478")],
        turn_urls: vec![format!("turn:{name}.example.com:3478?transport=udp")],
        admin: admin.parse().unwrap(),
        admin_token: None,
    }
}

fn abc() -> Vec<NodeSettings> {
    vec![
        node("a", "127.0.0.1:1"),
        node("b", "127.0.0.1:2"),
        node("c", "127.0.0.1:3"),
    ]
}

fn ready(allocations: u64, capacity: u64) -> Result<Seen, String> {
    Ok(Seen {
        allocations,
        capacity,
        draining: false,
        listening: true,
    })
}

fn draining() -> Result<Seen, String> {
    Ok(Seen {
        draining: true,
        listening: true,
        ..Seen::default()
    })
}

fn picks(fleet: &Fleet, n: usize, hint: Option<&str>) -> Vec<String> {
    (0..n)
        .map(|_| fleet.pick(hint).map(|n| n.name.clone()).unwrap_or_default())
        .collect()
}

#[test]
fn the_least_loaded_ready_node_wins_and_a_burst_spreads() {
    let fleet = Fleet::new(abc(), None);
    // Not read yet: nothing to hand out.
    assert!(fleet.pick(None).is_err());
    fleet.record(0, ready(50, 100));
    fleet.record(1, ready(10, 100));
    fleet.record(2, ready(40, 1000));
    // c is at 4 %, b at 10 %, a at 50 %.
    assert_eq!(picks(&fleet, 1, None), ["c"]);
    // A burst before the next read: c takes credentials until it looks as
    // loaded as b (60 more to reach 100/1000 = 10 %), then they alternate.
    let burst = picks(&fleet, 70, None);
    assert!(burst[..59].iter().all(|n| n == "c"), "{burst:?}");
    assert!(burst.contains(&"b".to_owned()), "{burst:?}");
    assert!(!burst.contains(&"a".to_owned()), "{burst:?}");
    // A fresh read resets what was counted against c.
    fleet.record(2, ready(40, 1000));
    assert_eq!(picks(&fleet, 1, None), ["c"]);
}

#[test]
fn draining_starting_and_stale_nodes_are_never_handed_out() {
    let fleet = Fleet::new(abc(), None);
    fleet.record(0, draining());
    fleet.record(
        1,
        Ok(Seen {
            listening: false,
            ..Seen::default()
        }),
    );
    fleet.record(2, ready(5, 100));
    assert_eq!(picks(&fleet, 5, None), ["c"; 5]);
    assert_eq!(
        picks(&fleet, 2, Some("a")),
        ["c"; 2],
        "a draining node, even when asked for"
    );

    // c stops answering: skipped only when another node is ready...
    fleet.record(1, ready(0, 100));
    let (before, after) = fleet.record(2, Err("connection refused".to_owned()));
    assert_eq!((before, after), (Health::Ready, Health::Unreachable));
    assert_eq!(picks(&fleet, 3, None), ["b"; 3]);
    // ...and still used while nothing is ready (a blip on the issuer's side)...
    fleet.record(1, draining());
    assert_eq!(picks(&fleet, 1, None), ["c"]);
    // ...until it has failed STALE_AFTER reads in a row.
    for _ in 1..STALE_AFTER {
        fleet.record(2, Err("connection refused".to_owned()));
    }
    assert_eq!(fleet.report()[2].health, Health::Stale);
    let e = fleet.pick(None).unwrap_err().0;
    assert_eq!(
        e,
        "a draining; b draining; c stale (3 failed reads: connection refused)"
    );
    assert_eq!(fleet.refused(), 1);
    // It answers again: back at once.
    fleet.record(2, ready(5, 100));
    assert_eq!(picks(&fleet, 1, None), ["c"]);
}

#[test]
fn usable_nodes_and_refusals_are_published_as_metrics() {
    let metrics = Arc::new(crate::admin::Metrics::new(1));
    let fleet = Fleet::new(abc(), Some(Arc::clone(&metrics)));
    let g = &metrics.global;
    fleet.record(0, ready(0, 10));
    fleet.record(1, ready(0, 10));
    assert_eq!(fleet.usable(), 2);
    assert_eq!(
        g.issuer_nodes_usable
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    fleet.record(0, draining());
    fleet.record(1, draining());
    assert_eq!(fleet.usable(), 0);
    assert!(fleet.pick(None).is_err());
    assert!(fleet.pick(None).is_err());
    assert_eq!(
        g.issuer_nodes_usable
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(
        g.issuer_no_node.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[test]
fn a_hint_keeps_a_call_on_one_node_while_that_node_is_usable() {
    let fleet = Fleet::new(abc(), None);
    fleet.record(0, ready(90, 100));
    fleet.record(1, ready(0, 100));
    fleet.record(2, ready(0, 100));
    assert_eq!(picks(&fleet, 3, Some("a")), ["a"; 3]);
    assert_eq!(picks(&fleet, 1, Some("nosuch")), ["b"]);
    fleet.record(0, draining());
    assert_eq!(picks(&fleet, 1, Some("a")), ["c"]);
}

fn fleet_issuer() -> Issuer {
    let mut s = settings();
    s.nodes = abc();
    Issuer::new(s)
}

#[test]
fn answers_name_the_node_and_carry_its_urls() {
    let issuer = fleet_issuer();
    let fleet = issuer.fleet().unwrap();
    fleet.record(0, draining());
    fleet.record(1, ready(3, 100));
    fleet.record(2, ready(1, 100));
    let resp = issuer.handle(&post(Some(TOKEN), r#"{"user":"alice"}"#), NOW);
    assert_eq!(resp.status(), StatusCode::CREATED);
    let b = body(&resp);
    assert_eq!(b["node"], "c");
    assert_eq!(b["iceServers"][0]["urls"][0], "stun:c.example.com:3478");
    assert_eq!(
        b["iceServers"][1]["urls"][0],
        "turn:c.example.com:3478?transport=udp"
    );
    assert_eq!(b["uris"][0], "turn:c.example.com:3478?transport=udp");
    // The other peer of the call asks for the same node.
    let resp = issuer.handle(&get("/ice?username=bob&node=c"), NOW);
    assert_eq!(body(&resp)["node"], "c");
    let resp = issuer.handle(&post(Some(TOKEN), r#"{"node":"b"}"#), NOW);
    assert_eq!(body(&resp)["node"], "b");
    let long = format!(r#"{{"node":"{}"}}"#, "x".repeat(MAX_NODE_NAME + 1));
    let resp = issuer.handle(&post(Some(TOKEN), &long), NOW);
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let nodes = issuer.handle(&get("/v1/nodes"), NOW);
    assert_eq!(nodes.status(), StatusCode::OK);
    let n = body(&nodes);
    assert_eq!(n["nodes"][0]["name"], "a");
    assert_eq!(n["nodes"][0]["health"], "draining");
    assert_eq!(n["nodes"][2]["health"], "ready");
    assert_eq!(n["nodes"][2]["allocations"], 1);
    assert_eq!(n["nodes"][2]["issued_since_read"], 2);
    // Without a token, nothing.
    let anon = Request::get("/v1/nodes").body(Bytes::new()).unwrap();
    assert_eq!(issuer.handle(&anon, NOW).status(), StatusCode::UNAUTHORIZED);
    // Without nodes the route says so.
    let plain = Issuer::new(settings());
    assert_eq!(
        plain.handle(&get("/v1/nodes"), NOW).status(),
        StatusCode::NOT_FOUND
    );
    // And a node hint is ignored.
    let resp = plain.handle(&post(Some(TOKEN), r#"{"node":"b"}"#), NOW);
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(body(&resp).get("node").is_none());
}

#[test]
fn no_usable_node_is_a_503_that_says_why() {
    let issuer = fleet_issuer();
    let fleet = issuer.fleet().unwrap();
    fleet.record(0, draining());
    fleet.record(1, draining());
    let resp = issuer.handle(&post(Some(TOKEN), ""), NOW);
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()[header::RETRY_AFTER], "2");
    let e = error_of(&resp);
    assert!(e.contains("no TURN node can take new allocations"), "{e}");
    assert!(e.contains("a draining; b draining; c unknown"), "{e}");
    assert_eq!(body(&issuer.handle(&get("/v1/nodes"), NOW))["refused"], 1);
    // A bad request is still a 400, and counts nothing.
    let resp = issuer.handle(&post(Some(TOKEN), r#"{"ttl":0}"#), NOW);
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

/// A stand-in admin listener answering `/status` with `status`.
fn admin_server(status: &'static str, token: Option<&str>) -> crate::admin::ServerHandle {
    struct Fixed(&'static str, Option<String>);
    impl crate::admin::server::Router for Fixed {
        fn handle(&self, req: &Request<Bytes>) -> Response<Vec<u8>> {
            let auth = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            let want = self.1.as_ref().map(|t| format!("Bearer {t}"));
            let mut resp = Response::new(self.0.as_bytes().to_vec());
            if want.is_some() && auth != want.as_deref() {
                *resp.status_mut() = StatusCode::UNAUTHORIZED;
            }
            resp
        }
    }
    let router = Arc::new(Fixed(status, token.map(str::to_owned)));
    crate::admin::server::spawn(
        "127.0.0.1:0".parse().unwrap(),
        router,
        crate::admin::Limits::default(),
        "test-admin",
    )
    .unwrap()
}

#[tokio::test]
async fn the_poller_reads_status_and_skips_dead_and_wrong_nodes() {
    let ready_status = r#"{"version":"x","uptime_secs":1,"allocations":{"udp":3,"tcp":1},
        "draining":false,"capacity":200,"listeners":["udp 127.0.0.1:3478"],
        "relay_addresses":[],"warnings":[],"last_reload":null,"future_field":1}"#;
    let old_draining = r#"{"allocations":{"udp":0},"draining":true,"listeners":["udp x"]}"#;
    let a = admin_server(ready_status, Some("admin-a-token"));
    let b = admin_server(old_draining, None);
    let c = admin_server("not json", None);
    // A port nothing listens on (bound, then closed).
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut nodes = vec![
        node("a", &a.local_addr().to_string()),
        node("b", &b.local_addr().to_string()),
        node("c", &c.local_addr().to_string()),
        node("d", &dead.to_string()),
    ];
    nodes[0].admin_token = Some(Secret::new("admin-a-token".to_owned()));
    let mut s = settings();
    s.nodes = nodes;
    let issuer = Issuer::new(s);
    issuer.read_fleet().await;
    let report = issuer.fleet().unwrap().report();
    assert_eq!(report[0].health, Health::Ready, "{report:?}");
    assert_eq!(
        (report[0].allocations, report[0].capacity),
        (Some(4), Some(200))
    );
    assert_eq!(report[1].health, Health::Draining, "{report:?}");
    assert_eq!(report[1].capacity, Some(0));
    assert_eq!(report[2].health, Health::Stale, "{report:?}");
    assert!(
        report[2].error.as_deref().unwrap().contains("not tern's"),
        "{report:?}"
    );
    assert_eq!(report[3].health, Health::Stale, "{report:?}");
    assert!(report[3].error.is_some());
    let resp = issuer.handle(&post(Some(TOKEN), ""), NOW);
    assert_eq!(body(&resp)["node"], "a");
}

#[tokio::test]
async fn a_missing_admin_token_is_named() {
    let a = admin_server(r#"{"allocations":{},"draining":false}"#, Some("tok"));
    let mut s = settings();
    s.nodes = vec![node("a", &a.local_addr().to_string())];
    let issuer = Issuer::new(s);
    issuer.read_fleet().await;
    let e = issuer.fleet().unwrap().report()[0].error.clone().unwrap();
    assert!(e.contains("401") && e.contains("admin_token_file"), "{e}");
}

#[test]
fn cluster_nodes_come_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("{TOKEN}\n")).unwrap();
    let nodes = "\n[[cluster.nodes]]\nname = \"a\"\nurls = [\"turn:a.example.com:3478\"]\n\
                 admin = \"http://10.0.0.2:9641\"\n\
                 [[cluster.nodes]]\nname = \"b\"\nurls = [\"turn:b.example.com:3478\"]\n\
                 admin = \"http://10.0.0.3:9641\"\n";
    let s = resolve_with(nodes, &tokens).unwrap().unwrap();
    let names: Vec<&str> = s.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    let e = resolve_with(&format!("urls = [\"turn:x:3478\"]\n{nodes}"), &tokens)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("t.toml: issuer.urls: "), "{e}");
    assert!(e.contains("cluster.nodes"), "{e}");
    let e = resolve_with(
        "\n[[cluster.nodes]]\nname = \"a\"\nurls = []\nadmin = \"x\"\n",
        &tokens,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("t.toml: cluster.nodes[0].urls: [] has no turn:"),
        "{e}"
    );
}
