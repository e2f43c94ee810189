//! The ownership lifecycle's rules: protection with extension and cap, reclaim, claim limits,
//! public pools and assignment, follow-up SLAs and the business calendar.
//!
//! Read from the `ownership:`, `pools:`, `sla:` and `calendar:` sections. Every span is event
//! time; every day boundary and business hour is in `settings.time_zone`.

use super::rules::scalar_of;
use super::yaml::{Node, Reader};
use crate::event::{ContactKind, KindSet};
use crate::time::Span;
use chrono::{NaiveDate, NaiveTime, Weekday};
use std::sync::Arc;

/// Protection and reclaim figures; `ownership.tiers` may override them per customer tier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Protection {
    /// Length of protection after a claim or an assignment.
    pub period: Span,
    /// A follow-up by the owner moves the end of protection to its time + `extension`, when
    /// that is later.
    pub extension: Option<Span>,
    /// Protection never reaches past claim time + `cap`, whatever the follow-ups.
    pub cap: Option<Span>,
    /// Reclaimed when no deal (`won`) is recorded within this span of the claim.
    pub no_deal: Option<Span>,
}

/// Per-rep limits that keep reps from hoarding customers.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    /// Claims (first development or `claim` from the CRM) per rep per local day.
    pub claims_per_day: Option<u32>,
    /// 保有量: the most customers one rep may own. Reps over it keep theirs but get no more.
    pub max_owned: Option<u32>,
    /// The most customers one rep may hold locked.
    pub max_locked: Option<u32>,
    /// After a release, the previous owner may not claim the customer back for this long.
    pub reclaim_cooldown: Option<Span>,
}

/// The ownership rules (`ownership:`).
#[derive(Debug, Clone, PartialEq)]
pub struct OwnershipRules {
    pub protection: Protection,
    /// Overrides of `protection` for customers of a tier.
    pub tiers: Vec<(String, Protection)>,
    /// Contact kinds that count as the owner's follow-up (跟进).
    pub follow_up_kinds: KindSet,
    /// A reminder to the owner this long before a reclaim.
    pub warn_before: Option<Span>,
    /// When protection ends without lock or deal, the customer is released to its pool.
    pub release_on_expiry: bool,
    /// When set, the first contact of these kinds on a customer nobody owns makes the rep its
    /// owner.
    pub first_touch: Option<KindSet>,
    pub limits: Limits,
    /// A won customer with no contact or purchase for this long gets a revisit reminder.
    pub dormant_after: Option<Span>,
}

impl Default for OwnershipRules {
    fn default() -> Self {
        OwnershipRules {
            protection: Protection {
                period: Span::days(10),
                extension: None,
                cap: None,
                no_deal: None,
            },
            tiers: Vec::new(),
            follow_up_kinds: KindSet::CONTACTS,
            warn_before: None,
            release_on_expiry: true,
            first_touch: None,
            limits: Limits::default(),
            dormant_after: None,
        }
    }
}

impl OwnershipRules {
    /// The protection figures for a customer of this tier.
    pub fn protection_for(&self, tier: Option<&str>) -> Protection {
        tier.and_then(|t| self.tiers.iter().find(|(name, _)| name == t))
            .map_or(self.protection, |(_, p)| *p)
    }
}

/// How a pool hands out its customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// In turn among the pool's eligible reps.
    RoundRobin,
    /// Reps whose region is the customer's region first.
    Territory,
    /// Reps whose industries include the customer's industry first.
    Industry,
    /// Reps whose tiers include the customer's tier first (key accounts to senior reps).
    Tier,
    /// Reps whose product lines include the customer's product line first.
    ProductLine,
    /// The rep with the lowest share of their capacity in use.
    Workload,
}

impl Strategy {
    pub const CHOICES: [(&'static str, Strategy); 6] = [
        ("round_robin", Strategy::RoundRobin),
        ("territory", Strategy::Territory),
        ("industry", Strategy::Industry),
        ("tier", Strategy::Tier),
        ("product_line", Strategy::ProductLine),
        ("workload", Strategy::Workload),
    ];
    pub fn as_str(self) -> &'static str {
        Self::CHOICES
            .iter()
            .find(|(_, s)| *s == self)
            .map(|(n, _)| *n)
            .expect("every strategy has a name")
    }
}

/// Automatic assignment of a pool's customers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assignment {
    pub strategy: Strategy,
    /// A customer unowned this long after entering the pool is assigned.
    pub after: Span,
}

