//! Property tests of the core's invariants.
//!
//! - Arrival order within the allowed lateness, and redelivery, do not change the outputs that
//!   stand (emitted and not withdrawn), compared with the same events fed in event-time order.
//!   Events describe their customer differently over time (region, tier), and the rules read
//!   those: scopes, pools and territories, protection by tier.
//! - A CRM that applies leadguard's ownership outputs and its own ownership events by time holds
//!   leadguard's owners, also when provisional customers turn out to be CRM customers.
//! - The same input gives the same output bytes.
//! - A snapshot restored between any two events changes no output.
//! - Fed in event-time order without provisional customers, the engine never withdraws.
//! - A first contact with a mistyped year changes nothing but its own refusal, once the clock
//!   starts where the first events agree.

use leadguard::config::{Roster, Rules};
use leadguard::engine::Engine;
use leadguard::event::{
    Activity, ContactKind, CustomerRef, Digests, Direction, Event, Ownership, OwnershipAction,
    RepRef,
};
use leadguard::output::{Output, OutputType};
use leadguard::time::{Span, Timestamp};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const LATENESS_MIN: i64 = 10;

fn rules(window_min: i64, cooldown_min: i64) -> Arc<Rules> {
    let yaml = format!(
        "settings: {{allowed_lateness: {LATENESS_MIN}m}}
ownership:
  protection: 45m
  tiers:
    A: {{protection: 20m}}
    B: {{protection: 45m, no_deal: 15m}}
  first_touch: {{enabled: true, kinds: [visit]}}
exemptions: {{roles: [support]}}
pools:
  - {{id: north, regions: [north], teams: [t0]}}
  - {{id: south, regions: [south], teams: [t1, t2]}}
collisions:
  - {{id: protected, type: protected_contact, cooldown: {cooldown_min}m}}
  - {{id: contention, type: multi_rep, min_reps: 2, window: {window_min}m, cooldown: {cooldown_min}m}}
  - {{id: crowding, type: multi_rep, min_reps: 3, window: {window_min}m, cooldown: {cooldown_min}m}}
  - {{id: key-accounts, type: multi_rep, min_reps: 2, window: {window_min}m, cooldown: {cooldown_min}m, scope: {{tiers: [A]}}}}
  - {{id: territory, type: out_of_territory, cooldown: {cooldown_min}m}}
  - {{id: complaint, type: complaint, window: {window_min}m, cooldown: {cooldown_min}m}}
"
    );
    Arc::new(Rules::from_texts([(Path::new("p.yaml"), yaml.as_str())]).expect("valid rules"))
}

/// One generated event: everything small so that collisions, cooldowns and ties are common.
#[derive(Debug, Clone)]
struct Gen {
    minute: i64,
    second: i64,
    customer: u8,
    rep: u8,
    what: u8,
    id_less: bool,
    /// An event with the id that doesn't give the phone, so that a CRM customer can have a
    /// history of its own before an id-less event's provisional customer turns out to be it.
    phoneless: bool,
    /// Which region and tier the event gives for its customer, if any.
    described: u8,
}

const BASE: i64 = 1_793_000_000_000;

fn to_event(g: &Gen, seq: usize) -> Event {
    let t = Timestamp(BASE + g.minute * 60_000 + g.second * 1000);
    let customer = CustomerRef {
        id: (!g.id_less).then(|| format!("C{}", g.customer)),
        phone: (g.id_less || !g.phoneless).then(|| format!("+86138000000{:02}", g.customer)),
        region: [None, Some("north"), Some("south")][g.described as usize % 3].map(String::from),
        tier: [None, Some("A"), Some("B")][g.described as usize / 3 % 3].map(String::from),
        ..CustomerRef::default()
    };
    let rep = RepRef {
        id: format!("r{}", g.rep),
        team: Some(format!("t{}", g.rep % 3)),
        role: Some(if g.rep == 5 { "support" } else { "sales" }.into()),
    };
    let event_id = format!("e{seq}");
    let kind = match g.what % 10 {
        0..=3 => Some(ContactKind::Call),
        4 => Some(ContactKind::Email),
        5 => Some(ContactKind::Visit),
        6 => Some(ContactKind::Complaint),
        _ => None,
    };
    match kind {
        Some(kind) => Event::Activity(Activity {
            event_id: event_id.into(),
            source: "s".into(),
            kind,
            direction: if g.what >= 20 {
                Direction::Inbound
            } else {
                Direction::Outbound
            },
            occurred_at: t,
            rep,
            customer,
            digests: Digests::default(),
        }),
        None => Event::Ownership(Ownership {
            event_id: event_id.into(),
            source: "crm".into(),
            // Assignments most often; locks, unlocks and wins now and then.
            action: match (g.what % 10, g.what / 10) {
                (7, _) | (8, 0) => OwnershipAction::Assign,
                (8, 1) => OwnershipAction::Lock,
                (8, _) => OwnershipAction::Unlock,
                (_, 0 | 1) => OwnershipAction::Release,
                _ => OwnershipAction::Won,
            },
            occurred_at: t,
            customer: CustomerRef {
                id: Some(format!("C{}", g.customer)),
                ..customer
            },
            rep: Some(rep),
            from_rep: None,
            account_team: Vec::new(),
            digests: Digests::default(),
        }),
    }
}

