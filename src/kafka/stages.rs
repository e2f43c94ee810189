//! The two stages: the router (input topics → repartition topic, keyed by customer) and the
//! engine stage (one engine per partition of the state topic).

use super::changelog::{Restored, Restorer, H_SNAPSHOT};
use super::records::{self, Coordinates, Record, Routed};
use super::stage::{Stage, StartAt};
use super::task::{Message as TaskMessage, Start, Task, TaskContext, TopicParsing};
use crate::host::{EngineHandle, Query};
use crate::ingest::Ingest;
use crate::time::wall_clock;
use anyhow::{anyhow, Context as _, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

fn header<'m>(m: &'m BorrowedMessage<'_>, name: &str) -> Option<&'m [u8]> {
    m.headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
}

fn timestamp(m: &BorrowedMessage<'_>) -> Option<i64> {
    m.timestamp().to_millis().filter(|t| *t >= 0)
}

/// Re-keys input by customer into the repartition topic. Stateless: its offsets are all it
/// commits.
pub struct Router {
    ingest: Ingest,
    parsing: Vec<TopicParsing>,
    repartition: String,
    dead_letters: String,
    positions: BTreeMap<(String, i32), i64>,
    routed: u64,
    dead: u64,
}

impl Router {
    pub fn new(ctx: &TaskContext, repartition: String) -> Router {
        Router {
            ingest: Ingest::new(ctx.rules.clone()),
            parsing: ctx.parsing.clone(),
            repartition,
            dead_letters: ctx.dead_letters.clone(),
            positions: BTreeMap::new(),
            routed: 0,
            dead: 0,
        }
    }
}

impl Stage for Router {
    fn name(&self) -> &'static str {
        "router"
    }

    fn assigned(&mut self, parts: &[(String, i32, Option<i64>)]) -> Result<Vec<StartAt>> {
        Ok(parts.iter().map(|_| StartAt::Committed).collect())
    }

    fn revoking(&mut self, _: &[(String, i32)], _: &mut Vec<Record>) {}

    fn forget(&mut self, parts: &[(String, i32)]) {
        for p in parts {
            self.positions.remove(p);
        }
    }

    fn handle(&mut self, m: &BorrowedMessage<'_>, out: &mut Vec<Record>) {
        let at = Coordinates {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
        };
        let parsing = self.parsing.iter().find(|p| p.topic == at.topic);
        let routed = records::route(
            &mut self.ingest,
            parsing.and_then(|p| p.mapping.as_ref()),
            parsing.map_or(at.topic.as_str(), |p| p.default_source.as_str()),
            m.payload().unwrap_or_default(),
            m.key(),
            timestamp(m),
            &at,
            &self.repartition,
            &self.dead_letters,
        );
        match routed {
            Routed::Forward(r) => {
                self.routed += 1;
                out.push(r);
            }
            Routed::Dead(r) => {
                self.dead += 1;
                out.push(r);
            }
            Routed::Skip => {}
        }
        self.positions
            .insert((at.topic, at.partition), at.offset + 1);
    }

    fn at_end(&mut self, _: i32, _: &mut Vec<Record>) {}

    fn maintain(&mut self, _: &mut Vec<Record>) {}

    fn shutting_down(&mut self, _: &mut Vec<Record>) {}

    fn offsets(&self) -> Vec<(String, i32, i64)> {
        self.positions
            .iter()
            .map(|((t, p), o)| (t.clone(), *p, *o))
            .collect()
    }

    fn status(&self) -> String {
        format!(
            "{} messages re-keyed, {} dead letters, {} partitions",
            self.routed,
            self.dead,
            self.positions.len()
        )
    }
}

/// The changelog reader's client context: reaching the end of a partition is what it waits
/// for, not an error to log.
pub struct ReaderContext;

