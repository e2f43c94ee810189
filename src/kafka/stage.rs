//! The consume → process → produce → commit loop shared by the router and the engine stage.
//!
//! One consumer (a consumer-group member, cooperative-sticky assignment) and one producer per
//! stage. In exactly-once mode each batch is one Kafka transaction: the records produced while
//! processing it, and the input offsets (`send_offsets_to_transaction`), are committed
//! together, so after a crash the batch is either wholly visible or wholly redone. In
//! at-least-once mode the producer is flushed before offsets are committed.
//!
//! Rebalances run inside `poll`, on this thread: on revocation the stage hands off (the engine
//! stage writes a final snapshot) and everything so far is committed before the partitions go;
//! on assignment the stage restores state before the partitions are fetched. When a commit
//! fails in a way that needs an abort, the stage rewinds: every partition is restored from what
//! was committed and re-read from there.

use super::records::Record;
use crate::telemetry::RestartCause;
use anyhow::{anyhow, Context as _, Result};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long one broker request may take before it is retried (or the batch rewound).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a newly assigned partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The group's committed offset (the beginning when there is none).
    Committed,
    Beginning,
    Offset(i64),
}

/// What differs between the router and the engine stage.
pub trait Stage: Send + 'static {
    /// For logs.
    fn name(&self) -> &'static str;
    /// Partitions were assigned (with the group's committed offsets): restore what they need
    /// and say where each starts.
    fn assigned(&mut self, parts: &[(String, i32, Option<i64>)]) -> Result<Vec<StartAt>>;
    /// Partitions are about to go: produce whatever hands them off.
    fn revoking(&mut self, parts: &[(String, i32)], out: &mut Vec<Record>);
    /// Partitions went (revoked or lost): drop their state.
    fn forget(&mut self, parts: &[(String, i32)]);
    fn handle(&mut self, msg: &BorrowedMessage<'_>, out: &mut Vec<Record>);
    /// The consumer reached the end of `partition` (of the stage's only topic).
    fn at_end(&mut self, partition: i32, out: &mut Vec<Record>);
    /// Between batches: timers of quiet partitions, snapshots that are due.
    fn maintain(&mut self, out: &mut Vec<Record>);
    /// What was handed over last (by `maintain`, then by this) was delivered and committed:
    /// what had to wait for that goes out (at-least-once mode: the outputs of timer ticks
    /// after the ticks' record, then the record saying they were delivered). Called until it
    /// gives nothing.
    fn after_maintenance(&mut self, _out: &mut Vec<Record>) {}
    /// At shutdown: hand everything off.
    fn shutting_down(&mut self, out: &mut Vec<Record>);
    /// Everything produced so far and the offsets it goes with were committed: what waited
    /// for that (notifications) may go out.
    fn committed(&mut self) {}
    /// Next offset to commit per partition.
    fn offsets(&self) -> Vec<(String, i32, i64)>;
    /// One line for the periodic status log.
    fn status(&self) -> String;
    /// The lag of each partition, as measured for the status log.
    fn observe_lag(&mut self, _lag: &[(String, i32, i64)]) {}
}

/// Log lines of librdkafka go to the application's log.
pub(crate) fn forward_log(level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", "{fac}: {message}"),
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", "{fac}: {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", "{fac}: {message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "{fac}: {message}"),
    }
}

/// Counts failed deliveries: in at-least-once mode a batch with one is redone.
#[derive(Default)]
pub struct DeliveryContext {
    failures: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        forward_log(level, fac, message);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!("producer: {error}: {reason}");
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failures.fetch_add(1, Ordering::Relaxed);
            let mut first = self.first_failure.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert_with(|| e.to_string());
        }
    }
}

/// The producer side of a stage.
pub struct Io {
    producer: ThreadedProducer<DeliveryContext>,
    /// Kept to replace a producer stuck in a transactional call (see `renew`).
    config: ClientConfig,
    transactional: bool,
    txn_open: bool,
    /// Records produced or offsets moved since the last commit.
    dirty: bool,
    last_committed: BTreeMap<(String, i32), i64>,
    pub produced: u64,
    pub commits: u64,
}

