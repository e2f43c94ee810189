//! Metrics (one long-lived Prometheus registry) and log setup.
//!
//! Every metric name is a constant here, one place per concept: the dashboard and alerting
//! rules in `docker/` are checked against these constants by `tests/docker_files.rs`. No
//! customer or rep identifier is ever a label: labels are sources, kinds, reasons, outcomes,
//! rules, severities, teams, partitions, routes and status codes, all bounded sets.
//!
//! Two kinds of metrics live in the registry:
//! - edge metrics, updated where things happen: alerts (by rule, severity and team, counted as
//!   the outputs are written), latency histograms, rule reloads, API requests, notifications;
//! - engine metrics, which the core keeps as plain counters ([`Stats`], [`StateSize`]) because
//!   it does no IO. Each engine host reports a [`PartitionReport`] from time to time
//!   ([`Metrics::report_partition`]) and a collector turns the latest reports into metrics when
//!   Prometheus scrapes (summed over partitions, or per partition where the label says so).

pub mod mask;

use crate::engine::{StateSize, Stats};
use crate::ingest::RejectReason;
use crate::output::{Output, OutputType};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Instant;

// Engine counters, reported by each partition.
pub const EVENTS_TOTAL: &str = "leadguard_events_total";
pub const DUPLICATES_TOTAL: &str = "leadguard_duplicate_events_total";
pub const REJECTED_TOTAL: &str = "leadguard_rejected_events_total";
pub const IDENTIFIERS_DROPPED_TOTAL: &str = "leadguard_identifiers_dropped_total";
pub const LATE_EVENTS_TOTAL: &str = "leadguard_late_events_total";
pub const LATE_OWNERSHIP_TOTAL: &str = "leadguard_late_ownership_events_total";
pub const REORDERED_TOTAL: &str = "leadguard_reordered_events_total";
pub const OWNERSHIP_CHANGES_TOTAL: &str = "leadguard_ownership_changes_total";
pub const CLAIMS_TOTAL: &str = "leadguard_ownership_claims_total";
pub const WITHDRAWN_TOTAL: &str = "leadguard_withdrawn_outputs_total";
pub const MERGES_TOTAL: &str = "leadguard_customer_merges_total";
pub const EVICTED_TOTAL: &str = "leadguard_customers_evicted_total";
pub const OUTPUTS_TOTAL: &str = "leadguard_outputs_total";
// Engine state, reported by each partition.
pub const CUSTOMERS_TRACKED: &str = "leadguard_customers_tracked";
pub const CUSTOMERS_OWNED: &str = "leadguard_customers_owned";
pub const CUSTOMERS_WAITING: &str = "leadguard_customers_waiting";
pub const IDENTIFIERS_INDEXED: &str = "leadguard_identifiers_indexed";
pub const TIMERS_PENDING: &str = "leadguard_timers_pending";
pub const LOG_ENTRIES: &str = "leadguard_window_entries";
pub const PARTITION_LAG: &str = "leadguard_partition_lag_messages";
pub const PARTITION_STATE_CUSTOMERS: &str = "leadguard_partition_state_customers";
// Edge metrics.
pub const ALERTS_TOTAL: &str = "leadguard_alerts_total";
pub const EVENT_TO_OUTPUT_SECONDS: &str = "leadguard_event_to_output_seconds";
pub const RECEIPT_TO_OUTPUT_SECONDS: &str = "leadguard_receipt_to_output_seconds";
pub const RULE_RELOADS_TOTAL: &str = "leadguard_rule_reloads_total";
pub const ROSTER_RELOADS_TOTAL: &str = "leadguard_roster_reloads_total";
pub const API_REQUESTS_TOTAL: &str = "leadguard_api_requests_total";
pub const NOTIFICATIONS_TOTAL: &str = "leadguard_notifications_total";
pub const NOTIFICATION_RETRIES_TOTAL: &str = "leadguard_notification_retries_total";
pub const STAGE_RESTARTS_TOTAL: &str = "leadguard_stage_restarts_total";
pub const BUILD_INFO: &str = "leadguard_build_info";

