//! Codec micro-benchmarks: STUN parse/write (Binding; Allocate with
//! MESSAGE-INTEGRITY written and checked), FINGERPRINT, ChannelData parse.
//!
//! `cargo bench --bench codec`

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use tern::proto::auth::LongTermKey;
use tern::proto::channel_data::{ChannelData, ChannelNumber, write_header};
use tern::proto::stun::{
    AttrType, Class, Message, MessageType, MessageWriter, Method, TransactionId,
};

const TID: TransactionId = TransactionId([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);

fn binding_request() -> Vec<u8> {
    let mut out = Vec::new();
    MessageWriter::new(
        &mut out,
        MessageType::new(Method::BINDING, Class::Request),
        TID,
    )
    .push_fingerprint();
    out
}

fn allocate_request(key: &LongTermKey, sha256: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = MessageWriter::new(
        &mut out,
        MessageType::new(Method::ALLOCATE, Class::Request),
        TID,
    );
    w.push(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
        .push_u32(AttrType::LIFETIME, 600)
        .push(AttrType::USERNAME, b"alice")
        .push(AttrType::REALM, b"tern")
        .push(AttrType::NONCE, &[0x6e; 36]);
    if sha256 {
        w.push_integrity_sha256(&key.0);
    } else {
        w.push_integrity(&key.0);
    }
    w.push_fingerprint();
    out
}

fn bench(c: &mut Criterion) {
    let key = LongTermKey::derive("alice", "tern", "secret");
    let client: SocketAddr = "198.51.100.7:40000".parse().unwrap();

    let binding = binding_request();
    c.bench_function("stun/parse_binding_request", |b| {
        b.iter(|| Message::parse(black_box(&binding)).unwrap().class())
    });
    c.bench_function("stun/parse_binding_request+fingerprint", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(&binding)).unwrap();
            m.check_fingerprint().unwrap();
        })
    });
    let mut out = Vec::with_capacity(128);
    c.bench_function("stun/write_binding_response", |b| {
        b.iter(|| {
            MessageWriter::new(
                &mut out,
                MessageType::new(Method::BINDING, Class::Success),
                TID,
            )
            .push_xor_addr(AttrType::XOR_MAPPED_ADDRESS, black_box(client))
            .push_fingerprint()
            .len()
        })
    });

    let alloc = allocate_request(&key, false);
    c.bench_function("stun/parse_allocate+check_integrity_sha1", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(&alloc)).unwrap();
            m.check_integrity(&key.0).unwrap();
        })
    });
    let alloc256 = allocate_request(&key, true);
    c.bench_function("stun/parse_allocate+check_integrity_sha256", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(&alloc256)).unwrap();
            m.check_integrity_sha256(&key.0).unwrap();
        })
    });
    c.bench_function("stun/write_allocate+integrity_sha1", |b| {
        b.iter(|| allocate_request(black_box(&key), false))
    });
    c.bench_function("auth/long_term_key_md5", |b| {
        b.iter(|| LongTermKey::derive(black_box("alice"), "tern", "secret"))
    });

    for size in [100usize, 1200] {
        let ch = ChannelNumber::new(0x4000).unwrap();
        let mut cd = write_header(ch, size as u16).to_vec();
        cd.resize(4 + size, 0xA5);
        c.bench_function(&format!("channel_data/parse_{size}B"), |b| {
            b.iter(|| ChannelData::parse(black_box(&cd)).unwrap().payload.len())
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
