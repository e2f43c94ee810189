//! Output data written as JSON by hand, one writer per data type.
//!
//! Rendering `data` through serde_json cost about 8,000 instructions an output, a quarter of
//! the core's work on the benchmark stream: every field name went through the string escaper,
//! and every piece through serde's chain of calls. These writers put field names and
//! punctuation down as they are and escape only the values, eight bytes at a time
//! ([`push_str`]). They write exactly the bytes serde_json writes for the same value with the
//! types' `Serialize` derives (field order, absent optional fields skipped, numbers, escapes):
//! an output's id is a hash of those bytes, and it must not change with the way they are
//! written. The derives stay as the reference the property tests below compare against.

use super::{
    ClaimData, CollisionData, CustomerData, EvidenceData, HoldData, OutTime, OwnerData,
    ReassignmentData, RejectedData, RepData, ScoreData, Text, TextRepr, WindowData, WithdrawnData,
};
use crate::json::push_str;

/// Output data that writes itself as one JSON value.
pub trait WriteJson {
    fn write_json(&self, out: &mut String);
}

/// An object being written: its members in order, separated by commas.
struct Object<'a> {
    out: &'a mut String,
    empty: bool,
}

// The small methods are always inlined: then a field name's length is known where it is
// written, and copying it takes a few moves instead of a call (2.4% of the core's instructions
// on the benchmark stream when they were calls).
impl<'a> Object<'a> {
    fn begin(out: &'a mut String) -> Object<'a> {
        out.push('{');
        Object { out, empty: true }
    }

    /// Writes `"key":` (field names are plain ASCII, nothing to escape) and returns the buffer
    /// for the value.
    #[inline(always)]
    fn key(&mut self, key: &str) -> &mut String {
        if !std::mem::replace(&mut self.empty, false) {
            self.out.push(',');
        }
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
        self.out
    }

    #[inline(always)]
    fn str(&mut self, key: &str, value: &str) -> &mut Self {
        push_str(self.key(key), value);
        self
    }

    #[inline(always)]
    fn opt_str(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.str(key, v);
        }
        self
    }

    #[inline(always)]
    fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key).push_str(if value { "true" } else { "false" });
        self
    }

    #[inline(always)]
    fn number(&mut self, key: &str, value: impl itoa::Integer) -> &mut Self {
        let mut digits = itoa::Buffer::new();
        self.key(key).push_str(digits.format(value));
        self
    }

    #[inline(always)]
    fn opt_number(&mut self, key: &str, value: Option<impl itoa::Integer>) -> &mut Self {
        if let Some(v) = value {
            self.number(key, v);
        }
        self
    }

    #[inline(always)]
    fn value(&mut self, key: &str, value: &impl WriteJson) -> &mut Self {
        value.write_json(self.key(key));
        self
    }

    #[inline(always)]
    fn opt_value(&mut self, key: &str, value: Option<&impl WriteJson>) -> &mut Self {
        if let Some(v) = value {
            self.value(key, v);
        }
        self
    }

    fn list<T: WriteJson>(&mut self, key: &str, items: &[T]) -> &mut Self {
        let out = self.key(key);
        out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            item.write_json(out);
        }
        out.push(']');
        self
    }

    fn end(&mut self) {
        self.out.push('}');
    }
}

impl WriteJson for OutTime {
    fn write_json(&self, out: &mut String) {
        // RFC 3339 text (or, outside the zone database's range, a number) has nothing to
        // escape.
        out.push('"');
        self.t.push_rfc3339_in(self.tz, out);
        out.push('"');
    }
}

impl WriteJson for Text {
    fn write_json(&self, out: &mut String) {
        match &self.0 {
            TextRepr::Ready(text) => push_str(out, text),
            // Written whole into a reused string, then escaped once.
            TextRepr::Later(_) => {
                thread_local! {
                    static TEXT: std::cell::RefCell<String> =
                        const { std::cell::RefCell::new(String::new()) };
                }
                TEXT.with_borrow_mut(|text| {
                    text.clear();
                    self.push_to(text);
                    push_str(out, text);
                })
            }
        }
    }
}

impl WriteJson for RepData {
    fn write_json(&self, out: &mut String) {
        Object::begin(out)
            .str("id", &self.id)
            .opt_str("team", self.team.as_deref())
            .opt_str("role", self.role.as_deref())
            .end();
    }
}

impl WriteJson for CustomerData {
    fn write_json(&self, out: &mut String) {
        Object::begin(out)
            .str("id", &self.id)
            .bool("provisional", self.provisional)
            .opt_str("region", self.region.as_deref())
            .opt_str("industry", self.industry.as_deref())
            .opt_str("tier", self.tier.as_deref())
            .end();
    }
}