/// One public pool (公海池).
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// Shared: every output that names the pool carries it.
    pub id: Arc<str>,
    /// Customers of these regions / industries / tiers (empty: any).
    pub regions: Vec<String>,
    pub industries: Vec<String>,
    pub tiers: Vec<String>,
    /// Teams that may claim from and work this pool's customers (empty: every team).
    pub teams: Vec<String>,
    pub assignment: Option<Assignment>,
    pub defined_at: String,
}

impl Pool {
    pub fn matches(
        &self,
        region: Option<&str>,
        industry: Option<&str>,
        tier: Option<&str>,
    ) -> bool {
        let ok = |list: &[String], v: Option<&str>| {
            list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x == v))
        };
        ok(&self.regions, region) && ok(&self.industries, industry) && ok(&self.tiers, tier)
    }
    /// Whether reps of `team` may work this pool (see [`teams_admit`]).
    pub fn admits_team(&self, team: Option<&str>) -> bool {
        teams_admit(&self.teams, team)
    }
}

/// Whether a list of team patterns admits `team`: an empty list admits every team (and a rep
/// with none); `east-*` admits every team whose name starts with `east-`; any other entry only
/// the team of that name. Pools and collision-rule scopes both read `teams:` through this, so
/// one list means the same teams wherever it is written.
pub fn teams_admit(patterns: &[String], team: Option<&str>) -> bool {
    patterns.is_empty()
        || team.is_some_and(|t| {
            patterns.iter().any(|x| match x.strip_suffix('*') {
                Some(prefix) => t.starts_with(prefix),
                None => x == t,
            })
        })
}

/// A new lead must be followed up `follow_ups` times within `within`, the first within
/// `first_within`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewLeadSla {
    pub follow_ups: u32,
    pub within: Span,
    pub first_within: Option<Span>,
    /// Release the customer to its pool when the SLA is missed.
    pub release: bool,
}

/// An inbound contact must be answered by the owner within `within`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InboundSla {
    pub within: Span,
    /// Count `within` in business hours of the calendar.
    pub business_hours: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Slas {
    pub new_lead: Option<NewLeadSla>,
    pub inbound_response: Option<InboundSla>,
}

/// Business hours and holidays (`calendar:`), in the settings' time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    pub days: Vec<Weekday>,
    pub opens: NaiveTime,
    pub closes: NaiveTime,
    /// Dates with no business hours.
    pub holidays: Vec<NaiveDate>,
    /// Weekend dates worked as ordinary days (调休).
    pub workdays: Vec<NaiveDate>,
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar {
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            opens: NaiveTime::from_hms_opt(9, 0, 0).expect("valid time"),
            closes: NaiveTime::from_hms_opt(18, 0, 0).expect("valid time"),
            holidays: Vec::new(),
            workdays: Vec::new(),
        }
    }
}

/// How a collision rule settles who should keep the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resolution {
    /// The owner keeps it; the alert is all.
    #[default]
    OwnerWins,
    /// The rep who contacted the customer first keeps it.
    FirstTouch,
    /// The rep with the highest engagement score keeps it.
    MostEngaged,
}

impl Resolution {
    pub const CHOICES: [(&'static str, Resolution); 3] = [
        ("owner_wins", Resolution::OwnerWins),
        ("first_touch", Resolution::FirstTouch),
        ("most_engaged", Resolution::MostEngaged),
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::OwnerWins => "owner_wins",
            Resolution::FirstTouch => "first_touch",
            Resolution::MostEngaged => "most_engaged",
        }
    }
}

pub(super) const OWNERSHIP_KEYS: &[&str] = &[
    "protection",
    "extension",
    "cap",
    "no_deal",
    "tiers",
    "follow_up_kinds",
    "warn_before",
    "release_on_expiry",
    "first_touch",
    "limits",
    "won",
];

