//! Kafka mode settings: a YAML file, then environment variables, then command-line flags (each
//! overriding the one before). Every problem in the file is reported at once with file, line and
//! column; unknown keys are errors (a misspelt `comit_interval` must not silently keep the
//! default).

use crate::config::yaml::{self, Diagnostic, Node, Reader};
use crate::config::Rules;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How outputs, state and input offsets are committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One Kafka transaction per batch: outputs, dead letters, state and input offsets become
    /// visible together or not at all (readers must use `isolation.level=read_committed`).
    ExactlyOnce,
    /// For brokers without transactions: outputs are delivered before offsets are committed, so
    /// a crash repeats some outputs, with the same ids (deduplicate by id).
    AtLeastOnce,
}

/// Which clock drives the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Live operation: timers fire on quiet partitions by wall-clock time, and an event more
    /// than `max_future_skew` ahead of its message's timestamp is refused.
    Wall,
    /// Event time only, as `leadguard replay` does (backfills, tests): nothing happens on a
    /// quiet partition.
    Event,
}

/// An input topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputTopic {
    pub name: String,
    /// A `sources:` entry of the rules for messages not in the canonical shape.
    pub source: Option<String>,
    /// The publisher keys every message by the CRM customer id.
    pub keyed_by_customer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub activity: Vec<InputTopic>,
    pub ownership: Option<InputTopic>,
    /// Collision alerts, reassignment recommendations, reclaim warnings, SLA breaches and
    /// dormant customers (and their withdrawals).
    pub alerts: String,
    /// Ownership changes the CRM applies: claimed, assigned, released, extended, rejected,
    /// reassigned (and their withdrawals); default: the alerts topic.
    pub ownership_changes: String,
    pub dead_letters: String,
    /// Internal: input re-keyed by customer. Needed unless the only input is keyed by customer.
    pub repartition: Option<String>,
    /// Internal, compacted: engine state per partition.
    pub changelog: String,
}

impl Topics {
    /// Every input topic, activity first.
    pub fn inputs(&self) -> impl Iterator<Item = &InputTopic> {
        self.activity.iter().chain(self.ownership.as_ref())
    }

    /// The topic whose partitions hold the engine state: the only input when it is keyed by
    /// customer (processed in place), else the repartition topic.
    pub fn state_topic(&self) -> &str {
        match self.in_place() {
            Some(t) => &t.name,
            None => self
                .repartition
                .as_deref()
                .expect("checked when the settings were read"),
        }
    }

    /// The input processed in place, if there is one.
    pub fn in_place(&self) -> Option<&InputTopic> {
        let mut inputs = self.inputs();
        match (inputs.next(), inputs.next()) {
            (Some(only), None) if only.keyed_by_customer => Some(only),
            _ => None,
        }
    }
}

/// Everything Kafka mode needs besides the rules and roster.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaSettings {
    /// Where the settings came from, for messages.
    pub file: PathBuf,
    pub brokers: String,
    pub group_id: String,
    /// Stable name of this instance (a pod name): its transactional id is
    /// `<group_id>-<instance_id>`, so a restarted instance fences its own predecessor.
    pub instance_id: String,
    pub mode: Mode,
    pub clock: Clock,
    /// Longest time between commits.
    pub commit_interval: Duration,
    /// Most input messages in one commit (bounds memory and the work redone after a crash).
    pub max_batch: usize,
    /// A partition's state is written to the changelog at least this often while it changes.
    pub snapshot_interval: Duration,
    /// ... and after this many messages of the partition, whichever comes first.
    pub snapshot_every: u64,
    /// How often quiet partitions' timers are checked (wall clock).
    pub tick_interval: Duration,
    pub rules: Option<PathBuf>,
    pub roster: Option<PathBuf>,
    pub topics: Topics,
    /// librdkafka properties passed through unchanged (SASL, SSL, timeouts, ...).
    pub librdkafka: BTreeMap<String, String>,
}

/// Overrides from the command line (highest precedence).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KafkaFlags {
    /// Kafka mode: read inputs from and write outputs to Kafka, as this YAML file says
    /// (see README "Kafka"). Without it, `run` reads files.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["input", "live"])]
    pub config: Option<PathBuf>,
    /// Kafka mode: bootstrap brokers (host:port,...), overriding the file and LEADGUARD_KAFKA_BROKERS.
    #[arg(long, requires = "config")]
    pub brokers: Option<String>,
    /// Kafka mode: consumer group id, overriding the file and LEADGUARD_KAFKA_GROUP_ID.
    #[arg(long, requires = "config")]
    pub group_id: Option<String>,
    /// Kafka mode: this instance's stable name, overriding the file and LEADGUARD_KAFKA_INSTANCE_ID.
    #[arg(long, requires = "config")]
    pub instance_id: Option<String>,
}