impl WriteJson for EvidenceData {
    fn write_json(&self, out: &mut String) {
        Object::begin(out)
            .str("event_id", self.event_id.as_str())
            .str("source", &self.source)
            .str("kind", self.kind)
            .opt_str("direction", self.direction)
            .str("rep", &self.rep)
            .value("occurred_at", &self.occurred_at)
            .end();
    }
}

impl WriteJson for OwnerData {
    fn write_json(&self, out: &mut String) {
        Object::begin(out)
            .value("rep", &self.rep)
            .str("since", &self.since)
            .str("protected_until", &self.protected_until)
            .str("via", self.via)
            .str("origin_event", self.origin_event.as_str())
            .end();
    }
}

impl WriteJson for WindowData {
    fn write_json(&self, out: &mut String) {
        Object::begin(out)
            .str("from", &self.from)
            .str("to", &self.to)
            .end();
    }
}

impl WriteJson for CollisionData {
    fn write_json(&self, out: &mut String) {
        Object::begin(out)
            .str("rule", &self.rule)
            .str("rule_type", self.rule_type)
            .str("severity", self.severity)
            .value("customer", &self.customer)
            .opt_value("owner", self.owner.as_ref())
            .list("reps", &self.reps)
            .opt_value("intruder", self.intruder.as_ref())
            .list("evidence", &self.evidence)
            .value("window", &self.window)
            .str("reason", &self.reason)
            .end();
    }
}

impl WriteJson for ClaimData {
    fn write_json(&self, out: &mut String) {
        Object::begin(out)
            .value("customer", &self.customer)
            .value("rep", &self.rep)
            .str("via", self.via)
            .value("protected_until", &self.protected_until)
            .opt_str("pool", self.pool.as_deref())
            .opt_str("strategy", self.strategy)
            .opt_number("eligible_reps", self.eligible_reps)
            .opt_value("previous_owner", self.previous_owner.as_ref())
            .list("evidence", &self.evidence)
            .value("reason", &self.reason)
            .end();
    }
}

impl WriteJson for HoldData {
    fn write_json(&self, out: &mut String) {
        Object::begin(out)
            .value("customer", &self.customer)
            .value("rep", &self.rep)
            .str("reason_code", self.reason_code)
            .str("rule", self.rule)
            .opt_str("pool", self.pool.as_deref())
            .value("at", &self.at)
            .opt_value("previous", self.previous.as_ref())
            .list("evidence", &self.evidence)
            .value("reason", &self.reason)
            .end();
    }
}

impl WriteJson for RejectedData {
    fn write_json(&self, out: &mut String) {
        Object::begin(out)
            .value("customer", &self.customer)
            .str("action", self.action)
            .value("rep", &self.rep)
            .str("reason_code", self.reason_code)
            .opt_value("owner", self.owner.as_ref())
            .list("evidence", &self.evidence)
            .value("reason", &self.reason)
            .end();
    }
}

impl WriteJson for ScoreData {
    fn write_json(&self, out: &mut String) {
        Object::begin(out)
            .value("rep", &self.rep)
            .number("contacts", self.contacts)
            .number("progress", self.progress)
            .number("recency", self.recency)
            .str("first_contact", &self.first_contact)
            .number("total", self.total)
            .end();
    }
}

impl WriteJson for ReassignmentData {
    fn write_json(&self, out: &mut String) {
        Object::begin(out)
            .value("customer", &self.customer)
            .str("rule", &self.rule)
            .str("resolution", self.resolution)
            .opt_value("from_rep", self.from_rep.as_ref())
            .value("to_rep", &self.to_rep)
            .str("collision_id", &self.collision_id)
            .list("scores", &self.scores)
            .value("window", &self.window)
            .list("evidence", &self.evidence)
            .value("reason", &self.reason)
            .end();
    }
}