impl rdkafka::ClientContext for ReaderContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        super::stage::forward_log(level, fac, message);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(error, KafkaError::PartitionEOF(_))
            && error.rdkafka_error_code() != Some(rdkafka::error::RDKafkaErrorCode::PartitionEOF)
        {
            tracing::warn!("changelog reader: {error}: {reason}");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for ReaderContext {}

/// Reads a changelog partition from the beginning to its end.
pub struct ChangelogReader {
    consumer: BaseConsumer<ReaderContext>,
    topic: String,
    /// Longest wait for the next record before giving up (the caller retries).
    patience: Duration,
}

impl ChangelogReader {
    pub fn new(config: &ClientConfig, topic: String) -> Result<ChangelogReader> {
        Ok(ChangelogReader {
            consumer: config
                .create_with_context(ReaderContext)
                .context("cannot create the changelog reader")?,
            topic,
            patience: Duration::from_secs(30),
        })
    }

    pub fn read(&self, partition: i32) -> Result<Restored> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, partition, Offset::Beginning)?;
        self.consumer.assign(&tpl)?;
        let mut restorer = Restorer::default();
        let result = loop {
            match self.consumer.poll(self.patience) {
                None => {
                    break Err(anyhow!(
                        "no answer from {}[{partition}] within {:?}",
                        self.topic,
                        self.patience
                    ))
                }
                // The reader is reused partition after partition: an end (or a record) of a
                // partition read before may still be queued.
                Some(Err(KafkaError::PartitionEOF(p))) if p == partition => break Ok(()),
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => break Err(anyhow!("reading {}[{partition}]: {e}", self.topic)),
                Some(Ok(m)) if m.partition() != partition => {}
                Some(Ok(m)) => {
                    if let Err(e) = restorer.add(m.key(), m.payload(), header(&m, H_SNAPSHOT)) {
                        break Err(anyhow!(
                            "{}[{partition}] offset {}: {e}",
                            self.topic,
                            m.offset()
                        ));
                    }
                }
            }
        };
        let _ = self.consumer.unassign();
        result?;
        let records = restorer.records;
        let restored = restorer
            .finish()
            .map_err(|e| anyhow!("{}[{partition}]: {e}", self.topic))?;
        tracing::debug!(
            "{}[{partition}]: {records} changelog records read",
            self.topic
        );
        let u = restored.unfinished;
        if u.chunks > 0 {
            tracing::warn!(
                "{}[{partition}]: {} chunk(s), {} bytes, of {} snapshot(s) that were never \
                 completed stay in the changelog (a writer stopped while writing them); no state \
                 is read from them, but they are read past at every restore of the partition \
                 (README \"Kafka\", state and rebalances)",
                self.topic,
                u.chunks,
                u.bytes,
                u.snapshots
            );
        }
        Ok(restored)
    }
}

/// One engine per partition of the state topic.
pub struct EngineStage {
    ctx: Arc<TaskContext>,
    state_topic: String,
    /// The state topic is an input read in place (not the repartition topic).
    in_place: bool,
    tasks: BTreeMap<i32, Task>,
    reader: ChangelogReader,
    /// Counters of tasks that went away, so totals survive rebalances.
    gone: super::task::TaskCounts,
    /// The HTTP API's questions, per partition (when the API is served).
    engines: Option<EngineHandle>,
    queries: BTreeMap<i32, tokio::sync::mpsc::Receiver<Query>>,
    /// Reloaded rules (the watcher already refused changes that need a restart) and roster.
    reloads: super::Reloads,
}

impl EngineStage {
    pub fn new(
        ctx: Arc<TaskContext>,
        state_topic: String,
        in_place: bool,
        reader: ChangelogReader,
        engines: Option<EngineHandle>,
        reloads: super::Reloads,
    ) -> EngineStage {
        EngineStage {
            ctx,
            state_topic,
            in_place,
            tasks: BTreeMap::new(),
            reader,
            gone: Default::default(),
            engines,
            queries: BTreeMap::new(),
            reloads,
        }
    }

