//! One state partition: its engine, where it is in the input, and its recovery bookkeeping.
//! No client code here: the driver feeds messages in and produces the records that come out.

use super::changelog::{self, Restored, SnapshotName, Tick, TickLog};
use super::config::Clock;
use super::records::{self, Coordinates, OutputTopics, Record};
use crate::config::{Roster, Rules, SourceMapping};
use crate::engine::{clock, snapshot::Snapshot, Engine};
use crate::event::Event;
use crate::ingest::{Ingest, RejectReason, Rejection};
use crate::notify::NotifierHandle;
use crate::output::{Output, OutputType};
use crate::telemetry::{Metrics, PartitionReport};
use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How each input topic is read: its source mapping and the source name for events that don't
/// name one.
#[derive(Debug, Clone)]
pub struct TopicParsing {
    pub topic: String,
    pub mapping: Option<SourceMapping>,
    pub default_source: String,
}

/// What every task shares.
#[derive(Debug, Clone)]
pub struct TaskContext {
    pub rules: Arc<Rules>,
    pub roster: Roster,
    pub clock: Clock,
    pub parsing: Vec<TopicParsing>,
    pub outputs: OutputTopics,
    pub dead_letters: String,
    pub changelog: String,
    pub chunk_bytes: usize,
    pub snapshot_interval: Duration,
    pub snapshot_every: u64,
    /// Outputs, state and offsets are committed atomically (exactly-once mode). Without it, a
    /// record of the state is written only after the outputs it accounts for were delivered.
    pub atomic: bool,
    /// Metrics and notifications of the outputs produced (not of those replayed after a
    /// restore: they were produced before).
    pub observers: Observers,
}

/// What the process around the engines watches their outputs with. All optional.
#[derive(Clone, Default)]
pub struct Observers {
    pub metrics: Option<Arc<Metrics>>,
    pub notifier: Option<NotifierHandle>,
}

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observers")
            .field("metrics", &self.metrics.is_some())
            .field("notifier", &self.notifier.is_some())
            .finish()
    }
}

impl TaskContext {
    fn parsing_for(&self, topic: &str) -> Option<&TopicParsing> {
        self.parsing.iter().find(|p| p.topic == topic)
    }
}

/// One input message as the task needs it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    /// The message timestamp (ms), when the broker has one.
    pub timestamp: Option<i64>,
}

/// Counters of one task since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskCounts {
    pub messages: u64,
    pub replayed: u64,
    pub outputs: u64,
    pub dead_letters: u64,
    pub snapshots: u64,
    pub ticks: u64,
}

pub struct Task {
    pub partition: i32,
    engine: Engine,
    ingest: Ingest,
    /// The next input offset to process; `None` until the first message when starting from the
    /// beginning of the partition.
    next_offset: Option<i64>,
    /// Outputs of input before this offset were committed before a restart: replaying that
    /// input rebuilds the state, and its outputs are dropped.
    suppress_until: i64,
    /// Logged ticks still to re-apply while replaying, each with whether its outputs may have
    /// been lost in the crash and are published again (`at_least_once` mode: see
    /// [`TickLog::delivered`]).
    pending_ticks: VecDeque<(Tick, bool)>,
    /// Ticks since the last snapshot (persisted with each commit that adds one).
    ticks: TickLog,
    /// The newest snapshot written or restored (id 0: none).
    snapshot: SnapshotName,
    /// Names this task's snapshots apart from another writer's (see `changelog`).
    writer: u64,
    /// Chunks to delete after the next snapshot's manifest.
    superseded: Vec<Vec<u8>>,
    since_snapshot: u64,
    last_snapshot: Instant,
    /// The consumer reached the end of the partition and nothing arrived since.
    caught_up: bool,
    /// At-least-once mode: the outputs of ticks, which go out after the ticks' record
    /// ([`Task::after_maintenance`]).
    tick_outputs: TickOutputs,
    pub counts: TaskCounts,
    /// Messages refused before they reached the engine, by reason (for the metrics).
    parse_rejects: BTreeMap<RejectReason, u64>,
    /// Messages between this task's offset and the end of its partition, as last measured.
    pub lag: u64,
    /// The messages read before the clock started, in offset order: held until it can start
    /// where the partition's first events agree (see [`clock`]). With the event clock, every
    /// partition starts so; with the wall clock, one whose first message has no timestamp to
    /// check its event against (see [`Task::holds_for_the_clock`]).
    held: Vec<Held>,
    /// How many of `held` are events (parsed without a rejection), and their bytes in all.
    held_events: usize,
    held_bytes: usize,
    /// While the held messages are applied: where the clock started.
    start_note: clock::StartNote,
    /// Alerts and withdrawals produced since the last commit, for the notifier: they are sent
    /// once the commit that makes them visible has landed (see [`Task::committed`]).
    to_notify: Vec<Output>,
    /// Rules reloaded while the partition re-read input whose outputs were committed: put in
    /// force once it has caught up ([`Task::reload_rules`]).
    deferred_rules: Option<Arc<Rules>>,
    /// A roster reloaded while the partition re-read, likewise ([`Task::reload_roster`]).
    deferred_roster: Option<Arc<Roster>>,
    /// Rules or a roster were put in force since the last snapshot: the next maintenance
    /// writes one, so that a restart (which reads the files, the new ones) has little or
    /// nothing to re-read that the old ones decided.
    replaced: bool,
}

/// The outputs of ticks, held until the ticks' record is delivered.
#[derive(Default)]
struct TickOutputs {
    records: Vec<Record>,
    /// The alerts and withdrawals among them, for the notifier once the log says they were
    /// delivered (else a restart would publish them again, and the notifier, which remembers
    /// nothing across processes, would send them again).
    notify: Vec<Output>,
    /// The records were handed over: once they are delivered, the log is written again.
    sent: bool,
}

/// What reading a message found before it is applied to the engine.
struct Parsed {
    parsed: Option<Result<Event, Rejection>>,
    /// Its outputs were committed before a restart: apply it, drop what it produces.
    suppressed: bool,
    received: Instant,
}

/// A message read before the event clock started, owned until it is applied.
struct Held {
    /// Its offset in the task's input (`at` may name where a router first read it).
    offset: i64,
    read: Parsed,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    /// The message timestamp: with the wall clock, the event is checked against it when the
    /// held messages are applied, as it would have been when read.
    timestamp: Option<i64>,
    at: Coordinates,
}

/// A random number naming one task's snapshots: std's hasher keys are random per process and
/// differ for every `RandomState` made, which is all this needs (no extra dependency).
fn random_writer() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0u8)
}

/// The files a restored partition re-reads its input under, and those it puts in force once
/// it has caught up.
///
/// The input since the snapshot was decided, and its outputs published, under the files in
/// force when the snapshot was taken (a reload writes a snapshot before the next message: see
/// [`Task::maintain`]). Re-read under other files, it could decide otherwise (a new hire gets a
/// customer the pool couldn't give before), and the outputs of the re-read are dropped as
/// already published: the state would no longer be what was published. So the re-read runs
/// under the snapshot's files, and the files the process was started with come in force after
/// it, as a reload does, published.
struct RereadFiles {
    rules: Arc<Rules>,
    roster: Roster,
    then_rules: Option<Arc<Rules>>,
    then_roster: Option<Arc<Roster>>,
}

impl RereadFiles {
    /// The process's files, from the start.
    fn current(ctx: &TaskContext) -> RereadFiles {
        RereadFiles {
            rules: ctx.rules.clone(),
            roster: ctx.roster.clone(),
            then_rules: None,
            then_roster: None,
        }
    }

    fn of_snapshot(ctx: &TaskContext, partition: i32, snap: &Snapshot) -> RereadFiles {
        let mut files = RereadFiles::current(ctx);
        let Some(recorded) = &snap.files else {
            // An earlier build's snapshot, or files built in code.
            return files;
        };
        let (rules, roster) = match recorded.compile() {
            Ok(compiled) => compiled,
            Err(problems) => {
                tracing::warn!(
                    partition,
                    "the rules and roster recorded in the snapshot no longer compile; re-reading under the files in force, which may decide the re-read stretch otherwise than was published: {problems}"
                );
                return files;
            }
        };
        if rules != *ctx.rules {
            let restart = crate::engine::settings_needing_restart(&rules, &ctx.rules);
            if restart.is_empty() {
                tracing::info!(
                    partition,
                    "re-reading under the rules of the snapshot; the rules in force apply once the partition has caught up"
                );
                files.rules = Arc::new(rules);
                files.then_rules = Some(ctx.rules.clone());
            } else {
                // The state is restored under them as a restart takes them: a running
                // partition can't.
                tracing::warn!(
                    partition,
                    "the rules in force change {}, which the snapshot's rules can't be reloaded to; re-reading under the rules in force, which may decide the re-read stretch otherwise than was published",
                    restart.join(", ")
                );
            }
        }
        if roster != ctx.roster {
            tracing::info!(
                partition,
                "re-reading under the roster of the snapshot; the roster in force applies once the partition has caught up"
            );
            files.roster = roster;
            files.then_roster = Some(Arc::new(ctx.roster.clone()));
        }
        files
    }
}

/// Where to start reading a restored partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Beginning,
    Offset(i64),
}