fn gen_event(minutes: i64, customers: u8, id_less: bool) -> impl Strategy<Value = Gen> {
    (
        0..minutes,
        0..60i64,
        0..customers,
        0..6u8,
        0..30u8,
        prop::bool::weighted(if id_less { 0.2 } else { 0.0 }),
        // Mostly no description, so that what an event gives lasts a while.
        prop_oneof![3 => Just(0u8), 1 => 1..9u8],
    )
        .prop_map(
            |(minute, second, customer, rep, what, id_less, described)| Gen {
                minute,
                second,
                customer,
                rep,
                what,
                id_less,
                phoneless: false,
                described,
            },
        )
}

/// Runs events in the given order; returns every output and the rejections.
fn run(rules: &Arc<Rules>, events: &[Event]) -> (Vec<Output>, usize) {
    run_with(rules, &Roster::default(), events)
}

/// Rules where every ownership-lifecycle family is on, with tight limits so that refusals,
/// reclaims, assignments and reassignments are common.
fn lifecycle_rules(window_min: i64) -> Arc<Rules> {
    rules_from(&lifecycle_yaml(window_min))
}

fn rules_from(yaml: &str) -> Arc<Rules> {
    Arc::new(Rules::from_texts([(Path::new("p.yaml"), yaml)]).expect("valid rules"))
}

/// Lifecycle rules whose pools don't assign automatically.
fn without_assignment(mut yaml: String) -> String {
    for after in ["10m", "12m", "15m"] {
        for strategy in ["territory", "tier", "workload"] {
            yaml = yaml.replace(
                &format!(", assignment: {{strategy: {strategy}, after: {after}}}"),
                "",
            );
        }
    }
    assert!(!yaml.contains("assignment"), "{yaml}");
    yaml
}

/// The text of [`lifecycle_rules`].
fn lifecycle_yaml(window_min: i64) -> String {
    format!(
        "settings: {{allowed_lateness: {LATENESS_MIN}m}}
ownership:
  protection: 30m
  extension: 10m
  cap: 50m
  no_deal: 80m
  tiers:
    A: {{protection: 15m, extension: 5m, cap: 60m, no_deal: 90m}}
    B: {{protection: 45m, extension: 10m, cap: 70m, no_deal: 25m}}
  warn_before: 5m
  first_touch: {{enabled: true, kinds: [visit]}}
  limits: {{claims_per_day: 2, max_owned: 2, max_locked: 1, reclaim_cooldown: 20m}}
  won: {{dormant_after: 40m}}
exemptions: {{roles: [support]}}
pools:
  - {{id: north, regions: [north], teams: [t0, t1], assignment: {{strategy: territory, after: 10m}}}}
  - {{id: key, tiers: [A], teams: [t0, t1], assignment: {{strategy: tier, after: 12m}}}}
  - {{id: p1, teams: [t0, t1], assignment: {{strategy: workload, after: 15m}}}}
sla:
  new_lead: {{follow_ups: 2, within: 40m, first_within: 20m, release: true}}
  inbound_response: {{within: 30m}}
collisions:
  - {{id: protected, type: protected_contact, cooldown: 5m, resolution: most_engaged, reassign: automatic}}
  - {{id: contention, type: multi_rep, min_reps: 2, window: {window_min}m, cooldown: 5m, resolution: first_touch}}
  - {{id: territory, type: out_of_territory, cooldown: 5m}}
  - {{id: complaint, type: complaint, window: {window_min}m, cooldown: 5m}}
"
    )
}

