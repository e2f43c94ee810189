//! The ownership lifecycle: claims, protection with extension and cap, reclaim, pools and
//! assignment, follow-up SLAs, dormant customers and collision resolution.
//!
//! # Why decisions wait for the watermark
//! Collision alerts are about one customer and may be revised (a late event withdraws one).
//! Ownership decisions are commands to the CRM and depend on *other* customers too: a rep's
//! claims today, how many customers they own, whose turn it is in a rotation. So they are made
//! once the events that decide them are final — when the watermark passes them — in one global
//! event-time order (events by their canonical key, timers before events at the same
//! millisecond, customers by the hash of their key). Arrival order within the allowed lateness
//! therefore never changes a decision, and a decision is never withdrawn.
//!
//! Detection learns the owner from `OwnerState` entries this module writes into the
//! customer's log at the decision's event time; a re-fold then re-checks the contacts after it.

use super::attrs::GivenId;
use super::customer::{Body, Entry, Holding, Key, Owner, Via, SLA_ALL, SLA_FIRST};
use super::reps::{RepIdx, Sym};
use super::timers::Wheel;
use super::Engine;
use crate::calendar::{day_start, local_date};
use crate::config::{CollisionKind, NewLeadSla, Resolution, Strategy};
use crate::event::{ContactKind, Direction, EventId, OwnershipAction};
use crate::identity::Handle;
use crate::output::{
    say, ClaimData, EvidenceData, HoldData, OutTime, Output, OutputType, ReassignmentData,
    RejectedData, RepData, ScoreData, Text, WindowData,
};
use crate::time::{Span, Timestamp};
use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::sync::Arc;

/// What a lifecycle deadline is for. The order is the firing order at equal times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Due {
    Warning,
    FirstFollowUp,
    FollowUps,
    Inbound,
    NoDeal,
    Reclaim,
    Dormant,
    Assign,
}

impl Due {
    pub(super) const ALL: [Due; 8] = [
        Due::Warning,
        Due::FirstFollowUp,
        Due::FollowUps,
        Due::Inbound,
        Due::NoDeal,
        Due::Reclaim,
        Due::Dormant,
        Due::Assign,
    ];

    /// The name a snapshot stores.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Due::Warning => "warning",
            Due::FirstFollowUp => "first_follow_up",
            Due::FollowUps => "follow_ups",
            Due::Inbound => "inbound",
            Due::NoDeal => "no_deal",
            Due::Reclaim => "reclaim",
            Due::Dormant => "dormant",
            Due::Assign => "assign",
        }
    }
}

/// An event waiting to be final, at its event time: (the rest of its key: order and tie;
/// customer key hash, slot, generation).
pub(super) type PendingEvent = (u8, u64, u64, u32, u32);

/// log2 of the bucket width of the events waiting for the watermark (2^16 ms ≈ 65 s). Narrower
/// than the allowed lateness usually is (the shipped rules allow 10 minutes), so most new events
/// land in a later bucket than the one being drained; those that land in it are inserted in
/// order, which is correct but slower (more of them when the lateness is under a bucket).
const PENDING_SHIFT: u32 = 16;
/// A pending deadline, due at its wheel time: (customer key hash, kind, slot, generation).
pub(super) type Deadline = (u64, Due, u32, u32);
/// A customer waiting after its pool found nobody eligible: (waiting since, customer key hash,
/// slot, generation). The order is the order in which reps who get room are offered them.
pub(super) type Waiting = (Timestamp, u64, u32, u32);

/// Per-rep bookkeeping across customers.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Book {
    pub(super) owned: u32,
    pub(super) locked: u32,
    /// Local day (days since 1970-01-01 in the configured zone) of `claims`.
    pub(super) claim_day: i64,
    pub(super) claims: u32,
    /// Assignment sequence number of the rep's last assignment (0: never).
    pub(super) last_assigned: u64,
}

/// The lifecycle's global state.
#[derive(Debug, Default)]
pub struct Ledger {
    pub(super) pending: Wheel<PendingEvent, PENDING_SHIFT>,
    pub(super) deadlines: Wheel<Deadline>,
    pub(super) books: Vec<Book>,
    pub(super) assignments: u64,
    /// Per pool: the roster's reps who may be assigned its customers (in the pool's teams, not
    /// exempt by role), in roster order, so sorted. Activity, leave and caps are checked at
    /// each assignment.
    pool_reps: Vec<Vec<RepIdx>>,
    /// Customers whose pool found nobody eligible and who still wait, longest wait first. A
    /// rep who gets room is offered the first one their pool may give them. Exactly the
    /// customers [`Engine::is_waiting`] holds for: every change to a wait leaves the line
    /// first ([`Engine::leave_line`]), and a restore rebuilds it from the holdings.
    pub(super) waiting: BTreeSet<Waiting>,
    /// Reps who lost a customer, while customers wait (or in a merge, whose customer may be
    /// out of the line for a moment): the settle loop offers them the waiting customers at the
    /// time of the decision that freed them, a merge at the time of its revealing event.
    freed: Vec<RepIdx>,
}

impl Ledger {
    pub(super) fn new(
        rules: &crate::config::Rules,
        reps: &super::reps::Reps,
        words: &super::reps::Interner,
        exempt_roles: &[Sym],
    ) -> Ledger {
        let mut ledger = Ledger::default();
        ledger.set_pool_reps(rules, reps, words, exempt_roles);
        ledger
    }

    /// Finds, per pool, the roster's reps who may be assigned its customers.
    pub(super) fn set_pool_reps(
        &mut self,
        rules: &crate::config::Rules,
        reps: &super::reps::Reps,
        words: &super::reps::Interner,
        exempt_roles: &[Sym],
    ) {
        self.pool_reps = rules
            .pools
            .iter()
            .map(|p| {
                reps.list
                    .iter()
                    .enumerate()
                    .filter(|(_, info)| {
                        info.in_roster
                            && (info.role.is_none() || !exempt_roles.contains(&info.role))
                            && p.admits_team(words.get(info.team).map(|w| &**w))
                    })
                    .map(|(i, _)| RepIdx(i as u32))
                    .collect()
            })
            .collect();
    }

    pub fn pending_deadlines(&self) -> usize {
        self.deadlines.len()
    }
    fn book(&mut self, rep: RepIdx) -> &mut Book {
        let i = rep.0 as usize;
        if self.books.len() <= i {
            self.books.resize(i + 1, Book::default());
        }
        &mut self.books[i]
    }
    pub(super) fn owned(&self, rep: RepIdx) -> u32 {
        self.books.get(rep.0 as usize).map_or(0, |b| b.owned)
    }
    /// Takes an owner off the books when their customer disappears in a merge. The rep may
    /// have room now, as after any other loss ([`Engine::offer_room`]).
    pub(super) fn drop_rep(&mut self, o: &Owner) {
        let b = self.book(o.rep);
        b.owned = b.owned.saturating_sub(1);
        if o.locked {
            b.locked = b.locked.saturating_sub(1);
        }
        // Whatever the line holds now: the merge has taken its customer out of it for the
        // moment, and offers the room once the customer is back.
        self.freed.push(o.rep);
    }

    /// Moves the pending entries of one customer slot to another (after a merge).
    pub(super) fn redirect(&mut self, from: u32, to: u32, generation: u32, hash: u64) {
        if !self.pending.iter().any(|(_, p)| p.3 == from) {
            return;
        }
        self.pending.update(|p| {
            if p.3 == from {
                *p = (p.0, p.1, hash, to, generation);
            }
        });
    }
}

/// Where an owner state goes in the log: right after the event that caused it (equal keys
/// keep insertion order), so that event is judged by the state before it and the next event —
/// even one of the same millisecond — by the state after it. A timer's decision goes before
/// every event of its millisecond.
fn after(e: &Entry) -> Key {
    match e.body {
        Body::Contact { .. } | Body::Ownership { .. } => e.key(),
        Body::OwnerState(_) => timer_key(e.t),
    }
}

fn timer_key(t: Timestamp) -> Key {
    (t, 0, 0)
}

