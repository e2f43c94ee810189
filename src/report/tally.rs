//! The figures of a report, computed from the outputs that stand: read once, deduplicated,
//! and not withdrawn anywhere in the stream.

use super::read::{Collector, Fact, Malformed, Rep};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The team name used for reps the outputs name without one.
pub const NO_TEAM: &str = "(no team)";
/// The bucket for lifecycle outputs that carry no reason, strategy or resolution.
pub const UNSPECIFIED: &str = "(unspecified)";
/// More days than this between the first and last collision and the per-day figures list only
/// the days that had collisions: a stray timestamp years away would otherwise make thousands of
/// empty days.
const MAX_FILLED_DAYS: i64 = 732;

/// A label and a count: one bar of a chart, one row of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    pub label: String,
    pub value: u64,
}

/// Collisions between two reps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pair {
    pub a: String,
    pub b: String,
    pub collisions: u64,
}

impl Pair {
    /// `r0001 + r0007`, the ids in order.
    pub fn label(&self) -> String {
        format!("{} + {}", self.a, self.b)
    }
}

/// A rep whose contacts triggered two or more collisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Offender {
    pub rep: String,
    pub team: String,
    pub collisions: u64,
}

/// A customer and every rep named in its collisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerReps {
    pub customer: String,
    pub reps: Vec<String>,
    pub collisions: u64,
}

/// Collisions of one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleCount {
    pub rule: String,
    pub severity: String,
    pub collisions: u64,
}

/// A ranked list cut at the report's `top`, with how many entries there were in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ranked<T> {
    pub total: usize,
    pub shown: Vec<T>,
}

/// Counts of the ownership lifecycle outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Lifecycle {
    pub claims: u64,
    pub reclaims: u64,
    pub reclaims_by_reason: Vec<Count>,
    /// By the team of the rep who lost the customer.
    pub reclaims_per_team: Vec<Count>,
    pub assignments: u64,
    pub assignments_by_strategy: Vec<Count>,
    /// Assignments of a customer someone else owned before.
    pub assignments_from_previous_owner: u64,
    pub reassignments: u64,
    pub reassignments_by_resolution: Vec<Count>,
    pub recommendations: u64,
    pub recommendations_by_resolution: Vec<Count>,
}

/// How the stream was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reading {
    pub input: String,
    /// Messages (lines) read, blank ones included.
    pub messages: u64,
    /// Distinct outputs, withdrawals included.
    pub outputs: u64,
    pub duplicates: u64,
    pub malformed: u64,
    /// The first bad messages, with their line numbers.
    pub malformed_listed: Vec<Malformed>,
    pub withdrawals: u64,
    /// Outputs of this stream that a withdrawal retracted (not counted anywhere else).
    pub withdrawn: u64,
    /// Withdrawals naming an output that is not in this stream (it came before the stream's
    /// first line, e.g. a report over one day's file).
    pub withdrawn_elsewhere: u64,
    /// The outputs that stand, by CloudEvents type.
    pub standing_by_type: Vec<Count>,
    /// Event-time span of the standing outputs, as written in them.
    pub first_time: Option<String>,
    pub last_time: Option<String>,
}

/// Every figure of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub reading: Reading,
    pub top: usize,
    pub collisions: u64,
    /// A collision counts once for each distinct team among its reps.
    pub per_team: Vec<Count>,
    /// Every unordered pair of reps named together in a collision.
    pub per_pair: Ranked<Pair>,
    /// Intruders with two or more collisions.
    pub repeat_offenders: Ranked<Offender>,
    /// Customers by the number of distinct reps over their collisions.
    pub customers: Ranked<CustomerReps>,
    pub by_rule: Vec<RuleCount>,
    pub by_severity: Vec<Count>,
    /// Every day from the first to the last collision (days without one count 0).
    pub per_day: Vec<Count>,
    pub lifecycle: Lifecycle,
}

fn severity_rank(s: &str) -> u8 {
    match s {
        "critical" => 0,
        "high" => 1,
        "medium" => 2,
        "low" => 3,
        _ => 4,
    }
}

