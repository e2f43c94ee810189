//! Kafka mode load run (not a timed test): `cargo bench --bench kafka` (needs tansu, which
//! `.ci/run` installs). Figures and machine are recorded in `benches/RESULTS-kafka.md`.
//!
//! 1. Raw rate: a consumer of this crate's client (rdkafka, bundled librdkafka) reads a
//!    pre-filled input topic from the beginning and parses nothing.
//! 2. End-to-end rate: `leadguard run --config` processes the same pre-filled topic (parse,
//!    engine, outputs produced, offsets and snapshots committed); measured from its first
//!    committed offset to the last, so the group join is not counted.
//! 3. Latency at a paced input rate: events produced at `BENCH_RATE` (default 5,000/s) while
//!    leadguard runs; for each alert, the time from producing the event that triggered it to
//!    reading the alert back.
//!
//! `BENCH_EVENTS` (default 200,000) sets the stream size.

#[path = "../tests/support/mod.rs"]
mod support;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::*;

const PARTITIONS: i32 = 3;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn topics(broker: &Broker) {
    broker.create_topic("bench.events", PARTITIONS, false);
    broker.create_topic("lg.alerts", PARTITIONS, false);
    broker.create_topic("lg.dead", 1, false);
    broker.create_topic("lg.changelog", PARTITIONS, true);
}

/// Throughput runs commit every 100 ms (the default), latency runs every 10 ms.
fn config(dir: &std::path::Path, broker: &Broker, group: &str, commit_interval: &str) -> Setup {
    write_config(
        dir,
        broker,
        group,
        &format!("clock: event\nmode: at_least_once\ncommit_interval: {commit_interval}\nsnapshot_every: 100000\n\
         librdkafka:\n  batch.num.messages: \"1\"\n  linger.ms: \"0\"\n  fetch.wait.max.ms: \"10\"\n\
         topics:\n  activity: [{{name: bench.events, keyed_by_customer: true}}]\n  alerts: lg.alerts\n  dead_letters: lg.dead\n  changelog: lg.changelog\n"),
    )
}

fn raw_rate(broker: &Broker, total: usize) -> f64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "bench-raw")
        .set("enable.auto.commit", "false")
        // The same fetch settings leadguard runs with in `config`.
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("bench.events", p, Offset::Beginning)
            .expect("offset");
    }
    c.assign(&tpl).expect("assign");
    let mut n = 0usize;
    let mut bytes = 0usize;
    let mut first = None;
    while n < total {
        if let Some(Ok(m)) = c.poll(Duration::from_secs(5)) {
            first.get_or_insert_with(Instant::now);
            bytes += m.payload().map_or(0, <[u8]>::len);
            n += 1;
        }
    }
    let secs = first.expect("read something").elapsed().as_secs_f64();
    eprintln!("raw consumer: {n} messages ({bytes} bytes) in {secs:.2}s");
    n as f64 / secs
}

