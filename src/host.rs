//! How the HTTP API asks engines questions without sharing them.
//!
//! The core is single-threaded and deterministic, and no other thread ever reads its state.
//! Each engine lives in one task (file mode: one engine; Kafka mode: one per partition). The
//! API sends that task a [`Query`] carrying a oneshot reply channel over a bounded queue, and
//! the task answers between two events with [`answer`]. So an answer reflects every event
//! processed before it, events keep flowing, and asking never changes state.
//!
//! [`EngineHandle`] hides how many engines there are. Engines register a queue per partition;
//! a question goes to every registered engine and the answers are combined: a customer id
//! lives in one partition (the first engine that knows it answers), while a phone or email may
//! be linked in several, so a check takes the most restrictive answer.
//!
//! Readiness is a flag the host sets once its state is restored (file mode: at once, there is
//! nothing to restore; Kafka mode: after the changelog is replayed).

use crate::engine::{CheckAnswer, CheckError, CustomerIdentifiers, CustomerView, Engine};
use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Queries waiting for one engine at most; a full queue makes callers wait (backpressure).
pub const QUERY_QUEUE: usize = 64;

/// How long a question may wait for every engine's answer before the API gives up (503).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A question for one engine, with where to send the answer.
#[derive(Debug)]
pub enum Query {
    Customer {
        key: String,
        reply: oneshot::Sender<Option<CustomerView>>,
    },
    Check {
        rep: String,
        customer: CustomerIdentifiers,
        reply: oneshot::Sender<Result<CheckAnswer, CheckError>>,
    },
}

/// Answers one query from the engine's current state. Called by the task that owns the engine,
/// between two events; `now` is the host's clock (the wall clock in live mode, else the
/// engine's event-time clock).
pub fn answer(engine: &Engine, query: Query, now: Timestamp) {
    // A caller that gave up (timeout, closed connection) has dropped its receiver: nothing to do.
    match query {
        Query::Customer { key, reply } => {
            let _ = reply.send(engine.customer_view(&key, now));
        }
        Query::Check {
            rep,
            customer,
            reply,
        } => {
            let _ = reply.send(engine.check(&rep, &customer, now));
        }
    }
}

/// Why a question got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// No engine is running (starting, stopping, or no partition assigned).
    Unavailable,
    /// The engines did not answer within [`QUERY_TIMEOUT`].
    Timeout,
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HostError::Unavailable => "no engine is running to answer",
            HostError::Timeout => "the engine did not answer in time",
        })
    }
}

struct Inner {
    partitions: RwLock<BTreeMap<String, mpsc::Sender<Query>>>,
    ready: AtomicBool,
}

/// The API's side of the engines: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct EngineHandle {
    inner: Arc<Inner>,
}

impl Default for EngineHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl EngineHandle {
    pub fn new() -> EngineHandle {
        EngineHandle {
            inner: Arc::new(Inner {
                partitions: RwLock::new(BTreeMap::new()),
                ready: AtomicBool::new(false),
            }),
        }
    }

    /// Opens the query queue of one engine; its task receives from the returned end and
    /// answers each query with [`answer`]. Registering a partition again replaces its queue.
    pub fn register(&self, partition: &str) -> mpsc::Receiver<Query> {
        let (tx, rx) = mpsc::channel(QUERY_QUEUE);
        self.inner
            .partitions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(partition.to_string(), tx);
        rx
    }

    /// Stops asking an engine (its partition was revoked, or it stopped).
    pub fn unregister(&self, partition: &str) {
        self.inner
            .partitions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(partition);
    }

