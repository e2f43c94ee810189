//! The engine's whole state as plain data, so that an edge can store it (the Kafka changelog)
//! and another process can carry on from it.
//!
//! [`Engine::snapshot`] and [`Engine::restore`] are exact: an engine restored from a snapshot
//! gives, for the same further input, the same outputs byte for byte as the engine the snapshot
//! was taken from (tested below, and relied on by the Kafka edge's recovery).
//!
//! Interned handles ([`Sym`], [`RepIdx`]) are numbers private to one engine, so the snapshot
//! names words and reps by their text. The interning order is kept too: restoring re-interns the
//! words and reps in the same order, so an engine restored with the same roster numbers them as
//! the original did, and anything ordered by handle stays in the same order.
//!
//! Derived indexes (customer key → slot, timers) are rebuilt rather than stored: only live
//! housekeeping timers matter (a stale one is skipped when it fires anyway). So are the
//! things derived from the rules: each customer's pool and who may be assigned from it.
//!
//! The lifecycle's queues (events waiting for the watermark, deadlines) are stored whole,
//! stale deadlines included: their order is their content, so a heap rebuilt from them pops in
//! the same order.
//!
//! Rules are named by id, not by index, so a process that restarts with changed rules carries
//! on as a rules reload would (cooldowns of removed rules are dropped).

use super::attrs::{Attrs, GivenId};
use super::customer::{
    Body, Customer, Emitted, Entry, Fold, FollowUps, Holding, Owner, Via, ASSIGNMENT_ORIGIN,
};
use super::lifecycle::{Book, Due};
use super::reps::{RepIdx, Sym};
use super::stats::change_reason_index;
use super::timers::TimerKind;
use super::{Engine, RosterFile};
use crate::config::{Roster, Rules, Severity, SourceFile};
use crate::event::{ContactKind, Direction, EventId, OwnershipAction};
use crate::identity::{Handle, IdentKind, Link, Member};
use crate::ingest::RejectReason;
use crate::output::{Output, OutputType};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Bumped when the layout changes; a snapshot of another format is refused, not misread.
pub const SNAPSHOT_FORMAT: u32 = 3;

/// Everything an engine knows. Serialize it with any serde format.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    pub format: u32,
    /// Every interned word, in interning order.
    words: Vec<Arc<str>>,
    /// Every rep id, in interning order.
    reps: Vec<Arc<str>>,
    /// Every set of attributes events gave, in interning order (the first gives nothing).
    given: Vec<AttrsSnap>,
    clock: Option<i64>,
    /// Set when a file's input ended: nothing can arrive before it any more.
    drained_to: Option<i64>,
    /// Slot generations and free slots: slot numbers order same-deadline timers.
    generations: Vec<u32>,
    free: Vec<u32>,
    customers: Vec<CustomerSnap>,
    links: Vec<(String, Box<str>, LinkSnap)>,
    shared_count: u64,
    /// Accepted events per source: counts by contact kind, then ownership action.
    event_counts: Vec<(Arc<str>, [u64; 13])>,
    /// Alerts per (rule, severity).
    alert_counts: Vec<(Arc<str>, String, u64)>,
    stats: StatsSnap,
    ledger: LedgerSnap,
    /// The `Engine::room_digest` the line of waiting customers was last tried for: a restore
    /// under rules or a roster that differ says so (`Engine::room_changed`). Absent in earlier
    /// builds' snapshots, which then read as changed (one extra try of the line).
    #[serde(default)]
    room: Option<u64>,
    /// The rules and roster files the engine ran under. Absent in earlier builds' snapshots,
    /// and when the rules or the roster were built in code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<SnapshotFiles>,
}

/// The files an engine ran under when its snapshot was taken: a restore that re-reads input
/// can re-read it under them (see `kafka::task::Task::restore`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SnapshotFiles {
    /// The rules files, in the order they were read.
    pub rules: Vec<SourceFile>,
    /// The roster file; none for no roster.
    pub roster: Option<SourceFile>,
}

impl SnapshotFiles {
    /// Compiles them again: every problem, one per line, when they no longer compile (a
    /// snapshot of a build that read them otherwise).
    pub fn compile(&self) -> Result<(Rules, Roster), String> {
        let problems = |d: Vec<crate::config::Diagnostic>| {
            d.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        };
        let rules = Rules::from_texts(
            self.rules
                .iter()
                .map(|f| (std::path::Path::new(&f.name), f.text.as_str())),
        )
        .map_err(problems)?;
        let roster = match &self.roster {
            Some(f) => Roster::parse(&f.text, std::path::Path::new(&f.name)).map_err(problems)?,
            None => Roster::default(),
        };
        Ok((rules, roster))
    }
}

/// What an identifier points at, by customer key ([`Link`] holds slot handles, which only mean
/// something inside one engine).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
enum LinkSnap {
    One(Arc<str>),
    /// Sorted.
    Many(Vec<Arc<str>>),
    Shared,
}

/// An entry's order key: (time, order, tie).
type KeySnap = (i64, u8, u64);

