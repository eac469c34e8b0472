#!/usr/bin/env sh
# Runs every fuzz target for N seconds (default 20).
#
#   fuzz/run.sh [SECONDS]
#
# cargo-fuzz needs nightly for `-Zsanitizer`; RUSTC_BOOTSTRAP=1 lets the
# stable toolchain accept it. One target by hand:
#
#   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run stun_parse -- -max_total_time=20
#
# New inputs go to fuzz/target/corpus/<target> (ignored by git); the
# committed seeds in fuzz/corpus/<target> are only read.
set -eu
secs="${1:-20}"
cd "$(dirname "$0")"
for t in stun_parse channel_data frame_len server_input config_toml proxy_protocol; do
    mkdir -p "target/corpus/$t"
    echo "== $t (${secs}s)"
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "target/corpus/$t" "corpus/$t" -- \
        -max_total_time="$secs"
done
