//! State shared by the concurrent deliveries: the per-recipient rate limit, and the alerts sent
//! recently (so that a withdrawal can be announced where the alert went).

use super::config::RateLimit;
use super::message::Retraction;
use dashmap::DashMap;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use tokio::time::Instant;

/// At most `messages` mentions of one person per `per` in each channel: a sliding window of the
/// times they were included.
#[derive(Debug)]
pub struct Limiter {
    limit: Option<RateLimit>,
    /// (channel index, rep id) → times included, oldest first.
    recent: DashMap<(usize, String), VecDeque<Instant>>,
}

impl Limiter {
    pub fn new(limit: Option<RateLimit>) -> Limiter {
        Limiter {
            limit,
            recent: DashMap::new(),
        }
    }

    /// Whether `rep` may be included in another message of `channel` at `now`; if so, counts it.
    pub fn admit(&self, channel: usize, rep: &str, now: Instant) -> bool {
        let Some(limit) = self.limit else {
            return true;
        };
        let mut times = self.recent.entry((channel, rep.to_string())).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= limit.per)
        {
            times.pop_front();
        }
        if times.len() < limit.messages as usize {
            times.push_back(now);
            true
        } else {
            false
        }
    }
}

/// Where an alert got to.
#[derive(Debug)]
struct Tracked {
    customer: String,
    rule: String,
    /// Channels (indexes) that accepted the alert.
    delivered: Vec<usize>,
    /// Set when the withdrawal came; deliveries still running stop, or announce it after.
    withdrawn: Option<Retraction>,
    /// Its entry in `order`: an id may be there more than once (untracked and tracked again,
    /// withdrawn and produced again), and only its newest entry forgets it.
    seq: u64,
}

/// The alerts queued or sent recently, oldest forgotten first.
#[derive(Debug)]
pub struct SentAlerts {
    inner: Mutex<SentInner>,
}

#[derive(Debug)]
struct SentInner {
    capacity: usize,
    alerts: HashMap<String, Tracked>,
    /// Ids with the number they were tracked under, oldest first.
    order: VecDeque<(u64, String)>,
    next: u64,
}

/// What a withdrawal finds.
#[derive(Debug, PartialEq, Eq)]
pub enum Withdrawal {
    /// Not an alert notified here (never sent, or forgotten).
    Unknown,
    /// Withdrawn before (a redelivered withdrawal).
    Again,
    /// Withdrawn now; `delivered` are the channels that had it.
    First {
        retraction: Retraction,
        delivered: Vec<usize>,
    },
}

/// What a finished delivery should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum AfterDelivery {
    Nothing,
    /// The alert was withdrawn while it was being delivered: announce the retraction here too.
    Retract(Retraction),
}

