//! The deterministic core: events and time in, outputs out. No IO, no clock.
//!
//! # Call order
//! - [`Engine::handle_event`] with each parsed event and the driver's `now` (wall-clock time in
//!   live mode; the event's own time in a replay). Outputs are queued.
//! - [`Engine::handle_timeout`] when the driver's clock reaches [`Engine::next_deadline`] (or on a
//!   tick) with no event to deliver: timers fire even when a customer goes quiet.
//! - [`Engine::drain_outputs`] after either call, to take the queued outputs in order.
//!
//! # Time
//! The engine's clock is the newest event time seen (or the `now` of `handle_timeout`, whichever
//! is later). The *watermark* is that clock minus `settings.allowed_lateness`. An event older
//! than the watermark is too late to place in order: it is refused with a reason, never dropped
//! silently (ownership events are the exception: the CRM's word on ownership is applied at the
//! watermark and counted). Timers fire when the watermark passes their deadline.
//!
//! # Order independence
//! Each customer's outputs are a function of its events sorted by event time (see the
//! `customer` module). Within the allowed lateness, arrival order changes only *when* an output
//! is emitted and whether a superseded one is withdrawn, never the set of outputs that stand.

mod attrs;
pub mod clock;
mod customer;
pub(crate) mod detect;
mod keys;
mod prefetch;
mod query;
mod reload;
pub mod reps;
mod slots;
pub mod snapshot;
mod stats;
mod timers;

pub use query::{
    AssignmentWait, CheckAnswer, CheckError, ContactView, CustomerIdentifiers, CustomerView,
    Decision, IdentifierView, OwnerView, RepView,
};
pub use reload::{settings_needing_restart, ReloadSummary, RestartNeeded};
pub use reps::RosterChange;
pub use stats::Stats;

use crate::config::{Roster, Rules, SourceFile};
use crate::event::{customer_id_hash, Activity, ContactKind, Event, Ownership, OwnershipAction};
use crate::identity::{Found, Handle, Ident, IdentityIndex, Linked, Status};
use crate::ingest::{RejectReason, Rejection};
use crate::output::{Output, OutputType, WithdrawnData};
use crate::time::{Span, Timestamp};
use attrs::{Attrs, GivenId, GivenSets};
use customer::{Body, Customer, Emitted, Entry, Fold, Key};
use lifecycle::Ledger;
use reps::{Interner, RepIdx, Reps, Sym};
use rustc_hash::FxHashMap;
use std::sync::Arc;
use timers::{TimerKind, TimerTable};

/// A customer still active when its housekeeping timer fires keeps its log until it holds
/// this many live entries: folding old entries into the base means running them through the
/// rules again, which is only worth it to bound memory.
const COMPACT_AT: usize = 64;

/// The detection context for one customer, described by `$attrs` (a macro so that the borrow
/// of the customer's identity fields stays apart from the mutable borrow of its fold state).
macro_rules! ctx {
    ($engine:expr, $cust:expr, $attrs:expr, $render:expr) => {
        $crate::engine::detect::Ctx {
            rules: &$engine.rules,
            reps: &$engine.reps,
            words: &$engine.words,
            given: &$engine.given,
            blank: $engine.blank,
            forget_after: $engine.forget_after,
            exempt_roles: &$engine.exempt_roles,
            scopes: &$engine.scopes,
            subject: &$cust.key,
            provisional: $cust.provisional,
            attrs: $attrs,
            render: $render,
        }
    };
}

// After the macro, which it uses.
mod lifecycle;

/// Sizes of the live state, for metrics and memory reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateSize {
    pub customers: usize,
    pub owned: usize,
    /// Customers waiting in line after their pool found nobody eligible.
    pub waiting: usize,
    pub log_entries: usize,
    pub identifiers: usize,
    pub timers: usize,
}

/// A decision about a provisional customer, moved by a merge: re-issued under the customer it
/// turned out to be once that customer is folded again.
struct MovedFinal {
    ty: OutputType,
    time: Timestamp,
    /// Already rewritten for the merged customer, but for a resolution's alert id.
    data: String,
    /// For a resolution: the alert it settles, by its contact, rule and id before the merge.
    alert: Option<(Key, Option<u16>, String)>,
}

/// The collision engine for one partition of the stream.
pub struct Engine {
    rules: Arc<Rules>,
    words: Interner,
    /// What events said of their customers' attributes.
    given: GivenSets,
    /// The attributes of a customer nobody has described yet.
    blank: Attrs,
    reps: Reps,
    exempt_roles: Vec<Sym>,
    /// The collision rules' customer scopes as symbols.
    scopes: Vec<detect::ScopeSyms>,
    identity: IdentityIndex,
    slots: slots::Slots,
    generations: Vec<u32>,
    free: Vec<u32>,
    by_key: keys::KeyIndex,
    timers: TimerTable,
    clock: Option<Timestamp>,
    /// Set by [`Engine::finish`]: no event can arrive before this any more.
    drained_to: Option<Timestamp>,
    horizon: Span,
    /// [`Rules::forget_after`].
    forget_after: Span,
    ledger: Ledger,
    /// Digest of what the roster says that decides whom a pool may assign
    /// ([`Engine::room_digest`]).
    roster_digest: u64,
    /// The roster's file, for snapshots.
    roster_file: RosterFile,
    /// The [`Engine::room_digest`] the line of waiting customers was last tried for (none: a
    /// snapshot from a build that didn't record it).
    room_seen: Option<u64>,
    queue: Vec<Output>,
    scratch: Vec<(Key, Output)>,
    /// A merge's decisions waiting for the merged customer's re-fold (see [`Engine::absorb`]).
    moved_finals: Vec<MovedFinal>,
    seen: Vec<usize>,
    /// The sources of the latest events: a stream comes from few sources, taking turns.
    recent_sources: [Sym; 4],
    /// Accepted events per source symbol, by contact kind then ownership action.
    event_counts: Vec<[u64; 13]>,
    alert_counts: FxHashMap<(Arc<str>, &'static str), u64>,
    /// Ownership changes by reason, in [`stats::OWNERSHIP_CHANGE_REASONS`]' order. Counted
    /// here rather than in `stats.ownership_changes` (a map searched by text at every
    /// lifecycle decision: 0.7% of the core); [`Engine::stats`] puts them there.
    change_counts: [u64; stats::OWNERSHIP_CHANGE_REASONS.len()],
    stats: Stats,
}

/// What a snapshot can record of the roster an engine runs under.
enum RosterFile {
    /// No roster: no reps.
    Nothing,
    Read(Arc<SourceFile>),
    /// Built in code: no file gives it back, so a snapshot records no files.
    InCode,
}

impl RosterFile {
    fn of(roster: &Roster) -> RosterFile {
        match &roster.file {
            Some(f) => RosterFile::Read(f.clone()),
            None if roster.reps.is_empty() => RosterFile::Nothing,
            None => RosterFile::InCode,
        }
    }
}

/// The names counted in `event_counts`, in column order.
fn counted_name(column: usize) -> &'static str {
    match column {
        0..=5 => ContactKind::ALL[column].as_str(),
        _ => OwnershipAction::ALL[column - 6].as_str(),
    }
}

