//! One customer's state: a base fold, a short event-time-sorted log, and what was emitted.
//!
//! The customer's outputs are a pure function of its events *sorted by event time*: the core
//! folds the sorted log from `base`. An event that arrives in order is folded once onto `head`
//! (the fast path). One that arrives out of order is inserted at its place and the log is folded
//! again from `base`; the outputs are compared by id with what was already emitted, so new ones
//! go out and ones that no longer hold are withdrawn. Entries older than the watermark minus the
//! longest rule window can no longer be reached by any on-time event: they are folded into
//! `base` and dropped, which keeps memory bounded.

use super::attrs::{Attrs, GivenId};
use super::reps::{RepIdx, Sym};
use crate::event::{ContactKind, Direction, EventId, OwnershipAction};
use crate::output::{Output, OutputType};
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
    pub event_id: EventId,
    /// The customer's attributes the event gave ([`GivenId::NOTHING`] for entries the core
    /// writes itself).
    pub given: GivenId,
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
        /// Whether the roster listed the rep as active when the contact was placed (a rep
        /// the roster doesn't know counts as active). Stored, not read from the roster again,
        /// so that detection's guess at first touch, and the lifecycle's precondition for it,
        /// stay those of the roster when the contact was placed, also when this history is
        /// folded again after a roster reload or a restore.
        active: bool,
        kind: ContactKind,
        direction: Direction,
    },
    Ownership {
        action: OwnershipAction,
        rep: Option<(RepIdx, Sym)>,
        account_team: Box<[RepIdx]>,
        /// When the CRM says it happened (`t` is the watermark when it arrived too late to
        /// be placed there).
        occurred: Timestamp,
    },
    /// The owner as decided by the ownership lifecycle from this time on (`None`: no owner).
    /// Written by the lifecycle once the events that decide it are final; detection reads it.
    OwnerState(Option<Box<Owner>>),
}

/// Won customers are protected until further notice.
pub const FOREVER: Timestamp = Timestamp(i64::MAX / 4);

/// `Owner::origin_kind` of an owner made by the lifecycle itself (a pool's assignment).
pub const ASSIGNMENT_ORIGIN: &str = "assignment";

/// How an owner got the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// An `assign` or `transfer` from the CRM.
    Crm,
    /// A `claim` from the pool in the CRM.
    Claim,
    /// First development of an unowned customer.
    FirstTouch,
    /// Assigned by a pool's strategy.
    Assigned,
    /// Reassigned by a collision rule's resolution.
    Reassigned,
}

impl Via {
    pub const ALL: [Via; 5] = [
        Via::Crm,
        Via::Claim,
        Via::FirstTouch,
        Via::Assigned,
        Via::Reassigned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Via::Crm => "crm",
            Via::Claim => "claim",
            Via::FirstTouch => "first_touch",
            Via::Assigned => "assigned",
            Via::Reassigned => "reassigned",
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
    pub origin_event: EventId,
    pub origin_source: Sym,
    pub origin_kind: &'static str,
    /// The direction of the contact that made the owner (`None`: an ownership event or an
    /// assignment, which have none).
    pub origin_direction: Option<Direction>,
    pub account_team: Box<[RepIdx]>,
    pub locked: bool,
    pub won: bool,
    /// Protection never runs past this (claim + cap).
    pub cap_at: Option<Timestamp>,
    /// Reclaimed at this time unless won (claim + no_deal).
    pub deal_by: Option<Timestamp>,
    /// When the customer was last unlocked. A new-lead SLA deadline at or before it fell while
    /// the customer was locked, and locked customers are not released (see
    /// [`Owner::sla_may_release`]).
    pub unlocked_at: Option<Timestamp>,
}

impl Owner {
    /// The owner a rep becomes at `since`, by the protection rules of the customer's tier.
    /// Both detection (speculatively, at once) and the lifecycle (finally, at the watermark)
    /// build owners here, so the two agree whenever the lifecycle accepts the change.
    #[allow(clippy::too_many_arguments)]
    pub fn acquired(
        p: &crate::config::Protection,
        rep: RepIdx,
        team: Sym,
        since: Timestamp,
        via: Via,
        origin: &Entry,
        account_team: Box<[RepIdx]>,
        won: bool,
    ) -> Owner {
        let cap_at = p.cap.map(|c| since + c);
        let mut protected_until = since + p.period;
        if let Some(cap) = cap_at {
            protected_until = protected_until.min(cap);
        }
        let (origin_kind, origin_direction) = match &origin.body {
            Body::Contact {
                kind, direction, ..
            } => (kind.as_str(), Some(*direction)),
            Body::Ownership { action, .. } => (action.as_str(), None),
            Body::OwnerState(_) => (ASSIGNMENT_ORIGIN, None),
        };
        Owner {
            rep,
            team,
            since,
            protected_until: if won { FOREVER } else { protected_until },
            via,
            origin_event: origin.event_id.clone(),
            origin_source: origin.source,
            origin_kind,
            origin_direction,
            account_team,
            locked: false,
            won,
            cap_at,
            deal_by: p.no_deal.map(|d| since + d),
            unlocked_at: None,
        }
    }

