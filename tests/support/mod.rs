//! Shared pieces of the Kafka integration tests: the broker, producing and reading topics,
//! running `leadguard` processes, and the reference outputs from `leadguard replay`.

#![allow(dead_code)]

pub mod broker;
pub mod scratch;

pub use broker::{wait_for, wait_until, Broker};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use scratch::Scratch;

pub fn temp_dir(name: &str) -> Scratch {
    Scratch::new(&format!("kafka-{name}"))
}

/// One message read back from a topic.
#[derive(Debug, Clone)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: BTreeMap<String, Vec<u8>>,
}

impl Read {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.value).expect("a JSON value")
    }
}

/// tansu 0.6 mishandles multi-record batches (reading a topic back gives ~0.1% fewer records
/// than were acknowledged at the producer defaults; exact with one record per batch): every
/// producer in these tests, leadguard's included, sends one record per batch.
pub const TANSU_PRODUCER: &[(&str, &str)] = &[("batch.num.messages", "1")];

/// Counts failed deliveries, so that a test never runs on input that silently went missing.
#[derive(Default)]
pub struct Deliveries {
    pub failed: std::sync::atomic::AtomicU64,
    pub first: std::sync::Mutex<Option<String>>,
}

impl rdkafka::ClientContext for Deliveries {}

impl rdkafka::producer::ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = r {
            self.failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.first
                .lock()
                .unwrap()
                .get_or_insert_with(|| e.to_string());
        }
    }
}

pub type TestProducer = ThreadedProducer<Deliveries>;

pub fn producer(broker: &Broker) -> TestProducer {
    producer_at(&broker.bootstrap())
}

pub fn producer_at(bootstrap: &str) -> TestProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .set("batch.num.messages", TANSU_PRODUCER[0].1)
        .create_with_context(Deliveries::default())
        .expect("producer")
}