impl Engine {
    pub fn new(rules: Arc<Rules>, roster: &Roster) -> Engine {
        let mut words = Interner::default();
        let reps = Reps::from_roster(roster, &mut words);
        let exempt_roles: Vec<Sym> = rules
            .exemptions
            .roles
            .iter()
            .map(|r| words.intern(r))
            .collect();
        let scopes = detect::ScopeSyms::compile(&rules, &mut words);
        let identity = IdentityIndex::new(
            rules.identity.shared_identifier_limit,
            &rules.identity.shared_phones,
            &rules.identity.shared_emails,
        );
        let horizon = rules.horizon();
        let forget_after = rules.forget_after();
        let ledger = Ledger::new(&rules, &reps, &words, &exempt_roles);
        let blank = Attrs::blank(&rules, &words);
        let roster_digest = lifecycle::roster_digest(roster);
        let roster_file = RosterFile::of(roster);
        let mut engine = Engine {
            rules,
            words,
            given: GivenSets::default(),
            blank,
            reps,
            exempt_roles,
            scopes,
            identity,
            slots: slots::Slots::default(),
            generations: Vec::new(),
            free: Vec::new(),
            by_key: keys::KeyIndex::default(),
            timers: TimerTable::default(),
            clock: None,
            drained_to: None,
            horizon,
            forget_after,
            ledger,
            roster_digest,
            roster_file,
            room_seen: None,
            queue: Vec::new(),
            scratch: Vec::new(),
            moved_finals: Vec::new(),
            seen: Vec::new(),
            recent_sources: [Sym::NONE; 4],
            event_counts: Vec::new(),
            alert_counts: FxHashMap::default(),
            change_counts: [0; stats::OWNERSHIP_CHANGE_REASONS.len()],
            stats: Stats::default(),
        };
        engine.room_seen = Some(engine.room_digest());
        engine
    }

    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    /// The newest event time seen (or `handle_timeout` time).
    pub fn clock(&self) -> Option<Timestamp> {
        self.clock
    }

    /// Events older than this are too late.
    pub fn watermark(&self) -> Option<Timestamp> {
        let w = self.clock.map(|c| c - self.rules.settings.allowed_lateness);
        match (w, self.drained_to) {
            (Some(w), Some(d)) => Some(w.max(d)),
            (w, d) => w.or(d),
        }
    }

    /// The input has ended (a file or a replay): every event seen is final. Decisions that
    /// waited for the allowed lateness are made now, and timers due by the newest event time
    /// fire. Live drivers never call this.
    pub fn finish(&mut self) {
        if let Some(c) = self.clock {
            self.drained_to = Some(c);
            self.fire_timers();
        }
        debug_assert_eq!(
            self.ledger.waiting,
            self.line_from_holdings(),
            "the pools' line is exactly the customers waiting in it"
        );
    }

