//! Timers as data: deadlines with (customer slot, generation, kind), fired in deadline order.
//!
//! Deadlines are in *watermark* time (the newest event time minus the allowed lateness), so a
//! timer never fires while an on-time event could still arrive before its deadline. A slot's
//! generation changes when the slot is reused, so a timer of an evicted customer is ignored.
//! Timers are never cancelled: a stale one is recognised and skipped when it fires.
//!
//! The table is a coarse timing wheel ([`Wheel`], also used for the lifecycle's deadlines):
//! deadlines are grouped in buckets of about an hour, each sorted when it comes due (unless it
//! was filled in order: then it is only turned round, see [`push_in_order`]). The earliest
//! bucket is kept apart from the later ones, so peeking and popping (several times per event)
//! take no look-up. The later buckets are found by number in a hash map (a push is one probe;
//! an ordered map searched its nodes on every push, several percent of the core's time), and
//! their numbers are kept in order apart, touched only when a bucket is made or used up.
//! Pushing and popping touch one small vector instead of walking a heap of every customer's
//! timer (which missed cache on each level).

use crate::time::Timestamp;
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// Fold old log entries into the base state, and evict the customer when nothing is left.
    Housekeeping,
}

/// A housekeeping timer: (slot, generation, kind), due at its wheel time.
pub type Timer = (u32, u32, TimerKind);

/// log2 of the default bucket width in milliseconds (2^22 ms ≈ 70 minutes).
const BUCKET_SHIFT: u32 = 22;

/// A coarse timing wheel of `(time, item)` entries, popped in `(time, item)` order.
///
/// Used for housekeeping timers, the lifecycle's deadlines and the events waiting for the
/// watermark: all are pushed far more often than they act (most timers are stale when due), so
/// pushing must be cheap and must not grow a structure that every pop walks.
///
/// `SHIFT` is log2 of the bucket width in milliseconds. An entry scheduled into the first
/// bucket once it is due is inserted in order (a move of the bucket's tail), so the width
/// should keep most new entries out of the bucket being drained.
#[derive(Debug)]
pub struct Wheel<T, const SHIFT: u32 = BUCKET_SHIFT> {
    /// The earliest bucket, kept out of the map so that peeking, popping and scheduling into
    /// it take no map look-up: its number and entries. Once due it is kept sorted in
    /// *descending* order, so the earliest entry pops from the end.
    front: Option<(i64, Vec<(Timestamp, T)>)>,
    /// The order `front`'s entries are in.
    front_order: Order,
    /// The later buckets, by number; all after `front`'s (empty when `front` is `None`). Each
    /// with whether its entries are still in ascending order (see [`push_in_order`]).
    later: FxHashMap<i64, (Vec<(Timestamp, T)>, bool)>,
    /// The numbers of the buckets in `later`, earliest on top.
    order: BinaryHeap<Reverse<i64>>,
    len: usize,
    /// Emptied buckets kept for reuse: a new bucket would otherwise grow from nothing, a
    /// reallocation and copy at every doubling.
    spare: Vec<Vec<(Timestamp, T)>>,
    /// Room for [`sort_descending`]'s passes, kept between sorts.
    scratch: Vec<(Timestamp, T)>,
}

/// How many emptied buckets a wheel keeps, and the largest it keeps (in entries): enough for
/// the buckets in use at once, without holding on to the memory of a burst.
const SPARE_BUCKETS: usize = 8;
const SPARE_CAPACITY: usize = 1 << 12;