/// What a failed commit means.
enum Failure {
    /// Abort and redo from what was committed.
    Rewind(String),
    /// Nothing this process can fix (fenced by another instance, bad configuration).
    Fatal(String),
}

fn classify(e: &KafkaError) -> Failure {
    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnsupportedFeature) {
        return Failure::Fatal(format!(
            "{e}: the brokers don't support Kafka transactions; use `mode: at_least_once` (README \"Kafka\")"
        ));
    }
    if let KafkaError::Transaction(t) = e {
        if t.is_fatal() {
            let fenced = matches!(
                t.code(),
                RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch
            );
            return Failure::Fatal(if fenced {
                format!("{e}: another instance took over this instance's transactional id; give every instance its own instance_id")
            } else {
                e.to_string()
            });
        }
    }
    Failure::Rewind(e.to_string())
}

fn retriable(e: &KafkaError) -> bool {
    e.rdkafka_error_code() != Some(RDKafkaErrorCode::UnsupportedFeature)
        && matches!(e, KafkaError::Transaction(t) if t.is_retriable())
}

impl Io {
    pub fn new(config: &ClientConfig, transactional: bool) -> Result<Io> {
        let producer: ThreadedProducer<DeliveryContext> = config
            .create_with_context(DeliveryContext::default())
            .context("cannot create the Kafka producer")?;
        Ok(Io {
            producer,
            config: config.clone(),
            transactional,
            txn_open: false,
            dirty: false,
            last_committed: BTreeMap::new(),
            produced: 0,
            commits: 0,
        })
    }