const TOP_KEYS: &[&str] = &[
    "brokers",
    "group_id",
    "instance_id",
    "mode",
    "clock",
    "commit_interval",
    "max_batch",
    "snapshot_interval",
    "snapshot_every",
    "tick_interval",
    "rules",
    "roster",
    "topics",
    "librdkafka",
];
const TOPIC_KEYS: &[&str] = &[
    "activity",
    "ownership",
    "alerts",
    "ownership_changes",
    "dead_letters",
    "repartition",
    "changelog",
];
const INPUT_KEYS: &[&str] = &["name", "source", "keyed_by_customer"];

/// Properties leadguard sets itself: passing them through would break its guarantees.
const RESERVED: &[&str] = &[
    "group.id",
    "transactional.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "isolation.level",
    "enable.idempotence",
    "partition.assignment.strategy",
    "enable.partition.eof",
];

impl KafkaSettings {
    /// Reads the file, then applies `env` (the process environment, passed in for tests) and
    /// `flags`.
    pub fn load(
        path: &Path,
        env: &BTreeMap<String, String>,
        flags: &KafkaFlags,
    ) -> Result<KafkaSettings, Vec<Diagnostic>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![Diagnostic {
                file: path.to_path_buf(),
                line: 0,
                col: 0,
                message: format!("cannot read the Kafka settings: {e}"),
            }]
        })?;
        Self::parse(&text, path, env, flags)
    }

    pub fn parse(
        text: &str,
        path: &Path,
        env: &BTreeMap<String, String>,
        flags: &KafkaFlags,
    ) -> Result<KafkaSettings, Vec<Diagnostic>> {
        let tree = yaml::parse(text, path)?;
        let mut errors = Vec::new();
        let settings = {
            let mut r = Reader {
                file: path,
                errors: &mut errors,
            };
            read(&mut r, &tree, path, env, flags)
        };
        match settings {
            Some(s) if errors.is_empty() => Ok(s),
            _ => Err(errors),
        }
    }

    /// The transactional id of this instance.
    pub fn transactional_id(&self) -> String {
        format!("{}-{}", self.group_id, self.instance_id)
    }

    /// Checks what needs the rules: every `source` names a mapping.
    pub fn check_sources(&self, rules: &Rules) -> Result<(), String> {
        let known: Vec<&str> = rules.sources.iter().map(|s| s.name.as_str()).collect();
        let mut problems = Vec::new();
        for t in self.topics.inputs() {
            if let Some(s) = &t.source {
                if !known.contains(&s.as_str()) {
                    problems.push(format!(
                        "{}: topic `{}` names the source mapping `{s}`, which the rules don't define (known: {})",
                        self.file.display(),
                        t.name,
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

fn duration(r: &mut Reader<'_>, node: &Node, what: &str) -> Option<Duration> {
    let span = r.span(node, what)?;
    if span.as_millis() <= 0 {
        r.error(node, format!("{what} must be longer than zero"));
        return None;
    }
    Some(Duration::from_millis(span.as_millis() as u64))
}

fn input(r: &mut Reader<'_>, node: &Node, what: &str) -> Option<InputTopic> {
    // A bare name is the common case: `ownership: crm.ownership`.
    if let Some(name) = node.as_str().filter(|_| !node.is_null()) {
        return Some(InputTopic {
            name: name.to_string(),
            source: None,
            keyed_by_customer: false,
        });
    }
    let m = r.map(node, what, INPUT_KEYS)?;
    let name = m.require(r, "name").and_then(|n| r.string(n, "`name`"));
    let source = m.get("source").and_then(|n| r.string(n, "`source`"));
    let keyed = m
        .get("keyed_by_customer")
        .and_then(|n| r.bool(n, "`keyed_by_customer`"))
        .unwrap_or(false);
    m.finish(r);
    Some(InputTopic {
        name: name?,
        source,
        keyed_by_customer: keyed,
    })
}

fn read(
    r: &mut Reader<'_>,
    tree: &Node,
    path: &Path,
    env: &BTreeMap<String, String>,
    flags: &KafkaFlags,
) -> Option<KafkaSettings> {
    let top = r.map(tree, "the Kafka settings", TOP_KEYS)?;
    let string =
        |r: &mut Reader<'_>, key: &str| top.get(key).and_then(|n| r.string(n, &format!("`{key}`")));
    let brokers = string(r, "brokers");
    let group_id = string(r, "group_id");
    let instance_id = string(r, "instance_id");
    let mode_node = top.get("mode");
    let mode_choices = [
        ("exactly_once", Mode::ExactlyOnce),
        ("at_least_once", Mode::AtLeastOnce),
    ];
    let mut mode = mode_node
        .and_then(|n| r.choice(n, "`mode`", &mode_choices))
        .unwrap_or(Mode::ExactlyOnce);
    let clock = top
        .get("clock")
        .and_then(|n| {
            r.choice(
                n,
                "`clock`",
                &[("wall", Clock::Wall), ("event", Clock::Event)],
            )
        })
        .unwrap_or(Clock::Wall);
    let commit_interval = top
        .get("commit_interval")
        .and_then(|n| duration(r, n, "`commit_interval`"))
        .unwrap_or(Duration::from_millis(100));
    let max_batch = top
        .get("max_batch")
        .and_then(|n| r.uint(n, "`max_batch`", 1, 1_000_000))
        .unwrap_or(10_000) as usize;
    let snapshot_interval = top
        .get("snapshot_interval")
        .and_then(|n| duration(r, n, "`snapshot_interval`"))
        .unwrap_or(Duration::from_secs(60));
    let snapshot_every = top
        .get("snapshot_every")
        .and_then(|n| r.uint(n, "`snapshot_every`", 1, u64::MAX))
        .unwrap_or(500_000);
    let tick_interval = top
        .get("tick_interval")
        .and_then(|n| duration(r, n, "`tick_interval`"))
        .unwrap_or(Duration::from_secs(1));
    // Paths in the file are relative to the file.
    let base = path.parent().unwrap_or(Path::new("."));
    let rules = string(r, "rules").map(|p| base.join(p));
    let roster = string(r, "roster").map(|p| base.join(p));

    let mut librdkafka = BTreeMap::new();
    if let Some(node) = top.get("librdkafka") {
        if let yaml::Value::Map(entries) = &node.value {
            for (k, v) in entries {
                let (Some(key), Some(value)) = (k.as_str(), r.string(v, "a librdkafka property"))
                else {
                    continue;
                };
                if RESERVED.contains(&key) {
                    r.error(
                        k,
                        format!(
                            "`{key}` is set by leadguard itself (see README \"Kafka\"); remove it"
                        ),
                    );
                } else if librdkafka.insert(key.to_string(), value).is_some() {
                    r.error(k, format!("`{key}` is given twice"));
                }
            }
        } else if !node.is_null() {
            r.error(
                node,
                "`librdkafka` must be a mapping of librdkafka properties to values",
            );
        }
    }

    let topics = match top.require(r, "topics") {
        None => None,
        Some(node) => read_topics(r, node),
    };
    top.finish(r);

    // Environment, then flags.
    let brokers = flags
        .brokers
        .clone()
        .or_else(|| env.get("LEADGUARD_KAFKA_BROKERS").cloned())
        .or(brokers);
    let group_id = flags
        .group_id
        .clone()
        .or_else(|| env.get("LEADGUARD_KAFKA_GROUP_ID").cloned())
        .or(group_id)
        .unwrap_or_else(|| "leadguard".to_string());
    let instance_id = flags
        .instance_id
        .clone()
        .or_else(|| env.get("LEADGUARD_KAFKA_INSTANCE_ID").cloned())
        .or(instance_id)
        .or_else(|| env.get("HOSTNAME").cloned())
        .unwrap_or_else(|| "0".to_string());
    if let Some(m) = env.get("LEADGUARD_KAFKA_MODE") {
        match mode_choices.iter().find(|(n, _)| n == m) {
            Some((_, v)) => mode = *v,
            None => r.error(
                tree,
                format!("LEADGUARD_KAFKA_MODE=`{m}` is not one of exactly_once, at_least_once"),
            ),
        }
    }
    for (k, v) in env {
        if let Some(rest) = k.strip_prefix("LEADGUARD_LIBRDKAFKA_") {
            let key = rest.to_ascii_lowercase().replace('_', ".");
            if RESERVED.contains(&key.as_str()) {
                r.error(
                    tree,
                    format!("{k}: `{key}` is set by leadguard itself; remove it"),
                );
            } else {
                librdkafka.insert(key, v.clone());
            }
        }
    }
    let Some(brokers) = brokers else {
        r.error(
            tree,
            "no brokers: set `brokers` (host:port,...), LEADGUARD_KAFKA_BROKERS or --brokers",
        );
        return None;
    };
    Some(KafkaSettings {
        file: path.to_path_buf(),
        brokers,
        group_id,
        instance_id,
        mode,
        clock,
        commit_interval,
        max_batch,
        snapshot_interval,
        snapshot_every,
        tick_interval,
        rules,
        roster,
        topics: topics?,
        librdkafka,
    })
}

fn read_topics(r: &mut Reader<'_>, node: &Node) -> Option<Topics> {
    let m = r.map(node, "`topics`", TOPIC_KEYS)?;
    let mut activity = Vec::new();
    if let Some(list) = m
        .get("activity")
        .and_then(|n| r.list(n, "`topics.activity`"))
    {
        for item in list {
            if let Some(t) = input(r, item, "an activity topic") {
                activity.push(t);
            }
        }
    }
    let ownership = m
        .get("ownership")
        .and_then(|n| input(r, n, "`topics.ownership`"));
    let name = |r: &mut Reader<'_>, key: &str| {
        m.get(key)
            .and_then(|n| r.string(n, &format!("`topics.{key}`")))
    };
    let alerts = m.require(r, "alerts").and(name(r, "alerts"));
    let ownership_changes = name(r, "ownership_changes");
    let dead_letters = m.require(r, "dead_letters").and(name(r, "dead_letters"));
    let repartition = name(r, "repartition");
    let changelog = m.require(r, "changelog").and(name(r, "changelog"));
    if activity.is_empty() && ownership.is_none() {
        r.error(
            node,
            "`topics` names no input: list `activity` topics and/or an `ownership` topic",
        );
    }
    let topics = Topics {
        activity,
        ownership,
        ownership_changes: ownership_changes.or_else(|| alerts.clone())?,
        alerts: alerts?,
        dead_letters: dead_letters?,
        repartition,
        changelog: changelog?,
    };
    let mut inputs: Vec<&str> = Vec::new();
    for t in topics.inputs() {
        if inputs.contains(&t.name.as_str()) {
            r.error(node, format!("input topic `{}` is listed twice", t.name));
        }
        inputs.push(&t.name);
    }
    let outputs = [
        ("alerts", Some(&topics.alerts)),
        ("ownership_changes", Some(&topics.ownership_changes)),
        ("dead_letters", Some(&topics.dead_letters)),
        ("repartition", topics.repartition.as_ref()),
        ("changelog", Some(&topics.changelog)),
    ];
    for (key, name) in outputs {
        if let Some(name) = name {
            if inputs.contains(&name.as_str()) {
                r.error(
                    node,
                    format!("`topics.{key}` is `{name}`, which is also an input topic"),
                );
            }
        }
    }
    if topics.changelog == topics.alerts
        || Some(&topics.changelog) == topics.repartition.as_ref()
        || topics.changelog == topics.dead_letters
    {
        r.error(
            node,
            "`topics.changelog` must be a topic of its own (compacted)",
        );
    }
    if topics.in_place().is_none() && topics.repartition.is_none() {
        r.error(
            node,
            "`topics.repartition` is needed: with more than one input topic, or an input not keyed by customer id, leadguard re-keys the input by customer through it (see README \"Kafka\")",
        );
    }
    m.finish(r);
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = "\
brokers: kafka-1:9092,kafka-2:9092
group_id: leadguard-east
instance_id: lg-0
mode: at_least_once
clock: event
commit_interval: 50ms
max_batch: 2000
topics:
  activity:
    - {name: callcenter.cdr, source: callcenter-cdr}
    - crm.activity
  ownership: {name: crm.ownership, keyed_by_customer: true}
  alerts: leadguard.alerts
  ownership_changes: leadguard.ownership
  dead_letters: leadguard.dead-letters
  repartition: leadguard.repartition
  changelog: leadguard.changelog
librdkafka:
  security.protocol: SASL_SSL
  sasl.mechanisms: SCRAM-SHA-512
";

    fn parse(
        text: &str,
        env: &[(&str, &str)],
        flags: &KafkaFlags,
    ) -> Result<KafkaSettings, Vec<String>> {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        KafkaSettings::parse(text, Path::new("conf/kafka.yaml"), &env, flags)
            .map_err(|errs| errs.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn a_full_file_is_read() {
        let s = parse(FULL, &[], &KafkaFlags::default()).expect("valid");
        assert_eq!(s.brokers, "kafka-1:9092,kafka-2:9092");
        assert_eq!(s.transactional_id(), "leadguard-east-lg-0");
        assert_eq!(s.mode, Mode::AtLeastOnce);
        assert_eq!(s.clock, Clock::Event);
        assert_eq!(s.commit_interval, Duration::from_millis(50));
        assert_eq!(s.max_batch, 2000);
        assert_eq!(s.topics.activity.len(), 2);
        assert_eq!(
            s.topics.activity[0].source.as_deref(),
            Some("callcenter-cdr")
        );
        assert!(s.topics.ownership.as_ref().unwrap().keyed_by_customer);
        assert_eq!(s.topics.state_topic(), "leadguard.repartition");
        assert_eq!(s.librdkafka["sasl.mechanisms"], "SCRAM-SHA-512");
    }

    #[test]
    fn environment_overrides_the_file_and_flags_override_both() {
        let env = [
            ("LEADGUARD_KAFKA_BROKERS", "env:9092"),
            ("LEADGUARD_KAFKA_INSTANCE_ID", "pod-7"),
            ("LEADGUARD_KAFKA_MODE", "exactly_once"),
            ("LEADGUARD_LIBRDKAFKA_SASL_PASSWORD", "secret"),
        ];
        let flags = KafkaFlags {
            brokers: Some("flag:9092".into()),
            ..KafkaFlags::default()
        };
        let s = parse(FULL, &env, &flags).expect("valid");
        assert_eq!(s.brokers, "flag:9092");
        assert_eq!(s.instance_id, "pod-7");
        assert_eq!(s.mode, Mode::ExactlyOnce);
        assert_eq!(s.librdkafka["sasl.password"], "secret");
    }

    #[test]
    fn one_input_keyed_by_customer_is_processed_in_place() {
        let text = "brokers: b:9092\ntopics:\n  activity: [{name: crm.all, keyed_by_customer: true}]\n  alerts: a\n  dead_letters: d\n  changelog: c\n";
        let s = parse(text, &[], &KafkaFlags::default()).expect("valid");
        assert_eq!(s.topics.state_topic(), "crm.all");
        assert_eq!(
            s.topics.ownership_changes, "a",
            "defaults to the alerts topic"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let text = "\
brokers: b:9092
comit_interval: 10ms
mode: twice
topics:
  activity: [crm.a, crm.b]
  alerts: crm.a
  dead_letters: d
  changelog: c
librdkafka:
  group.id: other
";
        let errs = parse(text, &[], &KafkaFlags::default()).expect_err("invalid");
        let all = errs.join("\n");
        assert!(all.contains("conf/kafka.yaml:2:1: the Kafka settings: unknown key `comit_interval` (did you mean `commit_interval`?)"), "{all}");
        assert!(
            all.contains(
                "conf/kafka.yaml:3:7: `mode`: `twice` is not one of exactly_once, at_least_once"
            ),
            "{all}"
        );
        assert!(
            all.contains("`group.id` is set by leadguard itself"),
            "{all}"
        );
        assert!(all.contains("`topics.repartition` is needed"), "{all}");
        assert!(
            all.contains("`topics.alerts` is `crm.a`, which is also an input topic"),
            "{all}"
        );
    }

    /// The example in README "Kafka" stays a valid settings file.
    #[test]
    fn the_readme_example_is_valid() {
        let readme = include_str!("../../README.md");
        let start = readme
            .find("```yaml\nbrokers: kafka-1")
            .expect("the README has the example")
            + "```yaml\n".len();
        let end = start + readme[start..].find("```").expect("closed");
        let s = parse(&readme[start..end], &[], &KafkaFlags::default()).expect("valid");
        assert_eq!(s.topics.state_topic(), "leadguard.repartition");
        assert_eq!(s.librdkafka["security.protocol"], "SASL_SSL");
    }

    #[test]
    fn brokers_are_required_somewhere() {
        let text = "topics:\n  activity: [{name: a, keyed_by_customer: true}]\n  alerts: x\n  dead_letters: d\n  changelog: c\n";
        let errs = parse(text, &[], &KafkaFlags::default()).expect_err("no brokers");
        assert!(errs[0].contains("LEADGUARD_KAFKA_BROKERS"), "{errs:?}");
        assert!(parse(
            text,
            &[("LEADGUARD_KAFKA_BROKERS", "h:1")],
            &KafkaFlags::default()
        )
        .is_ok());
        let no_changelog = text.replace("  changelog: c\n", "");
        let errs = parse(
            &no_changelog,
            &[("LEADGUARD_KAFKA_BROKERS", "h:1")],
            &KafkaFlags::default(),
        )
        .expect_err("no changelog");
        assert!(
            errs[0].contains("missing the required key `changelog`"),
            "{errs:?}"
        );
    }
}
