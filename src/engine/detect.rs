//! The fold step: what one entry does to a customer's state, and which outputs it causes.
//!
//! [`step`] sees the customer's log *sorted by event time* up to and including entry `i`, and
//! the state folded from everything before it. It is the single definition of the rules'
//! behaviour; the fast path and the re-fold after a late event both call it.

use super::attrs::{Attrs, GivenSets};
use super::customer::{Body, Entry, Fold, Key, Owner, Via};
use super::reps::{Interner, RepIdx, Reps, Sym};
use crate::config::{CollisionKind, CollisionRule, Rules};
use crate::event::{ContactKind, Direction, OwnershipAction};
use crate::output::{
    say, CollisionData, CustomerData, EvidenceData, OutTime, Output, OutputType, OwnerData,
    RepData, WindowData,
};
use crate::time::{format_span, Span, Timestamp};
use std::sync::Arc;

/// A collision rule's customer scope as symbols: checked on every contact, it compares
/// integers instead of the rule's strings.
#[derive(Debug, Clone)]
pub struct ScopeSyms {
    regions: Box<[Sym]>,
    industries: Box<[Sym]>,
    tiers: Box<[Sym]>,
}

impl ScopeSyms {
    /// One per collision rule, in the rules' order.
    pub fn compile(rules: &Rules, words: &mut Interner) -> Vec<ScopeSyms> {
        let mut syms = |list: &[String]| list.iter().map(|w| words.intern(w)).collect();
        rules
            .collisions
            .iter()
            .map(|r| ScopeSyms {
                regions: syms(&r.scope.regions),
                industries: syms(&r.scope.industries),
                tiers: syms(&r.scope.tiers),
            })
            .collect()
    }

    /// Whether a customer with these attributes is in scope: an empty list allows anything, a
    /// non-empty one only a customer with one of its values.
    fn allows_customer(&self, region: Sym, industry: Sym, tier: Sym) -> bool {
        let allows = |list: &[Sym], v: Sym| list.is_empty() || (!v.is_none() && list.contains(&v));
        allows(&self.regions, region)
            && allows(&self.industries, industry)
            && allows(&self.tiers, tier)
    }
}

/// Everything `step` reads besides the customer.
pub struct Ctx<'a> {
    pub rules: &'a Rules,
    pub reps: &'a Reps,
    pub words: &'a Interner,
    pub given: &'a GivenSets,
    /// The attributes of a customer nobody has described, and how long an unowned customer is
    /// remembered without an event (see the `attrs` module).
    pub blank: Attrs,
    pub forget_after: Span,
    pub exempt_roles: &'a [Sym],
    /// The collision rules' customer scopes ([`ScopeSyms::compile`]).
    pub scopes: &'a [ScopeSyms],
    pub subject: &'a Arc<str>,
    pub provisional: bool,
    /// The customer's attributes as of the entry at hand ([`step`] sets them from the fold).
    pub attrs: Attrs,
    /// False when folding old entries into the base state: state changes only, no outputs.
    pub render: bool,
}

/// A rep as explanations name them: `id (team)`, or `id` when the team is unknown.
#[derive(Debug, Clone)]
pub(super) struct RepLabel {
    id: Arc<str>,
    team: Option<Arc<str>>,
}

impl crate::output::Piece for RepLabel {
    fn put(&self, out: &mut String) {
        out.push_str(&self.id);
        if let Some(team) = &self.team {
            say!(out, " (", team, ")");
        }
    }
}