/// The lifecycle's cross-customer state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct LedgerSnap {
    /// Events waiting for the watermark: (key, customer key hash, slot, generation), sorted.
    pending: Vec<(KeySnap, u64, u32, u32)>,
    /// Deadlines: (time, customer key hash, kind, slot, generation), sorted.
    deadlines: Vec<(i64, u64, String, u32, u32)>,
    /// Per rep, in rep order: (owned, locked, claim day, claims, last assignment number).
    books: Vec<(u32, u32, i64, u32, u64)>,
    assignments: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct StatsSnap {
    duplicates: u64,
    rejected: Vec<(String, u64)>,
    late_ownership_applied: u64,
    reordered: u64,
    claims: u64,
    withdrawn: u64,
    merges: u64,
    customers_created: u64,
    customers_evicted: u64,
    ownership_changes: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct CustomerSnap {
    slot: u32,
    key: Arc<str>,
    provisional: bool,
    generation: u32,
    identifiers: Vec<(String, Box<str>)>,
    hold: HoldSnap,
    base: FoldSnap,
    log: Vec<EntrySnap>,
    folded: usize,
    head: FoldSnap,
    emitted: Vec<EmittedSnap>,
    finals: Vec<OutputSnap>,
    housekeeping_at: Option<i64>,
}

/// A customer's attributes (the pool is derived from them and the rules in force).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct AttrsSnap {
    region: Option<Arc<str>>,
    industry: Option<Arc<str>>,
    tier: Option<Arc<str>>,
    product_line: Option<Arc<str>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct HoldSnap {
    attrs: AttrsSnap,
    last: Option<i64>,
    owner: Option<OwnerSnap>,
    follow_ups: u32,
    inbound_waiting: Option<i64>,
    warned_for: Option<i64>,
    last_touch: Option<i64>,
    dormant_noted: Option<i64>,
    /// Absent in older snapshots: none reported yet.
    #[serde(default, skip_serializing_if = "is_zero")]
    sla_noted: u8,
    released: Option<(Arc<str>, i64)>,
    waiting_since: Option<i64>,
    /// Absent in older snapshots, whose builds never planned a retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    assign_retry: Option<i64>,
    /// Absent in older snapshots: the last release stands in for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ownership_decided: Option<i64>,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct OutputSnap {
    id: String,
    ty: String,
    subject: Arc<str>,
    time: i64,
    data: String,
    rule: Option<(Arc<str>, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct FoldSnap {
    attrs: AttrsSnap,
    last: Option<i64>,
    owner: Option<OwnerSnap>,
    /// The owner's follow-ups before the new-lead SLA's first deadline and before its last,
    /// written whenever there is an owner. Snapshots of earlier builds don't have them: the
    /// owner's counts are then unknown, and no SLA release is assumed for that owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    follow_ups: Option<(u32, u32)>,
    /// Follow-ups counted for another owner than the fold's: (rep, owner since, before the
    /// first deadline, before the last). Detection assumes a CRM ownership change before the
    /// lifecycle decides it; when the lifecycle refuses it, the owner before it is the fold's
    /// owner again, with the follow-ups counted for it until then. Absent in earlier builds'
    /// snapshots (those counts are then lost, as they were); `follow_ups` stays the fold
    /// owner's, so earlier builds reading this one's snapshots credit nobody wrongly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    follow_ups_of: Option<(Arc<str>, i64, u32, u32)>,
    /// (rule id, hash of the rep set, time of the last alert).
    cooldowns: Vec<(Arc<str>, u64, i64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct OwnerSnap {
    rep: Arc<str>,
    team: Option<Arc<str>>,
    since: i64,
    protected_until: i64,
    via: String,
    origin_event: Arc<str>,
    origin_source: Option<Arc<str>>,
    origin_kind: String,
    /// Absent in snapshots written before it was kept: such an owner's origin shows no
    /// direction in evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin_direction: Option<String>,
    account_team: Vec<Arc<str>>,
    locked: bool,
    won: bool,
    cap_at: Option<i64>,
    deal_by: Option<i64>,
    /// Absent in snapshots written before it was kept: detection then counts a new-lead SLA
    /// deadline missed while such an owner was locked as releasing it (the lifecycle doesn't).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unlocked_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct EntrySnap {
    t: i64,
    order: u8,
    tie: u64,
    source: Option<Arc<str>>,
    event_id: Arc<str>,
    /// Index into [`Snapshot::given`].
    given: u32,
    body: BodySnap,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
enum BodySnap {
    Contact {
        rep: Arc<str>,
        team: Option<Arc<str>>,
        role: Option<Arc<str>>,
        /// The rep's `active` when the contact was placed. Missing in snapshots from builds
        /// that didn't store it: then the roster the snapshot is restored under says.
        #[serde(default)]
        active: Option<bool>,
        kind: String,
        direction: String,
    },
    Ownership {
        action: String,
        rep: Option<(Arc<str>, Option<Arc<str>>)>,
        account_team: Vec<Arc<str>>,
        occurred: i64,
    },
    OwnerState(Option<OwnerSnap>),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct EmittedSnap {
    key: KeySnap,
    id: String,
    ty: String,
    /// The id of the collision rule that raised it.
    rule: Option<Arc<str>>,
}

/// A snapshot that can't be restored: written by another format or damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreError(pub String);

impl std::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the engine state can't be restored: {}", self.0)
    }
}

impl std::error::Error for RestoreError {}

fn bad(what: &str, value: &str) -> RestoreError {
    RestoreError(format!("unknown {what} `{value}` in the snapshot"))
}

/// Maps a word back to the `&'static str` the engine keeps for it.
fn static_name(
    value: &str,
    what: &str,
    names: impl IntoIterator<Item = &'static str>,
) -> Result<&'static str, RestoreError> {
    names
        .into_iter()
        .find(|n| *n == value)
        .ok_or_else(|| bad(what, value))
}

fn direction_named(name: &str) -> Result<Direction, RestoreError> {
    Direction::ALL
        .into_iter()
        .find(|d| d.as_str() == name)
        .ok_or_else(|| bad("direction", name))
}

fn kind_names() -> impl Iterator<Item = &'static str> {
    ContactKind::ALL
        .into_iter()
        .map(ContactKind::as_str)
        .chain(
            OwnershipAction::ALL
                .into_iter()
                .map(OwnershipAction::as_str),
        )
        .chain([ASSIGNMENT_ORIGIN])
}

fn severity(s: &str) -> Result<&'static str, RestoreError> {
    static_name(s, "severity", Severity::CHOICES.iter().map(|(s, _)| *s))
}

fn ident_kind(s: &str) -> Result<IdentKind, RestoreError> {
    [IdentKind::Phone, IdentKind::Email, IdentKind::Company]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| bad("identifier kind", s))
}

fn output_type(s: &str) -> Result<OutputType, RestoreError> {
    OutputType::ALL
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or_else(|| bad("output type", s))
}

impl Engine {
    /// The engine's whole state (outputs not yet drained are not part of it: drain first).
    pub fn snapshot(&self) -> Snapshot {
        debug_assert_eq!(
            self.ledger.waiting,
            self.line_from_holdings(),
            "the pools' line is exactly the customers waiting in it"
        );
        let word = |s: Sym| self.words.get(s).cloned();
        let rep = |r: RepIdx| self.reps.get(r).id.clone();
        let rule_id =
            |ri: u16| -> Arc<str> { self.rules.collisions[ri as usize].id.as_str().into() };
        let owner = |o: &Owner| OwnerSnap {
            rep: rep(o.rep),
            team: word(o.team),
            since: o.since.0,
            protected_until: o.protected_until.0,
            via: o.via.as_str().to_string(),
            origin_event: o.origin_event.as_str().into(),
            origin_source: word(o.origin_source),
            origin_kind: o.origin_kind.to_string(),
            origin_direction: o.origin_direction.map(|d| d.as_str().to_string()),
            account_team: o.account_team.iter().map(|r| rep(*r)).collect(),
            locked: o.locked,
            won: o.won,
            cap_at: o.cap_at.map(|t| t.0),
            deal_by: o.deal_by.map(|t| t.0),
            unlocked_at: o.unlocked_at.map(|t| t.0),
        };
        let attrs = |[region, industry, tier, product_line]: [Sym; 4]| AttrsSnap {
            region: word(region),
            industry: word(industry),
            tier: word(tier),
            product_line: word(product_line),
        };
        let fold = |f: &Fold| FoldSnap {
            attrs: attrs(f.attrs.fields()),
            last: f.last.map(|t| t.0),
            owner: f.owner.as_ref().map(owner),
            follow_ups: f.owner.as_ref().map(|o| f.follow_ups.of(o)),
            follow_ups_of: counts_another(f).then(|| {
                let c = &f.follow_ups;
                (rep(c.rep), c.since.0, c.first, c.within)
            }),
            cooldowns: f
                .cooldowns
                .iter()
                .map(|(r, h, t)| (rule_id(*r), *h, t.0))
                .collect(),
        };
        let hold = |h: &Holding| HoldSnap {
            attrs: attrs(h.attrs.fields()),
            last: h.last.map(|t| t.0),
            owner: h.owner.as_ref().map(owner),
            follow_ups: h.follow_ups,
            inbound_waiting: h.inbound_waiting.map(|t| t.0),
            warned_for: h.warned_for.map(|t| t.0),
            last_touch: h.last_touch.map(|t| t.0),
            dormant_noted: h.dormant_noted.map(|t| t.0),
            sla_noted: h.sla_noted,
            released: h.released.map(|(r, t)| (rep(r), t.0)),
            waiting_since: h.waiting_since.map(|t| t.0),
            assign_retry: h.assign_retry.map(|t| t.0),
            ownership_decided: h.ownership_decided.map(|t| t.0),
        };
        let entry = |e: &Entry| EntrySnap {
            t: e.t.0,
            order: e.order,
            tie: e.tie,
            source: word(e.source),
            event_id: e.event_id.as_str().into(),
            given: e.given.0,
            body: match &e.body {
                Body::Contact {
                    rep: r,
                    team,
                    role,
                    active,
                    kind,
                    direction,
                } => BodySnap::Contact {
                    rep: rep(*r),
                    team: word(*team),
                    role: word(*role),
                    active: Some(*active),
                    kind: kind.as_str().to_string(),
                    direction: direction.as_str().to_string(),
                },
                Body::Ownership {
                    action,
                    rep: owner,
                    account_team,
                    occurred,
                } => BodySnap::Ownership {
                    action: action.as_str().to_string(),
                    rep: owner.map(|(r, team)| (rep(r), word(team))),
                    account_team: account_team.iter().map(|r| rep(*r)).collect(),
                    occurred: occurred.0,
                },
                Body::OwnerState(o) => BodySnap::OwnerState(o.as_deref().map(owner)),
            },
        };
        let output = |o: &Output| OutputSnap {
            id: o.id().to_string(),
            ty: o.ty().as_str().to_string(),
            subject: o.subject().clone(),
            time: o.time().0,
            data: o.data().to_string(),
            rule: o.rule().map(|(r, s)| (r.clone(), s.to_string())),
        };
        let customers = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(slot, c)| c.as_ref().map(|c| (slot as u32, c)))
            .map(|(slot, c)| CustomerSnap {
                slot,
                key: c.key.clone(),
                provisional: c.provisional,
                generation: c.generation,
                identifiers: c
                    .identifiers
                    .iter()
                    .map(|i| (i.kind.as_str().to_string(), i.text.clone()))
                    .collect(),
                hold: hold(&c.hold),
                base: fold(&c.base),
                log: c.log.iter().map(entry).collect(),
                folded: c.folded,
                head: fold(&c.head),
                emitted: c
                    .emitted
                    .iter()
                    .map(|e| EmittedSnap {
                        key: (e.key.0 .0, e.key.1, e.key.2),
                        id: e.id.clone(),
                        ty: e.ty.as_str().to_string(),
                        rule: e.rule.map(rule_id),
                    })
                    .collect(),
                finals: c.finals.iter().map(output).collect(),
                housekeeping_at: c.housekeeping_at.map(|t| t.0),
            })
            .collect();
        let mut alert_counts: Vec<(Arc<str>, String, u64)> = self
            .alert_counts
            .iter()
            .map(|((rule, sev), n)| (rule.clone(), sev.to_string(), *n))
            .collect();
        alert_counts.sort();
        let ledger = {
            let l = &self.ledger;
            let mut pending: Vec<_> = l
                .pending
                .iter()
                .map(|&(t, (o, tie, hash, slot, gen))| ((t.0, o, tie), hash, slot, gen))
                .collect();
            pending.sort();
            let mut deadlines: Vec<_> = l
                .deadlines
                .iter()
                .map(|&(at, (hash, due, slot, gen))| (at, hash, due, slot, gen))
                .collect();
            deadlines.sort();
            LedgerSnap {
                pending,
                deadlines: deadlines
                    .into_iter()
                    .map(|(t, hash, due, slot, gen)| {
                        (t.0, hash, due.as_str().to_string(), slot, gen)
                    })
                    .collect(),
                books: l
                    .books
                    .iter()
                    .map(|b| (b.owned, b.locked, b.claim_day, b.claims, b.last_assigned))
                    .collect(),
                assignments: l.assignments,
            }
        };
        Snapshot {
            format: SNAPSHOT_FORMAT,
            words: (0..self.words.len())
                .filter_map(|i| self.words.get(Sym(i as u32)).cloned())
                .collect(),
            reps: self.reps.list.iter().map(|r| r.id.clone()).collect(),
            given: self.given.iter().map(|g| attrs(*g)).collect(),
            clock: self.clock.map(|t| t.0),
            drained_to: self.drained_to.map(|t| t.0),
            generations: self.generations.clone(),
            free: self.free.clone(),
            customers,
            links: {
                // Sorted: a snapshot's bytes don't depend on hash-map iteration order.
                // Every handle a link holds is a live customer's (see `IdentityIndex`); one
                // that isn't would be left out, as restoring leaves out links to no one.
                let key = |h: &Handle| {
                    let cust = super::live(&self.slots, *h);
                    debug_assert!(cust.is_some(), "a link to no live customer");
                    cust.map(|c| c.key.clone())
                };
                let mut links: Vec<(String, Box<str>, LinkSnap)> = self
                    .identity
                    .links()
                    .filter_map(|(k, ident, link)| {
                        let member = |m: &Member| match m {
                            Member::Live(h) => key(h),
                            Member::Dormant(k) => Some(k.clone()),
                        };
                        let link = match link {
                            Link::One(h) => LinkSnap::One(key(h)?),
                            Link::Dormant(k) => LinkSnap::One((**k).clone()),
                            Link::Many(ms) => {
                                let mut keys: Vec<Arc<str>> =
                                    ms.iter().filter_map(member).collect();
                                keys.sort();
                                LinkSnap::Many(keys)
                            }
                            Link::Shared => LinkSnap::Shared,
                        };
                        Some((k.as_str().to_string(), Box::from(ident), link))
                    })
                    .collect();
                links.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
                links
            },
            shared_count: self.identity.shared_count,
            event_counts: self
                .event_counts
                .iter()
                .enumerate()
                .filter_map(|(src, row)| word(Sym(src as u32)).map(|w| (w, *row)))
                .collect(),
            alert_counts,
            stats: StatsSnap {
                duplicates: self.stats.duplicates,
                rejected: self
                    .stats
                    .rejected
                    .iter()
                    .map(|(r, n)| (r.as_str().to_string(), *n))
                    .collect(),
                late_ownership_applied: self.stats.late_ownership_applied,
                reordered: self.stats.reordered,
                claims: self.stats.claims,
                withdrawn: self.stats.withdrawn,
                merges: self.stats.merges,
                customers_created: self.stats.customers_created,
                customers_evicted: self.stats.customers_evicted,
                ownership_changes: self
                    .ownership_changes()
                    .iter()
                    .map(|(r, n)| (r.to_string(), *n))
                    .collect(),
            },
            ledger,
            room: self.room_seen,
            files: {
                let roster = match &self.roster_file {
                    RosterFile::Nothing => Some(None),
                    RosterFile::Read(f) => Some(Some(SourceFile::clone(f))),
                    RosterFile::InCode => None,
                };
                roster
                    .filter(|_| !self.rules.files.is_empty())
                    .map(|roster| SnapshotFiles {
                        rules: self.rules.files.to_vec(),
                        roster,
                    })
            },
        }
    }

    /// An engine with the given rules and roster that carries on from `snap`.
    pub fn restore(
        rules: Arc<Rules>,
        roster: &Roster,
        snap: &Snapshot,
    ) -> Result<Engine, RestoreError> {
        if snap.format != SNAPSHOT_FORMAT {
            return Err(RestoreError(format!(
                "it was written in format {}, this version reads format {SNAPSHOT_FORMAT}",
                snap.format
            )));
        }
        let mut e = Engine::new(rules, roster);
        // Same interning order as the original: same handles when the roster is the same.
        for w in &snap.words {
            e.words.intern(w);
        }
        for r in &snap.reps {
            e.reps.intern(r);
        }
        for (i, a) in snap.given.iter().enumerate() {
            let given = restore_attrs(&mut e, a);
            if e.given.intern(given) != GivenId(i as u32) {
                return Err(RestoreError(format!(
                    "attribute set {i} is written twice (or the first is not empty)"
                )));
            }
        }
        e.clock = snap.clock.map(Timestamp);
        e.drained_to = snap.drained_to.map(Timestamp);
        e.generations = snap.generations.clone();
        e.free = snap.free.clone();
        e.slots = super::slots::Slots::empty(snap.generations.len());
        for c in &snap.customers {
            let cust = restore_customer(&mut e, c)?;
            let slot = c.slot as usize;
            if slot >= e.slots.len() {
                return Err(RestoreError(format!(
                    "customer {} is in slot {slot}, past the {} slots recorded",
                    c.key,
                    e.slots.len()
                )));
            }
            if let Some(at) = cust.housekeeping_at {
                e.timers
                    .schedule(at, (c.slot, cust.generation, TimerKind::Housekeeping));
            }
            e.by_key.insert(cust.key.clone(), cust.key_hash, c.slot);
            e.slots[slot] = Some(cust);
            // Derived from the customer's attributes and the rules in force now.
            e.place_in_pools(c.slot);
        }
        for (kind, ident, link) in &snap.links {
            // A link names a customer in memory when that customer lists the identifier
            // among its own. Otherwise it is dormant: the customer was evicted, or is back in
            // memory and hasn't named this identifier since (then its next eviction must leave
            // the link dormant again, as it would have without the restore).
            let kind = ident_kind(kind)?;
            let member = |key: &Arc<str>| {
                let live = e.by_key.get(key).and_then(|slot| {
                    let c = e.slots[slot as usize].as_ref()?;
                    c.identifiers
                        .iter()
                        .any(|i| i.kind == kind && &*i.text == ident.as_ref())
                        .then_some(Handle {
                            slot,
                            generation: c.generation,
                        })
                });
                live.map_or_else(|| Member::Dormant(key.clone()), Member::Live)
            };
            let link = match link {
                LinkSnap::One(key) => match member(key) {
                    Member::Live(h) => Link::One(h),
                    Member::Dormant(k) => Link::Dormant(Box::new(k)),
                },
                LinkSnap::Many(keys) => Link::Many(Box::new(keys.iter().map(member).collect())),
                LinkSnap::Shared => Link::Shared,
            };
            e.identity.restore_link(kind, ident, link);
        }
        e.identity.shared_count = snap.shared_count;
        for (source, row) in &snap.event_counts {
            let src = e.words.intern(source).0 as usize;
            if e.event_counts.len() <= src {
                e.event_counts.resize(src + 1, [0; 13]);
            }
            e.event_counts[src] = *row;
        }
        for (rule, sev, n) in &snap.alert_counts {
            e.alert_counts.insert((rule.clone(), severity(sev)?), *n);
        }
        let s = &snap.stats;
        e.stats.duplicates = s.duplicates;
        for (reason, n) in &s.rejected {
            let r = RejectReason::ALL
                .into_iter()
                .find(|r| r.as_str() == reason)
                .ok_or_else(|| bad("rejection reason", reason))?;
            e.stats.rejected.insert(r, *n);
        }
        e.stats.late_ownership_applied = s.late_ownership_applied;
        e.stats.reordered = s.reordered;
        e.stats.claims = s.claims;
        e.stats.withdrawn = s.withdrawn;
        e.stats.merges = s.merges;
        e.stats.customers_created = s.customers_created;
        e.stats.customers_evicted = s.customers_evicted;
        for (reason, n) in &s.ownership_changes {
            let i = change_reason_index(reason).ok_or_else(|| bad("ownership change", reason))?;
            e.change_counts[i] = *n;
        }
        let l = &snap.ledger;
        for &((t, o, tie), hash, slot, gen) in &l.pending {
            e.ledger
                .pending
                .schedule(Timestamp(t), (o, tie, hash, slot, gen));
        }
        for (t, hash, due, slot, gen) in &l.deadlines {
            let due = Due::ALL
                .into_iter()
                .find(|d| d.as_str() == due)
                .ok_or_else(|| bad("deadline kind", due))?;
            e.ledger
                .deadlines
                .schedule(Timestamp(*t), (*hash, due, *slot, *gen));
        }
        // A rep's books are at its place in `snap.reps`, which is this engine's place for the
        // same rep only when the roster is the same: a roster with a new hire numbers the
        // reps first seen in events differently. Each book goes to its rep by id.
        if l.books.len() > snap.reps.len() {
            return Err(RestoreError(format!(
                "{} reps have books, but only {} reps are recorded",
                l.books.len(),
                snap.reps.len()
            )));
        }
        for (id, &(owned, locked, claim_day, claims, last_assigned)) in
            snap.reps.iter().zip(&l.books)
        {
            let i = e.reps.intern(id).0 as usize;
            let books = &mut e.ledger.books;
            if books.len() <= i {
                books.resize(i + 1, Book::default());
            }
            books[i] = Book {
                owned,
                locked,
                claim_day,
                claims,
                last_assigned,
            };
        }
        e.ledger.assignments = l.assignments;
        // Reps first seen in events joined the intern table after the engine was built.
        let (rules, reps, words, exempt) = (&e.rules, &e.reps, &e.words, &e.exempt_roles);
        e.ledger.set_pool_reps(rules, reps, words, exempt);
        // The line of customers waiting for a rep with room is their holdings' state: a
        // snapshot needs no copy of it.
        e.ledger.waiting = e.line_from_holdings();
        // Other pools, limits or reps than when the line was last tried may have made room
        // (`room_changed`); the driver decides where to try it again.
        e.room_seen = snap.room;
        Ok(e)
    }
}