    /// Registers the transactional id with the broker (fencing a previous incarnation),
    /// waiting for the broker as long as it takes.
    pub fn init(&self, shutdown: &AtomicBool) -> Result<()> {
        if !self.transactional {
            return Ok(());
        }
        loop {
            match self.producer.init_transactions(REQUEST_TIMEOUT) {
                Ok(()) => return Ok(()),
                Err(e) if retriable(&e) && !shutdown.load(Ordering::Relaxed) => {
                    tracing::warn!("waiting for the broker to start transactions: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => return Err(anyhow!("cannot start Kafka transactions: {e}")),
            }
        }
    }

    fn begin(&mut self) -> Result<(), Failure> {
        if self.transactional && !self.txn_open {
            self.producer
                .begin_transaction()
                .map_err(|e| classify(&e))?;
            self.txn_open = true;
        }
        Ok(())
    }

    /// Produces records, waiting while the producer's queue is full (backpressure: nothing
    /// is buffered beyond librdkafka's bounded queue).
    fn send_all(&mut self, records: &mut Vec<Record>) -> Result<(), Failure> {
        if records.is_empty() {
            return Ok(());
        }
        self.begin()?;
        for r in records.drain(..) {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (k, v) in &r.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v.as_slice()),
                });
            }
            let mut base: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&r.topic).headers(headers);
            if let Some(k) = &r.key {
                base = base.key(k.as_slice());
            }
            if let Some(v) = &r.value {
                base = base.payload(v.as_slice());
            }
            if let Some(p) = r.partition {
                base = base.partition(p);
            }
            if let Some(t) = r.timestamp {
                base = base.timestamp(t);
            }
            loop {
                match self.producer.send(base) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        base = back;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err((e, _)) => {
                        return Err(Failure::Rewind(format!(
                            "cannot produce to {}: {e}",
                            r.topic
                        )))
                    }
                }
            }
            self.produced += 1;
        }
        self.dirty = true;
        Ok(())
    }

    /// Commits the records produced so far together with the input offsets.
    fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        offsets: &[(String, i32, i64)],
        shutdown: &AtomicBool,
    ) -> Result<(), Failure> {
        let moved: Vec<&(String, i32, i64)> = offsets
            .iter()
            .filter(|(t, p, o)| self.last_committed.get(&(t.clone(), *p)) != Some(o))
            .collect();
        if !self.dirty && moved.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in offsets {
            tpl.add_partition_offset(t, *p, Offset::Offset(*o))
                .map_err(|e| Failure::Rewind(e.to_string()))?;
        }
        if self.transactional {
            self.begin()?;
            let meta = consumer
                .group_metadata()
                .ok_or_else(|| Failure::Rewind("the consumer has no group metadata yet".into()))?;
            if tpl.count() > 0 {
                retry(shutdown, "send offsets to the transaction", || {
                    self.producer
                        .send_offsets_to_transaction(&tpl, &meta, REQUEST_TIMEOUT)
                })?;
            }
            retry(shutdown, "commit the transaction", || {
                self.producer.commit_transaction(REQUEST_TIMEOUT)
            })?;
            self.txn_open = false;
        } else {
            // At least once: outputs must be delivered before the offsets that produced them
            // are committed.
            while let Err(e) = self.producer.flush(REQUEST_TIMEOUT) {
                if shutdown.load(Ordering::Relaxed) {
                    return Err(Failure::Rewind(format!("flush interrupted: {e}")));
                }
                tracing::warn!("waiting for the broker to take the outputs: {e}");
            }
            let failures = self.producer.context().failures.swap(0, Ordering::Relaxed);
            if failures > 0 {
                let first = self
                    .producer
                    .context()
                    .first_failure
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                    .unwrap_or_default();
                return Err(Failure::Rewind(format!(
                    "{failures} record(s) could not be delivered (first: {first})"
                )));
            }
            if tpl.count() > 0 {
                loop {
                    match consumer.commit(&tpl, rdkafka::consumer::CommitMode::Sync) {
                        Ok(()) => break,
                        Err(e) if shutdown.load(Ordering::Relaxed) => {
                            return Err(Failure::Rewind(e.to_string()))
                        }
                        Err(e) => {
                            tracing::warn!("retrying the offset commit: {e}");
                            std::thread::sleep(Duration::from_millis(500));
                        }
                    }
                }
            }
        }
        for (t, p, o) in offsets {
            self.last_committed.insert((t.clone(), *p), *o);
        }
        self.dirty = false;
        self.commits += 1;
        Ok(())
    }

    /// Drops what was produced since the last commit, so that the batch can be redone. An
    /// `Err` is fatal for the stage: another instance took over, or the producer could not be
    /// replaced.
    fn abort(&mut self, shutdown: &AtomicBool) -> Result<(), String> {
        if self.transactional && self.txn_open {
            self.txn_open = false;
            match finish_abort(shutdown, || {
                self.producer.abort_transaction(REQUEST_TIMEOUT)
            }) {
                Aborted::Clean => {}
                Aborted::Fatal(why) => return Err(why),
                Aborted::Stuck(_) if shutdown.load(Ordering::Relaxed) => {}
                Aborted::Stuck(why) => {
                    tracing::warn!("cannot abort the transaction ({why}); replacing the producer");
                    // Stopping while the new producer waits for the broker is not a failure:
                    // the next start fences whatever is left.
                    if let Err(why) = self.renew(shutdown) {
                        if !shutdown.load(Ordering::Relaxed) {
                            return Err(why);
                        }
                    }
                }
            }
        }
        self.forget_batch();
        Ok(())
    }

    /// Before the stage stops on a fatal error: one try at aborting, so that consumers reading
    /// committed records aren't held up until the transaction times out. Whatever stays open
    /// is aborted by the broker, or fenced by the next instance's `init`.
    fn abort_before_exit(&mut self) {
        if self.transactional && self.txn_open {
            if let Err(e) = self.producer.abort_transaction(REQUEST_TIMEOUT) {
                tracing::warn!("aborting the transaction: {e}");
            }
            self.txn_open = false;
        }
        self.forget_batch();
    }

    fn forget_batch(&mut self) {
        self.dirty = false;
        self.producer.context().failures.store(0, Ordering::Relaxed);
    }

    /// Replaces a producer left inside a transactional call that will not finish: librdkafka
    /// refuses every other transactional call until it does. The new producer's `init` fences
    /// the old one under the same transactional id, and the broker aborts what it left open.
    fn renew(&mut self, shutdown: &AtomicBool) -> Result<(), String> {
        let fresh: ThreadedProducer<DeliveryContext> = self
            .config
            .create_with_context(DeliveryContext::default())
            .map_err(|e| format!("cannot create a new Kafka producer: {e}"))?;
        // The old one is dropped here, purging whatever it still held.
        self.producer = fresh;
        self.init(shutdown).map_err(|e| format!("{e:#}"))
    }
}