fn team_of(rep: &Rep) -> &str {
    rep.team
        .as_deref()
        .filter(|t| !t.is_empty())
        .unwrap_or(NO_TEAM)
}

/// Counts, largest first, ties by label: the order of every ranked table and chart.
fn ranked_counts(map: HashMap<String, u64>) -> Vec<Count> {
    let mut v: Vec<Count> = map
        .into_iter()
        .map(|(label, value)| Count { label, value })
        .collect();
    v.sort_by(|x, y| y.value.cmp(&x.value).then_with(|| x.label.cmp(&y.label)));
    v
}

fn bump(map: &mut HashMap<String, u64>, key: &str) {
    *map.entry(key.to_string()).or_insert(0) += 1;
}

fn ranked<T>(mut all: Vec<T>, top: usize) -> Ranked<T> {
    let total = all.len();
    all.truncate(top);
    Ranked { total, shown: all }
}

/// Fills the days between the first and last with zero counts.
fn fill_days(per_day: BTreeMap<String, u64>) -> Vec<Count> {
    use chrono::NaiveDate;
    let parse = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    let (Some(first), Some(last)) = (
        per_day.keys().next().and_then(|d| parse(d)),
        per_day.keys().next_back().and_then(|d| parse(d)),
    ) else {
        return Vec::new();
    };
    if (last - first).num_days() > MAX_FILLED_DAYS {
        return per_day
            .into_iter()
            .map(|(label, value)| Count { label, value })
            .collect();
    }
    first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|d| {
            let label = d.format("%Y-%m-%d").to_string();
            let value = per_day.get(&label).copied().unwrap_or(0);
            Count { label, value }
        })
        .collect()
}