fn restore_customer(e: &mut Engine, c: &CustomerSnap) -> Result<Customer, RestoreError> {
    let mut cust = Customer::new(
        c.key.clone(),
        crate::event::customer_id_hash(&c.key),
        c.provisional,
        c.generation,
        e.blank,
    );
    for (kind, ident) in &c.identifiers {
        cust.identifiers
            .push(crate::identity::Identifier::new(ident_kind(kind)?, ident));
    }
    cust.base = restore_fold(e, &c.base)?;
    cust.head = restore_fold(e, &c.head)?;
    let h = &c.hold;
    cust.hold = Holding {
        attrs: restore_described(e, &h.attrs),
        last: h.last.map(Timestamp),
        owner: h.owner.as_ref().map(|o| restore_owner(e, o)).transpose()?,
        follow_ups: h.follow_ups,
        inbound_waiting: h.inbound_waiting.map(Timestamp),
        warned_for: h.warned_for.map(Timestamp),
        last_touch: h.last_touch.map(Timestamp),
        dormant_noted: h.dormant_noted.map(Timestamp),
        sla_noted: h.sla_noted,
        released: h
            .released
            .as_ref()
            .map(|(r, t)| (e.reps.intern(r), Timestamp(*t))),
        waiting_since: h.waiting_since.map(Timestamp),
        assign_retry: h.assign_retry.map(Timestamp),
        ownership_decided: h
            .ownership_decided
            .or(h.released.as_ref().map(|(_, t)| *t))
            .map(Timestamp),
    };
    for s in &c.log {
        let body = match &s.body {
            BodySnap::Contact {
                rep,
                team,
                role,
                active,
                kind,
                direction,
            } => {
                let rep = e.reps.intern(rep);
                Body::Contact {
                    rep,
                    team: sym(e, team),
                    role: sym(e, role),
                    active: active.unwrap_or_else(|| e.reps.get(rep).active),
                    kind: ContactKind::parse(kind).ok_or_else(|| bad("contact kind", kind))?,
                    direction: direction_named(direction)?,
                }
            }
            BodySnap::Ownership {
                action,
                rep,
                account_team,
                occurred,
            } => Body::Ownership {
                action: OwnershipAction::parse(action)
                    .ok_or_else(|| bad("ownership action", action))?,
                rep: rep
                    .as_ref()
                    .map(|(r, team)| (e.reps.intern(r), sym(e, team))),
                account_team: account_team.iter().map(|r| e.reps.intern(r)).collect(),
                occurred: Timestamp(*occurred),
            },
            BodySnap::OwnerState(o) => Body::OwnerState(
                o.as_ref()
                    .map(|o| restore_owner(e, o).map(Box::new))
                    .transpose()?,
            ),
        };
        cust.log.push(Entry {
            t: Timestamp(s.t),
            order: s.order,
            tie: s.tie,
            source: sym(e, &s.source),
            event_id: EventId::new(&s.event_id),
            given: restored_given(e, s.given, &c.key)?,
            body,
        });
    }
    if c.folded > cust.log.len() {
        return Err(RestoreError(format!(
            "customer {} has {} entries folded of {}",
            c.key,
            c.folded,
            cust.log.len()
        )));
    }
    cust.folded = c.folded;
    for em in &c.emitted {
        cust.emitted.push(Emitted {
            key: (Timestamp(em.key.0), em.key.1, em.key.2),
            id: em.id.clone(),
            ty: output_type(&em.ty)?,
            // A rule removed since is forgotten, as a rules reload forgets it.
            rule: em.rule.as_deref().and_then(|id| rule_index(e, id)),
        });
    }
    for o in &c.finals {
        cust.finals.push(Output::from_parts(
            o.id.clone(),
            output_type(&o.ty)?,
            o.subject.clone(),
            Timestamp(o.time),
            o.data.clone(),
            o.rule
                .as_ref()
                .map(|(r, s)| severity(s).map(|s| (r.clone(), s)))
                .transpose()?,
        ));
    }
    cust.housekeeping_at = c.housekeeping_at.map(Timestamp);
    Ok(cust)
}

