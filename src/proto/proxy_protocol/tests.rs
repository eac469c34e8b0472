//! Valid v1/v2 headers from the spec's examples, and hostile ones: every
//! prefix of a valid header is `Incomplete`, nothing panics, nothing asks
//! for more than `MAX_HEADER_LEN` bytes.

use super::*;

fn v2(ver_cmd: u8, family: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(ver_cmd);
    h.push(family);
    h.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn header(buf: &[u8]) -> Header {
    match parse(buf) {
        Ok(Parsed::Header(h)) => h,
        other => panic!("{other:?} for {buf:02x?}"),
    }
}

#[test]
fn v1_tcp4_and_tcp6() {
    let line = b"PROXY TCP4 203.0.113.7 192.0.2.1 5555 3478\r\nSTUN";
    let h = header(line);
    assert_eq!(h.len, line.len() - 4);
    assert_eq!(h.source, Some("203.0.113.7:5555".parse().unwrap()));
    assert_eq!(h.destination, Some("192.0.2.1:3478".parse().unwrap()));

    let h = header(b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n");
    assert_eq!(h.source, Some("[2001:db8::1]:65535".parse().unwrap()));
    assert_eq!(h.destination, Some("[2001:db8::2]:0".parse().unwrap()));
}

#[test]
fn v1_unknown_means_use_the_connection_address() {
    for line in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY UNKNOWN ffff::1 ::1 1 2\r\n",
    ] {
        let h = header(line);
        assert_eq!((h.len, h.source, h.destination), (line.len(), None, None));
    }
}

#[test]
fn v2_proxy_tcp4_with_tlv() {
    let mut p = vec![203, 0, 113, 7, 192, 0, 2, 1];
    p.extend_from_slice(&5555u16.to_be_bytes());
    p.extend_from_slice(&3478u16.to_be_bytes());
    p.extend_from_slice(&[0x04, 0x00, 0x01, 0xAA]); // PP2_TYPE_NOOP TLV, ignored
    let mut buf = v2(0x21, 0x11, &p);
    let len = buf.len();
    buf.extend_from_slice(b"rest");
    let h = header(&buf);
    assert_eq!(h.len, len);
    assert_eq!(h.source, Some("203.0.113.7:5555".parse().unwrap()));
}

#[test]
fn v2_proxy_tcp6_and_local() {
    let mut p = Vec::new();
    p.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
    p.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    p.extend_from_slice(&1234u16.to_be_bytes());
    p.extend_from_slice(&443u16.to_be_bytes());
    let h = header(&v2(0x21, 0x21, &p));
    assert_eq!(h.source, Some("[2001:db8::7]:1234".parse().unwrap()));

    // LOCAL (health check): addresses, if any, are ignored.
    let h = header(&v2(0x20, 0x11, &[1; 12]));
    assert_eq!((h.source, h.len), (None, 28));
    // UNSPEC and AF_UNIX carry no IP: use the connection's address.
    assert_eq!(header(&v2(0x21, 0x00, &[])).source, None);
    assert_eq!(header(&v2(0x21, 0x31, &[0; 216])).source, None);
}

#[test]
fn every_prefix_of_a_valid_header_is_incomplete() {
    let v1 = b"PROXY TCP4 203.0.113.7 192.0.2.1 5555 3478\r\n".to_vec();
    let v2h = v2(0x21, 0x11, &[1; 12]);
    for h in [v1, v2h] {
        for n in 0..h.len() {
            assert_eq!(
                parse(&h[..n]),
                Ok(Parsed::Incomplete),
                "prefix {n} of {h:02x?}"
            );
        }
        assert!(matches!(parse(&h), Ok(Parsed::Header(_))));
    }
}

#[test]
fn not_a_header() {
    // A STUN Binding request, a TLS ClientHello start, ChannelData.
    for buf in [
        &[0x00, 0x01, 0x00, 0x00, 0x21, 0x12][..],
        &[0x16, 0x03, 0x01],
        &[0x40, 0x00],
    ] {
        assert_eq!(parse(buf), Err(ProxyError::NoSignature));
        assert_eq!(starts_like_header(buf), Some(false));
    }
    assert_eq!(starts_like_header(b"PRO"), None);
    assert_eq!(starts_like_header(&V2_SIGNATURE[..5]), None);
    assert_eq!(starts_like_header(b"PROXY "), Some(true));
    assert_eq!(starts_like_header(&V2_SIGNATURE), Some(true));
}

#[test]
fn hostile_v1_lines() {
    let bad: &[&[u8]] = &[
        b"PROXY TCP4 203.0.113.7 192.0.2.1 5555\r\n", // missing port
        b"PROXY TCP4 203.0.113.7 192.0.2.1 5555 3478 9\r\n", // trailing field
        b"PROXY TCP4 2001:db8::1 192.0.2.1 5555 3478\r\n", // v6 in TCP4
        b"PROXY TCP6 203.0.113.7 2001:db8::1 5555 3478\r\n", // v4 in TCP6
        b"PROXY TCP4 203.0.113.7 192.0.2.1 65536 3478\r\n", // port overflow
        b"PROXY TCP4 203.0.113.7 192.0.2.1 05555 3478\r\n", // leading zero
        b"PROXY TCP4 203.0.113.7 192.0.2.1 +555 3478\r\n", // sign
        b"PROXY TCP4 203.0.113.7  192.0.2.1 5555 3478\r\n", // double space
        b"PROXY UDP4 203.0.113.7 192.0.2.1 5555 3478\r\n", // not TCP
        b"PROXY TCP4 203.0.113.7 192.0.2.1 5555 3478\n", // bare LF
        b"PROXY TCP4 \xff\xfe 192.0.2.1 5555 3478\r\n", // not UTF-8
        b"PROXY \r\n",                                // empty
    ];
    for line in bad {
        assert!(
            matches!(parse(line), Err(ProxyError::V1Malformed(_))),
            "{:?} -> {:?}",
            String::from_utf8_lossy(line),
            parse(line)
        );
    }
    // No CRLF within 107 bytes: refused, not buffered forever.
    let mut long = b"PROXY UNKNOWN ".to_vec();
    long.resize(V1_MAX_LEN, b'x');
    assert_eq!(parse(&long), Err(ProxyError::V1TooLong));
    long.extend_from_slice(b"\r\n");
    assert_eq!(parse(&long), Err(ProxyError::V1TooLong));
    long.truncate(V1_MAX_LEN - 1);
    assert_eq!(parse(&long), Ok(Parsed::Incomplete));
}

#[test]
fn hostile_v2_headers() {
    assert_eq!(
        parse(&v2(0x11, 0x11, &[0; 12])),
        Err(ProxyError::V2Version(1))
    );
    assert_eq!(
        parse(&v2(0x22, 0x11, &[0; 12])),
        Err(ProxyError::V2Command(2))
    );
    assert_eq!(
        parse(&v2(0x21, 0x11, &[0; 11])),
        Err(ProxyError::V2Truncated {
            family: 0x11,
            needed: 12,
            got: 11
        })
    );
    assert_eq!(
        parse(&v2(0x21, 0x21, &[0; 12])),
        Err(ProxyError::V2Truncated {
            family: 0x21,
            needed: 36,
            got: 12
        })
    );
    // A huge announced length is refused from the fixed part alone.
    let mut huge = V2_SIGNATURE.to_vec();
    huge.extend_from_slice(&[0x21, 0x11, 0xFF, 0xFF]);
    assert_eq!(parse(&huge), Err(ProxyError::V2TooLong(16 + 0xFFFF)));
    // Just within the limit is fine once complete.
    let ok = v2(0x21, 0x11, &vec![0; V2_MAX_PAYLOAD]);
    assert_eq!(ok.len(), MAX_HEADER_LEN);
    assert!(matches!(parse(&ok), Ok(Parsed::Header(_))));
    assert_eq!(parse(&ok[..ok.len() - 1]), Ok(Parsed::Incomplete));
}

proptest::proptest! {
    #[test]
    fn never_panics_and_lengths_are_bounded(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        if let Ok(Parsed::Header(h)) = parse(&data) {
            proptest::prop_assert!(h.len <= data.len() && h.len <= MAX_HEADER_LEN);
        }
        let mut with_sig = V2_SIGNATURE.to_vec();
        with_sig.extend_from_slice(&data);
        if let Ok(Parsed::Header(h)) = parse(&with_sig) {
            proptest::prop_assert!(h.len <= with_sig.len());
        }
        let mut v1 = V1_PREFIX.to_vec();
        v1.extend_from_slice(&data);
        let _ = parse(&v1);
    }
}
