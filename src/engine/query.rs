//! Read-only questions about the live state: a customer's view and the pre-contact check.
//!
//! Whoever hosts the engine answers these between two events (the engine is single-threaded
//! and never shared), so an answer reflects every event processed before it and asking never
//! changes state or outputs. `now` comes from the host like every other time in the core.
//!
//! Access control is not decided here: the answers carry the owner's rep and team, and the API
//! decides what a caller may see (`api::access`).

use super::customer::{Body, Customer, Owner};
use super::reps::{RepIdx, Sym};
use super::Engine;
use crate::identity::{normalize, IdentKind, Lookup};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How many of a customer's most recent contacts a view lists.
pub const RECENT_CONTACTS: usize = 20;

/// A customer named by any of its identifiers, written as the caller has them (they are
/// normalized here exactly as ingestion normalizes events).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerIdentifiers {
    pub id: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub company: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepView {
    pub id: Arc<str>,
    pub team: Option<Arc<str>>,
    pub role: Option<Arc<str>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnerView {
    pub rep: RepView,
    pub since: String,
    /// When protection ends (absent for a won customer, whose protection does not lapse).
    pub protected_until: Option<String>,
    /// Whether the owner's protection holds at the time of the answer.
    pub protected: bool,
    pub won: bool,
    pub locked: bool,
    /// `crm` or `first_touch`.
    pub via: &'static str,
    pub account_team: Vec<Arc<str>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactView {
    pub event_id: crate::event::EventId,
    pub source: Option<Arc<str>>,
    pub kind: &'static str,
    pub direction: &'static str,
    pub rep: RepView,
    pub occurred_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentifierView {
    pub kind: &'static str,
    pub value: Box<str>,
}

/// Everything the engine knows about one customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerView {
    pub id: Arc<str>,
    pub provisional: bool,
    pub region: Option<Arc<str>>,
    pub industry: Option<Arc<str>>,
    pub tier: Option<Arc<str>>,
    pub owner: Option<OwnerView>,
    /// The public pool the customer is in, when it has no owner.
    pub pool: Option<Arc<str>>,
    /// The customer's wait for its pool's automatic assignment, as far as the lifecycle has
    /// decided; absent when it has an owner or its pool doesn't assign.
    pub assignment: Option<AssignmentWait>,
    pub identifiers: Vec<IdentifierView>,
    /// The newest contacts the engine still holds (those within the longest rule window),
    /// newest first, at most `RECENT_CONTACTS` (20).
    pub recent_contacts: Vec<ContactView>,
    /// The time the answer is about.
    pub as_of: String,
}

/// A customer waiting for its pool to assign it a rep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssignmentWait {
    /// Since when it waits (it entered the pool: a contact or a release).
    pub waiting_since: String,
    /// When its pool tries next. In line, it may be sooner: when a rep of the pool gets room.
    pub next_try: Option<String>,
    /// A try found no eligible rep (all at `max_owned`, away, inactive, or the previous owner
    /// inside the reclaim cooldown): the customer waits in line, longest wait first.
    pub in_line: bool,
}

/// May the rep contact the customer? Ordered from least to most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allowed,
    OutOfTerritory,
    OwnedByOther,
    Protected,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::OutOfTerritory => "out_of_territory",
            Decision::OwnedByOther => "owned_by_other",
            Decision::Protected => "protected",
        }
    }
}

/// The answer to a pre-contact check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckAnswer {
    pub decision: Decision,
    /// One sentence for the rep (names the owner: the API redacts it for callers who may not
    /// see the owner).
    pub reason: String,
    /// The rep asked about, with the team and role the roster gives.
    pub rep: RepView,
    /// The customer the identifiers found (the most restrictive one when they found several).
    pub customer: Option<Arc<str>>,
    /// Which of the given identifiers found that customer.
    pub matched_by: Vec<&'static str>,
    pub owner: Option<OwnerView>,
    /// Identifiers that could not be used (shared or ambiguous), as sentences.
    pub notes: Vec<String>,
    pub as_of: String,
}