/// Why a claim is refused: (reason code, explanation).
type Refusal = (&'static str, String);

impl Engine {
    /// Queues an accepted event for the lifecycle, to be handled once it is final.
    pub(super) fn lifecycle_enqueue(&mut self, slot: u32, key: Key) {
        let cust = self.slots[slot as usize].as_ref().expect("live slot");
        let (t, order, tie) = key;
        self.ledger
            .pending
            .schedule(t, (order, tie, cust.key_hash, slot, cust.generation));
    }

    fn schedule_due(&mut self, slot: u32, at: Timestamp, due: Due) {
        let cust = self.slots[slot as usize].as_ref().expect("live slot");
        self.ledger
            .deadlines
            .schedule(at, (cust.key_hash, due, slot, cust.generation));
    }

    /// Handles, in event-time order, every final event and every deadline the watermark has
    /// passed. Deadlines at time T fire once every event before T is final, before events at T.
    pub(super) fn settle(&mut self) {
        let Some(w) = self.watermark() else {
            return;
        };
        // An event at the watermark may still have company (a later arrival at the same
        // time); once the input has ended ([`Engine::finish`]) it can't, so it is final too.
        let final_to = match self.drained_to {
            Some(d) => d.max(w),
            None => w - Span(1),
        };
        loop {
            let next_event = self.ledger.pending.peek_due(final_to).map(|(t, _)| t);
            let next_due = self.ledger.deadlines.peek_due(w).map(|(t, _)| t);
            match (next_event, next_due) {
                (_, Some(d)) if next_event.is_none_or(|e| d <= e) => {
                    let (at, (_, due, slot, generation)) =
                        self.ledger.deadlines.pop_due(w).expect("peeked");
                    if let Some((_, (_, _, later, _))) = self.ledger.deadlines.ahead(1) {
                        self.prefetch_slot(*later);
                    }
                    if self.live(slot, generation) {
                        self.fire_due(slot, at, due);
                        self.offer_room(at);
                    }
                }
                (Some(_), _) => {
                    let (t, (order, tie, _, slot, generation)) =
                        self.ledger.pending.pop_due(final_to).expect("peeked");
                    if let Some((_, (_, _, _, later, _))) = self.ledger.pending.ahead(1) {
                        self.prefetch_slot(*later);
                    }
                    if self.live(slot, generation) {
                        self.finalize(slot, (t, order, tie));
                        self.offer_room(t);
                    }
                }
                _ => break,
            }
        }
    }

    fn live(&self, slot: u32, generation: u32) -> bool {
        super::live(&self.slots, Handle { slot, generation }).is_some()
    }

    fn hold(&mut self, slot: u32) -> &mut Holding {
        &mut self.slots[slot as usize].as_mut().expect("live slot").hold
    }

    fn finalize(&mut self, slot: u32, key: Key) {
        let cust = self.slots[slot as usize].as_ref().expect("live slot");
        // Owner states written after an event share its key: find the event itself.
        let from = cust.partition_point(|e| e.key() < key);
        let Some(i) = (from..cust.log.len())
            .take_while(|&i| cust.log[i].key() == key)
            .find(|&i| !matches!(cust.log[i].body, Body::OwnerState(_)))
        else {
            return;
        };
        let entry = cust.log[i].clone();
        // Decisions see the customer as described at the event's time. A customer forgotten
        // by then starts afresh, as it does when memory housekeeping has evicted it.
        let hold = &self.slots[slot as usize].as_ref().expect("live slot").hold;
        if super::attrs::forgotten(hold.last, entry.t, hold.owner.is_some(), self.forget_after) {
            self.leave_line(slot);
            let fresh = Holding::new(self.blank);
            *self.hold(slot) = fresh;
        }
        let first_try = self.untried_due(slot);
        let hold = &mut self.slots[slot as usize].as_mut().expect("live slot").hold;
        hold.last = Some(entry.t);
        hold.attrs
            .take(entry.given, &self.given, &self.rules, &self.words);
        // A try this event brings forward comes after it: an owner it gives the customer
        // must not make the event itself an intrusion.
        self.first_try_sooner(slot, first_try, entry.t + Span(1));
        let hold = &mut self.slots[slot as usize].as_mut().expect("live slot").hold;
        // A contact with a customer nobody owns puts it in line for its pool's assignment
        // (unless a claim below takes it first). This depends only on final events, never
        // on whether the customer was evicted in between. A customer already waiting keeps
        // its place, also after a try that found nobody eligible: being contacted again is
        // no reason to wait longer than customers who were not.
        if hold.owner.is_none()
            && hold.waiting_since.is_none()
            && matches!(entry.body, Body::Contact { .. })
        {
            self.enter_pool(slot, entry.t);
        }
        match &entry.body {
            Body::Contact {
                rep,
                team,
                role,
                active,
                kind,
                direction,
            } => self.on_contact(slot, &entry, *rep, *team, *role, *active, *kind, *direction),
            Body::Ownership {
                action,
                rep,
                account_team,
                ..
            } => self.on_crm(slot, &entry, *action, *rep, account_team),
            Body::OwnerState(_) => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_contact(
        &mut self,
        slot: u32,
        e: &Entry,
        rep: RepIdx,
        team: Sym,
        role: Sym,
        active: bool,
        kind: ContactKind,
        direction: Direction,
    ) {
        let t = e.t;
        if kind == ContactKind::Complaint {
            return;
        }
        let owner = self.slots[slot as usize]
            .as_ref()
            .and_then(|c| c.hold.owner.as_ref())
            .map(|o| (o.rep, o.won));
        // An inbound contact handled by anyone but the owner (a teammate, customer service)
        // starts the owner's response clock.
        if let (Some((o, _)), Direction::Inbound, Some(sla)) =
            (owner, direction, self.rules.sla.inbound_response)
        {
            if o != rep && self.hold(slot).inbound_waiting.is_none() {
                self.hold(slot).inbound_waiting = Some(t);
                let due = self.inbound_due(t, sla);
                self.schedule_due(slot, due, Due::Inbound);
            }
        }
        if !role.is_none() && self.exempt_roles.contains(&role) {
            return;
        }
        let dormant_after = self.rules.ownership.dormant_after;
        self.hold(slot).last_touch = Some(t);
        match owner {
            Some((owner, won)) if owner == rep => {
                if self.rules.ownership.follow_up_kinds.contains(kind) {
                    let hold = self.hold(slot);
                    hold.follow_ups += 1;
                    hold.inbound_waiting = None;
                    self.extend(slot, e);
                }
                if let (true, Some(d)) = (won, dormant_after) {
                    self.schedule_due(slot, t + d, Due::Dormant);
                }
            }
            Some((_, won)) => {
                if let (true, Some(d)) = (won, dormant_after) {
                    self.schedule_due(slot, t + d, Due::Dormant);
                }
            }
            None => {
                if let Some(kinds) = self.rules.ownership.first_touch {
                    if kinds.contains(kind) {
                        self.first_touch(slot, e, rep, team, active);
                    }
                }
            }
        }
        self.resolve_collisions(slot, e, rep);
    }

    fn inbound_due(&self, t: Timestamp, sla: crate::config::InboundSla) -> Timestamp {
        if sla.business_hours {
            self.rules
                .calendar
                .add_business(t, sla.within, self.rules.settings.time_zone)
        } else {
            t + sla.within
        }
    }

    /// A follow-up by the owner moves the end of protection to `t + extension` when later,
    /// never past the cap.
    fn extend(&mut self, slot: u32, e: &Entry) {
        let p = self.protection(slot);
        let cust = self.slots[slot as usize].as_ref().expect("live slot");
        let Some(o) = cust.hold.owner.as_ref() else {
            return;
        };
        let Some(end) = o.extended_end(&p, e.t) else {
            return;
        };
        let ext = p.extension.unwrap_or(Span::ZERO);
        let previous = o.protected_until;
        let o = self.hold(slot).owner.as_mut().expect("checked");
        o.protected_until = end;
        let capped = o.cap_at == Some(end);
        self.write_owner_state(slot, e.key());
        self.schedule_owner_deadlines(slot, e.t);
        let reason = {
            let cust = self.slots[slot as usize].as_ref().expect("live slot");
            let ctx = ctx!(self, cust, cust.hold.attrs, true);
            let o = cust.hold.owner.as_ref().expect("checked");
            let (who, key, end) = (ctx.rep_label(o.rep, o.team), cust.key.clone(), ctx.at(end));
            let cap = p.cap.unwrap_or(Span::ZERO);
            Text::later(move |out| {
                say!(
                    out,
                    who,
                    " followed up customer ",
                    key,
                    ": protection now ends ",
                    end
                );
                if capped {
                    say!(out, " (the cap: ", cap, " after the claim)")
                } else {
                    say!(out, " (", ext, " after this follow-up)")
                }
            })
        };
        self.emit_hold(
            slot,
            OutputType::OwnershipExtended,
            e.t,
            "extended",
            "ownership.protection",
            end,
            Some(previous),
            Some(e),
            reason,
        );
    }

    /// `active`: the rep's `active` when the contact was placed ([`Body::Contact`]), which
    /// detection's guess at first touch reads too. A rep inactive by the time of this decision
    /// is refused below, with a rejection that corrects that guess.
    fn first_touch(&mut self, slot: u32, e: &Entry, rep: RepIdx, team: Sym, active: bool) {
        if !active {
            return;
        }
        if let Some((code, why)) = self.claim_refusal(slot, rep, team, e.t) {
            self.emit_rejected(slot, e, "first_touch", rep, team, code, why);
            return;
        }
        self.count_claim(rep, e.t);
        self.acquire(slot, e, rep, team, Via::FirstTouch, Box::new([]), false);
        let (data, t) = {
            let cust = self.slots[slot as usize].as_ref().expect("live slot");
            let ctx = ctx!(self, cust, cust.hold.attrs, true);
            let o = cust.hold.owner.as_ref().expect("just acquired");
            let c_role = self.reps.get(rep).role;
            (
                ClaimData {
                    customer: ctx.customer_data(),
                    rep: ctx.rep_data(rep, team, c_role),
                    via: Via::FirstTouch.as_str(),
                    protected_until: ctx.at(o.protected_until),
                    pool: self.pool_name(slot),
                    strategy: None,
                    eligible_reps: None,
                    previous_owner: None,
                    evidence: vec![ctx.evidence(e)],
                    reason: {
                        let (who, key, until) = (
                            ctx.rep_label(rep, team),
                            cust.key.clone(),
                            ctx.at(o.protected_until),
                        );
                        Text::later(move |out| {
                            say!(
                                out,
                                who,
                                " developed customer ",
                                key,
                                ", which had no owner: protected until ",
                                until
                            )
                        })
                    },
                },
                e.t,
            )
        };
        self.emit_final(slot, OutputType::OwnershipClaimed, t, data);
        self.count_change("first_touch");
    }

    fn pool_name(&self, slot: u32) -> Option<Arc<str>> {
        let cust = self.slots[slot as usize].as_ref()?;
        cust.hold
            .attrs
            .pool
            .map(|p| self.rules.pools[p as usize].id.clone())
    }

    /// Why `rep` may not take this customer now, if they may not.
    fn claim_refusal(&self, slot: u32, rep: RepIdx, team: Sym, t: Timestamp) -> Option<Refusal> {
        let cust = self.slots[slot as usize].as_ref().expect("live slot");
        let limits = self.rules.ownership.limits;
        let info = self.reps.get(rep);
        let tz = self.rules.settings.time_zone;
        if let Some(pool) = cust.hold.attrs.pool.map(|p| &self.rules.pools[p as usize]) {
            let team_name = self.words.get(team).map(|w| &**w);
            if !pool.admits_team(team_name) {
                return Some((
                    "out_of_territory",
                    format!(
                        "customer {} is in pool `{}`, which team {} may not claim from",
                        cust.key,
                        pool.id,
                        team_name.unwrap_or("(none)")
                    ),
                ));
            }
        }
        if !info.active || info.away_on(local_date(t, tz)) {
            return Some((
                "rep_inactive",
                format!("rep {} is inactive or away", info.id),
            ));
        }
        if let (Some(cool), Some((prev, at))) = (limits.reclaim_cooldown, cust.hold.released) {
            if prev == rep && t < at + cool {
                return Some((
                    "reclaim_cooldown",
                    format!(
                        "rep {} lost customer {} at {} and may claim it back from {}",
                        info.id,
                        cust.key,
                        at.to_rfc3339_in(tz),
                        (at + cool).to_rfc3339_in(tz)
                    ),
                ));
            }
        }
        if let Some(max) = limits.max_owned {
            let owned = self.ledger.owned(rep);
            if owned >= max {
                return Some((
                    "max_owned",
                    format!("rep {} owns {owned} customers; the cap is {max}", info.id),
                ));
            }
        }
        if let Some(max) = limits.claims_per_day {
            let day = local_date(t, tz);
            let n = self
                .ledger
                .books
                .get(rep.0 as usize)
                .filter(|b| b.claim_day == day_number(day))
                .map_or(0, |b| b.claims);
            if n >= max {
                return Some((
                    "claims_per_day",
                    format!(
                        "rep {} has claimed {n} customers on {day} ({}); the limit is {max} a day",
                        info.id,
                        tz.name()
                    ),
                ));
            }
        }
        None
    }

    fn count_claim(&mut self, rep: RepIdx, t: Timestamp) {
        let day = day_number(local_date(t, self.rules.settings.time_zone));
        let b = self.ledger.book(rep);
        if b.claim_day != day {
            b.claim_day = day;
            b.claims = 0;
        }
        b.claims += 1;
    }

    /// Makes `rep` the owner from `e.t`.
    #[allow(clippy::too_many_arguments)]
    fn acquire(
        &mut self,
        slot: u32,
        e: &Entry,
        rep: RepIdx,
        team: Sym,
        via: Via,
        account_team: Box<[RepIdx]>,
        won: bool,
    ) {
        // The CRM's own time counts for its changes, even when they arrived too late to be
        // placed there (they take effect at the watermark).
        let t = match &e.body {
            Body::Ownership { occurred, .. } => (*occurred).min(e.t),
            _ => e.t,
        };
        self.leave_line(slot);
        self.drop_owner(slot);
        let p = self.protection(slot);
        let owner = Owner::acquired(&p, rep, team, t, via, e, account_team, won);
        self.ledger.book(rep).owned += 1;
        let hold = self.hold(slot);
        hold.owner = Some(owner);
        hold.follow_ups = 0;
        hold.sla_noted = 0;
        hold.inbound_waiting = None;
        hold.warned_for = None;
        hold.waiting_since = None;
        hold.assign_retry = None;
        self.write_owner_state(slot, after(e));
        self.schedule_owner_deadlines(slot, e.t);
        if let Some(sla) = self.rules.sla.new_lead {
            if let Some(first) = sla.first_within {
                self.schedule_due(slot, t + first, Due::FirstFollowUp);
            }
            self.schedule_due(slot, t + sla.within, Due::FollowUps);
        }
    }

    /// Takes the current owner off the books (no output, no pool entry).
    fn drop_owner(&mut self, slot: u32) -> Option<Owner> {
        let o = self.hold(slot).owner.take()?;
        let b = self.ledger.book(o.rep);
        b.owned = b.owned.saturating_sub(1);
        if o.locked {
            b.locked = b.locked.saturating_sub(1);
        }
        if !self.ledger.waiting.is_empty() {
            self.ledger.freed.push(o.rep);
        }
        Some(o)
    }

    /// Whether the customer waits in the lifecycle's line of customers its pool found nobody
    /// for: [`Ledger::waiting`] holds exactly these (a restore rebuilds it from them).
    pub(super) fn is_waiting(hold: &Holding) -> bool {
        hold.owner.is_none() && hold.waiting_since.is_some() && hold.assign_retry.is_some()
    }

    /// The line as the customers' holdings give it (what a restore rebuilds).
    pub(super) fn line_from_holdings(&self) -> BTreeSet<Waiting> {
        (0..self.slots.len() as u32)
            .filter_map(|slot| self.place_in_line(slot))
            .collect()
    }

    /// The customer's place in line, if it waits in it.
    fn place_in_line(&self, slot: u32) -> Option<Waiting> {
        let c = self.slots[slot as usize].as_ref()?;
        let since = c.hold.waiting_since.filter(|_| Self::is_waiting(&c.hold))?;
        Some((since, c.key_hash, slot, c.generation))
    }

    /// Takes the customer out of the line before its wait changes (it ends, starts anew, or
    /// a merge rewrites it); [`Engine::join_line`] puts it back if it still waits after.
    pub(super) fn leave_line(&mut self, slot: u32) {
        if let Some(place) = self.place_in_line(slot) {
            self.ledger.waiting.remove(&place);
        }
    }

    pub(super) fn join_line(&mut self, slot: u32) {
        if let Some(place) = self.place_in_line(slot) {
            self.ledger.waiting.insert(place);
        }
    }

    /// A rep lost a customer at `t` (released, reclaimed, transferred, or dropped as a
    /// provisional customer's owner by a merge): with room under the
    /// ownership cap, they may take a customer who waits. The pool of the customer who has
    /// waited longest among those the rep may be given tries again at `t` (its strategy
    /// still picks among every eligible rep), or, when the rep is away, on the day they are
    /// back. One customer per rep and loss.
    pub(super) fn offer_room(&mut self, t: Timestamp) {
        if self.ledger.freed.is_empty() {
            return;
        }
        let freed = std::mem::take(&mut self.ledger.freed);
        let limits = self.rules.ownership.limits;
        let tz = self.rules.settings.time_zone;
        let date = local_date(t, tz);
        for rep in freed {
            let info = self.reps.get(rep);
            let has_room = limits.max_owned.is_none_or(|c| self.ledger.owned(rep) < c);
            let in_a_pool = self
                .ledger
                .pool_reps
                .iter()
                .any(|p| p.binary_search(&rep).is_ok());
            if !info.active || !has_room || !in_a_pool {
                continue;
            }
            let when = if info.away_on(date) {
                match info.back_after(date) {
                    Some(d) => day_start(d, tz),
                    None => continue,
                }
            } else {
                t
            };
            let offered = self
                .ledger
                .waiting
                .iter()
                .find_map(|&(since, _, slot, generation)| {
                    let cust = super::live(&self.slots, Handle { slot, generation })?;
                    let hold = &cust.hold;
                    debug_assert!(Self::is_waiting(hold) && hold.waiting_since == Some(since));
                    let pool = hold.attrs.pool?;
                    self.rules.pools[pool as usize].assignment?;
                    let cooling = hold.released.is_some_and(|(r, at)| {
                        r == rep && limits.reclaim_cooldown.is_some_and(|c| when < at + c)
                    });
                    // Trying by then anyway (offered to another rep, or a retry planned).
                    let tries_by_then = hold.assign_retry.is_some_and(|r| r <= when);
                    let may_get = self.ledger.pool_reps[pool as usize]
                        .binary_search(&rep)
                        .is_ok();
                    (may_get && !cooling && !tries_by_then).then_some(slot)
                });
            if let Some(slot) = offered {
                self.hold(slot).assign_retry = Some(when);
                self.schedule_due(slot, when, Due::Assign);
            }
        }
    }

    /// New rules may make room the line knows nothing of (a higher `max_owned`, more teams in
    /// a pool): every waiting customer's pool tries again at the watermark, the time up to
    /// which the lifecycle has decided. Those still without an eligible rep wait on, in their
    /// place.
    pub(super) fn retry_waiting(&mut self) {
        let Some(w) = self.watermark() else {
            return;
        };
        let line: Vec<Waiting> = self.ledger.waiting.iter().copied().collect();
        for (_, _, slot, _) in line {
            self.hold(slot).assign_retry = Some(w);
            self.schedule_due(slot, w, Due::Assign);
        }
    }

    /// A digest of what decides whether and when the pools may assign: the pools (which
    /// customers, which teams, how long they wait), `max_owned`, the reclaim cooldown, the
    /// roles that don't sell, and the roster. What only orders the eligible reps (a pool's
    /// strategy, reps' skills and capacity) is left out. A snapshot records the digest the
    /// line was last tried for, so that a restart under other rules or another roster can
    /// tell that the line needs the tries a rules reload gives it ([`Engine::room_changed`]).
    pub(super) fn room_digest(&self) -> u64 {
        let r = &self.rules;
        let mut d = DigestText::default();
        for p in &r.pools {
            d.text(&p.id);
            for list in [&p.regions, &p.industries, &p.tiers, &p.teams] {
                d.list(list.iter().map(String::as_str));
            }
            d.number(p.assignment.map_or(-1, |a| a.after.0));
        }
        let limits = r.ownership.limits;
        d.number(limits.max_owned.map_or(-1, i64::from));
        d.number(limits.reclaim_cooldown.map_or(-1, |c| c.0));
        let mut roles: Vec<&str> = r.exemptions.roles.iter().map(String::as_str).collect();
        roles.sort_unstable();
        d.list(roles);
        d.number(self.roster_digest as i64);
        d.finish()
    }

    /// Whether the rules or the roster changed, in what decides assignment, since the line of
    /// waiting customers was last tried for them: after a restore under a new roster (new
    /// hires) or new rules. A driver then calls [`Engine::try_line_again`] where it can make
    /// the call again at the same place after a crash (Kafka mode logs it with the ticks).
    pub fn room_changed(&self) -> bool {
        self.room_seen != Some(self.room_digest())
    }

    /// What a rules reload does for the line, now: every waiting customer is tried again at
    /// the watermark, and every first try is planned again as the pool now has it (the rules
    /// of the earlier plan may be gone, so both stay: whichever comes first tries, and the
    /// other finds the try made). The decisions due by the watermark are made at once.
    pub fn try_line_again(&mut self) {
        self.room_seen = Some(self.room_digest());
        let Some(w) = self.watermark() else {
            return;
        };
        for slot in 0..self.slots.len() as u32 {
            if let Some(due) = self.untried_due(slot) {
                self.schedule_due(slot, due.max(w), Due::Assign);
            }
        }
        self.retry_waiting();
        self.fire_timers();
    }

    /// Schedules the reclaim, warning and no-deal deadlines of the current owner.
    fn schedule_owner_deadlines(&mut self, slot: u32, now: Timestamp) {
        let Some(o) = self.slots[slot as usize]
            .as_ref()
            .and_then(|c| c.hold.owner.as_ref())
        else {
            return;
        };
        if o.won || o.locked || !self.rules.ownership.release_on_expiry {
            return;
        }
        let (end, deal_by, reclaim_at) = (o.protected_until, o.deal_by, o.reclaim_at());
        self.schedule_due(slot, end, Due::Reclaim);
        if let Some(d) = deal_by {
            self.schedule_due(slot, d, Due::NoDeal);
        }
        if let Some(warn) = self.rules.ownership.warn_before {
            let at = (reclaim_at - warn).max(now);
            self.schedule_due(slot, at, Due::Warning);
        }
    }

    /// After a merge hands a provisional customer's owner to the surviving customer, its
    /// deadlines are set again for the surviving slot.
    pub(super) fn schedule_owner_deadlines_after_merge(&mut self, slot: u32) {
        let now = self.watermark().unwrap_or(Timestamp(0));
        self.schedule_owner_deadlines(slot, now);
        if let Some(since) = self.slots[slot as usize]
            .as_ref()
            .and_then(|c| c.hold.owner.as_ref())
            .map(|o| o.since)
        {
            if let Some(sla) = self.rules.sla.new_lead {
                if let Some(first) = sla.first_within {
                    self.schedule_due(slot, since + first, Due::FirstFollowUp);
                }
                self.schedule_due(slot, since + sla.within, Due::FollowUps);
            }
        }
    }

    /// The protection figures for the customer's tier.
    fn protection(&self, slot: u32) -> crate::config::Protection {
        let cust = self.slots[slot as usize].as_ref().expect("live slot");
        self.rules
            .ownership
            .protection_for(self.words.get(cust.hold.attrs.tier).map(|w| &**w))
    }

    /// Writes the current owner into the customer's log at `t` so that detection sees it. It
    /// replaces whatever detection assumed from the event itself (see `detect::speculate`):
    /// usually the same owner, unless a limit refused the change.
    fn write_owner_state(&mut self, slot: u32, key: Key) {
        let cust = self.slots[slot as usize].as_mut().expect("live slot");
        let (t, order, tie) = key;
        cust.hold.last = cust.hold.last.max(Some(t));
        cust.hold.ownership_decided = cust.hold.ownership_decided.max(Some(t));
        let entry = Entry {
            t,
            order,
            tie,
            source: Sym::NONE,
            event_id: EventId::default(),
            given: GivenId::NOTHING,
            body: Body::OwnerState(cust.hold.owner.clone().map(Box::new)),
        };
        let pos = cust.position(entry.key()).max(cust.folded);
        let last = pos == cust.log.len();
        cust.insert_entry(pos, entry);
        if last {
            self.fold_last(slot);
        } else {
            self.refold(slot);
        }
        self.schedule_housekeeping(slot);
    }

    fn on_crm(
        &mut self,
        slot: u32,
        e: &Entry,
        action: OwnershipAction,
        rep: Option<(RepIdx, Sym)>,
        account_team: &[RepIdx],
    ) {
        let t = e.t;
        // `t` is never before the CRM's own time for the event (it is the watermark when the
        // event came too late): what a merge compares with this errs towards the customer's
        // own history.
        let hold = self.hold(slot);
        hold.ownership_decided = hold.ownership_decided.max(Some(t));
        let owner = self.slots[slot as usize]
            .as_ref()
            .and_then(|c| c.hold.owner.as_ref())
            .map(|o| (o.rep, o.team, o.locked));
        let limits = self.rules.ownership.limits;
        match action {
            OwnershipAction::Claim | OwnershipAction::Assign | OwnershipAction::Transfer => {
                let Some((rep, team)) = rep else { return };
                if let Some((o, _, _)) = owner.filter(|(o, _, _)| *o == rep) {
                    // Already theirs: the CRM may be updating the account team.
                    if let Some(ow) = self.hold(slot).owner.as_mut() {
                        if ow.rep == o && !account_team.is_empty() {
                            ow.account_team = account_team.into();
                            self.write_owner_state(slot, e.key());
                        }
                    }
                    return;
                }
                let refusal = if action == OwnershipAction::Claim {
                    match owner {
                        Some((o, _, _)) => Some((
                            "owned_by_other",
                            format!("the customer is owned by {}", self.reps.get(o).id),
                        )),
                        None => self.claim_refusal(slot, rep, team, t),
                    }
                } else {
                    let info = self.reps.get(rep);
                    if !info.active {
                        Some(("rep_inactive", format!("rep {} is inactive", info.id)))
                    } else {
                        limits.max_owned.and_then(|max| {
                            let n = self.ledger.owned(rep);
                            (n >= max).then(|| {
                                (
                                    "max_owned",
                                    format!(
                                        "rep {} already owns {n} customers; the cap is {max}",
                                        info.id
                                    ),
                                )
                            })
                        })
                    }
                };
                if let Some((code, why)) = refusal {
                    self.emit_rejected(slot, e, action.as_str(), rep, team, code, why);
                    return;
                }
                if action == OwnershipAction::Claim {
                    self.count_claim(rep, t);
                }
                let via = if action == OwnershipAction::Claim {
                    Via::Claim
                } else {
                    Via::Crm
                };
                self.acquire(slot, e, rep, team, via, account_team.into(), false);
                self.count_change(match action {
                    OwnershipAction::Claim => "crm_claim",
                    OwnershipAction::Assign => "crm_assign",
                    _ => "crm_transfer",
                });
            }
            OwnershipAction::Release => {
                if let Some(o) = self.drop_owner(slot) {
                    self.hold(slot).released = Some((o.rep, t));
                    self.write_owner_state(slot, e.key());
                    self.enter_pool(slot, t);
                    self.count_change("crm_release");
                }
            }
            OwnershipAction::Lock | OwnershipAction::Unlock => {
                let Some((o, oteam, locked)) = owner else {
                    if let Some((r, team)) = rep {
                        self.emit_rejected(
                            slot,
                            e,
                            action.as_str(),
                            r,
                            team,
                            "not_owner",
                            "the customer has no owner".into(),
                        );
                    }
                    return;
                };
                if rep.is_some_and(|(r, _)| r != o) {
                    let (r, team) = rep.expect("checked");
                    self.emit_rejected(
                        slot,
                        e,
                        action.as_str(),
                        r,
                        team,
                        "not_owner",
                        format!("only the owner {} may do this", self.reps.get(o).id),
                    );
                    return;
                }
                let lock = action == OwnershipAction::Lock;
                if lock == locked {
                    return;
                }
                if lock {
                    if let Some(max) = limits.max_locked {
                        let n = self.ledger.books.get(o.0 as usize).map_or(0, |b| b.locked);
                        if n >= max {
                            let why = format!(
                                "rep {} already holds {n} customers locked; the cap is {max}",
                                self.reps.get(o).id
                            );
                            self.emit_rejected(slot, e, "lock", o, oteam, "max_locked", why);
                            return;
                        }
                    }
                    self.ledger.book(o).locked += 1;
                } else {
                    let b = self.ledger.book(o);
                    b.locked = b.locked.saturating_sub(1);
                }
                let p = self.protection(slot);
                let occurred = match &e.body {
                    Body::Ownership { occurred, .. } => (*occurred).min(t),
                    _ => t,
                };
                let ow = self.hold(slot).owner.as_mut().expect("owner checked");
                ow.set_locked(lock, &p, occurred);
                self.write_owner_state(slot, e.key());
                self.schedule_owner_deadlines(slot, t);
                self.count_change(if lock { "crm_lock" } else { "crm_unlock" });
            }
            OwnershipAction::Won => {
                match owner {
                    Some(_) => {
                        let ow = self.hold(slot).owner.as_mut().expect("owner");
                        ow.set_won();
                        self.write_owner_state(slot, e.key());
                    }
                    None => {
                        let Some((r, team)) = rep else { return };
                        self.acquire(slot, e, r, team, Via::Crm, account_team.into(), true);
                    }
                }
                // A purchase counts from when the CRM says it happened.
                let purchased = match &e.body {
                    Body::Ownership { occurred, .. } => (*occurred).min(t),
                    _ => t,
                };
                self.hold(slot).last_touch = Some(purchased);
                if let Some(d) = self.rules.ownership.dormant_after {
                    self.schedule_due(slot, purchased + d, Due::Dormant);
                }
                self.count_change("crm_won");
            }
        }
    }

    /// The customer waits unowned in its pool: schedule automatic assignment if the pool has it.
    pub(super) fn enter_pool(&mut self, slot: u32, t: Timestamp) {
        let Some(pool) = self.slots[slot as usize]
            .as_ref()
            .and_then(|c| c.hold.attrs.pool)
        else {
            return;
        };
        if let Some(a) = self.rules.pools[pool as usize].assignment {
            // A new wait: it supersedes a retry planned after an earlier one.
            self.leave_line(slot);
            let hold = self.hold(slot);
            hold.waiting_since = Some(t);
            hold.assign_retry = None;
            self.schedule_due(slot, t + a.after, Due::Assign);
        }
    }

    /// Whether a deadline can still do anything. Most deadlines in the heap are stale (the
    /// owner followed up, the customer changed hands, the SLA was met); telling so from the
    /// customer's state as it is, without copying it, keeps firing them cheap. Each test is the
    /// one `fire_due` makes before acting, so a `false` here never skips an action.
    fn due_may_act(&self, slot: u32, at: Timestamp, due: Due) -> bool {
        let Some(cust) = self.slots[slot as usize].as_ref() else {
            return false;
        };
        let rules = &self.rules;
        let hold = &cust.hold;
        let holds = |o: &&Owner| !o.won && !o.locked && rules.ownership.release_on_expiry;
        let owner = hold.owner.as_ref();
        match due {
            Due::Reclaim => owner.filter(holds).is_some_and(|o| o.protected_until == at),
            Due::NoDeal => owner.filter(holds).is_some_and(|o| o.deal_by == Some(at)),
            Due::Warning => owner.filter(holds).is_some() && rules.ownership.warn_before.is_some(),
            Due::FirstFollowUp | Due::FollowUps => rules
                .sla
                .new_lead
                .is_some_and(|sla| new_lead_missed(sla, due, hold, at)),
            Due::Inbound => {
                rules.sla.inbound_response.is_some()
                    && owner.is_some()
                    && hold.inbound_waiting.is_some()
            }
            Due::Dormant => {
                let (Some(d), Some(o), Some(last)) =
                    (rules.ownership.dormant_after, owner, hold.last_touch)
                else {
                    return false;
                };
                o.won && last + d == at && hold.dormant_noted != Some(at)
            }
            // Also when the customer has left its pool meanwhile: the wait ends then.
            Due::Assign => owner.is_none() && hold.waiting_since.is_some(),
        }
    }

    fn fire_due(&mut self, slot: u32, at: Timestamp, due: Due) {
        if !self.due_may_act(slot, at, due) {
            return;
        }
        // Settings read here are copied out, not borrowed: the arms below change the engine.
        let (release_on_expiry, tz) = (
            self.rules.ownership.release_on_expiry,
            self.rules.settings.time_zone,
        );
        let cust = self.slots[slot as usize].as_ref().expect("live slot");
        let hold = cust.hold.clone();
        let owner = hold.owner.as_ref();
        let holds = |o: &Owner| !o.won && !o.locked && release_on_expiry;
        match due {
            Due::Reclaim => {
                if let Some(o) = owner.filter(|o| holds(o) && o.protected_until == at) {
                    let (code, why) = if o.cap_at == Some(at) {
                        let (span, since) = (at - o.since, OutTime { t: o.since, tz });
                        (
                            "protection_cap",
                            Text::later(move |out| {
                                say!(
                                    out,
                                    "protection reached its cap (",
                                    span,
                                    " after the claim on ",
                                    since,
                                    ")"
                                )
                            }),
                        )
                    } else {
                        (
                            "no_follow_up",
                            "protection ended without a follow-up that extends it".into(),
                        )
                    };
                    self.release(slot, at, code, "ownership.protection", why);
                }
            }
            Due::NoDeal => {
                if let Some(o) = owner.filter(|o| holds(o) && o.deal_by == Some(at)) {
                    let span = at - o.since;
                    let why =
                        Text::later(move |out| say!(out, "no deal within ", span, " of the claim"));
                    self.release(slot, at, "no_deal", "ownership.no_deal", why);
                }
            }
            Due::Warning => {
                let Some(o) = owner.filter(|o| holds(o)) else {
                    return;
                };
                let Some(warn) = self.rules.ownership.warn_before else {
                    return;
                };
                let reclaim = o.reclaim_at();
                if (reclaim - warn).max(at) != at
                    || hold.warned_for == Some(reclaim)
                    || reclaim <= at
                {
                    return;
                }
                let code = if o.reclaimed_for_no_deal() {
                    "no_deal"
                } else {
                    "no_follow_up"
                };
                self.hold(slot).warned_for = Some(reclaim);
                let why = {
                    let cust = self.slots[slot as usize].as_ref().expect("live slot");
                    let ctx = ctx!(self, cust, cust.hold.attrs, true);
                    let (who, key, when) = (
                        ctx.rep_label(o.rep, o.team),
                        cust.key.clone(),
                        ctx.at(reclaim),
                    );
                    let (cause, unless) = if code == "no_deal" {
                        ("no deal", "a deal is recorded")
                    } else {
                        ("no follow up", "they follow it up")
                    };
                    Text::later(move |out| {
                        say!(
                            out,
                            who,
                            " will lose customer ",
                            key,
                            " at ",
                            when,
                            " (",
                            cause,
                            ") unless ",
                            unless
                        )
                    })
                };
                self.emit_hold(
                    slot,
                    OutputType::ReclaimWarning,
                    at,
                    code,
                    "ownership.warn_before",
                    reclaim,
                    None,
                    None,
                    why,
                );
            }
            Due::FirstFollowUp | Due::FollowUps => {
                let Some(sla) = self
                    .rules
                    .sla
                    .new_lead
                    .filter(|&sla| new_lead_missed(sla, due, &hold, at))
                else {
                    return;
                };
                let o = owner.expect("a missed new-lead deadline has an owner");
                let (span, need, bit, code) = new_lead_deadline(sla, due);
                let done = hold.follow_ups;
                self.hold(slot).sla_noted |= bit;
                let why = Text::later(move |out| {
                    say!(
                        out,
                        done,
                        " follow-up(s) by the owner within ",
                        span,
                        " of getting the customer; ",
                        need,
                        " required"
                    )
                });
                self.emit_hold(
                    slot,
                    OutputType::SlaBreached,
                    at,
                    code,
                    "sla.new_lead",
                    at,
                    None,
                    None,
                    why.clone(),
                );
                // A locked customer's owner is told, but keeps it: locks exempt from reclaim.
                if sla.release && o.sla_may_release(at) {
                    self.release(slot, at, "follow_up_sla", "sla.new_lead", why);
                }
            }
            Due::Inbound => {
                let Some(sla) = self.rules.sla.inbound_response else {
                    return;
                };
                let (Some(_), Some(since)) = (owner, hold.inbound_waiting) else {
                    return;
                };
                if self.inbound_due(since, sla) != at {
                    return;
                }
                self.hold(slot).inbound_waiting = None;
                let (within, business) = (sla.within, sla.business_hours);
                let asked = OutTime { t: since, tz };
                let why = Text::later(move |out| {
                    say!(
                        out,
                        "an inbound contact at ",
                        asked,
                        " was not answered by the owner within "
                    );
                    if business {
                        say!(out, within.0 / 3_600_000, " business hours")
                    } else {
                        say!(out, within)
                    }
                });
                self.emit_hold(
                    slot,
                    OutputType::SlaBreached,
                    at,
                    "inbound_response",
                    "sla.inbound_response",
                    at,
                    Some(since),
                    None,
                    why,
                );
            }
            Due::Dormant => {
                let Some(d) = self.rules.ownership.dormant_after else {
                    return;
                };
                let Some(o) = owner.filter(|o| o.won) else {
                    return;
                };
                let Some(last) = hold.last_touch else { return };
                if last + d != at || hold.dormant_noted == Some(at) {
                    return;
                }
                self.hold(slot).dormant_noted = Some(at);
                let why = {
                    let cust = self.slots[slot as usize].as_ref().expect("live slot");
                    let ctx = ctx!(self, cust, cust.hold.attrs, true);
                    let (key, since, who) =
                        (cust.key.clone(), ctx.at(last), ctx.rep_label(o.rep, o.team));
                    Text::later(move |out| {
                        say!(
                            out,
                            "won customer ",
                            key,
                            " has had no contact or purchase since ",
                            since,
                            ": ",
                            who,
                            " should visit again"
                        )
                    })
                };
                self.emit_hold(
                    slot,
                    OutputType::CustomerDormant,
                    at,
                    "dormant",
                    "ownership.won.dormant_after",
                    at,
                    Some(last),
                    None,
                    why,
                );
            }
            Due::Assign => {
                // The customer's description or the rules changed while it waited, and its
                // pool no longer assigns: it no longer waits (and may be forgotten).
                if pool_wait(&self.rules, &hold).is_none() {
                    self.leave_line(slot);
                    let hold = self.hold(slot);
                    hold.waiting_since = None;
                    hold.assign_retry = None;
                    return;
                }
                if let Some(due) = self.first_try_later(slot, at) {
                    self.schedule_due(slot, due, Due::Assign);
                    return;
                }
                // A deadline whose try was made (by the batch below) or superseded: nothing to
                // do, and no scan of the moment's other deadlines.
                if self.assign_planned(slot, at).is_none() {
                    return;
                }
                // Every try planned for this moment is made now, when the first of them comes
                // up, longest wait first (then by customer key): a rep with room goes to the
                // customer who has waited longest, not to the one whose deadline sorts first.
                // The deadlines of the others find their try made when they pop.
                let mut batch: Vec<(Timestamp, u64, u32)> = Vec::new();
                let mut planned = |e: &Engine, s: u32| {
                    if e.assign_planned(s, at).is_some() {
                        let c = e.slots[s as usize].as_ref().expect("live slot");
                        let since = c.hold.waiting_since.expect("a planned try waits");
                        batch.push((since, c.key_hash, s));
                    }
                };
                planned(self, slot);
                let mut n = 0;
                while let Some(&(t, (_, d, s, g))) = self.ledger.deadlines.ahead(n) {
                    if t != at {
                        break;
                    }
                    if d == Due::Assign && self.live(s, g) {
                        planned(self, s);
                    }
                    n += 1;
                }
                batch.sort_unstable();
                batch.dedup();
                for (_, _, s) in batch {
                    if let Some((pool, strategy)) = self.assign_planned(s, at) {
                        self.assign(s, at, pool, strategy);
                    }
                }
            }
        }
    }

    /// The customer's pool and strategy when a try to assign it is planned for `at`: it waits
    /// without an owner, its pool assigns, and `at` is its first try or the retry planned
    /// since — never the first one again after it failed (a second deadline at the same time).
    fn assign_planned(&self, slot: u32, at: Timestamp) -> Option<(u16, Strategy)> {
        let hold = &self.slots[slot as usize].as_ref()?.hold;
        let (since, pool, a) = pool_wait(&self.rules, hold)?;
        let planned = match hold.assign_retry {
            Some(retry) => retry == at,
            // Not before the first try is due in the customer's pool as it is now (a change
            // of description or rules may have moved it to a pool that waits longer, see
            // `first_try_later`), and once only.
            None => since + a.after <= at,
        };
        planned.then_some((pool, a.strategy))
    }

    /// When the customer's first try is due later than `at`, in its pool as it is now: its
    /// description or the rules changed while it waited, to a pool that waits longer than the
    /// one that planned `at`. Never tried, it would wait for ever (and never be forgotten).
    fn first_try_later(&self, slot: u32, at: Timestamp) -> Option<Timestamp> {
        self.untried_due(slot).filter(|&due| due > at)
    }

    /// When the customer's first try is due, if it waits for one: the try the pool it is in
    /// now plans, which a change of description or rules may move.
    pub(super) fn untried_due(&self, slot: u32) -> Option<Timestamp> {
        let hold = &self.slots[slot as usize].as_ref()?.hold;
        if hold.assign_retry.is_some() {
            return None;
        }
        let (since, _, a) = pool_wait(&self.rules, hold)?;
        Some(since + a.after)
    }

    /// The customer's description or the rules changed while it waited for its first try
    /// (due at `was`), to a pool that waits less: the try is made when that pool's delay is
    /// up, or at once (`after`) if it already is. (A pool that waits longer is handled when
    /// the earlier try comes up: [`Engine::first_try_later`].)
    pub(super) fn first_try_sooner(&mut self, slot: u32, was: Option<Timestamp>, after: Timestamp) {
        let Some(was) = was else { return };
        if let Some(due) = self.untried_due(slot).filter(|&due| due < was) {
            self.schedule_due(slot, due.max(after), Due::Assign);
        }
    }

    /// The owner loses the customer to its pool.
    fn release(
        &mut self,
        slot: u32,
        t: Timestamp,
        code: &'static str,
        rule: &'static str,
        why: Text,
    ) {
        let Some(o) = self.slots[slot as usize]
            .as_ref()
            .and_then(|c| c.hold.owner.clone())
        else {
            return;
        };
        let reason = {
            let cust = self.slots[slot as usize].as_ref().expect("live slot");
            let ctx = ctx!(self, cust, cust.hold.attrs, true);
            let (key, pool, who) = (
                cust.key.clone(),
                self.pool_name(slot),
                ctx.rep_label(o.rep, o.team),
            );
            Text::later(move |out| {
                say!(out, "customer ", key, " goes back to ");
                match &pool {
                    Some(p) => say!(out, "pool `", p, "`"),
                    None => say!(out, "the public pool"),
                }
                say!(out, " from ", who, ": ");
                why.push_to(out)
            })
        };
        self.emit_hold(
            slot,
            OutputType::OwnershipReleased,
            t,
            code,
            rule,
            t,
            Some(o.since),
            None,
            reason,
        );
        self.drop_owner(slot);
        self.hold(slot).released = Some((o.rep, t));
        self.write_owner_state(slot, timer_key(t));
        self.count_change(code);
        self.enter_pool(slot, t);
    }

    /// Picks a rep for the customer by the pool's strategy: eligible reps are active, not away,
    /// under the ownership cap, in the pool's teams, and not the previous owner inside the
    /// reclaim cooldown. Among them the strategy's preferred ones go first; then whoever was
    /// assigned least recently (so a roster change never resets the rotation, and a rep back
    /// from leave is next in line).
    fn assign(&mut self, slot: u32, t: Timestamp, pool: u16, strategy: Strategy) {
        let cust = self.slots[slot as usize].as_ref().expect("live slot");
        let tz = self.rules.settings.time_zone;
        let date = local_date(t, tz);
        let limits = self.rules.ownership.limits;
        let cap = limits.max_owned;
        let previous = cust
            .hold
            .released
            .filter(|(_, at)| limits.reclaim_cooldown.is_some_and(|c| t < *at + c))
            .map(|(r, _)| r);
        let attrs = &cust.hold.attrs;
        let mut best: Option<(u8, u64, u64, &str, RepIdx)> = None;
        let mut eligible = 0;
        // Why reps who could take the customer later were left out: they tell when to try
        // again if nobody is eligible now.
        let mut cooling = false;
        let mut back: Option<chrono::NaiveDate> = None;
        for &idx in &self.ledger.pool_reps[pool as usize] {
            let info = self.reps.get(idx);
            if !info.active {
                continue;
            }
            let owned = self.ledger.owned(idx);
            if cap.is_some_and(|c| owned >= c) {
                continue;
            }
            if info.away_on(date) {
                back = back.into_iter().chain(info.back_after(date)).min();
                continue;
            }
            if previous == Some(idx) {
                cooling = true;
                continue;
            }
            eligible += 1;
            let preferred = match strategy {
                Strategy::RoundRobin | Strategy::Workload => true,
                Strategy::Territory => !attrs.region.is_none() && info.region == attrs.region,
                Strategy::Industry => info.industries.contains(&attrs.industry),
                Strategy::Tier => info.tiers.contains(&attrs.tier),
                Strategy::ProductLine => info.product_lines.contains(&attrs.product_line),
            };
            let load = if strategy == Strategy::Workload {
                let capacity = info.capacity.or(cap).unwrap_or(100).max(1) as u64;
                owned as u64 * 1_000_000 / capacity
            } else {
                0
            };
            let last = self
                .ledger
                .books
                .get(idx.0 as usize)
                .map_or(0, |b| b.last_assigned);
            let key = (u8::from(!preferred), load, last, &*info.id, idx);
            if best.is_none_or(|b| key < b) {
                best = Some(key);
            }
        }
        let Some((not_preferred, _, _, _, rep)) = best else {
            // Nobody is eligible. The customer keeps waiting, in line for the first rep of
            // its pool who gets room under the cap ([`Engine::offer_room`]); and the pool tries
            // again when the reclaim cooldown that excluded the previous owner ends, or the
            // first rep away comes back, or, the last time, when the customer would be
            // forgotten (no event for `forget_after`: memory stays bounded). A try then that
            // finds nobody ends the wait; the customer's next contact starts a new one.
            let cooled = cust
                .hold
                .released
                .filter(|_| cooling)
                .zip(limits.reclaim_cooldown)
                .map(|((_, at), c)| at + c);
            let returns = back.map(|d| day_start(d, tz));
            let remembered_until = cust.hold.last.unwrap_or(t) + self.forget_after;
            let retry = cooled
                .into_iter()
                .chain(returns)
                .chain([remembered_until])
                .min()
                .filter(|r| *r > t);
            self.count_change("unassigned");
            self.leave_line(slot);
            let hold = self.hold(slot);
            hold.assign_retry = retry;
            match retry {
                Some(r) => {
                    self.schedule_due(slot, r, Due::Assign);
                    self.join_line(slot);
                }
                None => hold.waiting_since = None,
            }
            return;
        };
        self.ledger.assignments += 1;
        let seq = self.ledger.assignments;
        self.ledger.book(rep).last_assigned = seq;
        let team = self.reps.get(rep).team;
        let prev_owner = cust.hold.released.map(|(r, _)| r);
        // A later try says how long the customer waited.
        let waited = cust
            .hold
            .waiting_since
            .filter(|_| cust.hold.assign_retry.is_some());
        let origin = Entry {
            t,
            order: 0,
            tie: 0,
            source: Sym::NONE,
            event_id: EventId::default(),
            given: GivenId::NOTHING,
            body: Body::OwnerState(None),
        };
        self.acquire(slot, &origin, rep, team, Via::Assigned, Box::new([]), false);
        let data = {
            let cust = self.slots[slot as usize].as_ref().expect("live slot");
            let ctx = ctx!(self, cust, cust.hold.attrs, true);
            let o = cust.hold.owner.as_ref().expect("just assigned");
            let info = self.reps.get(rep);
            ClaimData {
                customer: ctx.customer_data(),
                rep: ctx.rep_data(rep, team, info.role),
                via: Via::Assigned.as_str(),
                protected_until: ctx.at(o.protected_until),
                pool: Some(self.rules.pools[pool as usize].id.clone()),
                strategy: Some(strategy.as_str()),
                eligible_reps: Some(eligible),
                previous_owner: prev_owner.map(|r| {
                    let i = self.reps.get(r);
                    ctx.rep_data(r, i.team, i.role)
                }),
                evidence: Vec::new(),
                reason: format!(
                    "pool `{}` assigned customer {} to {} by {}{} among {eligible} eligible rep(s){}; protected until {}",
                    self.rules.pools[pool as usize].id,
                    cust.key,
                    ctx.rep_name(rep, team),
                    strategy.as_str().replace('_', " "),
                    if not_preferred == 1 && !matches!(strategy, Strategy::RoundRobin | Strategy::Workload) {
                        " (no rep matched, so in turn)"
                    } else {
                        ""
                    },
                    waited.map_or(String::new(), |w| format!(", after waiting since {}", ctx.time(w))),
                    ctx.time(o.protected_until)
                )
                .into(),
            }
        };
        self.emit_final(slot, OutputType::OwnershipAssigned, t, data);
        self.count_change("assigned");
    }

    /// Collision rules with a resolution settle who should keep the customer once the
    /// contact that raised the alert is final.
    fn resolve_collisions(&mut self, slot: u32, e: &Entry, intruder: RepIdx) {
        let cust = self.slots[slot as usize].as_ref().expect("live slot");
        let hits: Vec<(u16, String)> = cust
            .emitted
            .iter()
            .filter(|m| m.key == e.key() && m.ty == OutputType::Collision)
            .filter_map(|m| Some((m.rule?, m.id.clone())))
            .filter(|(ri, _)| {
                self.rules
                    .collisions
                    .get(*ri as usize)
                    .is_some_and(|r| r.resolution != Resolution::OwnerWins)
            })
            .collect();
        for (ri, alert_id) in hits {
            self.resolve(slot, e, intruder, ri as usize, alert_id);
        }
    }

    fn resolve(&mut self, slot: u32, e: &Entry, intruder: RepIdx, ri: usize, alert_id: String) {
        let rule = self.rules.collisions[ri].clone();
        let cust = self.slots[slot as usize].as_ref().expect("live slot");
        let owner = cust.hold.owner.as_ref().map(|o| (o.rep, o.team, o.since));
        let window = match rule.kind {
            CollisionKind::MultiRep { window, .. } | CollisionKind::Complaint { window } => window,
            _ => self.protection(slot).period,
        };
        let from = e.t - window;
        // Scores over the counted contacts in the window, up to the alert's event.
        let mut scores: Vec<(RepIdx, Sym, u32, u32, Timestamp, Timestamp)> = Vec::new();
        for x in cust
            .log
            .iter()
            .filter(|x| x.t >= from && x.key() <= e.key())
        {
            let Body::Contact {
                rep,
                team,
                role,
                kind,
                ..
            } = &x.body
            else {
                continue;
            };
            if !rule.kinds.contains(*kind) || (!role.is_none() && self.exempt_roles.contains(role))
            {
                continue;
            }
            let progress = u32::from(matches!(kind, ContactKind::Visit | ContactKind::Meeting));
            match scores.iter_mut().find(|s| s.0 == *rep) {
                Some(s) => {
                    s.2 += 1;
                    s.3 += progress;
                    s.5 = x.t;
                }
                None => scores.push((*rep, *team, 1, progress, x.t, x.t)),
            }
        }
        let involved = |r: RepIdx| {
            r == intruder
                || owner.is_some_and(|(o, _, _)| o == r)
                || matches!(rule.kind, CollisionKind::MultiRep { .. })
        };
        scores.retain(|s| involved(s.0));
        if let Some((o, team, since)) = owner {
            if !scores.iter().any(|s| s.0 == o) {
                scores.push((o, team, 0, 0, since, since));
            }
        }
        let span_ms = window.0.max(1);
        let total = |s: &(RepIdx, Sym, u32, u32, Timestamp, Timestamp)| {
            let recency = ((span_ms - (e.t - s.5).0.clamp(0, span_ms)) * 10 / span_ms) as u32;
            (s.2 + 3 * s.3 + recency, recency)
        };
        let winner = match rule.resolution {
            Resolution::FirstTouch => {
                // The owner's claim counts as their first touch.
                scores
                    .iter()
                    .map(|s| {
                        let first = match owner {
                            Some((o, _, since)) if o == s.0 => since.min(s.4),
                            _ => s.4,
                        };
                        (first, &*self.reps.get(s.0).id, s.0)
                    })
                    .min()
                    .map(|(_, _, r)| r)
            }
            Resolution::MostEngaged => scores
                .iter()
                .map(|s| (Reverse(total(s).0), &*self.reps.get(s.0).id, s.0))
                .min()
                .map(|(_, _, r)| r),
            Resolution::OwnerWins => None,
        };
        let Some(winner) = winner else { return };
        if owner.is_some_and(|(o, _, _)| o == winner) {
            return;
        }
        let winner_team = scores
            .iter()
            .find(|s| s.0 == winner)
            .map_or(Sym::NONE, |s| s.1);
        let mut automatic = rule.reassign;
        let mut note = String::new();
        if automatic {
            if let Some(max) = self.rules.ownership.limits.max_owned {
                if self.ledger.owned(winner) >= max {
                    automatic = false;
                    note = format!(
                        "; not reassigned automatically: {} is at the ownership cap of {max}",
                        self.reps.get(winner).id
                    );
                }
            }
            if !self.reps.get(winner).active {
                automatic = false;
                note = format!(
                    "; not reassigned automatically: {} is inactive",
                    self.reps.get(winner).id
                );
            }
        }
        let data = {
            let cust = self.slots[slot as usize].as_ref().expect("live slot");
            let ctx = ctx!(self, cust, cust.hold.attrs, true);
            let mut rows: Vec<ScoreData> = scores
                .iter()
                .map(|s| {
                    let (tot, recency) = total(s);
                    let info = self.reps.get(s.0);
                    ScoreData {
                        rep: ctx.rep_data(s.0, s.1, info.role),
                        contacts: s.2,
                        progress: s.3,
                        recency,
                        first_contact: ctx.time(s.4),
                        total: tot,
                    }
                })
                .collect();
            rows.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.rep.id.cmp(&b.rep.id)));
            let from_rep = owner.map(|(o, t, _)| ctx.rep_data(o, t, self.reps.get(o).role));
            let to_rep = ctx.rep_data(winner, winner_team, self.reps.get(winner).role);
            let evidence: Vec<EvidenceData> = cust
                .log
                .iter()
                .filter(|x| x.t >= from && x.key() <= e.key())
                .filter(|x| {
                    matches!(&x.body, Body::Contact { rep, kind, role, .. }
                    if scores.iter().any(|s| s.0 == *rep)
                        && rule.kinds.contains(*kind)
                        && (role.is_none() || !self.exempt_roles.contains(role)))
                })
                .map(|x| ctx.evidence(x))
                .collect();
            ReassignmentData {
                customer: ctx.customer_data(),
                rule: Arc::from(rule.id.as_str()),
                resolution: rule.resolution.as_str(),
                reason: format!(
                    "collision rule `{}` resolves by {}: {} should have customer {}{}{}",
                    rule.id,
                    rule.resolution.as_str().replace('_', " "),
                    ctx.rep_name(winner, winner_team),
                    cust.key,
                    match &from_rep {
                        Some(f) => format!(" instead of {}", f.id),
                        None => String::new(),
                    },
                    note
                )
                .into(),
                from_rep,
                to_rep,
                collision_id: alert_id,
                scores: rows,
                window: WindowData {
                    from: ctx.time(from),
                    to: ctx.time(e.t),
                },
                evidence,
            }
        };
        if automatic {
            self.acquire(
                slot,
                e,
                winner,
                winner_team,
                Via::Reassigned,
                Box::new([]),
                false,
            );
            self.emit_final(slot, OutputType::OwnershipReassigned, e.t, data);
            self.count_change("reassigned");
        } else {
            self.emit_final(slot, OutputType::ReassignmentRecommended, e.t, data);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_rejected(
        &mut self,
        slot: u32,
        e: &Entry,
        action: &'static str,
        rep: RepIdx,
        team: Sym,
        code: &'static str,
        why: String,
    ) {
        let data = {
            let cust = self.slots[slot as usize].as_ref().expect("live slot");
            let ctx = ctx!(self, cust, cust.hold.attrs, true);
            let info = self.reps.get(rep);
            RejectedData {
                customer: ctx.customer_data(),
                action,
                rep: ctx.rep_data(rep, team, info.role),
                reason_code: code,
                owner: cust
                    .hold
                    .owner
                    .as_ref()
                    .map(|o| ctx.rep_data(o.rep, o.team, self.reps.get(o.rep).role)),
                evidence: vec![ctx.evidence(e)],
                reason: format!(
                    "{} of customer {} by {} refused: {why}",
                    action.replace('_', " "),
                    cust.key,
                    ctx.rep_name(rep, team)
                )
                .into(),
            }
        };
        self.emit_final(slot, OutputType::OwnershipRejected, e.t, data);
        self.count_change("rejected");
        // Detection assumed the change would go through: put the real owner back after it.
        self.write_owner_state(slot, after(e));
    }

    /// A merge dropped the owner a provisional customer had: the customer it turned out to be
    /// has its own, another rep, or has none but decided its ownership at `decided`, after
    /// that owner's start. The claim the CRM was told of under the provisional key is
    /// withdrawn and not re-issued, and this says why (the provisional key and the owner's
    /// start). `t`: the event that revealed who the customer is.
    pub(super) fn reject_dropped_owner(
        &mut self,
        slot: u32,
        dropped: &Owner,
        provisional_key: &str,
        decided: Option<Timestamp>,
        t: Timestamp,
    ) {
        let action = match dropped.via {
            Via::Crm | Via::Assigned => "assign",
            Via::Claim => "claim",
            Via::FirstTouch => "first_touch",
            Via::Reassigned => "reassign",
        };
        let data = {
            let cust = self.slots[slot as usize].as_ref().expect("live slot");
            let ctx = ctx!(self, cust, cust.hold.attrs, true);
            let owner = cust.hold.owner.as_ref();
            let (reason_code, why) = match (owner, decided) {
                (Some(o), _) => (
                    "owned_by_other",
                    format!("the customer is owned by {}", ctx.rep_name(o.rep, o.team)),
                ),
                (None, d) => (
                    "decided_later",
                    format!(
                        "the customer's own ownership was decided later{}, and it has no owner \
                         now",
                        d.map(|d| format!(", at {}", ctx.time(d)))
                            .unwrap_or_default()
                    ),
                ),
            };
            RejectedData {
                customer: ctx.customer_data(),
                action,
                rep: ctx.rep_data(dropped.rep, dropped.team, self.reps.get(dropped.rep).role),
                reason_code,
                owner: owner.map(|o| ctx.rep_data(o.rep, o.team, self.reps.get(o.rep).role)),
                evidence: vec![ctx.owner_evidence(dropped)],
                reason: format!(
                    "{} of customer {} by {} since {}, while it was known as customer {}, does \
                     not carry over: {why}",
                    action.replace('_', " "),
                    cust.key,
                    ctx.rep_name(dropped.rep, dropped.team),
                    ctx.time(dropped.since),
                    provisional_key,
                )
                .into(),
            }
        };
        self.emit_final(slot, OutputType::OwnershipRejected, t, data);
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_hold(
        &mut self,
        slot: u32,
        ty: OutputType,
        t: Timestamp,
        code: &'static str,
        rule: &'static str,
        at: Timestamp,
        previous: Option<Timestamp>,
        evidence: Option<&Entry>,
        reason: Text,
    ) {
        let data = {
            let cust = self.slots[slot as usize].as_ref().expect("live slot");
            let ctx = ctx!(self, cust, cust.hold.attrs, true);
            let Some(o) = cust.hold.owner.as_ref() else {
                return;
            };
            let rep: RepData = ctx.rep_data(o.rep, o.team, self.reps.get(o.rep).role);
            HoldData {
                customer: ctx.customer_data(),
                rep,
                reason_code: code,
                rule,
                pool: self.pool_name(slot),
                at: ctx.at(at),
                previous: previous.map(|p| ctx.at(p)),
                evidence: evidence.map(|e| vec![ctx.evidence(e)]).unwrap_or_default(),
                reason,
            }
        };
        self.emit_final(slot, ty, t, data);
    }

    /// Queues a final output (never withdrawn, so not remembered per entry). The core never
    /// compares it again, so its data is rendered later, by whoever writes it.
    fn emit_final(
        &mut self,
        slot: u32,
        ty: OutputType,
        t: Timestamp,
        data: impl crate::output::WriteJson + Send + Sync + 'static,
    ) {
        let subject = self.slots[slot as usize]
            .as_ref()
            .expect("live slot")
            .key
            .clone();
        let out = Output::deferred(ty, subject, t, data, None);
        super::count_output(&mut self.stats, &mut self.alert_counts, &out);
        let cust = self.slots[slot as usize].as_mut().expect("live slot");
        if cust.provisional {
            cust.finals.push(out.clone());
        }
        self.queue.push(out);
    }
}

/// A new-lead SLA deadline: its span from the owner's start, the follow-ups it asks, its mark
/// in `Holding::sla_noted` and its reason code.
fn new_lead_deadline(sla: NewLeadSla, due: Due) -> (Span, u32, u8, &'static str) {
    match due {
        Due::FirstFollowUp => (
            sla.first_within.unwrap_or(sla.within),
            1,
            SLA_FIRST,
            "new_lead_first_follow_up",
        ),
        _ => (sla.within, sla.follow_ups, SLA_ALL, "new_lead_follow_ups"),
    }
}

/// Whether the new-lead SLA deadline `due` falls at `at` for the holding's owner, who missed
/// it, and has not been reported yet. A won customer is no longer a lead: its SLA is over.
fn new_lead_missed(sla: NewLeadSla, due: Due, hold: &Holding, at: Timestamp) -> bool {
    let Some(o) = hold.owner.as_ref().filter(|o| !o.won) else {
        return false;
    };
    let (span, need, bit, _) = new_lead_deadline(sla, due);
    o.since + span == at && hold.follow_ups < need && hold.sla_noted & bit == 0
}

/// The customer's wait for its pool's automatic assignment: (since when, the pool, its
/// assignment), when it has no owner and its pool assigns.
pub(super) fn pool_wait(
    rules: &crate::config::Rules,
    hold: &Holding,
) -> Option<(Timestamp, u16, crate::config::Assignment)> {
    if hold.owner.is_some() {
        return None;
    }
    let since = hold.waiting_since?;
    let pool = hold.attrs.pool?;
    Some((since, pool, rules.pools[pool as usize].assignment?))
}

/// The part of [`Engine::room_digest`] the roster gives: each rep (by id, in id order) with
/// what makes them eligible for a pool's assignment.
pub(super) fn roster_digest(roster: &crate::config::Roster) -> u64 {
    let mut reps: Vec<_> = roster.reps.iter().collect();
    reps.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    let mut d = DigestText::default();
    for r in reps {
        d.text(&r.id);
        d.text(r.team.as_deref().unwrap_or(""));
        d.text(r.role.as_deref().unwrap_or(""));
        d.number(i64::from(r.active));
        for (from, to) in &r.away {
            d.number(day_number(*from));
            d.number(day_number(*to));
        }
        d.number(-1);
    }
    d.finish()
}

/// Fields joined without ambiguity (each text carries its length), for a digest that stays
/// the same across builds: no `Debug` output in it.
#[derive(Default)]
struct DigestText(Vec<u8>);

impl DigestText {
    fn text(&mut self, s: &str) {
        self.0.extend_from_slice(&(s.len() as u64).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn list<'a>(&mut self, items: impl IntoIterator<Item = &'a str>) {
        for s in items {
            self.text(s);
        }
        self.number(-1);
    }
    fn number(&mut self, n: i64) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }
    fn finish(self) -> u64 {
        crate::digest::xxh3_64_parts([self.0.as_slice()])
    }
}

/// Whether the lifecycle still needs this customer in memory. Housekeeping asks only once the
/// customer is forgotten in event time (no event for `forget_after`): every later event reads
/// it afresh, a reclaim cooldown's previous owner included, so only an owner or a wait for the
/// pool's assignment keeps it.
pub(super) fn idle(hold: &Holding) -> bool {
    hold.owner.is_none() && hold.waiting_since.is_none()
}

fn day_number(d: chrono::NaiveDate) -> i64 {
    use chrono::Datelike;
    d.num_days_from_ce() as i64
}