fn restore_attrs(e: &mut Engine, a: &AttrsSnap) -> [Sym; 4] {
    [&a.region, &a.industry, &a.tier, &a.product_line].map(|w| sym(e, w))
}

/// A customer's attributes; their pool is found once the customer is in place.
fn restore_described(e: &mut Engine, a: &AttrsSnap) -> Attrs {
    let [region, industry, tier, product_line] = restore_attrs(e, a);
    Attrs {
        region,
        industry,
        tier,
        product_line,
        pool: None,
    }
}

fn restored_given(e: &Engine, given: u32, customer: &str) -> Result<GivenId, RestoreError> {
    if e.given.holds(GivenId(given)) {
        Ok(GivenId(given))
    } else {
        Err(RestoreError(format!(
            "an entry of customer {customer} names attribute set {given}, which the snapshot doesn't hold"
        )))
    }
}

fn sym(e: &mut Engine, word: &Option<Arc<str>>) -> Sym {
    e.words.intern_opt(word.as_deref())
}

fn rule_index(e: &Engine, id: &str) -> Option<u16> {
    e.rules
        .collisions
        .iter()
        .position(|r| r.id == id)
        .map(|i| i as u16)
}

fn restore_owner(e: &mut Engine, o: &OwnerSnap) -> Result<Owner, RestoreError> {
    Ok(Owner {
        rep: e.reps.intern(&o.rep),
        team: sym(e, &o.team),
        since: Timestamp(o.since),
        protected_until: Timestamp(o.protected_until),
        via: Via::ALL
            .into_iter()
            .find(|v| v.as_str() == o.via)
            .ok_or_else(|| bad("ownership origin", &o.via))?,
        origin_event: EventId::new(&o.origin_event),
        origin_source: sym(e, &o.origin_source),
        origin_kind: static_name(&o.origin_kind, "event kind", kind_names())?,
        origin_direction: o
            .origin_direction
            .as_deref()
            .map(direction_named)
            .transpose()?,
        account_team: o.account_team.iter().map(|r| e.reps.intern(r)).collect(),
        locked: o.locked,
        won: o.won,
        cap_at: o.cap_at.map(Timestamp),
        deal_by: o.deal_by.map(Timestamp),
        unlocked_at: o.unlocked_at.map(Timestamp),
    })
}