    /// Puts reloaded rules in force in every partition's engine, and for partitions assigned
    /// later. Between batches, after a commit: a batch is judged by one set of rules.
    fn reload_rules(&mut self) {
        let Some(rx) = self.reloads.rules.as_mut() else {
            return;
        };
        if !rx.has_changed().unwrap_or(false) {
            return;
        }
        let rules = rx.borrow_and_update().clone();
        for task in self.tasks.values_mut() {
            task.reload_rules(rules.clone());
        }
        let mut ctx = (*self.ctx).clone();
        ctx.rules = rules;
        self.ctx = Arc::new(ctx);
    }

    /// Puts a reloaded roster in force in every partition's engine (the next maintenance of
    /// each tries its line, logged, when someone may have room), for partitions assigned
    /// later, and for notifications. Between batches, as rules.
    fn reload_roster(&mut self) {
        let Some(rx) = self.reloads.roster.as_mut() else {
            return;
        };
        if !rx.has_changed().unwrap_or(false) {
            return;
        }
        let roster = rx.borrow_and_update().clone();
        for task in self.tasks.values_mut() {
            task.reload_roster(roster.clone());
        }
        if let Some(n) = &self.ctx.observers.notifier {
            n.set_roster(&roster);
        }
        let mut ctx = (*self.ctx).clone();
        ctx.roster = (*roster).clone();
        self.ctx = Arc::new(ctx);
    }

    /// Answers the API's waiting questions about one partition's customers. Between two
    /// messages, so answers reflect every message processed before them.
    fn answer(&mut self, partition: i32) {
        let (Some(task), Some(rx)) = (self.tasks.get(&partition), self.queries.get_mut(&partition))
        else {
            return;
        };
        while let Ok(q) = rx.try_recv() {
            let now = match self.ctx.clock {
                super::Clock::Wall => wall_clock(),
                super::Clock::Event => task.engine().clock().unwrap_or_else(wall_clock),
            };
            crate::host::answer(task.engine(), q, now);
        }
    }

    fn totals(&self) -> super::task::TaskCounts {
        let mut t = self.gone;
        for task in self.tasks.values() {
            add(&mut t, &task.counts);
        }
        t
    }
}

fn add(total: &mut super::task::TaskCounts, c: &super::task::TaskCounts) {
    total.messages += c.messages;
    total.replayed += c.replayed;
    total.outputs += c.outputs;
    total.dead_letters += c.dead_letters;
    total.snapshots += c.snapshots;
    total.ticks += c.ticks;
}

