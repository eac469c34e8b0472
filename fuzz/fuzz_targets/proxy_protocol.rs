//! Arbitrary bytes into the PROXY protocol parser: it must never panic,
//! and a header it accepts must fit in the input and in `MAX_HEADER_LEN`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern::proto::proxy_protocol::{MAX_HEADER_LEN, Parsed, parse, starts_like_header};

fuzz_target!(|data: &[u8]| {
    let _ = starts_like_header(data);
    match parse(data) {
        Ok(Parsed::Header(h)) => assert!(h.len <= data.len() && h.len <= MAX_HEADER_LEN),
        // Incomplete is only ever said below the bound.
        Ok(Parsed::Incomplete) => assert!(data.len() < MAX_HEADER_LEN),
        Err(_) => {}
    }
});