    /// The new end of protection after a follow-up at `t`, if it moves: `t + extension` when
    /// later, never past the cap. Won and locked customers don't lapse, so don't extend.
    pub fn extended_end(&self, p: &crate::config::Protection, t: Timestamp) -> Option<Timestamp> {
        let ext = p.extension?;
        if self.won || self.locked {
            return None;
        }
        let mut end = self.protected_until.max(t + ext);
        if let Some(cap) = self.cap_at {
            end = end.min(cap);
        }
        (end > self.protected_until).then_some(end)
    }

    /// Locks or unlocks at `t`. An unlock restarts the reclaim clock.
    pub fn set_locked(&mut self, lock: bool, p: &crate::config::Protection, t: Timestamp) {
        self.locked = lock;
        if !lock {
            self.unlocked_at = Some(t);
            let restart = t + p.extension.unwrap_or(p.period);
            self.protected_until = self.protected_until.max(restart);
            self.cap_at = self.cap_at.map(|c| c.max(restart));
            self.deal_by = self.deal_by.map(|d| d.max(restart));
        }
    }

    pub fn set_won(&mut self) {
        self.won = true;
        self.protected_until = FOREVER;
    }

    /// When the owner loses the customer if nothing changes (and the rules release on
    /// expiry): at the end of protection, or at the no-deal deadline when that comes first.
    pub fn reclaim_at(&self) -> Timestamp {
        self.deal_by
            .map_or(self.protected_until, |d| d.min(self.protected_until))
    }

    /// Whether [`Owner::reclaim_at`] is the no-deal deadline (otherwise the end of protection):
    /// what a reclaim warning and the "may I contact?" answer give as the cause.
    pub fn reclaimed_for_no_deal(&self) -> bool {
        self.deal_by == Some(self.reclaim_at())
    }

    /// Whether the lifecycle will have released this owner by `t` if nothing changes: its
    /// time ran out ([`Owner::reclaim_at`]), it hasn't won and isn't locked, and the rules
    /// release on expiry. The release is written only when it is final (at the watermark);
    /// detection and the "may I contact?" answer read it from here before that.
    pub fn released_by(&self, t: Timestamp, release_on_expiry: bool) -> bool {
        release_on_expiry && !self.won && !self.locked && t >= self.reclaim_at()
    }

    /// Whether missing a new-lead SLA deadline at `deadline` releases this owner (when the SLA
    /// releases at all): not once the customer is won (it is no longer a lead), and not while
    /// it is locked (locked customers are exempt from reclaim). The lifecycle fires a deadline
    /// before the events of the same millisecond, so a deadline at the unlock's own time fell
    /// while locked.
    pub fn sla_may_release(&self, deadline: Timestamp) -> bool {
        !self.won && !self.locked && self.unlocked_at.is_none_or(|u| deadline > u)
    }

    pub fn protects_at(&self, t: Timestamp) -> bool {
        t >= self.since && t < self.protected_until
    }
}

/// The state folded from a customer's events up to some point.
#[derive(Debug, Clone)]
pub struct Fold {
    /// The customer's attributes as of that point.
    pub attrs: Attrs,
    /// The time of the newest entry folded (events and owner states).
    pub last: Option<Timestamp>,
    pub owner: Option<Owner>,
    /// The owner's follow-ups, counted as the lifecycle counts them for the new-lead SLA.
    pub follow_ups: FollowUps,
    /// (rule index, hash of the sorted rep ids) → event time of the last alert.
    pub cooldowns: Vec<(u16, u64, Timestamp)>,
}

impl Fold {
    pub fn new(attrs: Attrs) -> Fold {
        Fold {
            attrs,
            last: None,
            owner: None,
            follow_ups: FollowUps::NONE,
            cooldowns: Vec::new(),
        }
    }
}

/// Follow-ups by one owner (`rep`, owner `since`), in the two spans of the new-lead SLA:
/// before the first follow-up's deadline, and before the last one's. Counts kept for another
/// owner (a previous one) count as none: they are reset when the owner changes, wherever it
/// is changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowUps {
    pub rep: RepIdx,
    pub since: Timestamp,
    pub first: u32,
    pub within: u32,
}