/// Whether the fold keeps follow-up counts of an owner other than its own (see
/// `FoldSnap::follow_ups_of`).
fn counts_another(f: &Fold) -> bool {
    let counted = f.follow_ups.first > 0 || f.follow_ups.within > 0;
    counted
        && f.follow_ups.rep != FollowUps::NONE.rep
        && f.owner
            .as_ref()
            .is_none_or(|o| f.follow_ups.of(o) == (0, 0))
}

fn restore_fold(e: &mut Engine, f: &FoldSnap) -> Result<Fold, RestoreError> {
    let owner = f.owner.as_ref().map(|o| restore_owner(e, o)).transpose()?;
    let follow_ups = match (&owner, f.follow_ups, &f.follow_ups_of) {
        (_, _, Some((rep, since, first, within))) => FollowUps {
            rep: e.reps.intern(rep),
            since: Timestamp(*since),
            first: *first,
            within: *within,
        },
        (Some(o), counts, _) => {
            let (first, within) = counts.unwrap_or((FollowUps::UNKNOWN, FollowUps::UNKNOWN));
            FollowUps {
                rep: o.rep,
                since: o.since,
                first,
                within,
            }
        }
        (None, _, _) => FollowUps::NONE,
    };
    Ok(Fold {
        attrs: restore_described(e, &f.attrs),
        last: f.last.map(Timestamp),
        owner,
        follow_ups,
        // Cooldowns of a rule removed since are dropped, as a rules reload drops them.
        cooldowns: f
            .cooldowns
            .iter()
            .filter_map(|(r, h, t)| rule_index(e, r).map(|ri| (ri, *h, Timestamp(*t))))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{write_events, GenConfig};
    use crate::ingest::Ingest;

    /// Runs `lines` through `engine`, returning every output line.
    fn feed(engine: &mut Engine, ingest: &mut Ingest, lines: &[&[u8]]) -> Vec<String> {
        let tz = engine.rules().settings.time_zone;
        let source = engine.rules().settings.output_source.clone();
        let mut out = Vec::new();
        for line in lines {
            let Ok(event) = ingest.parse(line, None, "default") else {
                continue;
            };
            let now = event
                .occurred_at()
                .max(engine.clock().unwrap_or(event.occurred_at()));
            let _ = engine.handle_event(&event, now);
            out.extend(engine.drain_outputs().map(|o| o.to_cloudevent(&source, tz)));
        }
        out
    }

    #[test]
    fn a_restored_engine_continues_byte_for_byte() {
        let cfg = GenConfig {
            seed: 11,
            customers: 400,
            reps: 30,
            events: 12_000,
            days: 40,
            out_of_order: 0.05,
            duplicates: 0.02,
            ..GenConfig::default()
        };
        let mut stream = Vec::new();
        write_events(&cfg, &mut stream).expect("generates");
        let roster_text = crate::gen::roster_yaml(&cfg);
        let roster = Roster::parse(&roster_text, std::path::Path::new("roster.yaml"))
            .expect("generated roster is valid");
        let rules = Arc::new(Rules::embedded());
        let lines: Vec<&[u8]> = stream.split(|b| *b == b'\n').collect();

        let finish = |engine: &mut Engine, out: &mut Vec<String>| {
            let tz = engine.rules().settings.time_zone;
            let source = engine.rules().settings.output_source.clone();
            engine.finish();
            out.extend(engine.drain_outputs().map(|o| o.to_cloudevent(&source, tz)));
        };
        let mut whole = Engine::new(rules.clone(), &roster);
        let mut ingest = Ingest::new(rules.clone());
        let mut expected = feed(&mut whole, &mut ingest, &lines);
        finish(&mut whole, &mut expected);
        // The shipped rules turn every lifecycle family on; the stream must exercise them, or
        // this test would not cover the state they keep.
        for ty in [
            "leadguard.collision.detected",
            "leadguard.ownership.claimed",
            "leadguard.ownership.assigned",
            "leadguard.ownership.released",
            "leadguard.ownership.extended",
            "leadguard.reclaim.warning",
            "leadguard.sla.breached",
        ] {
            let n = expected.iter().filter(|l| l.contains(ty)).count();
            assert!(n > 0, "the stream gives no {ty}");
        }

        // Cut at several points, going through JSON as the Kafka edge does.
        for cut in [1, 777, 5_000, 11_000] {
            let mut first = Engine::new(rules.clone(), &roster);
            let mut ingest = Ingest::new(rules.clone());
            let mut got = feed(&mut first, &mut ingest, &lines[..cut]);
            let json = serde_json::to_vec(&first.snapshot()).expect("serializes");
            let snap: Snapshot = serde_json::from_slice(&json).expect("deserializes");
            assert_eq!(snap, first.snapshot(), "JSON round trip is lossless");
            if cut > 1 {
                assert!(
                    !snap.ledger.deadlines.is_empty() && !snap.ledger.books.is_empty(),
                    "lifecycle state at line {cut}"
                );
                assert!(snap.given.len() > 1, "customer attributes at line {cut}");
            }
            let mut second = Engine::restore(rules.clone(), &roster, &snap).expect("restores");
            assert_eq!(
                second.snapshot(),
                snap,
                "restore then snapshot is the identity"
            );
            let (a, b) = (second.state_size(), first.state_size());
            assert_eq!(
                (a.customers, a.owned, a.log_entries, a.identifiers),
                (b.customers, b.owned, b.log_entries, b.identifiers)
            );
            got.extend(feed(&mut second, &mut ingest, &lines[cut..]));
            finish(&mut second, &mut got);
            assert_eq!(got.len(), expected.len(), "cut at line {cut}");
            assert!(
                got == expected,
                "outputs differ after a restore at line {cut}"
            );
            assert_eq!(second.stats(), whole.stats(), "counters carry over");
        }
    }

    #[test]
    fn a_dormant_link_survives_a_restore() {
        let rules = rules_from(
            "collisions:\n  - {id: contention, type: multi_rep, min_reps: 2, window: 7d}\n",
        );
        let mut engine = Engine::new(rules.clone(), &Roster::default());
        let mut ingest = Ingest::new(rules.clone());
        let call = |id: &str, at: &str, rep: &str, customer: &str| {
            format!(
                r#"{{"event_id":"{id}","kind":"call","occurred_at":"2026-11-{at}:00+08:00","rep":{{"id":"{rep}"}},"customer":{customer}}}"#
            )
        };
        let first = [
            call(
                "1",
                "02T09:00",
                "r-a",
                r#"{"id":"C1","phone":"13800138000"}"#,
            ),
            call("2", "12T09:00", "r-c", r#"{"id":"C3"}"#),
        ];
        feed(
            &mut engine,
            &mut ingest,
            &first.each_ref().map(|l| l.as_bytes()),
        );
        assert_eq!(engine.stats().customers_evicted, 1, "C1 was evicted");
        let json = serde_json::to_vec(&engine.snapshot()).expect("serializes");
        let snap: Snapshot = serde_json::from_slice(&json).expect("deserializes");
        assert!(
            snap.links
                .iter()
                .any(|(_, _, l)| *l == LinkSnap::One(Arc::from("C1"))),
            "the phone still names C1"
        );
        let mut restored = restored_whole(&rules, &snap);
        let by_phone = call("3", "12T09:05", "r-d", r#"{"phone":"138-0013-8000"}"#);
        feed(&mut restored, &mut ingest, &[by_phone.as_bytes()]);
        assert!(restored.by_key.get("C1").is_some(), "C1 is back in memory");
        assert!(restored.by_key.get("phone:+8613800138000").is_none());

        // Back in memory by its id alone: the phone's link stays dormant through a restore,
        // so that C1's next eviction leaves it dormant again.
        let mut engine = Engine::new(rules.clone(), &Roster::default());
        let by_id = call("4", "12T09:10", "r-e", r#"{"id":"C1"}"#);
        let lines = [first[0].as_bytes(), first[1].as_bytes(), by_id.as_bytes()];
        feed(&mut engine, &mut ingest, &lines);
        let restored =
            Engine::restore(rules, &Roster::default(), &engine.snapshot()).expect("restores");
        assert_eq!(
            restored.identity.lookup(IdentKind::Phone, "+8613800138000"),
            crate::identity::Lookup::Dormant(Arc::from("C1"))
        );
    }

    #[test]
    fn follow_up_counts_survive_a_restore_and_are_unknown_in_older_snapshots() {
        let rules = rules_from(
            "sla:\n  new_lead: {follow_ups: 2, within: 3d, first_within: 1d, release: true}\ncollisions:\n  - {id: protected-contact, type: protected_contact}\n",
        );
        // r-a gets C1 and follows it up once: short of the two the SLA asks within 3 days.
        let history = [
            c1_event("1", "assign", "02T09:00", "r-a"),
            c1_event("2", "call", "02T10:00", "r-a"),
        ];
        // r-b calls just after the last deadline, before the release is final.
        let intruder = c1_event("3", "call", "05T09:05", "r-b");
        let (snap, json, mut ingest) = snapshot_after(&rules, &history);
        assert!(json.contains(r#""follow_ups":[1,1]"#), "{json}");

        // The counts come back: r-a is taken as released, no alert.
        let mut restored = restored_whole(&rules, &snap);
        let out = feed(&mut restored, &mut ingest, &[intruder.as_bytes()]);
        assert!(
            !out.iter().any(|o| o.contains("collision.detected")),
            "{out:?}"
        );

        // A snapshot without them (an earlier build's): nothing is assumed about the SLA, so
        // the alert goes out as those builds sent it (and is withdrawn once the release is).
        let older: Snapshot =
            serde_json::from_str(&json.replace(r#""follow_ups":[1,1],"#, "")).expect("reads");
        assert_ne!(older, snap, "the counts were taken out");
        let mut restored = Engine::restore(rules, &Roster::default(), &older).expect("restores");
        let out = feed(&mut restored, &mut ingest, &[intruder.as_bytes()]);
        assert!(
            out.iter().any(|o| o.contains("collision.detected")),
            "{out:?}"
        );
    }

    #[test]
    fn the_unlock_time_survives_a_restore_so_a_deadline_missed_while_locked_stays_harmless() {
        let rules = rules_from(
            "sla:\n  new_lead: {follow_ups: 1, within: 1d, release: true}\ncollisions:\n  - {id: protected-contact, type: protected_contact}\n",
        );
        // r-a gets C1, locks it and never follows it up; the deadline (03 09:00) passes while
        // it is locked, so r-a keeps C1 after unlocking it.
        let history = [
            c1_event("1", "assign", "02T09:00", "r-a"),
            c1_event("2", "lock", "02T10:00", "r-a"),
            c1_event("3", "unlock", "03T10:00", "r-a"),
        ];
        let intruder = c1_event("4", "call", "03T11:00", "r-b");
        let (snap, json, mut ingest) = snapshot_after(&rules, &history);
        assert!(json.contains(r#""unlocked_at":"#), "{json}");

        // The unlock time comes back: r-a still protects C1, so r-b's call is an alert.
        let mut restored = restored_whole(&rules, &snap);
        let out = feed(&mut restored, &mut ingest, &[intruder.as_bytes()]);
        assert!(
            out.iter().any(|o| o.contains("collision.detected")),
            "{out:?}"
        );
    }

    /// An event about customer C1 at 2026-11-`at` (`"02T09:00"`), +08:00.
    fn c1_event(id: &str, kind: &str, at: &str, rep: &str) -> String {
        format!(
            r#"{{"event_id":"{id}","kind":"{kind}","occurred_at":"2026-11-{at}:00+08:00","rep":{{"id":"{rep}"}},"customer":{{"id":"C1"}},"source":"s"}}"#
        )
    }

    /// The snapshot (and its JSON) of an engine fed `history`, and the ingest to feed on with.
    fn snapshot_after(rules: &Arc<Rules>, history: &[String]) -> (Snapshot, String, Ingest) {
        let mut ingest = Ingest::new(rules.clone());
        let mut engine = Engine::new(rules.clone(), &Roster::default());
        let lines: Vec<&[u8]> = history.iter().map(|l| l.as_bytes()).collect();
        feed(&mut engine, &mut ingest, &lines);
        let snap = engine.snapshot();
        let json = serde_json::to_string(&snap).expect("serializes");
        (snap, json, ingest)
    }

    /// `snap` restored, checked to give the same snapshot again.
    fn restored_whole(rules: &Arc<Rules>, snap: &Snapshot) -> Engine {
        let restored = Engine::restore(rules.clone(), &Roster::default(), snap).expect("restores");
        assert_eq!(
            &restored.snapshot(),
            snap,
            "restore then snapshot is the identity"
        );
        restored
    }

    /// Rules from one YAML text.
    fn rules_from(yaml: &str) -> Arc<Rules> {
        let rules = Rules::from_texts([(std::path::Path::new("r.yaml"), yaml)]);
        Arc::new(rules.expect("valid rules"))
    }

    /// The one customer an engine holds.
    fn only_customer(engine: &Engine) -> &Customer {
        let mut live = engine.slots.iter().flatten();
        let cust = live.next().expect("one customer");
        assert!(live.next().is_none(), "only one customer");
        cust
    }

    #[test]
    fn the_last_word_on_ownership_survives_a_restore_and_is_the_last_release_in_older_snapshots() {
        let rules = rules_from(
            "ownership:\n  protection: 10d\n  first_touch: {enabled: true, kinds: [visit]}\ncollisions:\n  - {id: protected-contact, type: protected_contact}\n",
        );
        let by_phone = |id: &str, kind: &str, at: &str, rep: &str, customer: &str| {
            format!(
                r#"{{"event_id":"{id}","kind":"{kind}","occurred_at":"2026-11-{at}:00+08:00","rep":{{"id":"{rep}"}},"customer":{customer},"source":"s"}}"#
            )
        };
        // r-p develops a customer known by its phone on 11-01; C1, in the CRM, was r-x's until
        // the CRM released it on 11-03; a later call makes the release final.
        let history = [
            c1_event("1", "assign", "01T08:00", "r-x"),
            by_phone(
                "2",
                "visit",
                "01T09:00",
                "r-p",
                r#"{"phone":"13800138000"}"#,
            ),
            c1_event("3", "release", "03T09:00", "r-x"),
            by_phone("4", "call", "03T12:00", "r-y", r#"{"id":"C2"}"#),
        ];
        // r-q's call names C1 with that phone: r-p's claim doesn't carry over.
        let merge = by_phone(
            "5",
            "call",
            "04T09:00",
            "r-q",
            r#"{"id":"C1","phone":"13800138000"}"#,
        );
        let (snap, json, mut ingest) = snapshot_after(&rules, &history);
        assert!(json.contains(r#""ownership_decided":"#), "{json}");
        let mut restored = restored_whole(&rules, &snap);
        let out = feed(&mut restored, &mut ingest, &[merge.as_bytes()]);
        assert!(out.iter().any(|o| o.contains("decided_later")), "{out:?}");

        // A snapshot without it (an earlier build's): C1's last release stands in for it.
        let mut value: serde_json::Value = serde_json::from_str(&json).expect("reads");
        fn strip(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::Object(m) => {
                    m.remove("ownership_decided");
                    m.values_mut().for_each(strip);
                }
                serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
                _ => {}
            }
        }
        strip(&mut value);
        let older: Snapshot = serde_json::from_value(value).expect("reads");
        assert_ne!(older, snap, "the field was taken out");
        let mut restored = Engine::restore(rules, &Roster::default(), &older).expect("restores");
        let out = feed(&mut restored, &mut ingest, &[merge.as_bytes()]);
        assert!(out.iter().any(|o| o.contains("decided_later")), "{out:?}");
    }

    #[test]
    fn a_pools_next_try_survives_a_restore() {
        let rules = rules_from(
            "settings: {allowed_lateness: 10m}\nownership:\n  protection: 10d\n  limits: {reclaim_cooldown: 1h}\npools:\n  - {id: leads, teams: [t], assignment: {strategy: workload, after: 15m}}\ncollisions:\n  - {id: protected-contact, type: protected_contact}\n",
        );
        let roster = Roster::parse(
            "reps:\n  - {id: r-s, team: t}\n",
            std::path::Path::new("r.yaml"),
        )
        .expect("valid roster");
        let c9 = |id: &str, at: &str| {
            format!(
                r#"{{"event_id":"{id}","kind":"call","occurred_at":"2026-11-{at}:00+08:00","rep":{{"id":"r-x"}},"customer":{{"id":"C9"}},"source":"s"}}"#
            )
        };
        // The CRM gives C1 to r-s and takes it back at 10:30. At 10:45 the reclaim cooldown
        // leaves nobody eligible; the call at 11:00 makes that final. The pool tries again at
        // 11:30, when the cooldown ends.
        let history = [
            c1_event("1", "assign", "04T10:00", "r-s"),
            c1_event("2", "release", "04T10:30", "r-s"),
            c9("3", "04T11:00"),
        ];
        let mut ingest = Ingest::new(rules.clone());
        let mut engine = Engine::new(rules.clone(), &roster);
        let lines: Vec<&[u8]> = history.iter().map(|l| l.as_bytes()).collect();
        let out = feed(&mut engine, &mut ingest, &lines);
        assert!(
            !out.iter().any(|o| o.contains(r#""subject":"C1""#)),
            "{out:?}"
        );
        let snap = engine.snapshot();
        let json = serde_json::to_string(&snap).expect("serializes");
        assert!(json.contains(r#""assign_retry":"#), "{json}");
        let mut restored = Engine::restore(rules, &roster, &snap).expect("restores");
        assert_eq!(
            restored.snapshot(),
            snap,
            "restore then snapshot is the identity"
        );
        let later = c9("4", "04T11:45");
        let out = feed(&mut restored, &mut ingest, &[later.as_bytes()]);
        assert!(
            out.iter().any(|o| o.contains(r#""subject":"C1""#)
                && o.contains("leadguard.ownership.assigned")
                && o.contains(r#""time":"2026-11-04T11:30:00"#)),
            "{out:?}"
        );
    }

    /// One pool for south customers, worked by team `t`, assigning after 15 minutes; a rep
    /// may own one customer.
    fn capped_south_pool() -> Arc<Rules> {
        rules_from(
            "settings: {allowed_lateness: 10m}\nownership:\n  protection: 10d\n  limits: {max_owned: 1}\npools:\n  - {id: leads, regions: [south], teams: [t], assignment: {strategy: workload, after: 15m}}\ncollisions:\n  - {id: protected-contact, type: protected_contact}\n",
        )
    }

    /// A south customer's event, on 2026-11-04 at `at` (HH:MM).
    fn south_event(id: &str, kind: &str, at: &str, rep: &str, customer: &str) -> String {
        format!(
            r#"{{"event_id":"{id}","kind":"{kind}","occurred_at":"2026-11-04T{at}:00+08:00","rep":{{"id":"{rep}"}},"customer":{{"id":"{customer}","region":"south"}},"source":"s"}}"#
        )
    }

    #[test]
    fn a_customer_waiting_for_a_rep_with_room_keeps_its_place_across_a_restore() {
        let rules = capped_south_pool();
        let roster = Roster::parse(
            "reps:\n  - {id: r-s, team: t}\n",
            std::path::Path::new("r.yaml"),
        )
        .expect("valid roster");
        let event = south_event;
        // r-s, the pool's only rep, owns C1 and is at the cap of one. C2 and C3 are contacted
        // and wait; at 10:20 and 10:25 nobody is eligible. The call at 10:40 makes that final.
        let history = [
            event("1", "assign", "10:00", "r-s", "C1"),
            event("2", "call", "10:05", "r-x", "C2"),
            event("3", "call", "10:10", "r-x", "C3"),
            event("4", "call", "10:40", "r-x", "C9"),
        ];
        // The CRM takes C1 from r-s at 11:00: r-s has room, and C2 has waited longest.
        let after = [
            event("5", "release", "11:00", "r-s", "C1"),
            event("6", "call", "11:20", "r-x", "C9"),
        ];
        let mut ingest = Ingest::new(rules.clone());
        let mut engine = Engine::new(rules.clone(), &roster);
        let lines: Vec<&[u8]> = history.iter().map(|l| l.as_bytes()).collect();
        feed(&mut engine, &mut ingest, &lines);
        assert_eq!(engine.ledger.waiting.len(), 2, "C2 and C3 wait");
        let snap = engine.snapshot();
        let mut restored = Engine::restore(rules, &roster, &snap).expect("restores");
        assert_eq!(restored.ledger.waiting, engine.ledger.waiting);
        let lines: Vec<&[u8]> = after.iter().map(|l| l.as_bytes()).collect();
        let mut resumed = ingest.clone();
        let out = feed(&mut restored, &mut resumed, &lines);
        let assigned: Vec<&String> = out
            .iter()
            .filter(|o| o.contains("leadguard.ownership.assigned"))
            .collect();
        assert!(
            matches!(&assigned[..], [a] if a.contains(r#""subject":"C2""#)
                && a.contains(r#""time":"2026-11-04T11:00:00"#)),
            "{out:?}"
        );
        assert_eq!(
            out,
            feed(&mut engine, &mut ingest, &lines),
            "as without a restart"
        );
    }

    #[test]
    fn a_restart_with_a_new_rep_in_the_roster_can_try_the_line_again() {
        let rules = capped_south_pool();
        let roster = |reps: &str| {
            Roster::parse(&format!("reps:\n{reps}"), std::path::Path::new("r.yaml"))
                .expect("valid roster")
        };
        let before = roster("  - {id: r-s, team: t}\n");
        let event = south_event;
        // r-s, the pool's first rep, owns C1 and is at the cap of one; so is r-e, a rep of
        // the team the roster doesn't list (its team comes with the CRM's event), who owns C5.
        // C2 waits: at 10:20 nobody is eligible (final once the call at 10:40 arrives).
        let history = [
            event("1", "assign", "10:00", "r-s", "C1"),
            event("2", "call", "10:05", "r-x", "C2"),
            r#"{"event_id":"5","kind":"assign","occurred_at":"2026-11-04T10:06:00+08:00","rep":{"id":"r-e","team":"t"},"customer":{"id":"C5","region":"south"},"source":"s"}"#.to_string(),
            event("3", "call", "10:40", "r-x", "C9"),
        ];
        let mut ingest = Ingest::new(rules.clone());
        let mut engine = Engine::new(rules.clone(), &before);
        let lines: Vec<&[u8]> = history.iter().map(|l| l.as_bytes()).collect();
        feed(&mut engine, &mut ingest, &lines);
        assert_eq!(engine.ledger.waiting.len(), 1, "C2 waits");
        let snap = engine.snapshot();
        // The same roster: nothing new to try.
        let same = Engine::restore(rules.clone(), &before, &snap).expect("restores");
        assert!(!same.room_changed());
        assert_eq!(same.snapshot(), snap);
        // r-n joins the team. The new hire numbers r-e differently; its books stay its own.
        let after = roster("  - {id: r-n, team: t}\n  - {id: r-s, team: t}\n");
        let mut restored = Engine::restore(rules.clone(), &after, &snap).expect("restores");
        let owned = |e: &Engine, id: &str| e.ledger.owned(e.reps.lookup(id).expect("known rep"));
        let counts = ["r-s", "r-x", "r-e", "r-n"].map(|r| owned(&restored, r));
        assert_eq!(counts, [1, 0, 1, 0], "owned by r-s, r-x, r-e, r-n");
        // The driver tries the line again: C2 goes to r-n at the watermark (10:30).
        assert!(restored.room_changed());
        restored.try_line_again();
        assert!(!restored.room_changed());
        let source = rules.settings.output_source.clone();
        let out: Vec<String> = restored
            .drain_outputs()
            .map(|o| o.to_cloudevent(&source, rules.settings.time_zone))
            .collect();
        assert!(
            matches!(&out[..], [a] if a.contains("leadguard.ownership.assigned")
                && a.contains(r#""subject":"C2""#)
                && a.contains(r#""id":"r-n""#)
                && a.contains(r#""time":"2026-11-04T10:30:00"#)),
            "{out:?}"
        );
        assert_eq!(restored.ledger.waiting.len(), 0);
        // Its snapshot says the line was tried for this roster; the same roster in another
        // order is the same roster.
        let tried = restored.snapshot();
        let reordered = roster("  - {id: r-s, team: t}\n  - {id: r-n, team: t}\n");
        let again = Engine::restore(rules, &reordered, &tried).expect("restores");
        assert!(!again.room_changed());
    }

    #[test]
    fn rules_are_named_by_id_so_a_restart_with_reordered_rules_keeps_cooldowns() {
        let rules = Arc::new(Rules::embedded());
        let mut engine = Engine::new(rules.clone(), &Roster::default());
        let mut ingest = Ingest::new(rules.clone());
        let call = |id: &str, rep: &str| {
            format!(
                r#"{{"event_id":"{id}","kind":"call","occurred_at":"2026-11-02T09:0{id}:00+08:00","rep":{{"id":"{rep}"}},"customer":{{"id":"C1"}}}}"#
            )
        };
        let (a, b) = (call("1", "r1"), call("2", "r2"));
        feed(&mut engine, &mut ingest, &[a.as_bytes(), b.as_bytes()]);
        let snap = engine.snapshot();
        let cooled: Vec<Arc<str>> = snap.customers[0]
            .head
            .cooldowns
            .iter()
            .map(|c| c.0.clone())
            .collect();
        assert!(!cooled.is_empty(), "two reps on one customer make an alert");

        let mut reordered = Rules::embedded();
        reordered.collisions.reverse();
        let reordered = Arc::new(reordered);
        let restored =
            Engine::restore(reordered.clone(), &Roster::default(), &snap).expect("restores");
        let cust = only_customer(&restored);
        let names: Vec<&str> = cust
            .head
            .cooldowns
            .iter()
            .map(|(ri, _, _)| reordered.collisions[*ri as usize].id.as_str())
            .collect();
        assert_eq!(names, cooled.iter().map(|c| &**c).collect::<Vec<_>>());
    }

    #[test]
    fn an_entry_naming_attributes_the_snapshot_lacks_is_refused() {
        let rules = Arc::new(Rules::embedded());
        let mut engine = Engine::new(rules.clone(), &Roster::default());
        let mut ingest = Ingest::new(rules.clone());
        let line = br#"{"event_id":"1","kind":"call","occurred_at":"2026-11-02T09:00:00+08:00","rep":{"id":"r1"},"customer":{"id":"C1","region":"east"}}"#;
        feed(&mut engine, &mut ingest, &[line]);
        let mut snap = engine.snapshot();
        assert_eq!(snap.customers[0].log[0].given, 1, "the event's region");
        snap.given.truncate(1);
        let err = Engine::restore(rules, &Roster::default(), &snap)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("attribute set 1"), "{err}");
    }

    #[test]
    fn an_owner_written_without_its_origin_direction_restores_with_none() {
        let rules = Arc::new(Rules::embedded());
        let mut engine = Engine::new(rules.clone(), &Roster::default());
        let mut ingest = Ingest::new(rules.clone());
        // The customer comes to the office: the first development of C1 (a first-touch kind
        // in the shipped rules).
        let line = br#"{"event_id":"1","kind":"visit","direction":"inbound","occurred_at":"2026-11-02T09:00:00+08:00","rep":{"id":"r1"},"customer":{"id":"C1"}}"#;
        feed(&mut engine, &mut ingest, &[line]);
        let json = serde_json::to_string(&engine.snapshot()).expect("serializes");
        assert!(json.contains(r#""origin_direction":"inbound""#), "{json}");
        // As a snapshot written before the direction was kept.
        let older = json.replace(r#","origin_direction":"inbound""#, "");
        let snap: Snapshot = serde_json::from_str(&older).expect("deserializes");
        let restored = Engine::restore(rules, &Roster::default(), &snap).expect("restores");
        let cust = only_customer(&restored);
        let owner = cust.head.owner.as_ref().expect("owned by first touch");
        assert_eq!(owner.origin_direction, None);
    }

    #[test]
    fn a_contacts_active_survives_a_restore_and_older_snapshots_take_the_rosters() {
        let rules = rules_from(
            "settings: {allowed_lateness: 10m}\nownership: {protection: 10d, first_touch: {enabled: true, kinds: [visit]}}\ncollisions:\n  - {id: protected-contact, type: protected_contact}\n",
        );
        let roster = |a: &str| {
            Roster::parse(
                &format!("reps:\n  - {{id: r-a, active: {a}}}\n  - {{id: r-b}}\n"),
                std::path::Path::new("roster.yaml"),
            )
            .expect("valid roster")
        };
        // r-a visits C1 while inactive: r-b's visit claims it.
        let history = [
            c1_event("1", "visit", "02T09:00", "r-a"),
            c1_event("2", "visit", "02T09:05", "r-b"),
        ];
        let mut ingest = Ingest::new(rules.clone());
        let mut engine = Engine::new(rules.clone(), &roster("false"));
        let lines: Vec<&[u8]> = history.iter().map(|l| l.as_bytes()).collect();
        assert!(feed(&mut engine, &mut ingest, &lines).is_empty());
        let snap = engine.snapshot();
        let json = serde_json::to_string(&snap).expect("serializes");
        assert!(json.contains(r#""active":false"#), "{json}");
        // Restored under a roster where r-a is active, a late visit by r-b folds C1 again:
        // r-a's visit still claims nothing.
        let late = c1_event("3", "visit", "02T09:01", "r-b");
        let mut restored =
            Engine::restore(rules.clone(), &roster("true"), &snap).expect("restores");
        let mut again = restored.snapshot();
        let files = again.files.take().expect("files recorded");
        assert_eq!(
            files.roster.as_ref(),
            roster("true").file.as_deref(),
            "the roster it runs under now"
        );
        again.files = snap.files.clone();
        assert_eq!(
            again, snap,
            "restore then snapshot is the identity, but for the roster"
        );
        let out = feed(&mut restored, &mut ingest.clone(), &[late.as_bytes()]);
        assert!(out.is_empty(), "{out:?}");
        // Nor does it when the lifecycle decides it: r-b claims C1 from 09:01.
        let later = r#"{"event_id":"4","kind":"call","occurred_at":"2026-11-02T09:30:00+08:00","rep":{"id":"r-a"},"customer":{"id":"C9"},"source":"s"}"#;
        let out = feed(&mut restored, &mut ingest.clone(), &[later.as_bytes()]);
        let claims: Vec<&String> = out
            .iter()
            .filter(|o| o.contains("ownership.claimed"))
            .collect();
        assert_eq!(claims.len(), 1, "{out:?}");
        assert!(claims[0].contains(r#""rep":{"id":"r-b""#), "{claims:?}");

        // A snapshot without it (an earlier build's) takes the roster it is restored under.
        let older: Snapshot =
            serde_json::from_str(&json.replace(r#""active":false,"#, "")).expect("reads");
        assert_ne!(older, snap, "the flags were taken out");
        let mut restored = Engine::restore(rules, &roster("true"), &older).expect("restores");
        let out = feed(&mut restored, &mut ingest, &[late.as_bytes()]);
        assert!(
            out.iter().any(|o| o.contains("collision.detected")),
            "{out:?}"
        );
    }

    #[test]
    fn a_snapshot_of_another_format_is_refused() {
        let rules = Arc::new(Rules::embedded());
        let mut snap = Engine::new(rules.clone(), &Roster::default()).snapshot();
        snap.format = SNAPSHOT_FORMAT + 1;
        let err = Engine::restore(rules, &Roster::default(), &snap)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("format"), "{err}");
    }
}
