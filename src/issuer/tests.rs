//! Issuer tests: every route and refusal, in virtual time (no sockets, no clock).

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use serde_json::Value;

use super::mint::rfc3339;
use super::*;
use crate::config::{ConfigError, FileConfig, IssuerSection, Overrides};
use crate::proto::auth::{Credentials, rest_password};

pub(super) const TOKEN: &str = "tok-0123456789abcdef";
const OTHER: &str = "tok-fedcba9876543210";
const SECRET: &str = "first-secret";
pub(super) const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const ORIGIN: &str = "https://app.example.com";

pub(super) fn settings() -> IssuerSettings {
    IssuerSettings {
        listen: "127.0.0.1:8480".parse().unwrap(),
        tokens: vec![Secret::new(TOKEN.to_owned()), Secret::new(OTHER.to_owned())],
        secret: Secret::new(SECRET.as_bytes().to_vec()),
        stun_urls: vec!["stun:turn.example.com:3478".to_owned()],
        turn_urls: vec![
            "turn:turn.example.com:3478?transport=udp".to_owned(),
            "turn:turn.example.com:3478?transport=tcp".to_owned(),
        ],
        default_ttl: 600,
        max_ttl: 86_400,
        rate_per_sec: 5,
        allowed_origins: Vec::new(),
        nodes: Vec::new(),
    }
}

pub(super) fn post(token: Option<&str>, body: &str) -> Request<Bytes> {
    let mut b = Request::post("/v1/ice-servers");
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Bytes::from(body.to_owned())).unwrap()
}

pub(super) fn get(uri: &str) -> Request<Bytes> {
    Request::get(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Bytes::new())
        .unwrap()
}

pub(super) fn body(resp: &Response<Vec<u8>>) -> Value {
    serde_json::from_slice(resp.body()).unwrap()
}

pub(super) fn error_of(resp: &Response<Vec<u8>>) -> String {
    body(resp)["error"].as_str().unwrap().to_owned()
}

