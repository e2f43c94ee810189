//! Customer key → slot, looked up by a 64-bit hash of the key.
//!
//! A map keyed by `Arc<str>` compares strings on every hit, and the string lives in its own
//! allocation: one more cache miss per event. Here the table holds the key's XXH3 hash; a key
//! whose hash is already taken by a *different* key (checked by comparing strings when it is
//! inserted) goes to a small side map, so every key that was inserted is found exactly.
//!
//! A key that was *never* inserted and whose hash equals an inserted key's is taken for that key:
//! the hit is not checked against the stored string (that check is the cache miss this index
//! avoids). With n keys the chance is n/2⁶⁴ per look-up of an unknown key (about 5·10⁻¹⁵ at
//! 100,000 customers).
//!
//! The table is open addressing with linear probing, written here rather than taken from a map
//! crate for one reason: a key's bucket follows from its hash alone, so a driver that knows the
//! hash of a coming event's customer id can start loading that bucket a few events ahead
//! ([`KeyIndex::prefetch`]). With a general hash map the look-up waited for two dependent cache
//! misses (its control bytes, then the entry) on every event. A bucket is 16 bytes (hash and
//! slot), four to a cache line; the keys themselves sit in a parallel array that only inserts and
//! removals read.

use rustc_hash::FxHashMap;
use std::sync::Arc;

use crate::event::customer_id_hash as hash;

/// A bucket: a key's hash and its slot, or `EMPTY`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    hash: u64,
    slot: u32,
}

/// No customer slot gets this number (slots are indices of a vector of records).
const EMPTY: u32 = u32::MAX;
const FREE: Bucket = Bucket {
    hash: 0,
    slot: EMPTY,
};

/// The size of the first table; it doubles from there.
const MIN_BUCKETS: usize = 64;

#[derive(Debug, Default)]
pub struct KeyIndex {
    /// Power-of-two length (or empty).
    buckets: Vec<Bucket>,
    /// The key in each bucket, for exact inserts and removals.
    keys: Vec<Option<Arc<str>>>,
    len: usize,
    collided: FxHashMap<Arc<str>, u32>,
}

impl KeyIndex {
    pub fn get(&self, key: &str) -> Option<u32> {
        self.get_hashed(key, hash(key))
    }

    /// [`KeyIndex::get`] for a key whose hash is known ([`crate::event::Event::customer_id_hash`]).
    pub fn get_hashed(&self, key: &str, h: u64) -> Option<u32> {
        if !self.collided.is_empty() {
            if let Some(&slot) = self.collided.get(key) {
                return Some(slot);
            }
        }
        self.find(h).map(|i| self.buckets[i].slot)
    }

    /// A hint with no effect: starts loading the bucket where a key of hash `h` is looked up.
    pub fn prefetch(&self, h: u64) {
        if let Some(b) = self.buckets.get(self.home(h)) {
            super::prefetch::lines(b);
        }
    }

    /// Inserts `key`, whose hash ([`crate::event::customer_id_hash`]) is `h`.
    pub fn insert(&mut self, key: Arc<str>, h: u64, slot: u32) {
        debug_assert_eq!(h, hash(&key));
        if let Some(i) = self.find(h) {
            if self.keys[i].as_deref() == Some(&*key) {
                self.buckets[i].slot = slot;
            } else {
                self.collided.insert(key, slot);
            }
            return;
        }
        // Never more than half full: linear probing stays short (about 1.5 buckets for a hit,
        // 2.5 for a miss), and those buckets are almost always in the same cache line.
        if (self.len + 1) * 2 > self.buckets.len() {
            self.grow();
        }
        self.place(Bucket { hash: h, slot }, key);
        self.len += 1;
    }

    pub fn remove(&mut self, key: &str) {
        if self.collided.remove(key).is_some() {
            return;
        }
        if let Some(i) = self.find(hash(key)) {
            if self.keys[i].as_deref() == Some(key) {
                self.remove_at(i);
                self.len -= 1;
            }
        }
    }

    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    fn home(&self, h: u64) -> usize {
        h as usize & self.mask()
    }

    /// The bucket holding hash `h`.
    fn find(&self, h: u64) -> Option<usize> {
        if self.buckets.is_empty() {
            return None;
        }
        let mut i = self.home(h);
        loop {
            let b = self.buckets[i];
            if b.slot == EMPTY {
                return None;
            }
            if b.hash == h {
                return Some(i);
            }
            i = (i + 1) & self.mask();
        }
    }