/// Why a check could not be answered: the caller must fix the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// None of id, phone, email, company given.
    NoIdentifier,
    /// Identifiers that are not valid (phone, email, company), with the reasons.
    Invalid(Vec<String>),
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckError::NoIdentifier => {
                write!(
                    f,
                    "name the customer by at least one of id, phone, email, company"
                )
            }
            CheckError::Invalid(problems) => write!(f, "{}", problems.join("; ")),
        }
    }
}

/// The identifiers of a query, normalized like ingestion normalizes events.
struct Normalized {
    id: Option<String>,
    idents: Vec<(IdentKind, String)>,
}

fn normalize_query(
    rules: &crate::config::Rules,
    q: &CustomerIdentifiers,
) -> Result<Normalized, CheckError> {
    fn given(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
    let mut problems = Vec::new();
    let mut idents = Vec::new();
    let ident = &rules.identity;
    if let Some(p) = given(&q.phone) {
        match normalize::normalize_phone(p, ident.default_region) {
            Ok(v) => idents.push((IdentKind::Phone, v)),
            Err(e) => problems.push(format!("phone: {e}")),
        }
    }
    if let Some(e) = given(&q.email) {
        match normalize::normalize_email(e, ident.strip_email_plus_tags) {
            Ok(v) => idents.push((IdentKind::Email, v)),
            Err(err) => problems.push(format!("email: {err}")),
        }
    }
    if let Some(c) = given(&q.company) {
        match normalize::normalize_company(c) {
            Ok(v) => idents.push((IdentKind::Company, v)),
            Err(e) => problems.push(format!("company: {e}")),
        }
    }
    if !problems.is_empty() {
        return Err(CheckError::Invalid(problems));
    }
    let id = given(&q.id).map(str::to_string);
    if id.is_none() && idents.is_empty() {
        return Err(CheckError::NoIdentifier);
    }
    Ok(Normalized { id, idents })
}

impl Engine {
    fn word(&self, s: Sym) -> Option<Arc<str>> {
        self.words.get(s).cloned()
    }

    pub(super) fn time_text(&self, t: Timestamp) -> String {
        t.to_rfc3339_in(self.rules.settings.time_zone)
    }

    /// A rep's id with the team and role the roster gives (or the contact's own, for reps the
    /// roster doesn't list).
    fn rep_view(&self, rep: RepIdx, team: Sym, role: Sym) -> RepView {
        let info = self.reps.get(rep);
        let pick = |roster: Sym, given: Sym| if roster.is_none() { given } else { roster };
        RepView {
            id: info.id.clone(),
            team: self.word(pick(info.team, team)),
            role: self.word(pick(info.role, role)),
        }
    }

    fn owner_view(&self, o: &Owner, now: Timestamp) -> OwnerView {
        OwnerView {
            rep: self.rep_view(o.rep, o.team, Sym::NONE),
            since: self.time_text(o.since),
            protected_until: (!o.won).then(|| self.time_text(o.protected_until)),
            protected: o.won || o.protects_at(now),
            won: o.won,
            locked: o.locked,
            via: o.via.as_str(),
            account_team: o
                .account_team
                .iter()
                .map(|r| self.reps.get(*r).id.clone())
                .collect(),
        }
    }

    /// The customer's owner at `now`, as the lifecycle will have it: an owner whose time ran
    /// out, or who missed a new-lead SLA that releases, is released (as detection assumes).
    fn owner_at<'c>(&self, cust: &'c Customer, now: Timestamp) -> Option<&'c Owner> {
        cust.head
            .owner
            .as_ref()
            .filter(|_| super::detect::released_at(&self.rules, &cust.head, now).is_none())
    }

    /// An owner as reasons name it: the rep id, with the team when there is one.
    fn owner_name(&self, o: &Owner) -> String {
        let owner = self.rep_view(o.rep, o.team, Sym::NONE);
        match &owner.team {
            Some(t) => format!("{} ({t})", owner.id),
            None => owner.id.to_string(),
        }
    }

    fn customer_at(&self, key: &str) -> Option<&Customer> {
        let slot = self.by_key.get(key)?;
        self.slots[slot as usize].as_ref()
    }

    /// The public pool a customer's newest attributes (by event time) place it in.
    fn pool_of(&self, cust: &Customer) -> Option<Arc<str>> {
        cust.head
            .attrs
            .pool
            .map(|p| self.rules.pools[p as usize].id.clone())
    }

    fn assignment_wait(&self, cust: &Customer) -> Option<AssignmentWait> {
        let hold = &cust.hold;
        let (since, _, a) = super::lifecycle::pool_wait(&self.rules, hold)?;
        let in_line = Engine::is_waiting(hold);
        let next = if in_line {
            hold.assign_retry
        } else {
            Some(since + a.after)
        };
        Some(AssignmentWait {
            waiting_since: self.time_text(since),
            next_try: next.map(|t| self.time_text(t)),
            in_line,
        })
    }

    /// Why `rep` may not work the customer because of territories: their team is not among
    /// the teams of the customer's pool. This is the one place that decision lives for the API
    /// (detection and claims use the same `Pool::admits_team`).
    fn territory_refusal(&self, rep: Option<RepIdx>, cust: &Customer) -> Option<String> {
        let pool = &self.rules.pools[cust.head.attrs.pool? as usize];
        let team = rep.map(|r| self.reps.get(r).team).unwrap_or(Sym::NONE);
        let team_name = self.words.get(team).map(|w| &**w);
        if pool.admits_team(team_name) {
            return None;
        }
        Some(format!(
            "the customer is in pool `{}`, which only {} may work",
            pool.id,
            pool.teams.join(", ")
        ))
    }

    /// Everything known about the customer with this key (CRM id or provisional key), as of
    /// `now`; `None` when the engine holds no such customer.
    pub fn customer_view(&self, key: &str, now: Timestamp) -> Option<CustomerView> {
        let cust = self.customer_at(key)?;
        let recent_contacts = cust
            .log
            .iter()
            .rev()
            .filter_map(|e| match &e.body {
                Body::Contact {
                    rep,
                    team,
                    role,
                    kind,
                    direction,
                    ..
                } => Some(ContactView {
                    event_id: e.event_id.clone(),
                    source: self.word(e.source),
                    kind: kind.as_str(),
                    direction: direction.as_str(),
                    rep: self.rep_view(*rep, *team, *role),
                    occurred_at: self.time_text(e.t),
                }),
                Body::Ownership { .. } | Body::OwnerState(_) => None,
            })
            .take(RECENT_CONTACTS)
            .collect();
        let owner = self.owner_at(cust, now).map(|o| self.owner_view(o, now));
        let assignment = self.assignment_wait(cust).filter(|_| owner.is_none());
        Some(CustomerView {
            id: cust.key.clone(),
            provisional: cust.provisional,
            region: self.word(cust.head.attrs.region),
            industry: self.word(cust.head.attrs.industry),
            tier: self.word(cust.head.attrs.tier),
            owner,
            pool: self.pool_of(cust),
            assignment,
            identifiers: cust
                .identifiers
                .iter()
                .map(|i| IdentifierView {
                    kind: i.kind.as_str(),
                    value: i.text.clone(),
                })
                .collect(),
            recent_contacts,
            as_of: self.time_text(now),
        })
    }

    /// May `rep` contact the customer these identifiers name, at `now`? Every identifier is
    /// looked up (the id, and each phone, email and company link); when they lead to several
    /// customers, the most restrictive answer wins, so a prospect typed by phone is caught even
    /// when the CRM id the rep has is a duplicate record.
    pub fn check(
        &self,
        rep: &str,
        who: &CustomerIdentifiers,
        now: Timestamp,
    ) -> Result<CheckAnswer, CheckError> {
        let q = normalize_query(&self.rules, who)?;
        let rep_idx = self.reps.lookup(rep);
        let rep_view = match rep_idx {
            Some(r) => self.rep_view(r, Sym::NONE, Sym::NONE),
            None => RepView {
                id: Arc::from(rep),
                team: None,
                role: None,
            },
        };
        // (customer key, identifiers that found it), in the order given.
        let mut found: Vec<(Arc<str>, Vec<&'static str>)> = Vec::new();
        let mut note =
            |key: &Arc<str>, by: &'static str| match found.iter_mut().find(|(k, _)| k == key) {
                Some((_, v)) => v.push(by),
                None => found.push((key.clone(), vec![by])),
            };
        if let Some(id) = &q.id {
            if let Some(c) = self.customer_at(id) {
                note(&c.key, "id");
            }
        }
        let mut notes = Vec::new();
        for (kind, value) in &q.idents {
            match self.identity.lookup(*kind, value) {
                Lookup::Customer(h) => {
                    if let Some(cust) = super::live(&self.slots, h) {
                        note(&cust.key, kind.as_str())
                    }
                }
                // Back in memory if an event naming its id came since; else nothing is held
                // on it, as for a customer never seen.
                Lookup::Dormant(key) => match self.customer_at(&key) {
                    Some(cust) => note(&cust.key, kind.as_str()),
                    // Not named: the note also goes to callers who may not see customers.
                    None => notes.push(format!(
                        "{} {value} belongs to a customer that has been quiet long enough to be forgotten; nobody owns it",
                        kind.as_str()
                    )),
                },
                Lookup::Unknown => {}
                Lookup::Ambiguous(n) => notes.push(format!(
                    "{} {value} belongs to {n} customers, so it can't tell which one; it was not used",
                    kind.as_str()
                )),
                Lookup::Shared => notes.push(format!(
                    "{} {value} is a shared identifier (a switchboard or shared mailbox); it was not used",
                    kind.as_str()
                )),
            }
        }
        let role = rep_idx.map_or(Sym::NONE, |r| self.reps.get(r).role);
        let mut best: Option<(Decision, String, &Customer, Vec<&'static str>)> = None;
        for (key, by) in found {
            let cust = self.customer_at(&key).expect("found above");
            let (decision, reason) = self.decide(rep, rep_idx, role, cust, now);
            if best.as_ref().is_none_or(|(d, ..)| decision > *d) {
                best = Some((decision, reason, cust, by));
            }
        }
        let as_of = self.time_text(now);
        Ok(match best {
            None => CheckAnswer {
                decision: Decision::Allowed,
                reason: "no customer with these identifiers is on record: nobody owns it"
                    .to_string(),
                rep: rep_view,
                customer: None,
                matched_by: Vec::new(),
                owner: None,
                notes,
                as_of,
            },
            Some((decision, reason, cust, matched_by)) => CheckAnswer {
                decision,
                reason,
                rep: rep_view,
                customer: Some(cust.key.clone()),
                matched_by,
                owner: self.owner_at(cust, now).map(|o| self.owner_view(o, now)),
                notes,
                as_of,
            },
        })
    }

    /// The decision for one customer, with its reason.
    fn decide(
        &self,
        rep_id: &str,
        rep: Option<RepIdx>,
        role: Sym,
        cust: &Customer,
        now: Timestamp,
    ) -> (Decision, String) {
        let key = &cust.key;
        if !role.is_none() && self.exempt_roles.contains(&role) {
            let role = self.word(role).unwrap_or_else(|| Arc::from(""));
            return (
                Decision::Allowed,
                format!(
                    "{rep_id}'s role {role} never counts toward a collision (exemptions.roles)"
                ),
            );
        }
        let Some(o) = self.owner_at(cust, now) else {
            return match self.territory_refusal(rep, cust) {
                Some(why) => (Decision::OutOfTerritory, why),
                None => match &cust.head.owner {
                    // The lifecycle writes the release once it is final; the answer doesn't
                    // wait for it.
                    Some(gone) => {
                        let at = super::detect::released_at(&self.rules, &cust.head, now)
                            .unwrap_or(gone.reclaim_at());
                        // Released when its time ran out, unless the SLA came first.
                        let ran_out = at == gone.reclaim_at()
                            && gone.released_by(now, self.rules.ownership.release_on_expiry);
                        let cause = if !ran_out {
                            "the new-lead follow-up SLA was missed"
                        } else if gone.reclaimed_for_no_deal() {
                            "no deal in time"
                        } else {
                            "protection ended"
                        };
                        (
                            Decision::Allowed,
                            format!(
                                "customer {key} has no owner: {}'s hold ended {} ({cause}) and the rules release it",
                                self.owner_name(gone),
                                self.time_text(at),
                            ),
                        )
                    }
                    None => (Decision::Allowed, format!("customer {key} has no owner")),
                },
            };
        };
        let owner_name = self.owner_name(o);
        let since = self.time_text(o.since);
        if Some(o.rep) == rep {
            return (
                Decision::Allowed,
                format!("{rep_id} owns customer {key} since {since}"),
            );
        }
        if self.rules.exemptions.account_team && rep.is_some_and(|r| o.account_team.contains(&r)) {
            return (
                Decision::Allowed,
                format!("{rep_id} is on the account team of customer {key}, owned by {owner_name}"),
            );
        }
        if o.won {
            return (
                Decision::Protected,
                format!("customer {key} is owned by {owner_name} since {since} and has bought (won): its protection does not lapse"),
            );
        }
        if o.protects_at(now) {
            return (
                Decision::Protected,
                format!(
                    "customer {key} is owned by {owner_name} since {since} and protected until {}",
                    self.time_text(o.protected_until)
                ),
            );
        }
        (
            Decision::OwnedByOther,
            format!(
                "customer {key} is owned by {owner_name} since {since}; its protection ended {}, so a contact is not a protected-contact collision but still counts toward multi-rep rules",
                self.time_text(o.protected_until)
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Roster, Rules};
    use crate::ingest::Ingest;
    use std::path::Path;

    fn engine(lines: &[&str]) -> Engine {
        engine_with(Rules::embedded(), lines)
    }

    fn engine_with(rules: Rules, lines: &[&str]) -> Engine {
        let rules = Arc::new(rules);
        let roster = Roster::parse(
            "reps:\n  - {id: r-li, team: east-1, role: sales}\n  - {id: r-wang, team: west-1, role: sales}\n  - {id: r-sup, team: east-1, role: support}\n  - {id: r-acct, team: east-1, role: sales}\n",
            Path::new("roster.yaml"),
        )
        .expect("roster");
        let mut ingest = Ingest::new(rules.clone());
        let mut engine = Engine::new(rules, &roster);
        for line in lines {
            let e = ingest.parse(line.as_bytes(), None, "t").expect("valid");
            engine.handle_event(&e, e.occurred_at()).expect("accepted");
        }
        engine
    }

    const ASSIGN: &str = r#"{"event_id":"a1","kind":"assign","occurred_at":"2026-11-02T09:00:00+08:00","customer":{"id":"C1"},"rep":{"id":"r-li"},"account_team":["r-acct"],"source":"crm"}"#;
    const CALL: &str = r#"{"event_id":"c1","kind":"call","occurred_at":"2026-11-02T10:00:00+08:00","rep":{"id":"r-li"},"customer":{"id":"C1","phone":"138 0013 8000","email":"Li.Wei@Example.com"},"source":"cc"}"#;

    /// Rules from one YAML text.
    fn rules_from(yaml: &str) -> Rules {
        Rules::from_texts([(Path::new("r.yaml"), yaml)]).expect("valid rules")
    }

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).expect("time")
    }

    fn ids(phone: Option<&str>, id: Option<&str>) -> CustomerIdentifiers {
        CustomerIdentifiers {
            id: id.map(Into::into),
            phone: phone.map(Into::into),
            ..CustomerIdentifiers::default()
        }
    }

    #[test]
    fn the_check_names_the_owner_and_tells_protected_from_lapsed() {
        let e = engine(&[ASSIGN, CALL]);
        let during = at("2026-11-03T09:00:00+08:00");
        let after = at("2026-11-20T09:00:00+08:00");
        // Any spelling of the phone finds C1, like ingestion would.
        let a = e
            .check("r-wang", &ids(Some("+86 138-0013-8000"), None), during)
            .expect("answer");
        assert_eq!(a.decision, Decision::Protected);
        assert_eq!(a.customer.as_deref(), Some("C1"));
        assert_eq!(a.matched_by, ["phone"]);
        assert!(a.reason.contains("r-li (east-1)"), "{}", a.reason);
        // The shipped rules release an owner whose time ran out: the answer says so before
        // the lifecycle has written the release (no later event has moved its clock).
        let a = e
            .check("r-wang", &ids(None, Some("C1")), after)
            .expect("answer");
        assert_eq!(a.decision, Decision::Allowed);
        assert!(a.owner.is_none());
        assert!(
            a.reason.contains("r-li (east-1)'s hold ended"),
            "{}",
            a.reason
        );
        let view = e.customer_view("C1", after).expect("view");
        assert!(view.owner.is_none());
        // Rules that keep the owner past protection: owned by another, not protected.
        let mut keep = Rules::embedded();
        keep.ownership.release_on_expiry = false;
        let e = engine_with(keep, &[ASSIGN, CALL]);
        let a = e
            .check("r-wang", &ids(None, Some("C1")), after)
            .expect("answer");
        assert_eq!(a.decision, Decision::OwnedByOther);
        assert!(a.owner.is_some_and(|o| !o.protected));
        for (rep, why) in [
            ("r-li", "owns"),
            ("r-acct", "account team"),
            ("r-sup", "support"),
        ] {
            let a = e
                .check(rep, &ids(None, Some("C1")), during)
                .expect("answer");
            assert_eq!(a.decision, Decision::Allowed, "{rep}");
            assert!(a.reason.contains(why), "{rep}: {}", a.reason);
        }
        let a = e
            .check("r-wang", &ids(Some("139 0000 0000"), None), during)
            .expect("answer");
        assert_eq!((a.decision, a.customer), (Decision::Allowed, None));
    }

    #[test]
    fn an_unowned_customer_is_out_of_territory_for_teams_its_pool_does_not_admit() {
        // The shipped rules put region east in pool `east`, which teams `east-*` may work.
        let e = engine(&[
            r#"{"event_id":"c9","kind":"call","occurred_at":"2026-11-02T10:00:00+08:00","rep":{"id":"r-li"},"customer":{"id":"C9","region":"east"},"source":"cc"}"#,
        ]);
        let now = at("2026-11-02T11:00:00+08:00");
        let view = e.customer_view("C9", now).expect("tracked");
        assert_eq!(view.pool.as_deref(), Some("east"));
        let a = e
            .check("r-wang", &ids(None, Some("C9")), now)
            .expect("answer");
        assert_eq!(a.decision, Decision::OutOfTerritory);
        assert!(a.reason.contains("pool `east`"), "{}", a.reason);
        let a = e
            .check("r-li", &ids(None, Some("C9")), now)
            .expect("answer");
        assert_eq!(a.decision, Decision::Allowed, "{}", a.reason);
    }

    #[test]
    fn the_view_tells_a_customer_waiting_in_its_pools_line() {
        let rules = Arc::new(rules_from(
            "settings: {time_zone: Asia/Shanghai, allowed_lateness: 10m}\nownership:\n  protection: 10d\n  limits: {max_owned: 1}\npools:\n  - {id: leads, regions: [south], teams: [t], assignment: {strategy: workload, after: 15m}}\ncollisions:\n  - {id: protected-contact, type: protected_contact}\n",
        ));
        let roster = Roster::parse("reps:\n  - {id: r-t, team: t}\n", Path::new("roster.yaml"))
            .expect("roster");
        let event = |id: &str, kind: &str, rep: &str, customer: &str, at: &str| {
            format!(
                r#"{{"event_id":"{id}","kind":"{kind}","occurred_at":"2026-11-02T{at}:00+08:00","rep":{{"id":"{rep}"}},"customer":{{"id":"{customer}","region":"south"}}}}"#
            )
        };
        let mut ingest = Ingest::new(rules.clone());
        let mut e = Engine::new(rules, &roster);
        let mut feed = |e: &mut Engine, lines: &[String]| {
            for line in lines {
                let ev = ingest.parse(line.as_bytes(), None, "t").expect("valid");
                e.handle_event(&ev, ev.occurred_at()).expect("accepted");
            }
        };
        // r-t is at the cap with C1; C2 waits from 09:00 (final after the call at 09:12),
        // first try at 09:15.
        feed(
            &mut e,
            &[
                event("1", "assign", "r-t", "C1", "08:00"),
                event("2", "call", "r-x", "C2", "09:00"),
                event("3", "call", "r-x", "C9", "09:12"),
            ],
        );
        let now = at("2026-11-02T09:12:00+08:00");
        let wait = e.customer_view("C2", now).and_then(|v| v.assignment);
        assert_eq!(
            wait,
            Some(AssignmentWait {
                waiting_since: "2026-11-02T09:00:00+08:00".into(),
                next_try: Some("2026-11-02T09:15:00+08:00".into()),
                in_line: false,
            })
        );
        // The 09:15 try finds nobody eligible (final after the call at 09:30): in line until
        // the last try, when C2 would be forgotten.
        feed(&mut e, &[event("4", "call", "r-x", "C9", "09:30")]);
        let wait = e
            .customer_view("C2", at("2026-11-02T09:30:00+08:00"))
            .and_then(|v| v.assignment)
            .expect("waits");
        assert!(wait.in_line, "{wait:?}");
        assert_eq!(wait.waiting_since, "2026-11-02T09:00:00+08:00");
        assert!(wait.next_try.is_some(), "{wait:?}");
        let owned = e.customer_view("C1", now).expect("tracked");
        assert_eq!(
            owned.assignment, None,
            "an owned customer waits for nothing"
        );
    }

    #[test]
    fn an_owner_who_missed_a_releasing_sla_is_answered_as_released() {
        let rules = rules_from("sla:\n  new_lead: {follow_ups: 2, within: 3d, first_within: 1d, release: true}\ncollisions:\n  - {id: protected-contact, type: protected_contact}\n");
        // Assigned on 11-02 at 09:00; the call at 10:00 is r-li's first follow-up.
        let e = engine_with(rules, &[ASSIGN, CALL]);
        let before_last = at("2026-11-05T08:59:00+08:00");
        let a = e
            .check("r-wang", &ids(None, Some("C1")), before_last)
            .expect("answer");
        assert_eq!(a.decision, Decision::Protected, "{}", a.reason);
        // No second follow-up within 3 days: released at 11-05 09:00, before the lifecycle
        // has written it (no later event has moved its clock).
        let a = e
            .check(
                "r-wang",
                &ids(None, Some("C1")),
                at("2026-11-05T09:00:00+08:00"),
            )
            .expect("answer");
        assert_eq!(a.decision, Decision::Allowed);
        assert!(
            a.reason.contains("(the new-lead follow-up SLA was missed)"),
            "{}",
            a.reason
        );
    }

    #[test]
    fn a_phone_of_a_customer_evicted_from_memory_is_answered_with_a_note() {
        let rules = rules_from(
            "collisions:\n  - {id: contention, type: multi_rep, min_reps: 2, window: 7d}\n",
        );
        let later = r#"{"event_id":"c2","kind":"call","occurred_at":"2026-11-12T10:00:00+08:00","rep":{"id":"r-wang"},"customer":{"id":"C2"},"source":"cc"}"#;
        let e = engine_with(rules, &[CALL, later]);
        assert_eq!(e.stats().customers_evicted, 1, "C1 was evicted");
        let a = e
            .check(
                "r-wang",
                &ids(Some("13800138000"), None),
                at("2026-11-12T11:00:00+08:00"),
            )
            .expect("answer");
        assert_eq!(a.decision, Decision::Allowed);
        assert_eq!(a.customer, None);
        assert_eq!(
            a.notes,
            ["phone +8613800138000 belongs to a customer that has been quiet long enough to be forgotten; nobody owns it"]
        );
    }

    #[test]
    fn a_bad_identifier_is_the_callers_to_fix() {
        let e = engine(&[]);
        let now = at("2026-11-03T09:00:00+08:00");
        assert_eq!(
            e.check("r-li", &CustomerIdentifiers::default(), now),
            Err(CheckError::NoIdentifier)
        );
        assert!(matches!(
            e.check("r-li", &ids(Some("12"), None), now),
            Err(CheckError::Invalid(_))
        ));
    }

    #[test]
    fn the_view_lists_owner_identifiers_and_recent_contacts() {
        let e = engine(&[ASSIGN, CALL]);
        let v = e
            .customer_view("C1", at("2026-11-03T09:00:00+08:00"))
            .expect("tracked");
        let owner = v.owner.expect("owned");
        assert_eq!(&*owner.rep.id, "r-li");
        assert!(owner.protected);
        assert_eq!(
            owner.protected_until.as_deref(),
            Some("2026-11-12T09:00:00+08:00")
        );
        assert_eq!(v.recent_contacts.len(), 1);
        assert_eq!(&*v.recent_contacts[0].event_id, "c1");
        assert!(v
            .identifiers
            .iter()
            .any(|i| i.kind == "phone" && &*i.value == "+8613800138000"));
        assert!(e
            .customer_view("C2", at("2026-11-03T09:00:00+08:00"))
            .is_none());
    }
}