    /// When the driver should call [`Engine::handle_timeout`] at the latest (in driver time: a
    /// timer deadline plus the allowed lateness).
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.timers
            .next_deadline()
            .map(|d| d + self.rules.settings.allowed_lateness)
    }

    /// Takes the outputs queued so far, in emission order.
    pub fn drain_outputs(&mut self) -> std::vec::Drain<'_, Output> {
        self.queue.drain(..)
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        for (src, row) in self.event_counts.iter().enumerate() {
            let name = self
                .words
                .get(Sym(src as u32))
                .map(|w| w.to_string())
                .unwrap_or_default();
            for (column, &n) in row.iter().enumerate().filter(|(_, n)| **n > 0) {
                *s.events
                    .entry((name.clone(), counted_name(column)))
                    .or_default() += n;
            }
        }
        for ((rule, sev), &n) in &self.alert_counts {
            *s.alerts.entry((rule.to_string(), *sev)).or_default() += n;
        }
        s.ownership_changes = self.ownership_changes();
        s
    }

    /// Ownership changes and refusals so far, by reason (those counted at least once).
    fn ownership_changes(&self) -> std::collections::BTreeMap<&'static str, u64> {
        stats::OWNERSHIP_CHANGE_REASONS
            .into_iter()
            .zip(self.change_counts)
            .filter(|&(_, n)| n > 0)
            .collect()
    }

    /// Counts an ownership change or refusal; `reason` is one of
    /// [`stats::OWNERSHIP_CHANGE_REASONS`] (a snapshot names them by text).
    fn count_change(&mut self, reason: &'static str) {
        let i = stats::change_reason_index(reason);
        // A reason missing from the list is a mistake in this crate: the tests stop at it; a
        // running engine counts nothing rather than stop.
        debug_assert!(
            i.is_some(),
            "ownership change reason `{reason}` missing from OWNERSHIP_CHANGE_REASONS"
        );
        if let Some(i) = i {
            self.change_counts[i] += 1;
        }
    }

    pub fn state_size(&self) -> StateSize {
        let mut size = StateSize {
            identifiers: self.identity.len(),
            timers: self.timers.len() + self.ledger.pending_deadlines(),
            ..StateSize::default()
        };
        for c in self.slots.iter().flatten() {
            size.customers += 1;
            size.log_entries += c.log.len();
            if c.hold.owner.is_some() {
                size.owned += 1;
            }
            if Engine::is_waiting(&c.hold) {
                size.waiting += 1;
            }
        }
        size
    }

    /// Advances the clock with no event (a quiet stream) and fires due timers.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if self.clock.is_none_or(|c| now > c) {
            self.clock = Some(now);
        }
        self.fire_timers();
    }

    /// A hint with no effect on any result: starts loading the state the next events will
    /// touch, so that handling them finds it in cache instead of waiting for memory. A driver
    /// that holds the coming events (a replay's batch) calls it before each event with the
    /// four after it, each one step further along a chain of dependent loads: the fourth's own
    /// bytes (the event itself: the next call reads its customer-id hash from them), the
    /// key-index bucket of the third (its address follows from that hash), the customer record
    /// of the second (found through that bucket, loaded by now), and what the record of the
    /// next one points to: its newest log entries and its identifiers.
    pub fn prefetch(&self, coming: [Option<&Event>; 4]) {
        let [next, after_next, third, fourth] = coming;
        if let Some(Some(cust)) = next
            .and_then(|e| self.named_slot(e))
            .and_then(|slot| self.slots.get(slot as usize))
        {
            prefetch::lines(&cust.log[cust.log.len().saturating_sub(2)..]);
            prefetch::lines(&cust.identifiers[..]);
        }
        if let Some(slot) = after_next.and_then(|e| self.named_slot(e)) {
            self.prefetch_slot(slot);
        }
        if let Some(h) = third.and_then(|e| e.customer_id_hash()) {
            self.by_key.prefetch(h);
        }
        if let Some(e) = fourth {
            prefetch::lines(e);
        }
    }

    /// Also used by timers: they start loading the record of the customer they visit two
    /// visits ahead. (Loading its log one visit ahead as well made no measurable difference.)
    fn prefetch_slot(&self, slot: u32) {
        if let Some(cust) = self.slots.get(slot as usize) {
            prefetch::lines(cust);
        }
    }

    fn named_slot(&self, event: &Event) -> Option<u32> {
        let c = event.customer();
        self.by_key
            .get_hashed(c.id.as_deref()?, event.customer_id_hash()?)
    }

    /// Starts an event-time clock where a stream's first events agree, before any is placed
    /// (see [`clock`]): a driver that holds them calls this, then places them in the order they
    /// came, so that a first event with a mistyped year is refused instead of setting the
    /// clock. Returns where it started; `None` once the clock runs, or without events.
    pub fn start_clock_where_agreed<'a>(
        &mut self,
        first: impl IntoIterator<Item = &'a Event>,
    ) -> Option<Timestamp> {
        if self.clock.is_some() {
            return None;
        }
        let times: Vec<Timestamp> = first.into_iter().map(Event::occurred_at).collect();
        self.clock = clock::agreed_start(&times, self.rules.settings.max_clock_jump);
        self.clock
    }

    /// Processes one event when event time is the clock (a replay, a file, Kafka's event
    /// clock): `now` is the newest event time. An event further ahead of it than
    /// `settings.max_clock_jump` is refused (`future_timestamp`): taken, it would fire every
    /// deadline up to its time at once and make every later event too late.
    pub fn handle_event_in_event_time(&mut self, event: &Event) -> Result<(), Rejection> {
        let t = event.occurred_at();
        let Some(clock) = self.clock else {
            return self.handle_event(event, t);
        };
        let jump = self.rules.settings.max_clock_jump;
        if t > clock + jump {
            let tz = self.rules.settings.time_zone;
            return Err(self.reject(
                RejectReason::FutureTimestamp,
                format!(
                    "occurred_at {} is {} ahead of the newest event time {}, more than settings.max_clock_jump {}; check the publisher's clock, or raise max_clock_jump if the history really has such a gap",
                    t.to_rfc3339_in(tz),
                    crate::time::format_span(t - clock),
                    clock.to_rfc3339_in(tz),
                    crate::time::format_span(jump)
                ),
            ));
        }
        self.handle_event(event, t.max(clock))
    }

    /// Processes one event. `now` is the driver's clock, used to refuse events that claim to
    /// be from the future; a replay passes the event's own time.
    pub fn handle_event(&mut self, event: &Event, now: Timestamp) -> Result<(), Rejection> {
        let t = event.occurred_at();
        if t > now + self.rules.settings.max_future_skew {
            return Err(self.reject(
                RejectReason::FutureTimestamp,
                format!(
                    "occurred_at {} is more than {} ahead of the engine's clock {}; check the publisher's clock",
                    t.to_rfc3339_in(self.rules.settings.time_zone),
                    crate::time::format_span(self.rules.settings.max_future_skew),
                    now.to_rfc3339_in(self.rules.settings.time_zone)
                ),
            ));
        }
        let watermark = self.watermark();
        let late = watermark.is_some_and(|w| t < w);
        if late && matches!(event, Event::Activity(_)) {
            // A publisher's retry may come after the allowed lateness: while the event is still
            // in its customer's log it is a redelivery, ignored as one, not a dead letter.
            if self.still_held(event) {
                self.stats.duplicates += 1;
                return Ok(());
            }
            let w = watermark.expect("late implies a watermark");
            return Err(self.reject(
                RejectReason::TooLate,
                format!(
                    "occurred_at {} is {} behind the newest event time, more than the allowed lateness {}; it can no longer be placed in order",
                    t.to_rfc3339_in(self.rules.settings.time_zone),
                    crate::time::format_span(w + self.rules.settings.allowed_lateness - t),
                    crate::time::format_span(self.rules.settings.allowed_lateness)
                ),
            ));
        }
        // Time moves first: timers due before this event fire before it is placed.
        if self.clock.is_none_or(|c| t > c) {
            self.clock = Some(t);
            self.fire_timers();
        }
        // Fast path: an event naming a known customer id with identifiers already linked to
        // it needs nothing from the identity index.
        if let Some(slot) = self.known_customer(event) {
            self.place(slot, event, late, Vec::new())?;
            self.settle();
            return Ok(());
        }
        let c = event.customer();
        let idents = IdentityIndex::identifiers(c, event.ident_digests());
        let (slot, Linked { absorb, linked }) = match c.id.as_deref() {
            Some(id) => {
                let hash = event
                    .customer_id_hash()
                    .expect("an event that names a customer id has its hash");
                let slot = self.customer_slot(id, hash, false);
                let to = self.handle(slot);
                let slots = &self.slots;
                (
                    slot,
                    self.identity.link_all(idents, to, id, |h| status(slots, h)),
                )
            }
            None => {
                let slots = &self.slots;
                let (slot, unknown) = match self.identity.find(idents, |h| status(slots, h)) {
                    Found::Customer { handle, unknown } => (handle.slot, unknown),
                    // A CRM customer evicted from memory: brought back as an event naming
                    // its id would bring it, forgotten in event time as it would be anyway.
                    Found::Dormant { key, unknown } => {
                        let hash = customer_id_hash(&key);
                        (self.customer_slot(&key, hash, false), unknown)
                    }
                    Found::New { key, unknown } => {
                        let hash = customer_id_hash(&key);
                        (self.customer_slot(&key, hash, true), unknown)
                    }
                    Found::Ambiguous(why) => {
                        return Err(self.reject(
                            RejectReason::AmbiguousCustomer,
                            format!("no customer id, and its identifiers can't tell which customer: {why}; publish the CRM's customer id"),
                        ))
                    }
                };
                let to = self.handle(slot);
                self.identity.attach(&unknown, to);
                (
                    slot,
                    Linked {
                        absorb: Vec::new(),
                        linked: unknown,
                    },
                )
            }
        };
        self.note_customer(slot, &linked);
        self.place(slot, event, late, absorb)?;
        self.settle();
        Ok(())
    }

    /// The identity index's handle of a live customer.
    fn handle(&self, slot: u32) -> Handle {
        Handle {
            slot,
            generation: self.generations[slot as usize],
        }
    }

    /// Whether an event with the same source and id is in its customer's log (the customer
    /// found by id, or else by identifiers, without recording anything).
    fn still_held(&self, event: &Event) -> bool {
        let c = event.customer();
        let slot = match c.id {
            Some(_) => self.named_slot(event),
            None => {
                let idents = IdentityIndex::identifiers(c, event.ident_digests());
                match self.identity.find(idents, |h| status(&self.slots, h)) {
                    Found::Customer { handle, .. } => Some(handle.slot),
                    // Back in memory if an event naming its id has come since.
                    Found::Dormant { key, .. } => self.by_key.get(&key),
                    Found::New { .. } | Found::Ambiguous(_) => None,
                }
            }
        };
        let Some(cust) = slot.and_then(|s| self.slots[s as usize].as_ref()) else {
            return false;
        };
        let Some(source) = self.words.lookup(event.source()) else {
            return false;
        };
        let (_, _, tie) = canonical_order(event);
        cust.contains(tie, source, event.event_id())
    }

    /// The slot of the customer an event names by id, when every identifier it carries is
    /// already linked to that customer.
    fn known_customer(&self, event: &Event) -> Option<u32> {
        let c = event.customer();
        let slot = self
            .by_key
            .get_hashed(c.id.as_deref()?, event.customer_id_hash()?)?;
        let cust = self.slots[slot as usize].as_ref()?;
        IdentityIndex::identifiers(c, event.ident_digests())
            .all(|i| cust.identifiers.iter().any(|known| known.is(&i)))
            .then_some(slot)
    }

    /// Puts an event into its customer's log and folds it.
    fn place(
        &mut self,
        slot: u32,
        event: &Event,
        late: bool,
        absorb: Vec<Handle>,
    ) -> Result<(), Rejection> {
        let given = {
            let cust = self.slots[slot as usize].as_mut().expect("live slot");
            let given = self
                .given
                .of(&mut self.words, event.customer(), cust.last_given);
            // Sources that describe the customer take turns with sources that don't: the last
            // description stays to compare the next one with.
            if given != GivenId::NOTHING {
                cust.last_given = given;
            }
            given
        };
        let entry = self.entry_for(event, given, late);
        let absorbed_any = !absorb.is_empty();
        for other in absorb {
            self.absorb(slot, other, entry.t);
        }
        let cust = self.slots[slot as usize].as_mut().expect("live slot");
        if cust.contains(entry.tie, entry.source, &entry.event_id) {
            self.stats.duplicates += 1;
            if absorbed_any {
                self.refold(slot);
                self.reissue_finals(slot);
            }
            return Ok(());
        }
        let column = match event {
            Event::Activity(a) => a.kind as usize,
            Event::Ownership(o) => 6 + o.action as usize,
        };
        let src = entry.source.0 as usize;
        if self.event_counts.len() <= src {
            self.event_counts.resize(src + 1, [0; 13]);
        }
        self.event_counts[src][column] += 1;
        if late {
            self.stats.late_ownership_applied += 1;
        }
        let key = entry.key();
        let pos = cust.position(key);
        let in_order = pos == cust.log.len();
        cust.insert_entry(pos, entry);
        self.lifecycle_enqueue(slot, key);
        if in_order && !absorbed_any {
            self.fold_last(slot);
        } else {
            if !in_order {
                self.stats.reordered += 1;
            }
            self.refold(slot);
            if absorbed_any {
                self.reissue_finals(slot);
            }
        }
        self.schedule_housekeeping(slot);
        Ok(())
    }

    fn reject(&mut self, reason: RejectReason, detail: String) -> Rejection {
        *self.stats.rejected.entry(reason).or_default() += 1;
        Rejection::new(reason, detail)
    }

    /// The slot of the customer with this key (its hash `hash`), made if it is new.
    fn customer_slot(&mut self, key: &str, hash: u64, provisional: bool) -> u32 {
        if let Some(slot) = self.by_key.get_hashed(key, hash) {
            return slot;
        }
        let key: Arc<str> = Arc::from(key);
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                self.generations.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        self.generations[slot as usize] = self.generations[slot as usize].wrapping_add(1);
        self.slots[slot as usize] = Some(Customer::new(
            key.clone(),
            hash,
            provisional,
            self.generations[slot as usize],
            self.blank,
        ));
        self.by_key.insert(key, hash, slot);
        self.stats.customers_created += 1;
        slot
    }

    /// Records the identifiers newly linked to the customer.
    fn note_customer(&mut self, slot: u32, linked: &[Ident<'_>]) {
        let cust = self.slots[slot as usize].as_mut().expect("live slot");
        for ident in linked {
            cust.identifiers.push((*ident).into());
        }
    }

    /// Finds the customer's pools again, by the rules in force: wherever its attributes are
    /// kept (after a rules reload or a restore).
    fn place_in_pools(&mut self, slot: u32) {
        let Some(cust) = self.slots[slot as usize].as_mut() else {
            return;
        };
        for attrs in [
            &mut cust.base.attrs,
            &mut cust.head.attrs,
            &mut cust.hold.attrs,
        ] {
            attrs.place(&self.rules, &self.words);
        }
    }

    fn entry_for(&mut self, event: &Event, given: GivenId, late: bool) -> Entry {
        let words = &self.words;
        let source = match self
            .recent_sources
            .iter()
            .find(|&&sym| words.get(sym).is_some_and(|w| **w == *event.source()))
        {
            Some(&sym) => sym,
            None => {
                let sym = self.words.intern(event.source());
                self.recent_sources.rotate_right(1);
                self.recent_sources[0] = sym;
                sym
            }
        };
        let event_id = event.event_id();
        let (_, _, tie) = canonical_order(event);
        match event {
            Event::Activity(Activity {
                occurred_at,
                rep,
                kind,
                direction,
                ..
            }) => {
                let (idx, team, role) = self.rep_context(rep, event.rep_digest());
                let active = self.reps.get(idx).active;
                Entry {
                    t: *occurred_at,
                    order: 1,
                    tie,
                    source,
                    event_id: event_id.clone(),
                    given,
                    body: Body::Contact {
                        rep: idx,
                        team,
                        role,
                        active,
                        kind: *kind,
                        direction: *direction,
                    },
                }
            }
            Event::Ownership(Ownership {
                occurred_at,
                action,
                rep,
                account_team,
                ..
            }) => {
                let rep = rep.as_ref().map(|r| {
                    let (idx, team, _) = self.rep_context(r, event.rep_digest());
                    (idx, team)
                });
                let account_team = account_team.iter().map(|id| self.reps.intern(id)).collect();
                let t = if late {
                    self.watermark().unwrap_or(*occurred_at)
                } else {
                    *occurred_at
                };
                Entry {
                    t,
                    order: 0,
                    tie,
                    source,
                    event_id: event_id.clone(),
                    given,
                    body: Body::Ownership {
                        action: *action,
                        rep,
                        account_team,
                        occurred: *occurred_at,
                    },
                }
            }
        }
    }

    /// The rep's handle, team and role: the roster's word first, then the event's.
    /// `digest` is the event's [`Event::rep_digest`], which an event that names a rep has.
    fn rep_context(
        &mut self,
        rep: &crate::event::RepRef,
        digest: Option<u64>,
    ) -> (RepIdx, Sym, Sym) {
        let id = crate::digest_map::Digested {
            text: &rep.id,
            digest: digest.expect("an event that names a rep has its digest"),
        };
        let idx = self.reps.intern_digested(id);
        let info = self.reps.get(idx);
        let (mut team, mut role) = (info.team, info.role);
        if team.is_none() {
            team = self.words.intern_opt(rep.team.as_deref());
        }
        if role.is_none() {
            role = self.words.intern_opt(rep.role.as_deref());
        }
        (idx, team, role)
    }

    /// Fast path: fold the newest entry onto `head` and emit what it causes.
    fn fold_last(&mut self, slot: u32) {
        let cust = self.slots[slot as usize].as_mut().expect("live slot");
        let ctx = ctx!(self, cust, cust.head.attrs, true);
        let i = cust.log.len() - 1;
        self.scratch.clear();
        detect::step(
            &ctx,
            &mut cust.head,
            &cust.log,
            i,
            &mut self.seen,
            &mut self.scratch,
        );
        for (key, out) in self.scratch.drain(..) {
            cust.emitted.push(Emitted {
                key,
                id: out.id().to_string(),
                ty: out.ty(),
                rule: rule_index(&self.rules, &out),
            });
            count_output(&mut self.stats, &mut self.alert_counts, &out);
            self.queue.push(out);
        }
    }

    /// Slow path: fold the whole log again from `base`, then emit what is new and withdraw
    /// what no longer holds.
    fn refold(&mut self, slot: u32) {
        let cust = self.slots[slot as usize].as_mut().expect("live slot");
        let ctx = ctx!(self, cust, cust.base.attrs, true);
        let mut fold: Fold = cust.base.clone();
        self.scratch.clear();
        for i in cust.folded..cust.log.len() {
            detect::step(
                &ctx,
                &mut fold,
                &cust.log,
                i,
                &mut self.seen,
                &mut self.scratch,
            );
        }
        cust.head = fold;
        let old = std::mem::take(&mut cust.emitted);
        let mut gone: Vec<&Emitted> = old
            .iter()
            .filter(|o| !self.scratch.iter().any(|(_, n)| n.id() == o.id))
            .collect();
        gone.sort_by_key(|g| g.key);
        let subject = cust.key.clone();
        for g in gone {
            let out = withdrawal(
                &subject,
                g,
                cust.log
                    .iter()
                    .find(|e| e.key() == g.key)
                    .map_or(g.key.0, |e| e.t),
                "a late event or a customer merge changed the facts this output was based on",
            );
            count_output(&mut self.stats, &mut self.alert_counts, &out);
            self.queue.push(out);
        }
        for (key, out) in self.scratch.drain(..) {
            cust.emitted.push(Emitted {
                key,
                id: out.id().to_string(),
                ty: out.ty(),
                rule: rule_index(&self.rules, &out),
            });
            if !old.iter().any(|o| o.id == out.id()) {
                count_output(&mut self.stats, &mut self.alert_counts, &out);
                self.queue.push(out);
            }
        }
    }

    /// Merges the provisional customer `other` into `slot`.
    /// `at`: the time of the event that revealed that `other` is this customer.
    fn absorb(&mut self, slot: u32, other: Handle, at: Timestamp) {
        let other_slot = other.slot;
        if other_slot == slot || status(&self.slots, other).is_none() {
            return;
        }
        let first_try = self.untried_due(slot);
        // What a merge re-issues must not depend on when housekeeping last ran: both sides
        // are first compacted to the same event-time cutoff, so exactly the outputs of events
        // within one horizon of the watermark are folded again.
        if let Some(w) = self.watermark() {
            let cutoff = w - self.horizon;
            self.compact(slot, cutoff);
            if self.slots[other_slot as usize].is_some() {
                self.compact(other_slot, cutoff);
            }
        }
        // Both waits may change below: each leaves the pools' line, and the merged customer
        // takes its place again at the end if it still waits in it.
        if self.slots[other_slot as usize].is_none() {
            return;
        }
        self.leave_line(other_slot);
        self.leave_line(slot);
        let gone = self.slots[other_slot as usize].take().expect("live slot");
        self.by_key.remove(&gone.key);
        self.free.push(other_slot);
        self.stats.merges += 1;
        let into = self.slots[slot as usize].as_mut().expect("live slot");
        let into_key = into.key.clone();
        let (into_generation, into_hash) = (into.generation, into.key_hash);
        // One owner survives: the customer's own, else the provisional one's, if it came after
        // the customer's own last word on its ownership. Of the provisional customer's
        // ownership history (its owner states here, its outputs below) only what came after
        // that word carries over, and nothing when either side's owner is dropped: a CRM that
        // applies the customer's ownership by time then ends with the owner kept here.
        let own_owner = into.hold.owner.as_ref().map(|o| o.rep);
        let decided = into.hold.ownership_decided;
        let after_decided = move |t: Timestamp| decided.is_none_or(|d| t > d);
        let keep_theirs = own_owner.is_none()
            && gone
                .hold
                .owner
                .as_ref()
                .is_some_and(|o| after_decided(o.since));
        let dropped_owner = if keep_theirs {
            None
        } else {
            gone.hold.owner.clone()
        };
        let history_carries = own_owner.is_none() && dropped_owner.is_none();
        let carries = move |t: Timestamp| history_carries && after_decided(t);
        // The customer's own description wins; the provisional one's fills what it lacks.
        let mut hold_attrs = into.hold.attrs;
        hold_attrs.fill_from(&gone.hold.attrs, &self.rules, &self.words);
        into.base
            .attrs
            .fill_from(&gone.base.attrs, &self.rules, &self.words);
        into.base.last = into.base.last.max(gone.base.last);
        let hold_last = into.hold.last.max(gone.hold.last);
        let hold_decided = decided.max(gone.hold.ownership_decided);
        // When the provisional customer has waited in its pool longer than the customer (or
        // the customer doesn't wait), the customer has waited since then, as it would have
        // had the two been one from the start. The provisional customer's planned assignment
        // leaves with its slot, so it is planned again below, in the customer's pool. Not once
        // it has been tried (nobody was eligible, a retry is planned): planned again, it would
        // be decided at a time the lifecycle has passed, before the customer's own history up
        // to now. The customer's own wait stands, or its next contact starts one.
        let waited_longer = gone
            .hold
            .waiting_since
            .filter(|_| gone.hold.assign_retry.is_none())
            .filter(|g| into.hold.waiting_since.is_none_or(|w| g < &w));
        // The later release names the rep inside the reclaim cooldown, as it would have had
        // the two been one customer from the start.
        let released = into
            .hold
            .released
            .into_iter()
            .chain(gone.hold.released)
            .max_by_key(|(_, at)| *at);
        if keep_theirs {
            into.hold = gone.hold.clone();
        }
        into.hold.attrs = hold_attrs;
        into.hold.last = hold_last;
        into.hold.ownership_decided = hold_decided;
        into.hold.released = released;
        for e in gone.log {
            let state = matches!(e.body, Body::OwnerState(_));
            if state && !carries(e.t) {
                continue;
            }
            // An owner state is no event that both sides could hold: deadline-driven ones even
            // share one key.
            if state || !into.contains(e.tie, e.source, &e.event_id) {
                let pos = into.position(e.key());
                into.insert_entry(pos, e);
                // An entry older than what is already folded joins the window context: it is
                // seen by later windows but not folded again.
                if pos < into.folded {
                    into.folded += 1;
                }
            }
        }
        // Detection's owner at the compaction cutoff: the provisional customer's, when the
        // customer had none there, as a re-fold of its first-touch contact would find it;
        // unless the customer has no owner now and had its own say after that owner's start,
        // which its log may no longer show.
        if into.base.owner.is_none()
            && gone
                .base
                .owner
                .as_ref()
                .is_some_and(|o| own_owner.is_some() || after_decided(o.since))
        {
            into.base.owner = gone.base.owner;
        }
        into.base.cooldowns.extend(gone.base.cooldowns);
        for ident in &gone.identifiers {
            if !into.identifiers.contains(ident) {
                into.identifiers.push(ident.clone());
            }
        }
        self.identity
            .relink(&gone.identifiers, other, self.handle(slot));
        self.ledger
            .redirect(other_slot, slot, into_generation, into_hash);
        if let Some(o) = &dropped_owner {
            self.ledger.drop_rep(o);
            self.count_change("merged");
        }
        if keep_theirs {
            self.schedule_owner_deadlines_after_merge(slot);
        }
        let unowned = self.slots[slot as usize]
            .as_ref()
            .is_some_and(|c| c.hold.owner.is_none());
        if let Some(since) = waited_longer.filter(|_| unowned) {
            self.enter_pool(slot, since);
        }
        self.join_line(slot);
        for g in &gone.emitted {
            let out = withdrawal(
                &gone.key,
                g,
                g.key.0,
                &format!("customer {} turned out to be customer {into_key}; its outputs are re-issued under that id", gone.key),
            );
            count_output(&mut self.stats, &mut self.alert_counts, &out);
            self.queue.push(out);
        }
        // The lifecycle's decisions about the provisional customer move with it: withdrawn
        // under the provisional key, re-issued under the real one (but see `carried`).
        let into_provisional = self.slots[slot as usize]
            .as_ref()
            .is_some_and(|c| c.provisional);
        for f in &gone.finals {
            let g = Emitted {
                key: (f.time(), 0, 0),
                id: f.id().to_string(),
                ty: f.ty(),
                rule: None,
            };
            // The provisional customer's ownership history (claims, assignments, releases, and
            // what was said of those holdings) is re-issued only where `carries` says: a claim
            // or release interleaved by time with the customer's own history would leave a CRM
            // that applies both with another owner than this one. Its refusals stay history.
            let carried = carries(f.time()) || f.ty() == OutputType::OwnershipRejected;
            let reason = if carried {
                format!("customer {} turned out to be customer {into_key}; its outputs are re-issued under that id", gone.key)
            } else if own_owner.is_some() {
                format!("customer {} turned out to be customer {into_key}, which has an owner of its own; what was decided about its ownership does not carry over", gone.key)
            } else {
                let last = decided.map(|d| self.time_text(d)).unwrap_or_default();
                let p = &gone.key;
                if after_decided(f.time()) {
                    format!("customer {p} turned out to be customer {into_key}, whose own ownership was decided at {last}, after the owner of customer {p} got it; what was decided about that holding does not carry over")
                } else {
                    format!("customer {p} turned out to be customer {into_key}, whose own ownership was decided later, at {last}; what was decided about the ownership of customer {p} before that does not carry over")
                }
            };
            let out = withdrawal(&gone.key, &g, f.time(), &reason);
            count_output(&mut self.stats, &mut self.alert_counts, &out);
            self.queue.push(out);
            if !carried {
                continue;
            }
            let data = reissued(f.data(), &gone.key, &into_key, into_provisional);
            // A resolution names the alert it settles, and that alert is raised again under
            // the customer's key by the re-fold that follows the merge: the resolution waits
            // for it, to name it as a resolution of the merged customer would. The other
            // decisions wait with it, so that they still come out in time order.
            let alert = matches!(
                f.ty(),
                OutputType::OwnershipReassigned | OutputType::ReassignmentRecommended
            )
            .then(|| {
                gone.emitted.iter().find(|g| {
                    g.ty == OutputType::Collision && data.contains(&collision_id_field(&g.id))
                })
            })
            .flatten()
            .map(|a| (a.key, a.rule, a.id.clone()));
            self.moved_finals.push(MovedFinal {
                ty: f.ty(),
                time: f.time(),
                data,
                alert,
            });
        }
        // Nothing to tell when the customer's own owner is the same rep: they keep it.
        if let Some(o) = dropped_owner.as_ref().filter(|o| Some(o.rep) != own_owner) {
            self.reject_dropped_owner(slot, o, &gone.key, decided, at);
        }
        // A dropped provisional owner lost a customer: one who waits for a rep with room may
        // be theirs now. The provisional customer's description may have put the customer in
        // a pool that waits less. Either try comes just after the event that revealed the
        // merge: an owner it gives this customer must not make that event an intrusion.
        let after = (at + Span(1)).max(self.watermark().unwrap_or(at));
        self.offer_room(after);
        self.first_try_sooner(slot, first_try, after);
    }

    /// Re-issues, in their order, the decisions a merge moved to `slot`. A resolution names
    /// the alert the re-fold raised for the same contact and rule (the provisional customer's
    /// one was withdrawn); when the merged facts raise no such alert, it keeps the old name.
    fn reissue_finals(&mut self, slot: u32) {
        let moved = std::mem::take(&mut self.moved_finals);
        let Some(cust) = self.slots[slot as usize].as_mut() else {
            return;
        };
        for m in moved {
            let renamed = m.alert.as_ref().and_then(|(key, rule, old)| {
                let alert = cust
                    .emitted
                    .iter()
                    .find(|g| g.ty == OutputType::Collision && g.key == *key && g.rule == *rule)?;
                Some(
                    m.data
                        .replace(&collision_id_field(old), &collision_id_field(&alert.id)),
                )
            });
            let data = renamed.unwrap_or(m.data);
            let out = Output::from_rendered(m.ty, cust.key.clone(), m.time, data, None);
            if cust.provisional {
                cust.finals.push(out.clone());
            }
            self.queue.push(out);
        }
    }

    /// Makes sure a housekeeping timer is pending for the customer. Timers are not moved on
    /// every event: when one fires early, it is simply set again for the newest entry.
    fn schedule_housekeeping(&mut self, slot: u32) {
        let watermark = self.watermark();
        let cust = self.slots[slot as usize].as_mut().expect("live slot");
        if cust.housekeeping_at.is_some() {
            return;
        }
        let at = match cust.newest() {
            Some(newest) => newest + self.horizon + Span(1),
            // Nothing left to fold: an unowned customer is evicted once it is forgotten.
            None if cust.log.is_empty()
                && cust.base.owner.is_none()
                && cust.hold.owner.is_none() =>
            {
                let Some(last) = cust.base.last.max(cust.hold.last) else {
                    return;
                };
                let at = last + self.forget_after + Span(1);
                if watermark.is_some_and(|w| at <= w) {
                    // Housekeeping has just found it can't go yet: the next event looks again.
                    return;
                }
                at
            }
            None => return,
        };
        cust.housekeeping_at = Some(at);
        self.timers
            .schedule(at, (slot, cust.generation, TimerKind::Housekeeping));
    }

    fn fire_timers(&mut self) {
        // Lifecycle decisions first: housekeeping may fold entries the lifecycle still reads.
        self.settle();
        let Some(watermark) = self.watermark() else {
            return;
        };
        while let Some((at, (slot, generation, kind))) = self.timers.pop_due(watermark) {
            if let Some((_, (later, _, _))) = self.timers.ahead(1) {
                self.prefetch_slot(*later);
            }
            let live = self.slots[slot as usize]
                .as_ref()
                .is_some_and(|c| c.generation == generation && c.housekeeping_at == Some(at));
            if !live {
                continue;
            }
            match kind {
                TimerKind::Housekeeping => self.housekeeping(slot, watermark),
            }
        }
    }

    /// Folds the live entries older than `cutoff` into `base`. They stay in the log as window
    /// context while a live entry's window can reach them (a re-fold after a late event looks
    /// back that far).
    fn compact(&mut self, slot: u32, cutoff: Timestamp) {
        let cust = self.slots[slot as usize].as_mut().expect("live slot");
        let keep_from = cust.partition_point(|e| e.t < cutoff).max(cust.folded);
        if keep_from > cust.folded {
            let ctx = ctx!(self, cust, cust.base.attrs, false);
            let mut sink = Vec::new();
            for i in cust.folded..keep_from {
                detect::step(
                    &ctx,
                    &mut cust.base,
                    &cust.log,
                    i,
                    &mut self.seen,
                    &mut sink,
                );
            }
            let last_key = cust.log[keep_from - 1].key();
            cust.emitted.retain(|e| e.key > last_key);
            cust.folded = keep_from;
        }
        let context_from = cust.log.partition_point(|e| e.t < cutoff - self.horizon);
        if context_from > 0 {
            cust.log.drain(..context_from);
            cust.folded -= context_from;
        }
    }

    /// Folds entries no on-time event can reach into `base`; evicts the customer when nothing
    /// is left to remember: no owner, nothing within reach of a rule, and quiet for longer than
    /// [`Rules::forget_after`] (an event after that reads it as forgotten anyway).
    fn housekeeping(&mut self, slot: u32, watermark: Timestamp) {
        let cutoff = watermark - self.horizon;
        let cust = self.slots[slot as usize].as_mut().expect("live slot");
        cust.housekeeping_at = None;
        let keep_from = cust.partition_point(|e| e.t < cutoff).max(cust.folded);
        if keep_from == cust.log.len() {
            // Everything is out of reach: the base becomes the head, no re-fold needed, and
            // no window context is needed either.
            cust.base = cust.head.clone();
            cust.log.clear();
            cust.folded = 0;
            cust.emitted.clear();
        } else if cust.log.len() - cust.folded > COMPACT_AT {
            self.compact(slot, cutoff);
        }
        let cust = self.slots[slot as usize].as_mut().expect("live slot");
        let rules = &self.rules;
        let live_cooldown = |(ri, _, last): &(u16, u64, Timestamp)| {
            rules
                .collisions
                .get(*ri as usize)
                .is_some_and(|r| cutoff < *last + r.cooldown)
        };
        cust.base.cooldowns.retain(live_cooldown);
        let forgotten_by = watermark - self.forget_after;
        if cust.log.is_empty()
            && cust.base.last.max(cust.hold.last) < Some(forgotten_by)
            && cust.base.owner.is_none()
            && cust.base.cooldowns.is_empty()
            && lifecycle::idle(&cust.hold)
        {
            let gone = self.slots[slot as usize].take().expect("live slot");
            self.by_key.remove(&gone.key);
            let key = (!gone.provisional).then_some(&gone.key);
            self.identity
                .forget(&gone.identifiers, self.handle(slot), key);
            self.free.push(slot);
            self.stats.customers_evicted += 1;
        } else {
            self.schedule_housekeeping(slot);
        }
    }
}