impl<T, const SHIFT: u32> Default for Wheel<T, SHIFT> {
    fn default() -> Self {
        Wheel {
            front: None,
            front_order: Order::Unsorted,
            later: FxHashMap::default(),
            order: BinaryHeap::new(),
            len: 0,
            spare: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

/// The housekeeping timers.
pub type TimerTable = Wheel<Timer>;

/// The order of a bucket's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Unsorted,
    /// As filled, in order ([`push_in_order`]): turned round when it comes due.
    Ascending,
    /// Due, sorted for popping from the end.
    Descending,
}

/// How far back from its end a bucket still in order is searched for a new entry's place.
/// Events waiting for the watermark come almost in time order (a late one a few places
/// back), so their buckets stay in order and need no sort when due; deadlines of different
/// lengths interleave, and a bucket they would make search far is left to the sort.
const IN_ORDER_REACH: usize = 8;

/// Appends `entry` to a later bucket, keeping it in ascending order while that takes a search
/// of at most [`IN_ORDER_REACH`] entries; `ascending` says whether it still is.
#[inline(always)]
fn push_in_order<E: Ord>(v: &mut Vec<E>, ascending: &mut bool, entry: E) {
    if *ascending {
        let reach = v.len().saturating_sub(IN_ORDER_REACH);
        let mut pos = v.len();
        while pos > reach && v[pos - 1] > entry {
            pos -= 1;
        }
        if pos == 0 || v[pos - 1] <= entry {
            v.insert(pos, entry);
            return;
        }
        *ascending = false;
    }
    v.push(entry);
}

/// Below this many entries a comparison sort costs less than the counting passes.
const COUNTING_MIN: usize = 48;

/// Sorts a bucket's entries into descending `(time, item)` order, for popping from the end.
///
/// Comparison sorts of the lifecycle's deadline buckets (a hundred or more entries each, in no
/// order: deadlines of different lengths interleave) were 3.5% of the core's instructions. All
/// entries of a bucket share the time's bits above `bits`, so the order is that of the low
/// `bits`: counting passes of eight bits each, least significant first, place every entry with
/// a few instructions and no comparison. Each pass is stable, so after the last one the
/// entries are in descending time order; runs of equal times are then sorted by item.
fn sort_descending<T: Ord + Copy>(
    v: &mut Vec<(Timestamp, T)>,
    scratch: &mut Vec<(Timestamp, T)>,
    bits: u32,
) {
    let n = v.len();
    if n < COUNTING_MIN {
        v.sort_unstable_by(|a, b| b.cmp(a));
        return;
    }
    let low = (1i64 << bits) - 1;
    // The passes move the entries back and forth between `v` and `scratch`: one copy to size
    // `scratch`, instead of one per pass.
    scratch.clear();
    scratch.extend_from_slice(v);
    let (mut from, mut to) = (&mut *v, &mut *scratch);
    let mut in_scratch = false;
    for shift in (0..bits).step_by(8) {
        let digit = |e: &(Timestamp, T)| (((e.0 .0 & low) >> shift) & 0xff) as usize;
        let mut starts = [0usize; 256];
        for e in from.iter() {
            starts[digit(e)] += 1;
        }
        if starts[digit(&from[0])] == n {
            continue; // one digit for all: this pass would move nothing
        }
        // Descending: the highest digit's entries go first.
        let mut at = 0;
        for start in starts.iter_mut().rev() {
            let count = *start;
            *start = at;
            at += count;
        }
        for e in from.iter() {
            let d = digit(e);
            to[starts[d]] = *e;
            starts[d] += 1;
        }
        std::mem::swap(&mut from, &mut to);
        in_scratch = !in_scratch;
    }
    if in_scratch {
        std::mem::swap(v, scratch);
    }
    let mut i = 0;
    while i < n {
        let t = v[i].0;
        let mut j = i + 1;
        while j < n && v[j].0 == t {
            j += 1;
        }
        if j - i > 1 {
            v[i..j].sort_unstable_by(|a, b| b.cmp(a));
        }
        i = j;
    }
}

impl<T: Ord + Copy, const SHIFT: u32> Wheel<T, SHIFT> {
    pub fn schedule(&mut self, at: Timestamp, item: T) {
        let bucket = at.0 >> SHIFT;
        let entry = (at, item);
        self.len += 1;
        match &mut self.front {
            Some((first, v)) if *first == bucket => match self.front_order {
                Order::Descending => {
                    // Keep the due bucket sorted (descending).
                    let pos = v.partition_point(|t| *t > entry);
                    v.insert(pos, entry);
                }
                Order::Ascending => {
                    let mut ascending = true;
                    push_in_order(v, &mut ascending, entry);
                    if !ascending {
                        self.front_order = Order::Unsorted;
                    }
                }
                Order::Unsorted => v.push(entry),
            },
            Some((first, _)) if *first < bucket => {
                let (spare, order) = (&mut self.spare, &mut self.order);
                let (v, ascending) = self.later.entry(bucket).or_insert_with(|| {
                    order.push(Reverse(bucket));
                    (spare.pop().unwrap_or_default(), true)
                });
                push_in_order(v, ascending, entry);
            }
            _ => {
                // No bucket yet, or one earlier than the first: it becomes the first.
                let mut v = self.spare.pop().unwrap_or_default();
                v.push(entry);
                if let Some((first, mut old)) = self.front.replace((bucket, v)) {
                    let ascending = match self.front_order {
                        Order::Descending => {
                            old.reverse();
                            true
                        }
                        Order::Ascending => true,
                        Order::Unsorted => old.len() < 2,
                    };
                    self.later.insert(first, (old, ascending));
                    self.order.push(Reverse(first));
                }
                // One entry is in popping order already: `ahead` sees it at once.
                self.front_order = Order::Descending;
            }
        }
    }

    /// The earliest entry due at or before `now`, if any (sorting its bucket if needed).
    #[inline]
    pub fn peek_due(&mut self, now: Timestamp) -> Option<(Timestamp, T)> {
        loop {
            let (first, _) = self.front.as_ref()?;
            if *first > now.0 >> SHIFT {
                return None;
            }
            if self.front_order != Order::Descending {
                self.order_front();
            }
            let (_, v) = self.front.as_ref()?;
            match v.last() {
                None => self.advance(),
                Some(t) if t.0 <= now => return Some(*t),
                Some(_) => return None,
            }
        }
    }

    /// Sorts the due first bucket for popping. Apart from the few calls that pop, so that
    /// those stay small enough to be inlined where the wheel is read, several times an event.
    #[cold]
    #[inline(never)]
    fn order_front(&mut self) {
        if let Some((_, v)) = self.front.as_mut() {
            match self.front_order {
                Order::Descending => {}
                // Filled in order: turned round, it is sorted for popping.
                Order::Ascending => v.reverse(),
                Order::Unsorted => {
                    sort_descending(v, &mut self.scratch, SHIFT);
                    // As for spare buckets: not the memory of a burst.
                    if self.scratch.capacity() > SPARE_CAPACITY {
                        self.scratch = Vec::new();
                    }
                }
            }
        }
        self.front_order = Order::Descending;
    }

    /// The entry `n` places behind the next one to pop (`ahead(0)` is the next), when it is in
    /// the bucket being drained, else `None`. Whether it is due is not checked. Right after a
    /// pop, every entry due at the popped time is among them (one time, one bucket, sorted):
    /// the lifecycle reads a moment's other assignment tries this way.
    pub fn ahead(&self, n: usize) -> Option<&(Timestamp, T)> {
        match &self.front {
            Some((_, v)) if self.front_order == Order::Descending => {
                v.len().checked_sub(n + 1).map(|i| &v[i])
            }
            _ => None,
        }
    }

    /// Removes and returns the earliest entry due at or before `now`.
    pub fn pop_due(&mut self, now: Timestamp) -> Option<(Timestamp, T)> {
        self.peek_due(now)?;
        let (_, v) = self.front.as_mut().expect("peeked");
        let t = v.pop().expect("peeked");
        self.len -= 1;
        if v.is_empty() {
            self.advance();
        }
        Some(t)
    }

    /// Drops the (empty) first bucket; the next one becomes the first.
    fn advance(&mut self) {
        let mut order = Order::Unsorted;
        let next = self.order.pop().map(|Reverse(b)| {
            let (v, ascending) = self
                .later
                .remove(&b)
                .expect("every ordered bucket is in the map");
            order = match (v.len() < 2, ascending) {
                (true, _) => Order::Descending,
                (false, true) => Order::Ascending,
                (false, false) => Order::Unsorted,
            };
            (b, v)
        });
        self.front_order = order;
        if let Some((_, emptied)) = std::mem::replace(&mut self.front, next) {
            if self.spare.len() < SPARE_BUCKETS && emptied.capacity() <= SPARE_CAPACITY {
                self.spare.push(emptied);
            }
        }
    }

    pub fn next_deadline(&self) -> Option<Timestamp> {
        let (_, v) = self.front.as_ref()?;
        v.iter().map(|t| t.0).min()
    }

    /// Changes entries in place (their times stay).
    pub fn update(&mut self, mut f: impl FnMut(&mut T)) {
        let front = self.front.iter_mut().map(|(_, v)| v);
        for v in front.chain(self.later.values_mut().map(|(v, _)| v)) {
            for (_, item) in v.iter_mut() {
                f(item);
            }
        }
        // The order within every bucket may have changed.
        self.front_order = Order::Unsorted;
        for (_, ascending) in self.later.values_mut() {
            *ascending = false;
        }
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &(Timestamp, T)> {
        let front = self.front.iter().map(|(_, v)| v);
        front.chain(self.later.values().map(|(v, _)| v)).flatten()
    }

    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ahead_names_the_entries_that_pop_next() {
        let mut wheel: Wheel<u32> = Wheel::default();
        for (t, item) in [(30, 3), (10, 1), (20, 2)] {
            wheel.schedule(Timestamp(t), item);
        }
        wheel.schedule(Timestamp(1 << 40), 9); // a later bucket
        assert!(wheel.peek_due(Timestamp(100)).is_some());
        assert_eq!(wheel.ahead(0), Some(&(Timestamp(10), 1)));
        assert_eq!(wheel.ahead(2), Some(&(Timestamp(30), 3)));
        assert_eq!(wheel.ahead(3), None, "only the bucket being drained");
        wheel.pop_due(Timestamp(100));
        assert_eq!(wheel.ahead(1), Some(&(Timestamp(30), 3)));
    }

    #[test]
    fn timers_fire_in_deadline_order_whatever_the_order_they_were_set() {
        let mut table = TimerTable::default();
        let mut x: i64 = 88172645463325252;
        let mut expected = Vec::new();
        for i in 0..5000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = Timestamp(1_790_000_000_000 + x.rem_euclid(30 * 86_400_000));
            table.schedule(at, (i % 97, i, TimerKind::Housekeeping));
            expected.push((at, (i % 97, i, TimerKind::Housekeeping)));
        }
        expected.sort();
        let mut fired = Vec::new();
        // Interleave popping with more scheduling at and after the current time.
        let mut now = Timestamp(1_790_000_000_000);
        // Past the last deadline (30 days out): a lost timer fails the comparison below
        // instead of keeping this loop waiting for it.
        while now < Timestamp(1_790_000_000_000) + crate::time::Span::hours(31 * 24) {
            now = now + crate::time::Span::hours(3);
            while let Some(t) = table.pop_due(now) {
                assert!(t.0 <= now);
                fired.push(t);
            }
        }
        assert_eq!(fired, expected);
        assert_eq!(table.len(), 0);
        assert!(table.pop_due(Timestamp(i64::MAX / 2)).is_none());
    }

    proptest::proptest! {
        /// Against a plain ordered set: whatever is scheduled (into the due bucket, before it,
        /// far after it) and whenever pops happen, the wheel pops exactly the set's earliest
        /// entry due by then.
        #[test]
        fn pops_the_earliest_due_entry_like_an_ordered_set(
            ops in proptest::collection::vec((proptest::bool::ANY, 0i64..40, 0u32..1000), 1..400)
        ) {
            let base = 1_790_000_000_000i64;
            // Steps of a quarter bucket: entries share buckets, spread over ten buckets.
            let step = (1i64 << BUCKET_SHIFT) / 4;
            let mut wheel = TimerTable::default();
            let mut model = std::collections::BTreeSet::new();
            let mut now = Timestamp(base);
            for (schedule, offset, item) in ops {
                if schedule {
                    // Anywhere from well before `now` to well after it.
                    let at = Timestamp(now.0 - 10 * step + offset * step + i64::from(item));
                    let timer = (item, 0, TimerKind::Housekeeping);
                    if model.insert((at, timer)) {
                        wheel.schedule(at, timer);
                    }
                } else {
                    now = Timestamp(now.0 + offset * step / 8);
                    let expected = model.first().copied().filter(|(t, _)| *t <= now);
                    if let Some(e) = expected {
                        model.remove(&e);
                    }
                    proptest::prop_assert_eq!(wheel.pop_due(now), expected);
                }
                proptest::prop_assert_eq!(wheel.len(), model.len());
            }
            while let Some(e) = model.pop_first() {
                proptest::prop_assert_eq!(wheel.pop_due(Timestamp(i64::MAX / 2)), Some(e));
            }
            proptest::prop_assert_eq!(wheel.pop_due(Timestamp(i64::MAX / 2)), None);
        }
    }

    proptest::proptest! {
        /// The counting sort puts a bucket's entries in the order a comparison sort does: by
        /// time, then by item, descending; with many equal times, in buckets before and after
        /// 1970, for both bucket widths in use, below and above the size where it counts, and
        /// with times close enough together that some passes have one digit for all.
        #[test]
        fn a_bucket_sorts_as_a_comparison_sort_would(
            bucket in -3i64..3,
            wide in proptest::bool::ANY,
            close in proptest::bool::ANY,
            entries in proptest::collection::vec((0i64..1 << 22, 0u32..4, 0u8..3), 0..300)
        ) {
            let bits = if wide { BUCKET_SHIFT } else { 16 };
            let spread = if close { 1 << 12 } else { 1 << bits };
            let base = bucket << bits;
            let mut v: Vec<(Timestamp, (u32, u8))> = entries
                .iter()
                // A third of the entries at one of four times: runs of ties to break by item.
                .map(|&(t, i, k)| {
                    let t = if k == 0 { t % 4 * 1000 } else { t };
                    (Timestamp(base + t % spread), (i, k))
                })
                .collect();
            let mut expected = v.clone();
            expected.sort_unstable_by(|a, b| b.cmp(a));
            sort_descending(&mut v, &mut Vec::new(), bits);
            proptest::prop_assert_eq!(v, expected);
        }
    }

    proptest::proptest! {
        /// A bucket filled in nearly ascending order stays in order (and says so) while each
        /// entry's place is near its end; it says it is out of order otherwise, and nothing
        /// pushed is lost either way.
        #[test]
        fn a_bucket_knows_whether_it_is_still_in_order(
            steps in proptest::collection::vec(-12i64..40, 0..200)
        ) {
            let (mut v, mut ascending) = (Vec::new(), true);
            // In order for as long as no entry had more than the reach after its place.
            let mut model = true;
            let mut t = 0i64;
            for step in &steps {
                t += step;
                model &= v.iter().filter(|&&x| x > t).count() <= IN_ORDER_REACH;
                push_in_order(&mut v, &mut ascending, t);
                proptest::prop_assert_eq!(ascending, model);
            }
            if ascending {
                proptest::prop_assert!(v.is_sorted());
            }
            let mut pushed: Vec<i64> = steps
                .iter()
                .scan(0i64, |t, s| {
                    *t += s;
                    Some(*t)
                })
                .collect();
            pushed.sort();
            v.sort();
            proptest::prop_assert_eq!(v, pushed);
        }
    }

    #[test]
    fn a_timer_set_into_the_due_bucket_keeps_the_order() {
        let mut table = TimerTable::default();
        let base = Timestamp(1_790_000_000_000 & !((1 << BUCKET_SHIFT) - 1));
        let at = |ms| base + crate::time::Span(ms);
        let timer = |slot| (slot, 1, TimerKind::Housekeeping);
        table.schedule(at(500), timer(1));
        table.schedule(at(100), timer(2));
        assert_eq!(table.pop_due(at(100)).map(|t| t.1 .0), Some(2));
        table.schedule(at(300), timer(3));
        table.schedule(at(200), timer(4));
        let order: Vec<u32> = std::iter::from_fn(|| table.pop_due(at(1000)))
            .map(|t| t.1 .0)
            .collect();
        assert_eq!(order, vec![4, 3, 1]);
    }

    #[test]
    fn a_timer_earlier_than_the_bucket_being_drained_pops_first() {
        let mut table = TimerTable::default();
        let base = Timestamp(1_790_000_000_000);
        for (i, h) in [5, 3, 9].into_iter().enumerate() {
            table.schedule(
                base + crate::time::Span::hours(h),
                (i as u32, 1, TimerKind::Housekeeping),
            );
        }
        // Due: the first bucket is sorted, so the entry after the next is known.
        assert_eq!(
            table
                .peek_due(base + crate::time::Span::hours(4))
                .map(|t| t.1 .0),
            Some(1)
        );
        // Earlier than the bucket being drained: it becomes the first.
        table.schedule(base, (7, 1, TimerKind::Housekeeping));
        assert_eq!(table.peek_due(base).map(|t| t.1 .0), Some(7));
        let order: Vec<u32> =
            std::iter::from_fn(|| table.pop_due(base + crate::time::Span::hours(24)))
                .map(|t| t.1 .0)
                .collect();
        assert_eq!(order, vec![7, 1, 0, 2]);
        assert_eq!(table.len(), 0);
        assert_eq!(table.next_deadline(), None);
    }
}
