//! Text → value, found by the text's 64-bit digest ([`crate::digest::text`]).
//!
//! The core looks up the identifiers and rep ids of every event. A map keyed by the text
//! compares it with the stored key on every hit, and the stored key lives in its own
//! allocation: one more cache miss per look-up. The events arrive with these digests already
//! computed by whoever parsed them ([`crate::event::Event::compute_digests`]), so a look-up here
//! is a probe for a `u64`, and the stored text is read only by inserts and removals.
//!
//! Inserts, changes and removals are exact: they compare the text, and a text whose digest a
//! different text already has is kept by text in a small side map. A plain look-up
//! ([`DigestMap::get`]) of a text that was never inserted but whose digest equals an inserted
//! one's is taken for that one: with n entries, a chance of n/2⁶⁴ per look-up (5·10⁻¹⁵ at
//! 100,000), as for customer ids in `engine::keys`.

use rustc_hash::FxHashMap;

/// A text with its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digested<'a> {
    pub text: &'a str,
    pub digest: u64,
}

impl<'a> Digested<'a> {
    pub fn new(text: &'a str) -> Self {
        Digested {
            text,
            digest: crate::digest::text(text),
        }
    }
}

#[derive(Debug)]
pub struct DigestMap<V> {
    /// Keyed by `digest` (an XXH3 digest is already uniform: it is the table's hash).
    table: hashbrown::HashTable<Entry<V>>,
    /// Texts whose digest a different text in `table` already has.
    collided: FxHashMap<Box<str>, V>,
}

#[derive(Debug)]
struct Entry<V> {
    digest: u64,
    text: Box<str>,
    value: V,
}

impl<V> Default for DigestMap<V> {
    fn default() -> Self {
        DigestMap {
            table: hashbrown::HashTable::new(),
            collided: FxHashMap::default(),
        }
    }
}

impl<V> DigestMap<V> {
    /// The value of `key`, or of a text with its digest (see the module docs).
    pub fn get(&self, key: Digested<'_>) -> Option<&V> {
        if !self.collided.is_empty() {
            if let Some(v) = self.collided.get(key.text) {
                return Some(v);
            }
        }
        self.table
            .find(key.digest, |e| e.digest == key.digest)
            .map(|e| &e.value)
    }

    /// The value of exactly `key`.
    pub fn get_mut(&mut self, key: Digested<'_>) -> Option<&mut V> {
        if !self.collided.is_empty() {
            if let Some(v) = self.collided.get_mut(key.text) {
                return Some(v);
            }
        }
        self.table
            .find_mut(key.digest, |e| {
                e.digest == key.digest && *e.text == *key.text
            })
            .map(|e| &mut e.value)
    }

    /// The value of exactly `key`, made by `make` and inserted if `key` is not there yet; and
    /// whether it was inserted. One probe of the table in the usual cases.
    pub fn get_or_insert_with(
        &mut self,
        key: Digested<'_>,
        make: impl FnOnce() -> V,
    ) -> (&mut V, bool) {
        if !self.collided.is_empty() && self.collided.contains_key(key.text) {
            let v = self.collided.get_mut(key.text).expect("just found");
            return (v, false);
        }
        match self
            .table
            .entry(key.digest, |e| e.digest == key.digest, |e| e.digest)
        {
            hashbrown::hash_table::Entry::Occupied(e) if *e.get().text == *key.text => {
                (&mut e.into_mut().value, false)
            }
            // Another text has this digest: this one is kept by text.
            hashbrown::hash_table::Entry::Occupied(_) => {
                let v = self.collided.entry(key.text.into()).or_insert_with(make);
                (v, true)
            }
            hashbrown::hash_table::Entry::Vacant(e) => {
                let e = e.insert(Entry {
                    digest: key.digest,
                    text: key.text.into(),
                    value: make(),
                });
                (&mut e.into_mut().value, true)
            }
        }
    }

