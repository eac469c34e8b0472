//! RFC 5769 test vectors (<https://www.rfc-editor.org/rfc/rfc5769>) byte for
//! byte, writer round trips, and property tests for the whole codec.

use std::net::SocketAddr;

use proptest::prelude::*;

use super::*;
use crate::proto::auth::LongTermKey;
use crate::proto::channel_data::ChannelData;
use crate::proto::framing::frame_len;

/// RFC 5769 §2.1/§2.2/§2.3 short-term password.
const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";
/// Transaction id shared by RFC 5769 §2.1–§2.3.
const TID: TransactionId = TransactionId([
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
]);

/// RFC 5769 §2.1 Sample Request.
#[rustfmt::skip]
pub(crate) const SAMPLE_REQUEST: [u8; 108] = [
    0x00, 0x01, 0x00, 0x58, //    Request type and message length
    0x21, 0x12, 0xa4, 0x42, //    Magic cookie
    0xb7, 0xe7, 0xa7, 0x01, // }
    0xbc, 0x34, 0xd6, 0x86, // }  Transaction ID
    0xfa, 0x87, 0xdf, 0xae, // }
    0x80, 0x22, 0x00, 0x10, //    SOFTWARE attribute header
    0x53, 0x54, 0x55, 0x4e, // }
    0x20, 0x74, 0x65, 0x73, // }  User-agent...
    0x74, 0x20, 0x63, 0x6c, // }  ...name
    0x69, 0x65, 0x6e, 0x74, // }
    0x00, 0x24, 0x00, 0x04, //    PRIORITY attribute header
    0x6e, 0x00, 0x01, 0xff, //    ICE priority value
    0x80, 0x29, 0x00, 0x08, //    ICE-CONTROLLED attribute header
    0x93, 0x2f, 0xf9, 0xb1, // }  Pseudo-random tie breaker...
    0x51, 0x26, 0x3b, 0x36, // }   ...for ICE control
    0x00, 0x06, 0x00, 0x09, //    USERNAME attribute header
    0x65, 0x76, 0x74, 0x6a, // }
    0x3a, 0x68, 0x36, 0x76, // }  Username (9 bytes) and padding (3 bytes)
    0x59, 0x20, 0x20, 0x20, // }
    0x00, 0x08, 0x00, 0x14, //    MESSAGE-INTEGRITY attribute header
    0x9a, 0xea, 0xa7, 0x0c, // }
    0xbf, 0xd8, 0xcb, 0x56, // }
    0x78, 0x1e, 0xf2, 0xb5, // }  HMAC-SHA1 fingerprint
    0xb2, 0xd3, 0xf2, 0x49, // }
    0xc1, 0xb5, 0x71, 0xa2, // }
    0x80, 0x28, 0x00, 0x04, //    FINGERPRINT attribute header
    0xe5, 0x7a, 0x3b, 0xcf, //    CRC32 fingerprint
];

/// RFC 5769 §2.2 Sample IPv4 Response.
#[rustfmt::skip]
pub(crate) const SAMPLE_IPV4_RESPONSE: [u8; 80] = [
    0x01, 0x01, 0x00, 0x3c, //    Response type and message length
    0x21, 0x12, 0xa4, 0x42, //    Magic cookie
    0xb7, 0xe7, 0xa7, 0x01, // }
    0xbc, 0x34, 0xd6, 0x86, // }  Transaction ID
    0xfa, 0x87, 0xdf, 0xae, // }
    0x80, 0x22, 0x00, 0x0b, //    SOFTWARE attribute header
    0x74, 0x65, 0x73, 0x74, // }
    0x20, 0x76, 0x65, 0x63, // }  UTF-8 server name
    0x74, 0x6f, 0x72, 0x20, // }
    0x00, 0x20, 0x00, 0x08, //    XOR-MAPPED-ADDRESS attribute header
    0x00, 0x01, 0xa1, 0x47, //    Address family (IPv4) and xor'd mapped port number
    0xe1, 0x12, 0xa6, 0x43, //    Xor'd mapped IPv4 address
    0x00, 0x08, 0x00, 0x14, //    MESSAGE-INTEGRITY attribute header
    0x2b, 0x91, 0xf5, 0x99, // }
    0xfd, 0x9e, 0x90, 0xc3, // }
    0x8c, 0x74, 0x89, 0xf9, // }  HMAC-SHA1 fingerprint
    0x2a, 0xf9, 0xba, 0x53, // }
    0xf0, 0x6b, 0xe7, 0xd7, // }
    0x80, 0x28, 0x00, 0x04, //    FINGERPRINT attribute header
    0xc0, 0x7d, 0x4c, 0x96, //    CRC32 fingerprint
];