impl SentAlerts {
    pub fn new(capacity: usize) -> SentAlerts {
        SentAlerts {
            inner: Mutex::new(SentInner {
                capacity,
                alerts: HashMap::new(),
                order: VecDeque::new(),
                next: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SentInner> {
        // A panic elsewhere while holding the lock leaves the map consistent (every update is a
        // single insert or push), so keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts tracking an alert about to be queued. `false` when it is tracked already and
    /// not withdrawn: the same alert (ids are hashes of content) queued or sent before, handed
    /// over again by whatever runs the engine. An alert withdrawn and then
    /// produced again stands again, and is tracked anew.
    pub fn track(&self, id: &str, customer: &str, rule: &str) -> bool {
        let mut s = self.lock();
        if s.capacity == 0 {
            return true;
        }
        let seq = s.next;
        s.next += 1;
        match s.alerts.get_mut(id) {
            Some(t) if t.withdrawn.is_none() => return false,
            // Remembered from now, as a new alert would be.
            Some(t) => {
                t.withdrawn = None;
                t.delivered.clear();
                t.seq = seq;
            }
            None => {
                s.alerts.insert(
                    id.to_string(),
                    Tracked {
                        customer: customer.to_string(),
                        rule: rule.to_string(),
                        delivered: Vec::new(),
                        withdrawn: None,
                        seq,
                    },
                );
            }
        }
        s.order.push_back((seq, id.to_string()));
        while s.order.len() > s.capacity {
            if let Some((old_seq, old)) = s.order.pop_front() {
                if s.alerts.get(&old).is_some_and(|t| t.seq == old_seq) {
                    s.alerts.remove(&old);
                }
            }
        }
        true
    }

    /// Whether the alert was withdrawn (deliveries check before each attempt).
    pub fn is_withdrawn(&self, id: &str) -> bool {
        self.lock()
            .alerts
            .get(id)
            .is_some_and(|t| t.withdrawn.is_some())
    }

    /// Records that `channel` accepted the alert.
    pub fn delivered(&self, id: &str, channel: usize) -> AfterDelivery {
        let mut s = self.lock();
        match s.alerts.get_mut(id) {
            Some(t) => match &t.withdrawn {
                Some(r) => AfterDelivery::Retract(r.clone()),
                None => {
                    t.delivered.push(channel);
                    AfterDelivery::Nothing
                }
            },
            None => AfterDelivery::Nothing,
        }
    }

    /// Marks the alert withdrawn. Deliveries still running stop, or announce the retraction
    /// when they land; the channels that already had the alert are returned to be told now.
    pub fn withdraw(&self, id: &str, reason: &str) -> Withdrawal {
        let mut s = self.lock();
        let Some(t) = s.alerts.get_mut(id) else {
            return Withdrawal::Unknown;
        };
        if t.withdrawn.is_some() {
            return Withdrawal::Again;
        }
        let r = Retraction {
            alert_id: id.to_string(),
            customer: t.customer.clone(),
            rule: t.rule.clone(),
            reason: reason.to_string(),
        };
        t.withdrawn = Some(r.clone());
        Withdrawal::First {
            retraction: r,
            delivered: std::mem::take(&mut t.delivered),
        }
    }

    /// Forgets an alert that could not be queued. Its id stays in the eviction order until it
    /// comes up (removing it there would cost a scan, on the path taken when overloaded).
    pub fn untrack(&self, id: &str) {
        self.lock().alerts.remove(id);
    }

    /// How many alerts are tracked.
    pub fn len(&self) -> usize {
        self.lock().alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_window_slides() {
        let l = Limiter::new(Some(RateLimit {
            messages: 2,
            per: Duration::from_secs(60),
        }));
        let t0 = Instant::now();
        assert!(l.admit(0, "r1", t0));
        assert!(l.admit(0, "r1", t0 + Duration::from_secs(10)));
        assert!(!l.admit(0, "r1", t0 + Duration::from_secs(20)));
        assert!(
            l.admit(1, "r1", t0 + Duration::from_secs(20)),
            "per channel"
        );
        assert!(l.admit(0, "r2", t0 + Duration::from_secs(20)), "per person");
        assert!(
            l.admit(0, "r1", t0 + Duration::from_secs(60)),
            "the first fell out"
        );
        assert!(!l.admit(0, "r1", t0 + Duration::from_secs(61)));
    }

    fn retraction(id: &str) -> Retraction {
        Retraction {
            alert_id: id.into(),
            customer: "C1".into(),
            rule: "r".into(),
            reason: "late event".into(),
        }
    }

    #[test]
    fn a_withdrawal_reaches_the_channels_that_had_the_alert_and_those_still_sending() {
        let s = SentAlerts::new(10);
        s.track("a1", "C1", "r");
        assert_eq!(s.delivered("a1", 0), AfterDelivery::Nothing);
        assert_eq!(
            s.withdraw("a1", "late event"),
            Withdrawal::First {
                retraction: retraction("a1"),
                delivered: vec![0]
            }
        );
        assert!(s.is_withdrawn("a1"));
        // Channel 1 finished after the withdrawal: it announces the retraction itself.
        assert_eq!(
            s.delivered("a1", 1),
            AfterDelivery::Retract(retraction("a1"))
        );
        assert_eq!(s.withdraw("a1", "late event"), Withdrawal::Again);
        assert_eq!(s.withdraw("unknown", "x"), Withdrawal::Unknown);
    }

    #[test]
    fn the_oldest_alerts_are_forgotten() {
        let s = SentAlerts::new(2);
        for id in ["a1", "a2", "a3"] {
            s.track(id, "C1", "r");
        }
        assert_eq!(s.len(), 2);
        assert_eq!(s.withdraw("a1", "x"), Withdrawal::Unknown);
        assert!(matches!(s.withdraw("a3", "x"), Withdrawal::First { .. }));
        s.untrack("a3");
        assert_eq!(s.withdraw("a3", "x"), Withdrawal::Unknown);
        assert_eq!(s.len(), 1);
        s.track("a4", "C1", "r");
        s.track("a5", "C1", "r");
        assert_eq!(s.len(), 2, "capacity holds with untracked ids in the order");
    }

    #[test]
    fn an_alert_untracked_and_tracked_again_is_forgotten_by_its_newest_entry() {
        let s = SentAlerts::new(3);
        s.track("a1", "C1", "r");
        // Not queued (the queue was full), then submitted again.
        s.untrack("a1");
        s.track("a2", "C1", "r");
        s.track("a1", "C1", "r");
        // The first a1 entry leaves the order; the alert stays remembered.
        s.track("a3", "C1", "r");
        assert!(matches!(s.withdraw("a1", "x"), Withdrawal::First { .. }));
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn an_alert_is_tracked_once_until_withdrawn_then_afresh() {
        let s = SentAlerts::new(2);
        assert!(s.track("a1", "C1", "r"));
        assert!(!s.track("a1", "C1", "r"), "the same alert again");
        assert!(s.track("a2", "C1", "r"));
        assert!(matches!(s.withdraw("a1", "x"), Withdrawal::First { .. }));
        assert!(s.track("a1", "C1", "r"), "withdrawn, then produced again");
        assert!(!s.is_withdrawn("a1"));
        // Remembered as new: a2 is now the oldest, and goes first.
        assert!(s.track("a3", "C1", "r"));
        assert_eq!(s.withdraw("a2", "x"), Withdrawal::Unknown);
        assert!(matches!(s.withdraw("a1", "x"), Withdrawal::First { .. }));
    }
}