impl Ctx<'_> {
    pub(super) fn word(&self, s: Sym) -> Option<Arc<str>> {
        self.words.get(s).cloned()
    }
    pub(super) fn word_str(&self, s: Sym) -> Option<&str> {
        self.words.get(s).map(|w| &**w)
    }
    pub(super) fn time(&self, t: Timestamp) -> String {
        t.to_rfc3339_in(self.rules.settings.time_zone)
    }
    /// A time for output data, formatted when the data is rendered.
    pub(super) fn at(&self, t: Timestamp) -> OutTime {
        OutTime {
            t,
            tz: self.rules.settings.time_zone,
        }
    }
    pub(super) fn rep_data(&self, rep: RepIdx, team: Sym, role: Sym) -> RepData {
        let info = self.reps.get(rep);
        RepData {
            id: info.id.clone(),
            team: self.word(team),
            role: self.word(role),
        }
    }
    pub(super) fn customer_data(&self) -> CustomerData {
        CustomerData {
            id: self.subject.clone(),
            provisional: self.provisional,
            region: self.word(self.attrs.region),
            industry: self.word(self.attrs.industry),
            tier: self.word(self.attrs.tier),
        }
    }
    /// The event that made `owner` the owner, as evidence.
    pub(super) fn owner_evidence(&self, owner: &Owner) -> EvidenceData {
        EvidenceData {
            event_id: owner.origin_event.clone(),
            source: self
                .word(owner.origin_source)
                .unwrap_or_else(|| Arc::from("")),
            kind: owner.origin_kind,
            direction: owner.origin_direction.map(Direction::as_str),
            rep: self.reps.get(owner.rep).id.clone(),
            occurred_at: self.at(owner.since),
        }
    }
    pub(super) fn evidence(&self, e: &Entry) -> EvidenceData {
        let occurred = match &e.body {
            Body::Ownership { occurred, .. } => *occurred,
            _ => e.t,
        };
        let (kind, direction, rep) = match &e.body {
            Body::Contact {
                rep,
                kind,
                direction,
                ..
            } => (
                kind.as_str(),
                Some(direction.as_str()),
                self.reps.get(*rep).id.clone(),
            ),
            Body::Ownership { action, rep, .. } => (
                action.as_str(),
                None,
                rep.map(|(r, _)| self.reps.get(r).id.clone())
                    .unwrap_or_else(|| Arc::from("")),
            ),
            Body::OwnerState(o) => (
                "owner",
                None,
                o.as_ref()
                    .map(|o| self.reps.get(o.rep).id.clone())
                    .unwrap_or_else(|| Arc::from("")),
            ),
        };
        EvidenceData {
            event_id: e.event_id.clone(),
            source: self.word(e.source).unwrap_or_else(|| Arc::from("")),
            kind,
            direction,
            rep,
            occurred_at: self.at(occurred),
        }
    }
    pub(super) fn owner_data(&self, o: &Owner) -> OwnerData {
        let role = self.reps.get(o.rep).role;
        OwnerData {
            rep: self.rep_data(o.rep, o.team, role),
            since: self.time(o.since),
            protected_until: if o.won || o.locked {
                if o.won { "won" } else { "locked" }.to_string()
            } else {
                self.time(o.protected_until)
            },
            via: o.via.as_str(),
            origin_event: o.origin_event.clone(),
        }
    }
    pub(super) fn rep_name(&self, rep: RepIdx, team: Sym) -> String {
        let mut name = String::new();
        say!(&mut name, self.rep_label(rep, team));
        name
    }
    /// [`Ctx::rep_name`] as values, for text written later.
    pub(super) fn rep_label(&self, rep: RepIdx, team: Sym) -> RepLabel {
        RepLabel {
            id: self.reps.get(rep).id.clone(),
            team: self.word(team),
        }
    }
    pub(super) fn role_exempt(&self, role: Sym) -> bool {
        !role.is_none() && self.exempt_roles.contains(&role)
    }
    pub(super) fn protection(&self) -> crate::config::Protection {
        self.rules
            .ownership
            .protection_for(self.word_str(self.attrs.tier))
    }
    fn in_customer_scope(&self, rule_index: usize) -> bool {
        let a = &self.attrs;
        self.scopes[rule_index].allows_customer(a.region, a.industry, a.tier)
    }
    /// The pool the customer's attributes place it in.
    fn pool(&self) -> Option<&crate::config::Pool> {
        self.attrs.pool.map(|p| &self.rules.pools[p as usize])
    }
    /// Whether a rep of `team` may take the customer from its pool (the lifecycle refuses a
    /// claim or first touch from outside the pool's teams).
    fn may_claim(&self, team: Sym) -> bool {
        self.pool()
            .is_none_or(|p| p.admits_team(self.word_str(team)))
    }
}

