use super::*;
use crate::proto::auth::rest_password;

fn unauthenticated_allocate(t: &mut TestServer) -> Vec<u8> {
    t.message(Method::ALLOCATE, Class::Request, |w| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    })
    .1
}

#[test]
fn no_integrity_gets_401_with_realm_and_nonce_and_no_integrity() {
    let mut t = TestServer::new();
    let req = unauthenticated_allocate(&mut t);
    let resp = t.request(client(), &req);
    assert_eq!(error_code(&resp), 401);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.get(AttrType::REALM), Some(REALM.as_bytes()));
    assert_eq!(
        m.get(AttrType::NONCE).map(<[u8]>::len),
        Some(crate::proto::auth::NONCE_LEN)
    );
    assert!(!m.has_integrity());
    // Small answer to an unauthenticated request: amplification under 4x.
    assert!(
        resp.len() <= 4 * req.len(),
        "{} vs {}",
        resp.len(),
        req.len()
    );
    // No state was created.
    assert_eq!(t.server.allocation_count(), 0);
}

#[test]
fn wrong_password_is_401_unknown_user_is_401() {
    let mut t = TestServer::new();
    let c = client();
    let (_, r) = t.authed(&c, Method::ALLOCATE, USER, "wrong", |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(error_code(&t.request(c, &r)), 401);
    let (_, r) = t.authed(&c, Method::ALLOCATE, "mallory", "x", |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(error_code(&t.request(c, &r)), 401);
    assert_eq!(t.server.stats().auth_failures, 2);
}

#[test]
fn missing_username_with_integrity_is_400() {
    let mut t = TestServer::new();
    let (_, out) = t.message(Method::ALLOCATE, Class::Request, |w| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        w.push_integrity(&[0; 16]);
    });
    assert_eq!(error_code(&t.request(client(), &out)), 400);
}

#[test]
fn stale_nonce_is_438_with_a_fresh_nonce() {
    let mut t = TestServer::with(|c| c.nonce_lifetime = Duration::from_secs(60));
    let c = client();
    let r = t.req(&c, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    t.advance(Duration::from_secs(61));
    let resp = t.request(c, &r);
    assert_eq!(error_code(&resp), 438);
    let m = Message::parse(&resp).unwrap();
    let fresh = m.get(AttrType::NONCE).unwrap();
    assert_ne!(fresh, &r[..0]);
    assert_eq!(
        t.server
            .config()
            .credentials
            .nonce_key()
            .check(fresh, t.now.unix_secs, c.client.ip(), 60),
        crate::proto::auth::NonceState::Valid
    );
    // A nonce issued to another address is no good either.
    let other = FiveTuple {
        client: addr("198.51.100.99:1"),
        ..c
    };
    // A request authenticated with a nonce issued to `c`, sent from `other`.
    let (_, out) = t.authed(&c, Method::ALLOCATE, USER, PASS, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(error_code(&t.request(other, &out)), 438);
}

#[test]
fn rest_credentials_work_until_they_expire() {
    let mut t = TestServer::new();
    let c = client();
    let user = format!("{}:carol", t.now.unix_secs + 100);
    let pass = rest_password(b"restsecret", &user);
    let (_, r) = t.authed(&c, Method::ALLOCATE, &user, &pass, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    expect_success(&t.request(c, &r), Method::ALLOCATE);
    t.advance(Duration::from_secs(100));
    let (_, r) = t.authed(&c, Method::REFRESH, &user, &pass, |_, _| {});
    assert_eq!(error_code(&t.request(c, &r)), 401);
}

#[test]
fn other_user_on_the_allocation_is_441() {
    let mut t = TestServer::new();
    let c = client();
    t.allocate(c);
    let (_, r) = t.authed(&c, Method::REFRESH, "bob", "bobpw", |_, _| {});
    assert_eq!(error_code(&t.request(c, &r)), 441);
}

#[test]
fn unknown_comprehension_required_attribute_is_420_with_the_list() {
    let mut t = TestServer::new();
    let c = client();
    let r = t.req(&c, Method::ALLOCATE, |w, _| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        w.push(AttrType(0x7777), &[1, 2, 3, 4]);
        w.push(AttrType(0xC001), &[1, 2, 3, 4]); // optional: ignored
    });
    let resp = t.request(c, &r);
    assert_eq!(error_code(&resp), 420);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.get(AttrType::UNKNOWN_ATTRIBUTES), Some(&[0x77, 0x77][..]));
}

#[test]
fn binding_returns_xor_mapped_address_and_fingerprint() {
    let mut t = TestServer::new();
    let (tid, out) = t.message(Method::BINDING, Class::Request, |_| {});
    let resp = t.request(client(), &out);
    let m = expect_success(&resp, Method::BINDING);
    assert_eq!(m.transaction_id(), tid);
    let mapped = xor_attr(&m, AttrType::XOR_MAPPED_ADDRESS);
    assert_eq!(mapped, client().client);
    assert!(
        m.get(AttrType::SOFTWARE).is_none(),
        "SOFTWARE is off by default"
    );
    assert!(resp.len() <= 4 * out.len());
}

#[test]
fn software_only_when_configured() {
    let mut t = TestServer::with(|c| c.software = Some("tern".into()));
    let (_, out) = t.message(Method::BINDING, Class::Request, |_| {});
    let resp = t.request(client(), &out);
    assert_eq!(
        Message::parse(&resp).unwrap().get(AttrType::SOFTWARE),
        Some(&b"tern"[..])
    );
}

#[test]
fn garbage_stray_responses_and_bad_indications_get_no_answer() {
    let mut t = TestServer::new();
    for bytes in [
        &b""[..],
        &[0xFF; 40],
        &[0x00; 19],
        &[
            0x01, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    ] {
        let (action, out) = t.input(client(), bytes);
        assert!(matches!(action, ClientAction::Dropped(_)), "{bytes:?}");
        assert!(out.is_empty());
    }
    // A Send indication without an allocation.
    let (_, out) = t.message(Method::SEND, Class::Indication, |w| {
        w.push_xor_addr(AttrType::XOR_PEER_ADDRESS, addr("8.8.8.8:1"));
        w.push(AttrType::DATA, b"x");
    });
    let (action, replies) = t.input(client(), &out);
    assert_eq!(action, ClientAction::Dropped(DropReason::NoAllocation));
    assert!(replies.is_empty());
}

#[test]
fn unauthenticated_errors_are_rate_limited_per_source_ip() {
    let mut t = TestServer::with(|c| c.limits.unauth_errors_per_sec_per_ip = 5);
    let c = client();
    let mut answered = 0;
    for _ in 0..50 {
        let req = unauthenticated_allocate(&mut t);
        let (_, out) = t.input(c, &req);
        answered += out.len();
    }
    assert_eq!(answered, 10, "burst of twice the rate, then silence");
    assert_eq!(t.server.stats().rate_limited, 40);
    // Another source is not affected...
    let other = FiveTuple {
        client: addr("192.0.2.200:1"),
        ..c
    };
    let req = unauthenticated_allocate(&mut t);
    assert_eq!(t.input(other, &req).1.len(), 1);
    // ...authenticated requests are not limited...
    t.allocate(c);
    // ...and the source recovers with time.
    t.advance(Duration::from_secs(1));
    let req = unauthenticated_allocate(&mut t);
    assert_eq!(
        t.input(
            FiveTuple {
                client: addr("198.51.100.7:40001"),
                ..c
            },
            &req
        )
        .1
        .len(),
        1
    );
}
