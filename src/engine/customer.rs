//! One customer's state: a base fold, a short event-time-sorted log, and what was emitted.
//!
//! The customer's outputs are a pure function of its events *sorted by event time*: the core
//! folds the sorted log from `base`. An event that arrives in order is folded once onto `head`
//! (the fast path). One that arrives out of order is inserted at its place and the log is folded
//! again from `base`; the outputs are compared by id with what was already emitted, so new ones
//! go out and ones that no longer hold are withdrawn. Entries older than the watermark minus the
//! longest rule window can no longer be reached by any on-time event: they are folded into
//! `base` and dropped, which keeps memory bounded.

use super::reps::{RepIdx, Sym};
use crate::event::{ContactKind, Direction, OwnershipAction};
use crate::output::OutputType;
use crate::time::Timestamp;
use std::sync::Arc;

/// Sort key of a log entry: event time, then ownership changes before contacts at the same
/// millisecond, then a hash of (source, event id) so that equal times sort the same on every run.
pub type Key = (Timestamp, u8, u64);

#[derive(Debug, Clone)]
pub struct Entry {
    /// Position in event time (for an ownership event that arrived too late: the watermark).
    pub t: Timestamp,
    pub order: u8,
    pub tie: u64,
    pub source: Sym,
    pub event_id: Arc<str>,
    pub body: Body,
}

impl Entry {
    pub fn key(&self) -> Key {
        (self.t, self.order, self.tie)
    }
}

#[derive(Debug, Clone)]
pub enum Body {
    Contact {
        rep: RepIdx,
        /// The rep's team and role when the contact happened (roster first, then the event).
        team: Sym,
        role: Sym,
        kind: ContactKind,
        direction: Direction,
    },
    Ownership {
        action: OwnershipAction,
        rep: Option<(RepIdx, Sym)>,
        account_team: Box<[RepIdx]>,
        /// When the CRM says it happened.
        occurred: Timestamp,
    },
}

/// How an owner got the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Crm,
    FirstTouch,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Crm => "crm",
            Via::FirstTouch => "first_touch",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Owner {
    pub rep: RepIdx,
    pub team: Sym,
    pub since: Timestamp,
    pub protected_until: Timestamp,
    pub via: Via,
    pub origin_event: Arc<str>,
    pub origin_source: Sym,
    pub origin_kind: &'static str,
    pub account_team: Box<[RepIdx]>,
    pub locked: bool,
    pub won: bool,
}

impl Owner {
    pub fn protects_at(&self, t: Timestamp) -> bool {
        t >= self.since && t < self.protected_until
    }
}

/// The state folded from a customer's events up to some point.
#[derive(Debug, Clone, Default)]
pub struct Fold {
    pub owner: Option<Owner>,
    /// (rule index, hash of the sorted rep ids) → event time of the last alert.
    pub cooldowns: Vec<(u16, u64, Timestamp)>,
}

/// An output already emitted for an entry still in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    pub key: Key,
    pub id: String,
    pub ty: OutputType,
}

#[derive(Debug)]
pub struct Customer {
    pub key: Arc<str>,
    pub provisional: bool,
    /// Bumped on reuse of a slot, so stale timers are ignored.
    pub generation: u32,
    pub identifiers: Vec<(crate::identity::IdentKind, Box<str>)>,
    pub region: Sym,
    pub industry: Sym,
    pub tier: Sym,
    pub base: Fold,
    /// Entries sorted by [`Entry::key`]. The first `folded` are already in `base` and are kept
    /// only as window context for the others; the rest are folded into `head`.
    pub log: Vec<Entry>,
    pub folded: usize,
    pub head: Fold,
    pub emitted: Vec<Emitted>,
    /// The housekeeping deadline currently scheduled, if any.
    pub housekeeping_at: Option<Timestamp>,
}

impl Customer {
    pub fn new(key: Arc<str>, provisional: bool, generation: u32) -> Customer {
        Customer {
            key,
            provisional,
            generation,
            identifiers: Vec::new(),
            region: Sym::NONE,
            industry: Sym::NONE,
            tier: Sym::NONE,
            base: Fold::default(),
            log: Vec::new(),
            folded: 0,
            head: Fold::default(),
            emitted: Vec::new(),
            housekeeping_at: None,
        }
    }

    /// Index where an entry with this key belongs.
    pub fn position(&self, key: Key) -> usize {
        self.log.partition_point(|e| e.key() <= key)
    }

    /// Whether an event with this (source, id) is already in the log.
    pub fn contains(&self, tie: u64, source: Sym, event_id: &str) -> bool {
        self.log
            .iter()
            .any(|e| e.tie == tie && e.source == source && &*e.event_id == event_id)
    }

    /// The newest entry not yet folded into `base`.
    pub fn newest(&self) -> Option<Timestamp> {
        self.log[self.folded..].last().map(|e| e.t)
    }
}
