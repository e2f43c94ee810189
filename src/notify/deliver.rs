//! The edge: a queue in front of the engine, and a task that delivers over HTTP with retries.
//!
//! [`NotifierHandle::submit`] is called from the output stream and never waits: it picks the
//! channels for an alert and puts it on a bounded queue with `try_send`; when the queue is full
//! the alert is dropped and counted. The delivery task takes alerts off the queue and delivers
//! each channel's message as its own task (at most `delivery.concurrency` at once), retrying with
//! exponential backoff.

use super::config::{Channel, Delivery, NotifyConfig, Platform, MAX_RETRY_AFTER};
use super::message::{self, Alert, Directory, Recipient, Retraction, Verdict};
use super::state::{AfterDelivery, Limiter, SentAlerts, Withdrawal};
use super::stats::NotifyStats;
use crate::config::Roster;
use crate::output::{Output, OutputType};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

/// What happened to a submitted output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Queued for delivery.
    Queued,
    /// Not for notification: another output type, an alert no channel takes, or a withdrawal of
    /// an alert that was never notified.
    Ignored,
    /// A withdrawal of an alert not delivered yet: its deliveries stop (one landing now announces
    /// the retraction itself), so there is nothing to queue.
    Stopped,
    /// The queue was full; the alert is dropped and counted (`dropped_queue_full`).
    Dropped,
    /// The delivery task has stopped.
    Closed,
    /// The same alert was queued or sent by this notifier before and not withdrawn since: not
    /// sent twice, counted (`repeated`). A safety net: Kafka mode hands alerts over only once
    /// their batch is committed, so a redone batch doesn't submit them again.
    Repeated,
}

/// One unit of work for the delivery task.
#[derive(Debug)]
enum Job {
    Alert {
        alert: Arc<Alert>,
        channels: Vec<usize>,
    },
    Retraction {
        retraction: Arc<Retraction>,
        channels: Vec<usize>,
    },
}

/// Everything the deliveries share.
struct Shared {
    channels: Vec<Channel>,
    delivery: Delivery,
    /// Replaced whole when the roster reloads; a delivery reads the one in force when it
    /// picks its recipients.
    directory: std::sync::RwLock<Arc<Directory>>,
    client: reqwest::Client,
    stats: Arc<NotifyStats>,
    limiter: Limiter,
    sent: SentAlerts,
    /// Alerts dropped at the queue, for logging the first and then every power of two.
    drops: std::sync::atomic::AtomicU64,
}

/// Starts the notifier.
pub struct Notifier;

impl Notifier {
    /// Starts the delivery task on the current tokio runtime. The task ends once every handle is
    /// dropped and the queued messages are delivered or given up; await the `JoinHandle` to
    /// drain on shutdown.
    pub fn start(config: NotifyConfig, roster: &Roster) -> (NotifierHandle, JoinHandle<()>) {
        let client = reqwest::Client::builder()
            .timeout(config.delivery.timeout)
            .user_agent(concat!("leadguard/", env!("CARGO_PKG_VERSION")))
            .build()
            // Only fails when the TLS backend cannot initialise: the system's OpenSSL is broken,
            // which no retry fixes.
            .expect("the HTTP client (system TLS) initialises");
        let stats = Arc::new(NotifyStats::default());
        let shared = Arc::new(Shared {
            limiter: Limiter::new(config.delivery.per_recipient_limit),
            sent: SentAlerts::new(config.delivery.remember),
            directory: std::sync::RwLock::new(Arc::new(Directory::new(roster))),
            channels: config.channels,
            delivery: config.delivery,
            client,
            stats: stats.clone(),
            drops: Default::default(),
        });
        let (tx, rx) = mpsc::channel(shared.delivery.queue);
        let task = tokio::spawn(run(rx, shared.clone()));
        (NotifierHandle { tx, shared }, task)
    }
}

/// Submits outputs for notification. Cheap to clone; the delivery task stops when the last
/// handle is dropped.
#[derive(Clone)]
pub struct NotifierHandle {
    tx: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

#[derive(Deserialize)]
struct WithdrawnIn {
    withdrawn_id: String,
    #[serde(default)]
    reason: String,
}

impl NotifierHandle {
    /// The delivery counters.
    pub fn stats(&self) -> Arc<NotifyStats> {
        self.shared.stats.clone()
    }

    /// Puts a reloaded roster in force: alerts delivered from now on reach the people and
    /// chat handles it lists.
    pub fn set_roster(&self, roster: &Roster) {
        let directory = Arc::new(Directory::new(roster));
        *self
            .shared
            .directory
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = directory;
    }