fn lifecycle_roster() -> Roster {
    let yaml = "reps:
  - {id: r0, team: t0, role: sales, region: south, tiers: [B]}
  - {id: r1, team: t1, role: sales, capacity: 1, region: north}
  - {id: r2, team: t2, role: sales}
  - {id: r3, team: t0, role: sales, region: north, tiers: [A]}
  - {id: r4, team: t1, role: sales, active: false}
  - {id: r5, team: t2, role: support}
";
    Roster::parse(yaml, Path::new("roster.yaml")).expect("valid roster")
}

fn run_with(rules: &Arc<Rules>, roster: &Roster, events: &[Event]) -> (Vec<Output>, usize) {
    let mut engine = Engine::new(rules.clone(), roster);
    let mut outs = Vec::new();
    let mut rejected = 0;
    for e in events {
        let now = e
            .occurred_at()
            .max(engine.clock().unwrap_or(e.occurred_at()));
        if engine.handle_event(e, now).is_err() {
            rejected += 1;
        }
        outs.extend(engine.drain_outputs());
    }
    // The input ends: decisions waiting for the allowed lateness are made.
    engine.finish();
    outs.extend(engine.drain_outputs());
    (outs, rejected)
}

/// As [`run_with`], with event time as the clock and the clock started where the first 64
/// events agree, as the file and Kafka edges start it.
fn run_agreed(rules: &Arc<Rules>, roster: &Roster, events: &[Event]) -> (Vec<Output>, usize) {
    let mut engine = Engine::new(rules.clone(), roster);
    engine.start_clock_where_agreed(events.iter().take(leadguard::engine::clock::START_EVENTS));
    let mut outs = Vec::new();
    let mut rejected = 0;
    for e in events {
        if engine.handle_event_in_event_time(e).is_err() {
            rejected += 1;
        }
        outs.extend(engine.drain_outputs());
    }
    engine.finish();
    outs.extend(engine.drain_outputs());
    (outs, rejected)
}

/// Outputs that stand: emitted and not withdrawn, by id.
fn standing(outs: &[Output]) -> BTreeMap<String, String> {
    let mut live = BTreeMap::new();
    for o in outs {
        if o.ty() == OutputType::Withdrawn {
            let v: serde_json::Value = serde_json::from_str(o.data()).expect("json");
            let id = v["withdrawn_id"].as_str().expect("id").to_string();
            assert!(
                live.remove(&id).is_some(),
                "withdrew {id}, which was not standing"
            );
        } else {
            assert!(
                live.insert(o.id().to_string(), o.data().to_string())
                    .is_none(),
                "emitted {} twice while it stood",
                o.id()
            );
        }
    }
    live
}

/// The standing outputs of `x` that `y` lacks, for a failure's message.
fn only_in(x: &BTreeMap<String, String>, y: &BTreeMap<String, String>) -> Vec<String> {
    x.iter()
        .filter(|(k, _)| !y.contains_key(*k))
        .map(|(_, v)| v.clone())
        .collect()
}

/// Arrival order: sort by event time plus a delay below the allowed lateness, so that every
/// event is within the lateness of everything delivered before it; then redeliver some.
fn deliveries(events: &[Event], delays: &[i64], redeliver: &[usize]) -> Vec<Event> {
    let mut order: Vec<(i64, usize)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.occurred_at().0 + delays[i % delays.len()], i))
        .collect();
    order.sort();
    let mut out: Vec<Event> = order.iter().map(|&(_, i)| events[i].clone()).collect();
    for &r in redeliver {
        if out.is_empty() {
            break;
        }
        let i = r % out.len();
        // Redeliver right after the original, which keeps it within the lateness.
        let copy = out[i].clone();
        out.insert(i + 1, copy);
    }
    out
}

