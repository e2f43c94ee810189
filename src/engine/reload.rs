//! Swapping the rules of a running engine without losing state (a rules reload).
//!
//! Most of the rules only decide what the *next* fold step does (collision rules, protection,
//! first touch, exemptions), so they can change between two events: customers, owners, windows
//! and identity links stay as they are. Two things in the state refer to the rules:
//! - collision cooldowns are keyed by rule *index*; they are re-keyed by rule id, and the
//!   cooldowns of removed rules are dropped;
//! - the exempt roles and the horizon (how long contacts are remembered) are derived from the
//!   rules and are recomputed.
//!
//! A few settings shape state already held in memory, and a reload that changes them is
//! refused as a whole ([`RestartNeeded`]); the previous rules keep running:
//! - `settings.time_zone`: every output's time and reason is rendered in it, and output ids are
//!   hashes of that text, so re-folding a customer after the change would withdraw and re-issue
//!   outputs that did not change in substance;
//! - `settings.allowed_lateness`: the watermark and every pending timer derive from it;
//! - `settings.max_message_bytes`: the input reader's line limit is set when it starts;
//! - `identity.*`: the identity index holds identifiers normalized, linked and demoted under
//!   the old settings;
//! - `sources`: an input's mapping is bound when the input is opened.
//!
//! After a reload, a late event that makes a customer's recent history fold again folds it
//! under the new rules: alerts of a removed rule on that history are withdrawn, a new rule may
//! fire on it. That is what "these are the rules now" means for history still in the window.
//!
//! The roster reloads the same way ([`Engine::replace_roster`]). A contact records its rep's
//! team, role and `active` when it is placed, and an owner its team when it is acquired, so a
//! reload changes how the events after it are read, never what was decided before it. (A
//! contact placed before a reload and not yet decided by the lifecycle is decided under the
//! new roster's limits: a rep who became inactive is refused its first touch, `rep_inactive`.)
//! Reps keep their handles, so their owners, ownership counts and rotation turns stay theirs.

use super::reps::RosterChange;
use super::Engine;
use crate::config::{CollisionRule, Roster, Rules};
use std::fmt;
use std::sync::Arc;

/// What a reload changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReloadSummary {
    /// Collision rules now in force.
    pub collision_rules: usize,
    /// Rule ids added, removed, and kept with a changed definition.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    /// Cooldowns forgotten because their rule was removed.
    pub cooldowns_dropped: usize,
}

impl ReloadSummary {
    /// What replacing `old` by `new` changes in the collision rules (cooldowns are counted by
    /// the engine that applies them).
    pub fn between(old: &Rules, new: &Rules) -> ReloadSummary {
        let (old, new) = (&old.collisions, &new.collisions);
        let ids = |rules: &[CollisionRule], keep: &dyn Fn(&CollisionRule) -> bool| {
            rules
                .iter()
                .filter(|r| keep(r))
                .map(|r| r.id.clone())
                .collect()
        };
        ReloadSummary {
            collision_rules: new.len(),
            added: ids(new, &|n| !old.iter().any(|r| r.id == n.id)),
            removed: ids(old, &|r| !new.iter().any(|n| n.id == r.id)),
            changed: ids(old, &|r| {
                new.iter().any(|n| n.id == r.id && !same_behaviour(r, n))
            }),
            cooldowns_dropped: 0,
        }
    }
}

impl fmt::Display for ReloadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        write!(
            f,
            "{} collision rules; added: {}; removed: {}; changed: {}",
            self.collision_rules,
            list(&self.added),
            list(&self.removed),
            list(&self.changed)
        )
    }
}

/// A reload refused because it changes settings that shape the state held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartNeeded {
    pub settings: Vec<&'static str>,
}

impl fmt::Display for RestartNeeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the new rules change {}, which shape the state held in memory; restart leadguard to apply them (or undo that change to reload the rest). The previous rules keep running",
            self.settings.join(", ")
        )
    }
}

impl std::error::Error for RestartNeeded {}