/// RFC 5769 §2.3 Sample IPv6 Response.
#[rustfmt::skip]
pub(crate) const SAMPLE_IPV6_RESPONSE: [u8; 92] = [
    0x01, 0x01, 0x00, 0x48, //    Response type and message length
    0x21, 0x12, 0xa4, 0x42, //    Magic cookie
    0xb7, 0xe7, 0xa7, 0x01, // }
    0xbc, 0x34, 0xd6, 0x86, // }  Transaction ID
    0xfa, 0x87, 0xdf, 0xae, // }
    0x80, 0x22, 0x00, 0x0b, //    SOFTWARE attribute header
    0x74, 0x65, 0x73, 0x74, // }
    0x20, 0x76, 0x65, 0x63, // }  UTF-8 server name
    0x74, 0x6f, 0x72, 0x20, // }
    0x00, 0x20, 0x00, 0x14, //    XOR-MAPPED-ADDRESS attribute header
    0x00, 0x02, 0xa1, 0x47, //    Address family (IPv6) and xor'd mapped port number
    0x01, 0x13, 0xa9, 0xfa, // }
    0xa5, 0xd3, 0xf1, 0x79, // }  Xor'd mapped IPv6 address
    0xbc, 0x25, 0xf4, 0xb5, // }
    0xbe, 0xd2, 0xb9, 0xd9, // }
    0x00, 0x08, 0x00, 0x14, //    MESSAGE-INTEGRITY attribute header
    0xa3, 0x82, 0x95, 0x4e, // }
    0x4b, 0xe6, 0x7b, 0xf1, // }
    0x17, 0x84, 0xc9, 0x7c, // }  HMAC-SHA1 fingerprint
    0x82, 0x92, 0xc2, 0x75, // }
    0xbf, 0xe3, 0xed, 0x41, // }
    0x80, 0x28, 0x00, 0x04, //    FINGERPRINT attribute header
    0xc8, 0xfb, 0x0b, 0x4c, //    CRC32 fingerprint
];