/// The customer an identity handle names, if it is still there (its slot not emptied or reused).
fn live(slots: &slots::Slots, h: Handle) -> Option<&Customer> {
    slots
        .get(h.slot as usize)?
        .as_ref()
        .filter(|c| c.generation == h.generation)
}

/// What the identity index needs to know of a handle: whether a live customer has it, and
/// whether that customer is provisional.
fn status(slots: &slots::Slots, h: Handle) -> Status {
    live(slots, h).map(|c| c.provisional)
}

/// The order in which the core places events of one customer: event time, then ownership
/// changes before contacts at the same millisecond, then a hash of (source, event id). Feeding
/// events in this order never causes a re-fold; any other order within the allowed lateness
/// gives the same standing outputs.
pub fn canonical_order(event: &Event) -> (Timestamp, u8, u64) {
    let order = match event {
        Event::Ownership(_) => 0,
        Event::Activity(_) => 1,
    };
    (event.occurred_at(), order, event.tie())
}

fn withdrawal(subject: &Arc<str>, g: &Emitted, t: Timestamp, reason: &str) -> Output {
    Output::new(
        OutputType::Withdrawn,
        subject.clone(),
        t,
        &WithdrawnData {
            withdrawn_id: g.id.clone(),
            withdrawn_type: g.ty.as_str(),
            reason: reason.to_string(),
        },
        None,
    )
}