/// Whether two owners are equal in every field. Written out field by field (no `..`), so a
/// field added to `Owner` must be added here too.
fn same_owner(a: &Owner, b: &Owner) -> bool {
    let Owner {
        rep,
        team,
        since,
        protected_until,
        via,
        origin_event,
        origin_source,
        origin_kind,
        origin_direction,
        account_team,
        locked,
        won,
        cap_at,
        deal_by,
        unlocked_at,
    } = a;
    *rep == b.rep
        && *team == b.team
        && *since == b.since
        && *protected_until == b.protected_until
        && *via == b.via
        && *origin_event == b.origin_event
        && *origin_source == b.origin_source
        && *origin_kind == b.origin_kind
        && *origin_direction == b.origin_direction
        && *account_team == b.account_team
        && *locked == b.locked
        && *won == b.won
        && *cap_at == b.cap_at
        && *deal_by == b.deal_by
        && *unlocked_at == b.unlocked_at
}

/// Folds entry `log[i]` into `fold`, appending the outputs it causes (with the entry's key).
pub fn step(
    ctx: &Ctx<'_>,
    fold: &mut Fold,
    log: &[Entry],
    i: usize,
    scratch: &mut Vec<usize>,
    out: &mut Vec<(Key, Output)>,
) {
    let e = &log[i];
    // The rules see the customer as described at the event's time. Whether the customer is
    // owned is asked as the lifecycle will have it by then (a lapsed protection is released
    // before the event), so that the two forget at the same events.
    if !matches!(e.body, Body::OwnerState(_)) {
        // Most events follow the previous one closely: only a long gap asks more.
        let quiet = fold.last.is_some_and(|l| e.t - l > ctx.forget_after);
        if quiet {
            let owned = effective_owner(ctx, fold, e.t).is_some();
            let last = last_change(ctx, fold, e.t);
            if super::attrs::forgotten(last, e.t, owned, ctx.forget_after) {
                fold.attrs = ctx.blank;
            }
        }
        fold.attrs.take(e.given, ctx.given, ctx.rules, ctx.words);
    }
    fold.last = Some(e.t);
    let described;
    let ctx = if fold.attrs == ctx.attrs {
        ctx
    } else {
        described = Ctx {
            attrs: fold.attrs,
            ..*ctx
        };
        &described
    };
    match &e.body {
        Body::Ownership {
            action,
            rep,
            account_team,
            occurred,
        } => speculate_ownership(ctx, fold, e, *action, *rep, account_team, *occurred),
        Body::OwnerState(owner) => {
            // Usually the lifecycle confirms what detection already assumed: keeping the equal
            // owner spares touching (and missing in cache) its shared strings.
            let same = match (&fold.owner, owner.as_deref()) {
                (Some(a), Some(b)) => same_owner(a, b),
                (None, None) => true,
                _ => false,
            };
            if !same {
                fold.owner = owner.as_deref().cloned();
            }
        }
        Body::Contact {
            rep,
            team,
            role,
            active,
            kind,
            direction,
        } => {
            let c = Contact {
                rep: *rep,
                team: *team,
                role: *role,
                active: *active,
                kind: *kind,
                direction: *direction,
            };
            prune_cooldowns(ctx.rules, fold, e.t);
            for (ri, rule) in ctx.rules.collisions.iter().enumerate() {
                if !ctx.in_customer_scope(ri) {
                    continue;
                }
                match rule.kind {
                    CollisionKind::ProtectedContact => {
                        protected_contact(ctx, fold, log, i, &c, ri, rule, out)
                    }
                    CollisionKind::MultiRep { min_reps, window } => multi_rep(
                        ctx, fold, log, i, &c, ri, rule, min_reps, window, scratch, out,
                    ),
                    CollisionKind::Complaint { window } => {
                        complaint(ctx, fold, log, i, &c, ri, rule, window, scratch, out)
                    }
                    CollisionKind::OutOfTerritory => {
                        out_of_territory(ctx, fold, log, i, &c, ri, rule, out)
                    }
                }
            }
            speculate_contact(ctx, fold, e, &c);
        }
    }
}

pub(super) struct Contact {
    rep: RepIdx,
    team: Sym,
    role: Sym,
    /// See [`Body::Contact`]: the roster's word when the contact was placed.
    active: bool,
    kind: ContactKind,
    direction: Direction,
}

