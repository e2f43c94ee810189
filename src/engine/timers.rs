//! Timers as data: a deadline-ordered table of (deadline, customer slot, generation, kind).
//!
//! Deadlines are in *watermark* time (the newest event time minus the allowed lateness), so a
//! timer never fires while an on-time event could still arrive before its deadline. A slot's
//! generation changes when the slot is reused, so a timer of an evicted customer is ignored.
//! Timers are never cancelled: a stale one is recognised and skipped when it fires, which lets
//! the table be a binary heap (cheaper than an ordered set for push and pop).

use crate::time::Timestamp;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// Fold old log entries into the base state, and evict the customer when nothing is left.
    Housekeeping,
}

#[derive(Debug, Default)]
pub struct TimerTable {
    heap: BinaryHeap<Reverse<(Timestamp, u32, u32, TimerKind)>>,
}

impl TimerTable {
    pub fn schedule(&mut self, at: Timestamp, slot: u32, generation: u32, kind: TimerKind) {
        self.heap.push(Reverse((at, slot, generation, kind)));
    }

    /// Removes and returns the earliest timer due at or before `now`.
    pub fn pop_due(&mut self, now: Timestamp) -> Option<(Timestamp, u32, u32, TimerKind)> {
        let Reverse(first) = *self.heap.peek()?;
        if first.0 <= now {
            self.heap.pop().map(|Reverse(t)| t)
        } else {
            None
        }
    }

    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.heap.peek().map(|Reverse(t)| t.0)
    }

    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }
}
