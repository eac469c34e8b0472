//! Arbitrary bytes into the stream framer; the length it reports must be
//! consistent with the 4-byte prefix and the maximum.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern::proto::framing::frame_len;

fuzz_target!(|data: &[u8]| {
    // The first two bytes choose the maximum so TooLong is exercised too.
    let max = match data {
        [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
        _ => 0,
    };
    let rest = data.get(2..).unwrap_or(&[]);
    if let Ok(Some(n)) = frame_len(rest, max) {
        assert!(n >= 4 && n <= max);
    }
});