/// RFC 5769 §2.4 Sample Request with Long-Term Authentication.
#[rustfmt::skip]
pub(crate) const SAMPLE_LONG_TERM_REQUEST: [u8; 116] = [
    0x00, 0x01, 0x00, 0x60, //    Request type and message length
    0x21, 0x12, 0xa4, 0x42, //    Magic cookie
    0x78, 0xad, 0x34, 0x33, // }
    0xc6, 0xad, 0x72, 0xc0, // }  Transaction ID
    0x29, 0xda, 0x41, 0x2e, // }
    0x00, 0x06, 0x00, 0x12, //    USERNAME attribute header
    0xe3, 0x83, 0x9e, 0xe3, // }
    0x83, 0x88, 0xe3, 0x83, // }
    0xaa, 0xe3, 0x83, 0x83, // }  Username value (18 bytes) and padding (2 bytes)
    0xe3, 0x82, 0xaf, 0xe3, // }
    0x82, 0xb9, 0x00, 0x00, // }
    0x00, 0x15, 0x00, 0x1c, //    NONCE attribute header
    0x66, 0x2f, 0x2f, 0x34, // }
    0x39, 0x39, 0x6b, 0x39, // }
    0x35, 0x34, 0x64, 0x36, // }
    0x4f, 0x4c, 0x33, 0x34, // }  Nonce value
    0x6f, 0x4c, 0x39, 0x46, // }
    0x53, 0x54, 0x76, 0x79, // }
    0x36, 0x34, 0x73, 0x41, // }
    0x00, 0x14, 0x00, 0x0b, //    REALM attribute header
    0x65, 0x78, 0x61, 0x6d, // }
    0x70, 0x6c, 0x65, 0x2e, // }  Realm value (11 bytes) and padding (1 byte)
    0x6f, 0x72, 0x67, 0x00, // }
    0x00, 0x08, 0x00, 0x14, //    MESSAGE-INTEGRITY attribute header
    0xf6, 0x70, 0x24, 0x65, // }
    0x6d, 0xd6, 0x4a, 0x3e, // }
    0x02, 0xb8, 0xe0, 0x71, // }  HMAC-SHA1 fingerprint
    0x2e, 0x85, 0xc9, 0xa2, // }
    0x8c, 0xa8, 0x96, 0x66, // }
];

/// U+30DE U+30C8 U+30EA U+30C3 U+30AF U+30B9, the §2.4 username.
const LT_USERNAME: &str = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
const LT_NONCE: &[u8] = b"f//499k954d6OL34oL9FSTvy64sA";
const LT_REALM: &str = "example.org";

fn v4_mapped() -> SocketAddr {
    "192.0.2.1:32853".parse().unwrap()
}

fn v6_mapped() -> SocketAddr {
    "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
        .parse()
        .unwrap()
}

#[test]
fn message_type_interleaving() {
    let cases = [
        (Method::BINDING, Class::Request, 0x0001),
        (Method::BINDING, Class::Success, 0x0101),
        (Method::BINDING, Class::Error, 0x0111),
        (Method::SEND, Class::Indication, 0x0016),
        (Method::DATA, Class::Indication, 0x0017),
        (Method::ALLOCATE, Class::Error, 0x0113),
        (Method::CHANNEL_BIND, Class::Success, 0x0109),
        (Method(0x0FFF), Class::Error, 0x3FFF),
        (Method(0x0080), Class::Request, 0x0200),
        (Method(0x0010), Class::Request, 0x0020),
    ];
    for (m, c, v) in cases {
        let t = MessageType::new(m, c);
        assert_eq!(t.to_u16(), v, "{t:?}");
        assert_eq!(MessageType::from_u16(v), Some(t));
    }
    assert_eq!(MessageType::from_u16(0x4001), None);
    assert_eq!(MessageType::from_u16(0x8001), None);
}

#[test]
fn rfc5769_sample_request() {
    let m = Message::parse(&SAMPLE_REQUEST).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::BINDING, Class::Request)
    );
    assert_eq!(m.transaction_id(), TID);
    assert_eq!(m.as_bytes(), &SAMPLE_REQUEST[..]);
    assert_eq!(m.get(AttrType::SOFTWARE), Some(&b"STUN test client"[..]));
    assert_eq!(m.get(AttrType::USERNAME), Some(&b"evtj:h6vY"[..]));
    assert_eq!(
        decode_u32(m.get(AttrType::PRIORITY).unwrap()),
        Ok(0x6e00_01ff)
    );
    assert!(m.has_integrity() && m.has_fingerprint() && !m.has_integrity_sha256());
    assert_eq!(m.check_fingerprint(), Ok(()));
    assert_eq!(m.check_integrity(PASSWORD), Ok(()));
    assert_eq!(m.check_integrity(b"wrong"), Err(IntegrityError::Mismatch));
    assert_eq!(
        m.check_integrity_sha256(PASSWORD),
        Err(IntegrityError::Missing)
    );
    // PRIORITY (0x0024) and USERNAME are comprehension-required.
    let (unknown, n) = m.unknown_required(&[AttrType::USERNAME]);
    assert_eq!(&unknown[..n], &[AttrType::PRIORITY]);
    assert!(looks_like_stun(&SAMPLE_REQUEST));
    assert_eq!(
        frame_len(&SAMPLE_REQUEST, 2048),
        Ok(Some(SAMPLE_REQUEST.len()))
    );
}

