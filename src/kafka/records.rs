//! What leadguard writes to Kafka, as plain data: output events in the CloudEvents Kafka
//! binding, dead letters, and re-keyed input. No client code here, so all of it is unit-tested.

use crate::config::SourceMapping;
use crate::event::Event;
use crate::ingest::{Ingest, Rejection};
use crate::output::{Output, OutputType};

/// Header names on re-keyed input and dead letters: where the message was first read.
pub const H_TOPIC: &str = "leadguard_source_topic";
pub const H_PARTITION: &str = "leadguard_source_partition";
pub const H_OFFSET: &str = "leadguard_source_offset";
pub const H_REASON: &str = "leadguard_reason";
pub const H_DETAIL: &str = "leadguard_detail";
pub const H_TRUNCATED: &str = "leadguard_truncated";

/// One record to produce. `partition: None` lets the producer's partitioner place it by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(&'static str, Vec<u8>)>,
    /// Message timestamp (ms since the epoch); `None`: the time it is produced.
    pub timestamp: Option<i64>,
}

/// Where an input message was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinates {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl Coordinates {
    fn headers(&self) -> Vec<(&'static str, Vec<u8>)> {
        vec![
            (H_TOPIC, self.topic.as_bytes().to_vec()),
            (H_PARTITION, self.partition.to_string().into_bytes()),
            (H_OFFSET, self.offset.to_string().into_bytes()),
        ]
    }

    /// Reads the coordinates a re-keyed message carries.
    pub fn from_headers<'h>(mut get: impl FnMut(&str) -> Option<&'h [u8]>) -> Option<Coordinates> {
        let text = |b: &'h [u8]| std::str::from_utf8(b).ok();
        Some(Coordinates {
            topic: text(get(H_TOPIC)?)?.to_string(),
            partition: text(get(H_PARTITION)?)?.parse().ok()?,
            offset: text(get(H_OFFSET)?)?.parse().ok()?,
        })
    }
}

/// Output topics by output type.
#[derive(Debug, Clone)]
pub struct OutputTopics {
    pub alerts: String,
    pub ownership_changes: String,
}

/// Whether an output type says who owns a customer now (the CRM applies these), as opposed to
/// telling people something (collisions, recommendations, warnings, SLA breaches, dormancy).
pub fn changes_ownership(ty: OutputType) -> bool {
    match ty {
        OutputType::OwnershipClaimed
        | OutputType::OwnershipAssigned
        | OutputType::OwnershipReleased
        | OutputType::OwnershipExtended
        | OutputType::OwnershipRejected
        | OutputType::OwnershipReassigned => true,
        OutputType::Collision
        | OutputType::Withdrawn
        | OutputType::ReassignmentRecommended
        | OutputType::ReclaimWarning
        | OutputType::SlaBreached
        | OutputType::CustomerDormant => false,
    }
}

/// The CloudEvents Kafka binding of one output: the structured JSON event as the value (the
/// same line `leadguard replay` writes), its attributes as `ce_*` headers too (so consumers can
/// route without parsing), and the customer key as the message key (so one customer's outputs
/// stay in order on one partition).
pub fn output_record(o: &Output, source: &str, tz: chrono_tz::Tz, topics: &OutputTopics) -> Record {
    let ty = match o.ty() {
        // A withdrawal goes where the output it withdraws went.
        OutputType::Withdrawn => {
            #[derive(serde::Deserialize)]
            struct Withdrawn<'a> {
                withdrawn_type: &'a str,
            }
            serde_json::from_str::<Withdrawn<'_>>(o.data())
                .ok()
                .and_then(|w| {
                    OutputType::ALL
                        .into_iter()
                        .find(|t| t.as_str() == w.withdrawn_type)
                })
                .unwrap_or(OutputType::Collision)
        }
        ty => ty,
    };
    let topic = if changes_ownership(ty) {
        &topics.ownership_changes
    } else {
        &topics.alerts
    };
    let time = o.time().to_rfc3339_in(tz);
    Record {
        topic: topic.clone(),
        partition: None,
        key: Some(o.subject().as_bytes().to_vec()),
        value: Some(o.to_cloudevent(source, tz).into_bytes()),
        headers: vec![
            (
                "content-type",
                b"application/cloudevents+json; charset=UTF-8".to_vec(),
            ),
            ("ce_specversion", b"1.0".to_vec()),
            ("ce_id", o.id().as_bytes().to_vec()),
            ("ce_source", source.as_bytes().to_vec()),
            ("ce_type", o.ty().as_str().as_bytes().to_vec()),
            ("ce_time", time.into_bytes()),
            ("ce_subject", o.subject().as_bytes().to_vec()),
        ],
        // Produce time, not event time: brokers apply retention by message timestamp.
        timestamp: None,
    }
}

