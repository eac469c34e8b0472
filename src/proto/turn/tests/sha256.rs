//! SHA-256 password algorithm, MESSAGE-INTEGRITY-SHA256, USERHASH and
//! bid-down protection (RFC 8489 §9.2) through the whole state machine.

use super::*;
use crate::proto::auth::{
    AlgKey, NONCE_COOKIE, OFFERED_ALGORITHMS, PasswordAlgorithm, Sha256Key, rest_password, userhash,
};

const SHA256: [u8; 4] = [0x00, 0x02, 0x00, 0x00];
const MD5: [u8; 4] = [0x00, 0x01, 0x00, 0x00];

/// How a test request authenticates.
struct Auth<'a> {
    user: &'a str,
    /// Send USERHASH instead of USERNAME (the raw value, to allow hostile ones).
    userhash: Option<Vec<u8>>,
    algorithms: Option<&'a [u8]>,
    algorithm: Option<&'a [u8]>,
    key: AlgKey,
    mi_sha256: bool,
}

impl<'a> Auth<'a> {
    /// The full RFC 8489 SHA-256 form for `user`/`pass`.
    fn sha256(user: &'a str, pass: &str) -> Self {
        Self {
            user,
            userhash: None,
            algorithms: Some(&OFFERED_ALGORITHMS),
            algorithm: Some(&SHA256),
            key: AlgKey::derive(PasswordAlgorithm::Sha256, user, REALM, pass),
            mi_sha256: true,
        }
    }
}

/// Sends an Allocate authenticated as `a`; returns the response.
fn allocate(t: &mut TestServer, from: FiveTuple, a: &Auth<'_>) -> Vec<u8> {
    let nonce = t.nonce(&from);
    let mut out = Vec::new();
    let tid = t.tid();
    let mut w = MessageWriter::new(
        &mut out,
        MessageType::new(Method::ALLOCATE, Class::Request),
        tid,
    );
    w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    match &a.userhash {
        Some(h) => w.push(AttrType::USERHASH, h),
        None => w.push(AttrType::USERNAME, a.user.as_bytes()),
    };
    w.push(AttrType::REALM, REALM.as_bytes());
    w.push(AttrType::NONCE, &nonce);
    if let Some(v) = a.algorithms {
        w.push(AttrType::PASSWORD_ALGORITHMS, v);
    }
    if let Some(v) = a.algorithm {
        w.push(AttrType::PASSWORD_ALGORITHM, v);
    }
    if a.mi_sha256 {
        w.push_integrity_sha256(a.key.bytes());
    } else {
        w.push_integrity(a.key.bytes());
    }
    w.push_fingerprint();
    t.request(from, &out)
}

