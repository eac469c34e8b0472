//! The credential issuer against a running server: a credential it mints
//! allocates and relays through the webrtc-rs `turn` client; one minted
//! with a ttl already over is refused. Also over HTTP, as a browser app's
//! backend would call it.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, StatusCode, header};
use serde_json::Value;
use tern::config::IssuerSection;
use tern::issuer::Issuer;
use tokio::net::UdpSocket;

use crate::harness::{TestServer, settings};
use crate::turn_webrtc_rs::{allocate, peer_recv, relay_recv, relay_send};

pub(crate) const TOKEN: &str = "it-token-0123456789abcdef";

/// An issuer signing with the test servers' REST secret (via the same
/// `resolve` as `tern serve`), handing out `server`'s real ports.
pub(crate) fn issuer_for(server: &TestServer, dir: &Path, origins: Vec<String>) -> Issuer {
    let token_file = dir.join("tokens");
    std::fs::write(&token_file, format!("# test\n{TOKEN}\n")).unwrap();
    let section = IssuerSection {
        listen: "127.0.0.1:0".to_owned(),
        token_file: token_file.display().to_string(),
        urls: vec![
            format!("stun:{}", server.udp),
            format!("turn:{}?transport=udp", server.udp),
            format!("turn:{}?transport=tcp", server.tcp),
        ],
        allowed_origins: origins,
        ..IssuerSection::default()
    };
    let issuer = tern::issuer::resolve(
        &section,
        &Default::default(),
        "it.toml",
        &settings().build(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .expect("issuer is on");
    Issuer::new(issuer)
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// POSTs `{"ttl":…,"user":…}` at `now`; returns (username, credential).
fn mint(issuer: &Issuer, ttl: u64, now: u64) -> (String, String) {
    let req = Request::post("/v1/ice-servers")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Bytes::from(format!(r#"{{"ttl":{ttl},"user":"alice"}}"#)))
        .unwrap();
    let resp = issuer.handle(&req, now);
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    let turn = &body["iceServers"][1];
    (
        turn["username"].as_str().unwrap().to_owned(),
        turn["credential"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn minted_credential_relays_and_an_expired_one_is_refused() {
    let server = TestServer::start_rest();
    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer_for(&server, dir.path(), Vec::new());
    let now = unix_now();

    let (username, credential) = mint(&issuer, 600, now);
    assert!(username.ends_with(":alice"), "{username}");
    let alloc = allocate(server.udp, &username, &credential)
        .await
        .expect("Allocate with an issued credential");
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    relay_send(alloc.relay.as_ref(), b"issued hello", peer_addr).await;
    let (got, from) = peer_recv(&peer, "issued hello").await;
    assert_eq!(
        (got.as_slice(), from),
        (&b"issued hello"[..], alloc.relay_addr)
    );
    peer.send_to(b"issued reply", from).await.unwrap();
    let (got, _) = relay_recv(alloc.relay.as_ref(), "issued reply").await;
    assert_eq!(got, b"issued reply");
    alloc.close().await;

    // Minted 700 s ago with a 600 s ttl: expired 100 s ago.
    let (username, credential) = mint(&issuer, 600, now - 700);
    let refused = allocate(server.udp, &username, &credential).await;
    let err = refused
        .err()
        .expect("an expired issued credential was accepted");
    assert!(err.to_string().contains("401"), "{err}");
}

#[test]
fn issuer_answers_over_http() {
    let server = TestServer::start_rest();
    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer_for(&server, dir.path(), Vec::new());
    let http = crate::http::HttpServer::start(Box::new(move |req| issuer.handle(&req, unix_now())));
    let call = |auth: &str| {
        let mut s = std::net::TcpStream::connect(http.addr).unwrap();
        let body = r#"{"ttl":60}"#;
        let req = format!(
            "POST /v1/ice-servers HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        std::io::Write::write_all(&mut s, req.as_bytes()).unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(&mut s, &mut out).unwrap();
        out
    };
    let ok = call(&format!("Authorization: Bearer {TOKEN}\r\n"));
    assert!(ok.starts_with("HTTP/1.1 201 "), "{ok}");
    assert!(
        ok.contains(&format!("\"urls\":[\"turn:{}?transport=udp\"", server.udp)),
        "{ok}"
    );
    let refused = call("");
    assert!(refused.starts_with("HTTP/1.1 401 "), "{refused}");
}