pub(super) fn read_ownership(r: &mut Reader<'_>, node: &Node, out: &mut OwnershipRules) {
    let Some(m) = r.map(node, "`ownership`", OWNERSHIP_KEYS) else {
        return;
    };
    let mut p = out.protection;
    read_protection_figures(r, &m, "`ownership`", &mut p);
    out.protection = p;
    if let Some(n) = m.get("tiers") {
        if let Some(t) = r.map_any(n, "`ownership.tiers`") {
            for (k, v) in t {
                let Some(tier) = k.as_str().map(str::to_string) else {
                    r.error(k, "`ownership.tiers`: keys are tier names");
                    continue;
                };
                let what = format!("`ownership.tiers.{tier}`");
                if let Some(tm) = r.map(v, &what, &["protection", "extension", "cap", "no_deal"]) {
                    let mut tp = p;
                    read_protection_figures(r, &tm, &what, &mut tp);
                    tm.finish(r);
                    out.tiers.push((tier, tp));
                }
            }
        }
    }
    if let Some(n) = m.get("follow_up_kinds") {
        if let Some(k) = super::rules::read_kinds(r, n, "`follow_up_kinds`") {
            out.follow_up_kinds = k;
        }
    }
    if let Some(v) = m
        .get("warn_before")
        .and_then(|n| r.span(n, "`warn_before`"))
    {
        out.warn_before = Some(v);
    }
    if let Some(v) = m
        .get("release_on_expiry")
        .and_then(|n| r.bool(n, "`release_on_expiry`"))
    {
        out.release_on_expiry = v;
    }
    if let Some(n) = m.get("first_touch") {
        if let Some(ft) = r.map(n, "`first_touch`", &["enabled", "kinds"]) {
            let enabled = ft
                .get("enabled")
                .and_then(|n| r.bool(n, "`first_touch.enabled`"))
                .unwrap_or(false);
            let kinds = match ft.get("kinds") {
                Some(k) => super::rules::read_kinds(r, k, "`first_touch.kinds`"),
                None => Some(
                    [ContactKind::Visit, ContactKind::Meeting]
                        .into_iter()
                        .collect(),
                ),
            };
            if let (true, Some(k)) = (enabled, kinds) {
                out.first_touch = Some(k);
            }
            ft.finish(r);
        }
    }
    if let Some(n) = m.get("limits") {
        if let Some(l) = r.map(
            n,
            "`ownership.limits`",
            &[
                "claims_per_day",
                "max_owned",
                "max_locked",
                "reclaim_cooldown",
            ],
        ) {
            let count = |r: &mut Reader<'_>, key: &str| {
                l.get(key)
                    .and_then(|n| r.uint(n, &format!("`limits.{key}`"), 1, 1_000_000))
                    .map(|v| v as u32)
            };
            out.limits.claims_per_day = count(r, "claims_per_day");
            out.limits.max_owned = count(r, "max_owned");
            out.limits.max_locked = count(r, "max_locked");
            out.limits.reclaim_cooldown = l
                .get("reclaim_cooldown")
                .and_then(|n| r.span(n, "`limits.reclaim_cooldown`"));
            l.finish(r);
        }
    }
    if let Some(n) = m.get("won") {
        if let Some(w) = r.map(n, "`ownership.won`", &["dormant_after"]) {
            out.dormant_after = w
                .get("dormant_after")
                .and_then(|n| r.span(n, "`won.dormant_after`"));
            w.finish(r);
        }
    }
    m.finish(r);
}

fn read_protection_figures(
    r: &mut Reader<'_>,
    m: &super::yaml::MapReader<'_>,
    what: &str,
    p: &mut Protection,
) {
    let positive = |r: &mut Reader<'_>, key: &str| -> Option<Span> {
        let n = m.get(key)?;
        let v = r.span(n, &format!("{what}: `{key}`"))?;
        if v <= Span::ZERO {
            r.error(n, format!("{what}: `{key}` must be longer than zero"));
            return None;
        }
        Some(v)
    };
    if let Some(v) = positive(r, "protection") {
        p.period = v;
    }
    if let Some(v) = positive(r, "extension") {
        p.extension = Some(v);
    }
    if let Some(v) = positive(r, "cap") {
        p.cap = Some(v);
    }
    if let Some(v) = positive(r, "no_deal") {
        p.no_deal = Some(v);
    }
    if let (Some(cap), Some(n)) = (p.cap, m.get("cap")) {
        if cap < p.period {
            r.error(
                n,
                format!(
                    "{what}: `cap` ({}) is shorter than `protection` ({}); the cap limits how far follow-ups extend protection",
                    crate::time::format_span(cap),
                    crate::time::format_span(p.period)
                ),
            );
        }
    }
}

const POOL_KEYS: &[&str] = &[
    "id",
    "regions",
    "industries",
    "tiers",
    "teams",
    "assignment",
];