/// Runs `events` in event-time order and as delivered (within the allowed lateness, some twice):
/// nothing is refused, and the same outputs stand.
fn arrival_order_holds(
    rules: &Arc<Rules>,
    roster: &Roster,
    events: &[Event],
    delays: &[i64],
    redeliver: &[usize],
) -> Result<(), TestCaseError> {
    let (reference, _) = run_with(rules, roster, &sorted(events));
    let (shuffled, rej) = run_with(rules, roster, &deliveries(events, delays, redeliver));
    prop_assert_eq!(rej, 0, "an event within the lateness was refused");
    let (a, b) = (standing(&shuffled), standing(&reference));
    prop_assert!(
        a == b,
        "only in the shuffled run: {:#?}\nonly in the reference: {:#?}",
        only_in(&a, &b),
        only_in(&b, &a)
    );
    Ok(())
}

/// A change a CRM applies to a customer's owner.
enum Change {
    /// The owner becomes this rep, or nobody.
    Owner(Option<String>),
    /// A purchase: the buyer becomes the owner of a customer nobody owns.
    Won(String),
}

/// What a CRM holds when it applies, in event-time order, its own ownership events and the
/// ownership outputs that stand: customer key → owner's rep id. At one millisecond the
/// lifecycle decides deadlines first (releases, a pool's assignments), then ownership events,
/// then contacts (claims, reassignments); equal ranks keep the order leadguard decided them.
/// The CRM undoes an event of its own that leadguard refused.
fn crm_picture(events: &[Event], outs: &[Output]) -> BTreeMap<String, Option<String>> {
    // The CRM's own events at one millisecond in the order leadguard decides them.
    let events = sorted(events);
    let standing = standing(outs);
    let refused: Vec<String> = standing
        .values()
        .filter_map(|d| {
            let v: serde_json::Value = serde_json::from_str(d).expect("json");
            v.get("action")?;
            v["evidence"][0]["event_id"].as_str().map(String::from)
        })
        .collect();
    // Sorted by (time, rank, emission order).
    let mut changes: Vec<((i64, u8, usize), String, Change)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let Event::Ownership(o) = e else { continue };
        if refused.iter().any(|r| r == o.event_id.as_str()) {
            continue;
        }
        let rep = o.rep.as_ref().map(|r| r.id.clone());
        let change = match o.action {
            OwnershipAction::Assign | OwnershipAction::Transfer | OwnershipAction::Claim => {
                Change::Owner(rep)
            }
            OwnershipAction::Release => Change::Owner(None),
            OwnershipAction::Won => match rep {
                Some(r) => Change::Won(r),
                None => continue,
            },
            OwnershipAction::Lock | OwnershipAction::Unlock => continue,
        };
        let key = o
            .customer
            .id
            .clone()
            .expect("ownership events name the customer");
        changes.push(((o.occurred_at.0, 1, i), key, change));
    }
    let seq = events.len();
    for (i, o) in outs.iter().enumerate() {
        if !standing.contains_key(o.id()) {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(o.data()).expect("json");
        let (rank, owner) = match o.ty() {
            OutputType::OwnershipReleased => (0, None),
            OutputType::OwnershipAssigned => (0, v["rep"]["id"].as_str()),
            OutputType::OwnershipClaimed => (2, v["rep"]["id"].as_str()),
            OutputType::OwnershipReassigned => (2, v["to_rep"]["id"].as_str()),
            _ => continue,
        };
        changes.push((
            (o.time().0, rank, seq + i),
            o.subject().to_string(),
            Change::Owner(owner.map(String::from)),
        ));
    }
    changes.sort_by_key(|c| c.0);
    let mut picture: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (_, key, change) in changes {
        let now = picture.entry(key).or_default();
        match change {
            Change::Owner(owner) => *now = owner,
            Change::Won(buyer) => {
                if now.is_none() {
                    *now = Some(buyer);
                }
            }
        }
    }
    picture
}