/// The settings that differ between `old` and `new` and can change only with a restart.
pub fn settings_needing_restart(old: &Rules, new: &Rules) -> Vec<&'static str> {
    let (o, n) = (&old.settings, &new.settings);
    let (oi, ni) = (&old.identity, &new.identity);
    [
        ("settings.time_zone", o.time_zone != n.time_zone),
        (
            "settings.allowed_lateness",
            o.allowed_lateness != n.allowed_lateness,
        ),
        (
            "settings.max_message_bytes",
            o.max_message_bytes != n.max_message_bytes,
        ),
        (
            "identity.default_region",
            oi.default_region != ni.default_region,
        ),
        (
            "identity.strip_email_plus_tags",
            oi.strip_email_plus_tags != ni.strip_email_plus_tags,
        ),
        (
            "identity.shared_identifier_limit",
            oi.shared_identifier_limit != ni.shared_identifier_limit,
        ),
        (
            "identity.shared_phones",
            oi.shared_phones != ni.shared_phones,
        ),
        (
            "identity.shared_emails",
            oi.shared_emails != ni.shared_emails,
        ),
        ("sources", old.sources != new.sources),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect()
}

/// Whether two rules with the same id behave the same (where they were written doesn't count).
fn same_behaviour(a: &CollisionRule, b: &CollisionRule) -> bool {
    a.kind == b.kind
        && a.severity == b.severity
        && a.cooldown == b.cooldown
        && a.kinds == b.kinds
        && a.scope == b.scope
}

impl Engine {
    /// Puts `new` in force from the next event on, keeping every customer, owner, window and
    /// identity link. Refused, with nothing changed, when the new rules change a setting that
    /// shapes stored state (see the module docs). When the new rules may give a waiting
    /// customer a rep (pools, `max_owned`, a pool that waits less...), [`Engine::room_changed`]
    /// says so, and the driver tries the line with [`Engine::try_line_again`], as after a
    /// roster reload.
    pub fn replace_rules(&mut self, new: Arc<Rules>) -> Result<ReloadSummary, RestartNeeded> {
        let settings = settings_needing_restart(&self.rules, &new);
        if !settings.is_empty() {
            return Err(RestartNeeded { settings });
        }
        let mut summary = ReloadSummary::between(&self.rules, &new);
        // Old rule index → new rule index, by rule id.
        let remap: Vec<Option<u16>> = self
            .rules
            .collisions
            .iter()
            .map(|r| {
                new.collisions
                    .iter()
                    .position(|n| n.id == r.id)
                    .map(|i| i as u16)
            })
            .collect();
        for cust in self.slots.iter_mut().flatten() {
            // Collision outputs remember their rule (for resolutions): by index, so re-key.
            for e in &mut cust.emitted {
                e.rule = e
                    .rule
                    .and_then(|ri| remap.get(ri as usize).copied().flatten());
            }
            for (fold, is_head) in [(&mut cust.base, false), (&mut cust.head, true)] {
                let before = fold.cooldowns.len();
                fold.cooldowns.retain_mut(|(ri, _, _)| {
                    match remap.get(*ri as usize).copied().flatten() {
                        Some(n) => {
                            *ri = n;
                            true
                        }
                        None => false,
                    }
                });
                if is_head {
                    summary.cooldowns_dropped += before - fold.cooldowns.len();
                }
            }
        }
        self.exempt_roles = new
            .exemptions
            .roles
            .iter()
            .map(|r| self.words.intern(r))
            .collect();
        self.scopes = super::detect::ScopeSyms::compile(&new, &mut self.words);
        self.horizon = new.horizon();
        self.forget_after = new.forget_after();
        // Pools may have changed: every customer's pool, and who may be assigned from each.
        self.ledger
            .set_pool_reps(&new, &self.reps, &self.words, &self.exempt_roles);
        self.rules = new;
        self.blank = super::attrs::Attrs::blank(&self.rules, &self.words);
        for slot in 0..self.slots.len() as u32 {
            self.place_in_pools(slot);
        }
        Ok(summary)
    }