/// How a resolution's data names the alert it settles (alert ids are hex: no escaping).
fn collision_id_field(id: &str) -> String {
    format!("\"collision_id\":\"{id}\"")
}

/// A provisional customer's output data, rewritten for the customer it turned out to be.
fn reissued(data: &str, from: &str, to: &str, still_provisional: bool) -> String {
    let from_json = serde_json::to_string(from).expect("a string serializes");
    let to_json = serde_json::to_string(to).expect("a string serializes");
    let mut s = data.replace(
        &format!("\"id\":{from_json},\"provisional\":true"),
        &format!("\"id\":{to_json},\"provisional\":{still_provisional}"),
    );
    // Explanations name the customer too.
    s = s.replace(&format!("customer {from}"), &format!("customer {to}"));
    s
}

/// The index of the collision rule that raised an output.
fn rule_index(rules: &Rules, out: &Output) -> Option<u16> {
    let (id, _) = out.rule()?;
    rules
        .collisions
        .iter()
        .position(|r| *r.id == **id)
        .map(|i| i as u16)
}

fn count_output(
    stats: &mut Stats,
    alerts: &mut FxHashMap<(Arc<str>, &'static str), u64>,
    out: &Output,
) {
    match out.ty() {
        OutputType::Collision => {
            if let Some((rule, sev)) = out.rule() {
                *alerts.entry((rule.clone(), sev)).or_default() += 1;
            }
        }
        OutputType::OwnershipClaimed => stats.claims += 1,
        OutputType::Withdrawn => stats.withdrawn += 1,
        _ => {}
    }
}