/// How an abort ended.
#[derive(Debug, PartialEq)]
enum Aborted {
    Clean,
    /// The producer is inside another transactional call, or the abort failed in a way that
    /// calling it again won't mend (or the stage is stopping and won't wait).
    Stuck(String),
    /// Fenced by another instance, or a fatal producer error.
    Fatal(String),
}

/// Calls `abort_transaction` until it is done. A timed-out abort goes on in the background and
/// librdkafka completes it only when it is called again; meanwhile it refuses every other
/// transactional call as conflicting. So a timeout is always retried (while not shutting
/// down), and any other error is reported, never left behind.
fn finish_abort(
    shutdown: &AtomicBool,
    mut call: impl FnMut() -> rdkafka::error::KafkaResult<()>,
) -> Aborted {
    loop {
        match call() {
            Ok(()) => return Aborted::Clean,
            Err(e) => {
                if let Failure::Fatal(why) = classify(&e) {
                    return Aborted::Fatal(why);
                }
                let timed_out = e.rdkafka_error_code() == Some(RDKafkaErrorCode::OperationTimedOut);
                if !timed_out || shutdown.load(Ordering::Relaxed) {
                    return Aborted::Stuck(e.to_string());
                }
                tracing::warn!("the abort is still going on; waiting for it: {e}");
            }
        }
    }
}

/// Retries a transactional call while the broker says it is worth retrying.
fn retry(
    shutdown: &AtomicBool,
    what: &str,
    mut f: impl FnMut() -> rdkafka::error::KafkaResult<()>,
) -> Result<(), Failure> {
    let mut pause = Duration::from_millis(100);
    loop {
        match f() {
            Ok(()) => return Ok(()),
            Err(e) if retriable(&e) && !shutdown.load(Ordering::Relaxed) => {
                tracing::warn!("retrying: cannot {what} yet: {e}");
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(classify(&e)),
        }
    }
}

struct Inner<S> {
    stage: S,
    io: Io,
    /// Set when a batch was aborted: every partition restarts from what was committed.
    rewind: bool,
    fatal: Option<String>,
    out: Vec<Record>,
    shutdown: Arc<AtomicBool>,
    /// `leadguard_stage_restarts_total`, when metrics are on.
    restarts: Option<prometheus::IntCounterVec>,
}

impl<S: Stage> Inner<S> {
    /// Every partition restarts from what was committed (see `rewind`).
    fn restart(&mut self, cause: RestartCause) {
        self.rewind = true;
        self.count_restart(cause);
    }

    fn count_restart(&self, cause: RestartCause) {
        if let Some(m) = &self.restarts {
            m.with_label_values(&[self.stage.name(), cause.as_str()])
                .inc();
        }
    }

    fn send(&mut self) {
        if self.rewind || self.fatal.is_some() {
            // A batch about to be redone (or a stage about to stop): what it produced goes
            // with it, above all a snapshot that would account for it.
            self.out.clear();
            return;
        }
        let mut out = std::mem::take(&mut self.out);
        let result = self.io.send_all(&mut out);
        self.out = out;
        self.out.clear();
        self.settle(result);
    }

    fn commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        if self.rewind || self.fatal.is_some() {
            return;
        }
        let offsets = self.stage.offsets();
        let result = self.io.commit(consumer, &offsets, &self.shutdown);
        self.settle_commit(result);
    }

    fn settle_commit(&mut self, result: Result<(), Failure>) {
        if result.is_ok() {
            self.stage.committed();
        }
        self.settle(result);
    }

    fn settle(&mut self, result: Result<(), Failure>) {
        match result {
            Ok(()) => {}
            Err(Failure::Rewind(why)) => {
                tracing::warn!(
                    "{}: batch aborted ({why}); restarting from what was committed",
                    self.stage.name()
                );
                if let Err(why) = self.io.abort(&self.shutdown) {
                    self.fatal = Some(why);
                }
                self.restart(RestartCause::CommitFailed);
            }
            Err(Failure::Fatal(why)) => {
                self.io.abort_before_exit();
                self.fatal = Some(why);
            }
        }
    }
}