#[test]
fn challenge_offers_algorithms_and_nonce_cookie() {
    let mut t = TestServer::new();
    let (_, req) = t.message(Method::ALLOCATE, Class::Request, |w| {
        w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    let resp = t.request(client(), &req);
    assert_eq!(error_code(&resp), 401);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(
        m.get(AttrType::PASSWORD_ALGORITHMS),
        Some(&OFFERED_ALGORITHMS[..])
    );
    assert!(m.get(AttrType::NONCE).unwrap().starts_with(NONCE_COOKIE));
}

#[test]
fn sha256_request_succeeds_and_response_carries_mi_sha256() {
    let mut t = TestServer::new();
    let c = client();
    let a = Auth::sha256(USER, PASS);
    let resp = allocate(&mut t, c, &a);
    let m = expect_success(&resp, Method::ALLOCATE);
    assert!(m.has_integrity_sha256() && !m.has_integrity());
    assert_eq!(m.check_integrity_sha256(a.key.bytes()), Ok(()));
    let md5 = LongTermKey::derive(USER, REALM, PASS);
    assert!(
        m.check_integrity_sha256(&md5.0).is_err(),
        "SHA-256 key, not MD5"
    );
    assert_eq!(t.server.allocation(&c).unwrap().username, USER);
    // Later requests on the allocation may use the legacy form.
    expect_success(&t.refresh(c, Some(600)), Method::REFRESH);
}

#[test]
fn md5_named_explicitly_and_mi_sha256_with_md5_key_work() {
    let mut t = TestServer::new();
    let c = client();
    let a = Auth {
        algorithm: Some(&MD5),
        key: AlgKey::derive(PasswordAlgorithm::Md5, USER, REALM, PASS),
        mi_sha256: false,
        ..Auth::sha256(USER, PASS)
    };
    let m_resp = allocate(&mut t, c, &a);
    let m = expect_success(&m_resp, Method::ALLOCATE);
    assert!(m.has_integrity() && !m.has_integrity_sha256());

    let c2 = FiveTuple {
        client: addr("198.51.100.8:2"),
        ..client()
    };
    let a = Auth {
        algorithms: None,
        algorithm: None,
        key: AlgKey::derive(PasswordAlgorithm::Md5, USER, REALM, PASS),
        ..Auth::sha256(USER, PASS)
    };
    let resp = allocate(&mut t, c2, &a);
    let m = expect_success(&resp, Method::ALLOCATE);
    assert_eq!(m.check_integrity_sha256(a.key.bytes()), Ok(()));
}

#[test]
fn userhash_finds_static_users_and_unknown_hashes_get_401() {
    let mut t = TestServer::new();
    let c = client();
    let a = Auth {
        userhash: Some(userhash(USER, REALM).to_vec()),
        ..Auth::sha256(USER, PASS)
    };
    let resp = allocate(&mut t, c, &a);
    expect_success(&resp, Method::ALLOCATE);
    assert_eq!(t.server.allocation(&c).unwrap().username, USER);

    // A hash nobody has (here: a REST username, which cannot be listed).
    let c2 = FiveTuple {
        client: addr("198.51.100.8:2"),
        ..client()
    };
    let rest_user = "1700009999:carol";
    let pw = rest_password(b"restsecret", rest_user);
    let a = Auth {
        userhash: Some(userhash(rest_user, REALM).to_vec()),
        ..Auth::sha256(rest_user, &pw)
    };
    let resp = allocate(&mut t, c2, &a);
    assert_eq!(error_code(&resp), 401);
    assert_eq!(t.server.stats().auth_failures, 1);
    // The same REST user with USERNAME and SHA-256 works.
    let a = Auth::sha256(rest_user, &pw);
    expect_success(&allocate(&mut t, c2, &a), Method::ALLOCATE);
}

#[test]
fn bid_down_and_hostile_values_are_400_and_counted() {
    let mut t = TestServer::new();
    let c = client();
    let stripped: &[u8] = &MD5; // SHA-256 removed from the offer by a middlebox
    let unknown: &[u8] = &[0x00, 0x03, 0x00, 0x00];
    let with_params: &[u8] = &[0x00, 0x02, 0x00, 0x04, 1, 2, 3, 4];
    let cases: [Auth<'_>; 6] = [
        // PASSWORD-ALGORITHM without PASSWORD-ALGORITHMS.
        Auth {
            algorithms: None,
            ..Auth::sha256(USER, PASS)
        },
        // PASSWORD-ALGORITHMS without PASSWORD-ALGORITHM.
        Auth {
            algorithm: None,
            ..Auth::sha256(USER, PASS)
        },
        // The offer does not match what the 401 sent.
        Auth {
            algorithms: Some(stripped),
            algorithm: Some(&MD5),
            key: AlgKey::derive(PasswordAlgorithm::Md5, USER, REALM, PASS),
            ..Auth::sha256(USER, PASS)
        },
        // An algorithm nobody offered, or one with parameters.
        Auth {
            algorithm: Some(unknown),
            ..Auth::sha256(USER, PASS)
        },
        Auth {
            algorithm: Some(with_params),
            ..Auth::sha256(USER, PASS)
        },
        // A USERHASH of the wrong length.
        Auth {
            userhash: Some(vec![0xAB; 31]),
            ..Auth::sha256(USER, PASS)
        },
    ];
    for (i, a) in cases.iter().enumerate() {
        let resp = allocate(&mut t, c, a);
        assert_eq!(error_code(&resp), 400, "case {i}");
    }
    assert_eq!(t.server.stats().bad_auth_attrs, 6);
    assert_eq!(t.server.allocation_count(), 0);
}

#[test]
fn user_with_only_an_md5_key_cannot_use_sha256() {
    let mut t = TestServer::with(|c| {
        let key = LongTermKey::derive("dave", REALM, "pw");
        c.credentials.add_user_key("dave", REALM, key);
    });
    let c = client();
    let resp = allocate(&mut t, c, &Auth::sha256("dave", "pw"));
    assert_eq!(error_code(&resp), 401);
    // A pre-hashed SHA-256 key makes it work.
    let mut t = TestServer::with(|c| {
        let key = Sha256Key::derive("dave", REALM, "pw");
        c.credentials.add_user_sha256_key("dave", REALM, key);
    });
    let resp = allocate(&mut t, c, &Auth::sha256("dave", "pw"));
    expect_success(&resp, Method::ALLOCATE);
}

/// The fuzz seeds are written by an independent implementation (a Python
/// script, see the commit) with the `server_input` target's credentials:
/// tern must agree with it on nonce, USERHASH, key and HMAC-SHA256.
#[test]
fn fuzz_seeds_from_an_independent_encoder_authenticate() {
    let mut creds = Credentials::new([1; 32]);
    creds.add_user_password("u", "r", "p");
    let mut server = Server::new(Arc::new(Config::new("r", creds)), [7; 32]);
    let now = Now {
        mono: Instant::now(),
        unix_secs: 1_700_000_000,
    };
    let five = FiveTuple {
        client: addr("192.0.2.1:1000"),
        server: addr("192.0.2.2:3478"),
        transport: Transport::Udp,
    };
    let seeds: [(&[u8], u16); 5] = [
        // Authenticated, then 437: no allocation to refresh.
        (
            include_bytes!("../../../../fuzz/corpus/server_input/sha256_refresh"),
            437,
        ),
        (
            include_bytes!("../../../../fuzz/corpus/server_input/userhash_refresh"),
            437,
        ),
        (
            include_bytes!("../../../../fuzz/corpus/server_input/bid_down_md5_only"),
            400,
        ),
        (
            include_bytes!("../../../../fuzz/corpus/server_input/unknown_algorithm"),
            400,
        ),
        (
            include_bytes!("../../../../fuzz/corpus/server_input/short_userhash"),
            400,
        ),
    ];
    let key = Sha256Key::derive("u", "r", "p");
    for (i, (seed, code)) in seeds.iter().enumerate() {
        assert_eq!(server.handle_client(now, five, seed), ClientAction::Handled);
        let resp = server.poll_transmit().expect("a response").data;
        assert_eq!(error_code(&resp), *code, "seed {i}");
        let m = Message::parse(&resp).unwrap();
        let authed = *code == 437;
        assert_eq!(m.check_integrity_sha256(&key.0).is_ok(), authed, "seed {i}");
    }
}
