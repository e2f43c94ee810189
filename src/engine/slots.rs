//! The customer records, by slot number, in fixed-size chunks.
//!
//! A record is about 900 bytes and an engine holds one per customer in memory. In one vector,
//! every doubling of its capacity copied all records at once on the core's thread: the event
//! that made the 262,145th customer took 0.76 s (`SLOWEST=1` on `examples/profile_core.rs`),
//! each later doubling twice as long, with three times the table's memory held during the
//! copy. A chunk, once made, never moves: growing makes one more chunk, and a record stays
//! where it was written. (Throughput is the same either way: the pages of a new chunk are
//! zeroed when first written, as the copy's were.)
//!
//! A slot number still names one record for its whole life, and slots are still numbered from
//! zero with no gaps: timers, identity handles and snapshots keep the numbers they had.

use super::customer::Customer;
use std::ops::{Index, IndexMut};

/// log2 of the slots per chunk: 1,024 records, about a megabyte.
const CHUNK_SHIFT: u32 = 10;
const CHUNK: usize = 1 << CHUNK_SHIFT;
const MASK: usize = CHUNK - 1;

/// Customer records by slot; a slot is empty (`None`) once its customer is evicted, until a
/// new customer reuses it.
#[derive(Default)]
pub struct Slots {
    /// Every chunk but the last holds `CHUNK` slots; each is made with room for exactly
    /// `CHUNK` and is never grown past it, so it never reallocates.
    chunks: Vec<Vec<Option<Customer>>>,
}

impl Slots {
    /// `n` empty slots (a restore fills them).
    pub fn empty(n: usize) -> Slots {
        let mut slots = Slots::default();
        for _ in 0..n {
            slots.push(None);
        }
        slots
    }

    /// The number of slots, filled or empty.
    pub fn len(&self) -> usize {
        self.chunks
            .last()
            .map_or(0, |last| (self.chunks.len() - 1) * CHUNK + last.len())
    }

    /// Adds a slot at the end; its number is the previous [`Slots::len`].
    pub fn push(&mut self, record: Option<Customer>) {
        if self.chunks.last().is_none_or(|last| last.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks
            .last_mut()
            .expect("a chunk with room")
            .push(record);
    }

    pub fn get(&self, slot: usize) -> Option<&Option<Customer>> {
        self.chunks.get(slot >> CHUNK_SHIFT)?.get(slot & MASK)
    }

    /// Every slot in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &Option<Customer>> {
        self.chunks.iter().flatten()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Option<Customer>> {
        self.chunks.iter_mut().flatten()
    }
}

impl Index<usize> for Slots {
    type Output = Option<Customer>;

    fn index(&self, slot: usize) -> &Option<Customer> {
        &self.chunks[slot >> CHUNK_SHIFT][slot & MASK]
    }
}

impl IndexMut<usize> for Slots {
    fn index_mut(&mut self, slot: usize) -> &mut Option<Customer> {
        &mut self.chunks[slot >> CHUNK_SHIFT][slot & MASK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::attrs::Attrs;
    use crate::engine::reps::Sym;
    use std::sync::Arc;

    fn record(key: &str) -> Option<Customer> {
        let key: Arc<str> = Arc::from(key);
        let hash = crate::event::customer_id_hash(&key);
        let blank = Attrs {
            region: Sym::NONE,
            industry: Sym::NONE,
            tier: Sym::NONE,
            product_line: Sym::NONE,
            pool: None,
        };
        Some(Customer::new(key, hash, false, 1, blank))
    }

    fn key(slots: &Slots, slot: usize) -> Option<&str> {
        slots[slot].as_ref().map(|c| &*c.key)
    }

    #[test]
    fn slots_keep_their_numbers_and_records_across_chunks() {
        let mut slots = Slots::default();
        let n = 2 * CHUNK + 3;
        for i in 0..n {
            slots.push(record(&format!("C{i}")));
        }
        assert_eq!(slots.len(), n);
        for i in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, n - 1] {
            assert_eq!(key(&slots, i), Some(format!("C{i}").as_str()), "slot {i}");
            assert_eq!(
                slots.get(i).and_then(|c| c.as_ref()).map(|c| &*c.key),
                Some(format!("C{i}").as_str())
            );
        }
        assert!(slots.get(n).is_none());
        let keys: Vec<String> = slots.iter().flatten().map(|c| c.key.to_string()).collect();
        assert_eq!(keys, (0..n).map(|i| format!("C{i}")).collect::<Vec<_>>());
    }

    #[test]
    fn a_record_stays_where_it_was_written_while_slots_are_added() {
        let mut slots = Slots::default();
        slots.push(record("first"));
        let at = slots[0].as_ref().expect("filled") as *const Customer;
        for i in 1..3 * CHUNK {
            slots.push(record(&format!("C{i}")));
        }
        assert_eq!(slots[0].as_ref().expect("filled") as *const Customer, at);
    }

    #[test]
    fn empty_slots_can_be_filled_and_emptied_by_number() {
        let mut slots = Slots::empty(CHUNK + 2);
        assert_eq!(slots.len(), CHUNK + 2);
        assert!(slots.iter().all(Option::is_none));
        slots[CHUNK + 1] = record("C");
        assert_eq!(key(&slots, CHUNK + 1), Some("C"));
        for s in slots.iter_mut() {
            s.take();
        }
        assert!(slots.iter().all(Option::is_none));
        slots.push(record("D"));
        assert_eq!(key(&slots, CHUNK + 2), Some("D"));
    }
}
