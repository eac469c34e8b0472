//! Arbitrary text as a tern config file: parse and resolve never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern::cmd::serve::SystemHost;
use tern::config::{FileConfig, Overrides};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(file) = FileConfig::from_toml(text, "fuzz.toml") {
        let _ = file.resolve(&Overrides::default(), &SystemHost::with_nonce_key([0; 32]));
    }
});