/// The consumer's context: rebalances reach the stage through it.
pub struct StageContext<S> {
    inner: Arc<Mutex<Inner<S>>>,
}

fn lock<S>(m: &Mutex<Inner<S>>) -> MutexGuard<'_, Inner<S>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<S: Stage> ClientContext for StageContext<S> {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        forward_log(level, fac, message);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        // Reaching the end of a partition is news, not an error (the stage handles it).
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::warn!("consumer: {error}: {reason}");
        }
    }
}

fn parts(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

/// Restores `parts` and says where each starts reading.
fn assign<S: Stage>(
    inner: &mut Inner<S>,
    consumer: &BaseConsumer<StageContext<S>>,
    list: &[(String, i32)],
) -> Result<Vec<Offset>> {
    let mut tpl = TopicPartitionList::new();
    for (t, p) in list {
        tpl.add_partition(t, *p);
    }
    let committed = consumer
        .committed_offsets(tpl, REQUEST_TIMEOUT)
        .context("cannot read the committed offsets")?;
    let mut with_offsets: Vec<(String, i32, Option<i64>)> = Vec::with_capacity(list.len());
    for (t, p) in list {
        // "Not known now" must not read as "never committed": that would redo the partition
        // from its beginning.
        let e = committed
            .find_partition(t, *p)
            .ok_or_else(|| anyhow!("no committed offset answer for {t}[{p}]"))?;
        e.error()
            .with_context(|| format!("cannot read the committed offset of {t}[{p}]"))?;
        let o = match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        };
        with_offsets.push((t.clone(), *p, o));
    }
    let starts = inner.stage.assigned(&with_offsets)?;
    Ok(with_offsets
        .iter()
        .zip(starts)
        .map(|((_, _, committed), start)| match start {
            StartAt::Beginning => Offset::Beginning,
            StartAt::Offset(o) => Offset::Offset(o),
            StartAt::Committed => committed.map_or(Offset::Beginning, Offset::Offset),
        })
        .collect())
}

impl<S: Stage> ConsumerContext for StageContext<S> {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let mut inner = lock(&self.inner);
        let list = parts(tpl);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                tracing::info!("{}: assigned {}", inner.stage.name(), describe(&list));
                let mut assignment = TopicPartitionList::new();
                match assign(&mut inner, consumer, &list) {
                    Ok(offsets) => {
                        for ((t, p), o) in list.iter().zip(offsets) {
                            let _ = assignment.add_partition_offset(t, *p, o);
                        }
                    }
                    Err(e) => {
                        // Take the partitions anyway (refusing them would stall the group),
                        // and restore them again from the main loop.
                        tracing::warn!(
                            "{}: restoring the assigned partitions failed: {e:#}; retrying",
                            inner.stage.name()
                        );
                        for (t, p) in &list {
                            assignment.add_partition(t, *p);
                        }
                        inner.restart(RestartCause::RestoreFailed);
                    }
                }
                if let Err(e) = consumer.incremental_assign(&assignment) {
                    inner.fatal = Some(format!("cannot take the assigned partitions: {e}"));
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!("{}: giving up {}", inner.stage.name(), describe(&list));
                if consumer.assignment_lost() {
                    // Someone else owns them already: what was not committed is not ours
                    // to commit.
                    let shutdown = inner.shutdown.clone();
                    if let Err(why) = inner.io.abort(&shutdown) {
                        inner.fatal = Some(why);
                    }
                    inner.restart(RestartCause::PartitionsLost);
                } else {
                    // What was processed first, then the hand-off snapshot (see `run`); none
                    // when that commit failed: the next owner redoes the batch.
                    inner.commit(consumer);
                    if !inner.rewind && inner.fatal.is_none() {
                        let mut out = std::mem::take(&mut inner.out);
                        inner.stage.revoking(&list, &mut out);
                        inner.out = out;
                        inner.send();
                        inner.commit(consumer);
                    }
                }
                inner.stage.forget(&list);
                if let Err(e) = consumer.incremental_unassign(tpl) {
                    tracing::warn!("giving up partitions: {e}");
                }
            }
            other => tracing::warn!("rebalance error: {other:?}"),
        }
    }
}