#[test]
fn post_mints_a_credential_tern_accepts() {
    let issuer = Issuer::new(settings());
    let resp = issuer.handle(&post(Some(TOKEN), r#"{"ttl":3600,"user":"alice"}"#), NOW);
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    let b = body(&resp);
    let username = format!("{}:alice", NOW + 3600);
    let credential = rest_password(SECRET.as_bytes(), &username);
    assert_eq!(
        b,
        serde_json::json!({
            "iceServers": [
                {"urls": ["stun:turn.example.com:3478"]},
                {"urls": ["turn:turn.example.com:3478?transport=udp",
                          "turn:turn.example.com:3478?transport=tcp"],
                 "username": username, "credential": credential},
            ],
            "ttl": 3600,
            "expiresAt": "2026-01-01T01:00:00Z",
            "username": username,
            "password": credential,
            "uris": ["turn:turn.example.com:3478?transport=udp",
                     "turn:turn.example.com:3478?transport=tcp"],
        })
    );
    // The server side: a node with this secret (listed second or first) accepts it
    // before expiry and not after.
    let mut creds = Credentials::new([1; 32]);
    creds.add_rest_secret("older");
    creds.add_rest_secret(SECRET);
    let expected = crate::proto::auth::LongTermKey::derive(&username, "tern", &credential);
    let accepted = |now| {
        creds
            .keys_for(&username, "tern", now, |k| k == expected)
            .unwrap_or(false)
    };
    assert!(accepted(NOW + 3599));
    assert!(!accepted(NOW + 3600));
}

#[test]
fn defaults_apply_to_an_empty_body_and_user_is_optional() {
    let issuer = Issuer::new(settings());
    for empty in ["", "{}", " \n"] {
        let resp = issuer.handle(&post(Some(OTHER), empty), NOW);
        assert_eq!(resp.status(), StatusCode::CREATED, "{empty:?}");
        let b = body(&resp);
        assert_eq!(b["ttl"], 600);
        assert_eq!(b["username"], (NOW + 600).to_string());
    }
}

#[test]
fn get_ice_is_stunner_style() {
    let issuer = Issuer::new(settings());
    let resp = issuer.handle(
        &get("/ice?service=turn&username=bob%20smith&ttl=60&iceTransportPolicy=relay"),
        NOW,
    );
    assert_eq!(resp.status(), StatusCode::OK);
    let b = body(&resp);
    let username = format!("{}:bob smith", NOW + 60);
    assert_eq!(b["iceServers"][1]["username"], username.as_str());
    assert_eq!(
        b["iceServers"][1]["credential"],
        rest_password(SECRET.as_bytes(), &username).as_str()
    );
    assert_eq!(b["ttl"], 60);
    // Defaults without parameters.
    let b = body(&issuer.handle(&get("/ice"), NOW));
    assert_eq!(b["username"], (NOW + 600).to_string());
}

#[test]
fn wrong_or_missing_token_is_401() {
    let issuer = Issuer::new(settings());
    for req in [
        post(None, "{}"),
        post(Some("tok-0123456789abcdeX"), "{}"),
        post(Some(""), "{}"),
        Request::post("/v1/ice-servers")
            .header(header::AUTHORIZATION, format!("Basic {TOKEN}"))
            .body(Bytes::new())
            .unwrap(),
    ] {
        let resp = issuer.handle(&req, NOW);
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"tern\""
        );
        assert!(error_of(&resp).contains("issuer.token_file"));
        assert!(!String::from_utf8_lossy(resp.body()).contains("tok-"));
    }
    // `bearer` is case-insensitive (RFC 9110 §11.1).
    let req = Request::post("/v1/ice-servers")
        .header(header::AUTHORIZATION, format!("bearer {TOKEN}"))
        .body(Bytes::new())
        .unwrap();
    assert_eq!(issuer.handle(&req, NOW).status(), StatusCode::CREATED);
}

#[test]
fn ttl_above_max_or_zero_is_400_naming_the_limit() {
    let issuer = Issuer::new(settings());
    let resp = issuer.handle(&post(Some(TOKEN), r#"{"ttl":86401}"#), NOW);
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        error_of(&resp),
        "ttl 86401 is above the maximum of 86400 seconds (issuer.max_ttl_secs)"
    );
    assert_eq!(
        issuer.handle(&get("/ice?ttl=86401"), NOW).status(),
        StatusCode::BAD_REQUEST
    );
    let resp = issuer.handle(&post(Some(TOKEN), r#"{"ttl":0}"#), NOW);
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // Exactly the maximum is fine.
    let resp = issuer.handle(&post(Some(TOKEN), r#"{"ttl":86400}"#), NOW);
    assert_eq!(resp.status(), StatusCode::CREATED);
}

#[test]
fn bad_input_is_400() {
    let mut s = settings();
    s.rate_per_sec = 1000;
    let issuer = Issuer::new(s);
    for bad in [
        "{",
        "[]",
        r#"{"ttl":-1}"#,
        r#"{"ttl":"3600"}"#,
        r#"{"ttl":99999999999999999999999}"#,
        r#"{"user":""}"#,
        r#"{"user":"a\nb"}"#,
        r#"{"tll":3600}"#,
        "\u{0}",
    ] {
        let resp = issuer.handle(&post(Some(TOKEN), bad), NOW);
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad:?}");
    }
    let long = format!(r#"{{"user":"{}"}}"#, "a".repeat(mint::MAX_USER_LEN + 1));
    assert_eq!(
        issuer.handle(&post(Some(TOKEN), &long), NOW).status(),
        StatusCode::BAD_REQUEST
    );
    let huge = " ".repeat(MAX_BODY + 1);
    assert_eq!(
        issuer.handle(&post(Some(TOKEN), &huge), NOW).status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let e = error_of(&issuer.handle(&post(Some(TOKEN), r#"{"tll":1}"#), NOW));
    assert!(e.contains("unknown field `tll`"), "{e}");
    for q in [
        "/ice?ttl=abc",
        "/ice?service=stun",
        "/ice?username=%ZZ",
        "/ice?username=%FF",
    ] {
        assert_eq!(
            issuer.handle(&get(q), NOW).status(),
            StatusCode::BAD_REQUEST,
            "{q}"
        );
    }
}

#[test]
fn unknown_path_is_404_and_wrong_method_405() {
    let issuer = Issuer::new(settings());
    assert_eq!(
        issuer.handle(&get("/v2/ice-servers"), NOW).status(),
        StatusCode::NOT_FOUND
    );
    let resp = issuer.handle(&get("/v1/ice-servers"), NOW);
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()[header::ALLOW], "POST, OPTIONS");
    let put = Request::put("/ice").body(Bytes::new()).unwrap();
    assert_eq!(
        issuer.handle(&put, NOW).headers()[header::ALLOW],
        "GET, OPTIONS"
    );
}

#[test]
fn rate_limit_is_per_token_and_refills() {
    let issuer = Issuer::new(settings()); // 5/s, burst 10
    let ok = |token, now| issuer.handle(&post(Some(token), "{}"), now).status();
    for _ in 0..10 {
        assert_eq!(ok(TOKEN, NOW), StatusCode::CREATED);
    }
    let resp = issuer.handle(&post(Some(TOKEN), "{}"), NOW);
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
    assert!(error_of(&resp).contains("issuer.requests_per_sec_per_token"));
    // The other token has its own bucket.
    assert_eq!(ok(OTHER, NOW), StatusCode::CREATED);
    // One second later: 5 more, not 10.
    for _ in 0..5 {
        assert_eq!(ok(TOKEN, NOW + 1), StatusCode::CREATED);
    }
    assert_eq!(ok(TOKEN, NOW + 1), StatusCode::TOO_MANY_REQUESTS);
    // A clock step backwards refills nothing and does not panic.
    assert_eq!(ok(TOKEN, 0), StatusCode::TOO_MANY_REQUESTS);
    // Unknown tokens never reach the buckets (401, not 429).
    assert_eq!(ok("tok-unknown-unknown", NOW + 1), StatusCode::UNAUTHORIZED);
}

#[test]
fn cors_only_for_allowed_origins() {
    // Off by default: no CORS headers even with an Origin.
    let issuer = Issuer::new(settings());
    let mut req = post(Some(TOKEN), "{}");
    req.headers_mut()
        .insert(header::ORIGIN, ORIGIN.parse().unwrap());
    let resp = issuer.handle(&req, NOW);
    assert!(
        resp.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    let pre = preflight_req(ORIGIN);
    assert_eq!(issuer.handle(&pre, NOW).status(), StatusCode::FORBIDDEN);

    let mut s = settings();
    s.allowed_origins = vec![ORIGIN.to_owned()];
    let issuer = Issuer::new(s);
    let resp = issuer.handle(&pre, NOW);
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let h = resp.headers();
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], ORIGIN);
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_METHODS], "POST, OPTIONS");
    assert_eq!(
        h[header::ACCESS_CONTROL_ALLOW_HEADERS],
        "authorization, content-type"
    );
    assert_eq!(h[header::VARY], "Origin");
    // Errors carry the header too, so the page can read them.
    let mut bad = post(None, "{}");
    bad.headers_mut()
        .insert(header::ORIGIN, ORIGIN.parse().unwrap());
    let resp = issuer.handle(&bad, NOW);
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], ORIGIN);
    // Another origin: preflight refused, no allow-origin on the response.
    let resp = issuer.handle(&preflight_req("https://evil.example"), NOW);
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(
        resp.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
}

fn preflight_req(origin: &str) -> Request<Bytes> {
    Request::options("/v1/ice-servers")
        .header(header::ORIGIN, origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .body(Bytes::new())
        .unwrap()
}

#[test]
fn debug_output_has_no_secrets() {
    let issuer = Issuer::new(settings());
    let dbg = format!("{issuer:?}");
    assert!(!dbg.contains(TOKEN) && !dbg.contains(SECRET), "{dbg}");
}

#[test]
fn rfc3339_matches_known_dates() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_767_225_599), "2025-12-31T23:59:59Z");
    assert_eq!(rfc3339(4_107_542_400), "2100-03-01T00:00:00Z");
    // No panic at the end of time.
    let _ = rfc3339(u64::MAX);
}

#[test]
fn token_file_rules() {
    let t = parse_tokens("# comment\n\n  tok-0123456789abcdef  \ntok-fedcba9876543210\n").unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].expose(), TOKEN);
    assert_eq!(parse_tokens("# nothing\n").unwrap_err(), "has no tokens");
    let e = parse_tokens("tok-0123456789abcdef\nshort\n").unwrap_err();
    assert_eq!(e, "has an unusable token on line 2");
    assert!(parse_tokens("tok-0123 456789abcdef\n").is_err());
}

pub(super) fn resolve_with(
    extra: &str,
    token_file: &std::path::Path,
) -> Result<Option<IssuerSettings>, ConfigError> {
    let text = format!(
        "[auth]\nrest_secrets = [\"s1\", \"s2\"]\n[issuer]\nlisten = \"127.0.0.1:8480\"\n\
         token_file = {:?}\n{extra}",
        token_file.display().to_string()
    );
    let cfg = FileConfig::from_toml(&text, "t.toml").unwrap();
    let settings = cfg
        .clone()
        .resolve(
            &Overrides::default(),
            &crate::cmd::serve::SystemHost::with_nonce_key([3; 32]),
        )
        .unwrap();
    resolve(&cfg.issuer, &cfg.cluster, "t.toml", &settings)
}

#[test]
fn config_resolves_defaults_and_names_errors() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("{TOKEN}\n")).unwrap();
    // Off by default.
    let s = FileConfig::default()
        .resolve(
            &Overrides::default(),
            &crate::cmd::serve::SystemHost::with_nonce_key([3; 32]),
        )
        .unwrap();
    assert!(
        resolve(&IssuerSection::default(), &Default::default(), "t", &s)
            .unwrap()
            .is_none()
    );

    let s = resolve_with("public_name = \"turn.example.com\"\n", &tokens)
        .unwrap()
        .unwrap();
    assert_eq!(s.secret.expose(), b"s1");
    assert_eq!(s.stun_urls, ["stun:turn.example.com:3478"]);
    assert_eq!(
        s.turn_urls,
        [
            "turn:turn.example.com:3478?transport=udp",
            "turn:turn.example.com:3478?transport=tcp"
        ]
    );
    assert_eq!(
        (s.default_ttl, s.max_ttl, s.rate_per_sec),
        (3600, 86_400, 20)
    );

    let s = resolve_with("urls = [\"turns:t.example:443?transport=tcp\"]\n", &tokens)
        .unwrap()
        .unwrap();
    assert!(s.stun_urls.is_empty());
    assert_eq!(s.turn_urls, ["turns:t.example:443?transport=tcp"]);

    let e = |extra: &str| resolve_with(extra, &tokens).unwrap_err().to_string();
    assert_eq!(
        e("urls = [\"http://x\"]\n"),
        "t.toml: issuer.urls[0]: \"http://x\" is not a STUN or TURN URL; expected stun:, turn: \
         or turns: URLs (RFC 7064/7065), at least one turn: or turns:"
    );
    assert!(e("urls = [\"stun:x:3478\"]\n").contains("issuer.urls: "));
    assert!(e("default_ttl_secs = 90000\n").contains("issuer.default_ttl_secs: 90000"));
    assert!(e("requests_per_sec_per_token = 0\n").contains("issuer.requests_per_sec_per_token"));
    assert!(
        e("allowed_origins = [\"https://a.example/\"]\n").contains("issuer.allowed_origins[0]")
    );
    let missing = dir.path().join("missing");
    let err = resolve_with("", &missing).unwrap_err().to_string();
    assert!(
        err.contains("issuer.token_file") && err.contains("cannot be read"),
        "{err}"
    );
    std::fs::write(&tokens, "short\n").unwrap();
    let err = resolve_with("", &tokens).unwrap_err().to_string();
    assert!(err.contains("line 1") && !err.contains("short\""), "{err}");
}