/// Produces `lines` to `topic`, each with the key `key(line)` (none: spread by the producer).
pub fn produce(
    p: &TestProducer,
    topic: &str,
    lines: &[&[u8]],
    key: impl Fn(&[u8]) -> Option<String>,
) {
    for line in lines {
        let k = key(line);
        let mut record: BaseRecord<'_, str, [u8]> = BaseRecord::to(topic).payload(*line);
        if let Some(k) = &k {
            record = record.key(k.as_str());
        }
        let mut record = record;
        loop {
            match p.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
    // Generous: on a loaded machine the broker may take minutes to take 100k records.
    p.flush(Duration::from_secs(300)).expect("flushed");
    let failed = p
        .context()
        .failed
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        failed,
        0,
        "the test producer lost messages: {:?}",
        p.context().first.lock().unwrap()
    );
}

/// The CRM customer id of a generated event line (its message key when keyed by customer).
pub fn customer_id(line: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    v["customer"]["id"].as_str().map(str::to_string)
}

/// Everything in `topic` now (read committed), in partition then offset order.
pub fn read_all(broker: &Broker, topic: &str) -> Vec<Read> {
    read_all_at(&broker.bootstrap(), topic)
}

pub fn read_all_at(bootstrap: &str, topic: &str) -> Vec<Read> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "leadguard-tests-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()
        .expect("reader");
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions = md.topics()[0].partitions().len() as i32;
    // Read up to the high watermark each partition has now: a topic still being written (a
    // changelog taking ticks) never shows an end of partition.
    let mut tpl = TopicPartitionList::new();
    let mut high = Vec::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("offset");
        let (_, hi) = c
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .expect("watermarks");
        high.push(hi);
    }
    c.assign(&tpl).expect("assign");
    let mut done: BTreeSet<i32> = (0..partitions).filter(|p| high[*p as usize] == 0).collect();
    let mut out = Vec::new();
    let mut idle = 0;
    while (done.len() as i32) < partitions {
        match c.poll(Duration::from_secs(1)) {
            None => {
                idle += 1;
                assert!(
                    idle < 60,
                    "reading {topic}: stuck before the end after 60 s"
                );
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                done.insert(p);
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            Some(Ok(m)) => {
                if m.offset() + 1 >= high[m.partition() as usize] {
                    done.insert(m.partition());
                }
                if m.offset() >= high[m.partition() as usize] {
                    continue;
                }
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Read {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().unwrap_or_default().to_vec(),
                    headers,
                });
            }
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    out
}

/// Output ids in `topic` (every occurrence, so duplicates show).
pub fn output_ids(broker: &Broker, topic: &str) -> Vec<String> {
    read_all(broker, topic)
        .iter()
        .map(|r| r.header("ce_id").expect("ce_id header").to_string())
        .collect()
}

/// The offset a consumer group committed per partition of `topic`.
pub fn committed(broker: &Broker, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", group)
        .create()
        .expect("client");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    match c.committed_offsets(tpl, Duration::from_secs(10)) {
        Ok(list) => (0..partitions)
            .map(
                |p| match list.find_partition(topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => Some(o),
                    _ => None,
                },
            )
            .collect(),
        Err(_) => vec![None; partitions as usize],
    }
}

/// The next offset after the last message of each partition (what a consumer that processed
/// everything commits).
pub fn ends(broker: &Broker, topic: &str, partitions: i32) -> Vec<Option<i64>> {
    let mut ends = vec![None; partitions as usize];
    for r in read_all(broker, topic) {
        ends[r.partition as usize] = Some(r.offset + 1);
    }
    ends
}

/// Waits until `group` has committed every message of `topic`.
pub fn wait_until_processed(
    broker: &Broker,
    group: &str,
    topic: &str,
    partitions: i32,
    limit: Duration,
) {
    let want = ends(broker, topic, partitions);
    let mut last = Vec::new();
    let done = wait_until(limit, || {
        last = committed(broker, group, topic, partitions);
        last.iter().zip(&want).all(|(c, w)| w.is_none() || c >= w)
    });
    assert!(
        done,
        "gave up after {limit:?} waiting for group {group} to commit all of {topic}: ends {want:?}, committed {last:?}"
    );
}

/// A Kafka mode settings file.
pub struct Setup {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub group: String,
}

pub fn write_config(dir: &Path, broker: &Broker, group: &str, body: &str) -> Setup {
    let config = dir.join(format!("{group}.yaml"));
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    std::fs::write(
        &config,
        format!(
            "brokers: {}\ngroup_id: {group}\nrules: {}\nroster: roster.yaml\n{body}",
            broker.bootstrap(),
            rules.display()
        ),
    )
    .expect("config written");
    Setup {
        dir: dir.to_path_buf(),
        config,
        group: group.to_string(),
    }
}

/// The admin API token every started engine has in its environment, for a tokens file that
/// names `LEADGUARD_TEST_ADMIN_TOKEN`.
pub const TEST_ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A running `leadguard run --config`.
pub struct Engine {
    pub child: Child,
    pub log: PathBuf,
}

impl Engine {
    pub fn start(setup: &Setup, instance: &str) -> Engine {
        Engine::start_with(setup, instance, &[])
    }

    /// With more flags for `leadguard run` (e.g. `--listen`).
    pub fn start_with(setup: &Setup, instance: &str, extra: &[&str]) -> Engine {
        let log = setup.dir.join(format!("{instance}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_leadguard"))
            .args(["run", "--config"])
            .arg(&setup.config)
            .args(["--instance-id", instance])
            .args(extra)
            .env("RUST_LOG", "info")
            .env("LEADGUARD_TEST_ADMIN_TOKEN", TEST_ADMIN_TOKEN)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("leadguard starts");
        Engine { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kill -9.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let status = self.child.wait().expect("waits");
        assert!(
            status.success(),
            "leadguard exited with {status}:\n{}",
            self.log_text()
        );
    }

    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("leadguard exited early with {status}:\n{}", self.log_text());
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test shows what each instance was doing: CI keeps no temp files.
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- last lines of {} ---", self.log.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// A generated stream and its roster, written to `dir`.
pub fn generate(dir: &Path, cfg: &leadguard::gen::GenConfig) -> Vec<u8> {
    let mut stream = Vec::new();
    leadguard::gen::write_events(cfg, &mut stream).expect("generated");
    std::fs::write(dir.join("stream.jsonl"), &stream).expect("written");
    std::fs::write(dir.join("roster.yaml"), leadguard::gen::roster_yaml(cfg)).expect("written");
    stream
}

pub fn lines(stream: &[u8]) -> Vec<&[u8]> {
    stream
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect()
}

/// What `leadguard replay` makes of what `topic` holds, partition by partition (each partition
/// is one engine's input, in its order): output ids and dead-letter reasons. Built from the
/// topic rather than from what the test produced, because tansu 0.6 acknowledges a few
/// messages it never stores (README "Kafka"); the comparison is then over the same events.
pub fn replay_topic(broker: &Broker, topic: &str, dir: &Path) -> (Vec<String>, Vec<String>) {
    replay_topic_at(&broker.bootstrap(), topic, dir)
}

pub fn replay_topic_at(bootstrap: &str, topic: &str, dir: &Path) -> (Vec<String>, Vec<String>) {
    let messages = read_all_at(bootstrap, topic);
    let partitions: BTreeSet<i32> = messages.iter().map(|m| m.partition).collect();
    let (mut ids, mut dead) = (Vec::new(), Vec::new());
    for p in partitions {
        let mut input = Vec::new();
        for m in messages.iter().filter(|m| m.partition == p) {
            input.extend_from_slice(&m.value);
            input.push(b'\n');
        }
        let name = format!("{topic}-{p}.jsonl");
        std::fs::write(dir.join(&name), input).expect("written");
        let (i, d) = replay_file(dir, &name);
        ids.extend(i);
        dead.extend(d);
    }
    (ids, dead)
}

/// What `leadguard replay` makes of the file `name` in `dir`: output ids and dead-letter
/// reasons.
pub fn replay_file(dir: &Path, name: &str) -> (Vec<String>, Vec<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_leadguard"))
        .arg("replay")
        // The engines in Kafka mode keep running: compare with the stream read this far.
        .arg("--stream-continues")
        .arg("--input")
        .arg(dir.join(name))
        .arg("--rules")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
        .arg("--roster")
        .arg(dir.join("roster.yaml"))
        .arg("-o")
        .arg(dir.join("reference.jsonl"))
        .arg("--dead-letters")
        .arg(dir.join("reference-dead.jsonl"))
        .output()
        .expect("replay runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids = std::fs::read_to_string(dir.join("reference.jsonl"))
        .expect("reference")
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["id"]
                .as_str()
                .expect("id")
                .to_string()
        })
        .collect();
    let dead = std::fs::read_to_string(dir.join("reference-dead.jsonl"))
        .expect("dead letters")
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["reason"]
                .as_str()
                .expect("reason")
                .to_string()
        })
        .collect();
    (ids, dead)
}

