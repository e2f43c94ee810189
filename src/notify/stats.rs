//! Delivery outcomes, counted per platform with atomics (deliveries run as concurrent tasks).
//!
//! The names follow the Prometheus metrics they are meant to become:
//! `leadguard_notifications_total{platform,outcome}` for every outcome but retries, and
//! `leadguard_notification_retries_total{platform}`; see [`NotifySnapshot::samples`].

use super::config::Platform;
use std::sync::atomic::{AtomicU64, Ordering};

/// The counters of one platform.
#[derive(Debug, Default)]
pub struct PlatformCounters {
    /// Messages the platform accepted (alerts and retractions).
    pub delivered: AtomicU64,
    /// Messages given up: attempts exhausted, or refused for good (HTTP 4xx).
    pub failed: AtomicU64,
    /// Attempts after the first.
    pub retried: AtomicU64,
    /// Retries that waited for the platform's `Retry-After`.
    pub throttled: AtomicU64,
    /// Alerts dropped because the queue was full (once per channel they were meant for).
    pub dropped_queue_full: AtomicU64,
    /// Recipients left out of a message by the per-recipient limit.
    pub rate_limited: AtomicU64,
    /// Messages not sent (or not retried) because the alert was withdrawn first.
    pub withdrawn_before_send: AtomicU64,
    /// Alerts not sent again: queued or sent before (once per channel they were for).
    pub repeated: AtomicU64,
}

/// All counters, by platform.
#[derive(Debug, Default)]
pub struct NotifyStats {
    platforms: [PlatformCounters; 4],
}

impl NotifyStats {
    pub fn platform(&self, p: Platform) -> &PlatformCounters {
        &self.platforms[p as usize]
    }

    pub(crate) fn add(&self, p: Platform, pick: impl Fn(&PlatformCounters) -> &AtomicU64, n: u64) {
        pick(self.platform(p)).fetch_add(n, Ordering::Relaxed);
    }

    /// The counters as plain numbers.
    pub fn snapshot(&self) -> NotifySnapshot {
        NotifySnapshot {
            platforms: Platform::ALL
                .iter()
                .map(|&p| {
                    let c = self.platform(p);
                    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
                    PlatformSnapshot {
                        platform: p,
                        delivered: get(&c.delivered),
                        failed: get(&c.failed),
                        retried: get(&c.retried),
                        throttled: get(&c.throttled),
                        dropped_queue_full: get(&c.dropped_queue_full),
                        rate_limited: get(&c.rate_limited),
                        withdrawn_before_send: get(&c.withdrawn_before_send),
                        repeated: get(&c.repeated),
                    }
                })
                .collect(),
        }
    }
}

/// One platform's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformSnapshot {
    pub platform: Platform,
    pub delivered: u64,
    pub failed: u64,
    pub retried: u64,
    pub throttled: u64,
    pub dropped_queue_full: u64,
    pub rate_limited: u64,
    pub withdrawn_before_send: u64,
    pub repeated: u64,
}

/// Every platform's counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NotifySnapshot {
    pub platforms: Vec<PlatformSnapshot>,
}

/// One metric sample: name, labels, value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub name: &'static str,
    pub labels: Vec<(&'static str, &'static str)>,
    pub value: u64,
}

impl NotifySnapshot {
    pub fn get(&self, p: Platform) -> PlatformSnapshot {
        self.platforms[p as usize]
    }

    /// The counters as Prometheus samples, for whoever exports metrics.
    pub fn samples(&self) -> Vec<Sample> {
        let mut out = Vec::new();
        for s in &self.platforms {
            let platform = s.platform.as_str();
            for (outcome, value) in [
                ("delivered", s.delivered),
                ("failed", s.failed),
                ("throttled", s.throttled),
                ("dropped_queue_full", s.dropped_queue_full),
                ("rate_limited", s.rate_limited),
                ("withdrawn_before_send", s.withdrawn_before_send),
                ("repeated", s.repeated),
            ] {
                out.push(Sample {
                    name: "leadguard_notifications_total",
                    labels: vec![("platform", platform), ("outcome", outcome)],
                    value,
                });
            }
            out.push(Sample {
                name: "leadguard_notification_retries_total",
                labels: vec![("platform", platform)],
                value: s.retried,
            });
        }
        out
    }
}