impl Task {
    /// A task carrying on from what the changelog says; `committed` is the input offset the
    /// consumer group committed for the partition.
    pub fn restore(
        ctx: &TaskContext,
        partition: i32,
        restored: Restored,
        committed: Option<i64>,
    ) -> Result<(Task, Start), String> {
        let files = match &restored.snapshot {
            Some((_, snap)) => RereadFiles::of_snapshot(ctx, partition, snap),
            None => RereadFiles::current(ctx),
        };
        let (engine, start, snapshot) = match restored.snapshot {
            Some((m, snap)) => (
                Engine::restore(files.rules.clone(), &files.roster, &snap)
                    .map_err(|e| e.to_string())?,
                Start::Offset(m.offset),
                m.name(),
            ),
            None => (
                Engine::new(files.rules.clone(), &files.roster),
                Start::Beginning,
                SnapshotName::default(),
            ),
        };
        if restored.ticks_mismatched {
            tracing::warn!(
                "{}[{partition}]: the ticks logged belong to another snapshot than \
                 the newest (two instances wrote this partition at once, which at-least-once \
                 mode does not prevent); replaying without them",
                ctx.changelog
            );
        }
        let start_offset = match start {
            Start::Offset(o) => o,
            Start::Beginning => 0,
        };
        // A committed offset behind the snapshot can only come from a broker that shows
        // aborted writes; the snapshot is then the furthest consistent point.
        let suppress_until = committed.unwrap_or(start_offset).max(start_offset);
        // Ticks after those whose outputs the log says were delivered, at or after the
        // committed offset: their outputs may not have survived the crash.
        let pending_ticks = restored
            .ticks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    *t,
                    i >= restored.ticks_delivered && t.offset >= suppress_until,
                )
            })
            .collect();
        let task = Task {
            partition,
            engine,
            ingest: Ingest::new(files.rules),
            next_offset: match start {
                Start::Offset(o) => Some(o),
                Start::Beginning => None,
            },
            suppress_until,
            pending_ticks,
            ticks: TickLog {
                snapshot,
                ticks: restored.ticks,
                delivered: Some(restored.ticks_delivered),
            },
            snapshot,
            writer: random_writer(),
            superseded: restored.superseded,
            since_snapshot: 0,
            last_snapshot: Instant::now(),
            caught_up: false,
            tick_outputs: TickOutputs::default(),
            counts: TaskCounts::default(),
            parse_rejects: BTreeMap::new(),
            lag: 0,
            held: Vec::new(),
            held_events: 0,
            held_bytes: 0,
            start_note: clock::StartNote::default(),
            to_notify: Vec::new(),
            deferred_rules: files.then_rules,
            deferred_roster: files.then_roster,
            replaced: false,
        };
        Ok((task, start))
    }

    /// Re-reading input whose outputs were committed before (unlike [`Task::replaying`], not
    /// a partition that has read nothing yet and had nothing committed).
    pub fn rereading(&self) -> bool {
        !self.pending_ticks.is_empty() || self.next_offset.unwrap_or(0) < self.suppress_until
    }

    /// Holding messages for the clock's start ([`Task::maintain`] processes them once the
    /// partition has caught up). They were read under the rules and roster in force, so a
    /// reload waits for them, as for a re-read (see [`Task::reload_rules`]).
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Still re-reading input whose outputs were committed before.
    pub fn replaying(&self) -> bool {
        !self.pending_ticks.is_empty() || self.next_offset.is_none_or(|o| o < self.suppress_until)
    }

    /// The offset to commit for this partition: never behind what was committed before, and
    /// never past a message held for the clock's start (it is read again after a crash).
    pub fn commit_offset(&self) -> Option<i64> {
        self.applied_to().map(|o| o.max(self.suppress_until))
    }

    /// The offset of the first message not yet applied to the engine.
    fn applied_to(&self) -> Option<i64> {
        match self.held.first() {
            Some(h) => Some(h.offset),
            None => self.next_offset,
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether a reload must wait until the partition has caught up and has processed the
    /// messages held for the clock's start (read under the files in force). While it re-reads
    /// input whose outputs were committed, what it decides is dropped as already published:
    /// the retries a reload makes there (customers waiting for a rep with room) would never be
    /// published, and the re-read would no longer rebuild the committed state.
    fn reload_waits(&self) -> bool {
        self.rereading() || self.holding()
    }

    /// Reloaded rules: in force from the next message on, or kept for [`Task::maintain`] to
    /// put in force once the partition has caught up (`Task::reload_waits`). Logged either way.
    pub fn reload_rules(&mut self, rules: Arc<Rules>) {
        if self.reload_waits() {
            tracing::info!(
                partition = self.partition,
                "rules to apply once the partition has caught up"
            );
            self.deferred_rules = Some(rules);
            self.record_files_before_deferring();
        } else {
            self.apply_rules(rules, "rules applied");
        }
    }

    /// A reloaded roster, as [`Task::reload_rules`].
    pub fn reload_roster(&mut self, roster: Arc<Roster>) {
        if self.reload_waits() {
            tracing::info!(
                partition = self.partition,
                "roster to apply once the partition has caught up"
            );
            self.deferred_roster = Some(roster);
            self.record_files_before_deferring();
        } else {
            self.apply_roster(&roster, "roster applied");
        }
    }

    /// A deferred reload leaves the messages until it comes in force to the files in force
    /// now: a snapshot at the next maintenance that may take one records them, for a crash to
    /// re-read those messages under them. (A partition that holds its first messages has no
    /// snapshot yet that would; one that re-reads has the one it was restored from.)
    fn record_files_before_deferring(&mut self) {
        self.replaced = true;
    }

    fn apply_rules(&mut self, rules: Arc<Rules>, done: &'static str) {
        match self.replace_rules(rules) {
            Ok(summary) => tracing::info!(
                partition = self.partition,
                cooldowns_dropped = summary.cooldowns_dropped,
                "{done}"
            ),
            Err(refused) => {
                tracing::error!(partition = self.partition, "rules not applied: {refused}")
            }
        }
    }

    fn apply_roster(&mut self, roster: &Roster, done: &'static str) {
        let change = self.replace_roster(roster);
        tracing::info!(
            partition = self.partition,
            added = change.added,
            changed = change.changed,
            removed = change.removed,
            "{done}"
        );
    }

    /// Puts a reloaded roster in force from the next message on (see
    /// [`Engine::replace_roster`]). When someone may have room now, the line of waiting
    /// customers is tried at the next maintenance, logged with the ticks
    /// (`Task::try_line_again`), so that a replay after a crash tries it at the same place.
    fn replace_roster(&mut self, roster: &Roster) -> crate::engine::RosterChange {
        self.replaced = true;
        self.engine.replace_roster(roster)
    }

    /// Puts new rules in force from the next message on (see [`Engine::replace_rules`]).
    fn replace_rules(
        &mut self,
        rules: Arc<Rules>,
    ) -> Result<crate::engine::ReloadSummary, crate::engine::RestartNeeded> {
        let summary = self.engine.replace_rules(rules.clone())?;
        self.ingest.replace_rules(rules);
        // The line, when the rules may give someone room, is tried at the next maintenance,
        // logged (`Task::try_line_again`).
        self.replaced = true;
        Ok(summary)
    }

    /// The counters and state sizes to export as metrics.
    pub fn report(&self) -> PartitionReport {
        PartitionReport {
            stats: self.engine.stats(),
            parse_rejects: self.parse_rejects.clone(),
            identifiers_dropped: self.ingest.dropped_identifiers,
            outputs: self.counts.outputs,
            size: self.engine.state_size(),
            lag: self.lag,
        }
    }

    /// Processes one message. `at` is where it was first read (the message itself when the
    /// input is processed in place, else the coordinates the router recorded).
    pub fn handle(
        &mut self,
        ctx: &TaskContext,
        msg: Message<'_>,
        at: &Coordinates,
        out: &mut Vec<Record>,
    ) {
        if self.next_offset.is_some_and(|o| msg.offset < o) {
            return; // Delivered again after a seek: already processed.
        }
        let received = Instant::now();
        self.caught_up = false;
        // A tick was logged once the clock ran, so after the messages held for its start
        // were applied: they go first here too.
        if !self.held.is_empty()
            && self
                .pending_ticks
                .front()
                .is_some_and(|(t, _)| t.offset <= msg.offset)
        {
            self.release_held(ctx, out);
        }
        while let Some(t) = self.pending_ticks.front().copied() {
            if t.0.offset > msg.offset {
                break;
            }
            self.pending_ticks.pop_front();
            self.replay_tick(ctx, t, out);
        }
        let suppressed = msg.offset < self.suppress_until;
        self.counts.messages += 1;
        if suppressed {
            self.counts.replayed += 1;
        }
        let limit = ctx.rules.settings.max_message_bytes;
        let truncated = msg.payload.len() > limit;
        let parsing = ctx.parsing_for(&at.topic);
        let parsed = crate::pipeline::parse_message(
            &mut self.ingest,
            parsing.and_then(|p| p.mapping.as_ref()),
            parsing.map_or(at.topic.as_str(), |p| p.default_source.as_str()),
            &msg.payload[..msg.payload.len().min(limit)],
            truncated,
        );
        self.next_offset = Some(msg.offset + 1);
        let read = Parsed {
            parsed,
            suppressed,
            received,
        };
        if self.holds_for_the_clock(ctx, msg.timestamp) {
            self.held_events += usize::from(matches!(read.parsed, Some(Ok(_))));
            // A dead letter keeps the first `limit` bytes; one more says it was cut.
            let payload = msg.payload[..msg.payload.len().min(limit + 1)].to_vec();
            self.held_bytes += payload.len();
            self.held.push(Held {
                offset: msg.offset,
                read,
                key: msg.key.map(<[u8]>::to_vec),
                payload,
                timestamp: msg.timestamp,
                at: at.clone(),
            });
            if clock::start_now(self.held_events, self.held.len(), self.held_bytes) {
                self.release_held(ctx, out);
            }
            return;
        }
        self.apply(ctx, read, msg, at, out);
    }

    /// Whether a message with this timestamp is held for the clock's start, not applied now.
    /// Once one is held, every later one is, until they are released: they are applied in
    /// offset order.
    ///
    /// With the wall clock, a message's timestamp bounds how far ahead its event may be, so a
    /// partition whose first message has one starts its clock there, checked. A message
    /// without one (a producer on a message format older than Kafka 0.10) has nothing to be
    /// checked against: its event would set the clock alone, and a mistyped year would get
    /// every later timestamp-less event refused. So it waits, as with the event clock, for the
    /// partition's first events to agree.
    fn holds_for_the_clock(&self, ctx: &TaskContext, timestamp: Option<i64>) -> bool {
        self.engine.clock().is_none()
            && (ctx.clock == Clock::Event || timestamp.is_none() || !self.held.is_empty())
    }

    /// Starts the clock where the held events agree, then applies the held messages in
    /// offset order. Done when enough events are held, and when the consumer reaches the end
    /// of the partition (nothing more to wait for now).
    fn release_held(&mut self, ctx: &TaskContext, out: &mut Vec<Record>) {
        let held = std::mem::take(&mut self.held);
        (self.held_events, self.held_bytes) = (0, 0);
        self.start_note = clock::StartNote::started(
            self.engine.start_clock_where_agreed(
                held.iter()
                    .filter_map(|h| h.read.parsed.as_ref()?.as_ref().ok()),
            ),
        );
        for h in held {
            let msg = Message {
                offset: h.offset,
                key: h.key.as_deref(),
                payload: &h.payload,
                timestamp: h.timestamp,
            };
            self.apply(ctx, h.read, msg, &h.at, out);
        }
        self.start_note = clock::StartNote::default();
    }

    /// Applies one parsed message to the engine and produces what comes of it.
    fn apply(
        &mut self,
        ctx: &TaskContext,
        read: Parsed,
        msg: Message<'_>,
        at: &Coordinates,
        out: &mut Vec<Record>,
    ) {
        let Parsed {
            parsed,
            suppressed,
            received,
        } = read;
        let limit = ctx.rules.settings.max_message_bytes;
        let refused = match parsed {
            None => None,
            Some(Err(rejection)) => {
                if !suppressed {
                    *self.parse_rejects.entry(rejection.reason).or_default() += 1;
                }
                Some(rejection)
            }
            Some(Ok(event)) => {
                let placed = match (ctx.clock, msg.timestamp) {
                    // Live: the publisher's clock when it sent the message bounds how far in
                    // the future an event may claim to be. Deterministic on replay.
                    (Clock::Wall, Some(ts)) => self.engine.handle_event(&event, Timestamp(ts)),
                    _ => self.engine.handle_event_in_event_time(&event),
                };
                self.start_note.after(placed, ctx.rules.settings.time_zone)
            }
        };
        if let Some(rejection) = refused {
            if !suppressed {
                self.counts.dead_letters += 1;
                out.push(records::dead_letter(
                    &ctx.dead_letters,
                    &rejection,
                    msg.key,
                    msg.payload,
                    limit,
                    at,
                ));
            }
        }
        self.since_snapshot += 1;
        self.drain(ctx, suppressed, Some(received), out);
    }

    /// The consumer reached the end of the partition: any logged tick not yet re-applied is
    /// applied now, and wall-clock ticks may start.
    pub fn at_end(&mut self, ctx: &TaskContext, out: &mut Vec<Record>) {
        // With messages held for the clock's start, the ticks wait for them (`maintain`
        // applies both, in that order).
        while self.held.is_empty() {
            let Some(t) = self.pending_ticks.pop_front() else {
                break;
            };
            self.replay_tick(ctx, t, out);
        }
        if let Some(o) = self.next_offset {
            // Offsets up to the end that carried no message were transaction markers.
            self.suppress_until = self.suppress_until.min(o);
        }
        self.caught_up = true;
    }

    /// Between batches, after the previous ones were committed: a snapshot when one is due
    /// (of the state before any new tick), messages held for the clock's start once the
    /// partition is caught up, then a tick. In at-least-once mode the driver commits what this
    /// produced and then calls [`Task::after_maintenance`] for the ticks' outputs.
    pub fn maintain(&mut self, ctx: &TaskContext, now: Timestamp, out: &mut Vec<Record>) {
        // Everything handed over before was committed, and so delivered: the next tick log
        // written says so, of the ticks applied so far (a logged tick replayed below publishes
        // its outputs with this batch).
        self.mark_replayed_delivered();
        // Before the snapshot, which then records them: every message after it is decided
        // under them, so a re-read after a crash reads under them too (see `RereadFiles`).
        // Files waiting for held messages released below come in force at the next
        // maintenance: the messages until then are decided under the files in force now,
        // which a snapshot records (`Task::record_files_before_deferring`).
        if !self.reload_waits() {
            if let Some(rules) = self.deferred_rules.take() {
                self.apply_rules(rules, "rules applied (once the partition had caught up)");
            }
            if let Some(roster) = self.deferred_roster.take() {
                self.apply_roster(&roster, "roster applied (once the partition had caught up)");
            }
        }
        if self.snapshot_due(ctx) {
            self.snapshot(ctx, out);
        }
        // After the snapshot (taken before them): their outputs are committed with the next
        // commit, before a snapshot that accounts for them.
        if self.caught_up && !self.held.is_empty() {
            self.release_held(ctx, out);
            while let Some(t) = self.pending_ticks.pop_front() {
                self.replay_tick(ctx, t, out);
            }
        }
        self.try_line_again(ctx, out);
        self.tick(ctx, now, out);
    }

    /// A logged tick, applied again where it happened. Its outputs were committed, unless
    /// `republish` (at-least-once mode: a crash may have come before they were delivered):
    /// they are then published again, with the same ids.
    fn replay_tick(
        &mut self,
        ctx: &TaskContext,
        (t, republish): (Tick, bool),
        out: &mut Vec<Record>,
    ) {
        self.engine.handle_timeout(Timestamp(t.now));
        if t.line {
            self.engine.try_line_again();
        }
        if republish {
            self.drain_tick(ctx, out);
            self.tick_outputs.sent = true;
        } else {
            self.engine.drain_outputs().for_each(drop);
        }
    }

    /// After a restart under another roster or other pools ([`Engine::room_changed`]: new
    /// hires, a higher `max_owned`), once the partition has caught up: the customers waiting
    /// for a rep with room are tried again, as a rules reload tries them. Logged as a tick, so
    /// that a replay after a crash tries them at the same place in the input and publishes
    /// nothing twice.
    fn try_line_again(&mut self, ctx: &TaskContext, out: &mut Vec<Record>) {
        if !self.caught_up || self.replaying() || !self.engine.room_changed() {
            return;
        }
        let (Some(offset), Some(now)) = (self.next_offset, self.engine.clock()) else {
            // No event yet: nobody waits, and nothing to log.
            self.engine.try_line_again();
            return;
        };
        self.engine.try_line_again();
        let tick = Tick {
            offset,
            now: now.0,
            fired: true,
            line: true,
        };
        self.log_tick(ctx, tick, out);
    }

    /// Logs a tick just applied and hands on what it produced. In `exactly_once` mode the
    /// record and the outputs are in one transaction. In `at_least_once` mode nothing makes
    /// two topics' writes atomic, so the outputs wait for the record to be delivered
    /// ([`Task::after_maintenance`]): a crash between the two then leaves a logged tick whose
    /// replay publishes its outputs again ([`TickLog::delivered`]), never outputs of a tick
    /// the restarted partition knows nothing of and would make elsewhere in the input.
    fn log_tick(&mut self, ctx: &TaskContext, mut tick: Tick, out: &mut Vec<Record>) {
        self.counts.ticks += 1;
        let mut outputs = Vec::new();
        if ctx.atomic {
            self.drain(ctx, false, None, &mut outputs);
        } else {
            self.drain_tick(ctx, &mut outputs);
        }
        // A tick that published something (a timer fired, or the watermark made decisions)
        // is never merged into the next: the log must tell whether its outputs were delivered.
        tick.fired |= !outputs.is_empty();
        self.ticks.push(tick);
        if ctx.atomic {
            self.ticks.all_delivered();
        }
        out.push(changelog::ticks_record(
            &ctx.changelog,
            self.partition,
            &self.ticks,
        ));
        if ctx.atomic {
            out.extend(outputs);
        } else {
            self.tick_outputs.records.extend(outputs);
        }
    }

    /// Drains a tick's outputs into `out`, keeping their alerts for the notifier until the
    /// tick log says they were delivered ([`Task::after_maintenance`]).
    fn drain_tick(&mut self, ctx: &TaskContext, out: &mut Vec<Record>) {
        let notified = self.to_notify.len();
        self.drain(ctx, false, None, out);
        let notify: Vec<Output> = self.to_notify.drain(notified..).collect();
        self.tick_outputs.notify.extend(notify);
    }

    /// The ticks applied so far (all but those a replay has yet to apply) had their outputs
    /// delivered.
    fn mark_replayed_delivered(&mut self) {
        let applied = self.ticks.ticks.len() - self.pending_ticks.len();
        self.ticks.delivered_up_to(applied);
    }

    /// At-least-once mode, each time what was handed over last was committed: first, once
    /// the ticks' record [`Task::maintain`] produced was delivered, the ticks' outputs; then,
    /// once those were delivered, the tick log again, saying so (a restart then doesn't
    /// publish them again), and the notifier hears of their alerts with its commit. The driver
    /// calls it after the commit that follows `maintain`, and again after each commit of what
    /// it gave, until it gives nothing, before the next message. Nothing in `exactly_once` mode.
    pub fn after_maintenance(&mut self, ctx: &TaskContext, out: &mut Vec<Record>) {
        let held = &mut self.tick_outputs;
        if !held.records.is_empty() {
            out.append(&mut held.records);
            held.sent = true;
        } else if held.sent {
            held.sent = false;
            self.to_notify.append(&mut held.notify);
            self.mark_replayed_delivered();
            out.push(changelog::ticks_record(
                &ctx.changelog,
                self.partition,
                &self.ticks,
            ));
        }
    }

    /// A wall-clock tick: on a caught-up partition, timers due by `now` fire. The tick is
    /// logged so that a replay after a crash applies it at the same place in the input.
    pub fn tick(&mut self, ctx: &TaskContext, now: Timestamp, out: &mut Vec<Record>) {
        if ctx.clock != Clock::Wall || !self.caught_up || self.replaying() {
            return;
        }
        // Nothing to advance on a partition that never saw an event.
        if self.engine.clock().is_none_or(|c| now <= c) {
            return;
        }
        let Some(offset) = self.next_offset else {
            return;
        };
        let fired = self.engine.next_deadline().is_some_and(|d| d <= now);
        self.engine.handle_timeout(now);
        let tick = Tick {
            offset,
            now: now.0,
            fired,
            line: false,
        };
        self.log_tick(ctx, tick, out);
    }

    /// Whether the state should be written to the changelog now.
    pub fn snapshot_due(&self, ctx: &TaskContext) -> bool {
        if self.replaying() || self.next_offset.is_none() {
            return false;
        }
        let changed = self.since_snapshot > 0 || !self.ticks.ticks.is_empty();
        self.replaced
            || self.since_snapshot >= ctx.snapshot_every
            || self.ticks.ticks.len() >= 256
            || (changed && self.last_snapshot.elapsed() >= ctx.snapshot_interval)
    }

    /// Whether anything changed since the last snapshot (a hand-off writes one only then).
    pub fn changed(&self) -> bool {
        self.since_snapshot > 0 || !self.ticks.ticks.is_empty()
    }

    /// Writes the whole state, taken at the current input offset.
    pub fn snapshot(&mut self, ctx: &TaskContext, out: &mut Vec<Record>) {
        // Messages held for the clock's start are not in the engine: read again after a restore.
        let Some(offset) = self.applied_to() else {
            return;
        };
        let name = SnapshotName {
            id: self.snapshot.id + 1,
            writer: self.writer,
        };
        let (manifest, records) = changelog::snapshot_records(
            &ctx.changelog,
            self.partition,
            name,
            offset,
            &self.engine.snapshot(),
            &self.superseded,
            ctx.chunk_bytes,
        );
        out.extend(records);
        self.snapshot = name;
        self.superseded = changelog::chunk_keys(&manifest);
        self.ticks = TickLog::after(name);
        self.since_snapshot = 0;
        self.replaced = false;
        self.last_snapshot = Instant::now();
        self.counts.snapshots += 1;
    }

    /// Everything produced so far was committed: hands the alerts and withdrawals among it to
    /// the notifier. Not before: a batch whose commit fails is aborted and redone, and a chat
    /// must not show the redone batch's alerts twice, also after a crash of the process (the
    /// redo then runs in another process, which remembers nothing of what was sent). A task
    /// dropped for a rewind drops what it had not handed over; the redo produces it again.
    pub fn committed(&mut self, ctx: &TaskContext) {
        // Only filled when there is a notifier.
        if let Some(n) = &ctx.observers.notifier {
            for o in self.to_notify.drain(..) {
                n.submit(&o);
            }
        }
    }

    /// Alerts and withdrawals waiting for the commit of the batch that produced them.
    #[cfg(test)]
    fn waiting_to_notify(&self) -> &[Output] {
        &self.to_notify
    }

    /// `received`: when the message that caused the outputs was received (none for a tick).
    fn drain(
        &mut self,
        ctx: &TaskContext,
        suppressed: bool,
        received: Option<Instant>,
        out: &mut Vec<Record>,
    ) {
        let settings = &ctx.rules.settings;
        for o in self.engine.drain_outputs() {
            if !suppressed {
                self.counts.outputs += 1;
                if let Some(m) = &ctx.observers.metrics {
                    m.observe_output(&o, received, ctx.clock == Clock::Wall);
                }
                if ctx.observers.notifier.is_some()
                    && matches!(o.ty(), OutputType::Collision | OutputType::Withdrawn)
                {
                    self.to_notify.push(o.clone());
                }
                out.push(records::output_record(
                    &o,
                    &settings.output_source,
                    settings.time_zone,
                    &ctx.outputs,
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{write_events, GenConfig};

    fn context(clock: Clock) -> TaskContext {
        TaskContext {
            rules: Arc::new(Rules::embedded()),
            roster: Roster::default(),
            clock,
            parsing: Vec::new(),
            outputs: OutputTopics {
                alerts: "alerts".into(),
                ownership_changes: "owners".into(),
            },
            dead_letters: "dlq".into(),
            changelog: "cl".into(),
            chunk_bytes: 4096,
            snapshot_interval: Duration::from_secs(3600),
            snapshot_every: 1_000_000,
            atomic: true,
            observers: Observers::default(),
        }
    }

    fn at(offset: i64) -> Coordinates {
        Coordinates {
            topic: "in".into(),
            partition: 0,
            offset,
        }
    }

    /// Line `i` of an input as the message at offset `i`, with no broker timestamp (the event
    /// clock reads none).
    fn message(i: usize, line: &str) -> Message<'_> {
        Message {
            offset: i as i64,
            key: None,
            payload: line.as_bytes(),
            timestamp: None,
        }
    }

    /// Hands the task every line, in order, line `i` at offset `i`.
    fn handle_lines(t: &mut Task, ctx: &TaskContext, lines: &[String], out: &mut Vec<Record>) {
        for (i, line) in lines.iter().enumerate() {
            t.handle(ctx, message(i, line), &at(i as i64), out);
        }
    }

    /// The reasons of the dead letters among `records`, in order.
    fn dead_letter_reasons(records: &[Record]) -> Vec<&[u8]> {
        records
            .iter()
            .filter(|r| r.topic == "dlq")
            .flat_map(|r| r.headers.iter().filter(|(n, _)| *n == records::H_REASON))
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    fn ids(records: &[Record], topic: &str) -> Vec<String> {
        records
            .iter()
            .filter(|r| r.topic == topic)
            .map(|r| {
                r.headers
                    .iter()
                    .find(|(n, _)| *n == "ce_id")
                    .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// A visit in `year` at 09:00 by r-0 to C0, then ten in 2026, at 09:01 to 09:10 by r-1 to
    /// r-10, each to a customer of its own.
    fn visits_after_one_in(year: u32) -> Vec<String> {
        let visit = |n: usize, year: u32| {
            format!(
                r#"{{"event_id":"v-{n}","kind":"visit","occurred_at":"{year}-06-02T09:{n:02}:00+08:00","rep":{{"id":"r-{n}"}},"customer":{{"id":"C{n}"}}}}"#
            )
        };
        std::iter::once(visit(0, year))
            .chain((1..=10).map(|n| visit(n, 2026)))
            .collect()
    }

    #[test]
    fn a_first_message_with_a_mistyped_year_is_refused_and_nothing_held_is_lost() {
        let ctx = context(Clock::Event);
        let lines = visits_after_one_in(2062);
        let msg = |i: usize| message(i, &lines[i]);
        let now = Timestamp(0);

        // Fewer events than start the clock: held, nothing applied, nothing committed past them.
        let (mut first, _) = restore_from(&ctx, &[], None);
        let mut out = Vec::new();
        for i in 0..5 {
            first.handle(&ctx, msg(i), &at(i as i64), &mut out);
        }
        assert!(out.is_empty());
        assert_eq!(first.commit_offset(), Some(0));
        let mut changelog = Vec::new();
        first.snapshot(&ctx, &mut changelog);

        // A crash: the next owner reads them again from the snapshot.
        let (mut second, start) = restore_from(&ctx, &changelog, first.commit_offset());
        assert_eq!(start, Start::Offset(0));
        for i in 0..lines.len() {
            second.handle(&ctx, msg(i), &at(i as i64), &mut out);
        }
        assert!(out.is_empty(), "held until the partition is caught up");
        second.at_end(&ctx, &mut out);
        second.maintain(&ctx, now, &mut out);
        assert_eq!(dead_letter_reasons(&out), [b"future_timestamp".as_slice()]);
        assert_eq!(
            second.engine().state_size().customers,
            10,
            "every other visit is placed"
        );
        assert_eq!(second.commit_offset(), Some(lines.len() as i64));
    }

    fn restore_from(
        ctx: &TaskContext,
        changelog: &[Record],
        committed: Option<i64>,
    ) -> (Task, Start) {
        let mut r = changelog::Restorer::default();
        for rec in changelog.iter().filter(|r| r.topic == "cl") {
            let id = rec
                .headers
                .iter()
                .find(|(n, _)| *n == changelog::H_SNAPSHOT)
                .map(|(_, v)| v.as_slice());
            r.add(rec.key.as_deref(), rec.value.as_deref(), id).unwrap();
        }
        Task::restore(ctx, 0, r.finish().unwrap(), committed).unwrap()
    }

    /// A crash after a commit: restore from the changelog, replay the input from the snapshot,
    /// and carry on. The outputs after the commit, plus those before it, equal a run without
    /// the crash, with nothing repeated.
    #[test]
    fn replay_after_a_restore_repeats_no_output_and_loses_none() {
        let ctx = context(Clock::Event);
        let mut stream = Vec::new();
        write_events(
            &GenConfig {
                seed: 5,
                customers: 200,
                events: 6_000,
                ..GenConfig::default()
            },
            &mut stream,
        )
        .unwrap();
        let lines: Vec<&[u8]> = stream
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let msg = |i: usize| Message {
            offset: i as i64,
            key: None,
            payload: lines[i],
            timestamp: None,
        };

        let (mut whole, _) = restore_from(&ctx, &[], None);
        let mut reference = Vec::new();
        for i in 0..lines.len() {
            whole.handle(&ctx, msg(i), &at(i as i64), &mut reference);
        }

        // First run: snapshot at 2,000, commit at 3,500, crash at 4,200 (its last 700 messages'
        // outputs were never committed).
        let (mut first, start) = restore_from(&ctx, &[], None);
        assert_eq!(start, Start::Beginning);
        let mut committed = Vec::new();
        let mut changelog = Vec::new();
        for i in 0..3_500 {
            first.handle(&ctx, msg(i), &at(i as i64), &mut committed);
            if i == 1_999 {
                first.snapshot(&ctx, &mut changelog);
            }
        }
        let mut lost = Vec::new();
        for i in 3_500..4_200 {
            first.handle(&ctx, msg(i), &at(i as i64), &mut lost);
        }

        let (mut second, start) = restore_from(&ctx, &changelog, Some(3_500));
        assert_eq!(start, Start::Offset(2_000));
        assert!(second.replaying());
        let mut after = Vec::new();
        for i in 2_000..lines.len() {
            second.handle(&ctx, msg(i), &at(i as i64), &mut after);
        }
        assert_eq!(second.counts.replayed, 1_500);
        assert!(!second.replaying());
        committed.extend(after);
        assert_eq!(ids(&committed, "alerts"), ids(&reference, "alerts"));
        assert_eq!(ids(&committed, "owners"), ids(&reference, "owners"));
        assert_eq!(committed.len(), reference.len());
    }

    /// A runtime for a notifier's delivery task, which the tests never drive.
    fn notifier_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A notifier with one WeCom channel where nothing listens: deliveries fail and are
    /// retried, which the tests don't await. Started inside [`notifier_runtime`]'s runtime.
    fn unreachable_notifier() -> (NotifierHandle, tokio::task::JoinHandle<()>) {
        let config = crate::notify::NotifyConfig::parse(
            "channels:\n  - {name: w, platform: wecom, url: 'http://127.0.0.1:9/wecom'}\n",
            std::path::Path::new("notifications.yaml"),
            &|_| None,
        )
        .unwrap();
        crate::notify::Notifier::start(config, &Roster::default())
    }

    /// The notifier hears of a batch's alerts once the batch is committed, not before. A batch
    /// redone after a crash (here: in a new task, as another process would) is notified once.
    #[test]
    fn alerts_are_notified_once_their_batch_is_committed() {
        use crate::notify::{Platform, Submitted};
        let runtime = notifier_runtime();
        let _inside = runtime.enter();
        let (notifier, _delivery) = unreachable_notifier();
        let mut ctx = context(Clock::Event);
        ctx.observers.notifier = Some(notifier.clone());
        let mut stream = Vec::new();
        let gen = GenConfig {
            seed: 11,
            customers: 100,
            events: 1_500,
            ..GenConfig::default()
        };
        write_events(&gen, &mut stream).unwrap();
        let lines: Vec<&[u8]> = stream
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let alerts = |t: &Task| -> Vec<Output> {
            t.waiting_to_notify()
                .iter()
                .filter(|o| o.ty() == OutputType::Collision)
                .cloned()
                .collect()
        };

        let mut out = Vec::new();
        let mut process = |t: &mut Task| {
            for (i, line) in lines.iter().enumerate() {
                let msg = Message {
                    offset: i as i64,
                    key: None,
                    payload: line,
                    timestamp: None,
                };
                t.handle(&ctx, msg, &at(i as i64), &mut out);
            }
        };

        // A batch processed, then the process crashes before its commit.
        let (mut first, _) = restore_from(&ctx, &[], None);
        process(&mut first);
        let waiting = alerts(&first);
        assert!(waiting.len() > 5, "the batch raised alerts");
        drop(first);

        // The batch redone from what was committed (nothing), then committed.
        let (mut second, _) = restore_from(&ctx, &[], None);
        process(&mut second);
        let redone = alerts(&second);
        let ids = |v: &[Output]| v.iter().map(|o| o.id().to_string()).collect::<Vec<_>>();
        assert_eq!(
            ids(&redone),
            ids(&waiting),
            "the same alerts, waiting again"
        );
        second.committed(&ctx);
        assert!(second.waiting_to_notify().is_empty());
        let stats = notifier.stats().snapshot().get(Platform::WeCom);
        assert_eq!(
            stats.repeated, 0,
            "the crashed batch's alerts were never sent"
        );
        // Each was handed over at the commit: the notifier now knows every one.
        for alert in &redone {
            assert_eq!(
                notifier.submit(alert),
                Submitted::Repeated,
                "{}",
                alert.id()
            );
        }
    }

    /// Rules from one file's text.
    fn rules_from(text: &str) -> Arc<Rules> {
        Arc::new(Rules::from_texts([(std::path::Path::new("r.yaml"), text)]).expect("valid rules"))
    }

    /// A roster of the reps listed (`  - {id: …}` lines).
    fn roster_from(reps: &str) -> Roster {
        Roster::parse(&format!("reps:\n{reps}"), std::path::Path::new("r.yaml"))
            .expect("valid roster")
    }

    /// Rules with one pool for south customers worked by team `t`, at most one customer per
    /// rep; before: a roster of r-s alone, after: r-s and a new hire, r-n.
    fn capped_pool_contexts() -> (TaskContext, TaskContext) {
        let rules = rules_from(
            "settings: {allowed_lateness: 10m}\nownership:\n  protection: 10d\n  limits: {max_owned: 1}\npools:\n  - {id: leads, regions: [south], teams: [t], assignment: {strategy: workload, after: 15m}}\ncollisions:\n  - {id: protected-contact, type: protected_contact}\n",
        );
        let roster = roster_from;
        let before = TaskContext {
            rules: rules.clone(),
            roster: roster("  - {id: r-s, team: t}\n"),
            ..context(Clock::Event)
        };
        let after = TaskContext {
            rules,
            roster: roster("  - {id: r-s, team: t}\n  - {id: r-n, team: t}\n"),
            ..context(Clock::Event)
        };
        (before, after)
    }

    /// r-s, the pool's only rep before r-n, owns C1 and is at the cap. C2 waits from 10:05;
    /// at 10:20 nobody is eligible (final once the call at 10:40 arrives).
    fn capped_pool_input() -> [String; 3] {
        let event = |id: &str, kind: &str, at: &str, rep: &str, customer: &str| {
            format!(
                r#"{{"event_id":"{id}","kind":"{kind}","occurred_at":"2026-11-04T{at}:00+08:00","rep":{{"id":"{rep}"}},"customer":{{"id":"{customer}","region":"south"}}}}"#
            )
        };
        [
            event("1", "assign", "10:00", "r-s", "C1"),
            event("2", "call", "10:05", "r-x", "C2"),
            event("3", "call", "10:40", "r-x", "C9"),
        ]
    }

    /// The assignments among `records`, as JSON text.
    fn assigned(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .filter_map(|r| r.value.as_deref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .filter(|v| v.contains("leadguard.ownership.assigned"))
            .collect()
    }

    /// Checks that the one assignment among `records` gives C2 to `rep`; returns it.
    fn c2_assigned_once_to(records: &[Record], rep: &str) -> Vec<String> {
        let published = assigned(records);
        let named = format!(r#""id":"{rep}""#);
        assert!(
            matches!(&published[..], [a] if a.contains(r#""subject":"C2""#) && a.contains(&named)),
            "{published:?}"
        );
        published
    }

    /// Restores the partition of [`capped_pool_input`] from `changelog` after a crash (its
    /// three messages committed), catches up, and checks that nothing is assigned again.
    fn replay_after_a_crash(ctx: &TaskContext, changelog: &[Record]) -> Task {
        let (mut replayed, _) = restore_from(ctx, changelog, Some(3));
        let mut out = Vec::new();
        replayed.at_end(ctx, &mut out);
        replayed.maintain(ctx, Timestamp(0), &mut out);
        assert!(assigned(&out).is_empty(), "published once: {out:?}");
        replayed
    }

    /// A roster reloaded while running: the line is tried at the next maintenance, once, and
    /// logged, so that a crash before the next snapshot publishes nothing twice.
    #[test]
    fn a_roster_reload_tries_the_line_once_and_logs_it() {
        let (before, after) = capped_pool_contexts();
        reload_then_crash(&before, &after, "r-n", |t| {
            assert_eq!(t.replace_roster(&after.roster).added, 1);
        });
    }

    /// The same for rules that raise `max_owned`: r-s has room for C2 now.
    #[test]
    fn a_rules_reload_tries_the_line_once_and_logs_it() {
        let (before, _) = capped_pool_contexts();
        let text = "settings: {allowed_lateness: 10m}\nownership:\n  protection: 10d\n  limits: {max_owned: 2}\npools:\n  - {id: leads, regions: [south], teams: [t], assignment: {strategy: workload, after: 15m}}\ncollisions:\n  - {id: protected-contact, type: protected_contact}\n";
        let after = TaskContext {
            rules: rules_from(text),
            ..before.clone()
        };
        reload_then_crash(&before, &after, "r-s", |t| {
            t.replace_rules(after.rules.clone()).expect("applies");
        });
    }

    /// Runs [`capped_pool_input`] under `before`, reloads with `reload` (to `after`), and
    /// checks that the next maintenance assigns C2 to `rep` once, with a snapshot at the
    /// reload, and that a crash after it publishes nothing twice and ends in the same state.
    fn reload_then_crash(
        before: &TaskContext,
        after: &TaskContext,
        rep: &str,
        reload: impl FnOnce(&mut Task),
    ) {
        let input = capped_pool_input();
        let (mut t, _) = restore_from(before, &[], None);
        let mut changelog = Vec::new();
        handle_lines(&mut t, before, &input, &mut changelog);
        t.at_end(before, &mut changelog);
        t.maintain(before, Timestamp(0), &mut changelog);
        t.snapshot(before, &mut changelog);
        assert!(assigned(&changelog).is_empty(), "nobody had room");

        reload(&mut t);
        let mut out = Vec::new();
        t.maintain(after, Timestamp(0), &mut out);
        c2_assigned_once_to(&out, rep);
        // A snapshot at the reload: a restart, which reads the new files, has nothing the
        // old ones decided to re-read.
        let snapshotted = |records: &[Record]| {
            records
                .iter()
                .filter_map(|r| r.key.as_deref())
                .any(|k| k.starts_with(b"chunk/"))
        };
        assert!(snapshotted(&out), "a snapshot at the reload");
        let mut again = Vec::new();
        t.maintain(after, Timestamp(0), &mut again);
        assert!(assigned(&again).is_empty(), "tried once");
        assert!(!snapshotted(&again), "one snapshot per reload");
        changelog.extend(out.into_iter().filter(|r| r.topic == "cl"));

        // A crash before the next snapshot; the restart reads the new files.
        let replayed = replay_after_a_crash(after, &changelog);
        assert_same_customers(&replayed, &t);
    }

    /// The same state for [`capped_pool_input`]'s customers. Not the same snapshot: a restart
    /// numbers the roster's reps first, and a reload's new hires come after the reps seen
    /// before it, so compare what the engines say about the customers.
    fn assert_same_customers(a: &Task, b: &Task) {
        let now = Timestamp(1_900_000_000_000);
        for c in ["C1", "C2", "C9"] {
            assert_eq!(
                a.engine().customer_view(c, now),
                b.engine().customer_view(c, now)
            );
        }
        assert_eq!(a.engine().state_size(), b.engine().state_size());
    }

    /// A restart with a new hire in the roster: once caught up, the partition tries the
    /// customers waiting for a rep with room again, logs that it did, and a crash after it
    /// makes the replay try them at the same place, publishing nothing twice.
    #[test]
    fn a_restart_with_a_new_rep_tries_the_line_once_and_logs_it() {
        let (before, after) = capped_pool_contexts();
        let input = capped_pool_input();
        let feed = |t: &mut Task, ctx: &TaskContext, out: &mut Vec<Record>| {
            handle_lines(t, ctx, &input, out)
        };
        let (mut first, _) = restore_from(&before, &[], None);
        let mut changelog = Vec::new();
        feed(&mut first, &before, &mut changelog);
        first.at_end(&before, &mut changelog);
        // Releases the messages held for the clock's start.
        first.maintain(&before, Timestamp(0), &mut changelog);
        first.snapshot(&before, &mut changelog);
        assert!(assigned(&changelog).is_empty(), "nobody had room");

        // Restarted with r-n in the roster: the restore carries on from the snapshot, and
        // once caught up the line is tried again. C2 goes to r-n.
        let (mut restarted, start) = restore_from(&after, &changelog, Some(3));
        assert_eq!(start, Start::Offset(3));
        let mut out = Vec::new();
        restarted.at_end(&after, &mut out);
        restarted.maintain(&after, Timestamp(0), &mut out);
        c2_assigned_once_to(&out, "r-n");
        let mut again = Vec::new();
        restarted.maintain(&after, Timestamp(0), &mut again);
        assert!(assigned(&again).is_empty(), "tried once");
        changelog.extend(out.into_iter().filter(|r| r.topic == "cl"));

        // A crash before the next snapshot: the replay tries the line where the log says,
        // publishes nothing again, and ends in the same state.
        let replayed = replay_after_a_crash(&after, &changelog);
        assert_same_customers(&replayed, &restarted);
    }

    /// Rules reloaded while a partition re-reads what it published before would make
    /// decisions there that are dropped as already published: they wait for the catch-up.
    #[test]
    fn rules_reloaded_during_a_reread_apply_once_caught_up() {
        let ctx = context(Clock::Event);
        let event = |id: &str, minute: u32| {
            format!(
                r#"{{"event_id":"{id}","kind":"call","occurred_at":"2026-11-02T09:{minute:02}:00+08:00","rep":{{"id":"r1"}},"customer":{{"id":"C1"}}}}"#
            )
        };
        let lines = [event("a", 0), event("b", 5)];
        let feed = |t: &mut Task, out: &mut Vec<Record>| handle_lines(t, &ctx, &lines, out);
        // Both messages' outputs were committed before the restart.
        let (mut t, _) = restore_from(&ctx, &[], Some(2));
        assert!(t.rereading());
        let new = Arc::new(Rules::embedded());
        t.reload_rules(new.clone());
        let mut out = Vec::new();
        feed(&mut t, &mut out);
        assert!(
            !Arc::ptr_eq(t.engine().rules(), &new),
            "not during the re-read"
        );
        t.at_end(&ctx, &mut out);
        // Releases the messages held for the clock's start, read under the rules in force.
        t.maintain(&ctx, Timestamp(0), &mut out);
        assert!(!t.rereading());
        assert!(!Arc::ptr_eq(t.engine().rules(), &new), "not before them");
        t.maintain(&ctx, Timestamp(0), &mut out);
        assert!(
            Arc::ptr_eq(t.engine().rules(), &new),
            "in force once caught up"
        );
    }

    /// Messages held for the clock's start were read under the roster in force: a reload
    /// waits for them (`Task::reload_roster` keeps it while the task is holding), also through a
    /// maintenance before the partition has caught up.
    #[test]
    fn a_roster_reloaded_while_messages_wait_for_the_clocks_start_applies_after_them() {
        let ctx = context(Clock::Event);
        let call = |id: &str, rep: &str, minute: u32, customer: &str| {
            format!(
                r#"{{"event_id":"{id}","kind":"call","occurred_at":"2026-11-02T09:{minute:02}:00+08:00","rep":{{"id":"{rep}","role":"sales"}},"customer":{{"id":"{customer}"}}}}"#
            )
        };
        let lines = [call("a", "r1", 0, "C1"), call("b", "r2", 5, "C1")];
        let (mut t, _) = restore_from(&ctx, &[], None);
        let mut out = Vec::new();
        handle_lines(&mut t, &ctx, &lines, &mut out);
        assert!(t.holding());
        assert!(ids(&out, "alerts").is_empty());
        // r1 moves to support, which doesn't sell.
        let support = roster_from("  - {id: r1, role: support}\n");
        t.reload_roster(Arc::new(support.clone()));
        t.maintain(&ctx, Timestamp(0), &mut out);
        assert!(t.holding(), "not caught up yet");
        // A snapshot records the files the held messages will be decided under (no roster),
        // for a crash to re-read them under those, not under the roster then on disk.
        let on_disk = TaskContext {
            roster: support,
            ..ctx.clone()
        };
        let (restored, _) = restore_from(&on_disk, &out, None);
        assert_eq!(
            restored.engine().snapshot().files.map(|f| f.roster),
            Some(None)
        );
        t.at_end(&ctx, &mut out);
        t.maintain(&ctx, Timestamp(0), &mut out);
        assert!(!t.holding());
        // r1 sold when they called: two reps worked C1.
        assert_eq!(ids(&out, "alerts").len(), 1, "the calls are a collision");
        // In force from the next maintenance on, with a snapshot that records it.
        t.maintain(&ctx, Timestamp(0), &mut out);
        // The roster is in force for what comes next: r1 supports C2, no collision.
        let mut after = Vec::new();
        t.handle(
            &ctx,
            message(2, &call("c", "r1", 10, "C2")),
            &at(2),
            &mut after,
        );
        t.handle(
            &ctx,
            message(3, &call("d", "r3", 12, "C2")),
            &at(3),
            &mut after,
        );
        assert!(ids(&after, "alerts").is_empty());
    }

    /// A partition whose snapshot holds no event yet holds its first messages again on
    /// replay, until the clock starts. A tick logged after the live run started its clock
    /// (here the try of the line after a restart under a new roster) must find them applied.
    #[test]
    fn held_messages_come_before_a_logged_tick_on_replay() {
        let before = context(Clock::Event);
        let after = TaskContext {
            roster: roster_from("  - {id: r-new, team: t}\n"),
            ..context(Clock::Event)
        };
        let event = |id: &str, hm: &str| {
            format!(
                r#"{{"event_id":"{id}","kind":"call","occurred_at":"2026-11-02T{hm}:00+08:00","rep":{{"id":"r1"}},"customer":{{"id":"C{id}"}}}}"#
            )
        };
        let lines = [
            event("0", "09:00"),
            event("1", "09:05"),
            event("2", "11:00"),
        ];
        let message = |i: usize| message(i, &lines[i]);
        // Two messages held for the clock's start, and a snapshot taken before it (at 0).
        let (mut first, _) = restore_from(&before, &[], None);
        let mut changelog = Vec::new();
        for i in 0..2 {
            first.handle(&before, message(i), &at(i as i64), &mut changelog);
        }
        first.snapshot(&before, &mut changelog);
        assert!(first.engine().clock().is_none());
        // Restarted under a new roster: the held messages are applied at the end of the
        // partition, then the line is tried (logged at offset 2), then message 2 comes.
        let (mut live, _) = restore_from(&after, &changelog, None);
        let mut out = Vec::new();
        for i in 0..2 {
            live.handle(&after, message(i), &at(i as i64), &mut out);
        }
        live.at_end(&after, &mut out);
        live.maintain(&after, Timestamp(0), &mut out);
        live.handle(&after, message(2), &at(2), &mut out);
        changelog.extend(out.into_iter().filter(|r| r.topic == "cl"));
        assert_eq!(live.engine().stats().rejected_total(), 0);
        // A crash: the replay holds messages 0 and 1 again; the logged try at offset 2
        // comes after them, and nothing is refused as late.
        let (mut replayed, _) = restore_from(&after, &changelog, Some(3));
        let mut dropped = Vec::new();
        for i in 0..3 {
            replayed.handle(&after, message(i), &at(i as i64), &mut dropped);
        }
        replayed.at_end(&after, &mut dropped);
        replayed.maintain(&after, Timestamp(0), &mut dropped);
        assert_eq!(replayed.engine().stats().rejected_total(), 0);
        assert_eq!(replayed.engine().snapshot(), live.engine().snapshot());
    }

    /// At-least-once mode: a tick's outputs go out only once its record is delivered, and the
    /// log then says they were delivered. A crash in between leaves a logged tick after the
    /// committed offset whose outputs the log doesn't say were delivered: its replay
    /// publishes them again, with the same ids. A tick the log says was delivered, or one
    /// followed by a committed message, is replayed without publishing anything.
    #[test]
    fn at_least_once_a_ticks_outputs_follow_its_record_and_a_crash_between_repeats_them() {
        let ctx = TaskContext {
            atomic: false,
            ..context(Clock::Wall)
        };
        let base = Timestamp::parse_rfc3339("2026-11-02T09:00:00+08:00")
            .unwrap()
            .0;
        let call = |id: &str, customer: &str| {
            format!(
                r#"{{"event_id":"{id}","kind":"visit","occurred_at":"2026-11-02T09:00:00+08:00","rep":{{"id":"r1"}},"customer":{{"id":"{customer}"}}}}"#
            )
        };
        let (c1, c2) = (call("a", "C1"), call("b", "C2"));
        fn msg(offset: i64, payload: &str, at: i64) -> Message<'_> {
            Message {
                offset,
                key: None,
                payload: payload.as_bytes(),
                timestamp: Some(at),
            }
        }
        let owners = |records: &[Record]| ids(records, "owners");
        // What the last tick log among `records` says was delivered.
        let delivered_count = |records: &[Record]| {
            let log = records
                .iter()
                .rev()
                .find(|r| r.key.as_deref() == Some(b"ticks"))?;
            let log: TickLog = serde_json::from_slice(log.value.as_deref()?).ok()?;
            log.delivered
        };
        let logged = |records: &[Record]| records.iter().filter(|r| r.topic == "cl").count();

        let (mut t, _) = restore_from(&ctx, &[], None);
        let mut out = Vec::new();
        t.handle(&ctx, msg(0, &c1, base), &at(0), &mut out);
        t.at_end(&ctx, &mut out);
        assert!(owners(&out).is_empty(), "decided at the watermark");
        // An hour of wall clock later the visit is final: r1 develops C1.
        let mut maintained = Vec::new();
        t.maintain(&ctx, Timestamp(base + 3_600_000), &mut maintained);
        assert_eq!(logged(&maintained), 1, "the tick's record");
        assert!(
            owners(&maintained).is_empty(),
            "not before the record is delivered"
        );
        // The driver commits, and asks again after each commit.
        let mut after = Vec::new();
        t.after_maintenance(&ctx, &mut after);
        let claimed = owners(&after);
        assert!(!claimed.is_empty(), "the claim of C1: {after:?}");
        assert_eq!(logged(&after), 0);
        let mut delivered = Vec::new();
        t.after_maintenance(&ctx, &mut delivered);
        assert_eq!(
            logged(&delivered),
            1,
            "the log says the claim was delivered"
        );
        assert!(owners(&delivered).is_empty(), "handed over once");
        let mut nothing = Vec::new();
        t.after_maintenance(&ctx, &mut nothing);
        assert!(nothing.is_empty(), "until it gives nothing");
        assert_eq!(delivered_count(&delivered), Some(1));
        // The next tick, on the quiet partition: its record counts the first one delivered.
        let mut next = Vec::new();
        t.maintain(&ctx, Timestamp(base + 7_200_000), &mut next);
        assert_eq!(delivered_count(&next), Some(1));
        assert_eq!(t.ticks.ticks.len(), 2);

        // A crash once the record was delivered, before the outputs were: the input committed
        // up to the tick. The replay applies the tick where it was and publishes them again.
        let changelog: Vec<Record> = maintained.into_iter().filter(|r| r.topic == "cl").collect();
        let (mut replayed, _) = restore_from(&ctx, &changelog, Some(1));
        let mut republished = Vec::new();
        replayed.handle(&ctx, msg(0, &c1, base), &at(0), &mut republished);
        assert!(
            owners(&republished).is_empty(),
            "the visit's own outputs were committed"
        );
        replayed.at_end(&ctx, &mut republished);
        assert_eq!(owners(&republished), claimed, "the same ids again");
        // Once they are committed, the log says so.
        let mut said = Vec::new();
        replayed.maintain(&ctx, Timestamp(base + 3_600_000), &mut said);
        replayed.after_maintenance(&ctx, &mut said);
        assert_eq!(delivered_count(&said), Some(1), "{said:?}");

        // A crash once the log said so: nothing of the tick is published again.
        let said: Vec<Record> = changelog.iter().cloned().chain(delivered).collect();
        let (mut replayed, _) = restore_from(&ctx, &said, Some(1));
        let mut nothing = Vec::new();
        replayed.handle(&ctx, msg(0, &c1, base), &at(0), &mut nothing);
        replayed.at_end(&ctx, &mut nothing);
        assert!(owners(&nothing).is_empty(), "{nothing:?}");

        // A message after the tick was committed: its commit delivered the tick's outputs
        // too, and the replay publishes nothing of the tick.
        let (mut later, _) = restore_from(&ctx, &changelog, Some(2));
        let mut dropped = Vec::new();
        later.handle(&ctx, msg(0, &c1, base), &at(0), &mut dropped);
        later.handle(&ctx, msg(1, &c2, base), &at(1), &mut dropped);
        later.at_end(&ctx, &mut dropped);
        assert!(owners(&dropped).is_empty(), "{dropped:?}");
        assert_eq!(
            later
                .engine()
                .customer_view("C1", Timestamp(base + 7_200_000)),
            t.engine().customer_view("C1", Timestamp(base + 7_200_000)),
            "the tick applied where it was"
        );

        // In exactly_once mode the record and the outputs share a transaction.
        let atomic = context(Clock::Wall);
        let (mut t, _) = restore_from(&atomic, &[], None);
        let mut out = Vec::new();
        t.handle(&atomic, msg(0, &c1, base), &at(0), &mut out);
        t.at_end(&atomic, &mut out);
        t.maintain(&atomic, Timestamp(base + 3_600_000), &mut out);
        assert_eq!(owners(&out), claimed, "with the record, in one batch");
        let (mut replayed, _) = restore_from(&atomic, &out, Some(1));
        let mut nothing = Vec::new();
        replayed.handle(&atomic, msg(0, &c1, base), &at(0), &mut nothing);
        replayed.at_end(&atomic, &mut nothing);
        assert!(owners(&nothing).is_empty(), "committed with the record");
    }

    #[test]
    fn ticks_are_replayed_where_they_happened() {
        let ctx = context(Clock::Wall);
        let event = |id: &str, minute: u32| {
            format!(
                r#"{{"event_id":"{id}","kind":"call","occurred_at":"2026-11-02T09:{minute:02}:00+08:00","rep":{{"id":"r1"}},"customer":{{"id":"C1"}}}}"#
            )
        };
        let base = Timestamp::parse_rfc3339("2026-11-02T09:00:00+08:00")
            .unwrap()
            .0;
        let (e0, e1) = (event("a", 0), event("b", 5));
        let mut changelog = Vec::new();
        let mut out = Vec::new();
        let (mut t, _) = restore_from(&ctx, &[], None);
        t.handle(
            &ctx,
            Message {
                offset: 0,
                key: None,
                payload: e0.as_bytes(),
                timestamp: Some(base),
            },
            &at(0),
            &mut out,
        );
        t.at_end(&ctx, &mut out);
        // The wall clock moves an hour on: the partition is quiet, its clock follows.
        t.tick(&ctx, Timestamp(base + 3_600_000), &mut changelog);
        assert_eq!(t.counts.ticks, 1);
        // Now an event from five minutes after the first is far too late.
        let mut dead = Vec::new();
        t.handle(
            &ctx,
            Message {
                offset: 1,
                key: None,
                payload: e1.as_bytes(),
                timestamp: Some(base + 3_600_000),
            },
            &at(1),
            &mut dead,
        );
        assert_eq!(dead.len(), 1, "refused as too late after the tick");

        // A restart replays both messages and the tick between them: the same refusal, and
        // nothing is produced again.
        let (mut again, start) = restore_from(&ctx, &changelog, Some(2));
        assert_eq!(start, Start::Beginning);
        let mut replayed = Vec::new();
        again.handle(
            &ctx,
            Message {
                offset: 0,
                key: None,
                payload: e0.as_bytes(),
                timestamp: Some(base),
            },
            &at(0),
            &mut replayed,
        );
        again.handle(
            &ctx,
            Message {
                offset: 1,
                key: None,
                payload: e1.as_bytes(),
                timestamp: Some(base + 3_600_000),
            },
            &at(1),
            &mut replayed,
        );
        assert!(replayed.is_empty());
        assert_eq!(again.engine().stats().rejected_total(), 1);
        assert!(!again.replaying());
    }

    /// A withdrawal made by a wall-clock tick reaches the notifier once the tick's outputs are
    /// delivered: with the transaction's commit (`exactly_once`), or in `at_least_once` mode
    /// once the tick log says they were delivered ([`Task::after_maintenance`]), never before.
    /// r-a's visit to C1 at 09:00 is taken as a first touch at once, so r-b's visit at 09:05 is
    /// an intrusion (notified with its batch). r-a is then made inactive; the tick at 09:30
    /// moves the watermark past both visits, the lifecycle refuses r-a's first touch, and the
    /// intrusion is withdrawn: an output of the tick, not of any message.
    #[test]
    fn a_ticks_withdrawal_reaches_the_notifier_once_delivered() {
        use crate::notify::Submitted;
        let runtime = notifier_runtime();
        let _inside = runtime.enter();
        let rules = rules_from(
            "settings: {time_zone: Asia/Shanghai, allowed_lateness: 10m}\nownership:\n  protection: 10d\n  first_touch: {enabled: true, kinds: [visit]}\ncollisions:\n  - {id: protected-contact, type: protected_contact, severity: high, cooldown: 1d}\n",
        );
        let roster = |a: &str| {
            roster_from(&format!(
                "  - {{id: r-a, team: east-1{a}}}\n  - {{id: r-b, team: east-2}}\n"
            ))
        };
        let visit = |id: &str, minute: u32, rep: &str| {
            format!(
                r#"{{"event_id":"{id}","kind":"visit","occurred_at":"2026-11-02T09:{minute:02}:00+08:00","rep":{{"id":"{rep}"}},"customer":{{"id":"C1"}}}}"#
            )
        };
        let base = Timestamp::parse_rfc3339("2026-11-02T09:00:00+08:00")
            .unwrap()
            .0;
        let lines = [visit("v-1", 0, "r-a"), visit("v-2", 5, "r-b")];
        let waiting = |t: &Task, ty: OutputType| -> Vec<Output> {
            t.waiting_to_notify()
                .iter()
                .filter(|o| o.ty() == ty)
                .cloned()
                .collect()
        };

        for atomic in [true, false] {
            let (notifier, _delivery) = unreachable_notifier();
            let mut ctx = TaskContext {
                rules: rules.clone(),
                roster: roster(""),
                atomic,
                ..context(Clock::Wall)
            };
            ctx.observers.notifier = Some(notifier.clone());
            let (mut t, _) = restore_from(&ctx, &[], None);
            let mut out = Vec::new();
            for (i, line) in lines.iter().enumerate() {
                let msg = Message {
                    offset: i as i64,
                    key: None,
                    payload: line.as_bytes(),
                    timestamp: Some(base + i as i64 * 300_000),
                };
                t.handle(&ctx, msg, &at(i as i64), &mut out);
            }
            t.at_end(&ctx, &mut out);
            // Commits what was handed over: nothing waits after, and the notifier has had
            // `output` (submitted again, it answers `again`).
            let commit = |t: &mut Task, output: &Output, again: Submitted| {
                t.committed(&ctx);
                assert!(t.waiting_to_notify().is_empty());
                assert_eq!(notifier.submit(output), again, "atomic: {atomic}");
            };
            let alerts = waiting(&t, OutputType::Collision);
            assert_eq!(alerts.len(), 1, "r-b's visit intrudes on r-a's first touch");
            commit(&mut t, &alerts[0], Submitted::Repeated);

            t.reload_roster(Arc::new(roster(", active: false")));
            let mut tick = Vec::new();
            t.maintain(&ctx, Timestamp(base + 30 * 60_000), &mut tick);
            let withdrawn = if atomic {
                // In the tick's transaction with its log record: notified with its commit.
                assert_eq!(ids(&tick, "alerts").len(), 1, "the withdrawal is published");
                assert!(tick.iter().any(|r| r.topic == "cl"), "with the tick log");
                waiting(&t, OutputType::Withdrawn)
            } else {
                // The tick log's record goes first; the outputs wait for its delivery, and the
                // notifier for theirs.
                assert!(ids(&tick, "alerts").is_empty());
                assert!(waiting(&t, OutputType::Withdrawn).is_empty());
                t.committed(&ctx);
                let mut outputs = Vec::new();
                t.after_maintenance(&ctx, &mut outputs);
                assert_eq!(
                    ids(&outputs, "alerts").len(),
                    1,
                    "the withdrawal is published"
                );
                assert!(
                    waiting(&t, OutputType::Withdrawn).is_empty(),
                    "not before its delivery is logged"
                );
                t.committed(&ctx);
                let mut log = Vec::new();
                t.after_maintenance(&ctx, &mut log);
                assert_eq!(
                    log.len(),
                    1,
                    "the tick log, saying its outputs were delivered"
                );
                assert_eq!(log[0].topic, "cl");
                waiting(&t, OutputType::Withdrawn)
            };
            assert_eq!(withdrawn.len(), 1, "atomic: {atomic}");
            assert!(withdrawn[0].data().contains(alerts[0].id()));
            // Submitted at that commit: the notifier has already stopped the alert's deliveries
            // (a first submission would answer `Stopped`).
            commit(&mut t, &withdrawn[0], Submitted::Ignored);
        }
    }

    /// `clock: wall` compares an event with its message's timestamp (`max_future_skew`); a
    /// message without one is judged by `max_clock_jump` past the partition's clock, as the
    /// README's Kafka section says.
    #[test]
    fn wall_clock_without_a_message_timestamp_judges_by_event_time() {
        let ctx = context(Clock::Wall);
        let call = |id: &str, date: &str| {
            format!(
                r#"{{"event_id":"{id}","kind":"call","occurred_at":"{date}T09:00:00+08:00","rep":{{"id":"r1"}},"customer":{{"id":"C{id}"}}}}"#
            )
        };
        let base = Timestamp::parse_rfc3339("2026-11-02T09:00:00+08:00")
            .unwrap()
            .0;
        // Two days ahead: within max_clock_jump (30d), far past max_future_skew (5m). 40 days
        // ahead: past both.
        let (first, ahead, far) = (
            call("1", "2026-11-02"),
            call("2", "2026-11-04"),
            call("3", "2026-12-14"),
        );
        for (stamp, refused) in [(Some(base), 2), (None, 1)] {
            let (mut t, _) = restore_from(&ctx, &[], None);
            let mut out = Vec::new();
            for (i, line) in [&first, &ahead, &far].into_iter().enumerate() {
                let msg = Message {
                    offset: i as i64,
                    key: None,
                    payload: line.as_bytes(),
                    timestamp: stamp,
                };
                t.handle(&ctx, msg, &at(i as i64), &mut out);
            }
            t.at_end(&ctx, &mut out);
            // Without timestamps the three wait for the clock's start until here.
            t.maintain(&ctx, Timestamp(base), &mut out);
            assert_eq!(
                dead_letter_reasons(&out),
                vec![b"future_timestamp".as_slice(); refused],
                "message timestamp {stamp:?}"
            );
            assert_eq!(
                t.engine().state_size().customers,
                3 - refused,
                "message timestamp {stamp:?}"
            );
        }
    }

    /// `clock: wall`, messages without timestamps: a first one with a mistyped year doesn't set
    /// the partition's clock (the first events agree on it, as with `clock: event`), and a
    /// message with a timestamp held behind it is still checked against its timestamp.
    #[test]
    fn wall_clock_without_timestamps_starts_where_the_first_events_agree() {
        let ctx = context(Clock::Wall);
        let stamp = |n: usize| {
            Timestamp::parse_rfc3339(&format!("2026-06-02T09:{n:02}:00+08:00"))
                .unwrap()
                .0
        };
        for (year, reason) in [(2062, "future_timestamp"), (2016, "too_late")] {
            let lines = visits_after_one_in(year);
            let (mut t, _) = restore_from(&ctx, &[], None);
            let mut out = Vec::new();
            for (i, line) in lines.iter().enumerate() {
                let timestamp = match i {
                    // Sent an hour before the event it names: refused against its timestamp.
                    5 => Some(stamp(5) - 3_600_000),
                    7 => Some(stamp(7)),
                    _ => None,
                };
                let msg = Message {
                    timestamp,
                    ..message(i, line)
                };
                t.handle(&ctx, msg, &at(i as i64), &mut out);
            }
            assert!(out.is_empty(), "held until the partition is caught up");
            assert_eq!(t.commit_offset(), Some(0), "nothing held is committed");
            t.at_end(&ctx, &mut out);
            t.maintain(&ctx, Timestamp(stamp(10)), &mut out);
            assert_eq!(
                dead_letter_reasons(&out),
                [reason.as_bytes(), b"future_timestamp".as_slice()],
                "first event in {year}"
            );
            assert_eq!(
                t.engine().state_size().customers,
                9,
                "every other visit is placed (first event in {year})"
            );
            assert_eq!(t.commit_offset(), Some(lines.len() as i64));
        }
    }

    /// A crash after a snapshot, restarted with a new hire in the roster. The input since the
    /// snapshot was decided and published under the old roster (nobody had room for C2), so
    /// it is re-read under the roster the snapshot records; the new one comes in force once
    /// the partition has caught up, and its assignment is published, as after a reload.
    /// Re-read under the new roster, C2's first try would give r-n the customer with its output
    /// dropped as already published: never published at all.
    #[test]
    fn a_crash_rereads_under_the_snapshots_roster_and_publishes_what_the_new_one_decides() {
        let (before, after) = capped_pool_contexts();
        let input = capped_pool_input();
        let (mut first, _) = restore_from(&before, &[], None);
        let mut changelog = Vec::new();
        // The snapshot comes before anything is decided (the first message is held for the
        // clock's start, so it is read again).
        first.handle(&before, message(0, &input[0]), &at(0), &mut changelog);
        first.snapshot(&before, &mut changelog);
        let mut published = Vec::new();
        for (i, line) in input.iter().enumerate().skip(1) {
            first.handle(&before, message(i, line), &at(i as i64), &mut published);
        }
        first.at_end(&before, &mut published);
        first.maintain(&before, Timestamp(0), &mut published);
        assert!(assigned(&published).is_empty(), "nobody had room");
        assert_eq!(first.commit_offset(), Some(3));
        changelog.extend(published.iter().filter(|r| r.topic == "cl").cloned());

        // What a reload of the new roster then publishes, without a crash.
        first.reload_roster(Arc::new(after.roster.clone()));
        let mut reloaded = Vec::new();
        first.maintain(&after, Timestamp(0), &mut reloaded);
        let expected = c2_assigned_once_to(&reloaded, "r-n");

        // Instead, a crash; the restart reads the new roster.
        let (mut restarted, start) = restore_from(&after, &changelog, Some(3));
        assert_eq!(start, Start::Offset(0));
        let mut out = Vec::new();
        handle_lines(&mut restarted, &after, &input, &mut out);
        restarted.at_end(&after, &mut out);
        for i in 0..3 {
            restarted.maintain(&after, Timestamp(0), &mut out);
            // What comes next is decided under the files in force: the newest snapshot
            // records them, for a crash to re-read it under them.
            let mut written = changelog.clone();
            written.extend(out.iter().filter(|r| r.topic == "cl").cloned());
            let (newest, _) = restore_from(&after, &written, None);
            assert_eq!(
                newest.engine().snapshot().files,
                restarted.engine().snapshot().files,
                "after maintenance {i}"
            );
        }
        assert_eq!(
            assigned(&out),
            expected,
            "published once, as a reload would"
        );
        assert_same_customers(&restarted, &first);
    }

    /// Which files a restore re-reads under: the snapshot's, with the files in force then put
    /// in force; the files in force alone when the snapshot records none (an earlier build),
    /// when its files no longer compile, or when the files in force change a setting that
    /// only a restart takes.
    #[test]
    fn a_restore_rereads_under_the_snapshots_files_when_it_can() {
        let (before, after) = capped_pool_contexts();
        let text = |max_owned: u32, lateness: &str| {
            format!(
                "settings: {{allowed_lateness: {lateness}}}\nownership:\n  protection: 10d\n  limits: {{max_owned: {max_owned}}}\npools:\n  - {{id: leads, regions: [south], teams: [t], assignment: {{strategy: workload, after: 15m}}}}\n"
            )
        };
        let ctx = TaskContext {
            rules: rules_from(&text(2, "10m")),
            ..after
        };
        let snapshot_under =
            |rules: &str| Engine::new(rules_from(rules), &before.roster).snapshot();
        let reread = |snap: &Snapshot| RereadFiles::of_snapshot(&ctx, 0, snap);

        let files = reread(&snapshot_under(&text(1, "10m")));
        assert_eq!(*files.rules, *rules_from(&text(1, "10m")));
        assert_eq!(files.roster, before.roster);
        assert!(Arc::ptr_eq(files.then_rules.as_ref().unwrap(), &ctx.rules));
        assert_eq!(files.then_roster.as_deref(), Some(&ctx.roster));

        let same = reread(&snapshot_under(&text(2, "10m")));
        assert!(Arc::ptr_eq(&same.rules, &ctx.rules));
        assert!(same.then_rules.is_none());

        let in_force = |files: &RereadFiles| {
            Arc::ptr_eq(&files.rules, &ctx.rules)
                && files.roster == ctx.roster
                && files.then_rules.is_none()
                && files.then_roster.is_none()
        };
        // The lateness shapes the state: a restart takes it, a running partition can't. The
        // roster is still the snapshot's.
        let lateness = reread(&snapshot_under(&text(1, "20m")));
        assert!(Arc::ptr_eq(&lateness.rules, &ctx.rules));
        assert!(lateness.then_rules.is_none());
        assert_eq!(lateness.roster, before.roster);

        let mut earlier = snapshot_under(&text(1, "10m"));
        earlier.files = None;
        assert!(in_force(&reread(&earlier)));

        let mut broken = snapshot_under(&text(1, "10m"));
        broken.files.as_mut().unwrap().rules[0]
            .text
            .push_str("unknown_section: 1\n");
        assert!(in_force(&reread(&broken)));
    }
}