fn end_to_end_rate(broker: &Broker, dir: &std::path::Path, total: usize) -> f64 {
    let commit = std::env::var("BENCH_COMMIT").unwrap_or_else(|_| "100ms".into());
    let setup = config(dir, broker, "bench-e2e", &commit);
    let engine = Engine::start(&setup, "e2e");
    // From the moment it owns its partitions (as the raw consumer from its first message),
    // to the last offset committed.
    wait_for(
        "leadguard to own its partitions",
        Duration::from_secs(120),
        || engine.log_text().matches("restored (").count() >= PARTITIONS as usize,
    );
    let t0 = Instant::now();
    loop {
        let done: i64 = committed(broker, "bench-e2e", "bench.events", PARTITIONS)
            .iter()
            .map(|o| o.unwrap_or(0))
            .sum();
        if done as usize >= total {
            let secs = t0.elapsed().as_secs_f64();
            engine.stop();
            eprintln!("leadguard: {done} events committed in {secs:.2}s");
            return done as f64 / secs;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Latencies (ms) of every alert, and of those whose trigger was sent after the first 5 s.
/// With `through_leadguard`, alerts are read back (keyed by their triggering event); without,
/// the input topic itself (the broker's own produce→consume latency, for comparison).
fn latency(
    broker: &Broker,
    dir: &std::path::Path,
    lines: &[&[u8]],
    rate: usize,
    through_leadguard: bool,
) -> (Vec<f64>, Vec<f64>) {
    let engine = through_leadguard.then(|| {
        let setup = config(dir, broker, "bench-latency", "10ms");
        let engine = Engine::start(&setup, "latency");
        // Ready when it has joined the group and restored its partitions.
        wait_for(
            "leadguard to own its partitions",
            Duration::from_secs(120),
            || engine.log_text().matches("restored (").count() >= PARTITIONS as usize,
        );
        engine
    });
    let read_topic = if through_leadguard {
        "lg.alerts"
    } else {
        "bench.events"
    };
    let alerts: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "bench-alerts")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "5")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(read_topic, p, Offset::End)
            .expect("offset");
    }
    alerts.assign(&tpl).expect("assign");
    let producer = bench_producer(broker, "0");
    let sent: std::sync::Arc<std::sync::Mutex<HashMap<String, Instant>>> = Default::default();
    let sent2 = sent.clone();
    // Ids and keys worked out before the clock starts, so the pacer only sends.
    let owned: Vec<(String, String, Vec<u8>)> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).expect("json");
            let id = v["event_id"].as_str().unwrap_or_default().to_string();
            (id, customer_id(l).unwrap_or_default(), l.to_vec())
        })
        .collect();
    let pacer = std::thread::spawn(move || {
        let start = Instant::now();
        for (i, (id, key, line)) in owned.iter().enumerate() {
            let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            sent2.lock().unwrap().insert(id.clone(), Instant::now());
            let mut rec: BaseRecord<'_, str, [u8]> = BaseRecord::to("bench.events")
                .key(key.as_str())
                .payload(line.as_slice());
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        rec = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        }
        producer.flush(Duration::from_secs(30)).expect("flushed");
        start.elapsed()
    });
    let mut latencies = Vec::new();
    let mut steady = Vec::new();
    let begun = Instant::now();
    let mut quiet_since = Instant::now();
    loop {
        match alerts.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let now = Instant::now();
                quiet_since = now;
                let v: serde_json::Value =
                    serde_json::from_slice(m.payload().unwrap_or_default()).expect("json");
                let trigger = if through_leadguard {
                    v["data"]["evidence"][0]["event_id"].as_str()
                } else {
                    v["event_id"].as_str()
                }
                .unwrap_or_default();
                if let Some(t) = sent.lock().unwrap().get(trigger) {
                    let ms = now.duration_since(*t).as_secs_f64() * 1000.0;
                    latencies.push(ms);
                    if t.duration_since(begun) > Duration::from_secs(5) {
                        steady.push(ms);
                    }
                }
            }
            _ => {
                if pacer.is_finished() && quiet_since.elapsed() > Duration::from_secs(5) {
                    break;
                }
            }
        }
    }
    let produced_in = pacer.join().expect("pacer");
    eprintln!(
        "paced input: {} events in {:.2}s ({:.0}/s)",
        lines.len(),
        produced_in.as_secs_f64(),
        lines.len() as f64 / produced_in.as_secs_f64()
    );
    if let Some(e) = engine {
        e.stop();
    }
    latencies.sort_by(f64::total_cmp);
    steady.sort_by(f64::total_cmp);
    (latencies, steady)
}

/// Messages in the input topic: the sum of its partitions' high watermarks.
fn high_watermarks(broker: &Broker) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("client");
    (0..PARTITIONS)
        .map(|p| {
            c.fetch_watermarks("bench.events", p, Duration::from_secs(10))
                .expect("watermarks")
                .1
        })
        .sum()
}

/// One record per batch, as everywhere against tansu 0.6 (README "Kafka": it mishandles
/// multi-record batches).
fn bench_producer(broker: &Broker, linger_ms: &str) -> TestProducer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("partitioner", "murmur2_random")
        .set("batch.num.messages", "1")
        .set("linger.ms", linger_ms)
        .create_with_context(Deliveries::default())
        .expect("producer")
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let events = env_usize("BENCH_EVENTS", 200_000);
    let rate = env_usize("BENCH_RATE", 5_000);
    let dir = temp_dir("bench");
    let cfg = leadguard::gen::GenConfig {
        seed: 2026,
        customers: events / 20,
        reps: 400,
        events,
        days: 60,
        id_less: 0.0,
        ..leadguard::gen::GenConfig::default()
    };
    let stream = generate(&dir, &cfg);
    let all = lines(&stream);

    let broker = Broker::start();
    topics(&broker);
    produce(
        &bench_producer(&broker, "5"),
        "bench.events",
        &all,
        customer_id,
    );
    let total = high_watermarks(&broker);
    let raw = raw_rate(&broker, total as usize);
    let e2e = end_to_end_rate(&broker, &dir, total as usize);
    drop(broker);

    let paced = &all[..all.len().min(rate * 20)];
    let broker = Broker::start();
    topics(&broker);
    let (raw_lat, raw_steady) = latency(&broker, &dir, paced, rate, false);
    drop(broker);
    let broker = Broker::start();
    topics(&broker);
    let (lat, steady) = latency(&broker, &dir, paced, rate, true);

    println!(
        "stream: {total} messages in the input topic of {} produced ({events} events, 3 partitions, keyed by customer)",
        all.len()
    );
    println!("raw consume (rdkafka, no parsing): {raw:.0} messages/s");
    println!(
        "leadguard end to end (at_least_once, commit_interval 100ms): {e2e:.0} events/s = {:.0}% of raw",
        100.0 * e2e / raw
    );
    for (what, l) in [
        ("broker alone, produce→consume, all", &raw_lat),
        ("broker alone, after the first 5 s", &raw_steady),
        ("produce→alert through leadguard, all alerts", &lat),
        ("produce→alert, triggers sent after the first 5 s", &steady),
    ] {
        if l.is_empty() {
            println!("latency ({what}): no alerts seen");
        } else {
            println!(
                "latency at {rate}/s, {what} ({} samples): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                l.len(),
                pct(l, 0.5),
                pct(l, 0.99),
                l[l.len() - 1]
            );
        }
    }
}