/// A refused input: the original bytes (the first `limit` of them) under the original key,
/// with the reason, the detail and where it was read in headers. Fix the publisher, then the
/// value can be published again as it is.
pub fn dead_letter(
    topic: &str,
    rejection: &Rejection,
    key: Option<&[u8]>,
    bytes: &[u8],
    limit: usize,
    at: &Coordinates,
) -> Record {
    let truncated = bytes.len() > limit;
    let mut headers = vec![
        (H_REASON, rejection.reason.as_str().as_bytes().to_vec()),
        (H_DETAIL, rejection.detail.as_bytes().to_vec()),
    ];
    headers.extend(at.headers());
    if truncated {
        headers.push((H_TRUNCATED, b"true".to_vec()));
    }
    Record {
        topic: topic.to_string(),
        partition: None,
        key: key.map(<[u8]>::to_vec),
        value: Some(bytes[..bytes.len().min(limit)].to_vec()),
        headers,
        timestamp: None,
    }
}

/// The key that puts every event of one customer on one partition: the CRM customer id, or
/// for an event without one, its first identifier as the engine names a provisional customer
/// (`phone:+8613800138000`, then `email:…`, then `company:…`).
pub fn routing_key(event: &Event) -> String {
    let c = event.customer();
    if let Some(id) = &c.id {
        return id.clone();
    }
    for (kind, value) in [
        ("phone", &c.phone),
        ("email", &c.email),
        ("company", &c.company),
    ] {
        if let Some(v) = value {
            return format!("{kind}:{v}");
        }
    }
    // The parser refuses events without any identifier; keep a stable key all the same.
    String::new()
}

/// What the router does with one input message.
#[derive(Debug)]
pub enum Routed {
    /// Forward to the repartition topic.
    Forward(Record),
    /// Refused: goes to the dead-letter topic.
    Dead(Record),
    /// A blank message: nothing to do.
    Skip,
}