/// Compares output ids with the reference as sets, and counts repeats.
pub struct Comparison {
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
    pub duplicates: usize,
}

impl Comparison {
    /// Fails unless every reference output is there and nothing else (repeats are allowed:
    /// they are counted in `duplicates`).
    pub fn assert_complete(&self, reference: &[String], context: &str) {
        assert!(
            self.missing.is_empty() && self.unexpected.is_empty(),
            "{context}: {} missing, {} unexpected of {} reference outputs",
            self.missing.len(),
            self.unexpected.len(),
            reference.len()
        );
    }
}

pub fn compare(got: &[String], reference: &[String]) -> Comparison {
    let got_set: BTreeSet<&String> = got.iter().collect();
    let ref_set: BTreeSet<&String> = reference.iter().collect();
    Comparison {
        missing: ref_set
            .difference(&got_set)
            .map(|s| s.to_string())
            .collect(),
        unexpected: got_set
            .difference(&ref_set)
            .map(|s| s.to_string())
            .collect(),
        duplicates: got.len() - got_set.len(),
    }
}

/// A free loopback address for a server the test starts.
pub fn free_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("address").to_string()
}

/// `GET path` over plain HTTP/1.1 with an optional bearer token: (status, body). Retries the
/// connection for up to 30 s while the server starts.
pub fn http_get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let started = std::time::Instant::now();
    let mut stream = loop {
        match std::net::TcpStream::connect(addr) {
            Ok(s) => break s,
            Err(e) if started.elapsed() < Duration::from_secs(30) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("cannot connect to {addr}: {e}"),
        }
    };
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("request sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}
