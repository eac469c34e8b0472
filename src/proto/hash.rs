//! The core's hash maps: foldhash, seeded from the shard's key.
//!
//! `std`'s `HashMap::new()` hashes with SipHash-1-3 under keys drawn from
//! the OS: slow on the relay path (every ChannelData looks its 5-tuple up)
//! and a hidden source of randomness in a core that takes all of its
//! randomness as arguments. Maps keyed by what a client chooses (its
//! address, a transaction id) use [`keyed`], seeded from the shard key, so
//! nobody who does not know the key can aim keys at one bucket; maps keyed
//! only by the operator's own data (user names from the config) use
//! [`Map::default`], a fixed seed.

use std::collections::HashMap;

use foldhash::fast::FixedState;

/// A hash map under a seeded foldhash.
pub type Map<K, V> = HashMap<K, V, FixedState>;

/// An empty map whose hash is seeded with `seed` (secret, from the shard key).
pub fn keyed<K, V>(seed: u64) -> Map<K, V> {
    HashMap::with_hasher(FixedState::with_seed(seed))
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn the_seed_changes_where_keys_land() {
        let a: Map<u64, ()> = keyed(1);
        let b: Map<u64, ()> = keyed(2);
        assert_ne!(a.hasher().hash_one(42u64), b.hasher().hash_one(42u64));
        // Deterministic for one seed: the core stays reproducible.
        let c: Map<u64, ()> = keyed(1);
        assert_eq!(a.hasher().hash_one(42u64), c.hasher().hash_one(42u64));
    }
}