    /// Puts `roster` in force from the next event on: each rep's team, role, activity, leave,
    /// region, capacity and specialities; reps it lists for the first time join the pools
    /// their team admits, and reps it no longer lists leave them. Keeps every customer, owner
    /// and count. Whether the line of waiting customers should be tried again (someone may
    /// have room now) is for the driver to ask: [`Engine::room_changed`], then
    /// [`Engine::try_line_again`], so that a driver that must repeat the try after a crash
    /// (Kafka mode) can log it where it happened.
    pub fn replace_roster(&mut self, roster: &Roster) -> RosterChange {
        let change = self.reps.apply_roster(roster, &mut self.words);
        self.roster_digest = super::lifecycle::roster_digest(roster);
        self.roster_file = super::RosterFile::of(roster);
        self.ledger
            .set_pool_reps(&self.rules, &self.reps, &self.words, &self.exempt_roles);
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Roster;
    use crate::ingest::Ingest;
    use std::path::Path;

    fn rules(collisions: &str, settings: &str) -> Arc<Rules> {
        let text = format!("settings:\n{settings}\ncollisions:\n{collisions}");
        Arc::new(Rules::from_texts([(Path::new("r.yaml"), text.as_str())]).expect("valid rules"))
    }

    const MULTI: &str = "  - {id: multi, type: multi_rep, min_reps: 2, window: 7d, severity: medium, cooldown: 1d}\n";
    const COMPLAINT: &str =
        "  - {id: complaint, type: complaint, window: 7d, severity: critical, cooldown: 1d}\n";

    fn feed(engine: &mut Engine, lines: &[&str]) -> Vec<String> {
        let mut ingest = Ingest::new(engine.rules().clone());
        let mut rules_fired = Vec::new();
        for line in lines {
            let e = ingest
                .parse(line.as_bytes(), None, "t")
                .expect("valid event");
            engine.handle_event(&e, e.occurred_at()).expect("accepted");
            for o in engine.drain_outputs() {
                if let Some((rule, _)) = o.rule() {
                    rules_fired.push(rule.to_string());
                }
            }
        }
        rules_fired
    }

    /// Rules with one pool for south customers, worked by team `t`; `ownership` and
    /// `assignment` are the YAML of those keys.
    fn south_pool(ownership: &str, assignment: &str) -> Arc<Rules> {
        let text = format!(
            "settings: {{time_zone: Asia/Shanghai, allowed_lateness: 10m}}\nownership: {ownership}\npools:\n  - {{id: leads, regions: [south], teams: [t], assignment: {assignment}}}\ncollisions:\n{MULTI}"
        );
        Arc::new(Rules::from_texts([(Path::new("r.yaml"), text.as_str())]).expect("valid"))
    }

    /// A roster of one rep, r-t, in team `t`.
    fn one_rep() -> Roster {
        Roster::parse("reps:\n  - {id: r-t, team: t}\n", Path::new("roster.yaml"))
            .expect("valid roster")
    }

    /// A south customer's event, on 2026-11-02 at `at` (HH:MM).
    fn south(id: &str, kind: &str, rep: &str, customer: &str, at: &str) -> String {
        format!(
            r#"{{"event_id":"{id}","kind":"{kind}","occurred_at":"2026-11-02T{at}:00+08:00","rep":{{"id":"{rep}"}},"customer":{{"id":"{customer}","region":"south"}}}}"#
        )
    }

    /// Handles one more event and lists the customers it (or what it made final) assigned,
    /// with the assignments' times.
    fn assigned_after(engine: &mut Engine, line: &str) -> Vec<(String, crate::time::Timestamp)> {
        let mut ingest = Ingest::new(engine.rules().clone());
        let next = ingest
            .parse(line.as_bytes(), None, "t")
            .expect("valid event");
        engine
            .handle_event(&next, next.occurred_at())
            .expect("accepted");
        engine
            .drain_outputs()
            .filter(|o| o.ty() == crate::output::OutputType::OwnershipAssigned)
            .map(|o| (o.subject().to_string(), o.time()))
            .collect()
    }

    fn call(id: &str, rep: &str, at: &str) -> String {
        format!(
            r#"{{"event_id":"{id}","kind":"call","occurred_at":"2026-11-02T{at}:00+08:00","rep":{{"id":"{rep}"}},"customer":{{"id":"C1"}}}}"#
        )
    }

    #[test]
    fn cooldowns_follow_their_rule_by_id_and_removed_rules_lose_theirs() {
        let before = rules(&format!("{COMPLAINT}{MULTI}"), "  time_zone: Asia/Shanghai");
        let mut engine = Engine::new(before, &Roster::default());
        let fired = feed(
            &mut engine,
            &[&call("1", "r1", "09:00"), &call("2", "r2", "10:00")],
        );
        assert_eq!(fired, ["multi"]);
        // `multi` moves from index 1 to index 0; its cooldown must follow it, or the third
        // rep's contact would be held back by (or escape) the wrong rule's cooldown.
        let after = rules(MULTI, "  time_zone: Asia/Shanghai");
        let summary = engine.replace_rules(after).expect("reload");
        assert_eq!(summary.removed, ["complaint"]);
        assert_eq!(summary.collision_rules, 1);
        let slot = engine.by_key.get("C1").expect("tracked");
        let cust = engine.slots[slot as usize].as_ref().expect("live");
        assert_eq!(cust.head.cooldowns.len(), 1);
        assert_eq!(cust.head.cooldowns[0].0, 0, "re-keyed to the new index");
        // Same rep set again within the cooldown: still held back.
        let fired = feed(&mut engine, &[&call("3", "r2", "11:00")]);
        assert!(fired.is_empty(), "{fired:?}");
    }

    #[test]
    fn a_customer_whose_pool_stops_assigning_no_longer_waits_and_is_forgotten() {
        let pool = |assignment: &str| {
            let text = format!(
                "settings: {{time_zone: Asia/Shanghai, allowed_lateness: 10m}}\npools:\n  - {{id: leads, teams: [t]{assignment}}}\ncollisions:\n{MULTI}"
            );
            Arc::new(Rules::from_texts([(Path::new("r.yaml"), text.as_str())]).expect("valid"))
        };
        let roster = Roster::parse("reps:\n  - {id: r-t, team: t}\n", Path::new("roster.yaml"))
            .expect("valid roster");
        let mut engine = Engine::new(
            pool(", assignment: {strategy: workload, after: 1h}"),
            &roster,
        );
        // C1 waits in the pool from 09:00, for an assignment at 10:00; the call at 09:20 makes
        // that final. Then the pool stops assigning automatically.
        feed(&mut engine, &[&call("1", "r-x", "09:00")]);
        let other = |id: &str, at: &str| {
            format!(
                r#"{{"event_id":"{id}","kind":"call","occurred_at":"{at}:00+08:00","rep":{{"id":"r-x"}},"customer":{{"id":"C2"}}}}"#
            )
        };
        feed(&mut engine, &[&other("2", "2026-11-02T09:20")]);
        engine.replace_rules(pool("")).expect("reload");
        // Weeks later C1 has long been forgotten: no longer waiting, it is evicted.
        feed(&mut engine, &[&other("3", "2026-11-30T09:00")]);
        assert!(engine.by_key.get("C1").is_none(), "C1 is still in memory");
    }

    #[test]
    fn a_higher_cap_after_a_reload_gives_waiting_customers_a_rep() {
        let capped = |max: u32| {
            south_pool(
                &format!("{{protection: 10d, limits: {{max_owned: {max}}}}}"),
                "{strategy: workload, after: 15m}",
            )
        };
        let mut engine = Engine::new(capped(1), &one_rep());
        // r-t, the pool's only rep, owns C1 and is at the cap. C2 waits from 09:00; at 09:15
        // nobody is eligible (final once the call at 09:30 arrives).
        feed(
            &mut engine,
            &[
                &south("1", "assign", "r-t", "C1", "08:00"),
                &south("2", "call", "r-x", "C2", "09:00"),
                &south("3", "call", "r-x", "C9", "09:30"),
            ],
        );
        assert_eq!(engine.state_size().waiting, 1, "C2 waits in line");
        engine.replace_rules(capped(2)).expect("reload");
        assert!(engine.room_changed());
        engine.try_line_again();
        let assigned = assigned_after(&mut engine, &south("4", "call", "r-x", "C9", "09:40"));
        // At the watermark when the rules changed: the 09:30 call less the allowed lateness.
        let at = crate::time::Timestamp::parse_rfc3339("2026-11-02T09:20:00+08:00").expect("time");
        assert_eq!(assigned, [("C2".to_string(), at)]);
        assert_eq!(engine.state_size().waiting, 0);
    }

    #[test]
    fn a_shorter_delay_after_a_reload_brings_the_first_try_forward() {
        let after = |delay: &str| {
            south_pool(
                "{protection: 10d}",
                &format!("{{strategy: workload, after: {delay}}}"),
            )
        };
        let mut engine = Engine::new(after("1d"), &one_rep());
        let call = |id: &str, customer: &str, at: &str| south(id, "call", "r-x", customer, at);
        // C1 waits from 09:00 and C2 from 09:40, for tries the next day. The call at 10:00
        // makes both final (the watermark is at 09:50).
        feed(
            &mut engine,
            &[
                &call("1", "C1", "09:00"),
                &call("2", "C2", "09:40"),
                &call("3", "C9", "10:00"),
            ],
        );
        engine.replace_rules(after("30m")).expect("reload");
        assert!(engine.room_changed());
        engine.try_line_again();
        // The call at 10:40 moves the watermark to 10:30: C1's wait of 30 minutes was up at
        // 09:30, so it is tried at the watermark of the reload; C2's is up at 10:10. (C9
        // waits from 10:00, under the new rules from the start.)
        let assigned = assigned_after(&mut engine, &call("4", "C9", "10:40"));
        let at = |hm: &str| {
            crate::time::Timestamp::parse_rfc3339(&format!("2026-11-02T{hm}:00+08:00"))
                .expect("time")
        };
        assert_eq!(
            assigned,
            [
                ("C1".to_string(), at("09:50")),
                ("C2".to_string(), at("10:10")),
                ("C9".to_string(), at("10:30"))
            ]
        );
    }

    #[test]
    fn a_changed_time_zone_or_identity_setting_is_refused_and_nothing_changes() {
        let before = rules(MULTI, "  time_zone: Asia/Shanghai");
        let mut engine = Engine::new(before.clone(), &Roster::default());
        let err = engine
            .replace_rules(rules(
                COMPLAINT,
                "  time_zone: Europe/Berlin\n  allowed_lateness: 1h",
            ))
            .expect_err("refused");
        assert_eq!(
            err.settings,
            ["settings.time_zone", "settings.allowed_lateness"]
        );
        assert!(err.to_string().contains("restart"));
        assert!(
            Arc::ptr_eq(engine.rules(), &before),
            "old rules still in force"
        );
    }

    #[test]
    fn pools_follow_a_reload() {
        let with_pools = |pools: &str| {
            let text = format!(
                "settings:\n  time_zone: Asia/Shanghai\n{pools}collisions:\n  - {{id: territory, type: out_of_territory, cooldown: 1h}}\n"
            );
            Arc::new(
                Rules::from_texts([(Path::new("r.yaml"), text.as_str())]).expect("valid rules"),
            )
        };
        let mut engine = Engine::new(
            with_pools("pools:\n  - {id: a, teams: [t1]}\n  - {id: b, teams: [t2]}\n"),
            &Roster::default(),
        );
        // r1 has no team: outside pool a.
        let fired = feed(&mut engine, &[&call("1", "r1", "10:00")]);
        assert_eq!(fired, ["territory"]);
        let pool = |e: &Engine| {
            let slot = e.by_key.get("C1").expect("tracked");
            let c = e.slots[slot as usize].as_ref().expect("live");
            // Every place the customer's attributes are kept follows.
            [c.base.attrs.pool, c.head.attrs.pool, c.hold.attrs.pool]
        };
        assert_eq!(pool(&engine), [Some(0); 3]);
        // Fewer pools: the customer's pool is found again rather than left pointing past the
        // end, and events keep flowing.
        engine
            .replace_rules(with_pools("pools:\n  - {id: b, teams: [t2]}\n"))
            .expect("reload");
        assert_eq!(pool(&engine), [Some(0); 3]);
        let fired = feed(&mut engine, &[&call("2", "r2", "10:05")]);
        assert_eq!(fired, ["territory"], "r2 has no team in pool b");
        engine.replace_rules(with_pools("")).expect("reload");
        assert_eq!(pool(&engine), [None; 3]);
    }

    fn roster(reps: &str) -> Roster {
        Roster::parse(&format!("reps:\n{reps}"), Path::new("roster.yaml")).expect("valid roster")
    }

    #[test]
    fn a_rep_a_reloaded_roster_adds_takes_the_customer_waiting_for_one() {
        let rules = south_pool("{protection: 10d}", "{strategy: workload, after: 15m}");
        let mut engine = Engine::new(rules, &Roster::default());
        // Nobody works the pool: C2, waiting from 09:00, finds nobody at 09:15.
        feed(
            &mut engine,
            &[
                &south("1", "call", "r-x", "C2", "09:00"),
                &south("2", "call", "r-x", "C9", "09:30"),
            ],
        );
        assert_eq!(engine.state_size().waiting, 1, "C2 waits in line");
        assert!(!engine.room_changed());
        let change = engine.replace_roster(&one_rep());
        assert_eq!(
            change,
            RosterChange {
                added: 1,
                changed: 0,
                removed: 0
            }
        );
        assert!(engine.room_changed(), "a new rep in the pool's team");
        engine.try_line_again();
        assert!(!engine.room_changed());
        let assigned: Vec<_> = engine
            .drain_outputs()
            .filter(|o| o.ty() == crate::output::OutputType::OwnershipAssigned)
            .map(|o| (o.subject().to_string(), o.data().contains("\"r-t\"")))
            .collect();
        assert_eq!(assigned, [("C2".to_string(), true)]);
        assert_eq!(engine.state_size().waiting, 0);
    }

    #[test]
    fn a_rep_the_reloaded_roster_drops_is_no_longer_assigned() {
        let rules = south_pool("{protection: 10d}", "{strategy: workload, after: 15m}");
        let mut engine = Engine::new(rules, &one_rep());
        let change = engine.replace_roster(&Roster::default());
        assert_eq!(change.removed, 1);
        assert!(engine.room_changed());
        engine.try_line_again();
        feed(&mut engine, &[&south("1", "call", "r-x", "C2", "09:00")]);
        let assigned = assigned_after(&mut engine, &south("2", "call", "r-x", "C9", "09:30"));
        assert!(assigned.is_empty(), "{assigned:?}");
        assert_eq!(engine.state_size().waiting, 1);
        // Listed again, under the same handle: the line is tried for them.
        let change = engine.replace_roster(&one_rep());
        assert_eq!(change.added, 1);
        engine.try_line_again();
        assert_eq!(engine.state_size().waiting, 0);
    }

    #[test]
    fn a_role_the_reloaded_roster_gives_exempts_the_contacts_after_it() {
        let rules = Arc::new(
            Rules::from_texts([(
                Path::new("r.yaml"),
                format!("settings: {{time_zone: Asia/Shanghai, allowed_lateness: 10m}}\ncollisions:\n{MULTI}").as_str(),
            )])
            .expect("valid"),
        );
        let sales = roster("  - {id: r-a, role: sales}\n  - {id: r-b, role: sales}\n");
        let mut engine = Engine::new(rules.clone(), &sales);
        let mut unchanged = Engine::new(rules, &sales);
        let visit = |id: &str, rep: &str, customer: &str, at: &str| {
            format!(
                r#"{{"event_id":"{id}","kind":"visit","occurred_at":"2026-11-02T{at}:00+08:00","rep":{{"id":"{rep}"}},"customer":{{"id":"{customer}"}}}}"#
            )
        };
        let before = [
            visit("1", "r-a", "C1", "09:00"),
            visit("2", "r-b", "C1", "09:05"),
        ];
        let before: Vec<&str> = before.iter().map(String::as_str).collect();
        assert_eq!(feed(&mut engine, &before), ["multi"]);
        feed(&mut unchanged, &before);
        let change = engine.replace_roster(&roster(
            "  - {id: r-a, role: sales}\n  - {id: r-b, role: support}\n",
        ));
        assert_eq!(change.changed, 1);
        // C1 folds again (a late visit before r-b's) as it would have without the reload:
        // r-b sold when they visited it.
        let late = visit("3", "r-a", "C1", "09:01");
        assert_eq!(feed(&mut engine, &[&late]), feed(&mut unchanged, &[&late]));
        assert_eq!(engine.stats().withdrawn, unchanged.stats().withdrawn);
        let fired = feed(
            &mut engine,
            &[
                &visit("4", "r-a", "C2", "10:00"),
                &visit("5", "r-b", "C2", "10:05"),
            ],
        );
        assert!(fired.is_empty(), "r-b supports now: {fired:?}");
    }

    /// First touch by visits, a protected-contact rule, 10 minutes of allowed lateness.
    fn first_touch_rules() -> Arc<Rules> {
        Arc::new(
            Rules::from_texts([(
                Path::new("r.yaml"),
                "settings: {time_zone: Asia/Shanghai, allowed_lateness: 10m}\n\
                 ownership: {protection: 10d, first_touch: {enabled: true, kinds: [visit]}}\n\
                 collisions:\n  - {id: protected, type: protected_contact, severity: high, cooldown: 1d}\n",
            )])
            .expect("valid"),
        )
    }

    fn c1_visit(id: &str, rep: &str, at: &str) -> String {
        format!(
            r#"{{"event_id":"{id}","kind":"visit","occurred_at":"2026-11-02T{at}:00+08:00","rep":{{"id":"{rep}"}},"customer":{{"id":"C1"}}}}"#
        )
    }

    /// Feeds `line`, ends the input and gives every output as "type subject data".
    fn outputs_to_the_end(engine: &mut Engine, line: &str) -> Vec<String> {
        let mut ingest = Ingest::new(engine.rules().clone());
        let e = ingest.parse(line.as_bytes(), None, "t").expect("valid");
        engine.handle_event(&e, e.occurred_at()).expect("accepted");
        engine.finish();
        engine
            .drain_outputs()
            .map(|o| format!("{} {} {}", o.ty().as_str(), o.subject(), o.data()))
            .collect()
    }

    /// A call to another customer at 09:30: the watermark moves to 09:20.
    const C9_AT_0930: &str = r#"{"event_id":"9","kind":"call","occurred_at":"2026-11-02T09:30:00+08:00","rep":{"id":"r-a"},"customer":{"id":"C9"}}"#;

    #[test]
    fn a_rep_the_reloaded_roster_makes_active_claims_nothing_by_earlier_contacts() {
        let rules = first_touch_rules();
        let away = roster("  - {id: r-a, active: false}\n  - {id: r-b}\n");
        let mut engine = Engine::new(rules.clone(), &away);
        let mut unchanged = Engine::new(rules, &away);
        let visit = c1_visit;
        // r-a is inactive when they visit C1, so r-b's visit claims it.
        let before = [visit("1", "r-a", "09:00"), visit("2", "r-b", "09:05")];
        let before: Vec<&str> = before.iter().map(String::as_str).collect();
        assert!(feed(&mut engine, &before).is_empty());
        feed(&mut unchanged, &before);
        let change = engine.replace_roster(&roster("  - {id: r-a}\n  - {id: r-b}\n"));
        assert_eq!(change.changed, 1);
        // C1 folds again (a late visit before r-b's): r-a's visit at 09:00 still claims
        // nothing, so r-b's is no intrusion.
        let late = visit("3", "r-b", "09:01");
        assert_eq!(feed(&mut engine, &[&late]), feed(&mut unchanged, &[&late]));
        assert_eq!(engine.stats().withdrawn, unchanged.stats().withdrawn);
        assert_eq!(engine.stats().alerts, unchanged.stats().alerts);
        // The lifecycle decides the visits at the watermark as if the reload came later:
        // r-b owns C1 from 09:01.
        let decided = outputs_to_the_end(&mut engine, C9_AT_0930);
        assert!(
            decided
                .iter()
                .any(|o| o.starts_with("leadguard.ownership.claimed C1")
                    && o.contains(r#""rep":{"id":"r-b""#)),
            "{decided:?}"
        );
        assert_eq!(decided, outputs_to_the_end(&mut unchanged, C9_AT_0930));
    }

    #[test]
    fn a_rep_the_reloaded_roster_makes_inactive_is_refused_the_first_touch_not_yet_decided() {
        let mut engine = Engine::new(
            first_touch_rules(),
            &roster("  - {id: r-a}\n  - {id: r-b}\n"),
        );
        // Detection takes r-a's visit as a first touch at once, so r-b's is an intrusion.
        let before = [c1_visit("1", "r-a", "09:00"), c1_visit("2", "r-b", "09:05")];
        let before: Vec<&str> = before.iter().map(String::as_str).collect();
        assert_eq!(feed(&mut engine, &before), ["protected"]);
        // r-a leaves before the lifecycle has decided the visit.
        engine.replace_roster(&roster("  - {id: r-a, active: false}\n  - {id: r-b}\n"));
        let decided = outputs_to_the_end(&mut engine, C9_AT_0930);
        let of_c1: Vec<&str> = decided
            .iter()
            .filter(|o| o.contains(" C1 "))
            .map(|o| o.split(' ').next().expect("type"))
            .collect();
        assert_eq!(
            of_c1,
            [
                "leadguard.ownership.rejected",
                "leadguard.output.withdrawn",
                "leadguard.ownership.claimed"
            ],
            "{decided:?}"
        );
        assert!(decided[0].contains("rep_inactive"), "{decided:?}");
        assert!(decided[2].contains(r#""rep":{"id":"r-b""#), "{decided:?}");
    }
}