impl WriteJson for WithdrawnData {
    fn write_json(&self, out: &mut String) {
        Object::begin(out)
            .str("withdrawn_id", &self.withdrawn_id)
            .str("withdrawn_type", self.withdrawn_type)
            .str("reason", &self.reason)
            .end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventId;
    use crate::time::Timestamp;
    use proptest::option::of;
    use proptest::prelude::*;
    use serde::Serialize;
    use std::sync::Arc;

    /// Text with what JSON must escape (quotes, backslashes, control characters) and
    /// characters beyond ASCII, often enough to matter.
    fn text() -> impl Strategy<Value = String> {
        "[a-z0-9 \"\\\\\u{0}-\u{1f}\u{7f}é公司😀-]{0,24}"
    }

    fn word() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["call", "first_touch", "ownership.protection", ""])
    }

    fn shared() -> impl Strategy<Value = Arc<str>> {
        text().prop_map(Arc::from)
    }

    fn time() -> impl Strategy<Value = OutTime> {
        // From before 1970 to beyond chrono's range (written as a number), in three zones.
        let zone = prop::sample::select(vec![
            chrono_tz::Asia::Shanghai,
            chrono_tz::Europe::Berlin,
            chrono_tz::UTC,
        ]);
        (
            prop_oneof![-1_000_000_000_000i64..5_000_000_000_000, any::<i64>()],
            zone,
        )
            .prop_map(|(ms, tz)| OutTime {
                t: Timestamp(ms),
                tz,
            })
    }

    fn reason() -> impl Strategy<Value = Text> {
        (text(), any::<bool>()).prop_map(|(s, later)| {
            if later {
                Text::later(move |out| crate::output::say!(out, s, ": ", s.len()))
            } else {
                Text::from(s)
            }
        })
    }

    fn rep() -> impl Strategy<Value = RepData> {
        (shared(), of(shared()), of(shared())).prop_map(|(id, team, role)| RepData {
            id,
            team,
            role,
        })
    }

    fn customer() -> impl Strategy<Value = CustomerData> {
        (
            shared(),
            any::<bool>(),
            of(shared()),
            of(shared()),
            of(shared()),
        )
            .prop_map(|(id, provisional, region, industry, tier)| CustomerData {
                id,
                provisional,
                region,
                industry,
                tier,
            })
    }

    fn evidence() -> impl Strategy<Value = Vec<EvidenceData>> {
        let one = (text(), shared(), word(), of(word()), shared(), time()).prop_map(
            |(id, source, kind, direction, rep, occurred_at)| EvidenceData {
                event_id: EventId::new(&id),
                source,
                kind,
                direction,
                rep,
                occurred_at,
            },
        );
        prop::collection::vec(one, 0..3)
    }

    fn window() -> impl Strategy<Value = WindowData> {
        (text(), text()).prop_map(|(from, to)| WindowData { from, to })
    }

    /// Requires the hand writer to write serde_json's bytes.
    fn same<T: WriteJson + Serialize>(data: &T) -> Result<(), TestCaseError> {
        let mut ours = String::new();
        data.write_json(&mut ours);
        let theirs = serde_json::to_string(data).expect("serializes");
        prop_assert_eq!(ours, theirs);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn collisions_are_written_as_serde_json_writes_them(
            (rule, rule_type, severity, customer) in (shared(), word(), word(), customer()),
            owner in of((rep(), text(), text(), word(), text())),
            (reps, intruder, evidence, window, reason) in (
                prop::collection::vec(rep(), 0..3), of(rep()), evidence(), window(), text()),
        ) {
            let owner = owner.map(|(rep, since, protected_until, via, origin)| OwnerData {
                rep,
                since,
                protected_until,
                via,
                origin_event: EventId::new(&origin),
            });
            same(&CollisionData {
                rule, rule_type, severity, customer, owner, reps, intruder, evidence, window, reason,
            })?;
        }

        #[test]
        fn claims_holds_and_refusals_are_written_as_serde_json_writes_them(
            (customer, rep, word_a, word_b) in (customer(), rep(), word(), word()),
            (at, previous, pool, strategy, eligible_reps) in
                (time(), of(time()), of(text()), of(word()), of(any::<usize>())),
            (other, evidence, reason) in (of(rep()), evidence(), reason()),
        ) {
            let pool: Option<Arc<str>> = pool.map(Into::into);
            same(&ClaimData {
                customer: customer.clone(),
                rep: rep.clone(),
                via: word_a,
                protected_until: at,
                pool: pool.clone(),
                strategy,
                eligible_reps,
                previous_owner: other.clone(),
                evidence: evidence.clone(),
                reason: reason.clone(),
            })?;
            same(&HoldData {
                customer: customer.clone(),
                rep: rep.clone(),
                reason_code: word_a,
                rule: word_b,
                pool,
                at,
                previous,
                evidence: evidence.clone(),
                reason: reason.clone(),
            })?;
            same(&RejectedData {
                customer,
                action: word_a,
                rep,
                reason_code: word_b,
                owner: other,
                evidence,
                reason,
            })?;
        }

        #[test]
        fn reassignments_and_withdrawals_are_written_as_serde_json_writes_them(
            (customer, rule, resolution, from_rep, to_rep) in
                (customer(), shared(), word(), of(rep()), rep()),
            scores in prop::collection::vec(
                (rep(), any::<u32>(), any::<u32>(), any::<u32>(), text(), any::<u32>()), 0..3),
            (collision_id, window, evidence, reason) in (text(), window(), evidence(), reason()),
        ) {
            let scores = scores
                .into_iter()
                .map(|(rep, contacts, progress, recency, first_contact, total)| ScoreData {
                    rep, contacts, progress, recency, first_contact, total,
                })
                .collect();
            same(&ReassignmentData {
                customer, rule, resolution, from_rep, to_rep,
                collision_id: collision_id.clone(),
                scores, window, evidence,
                reason: reason.clone(),
            })?;
            same(&WithdrawnData {
                withdrawn_id: collision_id,
                withdrawn_type: resolution,
                reason: reason.to_string(),
            })?;
        }
    }
}