pub(super) fn read_pool(
    r: &mut Reader<'_>,
    node: &Node,
    ids: &mut Vec<super::rules::NameAt>,
) -> Option<Pool> {
    let m = r.map(node, "a pool", POOL_KEYS)?;
    let id_node = m.require(r, "id");
    let id = id_node.and_then(|n| r.name(n, "`id`"));
    if let (Some(n), Some(id)) = (id_node, &id) {
        ids.push(super::rules::NameAt::new(r, n, id));
    }
    let mut list = |key: &str| {
        m.get(key)
            .and_then(|n| r.strings(n, &format!("pool `{key}`")))
            .unwrap_or_default()
    };
    let (regions, industries, tiers, teams) = (
        list("regions"),
        list("industries"),
        list("tiers"),
        list("teams"),
    );
    let assignment = m.get("assignment").and_then(|n| {
        let a = r.map(n, "`assignment`", &["strategy", "after"])?;
        let strategy = a
            .require(r, "strategy")
            .and_then(|n| r.choice(n, "`assignment.strategy`", &Strategy::CHOICES));
        let after = a
            .get("after")
            .and_then(|n| r.span(n, "`assignment.after`"))
            .unwrap_or(Span::ZERO);
        a.finish(r);
        Some(Assignment {
            strategy: strategy?,
            after,
        })
    });
    m.finish(r);
    Some(Pool {
        id: id?.into(),
        regions,
        industries,
        tiers,
        teams,
        assignment,
        defined_at: format!("{}:{}", r.file.display(), node.line),
    })
}

pub(super) fn read_sla(r: &mut Reader<'_>, node: &Node, out: &mut Slas) {
    let Some(m) = r.map(node, "`sla`", &["new_lead", "inbound_response"]) else {
        return;
    };
    if let Some(n) = m.get("new_lead") {
        if let Some(s) = r.map(
            n,
            "`sla.new_lead`",
            &["follow_ups", "within", "first_within", "release"],
        ) {
            let follow_ups = s
                .get("follow_ups")
                .and_then(|n| r.uint(n, "`new_lead.follow_ups`", 1, 1000))
                .unwrap_or(1) as u32;
            let within = s
                .require(r, "within")
                .and_then(|n| r.span(n, "`new_lead.within`"));
            let first_within = s
                .get("first_within")
                .and_then(|n| r.span(n, "`new_lead.first_within`"));
            let release = s
                .get("release")
                .and_then(|n| r.bool(n, "`new_lead.release`"))
                .unwrap_or(false);
            if let (Some(w), Some(f), Some(fnode)) = (within, first_within, s.get("first_within")) {
                if f > w {
                    r.error(fnode, "`new_lead.first_within` is longer than `within`");
                }
            }
            s.finish(r);
            if let Some(within) = within {
                out.new_lead = Some(NewLeadSla {
                    follow_ups,
                    within,
                    first_within,
                    release,
                });
            }
        }
    }
    if let Some(n) = m.get("inbound_response") {
        if let Some(s) = r.map(n, "`sla.inbound_response`", &["within", "business_hours"]) {
            let within = s
                .require(r, "within")
                .and_then(|n| r.span(n, "`inbound_response.within`"));
            let business_hours = s
                .get("business_hours")
                .and_then(|n| r.bool(n, "`inbound_response.business_hours`"))
                .unwrap_or(false);
            s.finish(r);
            if let Some(within) = within {
                out.inbound_response = Some(InboundSla {
                    within,
                    business_hours,
                });
            }
        }
    }
    m.finish(r);
}

pub(super) fn read_calendar(r: &mut Reader<'_>, node: &Node, out: &mut Calendar) {
    let Some(m) = r.map(
        node,
        "`calendar`",
        &["days", "opens", "closes", "holidays", "workdays"],
    ) else {
        return;
    };
    if let Some(n) = m.get("days") {
        if let Some(days) = r.strings(n, "`calendar.days`") {
            let mut parsed = Vec::new();
            for d in days {
                match d.parse::<Weekday>() {
                    Ok(w) => parsed.push(w),
                    Err(_) => r.error(
                        n,
                        format!("`calendar.days`: `{d}` is not a weekday (mon, tue, …)"),
                    ),
                }
            }
            out.days = parsed;
        }
    }
    for (key, slot) in [("opens", &mut out.opens), ("closes", &mut out.closes)] {
        if let Some(n) = m.get(key) {
            match scalar_of(n).and_then(|s| NaiveTime::parse_from_str(s, "%H:%M").ok()) {
                Some(t) => *slot = t,
                None => r.error(n, format!("`calendar.{key}` must be a time like 09:00")),
            }
        }
    }
    if out.closes <= out.opens {
        r.error(node, "`calendar.closes` must be after `calendar.opens`");
    }
    for (key, slot) in [
        ("holidays", &mut out.holidays),
        ("workdays", &mut out.workdays),
    ] {
        if let Some(n) = m.get(key) {
            if let Some(items) = r.list(n, &format!("`calendar.{key}`")) {
                for item in items {
                    match scalar_of(item)
                        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                    {
                        Some(d) => slot.push(d),
                        None => r.error(
                            item,
                            format!("`calendar.{key}`: dates are written 2026-10-01"),
                        ),
                    }
                }
            }
        }
    }
    out.holidays.sort();
    out.workdays.sort();
    m.finish(r);
}