/// Every metric name above, for checks that compare dashboards and alert rules with the code.
pub const ALL: &[&str] = &[
    EVENTS_TOTAL,
    DUPLICATES_TOTAL,
    REJECTED_TOTAL,
    IDENTIFIERS_DROPPED_TOTAL,
    LATE_EVENTS_TOTAL,
    LATE_OWNERSHIP_TOTAL,
    REORDERED_TOTAL,
    OWNERSHIP_CHANGES_TOTAL,
    CLAIMS_TOTAL,
    WITHDRAWN_TOTAL,
    MERGES_TOTAL,
    EVICTED_TOTAL,
    OUTPUTS_TOTAL,
    CUSTOMERS_TRACKED,
    CUSTOMERS_OWNED,
    CUSTOMERS_WAITING,
    IDENTIFIERS_INDEXED,
    TIMERS_PENDING,
    LOG_ENTRIES,
    PARTITION_LAG,
    PARTITION_STATE_CUSTOMERS,
    ALERTS_TOTAL,
    EVENT_TO_OUTPUT_SECONDS,
    RECEIPT_TO_OUTPUT_SECONDS,
    RULE_RELOADS_TOTAL,
    ROSTER_RELOADS_TOTAL,
    API_REQUESTS_TOTAL,
    NOTIFICATIONS_TOTAL,
    NOTIFICATION_RETRIES_TOTAL,
    STAGE_RESTARTS_TOTAL,
    BUILD_INFO,
];

/// Why a Kafka stage restarted its partitions from what was committed (the `cause` label of
/// `leadguard_stage_restarts_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartCause {
    /// A batch could not be committed and was aborted.
    CommitFailed,
    /// Restoring the partitions' state (changelog, committed offsets) failed; tried again.
    RestoreFailed,
    /// The group took the partitions away before what was processed could be committed.
    PartitionsLost,
}

impl RestartCause {
    pub const ALL: [RestartCause; 3] = [
        RestartCause::CommitFailed,
        RestartCause::RestoreFailed,
        RestartCause::PartitionsLost,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            RestartCause::CommitFailed => "commit_failed",
            RestartCause::RestoreFailed => "restore_failed",
            RestartCause::PartitionsLost => "partitions_lost",
        }
    }
}

/// The partition label of the file edge (Kafka mode uses the partition number).
pub const FILE_PARTITION: &str = "file";

/// What one engine host reports about its engine and its edge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionReport {
    /// The core's counters.
    pub stats: Stats,
    /// Messages refused before they reached the core (unreadable, invalid), by reason.
    pub parse_rejects: BTreeMap<RejectReason, u64>,
    /// Invalid identifiers dropped from events accepted through another identifier.
    pub identifiers_dropped: u64,
    /// Outputs written by the edge.
    pub outputs: u64,
    pub size: StateSize,
    /// Messages received from the input and not yet processed.
    pub lag: u64,
}