/// What the lifecycle will most likely decide about a CRM ownership event, applied at once so
/// that detection doesn't wait for the allowed lateness. The lifecycle's own `OwnerState`
/// entry follows the event and replaces this guess: the same owner unless a limit (ownership
/// or lock cap, claim limit, territory) refused the change, in which case a re-fold corrects
/// what detection said.
#[allow(clippy::too_many_arguments)]
fn speculate_ownership(
    ctx: &Ctx<'_>,
    fold: &mut Fold,
    e: &Entry,
    action: OwnershipAction,
    rep: Option<(RepIdx, Sym)>,
    account_team: &[RepIdx],
    occurred: Timestamp,
) {
    let since = occurred.min(e.t);
    let p = ctx.protection();
    let current = effective_owner(ctx, fold, e.t).map(|o| o.rep);
    match action {
        OwnershipAction::Assign | OwnershipAction::Transfer | OwnershipAction::Claim => {
            let Some((rep, team)) = rep else { return };
            if current == Some(rep) {
                if let Some(o) = fold.owner.as_mut() {
                    if !account_team.is_empty() {
                        o.account_team = account_team.into();
                    }
                }
                return;
            }
            if action == OwnershipAction::Claim && (current.is_some() || !ctx.may_claim(team)) {
                return;
            }
            let via = if action == OwnershipAction::Claim {
                Via::Claim
            } else {
                Via::Crm
            };
            fold.owner = Some(Owner::acquired(
                &p,
                rep,
                team,
                since,
                via,
                e,
                account_team.into(),
                false,
            ));
        }
        OwnershipAction::Release => {
            if current.is_some() {
                fold.owner = None;
            }
        }
        OwnershipAction::Lock | OwnershipAction::Unlock => {
            if let (Some(o), true) = (fold.owner.as_mut(), current.is_some()) {
                if rep.is_none_or(|(r, _)| r == o.rep) {
                    let lock = action == OwnershipAction::Lock;
                    if o.locked != lock {
                        o.set_locked(lock, &p, since);
                    }
                }
            }
        }
        OwnershipAction::Won => match (fold.owner.as_mut(), current) {
            (Some(o), Some(_)) => o.set_won(),
            _ => {
                if let Some((rep, team)) = rep {
                    fold.owner = Some(Owner::acquired(
                        &p,
                        rep,
                        team,
                        since,
                        Via::Crm,
                        e,
                        account_team.into(),
                        true,
                    ));
                }
            }
        },
    }
}

/// The lifecycle's likely decision about a contact, applied at once (see
/// [`speculate_ownership`]): the owner's follow-up extends protection; the first development
/// of an unowned customer claims it.
fn speculate_contact(ctx: &Ctx<'_>, fold: &mut Fold, e: &Entry, c: &Contact) {
    if c.kind == ContactKind::Complaint || ctx.role_exempt(c.role) {
        return;
    }
    let p = ctx.protection();
    let current = effective_owner(ctx, fold, e.t).map(|o| o.rep);
    match (current, fold.owner.as_mut()) {
        (Some(owner), Some(o)) if owner == c.rep => {
            if ctx.rules.ownership.follow_up_kinds.contains(c.kind) {
                if let Some(sla) = ctx.rules.sla.new_lead {
                    let first = o.since + sla.first_within.unwrap_or(sla.within);
                    fold.follow_ups.count(o, e.t, first, o.since + sla.within);
                }
                if let Some(end) = o.extended_end(&p, e.t) {
                    o.protected_until = end;
                }
            }
        }
        (Some(_), _) => {}
        (None, _) => {
            let Some(kinds) = ctx.rules.ownership.first_touch else {
                return;
            };
            if !kinds.contains(c.kind) || !c.active || !ctx.may_claim(c.team) {
                return;
            }
            fold.owner = Some(Owner::acquired(
                &p,
                c.rep,
                c.team,
                e.t,
                Via::FirstTouch,
                e,
                Box::new([]),
                false,
            ));
        }
    }
}

/// The owner as the lifecycle will see it at `t`: an owner whose protection (or time to close
/// a deal) lapsed before `t` is released at that moment (when the rules release on expiry), so
/// alerts name no owner rather than one about to be gone, and don't change when the release is
/// written.
fn effective_owner<'f>(ctx: &Ctx<'_>, fold: &'f Fold, t: Timestamp) -> Option<&'f Owner> {
    fold.owner
        .as_ref()
        .filter(|_| released_at(ctx.rules, fold, t).is_none())
}