#[test]
fn rfc5769_sample_ipv4_response() {
    let m = Message::parse(&SAMPLE_IPV4_RESPONSE).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::BINDING, Class::Success)
    );
    assert_eq!(m.get(AttrType::SOFTWARE), Some(&b"test vector"[..]));
    let xma = m.get(AttrType::XOR_MAPPED_ADDRESS).unwrap();
    assert_eq!(decode_xor_addr(xma, &m.transaction_id()), Ok(v4_mapped()));
    assert_eq!(m.check_fingerprint(), Ok(()));
    assert_eq!(m.check_integrity(PASSWORD), Ok(()));
    // The writer encodes the same XOR-MAPPED-ADDRESS value.
    let mut out = [0; 20];
    let n = encode_xor_addr(v4_mapped(), &TID, &mut out);
    assert_eq!(&out[..n], xma);
}

#[test]
fn rfc5769_sample_ipv6_response() {
    let m = Message::parse(&SAMPLE_IPV6_RESPONSE).unwrap();
    let xma = m.get(AttrType::XOR_MAPPED_ADDRESS).unwrap();
    assert_eq!(decode_xor_addr(xma, &m.transaction_id()), Ok(v6_mapped()));
    assert_eq!(m.check_fingerprint(), Ok(()));
    assert_eq!(m.check_integrity(PASSWORD), Ok(()));
    let mut out = [0; 20];
    let n = encode_xor_addr(v6_mapped(), &TID, &mut out);
    assert_eq!(&out[..n], xma);
}

#[test]
fn rfc5769_long_term_request() {
    let m = Message::parse(&SAMPLE_LONG_TERM_REQUEST).unwrap();
    assert_eq!(m.get(AttrType::USERNAME), Some(LT_USERNAME.as_bytes()));
    assert_eq!(m.get(AttrType::NONCE), Some(LT_NONCE));
    assert_eq!(m.get(AttrType::REALM), Some(LT_REALM.as_bytes()));
    assert!(!m.has_fingerprint());
    assert_eq!(m.check_fingerprint(), Err(IntegrityError::Missing));
    let key = LongTermKey::derive(LT_USERNAME, LT_REALM, "TheMatrIX");
    assert_eq!(m.check_integrity(&key.0), Ok(()));
    let other = LongTermKey::derive(LT_USERNAME, LT_REALM, "TheMatrix");
    assert_eq!(m.check_integrity(&other.0), Err(IntegrityError::Mismatch));
}

/// §2.4 pads with zero bytes, as the writer does, so it is reproduced exactly.
#[test]
fn writer_reproduces_long_term_request() {
    let m = Message::parse(&SAMPLE_LONG_TERM_REQUEST).unwrap();
    let key = LongTermKey::derive(LT_USERNAME, LT_REALM, "TheMatrIX");
    let mut out = Vec::new();
    MessageWriter::new(&mut out, m.message_type(), m.transaction_id())
        .push(AttrType::USERNAME, LT_USERNAME.as_bytes())
        .push(AttrType::NONCE, LT_NONCE)
        .push(AttrType::REALM, LT_REALM.as_bytes())
        .push_integrity(&key.0);
    assert_eq!(out, SAMPLE_LONG_TERM_REQUEST);
}