    /// Set by the host once its state is restored; `/readyz` answers from it.
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst)
            && !self
                .inner
                .partitions
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
    }

    fn senders(&self) -> Vec<mpsc::Sender<Query>> {
        self.inner
            .partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Sends a query to every engine and collects the answers (engines that stopped meanwhile
    /// are skipped).
    async fn ask_all<T>(
        &self,
        make: impl Fn(oneshot::Sender<T>) -> Query,
    ) -> Result<Vec<T>, HostError> {
        let senders = self.senders();
        if senders.is_empty() {
            return Err(HostError::Unavailable);
        }
        let ask = async {
            let mut waiting = Vec::with_capacity(senders.len());
            for tx in &senders {
                let (reply, rx) = oneshot::channel();
                if tx.send(make(reply)).await.is_ok() {
                    waiting.push(rx);
                }
            }
            let mut answers = Vec::with_capacity(waiting.len());
            for rx in waiting {
                if let Ok(a) = rx.await {
                    answers.push(a);
                }
            }
            answers
        };
        let answers = tokio::time::timeout(QUERY_TIMEOUT, ask)
            .await
            .map_err(|_| HostError::Timeout)?;
        if answers.is_empty() {
            return Err(HostError::Unavailable);
        }
        Ok(answers)
    }

    /// The customer with this key, from whichever engine holds it.
    pub async fn customer(&self, key: &str) -> Result<Option<CustomerView>, HostError> {
        let answers = self
            .ask_all(|reply| Query::Customer {
                key: key.to_string(),
                reply,
            })
            .await?;
        Ok(answers.into_iter().flatten().next())
    }

    /// The pre-contact check, combined over every engine.
    pub async fn check(
        &self,
        rep: &str,
        customer: &CustomerIdentifiers,
    ) -> Result<Result<CheckAnswer, CheckError>, HostError> {
        let answers = self
            .ask_all(|reply| Query::Check {
                rep: rep.to_string(),
                customer: customer.clone(),
                reply,
            })
            .await?;
        Ok(combine_checks(answers))
    }
}

/// One answer from several engines: a request error is the same everywhere (normalization
/// doesn't depend on state); otherwise the most restrictive answer that found a customer
/// wins, with every engine's notes.
fn combine_checks(
    answers: Vec<Result<CheckAnswer, CheckError>>,
) -> Result<CheckAnswer, CheckError> {
    let mut best: Option<CheckAnswer> = None;
    let mut notes: Vec<String> = Vec::new();
    for a in answers {
        let a = a?;
        for n in &a.notes {
            if !notes.contains(n) {
                notes.push(n.clone());
            }
        }
        let better = match &best {
            None => true,
            Some(b) => (a.customer.is_some(), a.decision) > (b.customer.is_some(), b.decision),
        };
        if better {
            best = Some(a);
        }
    }
    let mut best = best.expect("ask_all returns at least one answer");
    best.notes = notes;
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Decision, RepView};

    fn answer(decision: Decision, customer: Option<&str>, note: &str) -> CheckAnswer {
        CheckAnswer {
            decision,
            reason: String::new(),
            rep: RepView {
                id: Arc::from("r1"),
                team: None,
                role: None,
            },
            customer: customer.map(Arc::from),
            matched_by: Vec::new(),
            owner: None,
            notes: vec![note.to_string()],
            as_of: String::new(),
        }
    }

    #[test]
    fn the_most_restrictive_found_customer_wins_and_notes_are_kept() {
        let combined = combine_checks(vec![
            Ok(answer(Decision::Allowed, None, "a")),
            Ok(answer(Decision::Protected, Some("C2"), "b")),
            Ok(answer(Decision::OwnedByOther, Some("C1"), "a")),
        ])
        .expect("answer");
        assert_eq!(combined.decision, Decision::Protected);
        assert_eq!(combined.customer.as_deref(), Some("C2"));
        assert_eq!(combined.notes, ["a", "b"]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn no_engine_means_unavailable_and_not_ready() {
        let h = EngineHandle::new();
        h.set_ready(true);
        assert!(!h.is_ready(), "ready needs a running engine");
        assert_eq!(h.customer("C1").await, Err(HostError::Unavailable));
        let _rx = h.register("file");
        assert!(h.is_ready());
    }
}