/// When the lifecycle will have released the owner, if it will have by `t` with nothing else
/// happening: its time ran out ([`Owner::released_by`]), or it missed the new-lead SLA when
/// the SLA releases (the lifecycle decides that at the SLA's deadlines, from the follow-ups
/// before them, as counted here).
pub(super) fn released_at(rules: &Rules, fold: &Fold, t: Timestamp) -> Option<Timestamp> {
    let o = fold.owner.as_ref()?;
    let expiry = o
        .released_by(t, rules.ownership.release_on_expiry)
        .then(|| o.reclaim_at());
    let sla = rules.sla.new_lead.filter(|s| s.release).and_then(|sla| {
        let (first, within) = fold.follow_ups.of(o);
        let first_missed = sla
            .first_within
            .map(|span| o.since + span)
            .filter(|_| first < 1);
        let all_missed = Some(o.since + sla.within).filter(|_| within < sla.follow_ups);
        first_missed
            .into_iter()
            .chain(all_missed)
            .filter(|&at| at <= t && o.sla_may_release(at))
            .min()
    });
    expiry.into_iter().chain(sla).min()
}

/// The owner whose protection covers a contact at `t`, as the lifecycle will have it: an owner
/// about to be released at a no-deal deadline protects no more than one whose protection
/// ended, so neither a protected-contact alert nor a waived multi-rep one has to be corrected
/// when the release is written.
fn protecting_owner<'f>(ctx: &Ctx<'_>, fold: &'f Fold, t: Timestamp) -> Option<&'f Owner> {
    effective_owner(ctx, fold, t).filter(|o| o.protects_at(t))
}

/// When the customer last changed, as the lifecycle will have it by `t`: its newest entry, or
/// the release of an owner whose time lapsed (written into the log only once it is final).
fn last_change(ctx: &Ctx<'_>, fold: &Fold, t: Timestamp) -> Option<Timestamp> {
    fold.last.max(released_at(ctx.rules, fold, t))
}

/// Forgets cooldowns that have run out by `t`, so the list stays short.
fn prune_cooldowns(rules: &Rules, fold: &mut Fold, t: Timestamp) {
    if fold.cooldowns.is_empty() {
        return;
    }
    fold.cooldowns.retain(|(ri, _, last)| {
        rules
            .collisions
            .get(*ri as usize)
            .is_some_and(|r| t < *last + r.cooldown)
    });
}

/// Whether an alert for (rule, rep set) is still cooling down at `t`; if not, records it.
/// `reps` are the rep ids, sorted.
fn cooldown_allows(
    fold: &mut Fold,
    rule_index: usize,
    rule: &CollisionRule,
    reps: &[&str],
    t: Timestamp,
) -> bool {
    // The ids, each followed by a 0 byte.
    let set = crate::digest::xxh3_64_parts(reps.iter().flat_map(|r| [r.as_bytes(), &[0u8][..]]));
    let ri = rule_index as u16;
    if let Some(slot) = fold
        .cooldowns
        .iter_mut()
        .find(|(r, s, _)| *r == ri && *s == set)
    {
        if t < slot.2 + rule.cooldown {
            return false;
        }
        slot.2 = t;
        return true;
    }
    fold.cooldowns.push((ri, set, t));
    true
}

/// The sorted ids of the reps at these log positions.
fn sorted_ids<'r>(ctx: &Ctx<'r>, log: &[Entry], seen: &[usize]) -> Vec<&'r str> {
    let mut ids: Vec<&str> = seen
        .iter()
        .filter_map(|&j| contact_rep(&log[j]))
        .map(|(r, _, _)| &*ctx.reps.get(r).id)
        .collect();
    ids.sort_unstable();
    ids
}