/// §2.2/§2.3 pad SOFTWARE with a space, the writer with zero: the written
/// responses differ only in that byte and the values that cover it, and verify.
#[test]
fn writer_builds_verifiable_responses() {
    for (vector, addr) in [
        (&SAMPLE_IPV4_RESPONSE[..], v4_mapped()),
        (&SAMPLE_IPV6_RESPONSE[..], v6_mapped()),
    ] {
        let mut out = Vec::new();
        MessageWriter::new(
            &mut out,
            MessageType::new(Method::BINDING, Class::Success),
            TID,
        )
        .push(AttrType::SOFTWARE, b"test vector")
        .push_xor_addr(AttrType::XOR_MAPPED_ADDRESS, addr)
        .push_integrity(PASSWORD)
        .push_fingerprint();
        assert_eq!(out.len(), vector.len());
        let mi = out.len() - 32;
        // SOFTWARE value ends at 35; byte 35 is its padding.
        assert_eq!(out[..35], vector[..35]);
        assert_eq!(out[35], 0x00);
        assert_eq!(vector[35], 0x20);
        assert_eq!(out[36..mi + 4], vector[36..mi + 4]);
        let m = Message::parse(&out).unwrap();
        assert_eq!(m.check_integrity(PASSWORD), Ok(()));
        assert_eq!(m.check_fingerprint(), Ok(()));
        let xma = m.get(AttrType::XOR_MAPPED_ADDRESS).unwrap();
        assert_eq!(decode_xor_addr(xma, &TID), Ok(addr));
    }
}

#[test]
fn writer_sha256_integrity_and_truncation() {
    let mut out = Vec::new();
    MessageWriter::new(
        &mut out,
        MessageType::new(Method::ALLOCATE, Class::Request),
        TID,
    )
    .push(AttrType::USERNAME, b"bob")
    .push_integrity_sha256(b"secret")
    .push_fingerprint();
    let m = Message::parse(&out).unwrap();
    assert_eq!(m.check_integrity_sha256(b"secret"), Ok(()));
    assert_eq!(
        m.check_integrity_sha256(b"other"),
        Err(IntegrityError::Mismatch)
    );
    assert_eq!(m.check_fingerprint(), Ok(()));

    // A truncated 16-byte MESSAGE-INTEGRITY-SHA256 verifies too.
    let attr = 20 + 8;
    let mut trunc = out[..attr].to_vec();
    trunc.extend_from_slice(&[0x00, 0x1C, 0x00, 0x10]);
    trunc.extend_from_slice(&[0; 16]);
    let len = (trunc.len() - 20) as u16;
    trunc[2..4].copy_from_slice(&len.to_be_bytes());
    let tag = integrity_tag_sha256(&trunc, attr, b"secret");
    trunc[attr + 4..].copy_from_slice(&tag[..16]);
    assert_eq!(
        Message::parse(&trunc)
            .unwrap()
            .check_integrity_sha256(b"secret"),
        Ok(())
    );

    // Bad lengths: 12 bytes (too short), 18 (not a multiple of 4).
    for n in [12u16, 20 + 2] {
        let mut bad = out[..attr].to_vec();
        bad.extend_from_slice(&[0x00, 0x1C]);
        bad.extend_from_slice(&n.to_be_bytes());
        bad.extend_from_slice(&vec![0; (usize::from(n) + 3) & !3]);
        let len = (bad.len() - 20) as u16;
        bad[2..4].copy_from_slice(&len.to_be_bytes());
        let m = Message::parse(&bad).unwrap();
        assert_eq!(
            m.check_integrity_sha256(b"secret"),
            Err(IntegrityError::BadLength)
        );
    }
}

fn integrity_tag_sha256(msg: &[u8], attr: usize, key: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 20];
    header.copy_from_slice(&msg[..20]);
    header[2..4].copy_from_slice(&((msg.len() - 20) as u16).to_be_bytes());
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(&header);
    ctx.update(&msg[20..attr]);
    ctx.sign().as_ref().to_vec()
}