fn describe(list: &[(String, i32)]) -> String {
    if list.is_empty() {
        return "no partitions".into();
    }
    list.iter()
        .map(|(t, p)| format!("{t}[{p}]"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Settings of one stage's loop.
pub struct LoopSettings {
    pub consumer: ClientConfig,
    pub producer: ClientConfig,
    pub topics: Vec<String>,
    pub transactional: bool,
    pub commit_interval: Duration,
    pub max_batch: usize,
    pub status_every: Duration,
    /// `leadguard_stage_restarts_total`, when metrics are on.
    pub restarts: Option<prometheus::IntCounterVec>,
}

/// Runs a stage until `shutdown` is set (then commits what was processed) or a fatal error.
pub fn run<S: Stage>(stage: S, settings: LoopSettings, shutdown: Arc<AtomicBool>) -> Result<()> {
    let name = stage.name();
    let io = Io::new(&settings.producer, settings.transactional)?;
    io.init(&shutdown)?;
    let inner = Arc::new(Mutex::new(Inner {
        stage,
        io,
        rewind: false,
        fatal: None,
        out: Vec::new(),
        shutdown: shutdown.clone(),
        restarts: settings.restarts.clone(),
    }));
    let consumer: BaseConsumer<StageContext<S>> = settings
        .consumer
        .create_with_context(StageContext {
            inner: inner.clone(),
        })
        .context("cannot create the Kafka consumer")?;
    let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .with_context(|| format!("cannot subscribe to {}", topics.join(", ")))?;
    tracing::info!("{name}: consuming {}", topics.join(", "));
    let mut last_status = Instant::now();
    let mut lag_watch = LagWatch::default();
    let mut backoff = Duration::from_millis(200);
    while !shutdown.load(Ordering::Relaxed) {
        {
            let mut g = lock(&inner);
            if let Some(why) = g.fatal.take() {
                return Err(anyhow!("{name}: {why}"));
            }
            if g.rewind {
                match rewind(&mut g, &consumer) {
                    Ok(()) => {
                        g.rewind = false;
                        backoff = Duration::from_millis(200);
                    }
                    Err(e) => {
                        // Still rewinding: the next pass tries again.
                        g.count_restart(RestartCause::RestoreFailed);
                        drop(g);
                        tracing::warn!("{name}: cannot restart from what was committed yet: {e:#}");
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
            }
        }
        let started = Instant::now();
        let mut n = 0;
        while n < settings.max_batch && !shutdown.load(Ordering::Relaxed) {
            let left = settings.commit_interval.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            match consumer.poll(left) {
                None => break,
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    let mut g = lock(&inner);
                    if g.rewind || g.fatal.is_some() {
                        break;
                    }
                    let mut out = std::mem::take(&mut g.out);
                    g.stage.at_end(p, &mut out);
                    g.out = out;
                    g.send();
                }
                Some(Err(e)) => {
                    tracing::warn!("{name}: {e}");
                    break;
                }
                Some(Ok(m)) => {
                    let mut g = lock(&inner);
                    if g.rewind || g.fatal.is_some() {
                        break;
                    }
                    let mut out = std::mem::take(&mut g.out);
                    g.stage.handle(&m, &mut out);
                    g.out = out;
                    g.send();
                    n += 1;
                }
            }
        }
        let mut g = lock(&inner);
        if g.rewind {
            continue;
        }
        g.commit(&consumer);
        if g.rewind || g.fatal.is_some() {
            // What maintenance would write (snapshots) must not account for a batch that
            // is about to be redone.
            continue;
        }
        // Snapshots and ticks after the commit of the outputs they account for: in
        // at-least-once mode, a snapshot that is visible implies its outputs were delivered.
        let mut out = std::mem::take(&mut g.out);
        g.stage.maintain(&mut out);
        g.out = out;
        g.send();
        g.commit(&consumer);
        // Without a transaction, what must not be seen before what was just committed (a
        // tick's outputs before the tick's record) goes out in steps, each once the one
        // before it was delivered.
        while !g.rewind && g.fatal.is_none() {
            let mut out = std::mem::take(&mut g.out);
            g.stage.after_maintenance(&mut out);
            g.out = out;
            if g.out.is_empty() {
                break;
            }
            g.send();
            g.commit(&consumer);
        }
        if last_status.elapsed() >= settings.status_every {
            last_status = Instant::now();
            let offsets = g.stage.offsets();
            let line = format!(
                "{name}: {}; {} records produced, {} commits",
                g.stage.status(),
                g.io.produced,
                g.io.commits
            );
            drop(g);
            let lag = lag(&consumer, &offsets);
            tracing::info!("{line}; {}", lag.describe());
            lock(&inner).stage.observe_lag(&lag.each);
            lag_watch.observe(name, &lag);
        }
    }
    // Graceful stop: hand off and commit what was processed.
    {
        let mut g = lock(&inner);
        if !g.rewind && g.fatal.is_none() {
            g.commit(&consumer);
        }
        if !g.rewind && g.fatal.is_none() {
            let mut out = std::mem::take(&mut g.out);
            g.stage.shutting_down(&mut out);
            g.out = out;
            g.send();
            // A shutdown request must not interrupt the last commit's retries.
            let offsets = g.stage.offsets();
            let never = AtomicBool::new(false);
            let result = g.io.commit(&consumer, &offsets, &never);
            g.settle_commit(result);
        }
        tracing::info!(
            "{name}: stopped; {}; {} records produced, {} commits",
            g.stage.status(),
            g.io.produced,
            g.io.commits
        );
        if let Some(why) = g.fatal.take() {
            return Err(anyhow!("{name}: {why}"));
        }
    }
    // Closing the consumer revokes its partitions; nothing is left to commit by then.
    drop(consumer);
    Ok(())
}

/// How far behind the end of its input partitions a stage is.
struct Lag {
    total: i64,
    worst: Option<(String, i32, i64)>,
    unknown: usize,
    /// Per partition that answered.
    each: Vec<(String, i32, i64)>,
}

impl Lag {
    fn describe(&self) -> String {
        match &self.worst {
            None if self.unknown == 0 => "lag 0".to_string(),
            None => format!("lag unknown ({} partitions unanswered)", self.unknown),
            Some((t, p, n)) => format!("lag {} messages (most: {t}[{p}] {n})", self.total),
        }
    }
}

/// Messages between what was processed and the end of each partition (a broker request per
/// partition, made once per status interval).
fn lag<C: ConsumerContext>(consumer: &BaseConsumer<C>, offsets: &[(String, i32, i64)]) -> Lag {
    let mut lag = Lag {
        total: 0,
        worst: None,
        unknown: 0,
        each: Vec::with_capacity(offsets.len()),
    };
    for (t, p, o) in offsets {
        match consumer.fetch_watermarks(t, *p, Duration::from_secs(2)) {
            Ok((_, high)) => {
                let n = (high - o).max(0);
                lag.total += n;
                lag.each.push((t.clone(), *p, n));
                if n > 0 && lag.worst.as_ref().is_none_or(|w| n > w.2) {
                    lag.worst = Some((t.clone(), *p, n));
                }
            }
            Err(_) => lag.unknown += 1,
        }
    }
    lag
}

/// Warns when the lag has grown over several status intervals in a row: falling behind must
/// not be silent.
#[derive(Default)]
struct LagWatch {
    last: i64,
    growing: u32,
}

impl LagWatch {
    fn observe(&mut self, name: &str, lag: &Lag) {
        if lag.total > self.last && lag.total > 0 {
            self.growing += 1;
        } else {
            self.growing = 0;
        }
        self.last = lag.total;
        if self.growing >= 3 {
            tracing::warn!(
                "{name}: falling behind: the lag grew for {} status intervals in a row ({}); add instances (up to one per partition) or look at the broker",
                self.growing,
                lag.describe()
            );
        }
    }
}

/// After an abort: every assigned partition restarts from what was committed.
fn rewind<S: Stage>(inner: &mut Inner<S>, consumer: &BaseConsumer<StageContext<S>>) -> Result<()> {
    let assignment = consumer
        .assignment()
        .context("cannot read the assignment")?;
    let list = parts(&assignment);
    inner.stage.forget(&list);
    let offsets = assign(inner, consumer, &list)?;
    for ((t, p), o) in list.iter().zip(offsets) {
        consumer
            .seek(t, *p, o, REQUEST_TIMEOUT)
            .with_context(|| format!("cannot go back to {o:?} in {t}[{p}]"))?;
    }
    inner.io.last_committed.clear();
    tracing::info!(
        "{}: restarted {} from what was committed",
        inner.stage.name(),
        describe(&list)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lag(total: i64) -> Lag {
        Lag {
            total,
            worst: (total > 0).then(|| ("t".to_string(), 0, total)),
            unknown: 0,
            each: Vec::new(),
        }
    }

    #[test]
    fn a_lag_that_keeps_growing_is_noticed_and_a_steady_one_is_not() {
        let mut w = LagWatch::default();
        for n in [10, 20, 30] {
            w.observe("engine", &lag(n));
        }
        assert_eq!(w.growing, 3, "three growing intervals in a row");
        w.observe("engine", &lag(30));
        assert_eq!(w.growing, 0, "a steady lag is not falling behind");
        w.observe("engine", &lag(0));
        assert_eq!(w.growing, 0);
        assert_eq!(lag(5).describe(), "lag 5 messages (most: t[0] 5)");
        assert_eq!(lag(0).describe(), "lag 0");
    }

    #[test]
    fn a_broker_without_transactions_is_fatal_not_retried() {
        let e = KafkaError::MessageProduction(RDKafkaErrorCode::UnsupportedFeature);
        assert!(!retriable(&e));
        assert!(matches!(classify(&e), Failure::Fatal(m) if m.contains("at_least_once")));
    }

    /// Plays `results` back as the answers of successive `abort_transaction` calls.
    fn abort_with(results: Vec<RDKafkaErrorCode>, shutdown: bool) -> (Aborted, usize) {
        let mut calls = 0;
        let aborted = finish_abort(&AtomicBool::new(shutdown), || {
            calls += 1;
            match results.get(calls - 1) {
                None | Some(RDKafkaErrorCode::NoError) => Ok(()),
                Some(code) => Err(KafkaError::MessageProduction(*code)),
            }
        });
        (aborted, calls)
    }

    #[test]
    fn a_timed_out_abort_is_called_again_until_it_is_done() {
        use RDKafkaErrorCode::OperationTimedOut as TimedOut;
        assert_eq!(abort_with(vec![], false), (Aborted::Clean, 1));
        assert_eq!(
            abort_with(vec![TimedOut, TimedOut], false),
            (Aborted::Clean, 3)
        );
    }

    #[test]
    fn an_abort_that_cannot_finish_is_reported_not_retried() {
        use RDKafkaErrorCode::OperationTimedOut as TimedOut;
        // Refused because another transactional call is still in progress.
        let (aborted, calls) = abort_with(vec![TimedOut, RDKafkaErrorCode::Conflict], false);
        assert!(matches!(aborted, Aborted::Stuck(_)), "{aborted:?}");
        assert_eq!(calls, 2);
        // A stopping stage doesn't wait for the background abort.
        let (aborted, calls) = abort_with(vec![TimedOut], true);
        assert!(matches!(aborted, Aborted::Stuck(_)), "{aborted:?}");
        assert_eq!(calls, 1);
        let (aborted, _) = abort_with(vec![RDKafkaErrorCode::UnsupportedFeature], false);
        assert!(matches!(aborted, Aborted::Fatal(_)), "{aborted:?}");
    }
}