impl Stage for EngineStage {
    fn name(&self) -> &'static str {
        "engine"
    }

    fn assigned(&mut self, parts: &[(String, i32, Option<i64>)]) -> Result<Vec<StartAt>> {
        let mut starts = Vec::with_capacity(parts.len());
        for (topic, p, committed) in parts {
            if *topic != self.state_topic {
                starts.push(StartAt::Committed);
                continue;
            }
            let restored = self.reader.read(*p)?;
            let had_snapshot = restored.snapshot.as_ref().map(|(m, _)| (m.id, m.offset));
            let (task, start) = Task::restore(&self.ctx, *p, restored, *committed)
                .map_err(|e| anyhow!("{topic}[{p}]: {e}"))?;
            tracing::info!(
                "engine: {topic}[{p}] restored ({}), committed offset {}, starting at {:?}",
                match had_snapshot {
                    Some((id, offset)) => format!("snapshot {id} at offset {offset}"),
                    None => "no snapshot yet".to_string(),
                },
                committed.map_or("none".to_string(), |o| o.to_string()),
                start
            );
            self.tasks.insert(*p, task);
            if let Some(engines) = &self.engines {
                self.queries.insert(*p, engines.register(&p.to_string()));
            }
            starts.push(match start {
                Start::Beginning => StartAt::Beginning,
                Start::Offset(o) => StartAt::Offset(o),
            });
        }
        Ok(starts)
    }

    fn revoking(&mut self, parts: &[(String, i32)], out: &mut Vec<Record>) {
        // Hand-off: a snapshot at the current offset, so the next owner replays nothing.
        for (topic, p) in parts {
            if *topic != self.state_topic {
                continue;
            }
            if let Some(task) = self.tasks.get_mut(p) {
                if task.changed() && !task.replaying() {
                    task.snapshot(&self.ctx, out);
                }
            }
        }
    }

    fn forget(&mut self, parts: &[(String, i32)]) {
        for (topic, p) in parts {
            if *topic == self.state_topic {
                if let Some(task) = self.tasks.remove(p) {
                    add(&mut self.gone, &task.counts);
                }
                self.queries.remove(p);
                let label = p.to_string();
                if let Some(engines) = &self.engines {
                    engines.unregister(&label);
                }
                if let Some(m) = &self.ctx.observers.metrics {
                    m.forget_partition(&label);
                }
            }
        }
    }

    fn handle(&mut self, m: &BorrowedMessage<'_>, out: &mut Vec<Record>) {
        let Some(task) = self.tasks.get_mut(&m.partition()) else {
            // Not restored (yet): the rewind after a failed restore reads it again.
            return;
        };
        let own = Coordinates {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
        };
        let at = if self.in_place {
            own
        } else {
            Coordinates::from_headers(|n| header(m, n)).unwrap_or(own)
        };
        task.handle(
            &self.ctx,
            TaskMessage {
                offset: m.offset(),
                key: m.key(),
                payload: m.payload().unwrap_or_default(),
                timestamp: timestamp(m),
            },
            &at,
            out,
        );
        self.answer(m.partition());
    }

    fn at_end(&mut self, partition: i32, out: &mut Vec<Record>) {
        if let Some(task) = self.tasks.get_mut(&partition) {
            task.at_end(&self.ctx, out);
        }
    }

    fn maintain(&mut self, out: &mut Vec<Record>) {
        self.reload_rules();
        self.reload_roster();
        let now = wall_clock();
        for task in self.tasks.values_mut() {
            task.maintain(&self.ctx, now, out);
        }
        let partitions: Vec<i32> = self.tasks.keys().copied().collect();
        for p in partitions {
            self.answer(p);
        }
        if let Some(m) = &self.ctx.observers.metrics {
            for (p, task) in &self.tasks {
                m.report_partition(&p.to_string(), task.report());
            }
        }
        if let Some(engines) = &self.engines {
            // Ready once every partition's state is caught up with what was committed.
            engines.set_ready(self.tasks.values().all(|t| !t.replaying()));
        }
    }

    fn after_maintenance(&mut self, out: &mut Vec<Record>) {
        for task in self.tasks.values_mut() {
            task.after_maintenance(&self.ctx, out);
        }
    }

    fn observe_lag(&mut self, lag: &[(String, i32, i64)]) {
        for (topic, p, n) in lag {
            if *topic == self.state_topic {
                if let Some(task) = self.tasks.get_mut(p) {
                    task.lag = *n as u64;
                }
            }
        }
    }

    fn shutting_down(&mut self, out: &mut Vec<Record>) {
        for task in self.tasks.values_mut() {
            if task.changed() && !task.replaying() {
                task.snapshot(&self.ctx, out);
            }
        }
    }

    fn committed(&mut self) {
        for task in self.tasks.values_mut() {
            task.committed(&self.ctx);
        }
    }

    fn offsets(&self) -> Vec<(String, i32, i64)> {
        self.tasks
            .values()
            .filter_map(|t| {
                t.commit_offset()
                    .map(|o| (self.state_topic.clone(), t.partition, o))
            })
            .collect()
    }

    fn status(&self) -> String {
        let t = self.totals();
        let customers: usize = self
            .tasks
            .values()
            .map(|t| t.engine().state_size().customers)
            .sum();
        format!(
            "{} partitions, {} messages ({} replayed after a restore), {} outputs, {} dead letters, {} snapshots, {} ticks, {} customers tracked",
            self.tasks.len(),
            t.messages,
            t.replayed,
            t.outputs,
            t.dead_letters,
            t.snapshots,
            t.ticks,
            customers
        )
    }
}