#[allow(clippy::too_many_arguments)]
fn protected_contact(
    ctx: &Ctx<'_>,
    fold: &mut Fold,
    log: &[Entry],
    i: usize,
    c: &Contact,
    ri: usize,
    rule: &CollisionRule,
    out: &mut Vec<(Key, Output)>,
) {
    let e = &log[i];
    let Some(owner) = protecting_owner(ctx, fold, e.t) else {
        return;
    };
    let ex = &ctx.rules.exemptions;
    if !rule.kinds.contains(c.kind)
        || c.rep == owner.rep
        || ctx.role_exempt(c.role)
        || !rule.scope.allows_team(ctx.word_str(c.team))
        || (ex.account_team && owner.account_team.contains(&c.rep))
        || (ex.owner_team_inbound
            && c.direction == Direction::Inbound
            && !c.team.is_none()
            && c.team == owner.team)
    {
        return;
    }
    let mut ids = [&*ctx.reps.get(owner.rep).id, &*ctx.reps.get(c.rep).id];
    ids.sort_unstable();
    if !cooldown_allows(fold, ri, rule, &ids, e.t) || !ctx.render {
        return;
    }
    let owner = fold.owner.as_ref().expect("checked above");
    let owner_role = ctx.reps.get(owner.rep).role;
    let mut reps = vec![
        ctx.rep_data(owner.rep, owner.team, owner_role),
        ctx.rep_data(c.rep, c.team, c.role),
    ];
    reps.sort();
    let evidence = vec![ctx.evidence(e), ctx.owner_evidence(owner)];
    let mut reason = String::new();
    say!(
        &mut reason,
        ctx.rep_label(c.rep, c.team),
        " ",
        verb(c.kind, c.direction),
        " customer ",
        ctx.subject,
        ", owned by ",
        ctx.rep_label(owner.rep, owner.team),
        " since ",
        ctx.at(owner.since),
        " (",
        match owner.via {
            Via::Crm => "assigned in the CRM",
            Via::Claim => "claimed from the pool",
            Via::FirstTouch => "claimed by first development",
            Via::Assigned => "assigned by its pool",
            Via::Reassigned => "reassigned after a collision",
        },
        ") and protected until "
    );
    if owner.won {
        say!(&mut reason, "further notice (won)");
    } else {
        say!(&mut reason, ctx.at(owner.protected_until));
    }
    let data = CollisionData {
        rule: Arc::from(rule.id.as_str()),
        rule_type: rule.kind.type_name(),
        severity: rule.severity.as_str(),
        customer: ctx.customer_data(),
        owner: Some(ctx.owner_data(owner)),
        reps,
        intruder: Some(ctx.rep_data(c.rep, c.team, c.role)),
        evidence,
        window: WindowData {
            from: ctx.time(owner.since),
            to: ctx.time(e.t),
        },
        reason,
    };
    emit_collision(ctx, e, rule, &data, out);
}

/// Fills `seen` with the log position of the latest in-window counted contact of each
/// distinct rep, newest first.
#[allow(clippy::too_many_arguments)]
fn reps_in_window(
    ctx: &Ctx<'_>,
    fold: &Fold,
    log: &[Entry],
    i: usize,
    rule: &CollisionRule,
    from: Timestamp,
    skip_account_team: bool,
    seen: &mut Vec<usize>,
) {
    seen.clear();
    // The account team is the one of the owner as the lifecycle will have it at the event.
    let owner = effective_owner(ctx, fold, log[i].t);
    for j in (0..=i).rev() {
        let e = &log[j];
        if e.t < from {
            break;
        }
        let Body::Contact {
            rep, role, kind, ..
        } = &e.body
        else {
            continue;
        };
        if !rule.kinds.contains(*kind) || ctx.role_exempt(*role) {
            continue;
        }
        if skip_account_team
            && ctx.rules.exemptions.account_team
            && owner.is_some_and(|o| o.account_team.contains(rep))
        {
            continue;
        }
        if !seen
            .iter()
            .any(|&s| matches!(&log[s].body, Body::Contact { rep: r, .. } if r == rep))
        {
            seen.push(j);
        }
    }
}

