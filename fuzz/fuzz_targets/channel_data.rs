//! Arbitrary bytes into the ChannelData parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern::proto::channel_data::ChannelData;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = ChannelData::parse(data) {
        assert!(d.payload.len() + 4 <= data.len());
        assert!((0x4000..=0x7FFF).contains(&d.channel.get()));
    }
});