#[test]
fn bad_integrity_lengths() {
    // MESSAGE-INTEGRITY with a 16-byte value.
    let mut out = Vec::new();
    MessageWriter::new(
        &mut out,
        MessageType::new(Method::BINDING, Class::Request),
        TID,
    )
    .push(AttrType::MESSAGE_INTEGRITY, &[0; 16])
    .push(AttrType::FINGERPRINT, &[0; 8]);
    let m = Message::parse(&out).unwrap();
    assert_eq!(m.check_integrity(PASSWORD), Err(IntegrityError::BadLength));
    assert_eq!(m.check_fingerprint(), Err(IntegrityError::BadLength));
}

#[test]
fn every_truncation_of_the_vectors_is_rejected() {
    for v in [
        &SAMPLE_REQUEST[..],
        &SAMPLE_IPV4_RESPONSE[..],
        &SAMPLE_IPV6_RESPONSE[..],
        &SAMPLE_LONG_TERM_REQUEST[..],
    ] {
        for n in 0..v.len() {
            assert!(Message::parse(&v[..n]).is_err());
        }
    }
}

// ----- property tests -----

fn class() -> impl Strategy<Value = Class> {
    prop_oneof![
        Just(Class::Request),
        Just(Class::Indication),
        Just(Class::Success),
        Just(Class::Error)
    ]
}

/// Attribute types other than the three with placement rules.
fn plain_attr() -> impl Strategy<Value = (AttrType, Vec<u8>)> {
    (
        any::<u16>().prop_filter("placement-ruled", |t| {
            ![
                AttrType::MESSAGE_INTEGRITY,
                AttrType::MESSAGE_INTEGRITY_SHA256,
                AttrType::FINGERPRINT,
            ]
            .contains(&AttrType(*t))
        }),
        prop::collection::vec(any::<u8>(), 0..48),
    )
        .prop_map(|(t, v)| (AttrType(t), v))
}

fn message() -> impl Strategy<Value = (MessageType, TransactionId, Vec<(AttrType, Vec<u8>)>)> {
    (
        (0u16..0x1000, class()).prop_map(|(m, c)| MessageType::new(Method(m), c)),
        any::<[u8; 12]>().prop_map(TransactionId),
        prop::collection::vec(plain_attr(), 0..12),
    )
}

