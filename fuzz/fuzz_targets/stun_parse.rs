//! Arbitrary bytes into the STUN parser and every query on the view.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern::proto::stun::{
    AttrType, Message, decode_addr, decode_error_code, decode_u32, decode_xor_addr, looks_like_stun,
};

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_stun(data);
    let Ok(m) = Message::parse(data) else {
        return;
    };
    assert_eq!(m.as_bytes().len(), data.len());
    let tid = m.transaction_id();
    for (t, v) in m.attrs() {
        assert!(m.get(t).is_some());
        let _ = decode_xor_addr(v, &tid);
        let _ = decode_addr(v);
        let _ = decode_u32(v);
        let _ = decode_error_code(v);
        let _ = tern::proto::auth::PasswordAlgorithm::decode(v);
    }
    let (_, n) = m.unknown_required(&[AttrType::USERNAME, AttrType::REALM, AttrType::NONCE]);
    assert!(n <= tern::proto::stun::MAX_UNKNOWN);
    let _ = m.check_integrity(b"key");
    let _ = m.check_integrity_sha256(b"key");
    let _ = m.check_fingerprint();
});