    /// Hands an output over for notification. Never waits.
    pub fn submit(&self, output: &Output) -> Submitted {
        match output.ty() {
            OutputType::Collision => self.submit_alert(output),
            OutputType::Withdrawn => self.submit_withdrawal(output),
            // Ownership changes go to the CRM, which tells its users; only collisions are
            // notified here.
            _ => Submitted::Ignored,
        }
    }

    fn submit_alert(&self, output: &Output) -> Submitted {
        let Some(alert) = Alert::parse(output) else {
            tracing::warn!(id = %output.id(), "collision alert not understood; not notified");
            return Submitted::Ignored;
        };
        let channels: Vec<usize> = (0..self.shared.channels.len())
            .filter(|&i| alert.is_for(&self.shared.channels[i]))
            .collect();
        if channels.is_empty() {
            return Submitted::Ignored;
        }
        // Tracked before it is queued, so that a delivery finishing at once finds it.
        if !self
            .shared
            .sent
            .track(&alert.id, &alert.customer, &alert.rule)
        {
            for &c in &channels {
                self.shared
                    .stats
                    .add(self.shared.channels[c].platform, |p| &p.repeated, 1);
            }
            tracing::debug!(id = %alert.id, "alert notified before; not sent again");
            return Submitted::Repeated;
        }
        let id = alert.id.clone();
        let result = self.enqueue(Job::Alert {
            alert: Arc::new(alert),
            channels,
        });
        if result != Submitted::Queued {
            self.shared.sent.untrack(&id);
        }
        result
    }

    fn submit_withdrawal(&self, output: &Output) -> Submitted {
        let Ok(w) = serde_json::from_str::<WithdrawnIn>(output.data()) else {
            return Submitted::Ignored;
        };
        // Marking the alert withdrawn here (not in the queue) stops deliveries still retrying
        // at once, and makes one still in flight announce the retraction when it lands.
        match self.shared.sent.withdraw(&w.withdrawn_id, &w.reason) {
            Withdrawal::Unknown | Withdrawal::Again => Submitted::Ignored,
            Withdrawal::First { delivered, .. } if delivered.is_empty() => Submitted::Stopped,
            Withdrawal::First {
                retraction,
                delivered,
            } => self.enqueue(Job::Retraction {
                retraction: Arc::new(retraction),
                channels: delivered,
            }),
        }
    }