impl FollowUps {
    /// No owner's.
    pub const NONE: FollowUps = FollowUps {
        rep: RepIdx(u32::MAX),
        since: Timestamp(i64::MIN),
        first: 0,
        within: 0,
    };
    /// Counts not known (restored from a snapshot that didn't keep them): taken as enough,
    /// so that nothing is assumed about the SLA for this owner.
    pub const UNKNOWN: u32 = u32::MAX;

    /// The counts for `owner`: (before the first deadline, before the last).
    pub fn of(&self, owner: &Owner) -> (u32, u32) {
        if self.rep == owner.rep && self.since == owner.since {
            (self.first, self.within)
        } else {
            (0, 0)
        }
    }

    /// Counts a follow-up at `t` by `owner`, whose SLA spans are `first_within` and `within`.
    pub fn count(
        &mut self,
        owner: &Owner,
        t: Timestamp,
        first_within: Timestamp,
        within: Timestamp,
    ) {
        if self.rep != owner.rep || self.since != owner.since {
            *self = FollowUps {
                rep: owner.rep,
                since: owner.since,
                first: 0,
                within: 0,
            };
        }
        if t < first_within {
            self.first = self.first.saturating_add(1);
        }
        if t < within {
            self.within = self.within.saturating_add(1);
        }
    }
}

/// An output already emitted for an entry still in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    pub key: Key,
    pub id: String,
    pub ty: OutputType,
    /// For collisions: the index of the rule that raised it.
    pub rule: Option<u16>,
}

/// The ownership lifecycle's final state for a customer: decided in event-time order once
/// events can no longer arrive before it (see `lifecycle`).
#[derive(Debug, Clone)]
pub struct Holding {
    /// The customer's attributes as of the newest final event.
    pub attrs: Attrs,
    /// The time of the newest final event or owner change (the times of the log's entries).
    pub last: Option<Timestamp>,
    pub owner: Option<Owner>,
    /// Follow-ups by the owner since they got the customer (for the new-lead SLA).
    pub follow_ups: u32,
    /// The oldest inbound contact the owner has not answered yet.
    pub inbound_waiting: Option<Timestamp>,
    /// The reclaim time a warning was already sent for.
    pub warned_for: Option<Timestamp>,
    /// The newest contact or purchase (for the dormant-customer reminder).
    pub last_touch: Option<Timestamp>,
    /// The dormancy deadline already reported.
    pub dormant_noted: Option<Timestamp>,
    /// The new-lead SLA deadlines already reported for the current owner (`SLA_FIRST`,
    /// `SLA_ALL`): two acquisitions in one millisecond, or a merge that hands a provisional
    /// customer's owner on, plan a deadline twice.
    pub sla_noted: u8,
    /// The previous owner and when they lost the customer (for the reclaim cooldown).
    pub released: Option<(RepIdx, Timestamp)>,
    /// Since when the customer waits unowned in a pool with automatic assignment.
    pub waiting_since: Option<Timestamp>,
    /// When the pool tries again to assign the customer, after nobody was eligible: the end of
    /// the reclaim cooldown that excluded the previous owner, or the day the first rep on leave
    /// is back. Set, `waiting_since` is the wait that was tried.
    pub assign_retry: Option<Timestamp>,
    /// The time of the newest final word on the customer's ownership: a change of owner (any
    /// write of the owner state), or an ownership event from the CRM, even one that changed
    /// nothing. A merge carries a provisional customer's owner over only when it came later:
    /// a CRM applying ownership by time would otherwise end with what it decided since.
    pub ownership_decided: Option<Timestamp>,
}

/// `Holding::sla_noted`: the first follow-up's deadline was reported.
pub const SLA_FIRST: u8 = 1;
/// `Holding::sla_noted`: the deadline for all follow-ups was reported.
pub const SLA_ALL: u8 = 2;

impl Holding {
    pub fn new(attrs: Attrs) -> Holding {
        Holding {
            attrs,
            last: None,
            owner: None,
            follow_ups: 0,
            inbound_waiting: None,
            warned_for: None,
            last_touch: None,
            dormant_noted: None,
            sla_noted: 0,
            released: None,
            waiting_since: None,
            assign_retry: None,
            ownership_decided: None,
        }
    }
}