pub(super) fn contact_rep(e: &Entry) -> Option<(RepIdx, Sym, Sym)> {
    match &e.body {
        Body::Contact {
            rep, team, role, ..
        } => Some((*rep, *team, *role)),
        Body::Ownership { .. } | Body::OwnerState(_) => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn multi_rep(
    ctx: &Ctx<'_>,
    fold: &mut Fold,
    log: &[Entry],
    i: usize,
    c: &Contact,
    ri: usize,
    rule: &CollisionRule,
    min_reps: usize,
    window: Span,
    scratch: &mut Vec<usize>,
    out: &mut Vec<(Key, Output)>,
) {
    let e = &log[i];
    if !rule.kinds.contains(c.kind)
        || ctx.role_exempt(c.role)
        || !rule.scope.allows_team(ctx.word_str(c.team))
        || protecting_owner(ctx, fold, e.t).is_some()
    {
        return;
    }
    let from = e.t - window;
    reps_in_window(ctx, fold, log, i, rule, from, true, scratch);
    if scratch.len() < min_reps {
        return;
    }
    let ids = sorted_ids(ctx, log, scratch);
    if !cooldown_allows(fold, ri, rule, &ids, e.t) || !ctx.render {
        return;
    }
    let seen: Vec<&Entry> = scratch.iter().map(|&j| &log[j]).collect();
    let mut reps: Vec<RepData> = seen
        .iter()
        .filter_map(|s| contact_rep(s))
        .map(|(r, t, ro)| ctx.rep_data(r, t, ro))
        .collect();
    reps.sort();
    let mut evidence: Vec<EvidenceData> = vec![ctx.evidence(e)];
    evidence.extend(
        seen.iter()
            .rev()
            .filter(|s| s.key() != e.key())
            .map(|s| ctx.evidence(s)),
    );
    let mut reason = String::new();
    say!(
        &mut reason,
        seen.len(),
        " reps contacted customer ",
        ctx.subject
    );
    match effective_owner(ctx, fold, e.t) {
        None => say!(&mut reason, " (no owner)"),
        Some(o) => say!(
            &mut reason,
            " (owner ",
            ctx.rep_label(o.rep, o.team),
            "'s protection ended ",
            ctx.at(o.protected_until),
            ")"
        ),
    }
    say!(&mut reason, " within ", window, ": ");
    let named = seen.iter().rev().filter_map(|s| contact_rep(s));
    for (i, (r, t, _)) in named.enumerate() {
        if i > 0 {
            reason.push_str(", ");
        }
        say!(&mut reason, ctx.rep_label(r, t));
    }
    let data = CollisionData {
        rule: Arc::from(rule.id.as_str()),
        rule_type: rule.kind.type_name(),
        severity: rule.severity.as_str(),
        customer: ctx.customer_data(),
        owner: effective_owner(ctx, fold, e.t).map(|o| ctx.owner_data(o)),
        reps,
        intruder: Some(ctx.rep_data(c.rep, c.team, c.role)),
        evidence,
        window: WindowData {
            from: ctx.time(from),
            to: ctx.time(e.t),
        },
        reason,
    };
    emit_collision(ctx, e, rule, &data, out);
}

#[allow(clippy::too_many_arguments)]
fn complaint(
    ctx: &Ctx<'_>,
    fold: &mut Fold,
    log: &[Entry],
    i: usize,
    c: &Contact,
    ri: usize,
    rule: &CollisionRule,
    window: Span,
    scratch: &mut Vec<usize>,
    out: &mut Vec<(Key, Output)>,
) {
    let e = &log[i];
    if c.kind != ContactKind::Complaint {
        return;
    }
    let from = e.t - window;
    reps_in_window(ctx, fold, log, i, rule, from, false, scratch);
    let ids = sorted_ids(ctx, log, scratch);
    if !cooldown_allows(fold, ri, rule, &ids, e.t) || !ctx.render {
        return;
    }
    let seen: Vec<&Entry> = scratch.iter().map(|&j| &log[j]).collect();
    let mut reps: Vec<RepData> = seen
        .iter()
        .filter_map(|s| contact_rep(s))
        .map(|(r, t, ro)| ctx.rep_data(r, t, ro))
        .collect();
    reps.sort();
    let mut evidence: Vec<EvidenceData> = vec![ctx.evidence(e)];
    evidence.extend(seen.iter().rev().map(|s| ctx.evidence(s)));
    let names: Vec<String> = seen
        .iter()
        .rev()
        .filter_map(|s| contact_rep(s))
        .map(|(r, t, _)| ctx.rep_name(r, t))
        .collect();
    let reason = if names.is_empty() {
        format!(
            "customer {} complained about being contacted by several reps; no rep contact is on record within {}",
            ctx.subject,
            format_span(window)
        )
    } else {
        format!(
            "customer {} complained about being contacted by several reps; within {} it was contacted by {}",
            ctx.subject,
            format_span(window),
            names.join(", ")
        )
    };
    let data = CollisionData {
        rule: Arc::from(rule.id.as_str()),
        rule_type: rule.kind.type_name(),
        severity: rule.severity.as_str(),
        customer: ctx.customer_data(),
        owner: effective_owner(ctx, fold, e.t).map(|o| ctx.owner_data(o)),
        reps,
        intruder: None,
        evidence,
        window: WindowData {
            from: ctx.time(from),
            to: ctx.time(e.t),
        },
        reason,
    };
    emit_collision(ctx, e, rule, &data, out);
}

#[allow(clippy::too_many_arguments)]
fn out_of_territory(
    ctx: &Ctx<'_>,
    fold: &mut Fold,
    log: &[Entry],
    i: usize,
    c: &Contact,
    ri: usize,
    rule: &CollisionRule,
    out: &mut Vec<(Key, Output)>,
) {
    let e = &log[i];
    let Some(pool) = ctx.pool() else {
        return;
    };
    // Most contacts are checked and let go: look at the owner in place, and copy it only
    // for an alert (the copy touches its shared event id and allocates its account team).
    let exempt_by_owner = effective_owner(ctx, fold, e.t).is_some_and(|o| {
        o.rep == c.rep || (ctx.rules.exemptions.account_team && o.account_team.contains(&c.rep))
    });
    if !rule.kinds.contains(c.kind)
        || ctx.role_exempt(c.role)
        || !rule.scope.allows_team(ctx.word_str(c.team))
        || pool.admits_team(ctx.word_str(c.team))
        || exempt_by_owner
    {
        return;
    }
    let ids = [&*ctx.reps.get(c.rep).id];
    if !cooldown_allows(fold, ri, rule, &ids, e.t) || !ctx.render {
        return;
    }
    let owner = effective_owner(ctx, fold, e.t).cloned();
    let owner = owner.as_ref();
    let mut reps = vec![ctx.rep_data(c.rep, c.team, c.role)];
    if let Some(o) = owner {
        reps.push(ctx.rep_data(o.rep, o.team, ctx.reps.get(o.rep).role));
        reps.sort();
    }
    let reason = format!(
        "{} {} customer {} of pool `{}`, which only {} may work{}",
        ctx.rep_name(c.rep, c.team),
        verb(c.kind, c.direction),
        ctx.subject,
        pool.id,
        match pool.teams.as_slice() {
            [one] => format!("team {one}"),
            many => format!("teams {}", many.join(", ")),
        },
        match owner {
            Some(o) => format!(" (owner: {})", ctx.rep_name(o.rep, o.team)),
            None => String::new(),
        }
    );
    let data = CollisionData {
        rule: Arc::from(rule.id.as_str()),
        rule_type: rule.kind.type_name(),
        severity: rule.severity.as_str(),
        customer: ctx.customer_data(),
        owner: owner.map(|o| ctx.owner_data(o)),
        reps,
        intruder: Some(ctx.rep_data(c.rep, c.team, c.role)),
        evidence: vec![ctx.evidence(e)],
        window: WindowData {
            from: ctx.time(e.t),
            to: ctx.time(e.t),
        },
        reason,
    };
    emit_collision(ctx, e, rule, &data, out);
}

fn emit_collision(
    ctx: &Ctx<'_>,
    e: &Entry,
    rule: &CollisionRule,
    data: &CollisionData,
    out: &mut Vec<(Key, Output)>,
) {
    out.push((
        e.key(),
        Output::new(
            OutputType::Collision,
            ctx.subject.clone(),
            e.t,
            data,
            Some((Arc::from(rule.id.as_str()), rule.severity.as_str())),
        ),
    ));
}

pub(super) fn verb(kind: ContactKind, direction: Direction) -> &'static str {
    match (kind, direction) {
        (ContactKind::Call, Direction::Outbound) => "called",
        (ContactKind::Call, Direction::Inbound) => "answered a call from",
        (ContactKind::Email, Direction::Outbound) => "emailed",
        (ContactKind::Email, Direction::Inbound) => "answered an email from",
        (ContactKind::Visit, _) => "visited",
        (ContactKind::Meeting, _) => "met",
        (ContactKind::Message, Direction::Outbound) => "messaged",
        (ContactKind::Message, Direction::Inbound) => "answered a message from",
        (ContactKind::Complaint, _) => "logged a complaint from",
    }
}