    fn enqueue(&self, job: Job) -> Submitted {
        match self.tx.try_send(job) {
            Ok(()) => Submitted::Queued,
            Err(TrySendError::Full(job)) => {
                let channels = match &job {
                    Job::Alert { channels, .. } | Job::Retraction { channels, .. } => channels,
                };
                for &c in channels {
                    self.shared.stats.add(
                        self.shared.channels[c].platform,
                        |p| &p.dropped_queue_full,
                        1,
                    );
                }
                let n = self
                    .shared
                    .drops
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1;
                if n.is_power_of_two() {
                    tracing::warn!(
                        queue = self.shared.delivery.queue,
                        dropped = n,
                        "notification queue full: alerts are being dropped (the chat platforms are slower than the alerts)"
                    );
                }
                Submitted::Dropped
            }
            Err(TrySendError::Closed(_)) => Submitted::Closed,
        }
    }
}

async fn run(mut rx: mpsc::Receiver<Job>, shared: Arc<Shared>) {
    let permits = Arc::new(Semaphore::new(shared.delivery.concurrency));
    let mut tasks = JoinSet::new();
    while let Some(job) = rx.recv().await {
        let deliveries: Vec<(usize, Work)> = match job {
            Job::Alert { alert, channels } => channels
                .into_iter()
                .map(|c| (c, Work::Alert(alert.clone())))
                .collect(),
            Job::Retraction {
                retraction,
                channels,
            } => channels
                .into_iter()
                .map(|c| (c, Work::Retraction(retraction.clone())))
                .collect(),
        };
        for (channel, work) in deliveries {
            // Waiting for a permit here is what makes the queue fill up (and submit drop) when
            // the platforms are slower than the alerts.
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let shared = shared.clone();
            tasks.spawn(async move {
                deliver(&shared, channel, work).await;
                drop(permit);
            });
        }
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

enum Work {
    Alert(Arc<Alert>),
    Retraction(Arc<Retraction>),
}

async fn deliver(shared: &Shared, channel: usize, work: Work) {
    let ch = &shared.channels[channel];
    match work {
        Work::Alert(alert) => {
            if shared.sent.is_withdrawn(&alert.id) {
                shared
                    .stats
                    .add(ch.platform, |p| &p.withdrawn_before_send, 1);
                return;
            }
            let people = admitted(shared, channel, &alert);
            if people.is_empty() {
                return;
            }
            let body = message::alert_body(ch.platform, &alert, &people);
            if send(shared, channel, &body, Some(&alert.id)).await {
                if let AfterDelivery::Retract(r) = shared.sent.delivered(&alert.id, channel) {
                    let body = message::retraction_body(ch.platform, &r);
                    send(shared, channel, &body, None).await;
                }
            }
        }
        Work::Retraction(r) => {
            let body = message::retraction_body(ch.platform, &r);
            send(shared, channel, &body, None).await;
        }
    }
}

/// The alert's recipients that the per-recipient limit lets into this channel's message.
fn admitted(shared: &Shared, channel: usize, alert: &Alert) -> Vec<Recipient> {
    let now = tokio::time::Instant::now();
    let platform = shared.channels[channel].platform;
    let mut kept = Vec::new();
    let directory = shared
        .directory
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for person in message::recipients(alert, &directory) {
        if shared.limiter.admit(channel, &person.id, now) {
            kept.push(person);
        } else {
            shared.stats.add(platform, |p| &p.rate_limited, 1);
        }
    }
    if kept.is_empty() {
        tracing::info!(
            channel = %shared.channels[channel].name,
            alert = %alert.id,
            "every recipient is over the per-recipient limit; message not sent"
        );
    }
    kept
}

/// How long to wait before attempt `failed + 1`, after `failed` failed attempts: the initial
/// backoff doubled each time up to `max_backoff`, or longer if the platform asked for it with
/// `Retry-After` (up to [`MAX_RETRY_AFTER`]).
pub fn backoff(delivery: &Delivery, failed: u32, retry_after: Option<Duration>) -> Duration {
    let doubled = delivery
        .initial_backoff
        .saturating_mul(1u32 << failed.saturating_sub(1).min(20));
    let base = doubled.min(delivery.max_backoff);
    match retry_after {
        Some(asked) => asked.min(MAX_RETRY_AFTER).max(base),
        None => base,
    }
}

/// `Retry-After` in seconds (the form chat platforms use); an HTTP date is not read.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Sends one message with retries; true when the platform accepted it. `alert` names the alert
/// being sent, so that a withdrawal stops the retries.
async fn send(
    shared: &Shared,
    channel: usize,
    body: &serde_json::Value,
    alert: Option<&str>,
) -> bool {
    let ch = &shared.channels[channel];
    let platform: Platform = ch.platform;
    let max = shared.delivery.max_attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        // Signed per attempt: the platforms refuse timestamps that are too old.
        let request = message::sign(ch, body.clone(), crate::time::wall_clock().0);
        let (verdict, asked) = match shared
            .client
            .post(&request.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(request.body.to_string())
            .send()
            .await
        {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let asked = retry_after(resp.headers());
                let text = resp.text().await.unwrap_or_default();
                (message::judge(platform, status, &text), asked)
            }
            // Without the URL: webhook addresses carry the robot's key.
            Err(e) => (Verdict::Retry(e.without_url().to_string()), None),
        };
        match verdict {
            Verdict::Delivered => {
                shared.stats.add(platform, |p| &p.delivered, 1);
                return true;
            }
            Verdict::Fail(why) => {
                shared.stats.add(platform, |p| &p.failed, 1);
                tracing::warn!(channel = %ch.name, platform = platform.as_str(), %why, "notification refused; not retried");
                return false;
            }
            Verdict::Retry(why) if attempt >= max => {
                shared.stats.add(platform, |p| &p.failed, 1);
                tracing::warn!(channel = %ch.name, platform = platform.as_str(), attempts = attempt, %why, "notification failed; giving up");
                return false;
            }
            Verdict::Retry(why) => {
                let wait = backoff(&shared.delivery, attempt, asked);
                tracing::debug!(channel = %ch.name, platform = platform.as_str(), attempt, ?wait, %why, "notification failed; retrying");
                if asked.is_some() {
                    shared.stats.add(platform, |p| &p.throttled, 1);
                }
                tokio::time::sleep(wait).await;
                if alert.is_some_and(|id| shared.sent.is_withdrawn(id)) {
                    shared.stats.add(platform, |p| &p.withdrawn_before_send, 1);
                    return false;
                }
                shared.stats.add(platform, |p| &p.retried, 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_honours_retry_after() {
        let d = Delivery {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            ..Delivery::default()
        };
        let waits: Vec<u64> = (1..=6).map(|n| backoff(&d, n, None).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        assert_eq!(backoff(&d, 1, Some(Duration::from_secs(30))).as_secs(), 30);
        assert_eq!(backoff(&d, 4, Some(Duration::from_secs(2))).as_secs(), 8);
        assert_eq!(
            backoff(&d, 1, Some(Duration::from_secs(99_999))),
            MAX_RETRY_AFTER
        );
        assert_eq!(backoff(&d, 200, None).as_secs(), 10, "no overflow");
    }
}
