//! Metric values after a known stream: every number below is worked out by hand from the
//! stream (see the comment on each line of `STREAM`), then read back from the Prometheus text
//! the registry renders.

use leadguard::config::{Roster, Rules};
use leadguard::pipeline::{Origin, Pipeline};
use leadguard::telemetry::{self, Metrics, FILE_PARTITION};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const RULES: &str = "
settings: {allowed_lateness: 10m}
ownership:
  protection: 10d
  first_touch: {enabled: true, kinds: [visit]}
collisions:
  - {id: protected-contact, type: protected_contact, severity: high, cooldown: 1h}
  - {id: contention, type: multi_rep, min_reps: 2, window: 7d, severity: medium, cooldown: 1d}
";

const ROSTER: &str = "reps:
  - {id: r-a, team: east-1, role: sales}
  - {id: r-b, team: west-1, role: sales}
  - {id: r-c, team: west-1, role: sales}
";

const STREAM: &[&str] = &[
    // C1 assigned to r-a (east-1): an ownership change (assign).
    r#"{"event_id":"o1","kind":"assign","occurred_at":"2026-11-02T09:00:00+08:00","customer":{"id":"C1"},"rep":{"id":"r-a"},"source":"crm"}"#,
    // r-b (west-1) calls protected C1: protected-contact, team west-1.
    r#"{"event_id":"k1","kind":"call","occurred_at":"2026-11-02T09:10:00+08:00","rep":{"id":"r-b"},"customer":{"id":"C1"},"source":"cc"}"#,
    // Again within the 1h cooldown: no alert.
    r#"{"event_id":"k2","kind":"call","occurred_at":"2026-11-02T09:20:00+08:00","rep":{"id":"r-b"},"customer":{"id":"C1"},"source":"cc"}"#,
    // A redelivery of k1 (within the allowed lateness): a duplicate.
    r#"{"event_id":"k1","kind":"call","occurred_at":"2026-11-02T09:10:00+08:00","rep":{"id":"r-b"},"customer":{"id":"C1"},"source":"cc"}"#,
    // Two reps email unowned C2: contention, intruder r-c (west-1).
    r#"{"event_id":"m1","kind":"email","occurred_at":"2026-11-02T09:30:00+08:00","rep":{"id":"r-b"},"customer":{"id":"C2","email":"buyer@example.com"},"source":"mail"}"#,
    r#"{"event_id":"m2","kind":"email","occurred_at":"2026-11-02T09:40:00+08:00","rep":{"id":"r-c"},"customer":{"email":"Buyer@Example.com"},"source":"mail"}"#,
    // r-c visits unowned C3: a first-touch claim (ownership change `first_touch`).
    r#"{"event_id":"v1","kind":"visit","occurred_at":"2026-11-02T10:00:00+08:00","rep":{"id":"r-c"},"customer":{"id":"C3"},"source":"crm"}"#,
    // C4: a call at 10:05, then one at 09:57 arriving after it: reordered (watermark 09:55).
    r#"{"event_id":"k3","kind":"call","occurred_at":"2026-11-02T10:05:00+08:00","rep":{"id":"r-a"},"customer":{"id":"C4"},"source":"cc"}"#,
    r#"{"event_id":"k4","kind":"call","occurred_at":"2026-11-02T09:57:00+08:00","rep":{"id":"r-a"},"customer":{"id":"C4"},"source":"cc"}"#,
    // An activity older than the watermark: refused (too_late).
    r#"{"event_id":"k5","kind":"call","occurred_at":"2026-11-02T09:40:00+08:00","rep":{"id":"r-b"},"customer":{"id":"C2"},"source":"cc"}"#,
    // An ownership event older than the watermark: applied at the watermark (assign).
    r#"{"event_id":"o2","kind":"assign","occurred_at":"2026-11-02T09:50:00+08:00","customer":{"id":"C5"},"rep":{"id":"r-b"},"source":"crm"}"#,
    // Broken messages, each refused with its own reason.
    r#"{"event_id":"x1","#,
    r#"{"event_id":"x2","kind":"teleport","occurred_at":"2026-11-02T10:05:00+08:00","rep":{"id":"r-a"},"customer":{"id":"C1"}}"#,
];