impl Report {
    /// Counts what stands in `c`. `top` cuts the rep-pair, offender and customer rankings.
    pub fn compute(c: Collector, input: &str, top: usize) -> Report {
        let mut collisions = 0;
        let mut per_team = HashMap::new();
        let mut per_pair: HashMap<(String, String), u64> = HashMap::new();
        let mut intruders: HashMap<String, (u64, Option<String>)> = HashMap::new();
        let mut customers: HashMap<String, (BTreeSet<String>, u64)> = HashMap::new();
        let mut by_rule: HashMap<(String, String), u64> = HashMap::new();
        let mut by_severity = HashMap::new();
        let mut per_day = BTreeMap::new();
        let mut by_type = HashMap::new();
        let mut life = Lifecycle::default();
        let (mut reclaim_reason, mut reclaim_team, mut strategy, mut resolution, mut recommended) = (
            HashMap::new(),
            HashMap::new(),
            HashMap::new(),
            HashMap::new(),
            HashMap::new(),
        );
        // Outputs of this stream that a withdrawal retracted.
        let mut withdrawn: usize = 0;
        let mut first: Option<(i64, String)> = None;
        let mut last: Option<(i64, String)> = None;

        for r in &c.records {
            if c.withdrawn.contains_key(&r.id) {
                withdrawn += 1;
                continue;
            }
            if first.as_ref().is_none_or(|(t, _)| r.time.0 < *t) {
                first = Some((r.time.0, r.time_text.clone()));
            }
            if last.as_ref().is_none_or(|(t, _)| r.time.0 > *t) {
                last = Some((r.time.0, r.time_text.clone()));
            }
            let ty = match &r.fact {
                Fact::Collision(col) => {
                    collisions += 1;
                    let teams: BTreeSet<&str> = col.reps.iter().map(team_of).collect();
                    for team in teams {
                        bump(&mut per_team, team);
                    }
                    let ids: BTreeSet<&str> = col.reps.iter().map(|r| r.id.as_str()).collect();
                    let ids: Vec<&str> = ids.into_iter().collect();
                    for (i, a) in ids.iter().enumerate() {
                        for b in &ids[i + 1..] {
                            *per_pair.entry((a.to_string(), b.to_string())).or_insert(0) += 1;
                        }
                    }
                    if let Some(intruder) = &col.intruder {
                        let e = intruders.entry(intruder.id.clone()).or_insert((0, None));
                        e.0 += 1;
                        if intruder.team.is_some() {
                            e.1.clone_from(&intruder.team);
                        }
                    }
                    let e = customers.entry(col.customer.clone()).or_default();
                    e.0.extend(ids.iter().map(|s| s.to_string()));
                    e.1 += 1;
                    *by_rule
                        .entry((col.rule.clone(), col.severity.clone()))
                        .or_insert(0) += 1;
                    bump(&mut by_severity, &col.severity);
                    *per_day.entry(col.day.clone()).or_insert(0) += 1;
                    "leadguard.collision.detected"
                }
                Fact::Claimed { .. } => {
                    life.claims += 1;
                    "leadguard.ownership.claimed"
                }
                Fact::Released { rep, reason_code } => {
                    life.reclaims += 1;
                    bump(
                        &mut reclaim_reason,
                        reason_code.as_deref().unwrap_or(UNSPECIFIED),
                    );
                    bump(&mut reclaim_team, rep.as_ref().map_or(NO_TEAM, team_of));
                    "leadguard.ownership.released"
                }
                Fact::Assigned {
                    strategy: s,
                    had_previous_owner,
                    ..
                } => {
                    life.assignments += 1;
                    life.assignments_from_previous_owner += u64::from(*had_previous_owner);
                    bump(&mut strategy, s.as_deref().unwrap_or(UNSPECIFIED));
                    "leadguard.ownership.assigned"
                }
                Fact::Reassigned {
                    resolution: res, ..
                } => {
                    life.reassignments += 1;
                    bump(&mut resolution, res.as_deref().unwrap_or(UNSPECIFIED));
                    "leadguard.ownership.reassigned"
                }
                Fact::Recommended {
                    resolution: res, ..
                } => {
                    life.recommendations += 1;
                    bump(&mut recommended, res.as_deref().unwrap_or(UNSPECIFIED));
                    "leadguard.reassignment.recommended"
                }
                Fact::Other { ty } => ty.as_str(),
            };
            bump(&mut by_type, ty);
        }

        life.reclaims_by_reason = ranked_counts(reclaim_reason);
        life.reclaims_per_team = ranked_counts(reclaim_team);
        life.assignments_by_strategy = ranked_counts(strategy);
        life.reassignments_by_resolution = ranked_counts(resolution);
        life.recommendations_by_resolution = ranked_counts(recommended);

        let mut pairs: Vec<Pair> = per_pair
            .into_iter()
            .map(|((a, b), collisions)| Pair { a, b, collisions })
            .collect();
        pairs.sort_by(|x, y| {
            y.collisions
                .cmp(&x.collisions)
                .then_with(|| (&x.a, &x.b).cmp(&(&y.a, &y.b)))
        });
        let mut offenders: Vec<Offender> = intruders
            .into_iter()
            .filter(|(_, (n, _))| *n >= 2)
            .map(|(rep, (collisions, team))| Offender {
                rep,
                team: team.unwrap_or_else(|| NO_TEAM.to_string()),
                collisions,
            })
            .collect();
        offenders.sort_by(|x, y| {
            y.collisions
                .cmp(&x.collisions)
                .then_with(|| x.rep.cmp(&y.rep))
        });
        let mut touched: Vec<CustomerReps> = customers
            .into_iter()
            .map(|(customer, (reps, collisions))| CustomerReps {
                customer,
                reps: reps.into_iter().collect(),
                collisions,
            })
            .collect();
        touched.sort_by(|x, y| {
            y.reps
                .len()
                .cmp(&x.reps.len())
                .then_with(|| y.collisions.cmp(&x.collisions))
                .then_with(|| x.customer.cmp(&y.customer))
        });
        let mut rules: Vec<RuleCount> = by_rule
            .into_iter()
            .map(|((rule, severity), collisions)| RuleCount {
                rule,
                severity,
                collisions,
            })
            .collect();
        rules.sort_by(|x, y| {
            severity_rank(&x.severity)
                .cmp(&severity_rank(&y.severity))
                .then_with(|| y.collisions.cmp(&x.collisions))
                .then_with(|| x.rule.cmp(&y.rule))
        });
        let mut by_severity = ranked_counts(by_severity);
        by_severity.sort_by_key(|c| severity_rank(&c.label));

        Report {
            reading: Reading {
                input: input.to_string(),
                messages: c.messages,
                outputs: c.records.len() as u64 + c.withdrawals,
                duplicates: c.duplicates,
                malformed: c.malformed_count,
                malformed_listed: c.malformed,
                withdrawals: c.withdrawals,
                withdrawn: withdrawn as u64,
                withdrawn_elsewhere: (c.withdrawn.len() - withdrawn) as u64,
                standing_by_type: ranked_counts(by_type),
                first_time: first.map(|(_, s)| s),
                last_time: last.map(|(_, s)| s),
            },
            top,
            collisions,
            per_team: ranked_counts(per_team),
            per_pair: ranked(pairs, top),
            repeat_offenders: ranked(offenders, top),
            customers: ranked(touched, top),
            by_rule: rules,
            by_severity,
            per_day: fill_days(per_day),
            lifecycle: life,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::read::Collector;

    fn collision(
        id: &str,
        time: &str,
        customer: &str,
        reps: &[(&str, Option<&str>)],
        intruder: Option<&str>,
    ) -> String {
        let reps: Vec<serde_json::Value> = reps
            .iter()
            .map(|(id, team)| match team {
                Some(t) => serde_json::json!({"id": id, "team": t}),
                None => serde_json::json!({"id": id}),
            })
            .collect();
        let mut data = serde_json::json!({
            "rule": "unowned-contention", "severity": "medium",
            "customer": {"id": customer, "provisional": false}, "reps": reps,
        });
        if let Some(i) = intruder {
            data["intruder"] = serde_json::json!({"id": i, "team": "t1"});
        }
        serde_json::json!({"specversion": "1.0", "id": id, "type": "leadguard.collision.detected",
            "time": time, "subject": customer, "data": data})
        .to_string()
    }

    fn withdrawal(id: &str, of: &str) -> String {
        serde_json::json!({"specversion": "1.0", "id": id, "type": "leadguard.output.withdrawn",
            "time": "2026-11-02T12:00:00+08:00", "subject": "C1",
            "data": {"withdrawn_id": of, "withdrawn_type": "leadguard.collision.detected", "reason": "late event"}})
        .to_string()
    }

    fn report(lines: &[String]) -> Report {
        let mut c = Collector::new();
        for (i, l) in lines.iter().enumerate() {
            c.push(l.as_bytes(), i as u64 + 1);
        }
        Report::compute(c, "test", 10)
    }

    const T: &str = "2026-11-02T10:00:00+08:00";

    #[test]
    fn withdrawn_outputs_are_not_counted_wherever_the_withdrawal_is() {
        let r = report(&[
            withdrawal("w1", "a1"),
            collision(
                "a1",
                T,
                "C1",
                &[("r1", Some("t1")), ("r2", Some("t1"))],
                Some("r2"),
            ),
            collision(
                "a2",
                T,
                "C2",
                &[("r1", Some("t1")), ("r3", Some("t2"))],
                Some("r3"),
            ),
            collision(
                "a3",
                T,
                "C3",
                &[("r2", Some("t1")), ("r3", Some("t2"))],
                Some("r3"),
            ),
            withdrawal("w2", "a3"),
            withdrawal("w3", "elsewhere"),
        ]);
        assert_eq!(r.collisions, 1);
        assert_eq!(r.reading.withdrawals, 3);
        assert_eq!(r.reading.withdrawn, 2);
        assert_eq!(r.reading.withdrawn_elsewhere, 1);
        assert_eq!(r.per_pair.shown.len(), 1);
        assert_eq!(r.per_pair.shown[0].label(), "r1 + r3");
        // r3 intruded twice, but one of them was withdrawn.
        assert!(r.repeat_offenders.shown.is_empty());
    }

    #[test]
    fn redeliveries_count_once() {
        let a = collision(
            "a1",
            T,
            "C1",
            &[("r1", Some("t1")), ("r2", Some("t1"))],
            Some("r2"),
        );
        let b = collision(
            "a2",
            T,
            "C1",
            &[("r1", Some("t1")), ("r2", Some("t1"))],
            Some("r2"),
        );
        let r = report(&[a.clone(), a.clone(), b, a]);
        assert_eq!(r.collisions, 2);
        assert_eq!(r.reading.duplicates, 2);
        assert_eq!(r.reading.outputs, 2);
        assert_eq!(r.repeat_offenders.shown[0].rep, "r2");
        assert_eq!(r.repeat_offenders.shown[0].collisions, 2);
        assert_eq!(r.repeat_offenders.shown[0].team, "t1");
    }

    #[test]
    fn every_pair_once_and_every_team_once_per_collision() {
        let r = report(&[collision(
            "a1",
            T,
            "C1",
            &[
                ("r1", Some("t1")),
                ("r2", Some("t1")),
                ("r3", None),
                ("r4", Some("t2")),
            ],
            None,
        )]);
        let pairs: Vec<String> = r.per_pair.shown.iter().map(|p| p.label()).collect();
        assert_eq!(
            pairs,
            ["r1 + r2", "r1 + r3", "r1 + r4", "r2 + r3", "r2 + r4", "r3 + r4"]
        );
        let teams: Vec<(&str, u64)> = r
            .per_team
            .iter()
            .map(|c| (c.label.as_str(), c.value))
            .collect();
        assert_eq!(teams, [(NO_TEAM, 1), ("t1", 1), ("t2", 1)]);
        assert_eq!(r.customers.shown[0].reps, ["r1", "r2", "r3", "r4"]);
    }

    #[test]
    fn days_are_read_in_each_outputs_own_offset_and_gaps_are_zero() {
        let r = report(&[
            collision(
                "a1",
                "2026-11-02T23:30:00+08:00",
                "C1",
                &[("r1", None), ("r2", None)],
                None,
            ),
            // 2026-11-03T01:30+08:00, but written in UTC: the output's own day is the 2nd.
            collision(
                "a2",
                "2026-11-02T17:30:00Z",
                "C2",
                &[("r1", None), ("r2", None)],
                None,
            ),
            collision(
                "a3",
                "2026-11-05T09:00:00+08:00",
                "C3",
                &[("r1", None), ("r2", None)],
                None,
            ),
        ]);
        let days: Vec<(&str, u64)> = r
            .per_day
            .iter()
            .map(|c| (c.label.as_str(), c.value))
            .collect();
        assert_eq!(
            days,
            [
                ("2026-11-02", 2),
                ("2026-11-03", 0),
                ("2026-11-04", 0),
                ("2026-11-05", 1)
            ]
        );
    }

    #[test]
    fn bad_lines_are_listed_and_reading_goes_on() {
        let good = collision("a1", T, "C1", &[("r1", None), ("r2", None)], None);
        let r = report(&[
            "{\"id\":".to_string(),
            good,
            "[1]".to_string(),
            String::new(),
            r#"{"id":"x","type":"leadguard.collision.detected","time":"2026-11-02T10:00:00+08:00","data":{"rule":"r","severity":"low","reps":[{"team":"t"}]}}"#.to_string(),
            r#"{"id":"y","type":"com.example.other","time":"2026-11-02T10:00:00+08:00","data":{}}"#.to_string(),
        ]);
        assert_eq!(r.collisions, 1);
        assert_eq!(r.reading.malformed, 4);
        let lines: Vec<u64> = r.reading.malformed_listed.iter().map(|m| m.line).collect();
        assert_eq!(lines, [1, 3, 5, 6]);
        assert!(
            r.reading.malformed_listed[2]
                .reason
                .contains("data.reps[0]"),
            "{:?}",
            r.reading.malformed_listed[2]
        );
    }

    #[test]
    fn rankings_are_cut_at_top_with_the_total_kept() {
        let lines: Vec<String> = (0..15)
            .map(|i| {
                collision(
                    &format!("a{i}"),
                    T,
                    &format!("C{i}"),
                    &[("r0", None), (&format!("r{}", i + 1), None)],
                    None,
                )
            })
            .collect();
        let r = report(&lines);
        assert_eq!(r.per_pair.total, 15);
        assert_eq!(r.per_pair.shown.len(), 10);
        assert_eq!(r.customers.total, 15);
    }
}