#[test]
fn config_needs_a_rest_secret_and_a_token_file() {
    let cfg = FileConfig::from_toml(
        "[auth]\nusers = [{ username = \"a\", password = \"p\" }]\n[issuer]\nlisten = \"127.0.0.1:8480\"\ntoken_file = \"/x\"\n",
        "t.toml",
    )
    .unwrap();
    let s = cfg
        .clone()
        .resolve(
            &Overrides::default(),
            &crate::cmd::serve::SystemHost::with_nonce_key([3; 32]),
        )
        .unwrap();
    let e = resolve(&cfg.issuer, &cfg.cluster, "t.toml", &s)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("issuer.listen") && e.contains("auth.rest_secrets"),
        "{e}"
    );

    let cfg = FileConfig::from_toml(
        "[auth]\nrest_secrets = [\"s\"]\n[issuer]\nlisten = \"127.0.0.1:8480\"\n",
        "t.toml",
    )
    .unwrap();
    let s = cfg
        .clone()
        .resolve(
            &Overrides::default(),
            &crate::cmd::serve::SystemHost::with_nonce_key([3; 32]),
        )
        .unwrap();
    let e = resolve(&cfg.issuer, &cfg.cluster, "t.toml", &s)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("t.toml: issuer.token_file: \"\" is empty"),
        "{e}"
    );
}