fn run_stream() -> (Arc<Metrics>, String) {
    let rules = Rules::from_texts([(Path::new("rules.yaml"), RULES)]).expect("rules");
    let roster = Roster::parse(ROSTER, Path::new("roster.yaml")).expect("roster");
    let mut p =
        Pipeline::new(Arc::new(rules), &roster, None, Vec::new(), Vec::new()).expect("pipeline");
    let metrics = Metrics::new();
    p.attach_metrics(metrics.clone(), false);
    for (i, line) in STREAM.iter().enumerate() {
        p.mark_received(Instant::now());
        let origin = Origin {
            input: "stream",
            line: i as u64 + 1,
        };
        p.handle_message(line.as_bytes(), false, origin, None)
            .expect("processed");
    }
    // The stream ends: ownership decisions waiting for the allowed lateness are made.
    p.end_of_input().expect("processed");
    metrics.report_partition(FILE_PARTITION, p.report(0));
    let text = metrics.render();
    (metrics, text)
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metric_values_after_a_known_stream() {
    let (_, text) = run_stream();
    let expected: &[(&str, f64)] = &[
        (r#"leadguard_events_total{kind="assign",source="crm"}"#, 2.0),
        (r#"leadguard_events_total{kind="visit",source="crm"}"#, 1.0),
        (r#"leadguard_events_total{kind="call",source="cc"}"#, 4.0),
        (r#"leadguard_events_total{kind="email",source="mail"}"#, 2.0),
        ("leadguard_duplicate_events_total", 1.0),
        (r#"leadguard_rejected_events_total{reason="too_late"}"#, 1.0),
        (
            r#"leadguard_rejected_events_total{reason="malformed_json"}"#,
            1.0,
        ),
        (
            r#"leadguard_rejected_events_total{reason="unknown_kind"}"#,
            1.0,
        ),
        (r#"leadguard_late_events_total{outcome="reordered"}"#, 1.0),
        (
            r#"leadguard_late_events_total{outcome="applied_at_watermark"}"#,
            1.0,
        ),
        (r#"leadguard_late_events_total{outcome="refused"}"#, 1.0),
        ("leadguard_late_ownership_events_total", 1.0),
        ("leadguard_reordered_events_total", 1.0),
        (
            r#"leadguard_alerts_total{rule="protected-contact",severity="high",team="west-1"}"#,
            1.0,
        ),
        (
            r#"leadguard_alerts_total{rule="contention",severity="medium",team="west-1"}"#,
            1.0,
        ),
        (
            r#"leadguard_ownership_changes_total{reason="crm_assign"}"#,
            2.0,
        ),
        (
            r#"leadguard_ownership_changes_total{reason="first_touch"}"#,
            1.0,
        ),
        ("leadguard_ownership_claims_total", 1.0),
        ("leadguard_withdrawn_outputs_total", 0.0),
        ("leadguard_outputs_total", 3.0),
        ("leadguard_customers_tracked", 5.0),
        ("leadguard_customers_owned", 3.0),
        // One housekeeping timer per customer holding events.
        // One housekeeping timer per customer, plus the reclaim deadline of each owner (C1,
        // C3, C5).
        ("leadguard_timers_pending", 8.0),
        (
            r#"leadguard_partition_state_customers{partition="file"}"#,
            5.0,
        ),
        (r#"leadguard_partition_lag_messages{partition="file"}"#, 0.0),
        // Each of the 3 outputs was timed from its message's receipt; event time → output
        // only in live mode.
        // The claim is decided when the input ends, not on receipt of a message: two outputs
        // have a receipt time.
        ("leadguard_receipt_to_output_seconds_count", 2.0),
        ("leadguard_event_to_output_seconds_count", 0.0),
        (r#"leadguard_rule_reloads_total{outcome="ok"}"#, 0.0),
        (r#"leadguard_rule_reloads_total{outcome="failed"}"#, 0.0),
        (
            &format!(
                r#"leadguard_build_info{{version="{}"}}"#,
                env!("CARGO_PKG_VERSION")
            ),
            1.0,
        ),
    ];
    let mut wrong = Vec::new();
    for (series, want) in expected {
        let got = value(&text, series);
        if got != Some(*want) {
            wrong.push(format!("{series}: want {want}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}\n\n{text}", wrong.join("\n"));
    // Exactly these alert and rejection series, nothing else.
    let count = |prefix: &str| text.lines().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(count("leadguard_alerts_total{"), 2, "{text}");
    assert_eq!(count("leadguard_rejected_events_total{"), 3, "{text}");
}

#[test]
fn no_customer_or_rep_identifier_is_a_label() {
    let (_, text) = run_stream();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        for id in [
            "C1", "C2", "C3", "C4", "C5", "r-a", "r-b", "r-c", "buyer", "k1", "o1",
        ] {
            assert!(!line.contains(&format!("\"{id}")), "{id} in {line}");
        }
    }
}

#[test]
fn every_rendered_metric_is_a_named_constant() {
    let (metrics, _) = run_stream();
    metrics.rule_reload(true);
    metrics
        .notifications
        .with_label_values(&["wecom", "delivered"])
        .inc();
    metrics
        .notification_retries
        .with_label_values(&["wecom"])
        .inc();
    metrics
        .api_requests
        .with_label_values(&["/healthz", "200"])
        .inc();
    let text = metrics.render();
    let mut rendered: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    rendered.sort();
    let mut known: Vec<&str> = telemetry::ALL.to_vec();
    known.sort();
    assert_eq!(rendered, known, "rendered metrics vs telemetry::ALL");
    assert_eq!(
        value(&text, r#"leadguard_rule_reloads_total{outcome="ok"}"#),
        Some(1.0)
    );
}