fn sorted(events: &[Event]) -> Vec<Event> {
    let mut v = events.to_vec();
    v.sort_by_key(leadguard::engine::canonical_order);
    v
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400),
        ..ProptestConfig::default()
    })]

    /// Everything within one window horizon (no eviction), id-less events included: the
    /// standing outputs don't depend on arrival order or redelivery.
    #[test]
    fn arrival_order_within_lateness_does_not_change_standing_outputs(
        gens in prop::collection::vec(gen_event(90, 3, true), 1..40),
        delays in prop::collection::vec(0..(LATENESS_MIN * 60_000), 1..40),
        redeliver in prop::collection::vec(0usize..100, 0..6),
        window in 5i64..40,
        cooldown in 0i64..30,
    ) {
        let rules = rules(window.max(90), cooldown);
        let events: Vec<Event> = gens.iter().enumerate().map(|(i, g)| to_event(g, i)).collect();
        let (reference, rej_ref) = run(&rules, &sorted(&events));
        let (shuffled, rej) = run(&rules, &deliveries(&events, &delays, &redeliver));
        prop_assert_eq!(rej_ref, 0);
        prop_assert_eq!(rej, 0, "an event within the lateness was refused");
        prop_assert_eq!(standing(&shuffled), standing(&reference));
    }

    /// Long streams with short windows, so that compaction and eviction run while events
    /// arrive; every event names its customer id.
    #[test]
    fn compaction_and_eviction_do_not_depend_on_arrival_order(
        gens in prop::collection::vec(gen_event(600, 4, false), 1..80),
        delays in prop::collection::vec(0..(LATENESS_MIN * 60_000), 1..40),
        redeliver in prop::collection::vec(0usize..100, 0..6),
        window in 1i64..30,
        cooldown in 0i64..40,
    ) {
        let rules = rules(window, cooldown);
        let events: Vec<Event> = gens.iter().enumerate().map(|(i, g)| to_event(g, i)).collect();
        let (reference, _) = run(&rules, &sorted(&events));
        // Detection applies the likely ownership decision at once and the lifecycle confirms
        // it after the allowed lateness; with no limits configured they always agree.
        prop_assert!(reference.iter().all(|o| o.ty() != OutputType::Withdrawn),
            "in event-time order with ids, nothing is ever withdrawn");
        let (shuffled, rej) = run(&rules, &deliveries(&events, &delays, &redeliver));
        prop_assert_eq!(rej, 0);
        prop_assert_eq!(standing(&shuffled), standing(&reference));
    }

    /// Long streams with short windows, and events that name only a phone: a CRM customer
    /// seen with its phone is found by it whether or not it has been evicted from memory by
    /// the time the event arrives. (Each customer's id is seen with its phone first, more than
    /// the lateness before anything else, so that no provisional customer is made: their links
    /// are still forgotten with them.)
    #[test]
    fn eviction_does_not_change_whom_an_id_less_event_finds(
        gens in prop::collection::vec(gen_event(600, 4, true), 1..80),
        delays in prop::collection::vec(0..(LATENESS_MIN * 60_000), 1..40),
        redeliver in prop::collection::vec(0usize..100, 0..6),
        window in 1i64..30,
        cooldown in 0i64..40,
    ) {
        let rules = rules(window, cooldown);
        let seen = (0..4).map(|customer| Gen { minute: 0, second: 0, customer, rep: 0, what: 0, id_less: false, phoneless: false, described: 0 });
        let later = gens.iter().map(|g| Gen { minute: g.minute + LATENESS_MIN + 1, ..g.clone() });
        let events: Vec<Event> = seen.chain(later).enumerate().map(|(i, g)| to_event(&g, i)).collect();
        arrival_order_holds(&rules, &Roster::default(), &events, &delays, &redeliver)?;
    }

    /// Every ownership-lifecycle family on, with limits that couple customers (claims per day,
    /// ownership and lock caps, workload assignment): the decisions, made in one event-time
    /// order once final, don't depend on arrival order or redelivery either.
    #[test]
    fn lifecycle_decisions_do_not_depend_on_arrival_order(
        gens in prop::collection::vec(gen_event(240, 5, false), 1..80),
        delays in prop::collection::vec(0..(LATENESS_MIN * 60_000), 1..40),
        redeliver in prop::collection::vec(0usize..100, 0..6),
        window in 5i64..60,
        one_each in any::<bool>(),
    ) {
        // With one customer per rep, most streams leave customers waiting in a pool's line.
        let yaml = lifecycle_yaml(window);
        let rules = rules_from(&if one_each { yaml.replace("max_owned: 2", "max_owned: 1") } else { yaml });
        let roster = lifecycle_roster();
        let events: Vec<Event> = gens.iter().enumerate().map(|(i, g)| to_event(g, i)).collect();
        arrival_order_holds(&rules, &roster, &events, &delays, &redeliver)?;
    }

    /// A first contact with a mistyped year, decades ahead or behind: with the clock started
    /// where the first events agree, it is refused and every output is as without it.
    #[test]
    fn a_first_contact_with_a_mistyped_year_changes_nothing_else(
        gens in prop::collection::vec(gen_event(240, 5, false), 2..80),
        delays in prop::collection::vec(0..(LATENESS_MIN * 60_000), 1..40),
        redeliver in prop::collection::vec(0usize..100, 0..6),
        years in prop_oneof![-30i64..-1, 1i64..70],
        copied in any::<prop::sample::Index>(),
    ) {
        let rules = lifecycle_rules(30);
        let roster = lifecycle_roster();
        let events: Vec<Event> = gens.iter().enumerate().map(|(i, g)| to_event(g, i)).collect();
        let stream = deliveries(&events, &delays, &redeliver);
        // A contact like one of the stream's, its year mistyped, delivered first.
        let mut mistyped = gens[copied.index(gens.len())].clone();
        mistyped.what %= 7;
        mistyped.minute += years * 365 * 24 * 60;
        let with: Vec<Event> = std::iter::once(to_event(&mistyped, gens.len()))
            .chain(stream.iter().cloned())
            .collect();
        let (reference, rej_ref) = run_agreed(&rules, &roster, &stream);
        let (outs, rej) = run_agreed(&rules, &roster, &with);
        prop_assert_eq!(rej_ref, 0);
        prop_assert_eq!(rej, 1, "the mistyped contact is refused, nothing else");
        prop_assert_eq!(outs, reference);
    }

    /// A CRM that applies its own ownership events and leadguard's ownership outputs in
    /// event-time order holds, for every customer, the owner leadguard holds; customers known
    /// first by a phone alone turn out to be CRM customers with a history of their own. Events
    /// arrive out of order within the allowed lateness, some twice.
    #[test]
    fn a_crm_applying_the_ownership_outputs_holds_leadguards_owners(
        gens in prop::collection::vec(
            (gen_event(240, 4, true), prop::bool::weighted(0.5))
                .prop_map(|(g, phoneless)| Gen { phoneless, ..g }),
            1..80,
        ),
        window in 5i64..60,
        pools_assign in any::<bool>(),
        delays in prop::collection::vec(0..(LATENESS_MIN * 60_000), 1..40),
        redeliver in prop::collection::vec(0usize..100, 0..6),
    ) {
        // Without automatic assignment, customers stay without an owner after a release, as
        // merges into them need.
        let yaml = lifecycle_yaml(window);
        let rules = rules_from(&if pools_assign { yaml } else { without_assignment(yaml) });
        let roster = lifecycle_roster();
        let events: Vec<Event> = gens.iter().enumerate().map(|(i, g)| to_event(g, i)).collect();
        let events = deliveries(&events, &delays, &redeliver);
        let mut engine = Engine::new(rules.clone(), &roster);
        let mut outs = Vec::new();
        for e in &events {
            let now = e.occurred_at().max(engine.clock().unwrap_or(e.occurred_at()));
            let _ = engine.handle_event(e, now);
            outs.extend(engine.drain_outputs());
        }
        engine.finish();
        outs.extend(engine.drain_outputs());
        let now = engine.clock().expect("events came");
        let picture = crm_picture(&events, &outs);
        for (key, owner) in &picture {
            let held = engine
                .customer_view(key, now)
                .and_then(|v| v.owner)
                .map(|o| o.rep.id.to_string());
            prop_assert_eq!(owner, &held, "customer {}", key);
        }
    }

    /// As above, with events that name only a phone, so that provisional customers turn out
    /// to be CRM customers while their lifecycle runs, and a 300-minute window that keeps
    /// every customer in memory (eviction of provisional customers still depends on arrival
    /// order: README "Not yet"). Pools don't assign automatically: a merge that reveals a
    /// customer's pool late makes its assignment after other customers' later ones (README
    /// "Not yet"), which changes a `workload` or in-turn choice in one or two generated streams
    /// in 10,000.
    #[test]
    fn lifecycle_decisions_with_id_less_events_do_not_depend_on_arrival_order(
        gens in prop::collection::vec(gen_event(240, 5, true), 1..80),
        delays in prop::collection::vec(0..(LATENESS_MIN * 60_000), 1..40),
        redeliver in prop::collection::vec(0usize..100, 0..6),
        window in 5i64..60,
    ) {
        let yaml = without_assignment(lifecycle_yaml(window))
            + "  - {id: memory, type: multi_rep, min_reps: 9, window: 300m}\n";
        let rules = rules_from(&yaml);
        let roster = lifecycle_roster();
        let events: Vec<Event> = gens.iter().enumerate().map(|(i, g)| to_event(g, i)).collect();
        arrival_order_holds(&rules, &roster, &events, &delays, &redeliver)?;
    }

    /// A snapshot taken between any two events and restored (through JSON, as the Kafka edge
    /// stores it) continues exactly as the engine that was never stopped: every ownership
    /// lifecycle family on, pools that assign and customers left waiting in line at the
    /// ownership cap, id-less events that merge, out-of-order delivery and redeliveries.
    /// (With one customer per rep, measured over 1,014 generated streams: 772 had customers
    /// in line at some point, 106 at the cut.)
    #[test]
    fn a_restore_between_any_two_events_changes_no_output(
        gens in prop::collection::vec(gen_event(240, 5, true), 1..80),
        delays in prop::collection::vec(0..(LATENESS_MIN * 60_000), 1..40),
        redeliver in prop::collection::vec(0usize..100, 0..6),
        window in 5i64..60,
        cut in any::<prop::sample::Index>(),
        one_each in prop::bool::weighted(0.75),
    ) {
        // Mostly one customer per rep: three reps may be assigned, and customers wait in line.
        let yaml = lifecycle_yaml(window);
        let rules = rules_from(&if one_each { yaml.replace("max_owned: 2", "max_owned: 1") } else { yaml });
        let roster = lifecycle_roster();
        let events: Vec<Event> = gens.iter().enumerate().map(|(i, g)| to_event(g, i)).collect();
        let stream = deliveries(&events, &delays, &redeliver);
        let (reference, _) = run_with(&rules, &roster, &stream);
        let cut = cut.index(stream.len() + 1);
        let mut first = Engine::new(rules.clone(), &roster);
        let mut outs = Vec::new();
        let mut feed = |engine: &mut Engine, events: &[Event]| {
            for e in events {
                let now = e.occurred_at().max(engine.clock().unwrap_or(e.occurred_at()));
                let _ = engine.handle_event(e, now);
                outs.extend(engine.drain_outputs());
            }
        };
        feed(&mut first, &stream[..cut]);
        let json = serde_json::to_vec(&first.snapshot()).expect("serializes");
        let snap: leadguard::engine::snapshot::Snapshot =
            serde_json::from_slice(&json).expect("deserializes");
        let mut second = Engine::restore(rules.clone(), &roster, &snap).expect("restores");
        feed(&mut second, &stream[cut..]);
        second.finish();
        outs.extend(second.drain_outputs());
        prop_assert_eq!(outs, reference, "restored after {} of {} events", cut, stream.len());
    }

    /// Same input, same output, byte for byte.
    #[test]
    fn same_input_same_output(
        gens in prop::collection::vec(gen_event(120, 3, true), 1..40),
    ) {
        let rules = rules(30, 10);
        let events: Vec<Event> = gens.iter().enumerate().map(|(i, g)| to_event(g, i)).collect();
        let (a, _) = run(&rules, &events);
        let (b, _) = run(&rules, &events);
        prop_assert_eq!(a, b);
    }
}

#[test]
fn an_event_beyond_the_lateness_is_refused_not_dropped() {
    let rules = rules(30, 10);
    let mut engine = Engine::new(rules, &Roster::default());
    let g = |minute, seq| {
        to_event(
            &Gen {
                minute,
                second: 0,
                customer: 1,
                rep: 1,
                what: 0,
                id_less: false,
                phoneless: false,
                described: 0,
            },
            seq,
        )
    };
    let late = g(0, 2);
    engine
        .handle_event(&g(30, 1), Timestamp(BASE + 30 * 60_000))
        .unwrap();
    let err = engine
        .handle_event(&late, Timestamp(BASE + 30 * 60_000))
        .unwrap_err();
    assert_eq!(err.reason.as_str(), "too_late");
    assert_eq!(
        engine.stats().rejected.values().sum::<u64>(),
        1,
        "the refusal is counted"
    );
    let _ = Span::ZERO;
}
