//! Metrics: the core's plain counters exported in the Prometheus text format, and log setup.
//!
//! Every metric name is a constant here (one place per concept). No customer or rep identifier
//! is ever a label: labels are sources, kinds, reasons, rules and severities, all bounded sets.

use crate::engine::{StateSize, Stats};
use crate::pipeline::Counts;
use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

pub const EVENTS_TOTAL: &str = "leadguard_events_total";
pub const DUPLICATES_TOTAL: &str = "leadguard_duplicate_events_total";
pub const REJECTED_TOTAL: &str = "leadguard_rejected_events_total";
pub const LATE_OWNERSHIP_TOTAL: &str = "leadguard_late_ownership_events_total";
pub const REORDERED_TOTAL: &str = "leadguard_reordered_events_total";
pub const ALERTS_TOTAL: &str = "leadguard_alerts_total";
pub const CLAIMS_TOTAL: &str = "leadguard_ownership_claims_total";
pub const WITHDRAWN_TOTAL: &str = "leadguard_withdrawn_outputs_total";
pub const MERGES_TOTAL: &str = "leadguard_customer_merges_total";
pub const EVICTED_TOTAL: &str = "leadguard_customers_evicted_total";
pub const CUSTOMERS_TRACKED: &str = "leadguard_customers_tracked";
pub const CUSTOMERS_OWNED: &str = "leadguard_customers_owned";
pub const IDENTIFIERS_INDEXED: &str = "leadguard_identifiers_indexed";
pub const TIMERS_PENDING: &str = "leadguard_timers_pending";
pub const LOG_ENTRIES: &str = "leadguard_window_entries";
pub const BUILD_INFO: &str = "leadguard_build_info";

fn counter(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    reg.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge(reg: &Registry, name: &str, help: &str, value: i64) {
    let g = IntGauge::new(name, help).expect("valid metric");
    g.set(value);
    reg.register(Box::new(g)).expect("unique metric");
}

/// Renders the current counters in the Prometheus text exposition format.
pub fn render(stats: &Stats, counts: &Counts, size: StateSize) -> String {
    let reg = Registry::new();
    let events = counter(
        &reg,
        EVENTS_TOTAL,
        "Events accepted, by source and kind",
        &["source", "kind"],
    );
    for ((source, kind), n) in &stats.events {
        events
            .with_label_values(&[source.as_str(), kind])
            .inc_by(*n);
    }
    let rejected = counter(
        &reg,
        REJECTED_TOTAL,
        "Input messages refused to the dead-letter output, by reason",
        &["reason"],
    );
    let core_rejects: u64 = stats.rejected.values().sum();
    for (reason, n) in &stats.rejected {
        rejected.with_label_values(&[reason.as_str()]).inc_by(*n);
    }
    let parse_rejects = counts.dead_letters.saturating_sub(core_rejects);
    if parse_rejects > 0 {
        rejected
            .with_label_values(&["invalid_input"])
            .inc_by(parse_rejects);
    }
    let alerts = counter(
        &reg,
        ALERTS_TOTAL,
        "Collision alerts emitted, by rule and severity",
        &["rule", "severity"],
    );
    for ((rule, sev), n) in &stats.alerts {
        alerts.with_label_values(&[rule.as_str(), sev]).inc_by(*n);
    }
    for (name, help, n) in [
        (
            DUPLICATES_TOTAL,
            "Redelivered events ignored",
            stats.duplicates,
        ),
        (
            LATE_OWNERSHIP_TOTAL,
            "Ownership events older than the allowed lateness, applied at the watermark",
            stats.late_ownership_applied,
        ),
        (
            REORDERED_TOTAL,
            "Events that arrived out of event-time order for their customer",
            stats.reordered,
        ),
        (
            CLAIMS_TOTAL,
            "Ownership claims by first development",
            stats.claims,
        ),
        (
            WITHDRAWN_TOTAL,
            "Outputs withdrawn after a late event or merge",
            stats.withdrawn,
        ),
        (
            MERGES_TOTAL,
            "Provisional customers merged into a CRM customer",
            stats.merges,
        ),
        (
            EVICTED_TOTAL,
            "Customers evicted from memory",
            stats.customers_evicted,
        ),
    ] {
        counter(&reg, name, help, &[])
            .with_label_values(&[] as &[&str])
            .inc_by(n);
    }
    gauge(
        &reg,
        CUSTOMERS_TRACKED,
        "Customers held in memory",
        size.customers as i64,
    );
    gauge(
        &reg,
        CUSTOMERS_OWNED,
        "Customers with an owner",
        size.owned as i64,
    );
    gauge(
        &reg,
        IDENTIFIERS_INDEXED,
        "Identifiers in the identity index",
        size.identifiers as i64,
    );
    gauge(&reg, TIMERS_PENDING, "Timers scheduled", size.timers as i64);
    gauge(
        &reg,
        LOG_ENTRIES,
        "Events held in per-customer windows",
        size.log_entries as i64,
    );
    let info = IntGaugeVec::new(Opts::new(BUILD_INFO, "Build information"), &["version"])
        .expect("valid metric");
    info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    reg.register(Box::new(info)).expect("unique metric");
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&reg.gather(), &mut buf)
        .expect("text encoding of gathered metrics");
    String::from_utf8(buf).expect("the text format is UTF-8")
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Logs go to stderr (stdout carries outputs). `RUST_LOG` overrides the level.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