    /// Puts an entry whose hash is not in the table into the first free bucket of its run.
    fn place(&mut self, b: Bucket, key: Arc<str>) {
        let mut i = self.home(b.hash);
        while self.buckets[i].slot != EMPTY {
            i = (i + 1) & self.mask();
        }
        self.buckets[i] = b;
        self.keys[i] = Some(key);
    }

    fn grow(&mut self) {
        let size = (self.buckets.len() * 2).max(MIN_BUCKETS);
        let old = std::mem::replace(&mut self.buckets, vec![FREE; size]);
        let old_keys = std::mem::replace(&mut self.keys, vec![None; size]);
        for (b, key) in old.into_iter().zip(old_keys) {
            if let Some(key) = key {
                self.place(b, key);
            }
        }
    }

    /// Empties bucket `i`, moving later entries of the run back so that every entry stays
    /// reachable from its home bucket without gaps (no tombstones to skip or clean up).
    fn remove_at(&mut self, mut i: usize) {
        let mask = self.mask();
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            if self.buckets[j].slot == EMPTY {
                break;
            }
            let home = self.home(self.buckets[j].hash);
            // The entry at j may move to i unless its home lies cyclically in (i, j].
            let stays = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !stays {
                self.buckets[i] = self.buckets[j];
                self.keys[i] = self.keys[j].take();
                i = j;
            }
        }
        self.buckets[i] = FREE;
        self.keys[i] = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn lookups_are_exact_even_when_hashes_collide() {
        let mut ix = KeyIndex::default();
        ix.insert(Arc::from("C1"), hash("C1"), 1);
        // Force a collision: put a different key under C1's hash.
        let i = ix.find(hash("C1")).unwrap();
        ix.keys[i] = Some(Arc::from("other"));
        ix.buckets[i].slot = 7;
        ix.insert(Arc::from("C1"), hash("C1"), 1);
        assert_eq!(ix.get("C1"), Some(1));
        assert_eq!(ix.get("C2"), None);
        ix.remove("C1");
        assert_eq!(ix.get("C1"), Some(7), "falls back to the primary entry");
        ix.remove("other");
        assert_eq!(ix.get("other"), None);
    }

    proptest! {
        /// Any sequence of inserts and removals leaves the index agreeing with a map: every
        /// key present is found with its newest slot, every removed key is gone. Few distinct
        /// keys and a small table make long runs and wrapped runs common.
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec((any::<bool>(), 0u32..200, any::<u32>()), 0..600)) {
            let mut ix = KeyIndex::default();
            let mut model: HashMap<String, u32> = HashMap::new();
            for (insert, k, slot) in ops {
                let key = format!("C{k}");
                if insert {
                    ix.insert(Arc::from(key.as_str()), hash(&key), slot);
                    model.insert(key, slot);
                } else {
                    ix.remove(&key);
                    model.remove(&key);
                }
                prop_assert_eq!(ix.len, model.len());
            }
            for k in 0..200 {
                let key = format!("C{k}");
                prop_assert_eq!(ix.get(&key), model.get(&key).copied(), "{}", key);
            }
        }
    }

    /// Runs that wrap past the end of the table, and removals inside them.
    #[test]
    fn removal_keeps_wrapped_runs_reachable() {
        let mut ix = KeyIndex::default();
        // Find keys whose home is the last bucket of a fresh 64-bucket table.
        let keys: Vec<String> = (0..100_000)
            .map(|k| format!("K{k}"))
            .filter(|k| hash(k) as usize & (MIN_BUCKETS - 1) == MIN_BUCKETS - 1)
            .take(5)
            .collect();
        for (slot, k) in keys.iter().enumerate() {
            ix.insert(Arc::from(k.as_str()), hash(k), slot as u32);
        }
        assert_eq!(ix.buckets.len(), MIN_BUCKETS);
        ix.remove(&keys[1]);
        for (slot, k) in keys.iter().enumerate().filter(|(i, _)| *i != 1) {
            assert_eq!(ix.get(k), Some(slot as u32), "{k}");
        }
        assert_eq!(ix.get(&keys[1]), None);
    }
}