proptest! {
    #[test]
    fn message_type_round_trip(v in 0u16..0x4000) {
        prop_assert_eq!(MessageType::from_u16(v).unwrap().to_u16(), v);
    }

    #[test]
    fn write_then_parse_round_trip((mtype, tid, attrs) in message()) {
        let mut out = Vec::new();
        let mut w = MessageWriter::new(&mut out, mtype, tid);
        for (t, v) in &attrs {
            w.push(*t, v);
        }
        w.push_integrity(b"k").push_fingerprint();
        let m = Message::parse(&out).unwrap();
        prop_assert_eq!(m.message_type(), mtype);
        prop_assert_eq!(m.transaction_id(), tid);
        let got: Vec<(AttrType, Vec<u8>)> = m
            .attrs()
            .take_while(|(t, _)| *t != AttrType::MESSAGE_INTEGRITY)
            .map(|(t, v)| (t, v.to_vec()))
            .collect();
        prop_assert_eq!(got, attrs.clone());
        prop_assert_eq!(m.check_integrity(b"k"), Ok(()));
        prop_assert_eq!(m.check_fingerprint(), Ok(()));
        if let Some((t, v)) = attrs.first() {
            prop_assert_eq!(m.get(*t), Some(&v[..]));
        }
        prop_assert!(looks_like_stun(&out));
        prop_assert_eq!(frame_len(&out, 1 << 20), Ok(Some(out.len())));
    }

    #[test]
    fn addresses_round_trip(ip in any::<std::net::IpAddr>(), port in any::<u16>(), tid in any::<[u8; 12]>()) {
        let addr = SocketAddr::new(ip, port);
        let tid = TransactionId(tid);
        let mut out = Vec::new();
        MessageWriter::new(&mut out, MessageType::new(Method::ALLOCATE, Class::Success), tid)
            .push_xor_addr(AttrType::XOR_RELAYED_ADDRESS, addr)
            .push_addr(AttrType::MAPPED_ADDRESS, addr);
        let m = Message::parse(&out).unwrap();
        prop_assert_eq!(decode_xor_addr(m.get(AttrType::XOR_RELAYED_ADDRESS).unwrap(), &tid), Ok(addr));
        prop_assert_eq!(decode_addr(m.get(AttrType::MAPPED_ADDRESS).unwrap()), Ok(addr));
    }

    #[test]
    fn error_code_round_trip(code in 300u16..700, reason in ".{0,300}") {
        let mut out = Vec::new();
        MessageWriter::new(&mut out, MessageType::new(Method::BINDING, Class::Error), TID)
            .push_error_code(code, &reason);
        let m = Message::parse(&out).unwrap();
        let (c, r) = decode_error_code(m.get(AttrType::ERROR_CODE).unwrap()).unwrap();
        prop_assert_eq!(c, code);
        prop_assert!(reason.starts_with(r) && r.len() <= MAX_REASON_LEN);
    }

    #[test]
    fn mutated_message_fails_integrity(
        (mtype, tid, attrs) in message(),
        pos in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut out = Vec::new();
        let mut w = MessageWriter::new(&mut out, mtype, tid);
        for (t, v) in &attrs {
            w.push(*t, v);
        }
        w.push_integrity(b"key");
        let i = pos.index(out.len());
        out[i] ^= flip;
        if let Ok(m) = Message::parse(&out) {
            prop_assert!(m.check_integrity(b"key").is_err(), "byte {} survived", i);
        }
    }

    #[test]
    fn mutated_message_fails_fingerprint(
        (mtype, tid, attrs) in message(),
        pos in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut out = Vec::new();
        let mut w = MessageWriter::new(&mut out, mtype, tid);
        for (t, v) in &attrs {
            w.push(*t, v);
        }
        w.push_fingerprint();
        let i = pos.index(out.len());
        out[i] ^= flip;
        if let Ok(m) = Message::parse(&out) {
            prop_assert!(m.check_fingerprint().is_err(), "byte {} survived", i);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..256)) {
        exercise(&buf);
    }

    /// Valid header, arbitrary attribute bytes: reaches the TLV walk.
    #[test]
    fn arbitrary_attributes_never_panic(
        tid in any::<[u8; 12]>(),
        body in prop::collection::vec(any::<u8>(), 0..64).prop_map(|mut v| { v.truncate(v.len() & !3); v }),
        known in prop::collection::vec(any::<u16>().prop_map(AttrType), 0..4),
    ) {
        let mut buf = vec![0x00, 0x03];
        buf.extend_from_slice(&(body.len() as u16).to_be_bytes());
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&tid);
        buf.extend_from_slice(&body);
        exercise(&buf);
        if let Ok(m) = Message::parse(&buf) {
            let (_, n) = m.unknown_required(&known);
            prop_assert!(n <= MAX_UNKNOWN);
        }
    }
}

/// Runs every entry point over `buf`; none may panic.
fn exercise(buf: &[u8]) {
    let _ = looks_like_stun(buf);
    let _ = frame_len(buf, 1500);
    let _ = ChannelData::parse(buf);
    let _ = decode_addr(buf);
    let _ = decode_xor_addr(buf, &TID);
    let _ = decode_u32(buf);
    let _ = decode_error_code(buf);
    if let Ok(m) = Message::parse(buf) {
        for (t, v) in m.attrs() {
            let _ = m.get(t);
            let _ = decode_xor_addr(v, &m.transaction_id());
        }
        let _ = m.unknown_required(&[]);
        let _ = m.check_integrity(b"k");
        let _ = m.check_integrity_sha256(b"k");
        let _ = m.check_fingerprint();
    }
}