#[derive(Debug)]
pub struct Customer {
    pub key: Arc<str>,
    pub provisional: bool,
    /// Bumped on reuse of a slot, so stale timers are ignored.
    pub generation: u32,
    pub identifiers: Vec<crate::identity::Identifier>,
    /// The attributes the customer's latest event that gave any gave (a cache: see
    /// [`GivenSets::of`]).
    ///
    /// [`GivenSets::of`]: super::attrs::GivenSets::of
    pub last_given: GivenId,
    pub hold: Holding,
    /// Hash of `key`: orders customers the same way on every run.
    pub key_hash: u64,
    pub base: Fold,
    /// Entries sorted by [`Entry::key`]. The first `folded` are already in `base` and are kept
    /// only as window context for the others; the rest are folded into `head`.
    pub log: Vec<Entry>,
    pub folded: usize,
    pub head: Fold,
    pub emitted: Vec<Emitted>,
    /// For a provisional customer: the lifecycle's outputs so far, re-issued under the real
    /// customer id if it turns out to be a known customer.
    pub finals: Vec<Output>,
    /// The housekeeping deadline currently scheduled, if any.
    pub housekeeping_at: Option<Timestamp>,
}

impl Customer {
    /// `key_hash` is [`crate::event::customer_id_hash`] of `key`; `blank` the attributes of
    /// a customer nobody has described yet ([`Attrs::blank`]).
    pub fn new(
        key: Arc<str>,
        key_hash: u64,
        provisional: bool,
        generation: u32,
        blank: Attrs,
    ) -> Customer {
        debug_assert_eq!(key_hash, crate::event::customer_id_hash(&key));
        Customer {
            key,
            provisional,
            generation,
            identifiers: Vec::new(),
            last_given: GivenId::NOTHING,
            hold: Holding::new(blank),
            key_hash,
            base: Fold::new(blank),
            log: Vec::new(),
            folded: 0,
            head: Fold::new(blank),
            emitted: Vec::new(),
            finals: Vec::new(),
            housekeeping_at: None,
        }
    }

    /// Inserts `entry` into the log at `pos`, growing the log by a little at a time: most logs
    /// hold a few entries (3.7 on average on the benchmark stream), and with `Vec`'s own growth
    /// (four entries at first, then doubling) the logs held three times their entries' size at
    /// the stream's peak. This saved 5% of the engine's memory (`benches/RESULTS.md`).
    pub fn insert_entry(&mut self, pos: usize, entry: Entry) {
        let len = self.log.len();
        if len == self.log.capacity() {
            self.log.reserve_exact(if len < 8 { 2 } else { len / 2 });
        }
        self.log.insert(pos, entry);
    }

    /// Index where an entry with this key belongs.
    pub fn position(&self, key: Key) -> usize {
        self.partition_point(|e| e.key() <= key)
    }

    /// `log.partition_point(pred)`, looking at the newest entries first. What the core looks
    /// for is almost always among the newest few (an event in order, the event the lifecycle
    /// decides now, housekeeping finding everything old); a customer's log is usually cold by
    /// then, and a binary search's probes depend on each other: a cache miss each, in series.
    pub fn partition_point(&self, pred: impl Fn(&Entry) -> bool) -> usize {
        const NEWEST: usize = 4;
        let mut end = self.log.len();
        for _ in 0..NEWEST {
            if end == 0 || pred(&self.log[end - 1]) {
                return end;
            }
            end -= 1;
        }
        self.log[..end].partition_point(pred)
    }

    /// Whether an event with this (source, id) is already in the log. The id is compared as
    /// bytes: an inline id's `&str` view checks its UTF-8 each time (about 130 instructions,
    /// once per event).
    pub fn contains(&self, tie: u64, source: Sym, event_id: &EventId) -> bool {
        self.log
            .iter()
            .any(|e| e.tie == tie && e.source == source && e.event_id == *event_id)
    }

    /// The newest entry not yet folded into `base`.
    pub fn newest(&self) -> Option<Timestamp> {
        self.log[self.folded..].last().map(|e| e.t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_point_from_the_newest_end_agrees_with_a_binary_search() {
        for len in 0..12 {
            let mut c = Customer::new(
                Arc::from("C1"),
                crate::event::customer_id_hash("C1"),
                false,
                0,
                Attrs {
                    region: Sym::NONE,
                    industry: Sym::NONE,
                    tier: Sym::NONE,
                    product_line: Sym::NONE,
                    pool: None,
                },
            );
            c.log = (0..len)
                .map(|i| Entry {
                    // Pairs of equal times, as owner states share their event's key.
                    t: Timestamp(i / 2 * 10),
                    order: 0,
                    tie: 0,
                    source: Sym::NONE,
                    event_id: EventId::default(),
                    given: GivenId::NOTHING,
                    body: Body::OwnerState(None),
                })
                .collect();
            for cut in -5..(len / 2 * 10 + 15) {
                let below = |e: &Entry| e.t < Timestamp(cut);
                let up_to = |e: &Entry| e.t <= Timestamp(cut);
                assert_eq!(c.partition_point(below), c.log.partition_point(below));
                assert_eq!(c.partition_point(up_to), c.log.partition_point(up_to));
            }
        }
    }
}