/// Re-keys one input message by its customer: the original bytes go to the repartition topic
/// under the routing key, keeping the message timestamp and the original coordinates.
#[allow(clippy::too_many_arguments)]
pub fn route(
    ingest: &mut Ingest,
    mapping: Option<&SourceMapping>,
    default_source: &str,
    bytes: &[u8],
    key: Option<&[u8]>,
    timestamp: Option<i64>,
    at: &Coordinates,
    repartition: &str,
    dead_letters: &str,
) -> Routed {
    let limit = ingest.rules().settings.max_message_bytes;
    let truncated = bytes.len() > limit;
    let parsed = crate::pipeline::parse_message(
        ingest,
        mapping,
        default_source,
        &bytes[..bytes.len().min(limit)],
        truncated,
    );
    match parsed {
        None => Routed::Skip,
        Some(Err(rejection)) => {
            Routed::Dead(dead_letter(dead_letters, &rejection, key, bytes, limit, at))
        }
        Some(Ok(event)) => Routed::Forward(Record {
            topic: repartition.to_string(),
            partition: None,
            key: Some(routing_key(&event).into_bytes()),
            value: Some(bytes.to_vec()),
            headers: at.headers(),
            timestamp,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Rules;
    use crate::ingest::RejectReason;
    use crate::time::Timestamp;
    use std::sync::Arc;

    fn at() -> Coordinates {
        Coordinates {
            topic: "crm.activity".into(),
            partition: 3,
            offset: 42,
        }
    }

    fn header<'r>(r: &'r Record, name: &str) -> Option<&'r [u8]> {
        r.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
    }

    #[test]
    fn an_output_is_a_structured_cloudevent_keyed_by_customer() {
        let o = Output::from_rendered(
            OutputType::Collision,
            Arc::from("C1"),
            Timestamp(1_793_000_000_000),
            r#"{"rule":"x"}"#.to_string(),
            None,
        );
        let topics = OutputTopics {
            alerts: "alerts".into(),
            ownership_changes: "owners".into(),
        };
        let r = output_record(&o, "urn:leadguard", chrono_tz::Asia::Shanghai, &topics);
        assert_eq!(r.topic, "alerts");
        assert_eq!(r.key.as_deref(), Some(&b"C1"[..]));
        let value: serde_json::Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
        assert_eq!(value["id"], o.id());
        assert_eq!(header(&r, "ce_id"), Some(o.id().as_bytes()));
        assert_eq!(
            header(&r, "ce_type"),
            Some(&b"leadguard.collision.detected"[..])
        );
        assert_eq!(header(&r, "ce_subject"), Some(&b"C1"[..]));
        assert_eq!(
            header(&r, "content-type"),
            Some(&b"application/cloudevents+json; charset=UTF-8"[..])
        );
    }

    #[test]
    fn a_withdrawal_follows_the_output_it_withdraws() {
        let topics = OutputTopics {
            alerts: "alerts".into(),
            ownership_changes: "owners".into(),
        };
        let withdraw = |ty: OutputType| {
            Output::new(
                OutputType::Withdrawn,
                Arc::from("C1"),
                Timestamp(0),
                &crate::output::WithdrawnData {
                    withdrawn_id: "abc".into(),
                    withdrawn_type: ty.as_str(),
                    reason: "late".into(),
                },
                None,
            )
        };
        let tz = chrono_tz::UTC;
        assert_eq!(
            output_record(&withdraw(OutputType::OwnershipClaimed), "s", tz, &topics).topic,
            "owners"
        );
        assert_eq!(
            output_record(&withdraw(OutputType::Collision), "s", tz, &topics).topic,
            "alerts"
        );
        assert_eq!(
            output_record(&withdraw(OutputType::OwnershipAssigned), "s", tz, &topics).topic,
            "owners"
        );
        assert_eq!(
            output_record(&withdraw(OutputType::SlaBreached), "s", tz, &topics).topic,
            "alerts"
        );
    }

    #[test]
    fn a_dead_letter_keeps_the_original_bytes_and_says_why_and_where() {
        let rejection = Rejection::new(RejectReason::MalformedJson, "expected value");
        let r = dead_letter("dlq", &rejection, Some(b"k"), b"{not json", 1000, &at());
        assert_eq!(r.value.as_deref(), Some(&b"{not json"[..]));
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(header(&r, H_REASON), Some(&b"malformed_json"[..]));
        assert_eq!(header(&r, H_OFFSET), Some(&b"42"[..]));
        assert_eq!(header(&r, H_TRUNCATED), None);
        let long = dead_letter("dlq", &rejection, None, &[b'x'; 50], 10, &at());
        assert_eq!(long.value.as_ref().unwrap().len(), 10);
        assert_eq!(header(&long, H_TRUNCATED), Some(&b"true"[..]));
        let back = Coordinates::from_headers(|n| header(&r, n)).expect("coordinates");
        assert_eq!(back, at());
    }

    #[test]
    fn routing_uses_the_customer_id_else_the_first_identifier() {
        let rules = Arc::new(Rules::embedded());
        let mut ingest = Ingest::new(rules);
        let with_id = br#"{"event_id":"1","kind":"call","occurred_at":"2026-11-02T09:00:00+08:00","rep":{"id":"r1"},"customer":{"id":"C9","phone":"138 0013 8000"}}"#;
        let without = br#"{"event_id":"2","kind":"call","occurred_at":"2026-11-02T09:00:00+08:00","rep":{"id":"r1"},"customer":{"phone":"138-0013-8000","email":"a@b.cn"}}"#;
        let route_one = |ingest: &mut Ingest, bytes: &[u8]| {
            route(
                ingest,
                None,
                "default",
                bytes,
                None,
                Some(7),
                &at(),
                "rep",
                "dlq",
            )
        };
        match route_one(&mut ingest, with_id) {
            Routed::Forward(r) => {
                assert_eq!(r.key.as_deref(), Some(&b"C9"[..]));
                assert_eq!(r.value.as_deref(), Some(&with_id[..]), "original bytes");
                assert_eq!(r.timestamp, Some(7));
                assert_eq!(Coordinates::from_headers(|n| header(&r, n)), Some(at()));
            }
            other => panic!("forwarded, got {other:?}"),
        }
        match route_one(&mut ingest, without) {
            Routed::Forward(r) => assert_eq!(r.key.as_deref(), Some(&b"phone:+8613800138000"[..])),
            other => panic!("forwarded, got {other:?}"),
        }
        match route_one(&mut ingest, b"{oops") {
            Routed::Dead(r) => assert_eq!(r.topic, "dlq"),
            other => panic!("dead letter, got {other:?}"),
        }
        assert!(matches!(route_one(&mut ingest, b"  "), Routed::Skip));
    }
}
