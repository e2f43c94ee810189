//! Plain counters the core keeps; the edge exports them as metrics (no IO here).

use crate::ingest::RejectReason;
use std::collections::BTreeMap;

/// What the engine has seen and done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Accepted events by (source, kind).
    pub events: BTreeMap<(String, &'static str), u64>,
    /// Redelivered events ignored (same source and event id).
    pub duplicates: u64,
    /// Events the core refused (too late, ambiguous customer, future timestamp).
    pub rejected: BTreeMap<RejectReason, u64>,
    /// Ownership events older than the allowed lateness, applied at the watermark.
    pub late_ownership_applied: u64,
    /// Events that arrived out of event-time order for their customer (a re-fold).
    pub reordered: u64,
    /// Collision alerts by (rule, severity).
    pub alerts: BTreeMap<(String, &'static str), u64>,
    pub claims: u64,
    pub withdrawn: u64,
    /// Provisional customers merged into the customer they turned out to be.
    pub merges: u64,
    pub customers_created: u64,
    pub customers_evicted: u64,
    /// Ownership changes and refusals of the lifecycle, by reason (`first_touch`,
    /// `crm_assign`, `no_follow_up`, `assigned`, `rejected`, …). The engine counts them apart
    /// and fills this in the `Stats` it hands out.
    pub ownership_changes: BTreeMap<&'static str, u64>,
}

/// Every reason an ownership change is counted under (a snapshot names them by text).
pub const OWNERSHIP_CHANGE_REASONS: [&str; 17] = [
    "first_touch",
    "crm_claim",
    "crm_assign",
    "crm_transfer",
    "crm_release",
    "crm_lock",
    "crm_unlock",
    "crm_won",
    "no_follow_up",
    "protection_cap",
    "no_deal",
    "follow_up_sla",
    "assigned",
    "unassigned",
    "reassigned",
    "rejected",
    "merged",
];

/// Where `reason` stands in [`OWNERSHIP_CHANGE_REASONS`] (the engine counts by that place).
pub fn change_reason_index(reason: &str) -> Option<usize> {
    OWNERSHIP_CHANGE_REASONS.iter().position(|r| *r == reason)
}

impl Stats {
    pub fn events_total(&self) -> u64 {
        self.events.values().sum()
    }
    pub fn alerts_total(&self) -> u64 {
        self.alerts.values().sum()
    }
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}
