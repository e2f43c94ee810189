//! The Kafka edge: activity and ownership topics in; alerts, ownership changes and dead letters
//! out; engine state in a compacted changelog topic. See README "Kafka" for the operator's view.
//!
//! Topology:
//! - **State partitions.** All events of one customer must meet in one engine. The engine stage
//!   reads one topic, the *state topic*, and runs one engine per partition of it. When the only
//!   input is keyed by customer id, that input is the state topic (processed in place).
//!   Otherwise the **router** stage re-keys every input message by its customer
//!   ([`records::routing_key`]) into the *repartition topic*, which is the state topic. Either
//!   way a state partition is one log in one order, so an engine's outputs are a deterministic
//!   function of that log: this is what makes recovery exact.
//! - **Exactly once.** Each stage commits in Kafka transactions: outputs, dead letters,
//!   changelog records and input offsets together ([`stage`]).
//! - **State.** A partition's engine is snapshotted into the changelog every so often (and on
//!   hand-off); a new owner restores the snapshot and replays the input from the snapshot's
//!   offset, dropping the outputs of what was already committed ([`changelog`], [`task`]).
//! - **Time.** With `clock: wall`, quiet partitions that are caught up get wall-clock ticks so
//!   timers fire; ticks are logged in the changelog so a replay applies them at the same place.

pub mod changelog;
pub mod config;
pub mod read;
pub mod records;
pub mod stage;
pub mod stages;
pub mod task;

pub use config::{Clock, KafkaFlags, KafkaSettings, Mode};
pub use task::Observers;

use crate::config::{Roster, Rules};
use anyhow::{anyhow, bail, Context as _, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use records::OutputTopics;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use task::{TaskContext, TopicParsing};

/// Largest changelog record: well under the 1 MB default message limit of Kafka brokers.
const CHUNK_BYTES: usize = 512 * 1024;

fn base_config(s: &KafkaSettings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &s.brokers);
    for (k, v) in &s.librdkafka {
        c.set(k, v);
    }
    c
}

pub(crate) fn consumer_config(s: &KafkaSettings, group: &str, eof: bool) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &s.brokers)
        .set("auto.offset.reset", "earliest");
    for (k, v) in &s.librdkafka {
        c.set(k, v);
    }
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.partition.eof", if eof { "true" } else { "false" });
    c
}

fn producer_config(s: &KafkaSettings, transactional_id: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &s.brokers)
        // The Java client's default: a CRM partitioning by customer id with it agrees with us.
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "2");
    for (k, v) in &s.librdkafka {
        c.set(k, v);
    }
    c.set("enable.idempotence", "true");
    if s.mode == Mode::ExactlyOnce {
        c.set("transactional.id", transactional_id);
    }
    c
}

/// Checks that every topic exists and that the changelog can hold every state partition.
fn check_topics(s: &KafkaSettings) -> Result<()> {
    let consumer: BaseConsumer = base_config(s)
        .create()
        .context("cannot create a Kafka client (check `librdkafka:` settings)")?;
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(30))
        .with_context(|| format!("cannot reach the Kafka brokers {}", s.brokers))?;
    let partitions = |name: &str| {
        metadata
            .topics()
            .iter()
            .find(|t| t.name() == name && t.error().is_none())
            .map(|t| t.partitions().len())
    };
    let t = &s.topics;
    let mut missing = Vec::new();
    let mut all: Vec<&str> = t.inputs().map(|i| i.name.as_str()).collect();
    all.extend([
        t.alerts.as_str(),
        t.ownership_changes.as_str(),
        t.dead_letters.as_str(),
        t.changelog.as_str(),
    ]);
    all.extend(t.repartition.as_deref());
    for name in all {
        if partitions(name).is_none() && !missing.contains(&name) {
            missing.push(name);
        }
    }
    if !missing.is_empty() {
        bail!(
            "these topics don't exist on {}: {}; create them (see README \"Kafka\": the changelog compacted, with as many partitions as {})",
            s.brokers,
            missing.join(", "),
            t.state_topic()
        );
    }
    let state = partitions(t.state_topic()).unwrap_or(0);
    let changelog = partitions(&t.changelog).unwrap_or(0);
    if changelog < state {
        bail!(
            "the changelog topic {} has {changelog} partitions, fewer than the {state} of {}: give it at least {state}",
            t.changelog,
            t.state_topic()
        );
    }
    Ok(())
}

/// Stops the process gracefully on SIGTERM or SIGINT.
fn watch_signals(shutdown: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                if let Ok(mut term) = signal(SignalKind::terminate()) {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                } else {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
        });
        tracing::info!("shutdown requested: committing what was processed");
        shutdown.store(true, Ordering::Relaxed);
    });
}