    /// Sets the value of exactly `key`.
    pub fn insert(&mut self, key: Digested<'_>, value: V) {
        let mut value = Some(value);
        let (v, inserted) = self.get_or_insert_with(key, || value.take().expect("once"));
        if !inserted {
            *v = value.take().expect("not used by an insert");
        }
    }

    /// Removes exactly `key`.
    pub fn remove(&mut self, key: Digested<'_>) {
        if self.collided.remove(key.text).is_some() {
            return;
        }
        if let Ok(e) = self.table.find_entry(key.digest, |e| {
            e.digest == key.digest && *e.text == *key.text
        }) {
            e.remove();
        }
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.table
            .iter()
            .map(|e| (&*e.text, &e.value))
            .chain(self.collided.iter().map(|(t, v)| (&**t, v)))
    }

    pub fn len(&self) -> usize {
        self.table.len() + self.collided.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn texts_with_the_same_digest_are_kept_apart_by_inserts_and_removals() {
        let mut m = DigestMap::default();
        let a = Digested::new("+8613800138000");
        // A different text given the same digest, as a digest collision would.
        let b = Digested {
            text: "+8613900139000",
            ..a
        };
        m.insert(a, 1);
        assert_eq!(m.get_mut(b), None, "exact: b was never inserted");
        // A plain look-up trusts the digest.
        assert_eq!(m.get(b), Some(&1));
        m.insert(b, 2);
        assert_eq!(m.get_mut(a), Some(&mut 1));
        assert_eq!(m.get_mut(b), Some(&mut 2));
        assert_eq!((m.get(a), m.get(b)), (Some(&1), Some(&2)));
        assert_eq!(m.len(), 2);
        m.insert(a, 3);
        assert_eq!(m.get(a), Some(&3));
        let mut all: Vec<_> = m.iter().collect();
        all.sort();
        assert_eq!(all, [("+8613800138000", &3), ("+8613900139000", &2)]);
        m.remove(b);
        assert_eq!(m.get_mut(b), None);
        assert_eq!(m.len(), 1);
        m.remove(a);
        assert!(m.is_empty());
    }

    #[test]
    fn removing_a_text_never_inserted_changes_nothing() {
        let mut m = DigestMap::default();
        let a = Digested::new("C1");
        m.insert(a, 1);
        m.remove(Digested { text: "C2", ..a });
        assert_eq!(m.get_mut(a), Some(&mut 1));
    }

    proptest! {
        /// Any sequence of inserts and removals leaves the map agreeing with a `HashMap` for
        /// every text that is stored, even when many texts share a digest: here a text's digest
        /// is its number modulo 4, so collisions are the rule.
        #[test]
        fn agrees_with_a_map_when_digests_collide(
            ops in proptest::collection::vec((any::<bool>(), 0u64..40, any::<u32>()), 0..300)
        ) {
            let texts: Vec<String> = (0..40).map(|k| format!("+86138{k:08}")).collect();
            let key = |k: u64| Digested { text: &texts[k as usize], digest: k % 4 };
            let mut m = DigestMap::default();
            let mut model: HashMap<u64, u32> = HashMap::new();
            for (insert, k, v) in ops {
                if insert {
                    m.insert(key(k), v);
                    model.insert(k, v);
                } else {
                    m.remove(key(k));
                    model.remove(&k);
                }
                prop_assert_eq!(m.len(), model.len());
            }
            for k in 0..40 {
                prop_assert_eq!(m.get_mut(key(k)).copied(), model.get(&k).copied(), "{}", k);
                if let Some(v) = model.get(&k) {
                    prop_assert_eq!(m.get(key(k)), Some(v), "a stored text is found exactly");
                }
            }
            let mut all: Vec<(String, u32)> = m.iter().map(|(t, v)| (t.to_string(), *v)).collect();
            all.sort();
            let mut expected: Vec<(String, u32)> =
                model.iter().map(|(k, v)| (texts[*k as usize].clone(), *v)).collect();
            expected.sort();
            prop_assert_eq!(all, expected);
        }
    }
}