/// The registry and the metrics the edges update. Shared (`Arc`) by every part of a process.
pub struct Metrics {
    registry: Registry,
    alerts: IntCounterVec,
    event_to_output: Histogram,
    receipt_to_output: Histogram,
    rule_reloads: IntCounterVec,
    roster_reloads: IntCounterVec,
    /// API requests by route template (never the raw path) and status code.
    pub api_requests: IntCounterVec,
    /// Notification deliveries by platform and outcome.
    pub notifications: IntCounterVec,
    /// Notification delivery retries by platform.
    pub notification_retries: IntCounterVec,
    /// Kafka stage restarts from what was committed, by stage and cause.
    pub stage_restarts: IntCounterVec,
    partitions: Arc<Mutex<BTreeMap<String, PartitionReport>>>,
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let registry = Registry::new();
        let alerts = counter_vec(
            ALERTS_TOTAL,
            "Collision alerts emitted, by rule, severity and team of the intruding rep (none for complaints)",
            &["rule", "severity", "team"],
        );
        // From a contact to its alert: publishing delay plus leadguard's own time.
        let event_to_output = Histogram::with_opts(
            HistogramOpts::new(
                EVENT_TO_OUTPUT_SECONDS,
                "Wall-clock time from an output's cause (its event time) to the output being written; live mode only",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                600.0,
            ]),
        )
        .expect("valid metric");
        // leadguard's own time: from reading a message to writing what it caused.
        let receipt_to_output = Histogram::with_opts(
            HistogramOpts::new(
                RECEIPT_TO_OUTPUT_SECONDS,
                "Time from receiving a message to writing the outputs it caused",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0,
            ]),
        )
        .expect("valid metric");
        let rule_reloads = counter_vec(
            RULE_RELOADS_TOTAL,
            "Rules reloads by outcome (ok, failed); a failed reload keeps the previous rules running",
            &["outcome"],
        );
        let roster_reloads = counter_vec(
            ROSTER_RELOADS_TOTAL,
            "Roster reloads by outcome (ok, failed); a failed reload keeps the previous roster in force",
            &["outcome"],
        );
        for outcome in ["ok", "failed"] {
            rule_reloads.with_label_values(&[outcome]);
            roster_reloads.with_label_values(&[outcome]);
        }
        let api_requests = counter_vec(
            API_REQUESTS_TOTAL,
            "HTTP API requests by route and status code",
            &["route", "status"],
        );
        let notifications = counter_vec(
            NOTIFICATIONS_TOTAL,
            "Notifications sent, by platform and outcome",
            &["platform", "outcome"],
        );
        let notification_retries = counter_vec(
            NOTIFICATION_RETRIES_TOTAL,
            "Notification delivery retries, by platform",
            &["platform"],
        );
        let stage_restarts = counter_vec(
            STAGE_RESTARTS_TOTAL,
            "Kafka stage restarts from what was committed (nothing is lost; work since then is redone), by stage and cause",
            &["stage", "cause"],
        );
        for stage in ["router", "engine"] {
            for cause in RestartCause::ALL {
                stage_restarts.with_label_values(&[stage, cause.as_str()]);
            }
        }
        let info = gauge_vec(BUILD_INFO, "Build information (always 1)", &["version"]);
        info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let partitions = Arc::new(Mutex::new(BTreeMap::new()));
        for c in [
            Box::new(alerts.clone()) as Box<dyn Collector>,
            Box::new(event_to_output.clone()),
            Box::new(receipt_to_output.clone()),
            Box::new(rule_reloads.clone()),
            Box::new(roster_reloads.clone()),
            Box::new(api_requests.clone()),
            Box::new(notifications.clone()),
            Box::new(notification_retries.clone()),
            Box::new(stage_restarts.clone()),
            Box::new(info),
            Box::new(EngineCollector::new(partitions.clone())),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Arc::new(Metrics {
            registry,
            alerts,
            event_to_output,
            receipt_to_output,
            rule_reloads,
            roster_reloads,
            api_requests,
            notifications,
            notification_retries,
            stage_restarts,
            partitions,
        })
    }

    /// Counts an output as it is written. `received`: when the message that caused it was
    /// received (for the receipt → output latency); `event_latency`: whether event time is
    /// meant to be close to the wall clock (live mode), so that event time → output means
    /// something. Reads the wall clock: this is an edge.
    pub fn observe_output(&self, out: &Output, received: Option<Instant>, event_latency: bool) {
        if let Some(at) = received {
            self.receipt_to_output.observe(at.elapsed().as_secs_f64());
        }
        if event_latency {
            let now_ms = crate::time::wall_clock().0;
            self.event_to_output
                .observe((now_ms - out.time().0).max(0) as f64 / 1000.0);
        }
        if out.ty() == OutputType::Collision {
            if let Some((rule, severity)) = out.rule() {
                let team = intruder_team(out.data());
                self.alerts
                    .with_label_values(&[&**rule, severity, team.as_deref().unwrap_or("none")])
                    .inc();
            }
        }
    }

    /// Counts a rules reload.
    pub fn rule_reload(&self, ok: bool) {
        self.rule_reloads
            .with_label_values(&[if ok { "ok" } else { "failed" }])
            .inc();
    }

    /// Counts a roster reload.
    pub fn roster_reload(&self, ok: bool) {
        self.roster_reloads
            .with_label_values(&[if ok { "ok" } else { "failed" }])
            .inc();
    }

    /// Stores the latest report of one partition (replacing its previous one).
    pub fn report_partition(&self, partition: &str, report: PartitionReport) {
        self.partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(partition.to_string(), report);
    }

    /// Forgets a partition this process no longer serves (Kafka rebalance).
    pub fn forget_partition(&self, partition: &str) {
        self.partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(partition);
    }

    /// Everything in the Prometheus text exposition format.
    /// Adds what the notifier counted since `before` (its counters are its own atomics).
    pub fn add_notifications(
        &self,
        before: &crate::notify::NotifySnapshot,
        now: &crate::notify::NotifySnapshot,
    ) {
        let old = before.samples();
        for s in now.samples() {
            let prev = old
                .iter()
                .find(|o| o.name == s.name && o.labels == s.labels)
                .map_or(0, |o| o.value);
            let delta = s.value.saturating_sub(prev);
            if delta == 0 {
                continue;
            }
            let values: Vec<&str> = s.labels.iter().map(|(_, v)| *v).collect();
            let counter = if s.name == NOTIFICATION_RETRIES_TOTAL {
                &self.notification_retries
            } else {
                &self.notifications
            };
            counter.with_label_values(&values).inc_by(delta);
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding of gathered metrics");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}

/// The team of a collision alert's intruding rep, read from the alert's `data`.
fn intruder_team(data: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Data {
        intruder: Option<Rep>,
    }
    #[derive(serde::Deserialize)]
    struct Rep {
        team: Option<String>,
    }
    serde_json::from_str::<Data>(data)
        .ok()?
        .intruder?
        .team
        .filter(|t| !t.is_empty())
}

/// Turns the latest partition reports into metrics at scrape time.
struct EngineCollector {
    partitions: Arc<Mutex<BTreeMap<String, PartitionReport>>>,
    /// Empty instances of every metric this collector produces, for their descriptions.
    templates: Vec<Box<dyn Collector>>,
}

/// The engine metrics: name, help, label names, and whether it is a counter.
const ENGINE_METRICS: &[(&str, &str, &[&str], bool)] = &[
    (EVENTS_TOTAL, "Events accepted, by source and kind", &["source", "kind"], true),
    (DUPLICATES_TOTAL, "Redelivered events ignored", &[], true),
    (
        REJECTED_TOTAL,
        "Input messages refused to the dead-letter output, by reason",
        &["reason"],
        true,
    ),
    (
        IDENTIFIERS_DROPPED_TOTAL,
        "Invalid identifiers dropped from events that were accepted through another identifier",
        &[],
        true,
    ),
    (
        LATE_EVENTS_TOTAL,
        "Events that arrived after newer ones: placed in order (reordered), applied at the watermark (ownership), or refused (too_late)",
        &["outcome"],
        true,
    ),
    (
        LATE_OWNERSHIP_TOTAL,
        "Ownership events older than the allowed lateness, applied at the watermark",
        &[],
        true,
    ),
    (
        REORDERED_TOTAL,
        "Events that arrived out of event-time order for their customer",
        &[],
        true,
    ),
    (
        OWNERSHIP_CHANGES_TOTAL,
        "Ownership decisions by reason: CRM changes accepted (crm_assign, crm_release…), leadguard's own (first_touch, assigned, reassigned, no_follow_up, protection_cap, no_deal, follow_up_sla) and refusals (rejected)",
        &["reason"],
        true,
    ),
    (CLAIMS_TOTAL, "Ownership claims by first development", &[], true),
    (WITHDRAWN_TOTAL, "Outputs withdrawn after a late event or merge", &[], true),
    (MERGES_TOTAL, "Provisional customers merged into a CRM customer", &[], true),
    (EVICTED_TOTAL, "Customers evicted from memory", &[], true),
    (OUTPUTS_TOTAL, "Output events written", &[], true),
    (CUSTOMERS_TRACKED, "Customers held in memory", &[], false),
    (CUSTOMERS_OWNED, "Customers with an owner", &[], false),
    (
        CUSTOMERS_WAITING,
        "Customers waiting in line after their pool found no eligible rep",
        &[],
        false,
    ),
    (IDENTIFIERS_INDEXED, "Identifiers in the identity index, from the stream (not those configured as shared)", &[], false),
    (TIMERS_PENDING, "Timers scheduled", &[], false),
    (LOG_ENTRIES, "Events held in per-customer windows", &[], false),
    (
        PARTITION_LAG,
        "Messages received and not yet processed, per partition (file mode: lines read ahead)",
        &["partition"],
        false,
    ),
    (
        PARTITION_STATE_CUSTOMERS,
        "Customers held in memory, per partition",
        &["partition"],
        false,
    ),
];

/// Freshly made (unregistered) instances of the engine metrics, by name.
enum Fresh {
    Counter(IntCounterVec),
    Gauge(IntGaugeVec),
}

impl Fresh {
    fn boxed(&self) -> Box<dyn Collector> {
        match self {
            Fresh::Counter(c) => Box::new(c.clone()),
            Fresh::Gauge(g) => Box::new(g.clone()),
        }
    }
    fn add(&self, labels: &[&str], n: u64) {
        match self {
            Fresh::Counter(c) => c.with_label_values(labels).inc_by(n),
            Fresh::Gauge(g) => g.with_label_values(labels).add(n as i64),
        }
    }
}

fn fresh_engine_metrics() -> BTreeMap<&'static str, Fresh> {
    ENGINE_METRICS
        .iter()
        .map(|(name, help, labels, counter)| {
            let m = if *counter {
                Fresh::Counter(counter_vec(name, help, labels))
            } else {
                Fresh::Gauge(gauge_vec(name, help, labels))
            };
            (*name, m)
        })
        .collect()
}

impl EngineCollector {
    fn new(partitions: Arc<Mutex<BTreeMap<String, PartitionReport>>>) -> EngineCollector {
        EngineCollector {
            partitions,
            templates: fresh_engine_metrics().values().map(Fresh::boxed).collect(),
        }
    }
}

impl Collector for EngineCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.templates.iter().flat_map(|t| t.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let m = fresh_engine_metrics();
        let add = |name: &str, labels: &[&str], n: u64| m[name].add(labels, n);
        let parts = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        // Label-less metrics are present (at zero) even before the first report.
        for (name, _, labels, _) in ENGINE_METRICS {
            if labels.is_empty() {
                add(name, &[], 0);
            }
        }
        for outcome in ["reordered", "applied_at_watermark", "refused"] {
            add(LATE_EVENTS_TOTAL, &[outcome], 0);
        }
        for (partition, r) in parts.iter() {
            let s = &r.stats;
            for ((source, kind), n) in &s.events {
                add(EVENTS_TOTAL, &[source, kind], *n);
            }
            // The lifecycle's decisions, by reason: CRM changes it accepted (`crm_assign`…),
            // its own (`first_touch`, `assigned`, `no_follow_up`…) and refusals (`rejected`).
            for (reason, n) in &s.ownership_changes {
                add(OWNERSHIP_CHANGES_TOTAL, &[reason], *n);
            }
            for (reason, n) in s.rejected.iter().chain(&r.parse_rejects) {
                add(REJECTED_TOTAL, &[reason.as_str()], *n);
            }
            let too_late = s.rejected.get(&RejectReason::TooLate).copied().unwrap_or(0);
            add(LATE_EVENTS_TOTAL, &["reordered"], s.reordered);
            add(
                LATE_EVENTS_TOTAL,
                &["applied_at_watermark"],
                s.late_ownership_applied,
            );
            add(LATE_EVENTS_TOTAL, &["refused"], too_late);
            for (name, n) in [
                (DUPLICATES_TOTAL, s.duplicates),
                (LATE_OWNERSHIP_TOTAL, s.late_ownership_applied),
                (REORDERED_TOTAL, s.reordered),
                (CLAIMS_TOTAL, s.claims),
                (WITHDRAWN_TOTAL, s.withdrawn),
                (MERGES_TOTAL, s.merges),
                (EVICTED_TOTAL, s.customers_evicted),
                (IDENTIFIERS_DROPPED_TOTAL, r.identifiers_dropped),
                (OUTPUTS_TOTAL, r.outputs),
                (CUSTOMERS_TRACKED, r.size.customers as u64),
                (CUSTOMERS_OWNED, r.size.owned as u64),
                (CUSTOMERS_WAITING, r.size.waiting as u64),
                (IDENTIFIERS_INDEXED, r.size.identifiers as u64),
                (TIMERS_PENDING, r.size.timers as u64),
                (LOG_ENTRIES, r.size.log_entries as u64),
            ] {
                add(name, &[], n);
            }
            add(PARTITION_LAG, &[partition], r.lag);
            add(
                PARTITION_STATE_CUSTOMERS,
                &[partition],
                r.size.customers as u64,
            );
        }
        m.values()
            .flat_map(|f| match f {
                Fresh::Counter(c) => c.collect(),
                Fresh::Gauge(g) => g.collect(),
            })
            .collect()
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Writes log lines to stderr with phone numbers and emails masked ([`mask::mask_text`]).
/// The formatter hands over one whole formatted event per write, so an identifier is never
/// split across two calls.
pub struct MaskingStderr;

impl Write for MaskingStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        io::stderr()
            .lock()
            .write_all(mask::mask_text(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Logs go to stderr (stdout carries outputs), masked. `RUST_LOG` overrides the level.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| MaskingStderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_follows_the_naming_conventions() {
        for name in ALL {
            assert!(name.starts_with("leadguard_"), "{name}");
            let counter = name.ends_with("_total");
            let is_counter = ENGINE_METRICS
                .iter()
                .find(|(n, ..)| n == name)
                .map(|(.., c)| *c);
            if let Some(c) = is_counter {
                assert_eq!(c, counter, "{name}: counters end in _total, gauges don't");
            }
        }
        let mut sorted = ALL.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ALL.len(), "names are unique");
    }

    #[test]
    fn a_fresh_registry_renders_every_label_less_metric() {
        let text = Metrics::new().render();
        for name in [DUPLICATES_TOTAL, CUSTOMERS_TRACKED, BUILD_INFO] {
            assert!(text.contains(&format!("\n{name}")), "{name} in\n{text}");
        }
        assert!(text.contains("leadguard_rule_reloads_total{outcome=\"failed\"} 0"));
        assert!(text.contains("leadguard_roster_reloads_total{outcome=\"failed\"} 0"));
        assert!(text.contains("leadguard_late_events_total{outcome=\"refused\"} 0"));
    }

    #[test]
    fn partitions_are_summed_and_labelled() {
        let m = Metrics::new();
        for (p, customers, lag) in [("0", 3, 5), ("1", 4, 0)] {
            let mut stats = Stats::default();
            stats.events.insert(("crm".into(), "assign"), 2);
            stats.ownership_changes.insert("crm_assign", 2);
            stats.duplicates = 1;
            m.report_partition(
                p,
                PartitionReport {
                    stats,
                    size: StateSize {
                        customers,
                        ..StateSize::default()
                    },
                    lag,
                    ..PartitionReport::default()
                },
            );
        }
        let text = m.render();
        for line in [
            "leadguard_events_total{kind=\"assign\",source=\"crm\"} 4",
            "leadguard_ownership_changes_total{reason=\"crm_assign\"} 4",
            "leadguard_duplicate_events_total 2",
            "leadguard_customers_tracked 7",
            "leadguard_partition_state_customers{partition=\"0\"} 3",
            "leadguard_partition_lag_messages{partition=\"0\"} 5",
            "leadguard_partition_lag_messages{partition=\"1\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        m.forget_partition("1");
        assert!(m.render().contains("leadguard_customers_tracked 3"));
    }
}
