//! `Slots<T>`: the one table type of the driver (stream connections,
//! relay sockets).
//!
//! Why not the `slab` crate: relay sockets are filed under the core's
//! `RelayId::slot`, a key the driver does not choose, and `slab` only hands
//! out its own keys. One small type with both `insert` (a free key, reused
//! first) and `insert_at` (a key chosen elsewhere) serves both tables.
//! A table uses one of the two; mixing them is not supported.

/// A vector of optional entries with a free list.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    items: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slots<T> {
    /// Stores `value` under a free key (reusing a freed one first).
    pub(crate) fn insert(&mut self, value: T) -> usize {
        match self.free.pop() {
            Some(k) => {
                self.items[k] = Some(value);
                k
            }
            None => {
                self.items.push(Some(value));
                self.items.len() - 1
            }
        }
    }

    /// Stores `value` under `key` (chosen by the caller), replacing any entry.
    pub(crate) fn insert_at(&mut self, key: usize, value: T) {
        if self.items.len() <= key {
            self.items.resize_with(key + 1, || None);
        }
        self.items[key] = Some(value);
    }

    #[inline]
    pub(crate) fn get(&self, key: usize) -> Option<&T> {
        self.items.get(key).and_then(Option::as_ref)
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        self.items.get_mut(key).and_then(Option::as_mut)
    }

    /// Takes the entry out; its key becomes free for [`Self::insert`].
    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        let v = self.items.get_mut(key)?.take()?;
        self.free.push(key);
        Some(v)
    }

    /// Takes out an entry stored with [`Self::insert_at`]: the key stays
    /// the caller's to reuse, so it does not go on the free list.
    pub(crate) fn remove_at(&mut self, key: usize) -> Option<T> {
        self.items.get_mut(key)?.take()
    }

    /// The keys in use.
    pub(crate) fn keys(&self) -> impl Iterator<Item = usize> + '_ {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(k, v)| v.as_ref().map(|_| k))
    }

    /// Entries with their keys.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_reuses_freed_keys_and_remove_is_once() {
        let mut s = Slots::default();
        assert_eq!(s.insert("a"), 0);
        assert_eq!(s.insert("b"), 1);
        assert_eq!(s.remove(0), Some("a"));
        assert_eq!(s.remove(0), None);
        assert_eq!(s.insert("c"), 0);
        assert_eq!(s.keys().collect::<Vec<_>>(), [0, 1]);
        assert_eq!(s.get(1), Some(&"b"));
        assert_eq!(s.get(9), None);
    }

    #[test]
    fn insert_at_grows_and_replaces() {
        let mut s = Slots::default();
        s.insert_at(5, 1);
        assert_eq!(s.get(5), Some(&1));
        assert_eq!(s.get(4), None);
        s.insert_at(5, 2);
        *s.get_mut(5).unwrap() += 1;
        assert_eq!(s.iter().collect::<Vec<_>>(), [(5, &3)]);
        assert_eq!(s.remove_at(5), Some(3));
        assert!(s.free.is_empty());
    }
}