/// What to put in force while running (see `rules_watch`): reloaded rules and roster.
#[derive(Debug, Default)]
pub struct Reloads {
    pub rules: Option<tokio::sync::watch::Receiver<Arc<Rules>>>,
    pub roster: Option<tokio::sync::watch::Receiver<Arc<Roster>>>,
}

/// Runs Kafka mode until SIGTERM/SIGINT (returns after committing) or a fatal error.
/// `engines`: where the HTTP API's questions reach the partitions' engines, when it is served;
/// `reloads`: rules and roster to put in force while running.
pub fn run(
    settings: KafkaSettings,
    rules: Arc<Rules>,
    roster: Roster,
    observers: Observers,
    engines: Option<crate::host::EngineHandle>,
    reloads: Reloads,
) -> Result<()> {
    settings.check_sources(&rules).map_err(anyhow::Error::msg)?;
    check_topics(&settings)?;
    let shutdown = Arc::new(AtomicBool::new(false));
    watch_signals(shutdown.clone());

    let t = &settings.topics;
    let parsing = t
        .inputs()
        .map(|i| TopicParsing {
            topic: i.name.clone(),
            mapping: i
                .source
                .as_ref()
                .and_then(|name| rules.sources.iter().find(|m| &m.name == name).cloned()),
            // Event ids are unique per source: without a mapping, the topic names the source
            // of events that don't say.
            default_source: i.source.clone().unwrap_or_else(|| i.name.clone()),
        })
        .collect();
    let ctx = Arc::new(TaskContext {
        rules,
        roster,
        clock: settings.clock,
        parsing,
        outputs: OutputTopics {
            alerts: t.alerts.clone(),
            ownership_changes: t.ownership_changes.clone(),
        },
        dead_letters: t.dead_letters.clone(),
        changelog: t.changelog.clone(),
        chunk_bytes: CHUNK_BYTES,
        snapshot_interval: settings.snapshot_interval,
        snapshot_every: settings.snapshot_every,
        atomic: settings.mode == Mode::ExactlyOnce,
        observers,
    });
    let transactional = settings.mode == Mode::ExactlyOnce;
    let status_every = Duration::from_secs(10);
    let restarts = ctx
        .observers
        .metrics
        .as_ref()
        .map(|m| m.stage_restarts.clone());

    let router = match (t.in_place(), &t.repartition) {
        (Some(_), _) => None,
        (None, Some(repartition)) => {
            let stage = stages::Router::new(&ctx, repartition.clone());
            let loop_settings = stage::LoopSettings {
                consumer: consumer_config(
                    &settings,
                    &format!("{}-router", settings.group_id),
                    false,
                ),
                producer: producer_config(
                    &settings,
                    &format!("{}-router", settings.transactional_id()),
                ),
                topics: t.inputs().map(|i| i.name.clone()).collect(),
                transactional,
                commit_interval: settings.commit_interval,
                max_batch: settings.max_batch,
                status_every,
                restarts: restarts.clone(),
            };
            let shutdown = shutdown.clone();
            Some(std::thread::spawn(move || {
                let result = stage::run(stage, loop_settings, shutdown.clone());
                // One stage failing stops the other.
                shutdown.store(true, Ordering::Relaxed);
                result
            }))
        }
        (None, None) => unreachable!("checked when the settings were read"),
    };

    let reader_config = {
        let mut c = consumer_config(&settings, &format!("{}-restore", settings.group_id), true);
        // The reader is assigned partitions by hand; it never joins the group.
        c.set("partition.assignment.strategy", "range");
        c
    };
    let engine = stages::EngineStage::new(
        ctx.clone(),
        t.state_topic().to_string(),
        t.in_place().is_some(),
        stages::ChangelogReader::new(&reader_config, t.changelog.clone())?,
        engines,
        reloads,
    );
    let engine_result = stage::run(
        engine,
        stage::LoopSettings {
            consumer: consumer_config(&settings, &settings.group_id, true),
            producer: producer_config(&settings, &settings.transactional_id()),
            topics: vec![t.state_topic().to_string()],
            transactional,
            commit_interval: settings.commit_interval,
            max_batch: settings.max_batch,
            status_every,
            restarts,
        },
        shutdown.clone(),
    );
    shutdown.store(true, Ordering::Relaxed);
    let router_result = match router {
        Some(h) => h.join().map_err(|_| anyhow!("the router stage panicked"))?,
        None => Ok(()),
    };
    engine_result.and(router_result)
}
