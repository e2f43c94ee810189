//! Kafka mode against a real Kafka-protocol broker (tansu, started per test on a free loopback
//! port; `.ci/run` installs it). Every test compares what leadguard wrote to Kafka with what
//! `leadguard replay` writes for the same events, by output id.
//!
//! What tansu 0.6 guarantees, and so what these tests can check: it has no EndTxn (a Kafka
//! transaction can be begun but never committed), so leadguard runs in `at_least_once` mode
//! here: after a crash some outputs are written again — always with the same id (the ids are
//! deterministic), which is what the tests count and report — and the set of ids must equal the
//! reference exactly. `exactly_once` is checked to refuse such a broker with a clear error.
//! See README "Kafka" for what was verified where.

mod support;

use leadguard::gen::GenConfig;
use std::time::Duration;
use support::*;

const MINUTES: fn(u64) -> Duration = |m| Duration::from_secs(60 * m);

fn no_id_less(seed: u64, customers: usize, events: usize) -> GenConfig {
    GenConfig {
        seed,
        customers,
        reps: 80,
        events,
        days: 30,
        // Identity links are per partition (README "Kafka"): with several partitions, the
        // reference equals a replay only when every event names its customer id.
        id_less: 0.0,
        ..GenConfig::default()
    }
}

fn all_outputs(broker: &Broker) -> Vec<String> {
    let mut ids = output_ids(broker, "lg.alerts");
    ids.extend(output_ids(broker, "lg.ownership"));
    ids
}

fn output_topics(broker: &Broker, partitions: i32) {
    broker.create_topic("lg.alerts", partitions, false);
    broker.create_topic("lg.ownership", partitions, false);
    broker.create_topic("lg.dead", 1, false);
}

/// The topics of an engine reading `crm.events` in place (keyed by customer): one state
/// partition per input partition, a compacted changelog, and the output topics.
fn in_place_topics(broker: &Broker, partitions: i32, output_partitions: i32) {
    broker.create_topic("crm.events", partitions, false);
    broker.create_topic("lg.changelog", partitions, true);
    output_topics(broker, output_partitions);
}

/// Produces the whole stream to `crm.events` keyed by customer; returns how many messages the
/// broker kept and the reference outputs (a replay of each partition).
fn produce_stream(
    broker: &Broker,
    dir: &std::path::Path,
    stream: &[u8],
    partitions: i32,
) -> (i64, Vec<String>) {
    produce(&producer(broker), "crm.events", &lines(stream), customer_id);
    let total = sum(&ends(broker, "crm.events", partitions));
    let (reference, _) = replay_topic(broker, "crm.events", dir);
    (total, reference)
}

const OUTPUTS: &str = "  alerts: lg.alerts\n  ownership_changes: lg.ownership\n  dead_letters: lg.dead\n  changelog: lg.changelog\n";

/// A stream produced to an input topic that is not keyed by customer goes through the re-key
/// step and gives exactly the outputs and dead letters of `leadguard replay`.
#[test]
fn end_to_end_through_the_repartition_topic_equals_replay() {
    let dir = temp_dir("e2e");
    let cfg = GenConfig {
        malformed: 0.01,
        ..no_id_less(3, 600, 6_000)
    };
    let stream = generate(&dir, &cfg);
    let broker = Broker::start();
    broker.create_topic("crm.events", 1, false);
    broker.create_topic("lg.repartition", 3, false);
    broker.create_topic("lg.changelog", 3, true);
    output_topics(&broker, 3);
    let setup = write_config(
        &dir,
        &broker,
        "e2e",
        &format!("clock: event\nmode: at_least_once\nsnapshot_every: 1500\n{FAST_GROUP}topics:\n  activity: [crm.events]\n  repartition: lg.repartition\n{OUTPUTS}"),
    );
    let producer = producer(&broker);
    produce(&producer, "crm.events", &lines(&stream), |_| None);
    // Dead letters are decided per message, wherever it is read.
    let (_, reference_dead) = replay_topic(&broker, "crm.events", &dir);
    assert!(!reference_dead.is_empty());
    // The HTTP API and metrics run beside the Kafka stages.
    let api = free_address();
    let tokens = dir.join("tokens.yaml");
    std::fs::write(
        &tokens,
        "tokens:\n  - {name: ops, env: LEADGUARD_TEST_ADMIN_TOKEN, admin: true}\n",
    )
    .expect("tokens written");
    // Notifications go to a chat robot standing in for WeCom, once each batch is committed.
    let (chat, chat_requests) = chat_robot();
    let notifications = dir.join("notifications.yaml");
    std::fs::write(
        &notifications,
        format!("channels:\n  - {{name: all, platform: wecom, url: 'http://{chat}/wecom'}}\n"),
    )
    .expect("notifications written");
    let mut engine = Engine::start_with(
        &setup,
        "a",
        &[
            "--listen",
            &api,
            "--api-tokens",
            tokens.to_str().expect("path"),
            "--notifications",
            notifications.to_str().expect("path"),
        ],
    );
    wait_until_processed(&broker, "e2e-router", "crm.events", 1, MINUTES(5));
    engine.assert_running();
    wait_until_processed(&broker, "e2e", "lg.repartition", 3, MINUTES(5));
    check_api_in_kafka_mode(&api, &stream);
    check_notified(&api, &chat_requests);
    engine.stop();

    // The router re-keyed every readable input message once, each customer's into one
    // partition, in input order.
    let input = read_all(&broker, "crm.events");
    let routed = read_all(&broker, "lg.repartition");
    let offset = |r: &Read| -> i64 {
        r.header("leadguard_source_offset")
            .expect("source offset")
            .parse()
            .expect("a number")
    };
    let mut partition_of = std::collections::BTreeMap::new();
    let mut last_offset = std::collections::BTreeMap::new();
    for r in &routed {
        let customer = customer_id(&r.value).expect("routed events name their customer");
        let p = *partition_of.entry(customer.clone()).or_insert(r.partition);
        assert_eq!(p, r.partition, "customer {customer} in one partition");
        let at = offset(r);
        assert_eq!(
            r.value, input[at as usize].value,
            "routed bytes are the input's"
        );
        let previous = last_offset.insert(customer.clone(), at);
        assert!(previous < Some(at), "customer {customer}: input order kept");
    }
    let routed_at: Vec<i64> = routed.iter().map(offset).collect();
    let unique: std::collections::BTreeSet<i64> = routed_at.iter().copied().collect();
    assert_eq!(unique.len(), routed_at.len(), "each message routed once");
    let mut seen = unique;
    seen.extend(read_all(&broker, "lg.dead").iter().map(offset));
    assert_eq!(
        seen.len(),
        input.len(),
        "every input message is routed or a dead letter"
    );
    // Ownership decisions couple the customers of one engine (per-rep limits, rotations), so
    // the reference is a replay of each state partition as its engine read it.
    let (reference, _) = replay_topic(&broker, "lg.repartition", &dir);
    assert!(reference.len() > 100);

    let got = all_outputs(&broker);
    let c = compare(&got, &reference);
    c.assert_complete(&reference, "end to end");
    assert_eq!(c.duplicates, 0, "no crash, no repeated output");

    // `leadguard report --config` reads the output topics and counts what a report over the
    // same outputs in a file counts.
    let mut file = Vec::new();
    for topic in ["lg.alerts", "lg.ownership"] {
        for r in read_all(&broker, topic) {
            file.extend_from_slice(&r.value);
            file.push(b'\n');
        }
    }
    std::fs::write(dir.join("outputs.jsonl"), &file).expect("written");
    let report = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadguard"))
            .arg("report")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("report runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    let from_topics = report(&["--config", setup.config.to_str().expect("path")]);
    let from_file = report(&["--input", "outputs.jsonl"]);
    assert!(from_topics.contains("leadguard report: lg.alerts, lg.ownership"));
    assert_eq!(
        from_topics.replace("lg.alerts, lg.ownership", "outputs.jsonl"),
        from_file
    );
    assert!(from_file.contains("collision"), "{from_file}");

    // Dead letters: the same reasons as the replay's, each with the original bytes and where
    // they were read.
    let dead = read_all(&broker, "lg.dead");
    let mut reasons: Vec<String> = dead
        .iter()
        .map(|d| d.header("leadguard_reason").expect("reason").to_string())
        .collect();
    let mut expected = reference_dead.clone();
    reasons.sort();
    expected.sort();
    assert_eq!(reasons, expected);
    let all = read_all(&broker, "crm.events");
    for d in &dead {
        assert_eq!(d.header("leadguard_source_topic"), Some("crm.events"));
        let offset: usize = d
            .header("leadguard_source_offset")
            .expect("offset")
            .parse()
            .expect("a number");
        assert_eq!(
            d.value, all[offset].value,
            "the original bytes of input offset {offset}"
        );
        assert!(d.header("leadguard_detail").is_some_and(|s| !s.is_empty()));
    }
}

/// A chat robot on loopback that accepts every message as WeCom does; counts the requests.
fn chat_robot() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead as _, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().expect("address").to_string();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let mut reader = std::io::BufReader::new(conn);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let reply = r#"{"errcode":0,"errmsg":"ok"}"#;
            let _ = write!(
                reader.get_mut(),
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    (addr, count)
}

/// The batches' alerts reached the chat robot, each once: none was produced again.
fn check_notified(api: &str, requests: &std::sync::atomic::AtomicUsize) {
    let started = std::time::Instant::now();
    let delivered = "leadguard_notifications_total{outcome=\"delivered\",platform=\"wecom\"}";
    loop {
        let (_, metrics) = http_get(api, "/metrics", None);
        let count = |name: &str| -> u64 {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
                .unwrap_or(0)
        };
        let sent = count(delivered);
        if sent > 0 && sent as usize == requests.load(std::sync::atomic::Ordering::Relaxed) {
            let repeated = count(&delivered.replace("delivered", "repeated"));
            assert_eq!(repeated, 0, "no alert produced twice:\n{metrics}");
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{sent} notifications delivered, {} requests:\n{metrics}",
            requests.load(std::sync::atomic::Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Once every partition is processed: ready, per-partition metrics, and customers found in
/// whichever partition holds them.
fn check_api_in_kafka_mode(api: &str, stream: &[u8]) {
    // Readiness and the partition reports follow the batches; give them a few seconds.
    let started = std::time::Instant::now();
    let metrics = loop {
        let (ready, _) = http_get(api, "/readyz", None);
        let (status, metrics) = http_get(api, "/metrics", None);
        assert_eq!(status, 200);
        if ready == 200
            && (0..3).all(|p| {
                metrics.contains(&format!(
                    "leadguard_partition_state_customers{{partition=\"{p}\"}}"
                ))
            })
        {
            break metrics;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "/readyz {ready}, metrics:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(metrics.contains("leadguard_alerts_total{"), "{metrics}");
    let token = Some(TEST_ADMIN_TOKEN);
    // Customers active at the end of the stream are held (rejected lines aside).
    let all = lines(stream);
    let ids: std::collections::BTreeSet<String> = all[all.len() - 40..]
        .iter()
        .copied()
        .filter_map(customer_id)
        .collect();
    let mut found = 0;
    for id in &ids {
        let (status, body) = http_get(api, &format!("/customers/{id}"), token);
        assert!(
            status == 200 || status == 404,
            "/customers/{id}: {status} {body}"
        );
        if status == 200 {
            assert!(body.contains(&format!("\"{id}\"")), "{body}");
            found += 1;
        }
    }
    assert!(
        found * 10 >= ids.len() * 9,
        "{found} of {} recently active customers found",
        ids.len()
    );
    let (status, _) = http_get(api, "/customers/C-NOBODY", token);
    assert_eq!(status, 404);
}

/// Client settings for tests: a killed member is noticed within seconds, not the default 45 s;
/// a rebalance waits at most 30 s for a member that doesn't rejoin (the rebalance timeout is
/// `max.poll.interval.ms`, 5 minutes by default: as long as a test's whole wait); one record
/// per batch (see `support::TANSU_PRODUCER`).
const FAST_GROUP: &str = "librdkafka:\n  session.timeout.ms: \"6000\"\n  heartbeat.interval.ms: \"1000\"\n  max.poll.interval.ms: \"30000\"\n  batch.num.messages: \"1\"\n";

fn in_place_config(mode: &str, snapshot_every: u64) -> String {
    format!(
        "clock: event\nmode: {mode}\nsnapshot_every: {snapshot_every}\n{FAST_GROUP}topics:\n  activity: [{{name: crm.events, keyed_by_customer: true}}]\n{OUTPUTS}"
    )
}

fn sum(offsets: &[Option<i64>]) -> i64 {
    offsets.iter().map(|o| o.unwrap_or(0)).sum()
}

/// A small deterministic generator for crash points (no extra dependency).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Kills the engine (kill -9) at `crashes` random points of the stream and restarts it each
/// time; the outputs must be the reference's, with repeats (same id) only counted.
fn crash_and_restart(name: &str, mode: &str, events: usize, crashes: usize, seed: u64) {
    let dir = temp_dir(name);
    let stream = generate(&dir, &no_id_less(seed, events / 20, events));
    let broker = Broker::start();
    let partitions = 3;
    in_place_topics(&broker, partitions, partitions);
    let setup = write_config(
        &dir,
        &broker,
        name,
        &in_place_config(mode, (events / 40) as u64),
    );
    let (total, reference) = produce_stream(&broker, &dir, &stream, partitions);
    eprintln!(
        "{name}: the broker kept {total} of the {} messages produced",
        lines(&stream).len()
    );

    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut points: Vec<i64> = (0..crashes)
        .map(|_| total / 20 + rng.below((total * 17 / 20) as u64) as i64)
        .collect();
    points.sort();
    let mut engine = Engine::start(&setup, "a");
    for (i, point) in points.iter().enumerate() {
        wait_for(
            &format!("{point} messages committed before crash {}", i + 1),
            MINUTES(5),
            || {
                engine.assert_running();
                sum(&committed(&broker, name, "crm.events", partitions)) >= *point
            },
        );
        // Anywhere inside the next batch, not only right after a commit.
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        engine.crash();
        engine = Engine::start(&setup, "a");
    }
    wait_until_processed(&broker, name, "crm.events", partitions, MINUTES(10));
    let log = engine.log_text();
    engine.stop();
    let full_log = std::fs::read_to_string(dir.join("a.log")).unwrap_or_default();
    assert!(
        crashes == 0 || full_log.contains("restored (snapshot"),
        "restarts restored a snapshot:\n{log}"
    );

    let got = all_outputs(&broker);
    let c = compare(&got, &reference);
    eprintln!(
        "{name}: {} input events, {crashes} crashes (kill -9 after {points:?} committed), {} outputs \
         ({} distinct, reference {}), {} duplicates by id, {} missing, {} unexpected",
        total,
        got.len(),
        got.len() - c.duplicates,
        reference.len(),
        c.duplicates,
        c.missing.len(),
        c.unexpected.len()
    );
    c.assert_complete(&reference, &format!("after {crashes} crashes"));
}

#[test]
fn crashes_at_five_random_points_lose_nothing() {
    crash_and_restart("crash", "at_least_once", 100_000, 5, 2026);
}

/// tansu 0.6 cannot commit a transaction: exactly-once mode must say so and stop, not spin.
#[test]
fn exactly_once_refuses_a_broker_without_transactions() {
    let name = "eos";
    let dir = temp_dir(name);
    std::fs::write(dir.join("roster.yaml"), "reps: []\n").expect("roster");
    let broker = Broker::start();
    in_place_topics(&broker, 1, 1);
    let setup = write_config(&dir, &broker, name, &in_place_config("exactly_once", 1_000));
    let line = br#"{"event_id":"1","kind":"call","occurred_at":"2026-11-02T09:00:00+08:00","rep":{"id":"r1"},"customer":{"id":"C1"}}"#;
    produce(&producer(&broker), "crm.events", &[&line[..]], customer_id);
    let mut engine = Engine::start(&setup, "a");
    let status = engine.child.wait().expect("exits");
    assert!(!status.success());
    let log = engine.log_text();
    assert!(log.contains("use `mode: at_least_once`"), "{log}");
}

/// Three instances share the group; one is killed mid-stream and the other two take over its
/// partitions, restoring their state from the changelog.
#[test]
fn scale_out_three_instances_one_killed() {
    let name = "scale";
    let dir = temp_dir(name);
    let stream = generate(&dir, &no_id_less(11, 1_500, 30_000));
    let broker = Broker::start();
    let partitions = 6;
    in_place_topics(&broker, partitions, 3);
    let setup = write_config(
        &dir,
        &broker,
        name,
        &in_place_config("at_least_once", 1_000),
    );
    let all = lines(&stream);
    let (first, second) = all.split_at(all.len() / 2);
    let p = producer(&broker);
    produce(&p, "crm.events", first, customer_id);
    let mut engines: Vec<Engine> = ["a", "b", "c"]
        .iter()
        .map(|i| Engine::start(&setup, i))
        .collect();
    wait_until_processed(&broker, name, "crm.events", partitions, MINUTES(5));
    // Every instance got partitions.
    wait_for("all three instances to own partitions", MINUTES(2), || {
        engines
            .iter()
            .all(|e| e.log_text().contains("engine: crm.events["))
    });
    // A quarter of the second half, processed by all three; then the rest, and one instance
    // dies while the rest is being processed.
    let (a, b) = second.split_at(second.len() / 4);
    let base = sum(&committed(&broker, name, "crm.events", partitions));
    produce(&p, "crm.events", a, customer_id);
    wait_for("the first quarter of the second half", MINUTES(5), || {
        sum(&committed(&broker, name, "crm.events", partitions)) >= base + a.len() as i64
    });
    produce(&p, "crm.events", b, customer_id);
    let victim = engines.remove(1);
    victim.crash();
    let (reference, _) = replay_topic(&broker, "crm.events", &dir);
    wait_until_processed(&broker, name, "crm.events", partitions, MINUTES(10));
    for e in &mut engines {
        e.assert_running();
    }
    let taken_over = engines
        .iter()
        .map(|e| e.log_text().matches("restored (").count())
        .sum::<usize>();
    for e in engines {
        e.stop();
    }
    let got = all_outputs(&broker);
    let c = compare(&got, &reference);
    eprintln!(
        "{name}: {} outputs ({} distinct, reference {}), {} duplicates by id after killing one of three instances; {taken_over} partition restores by the survivors",
        got.len(),
        got.len() - c.duplicates,
        reference.len(),
        c.duplicates
    );
    assert!(
        taken_over > partitions as usize / 2,
        "the survivors took partitions over"
    );
    c.assert_complete(&reference, name);
}

/// The broker goes away mid-stream (every connection cut and refused for a while) and comes
/// back: the engine waits, carries on, and loses nothing.
#[test]
fn broker_outage_mid_stream() {
    let name = "outage";
    let dir = temp_dir(name);
    let stream = generate(&dir, &no_id_less(5, 1_000, 20_000));
    let broker = Broker::start_behind_proxy();
    let partitions = 3;
    in_place_topics(&broker, partitions, partitions);
    let setup = write_config(
        &dir,
        &broker,
        name,
        &in_place_config("at_least_once", 1_000),
    );
    let (total, reference) = produce_stream(&broker, &dir, &stream, partitions);
    let mut engine = Engine::start(&setup, "a");
    wait_for("a third of the stream", MINUTES(5), || {
        engine.assert_running();
        sum(&committed(&broker, name, "crm.events", partitions)) >= total / 3
    });
    broker.cut();
    // Long enough for requests to time out and connections to be retried.
    std::thread::sleep(Duration::from_secs(15));
    engine.assert_running();
    broker.restore();
    wait_until_processed(&broker, name, "crm.events", partitions, MINUTES(10));
    engine.assert_running();
    engine.stop();
    let got = all_outputs(&broker);
    let c = compare(&got, &reference);
    eprintln!(
        "{name}: {} outputs ({} distinct, reference {}), {} duplicates by id after a 15 s outage",
        got.len(),
        got.len() - c.duplicates,
        reference.len(),
        c.duplicates
    );
    c.assert_complete(&reference, name);
}

/// With the wall clock, a quiet partition that is caught up follows the wall clock: an event
/// from well before it is then too late. (In event time, the same event is accepted.)
#[test]
fn quiet_partitions_follow_the_wall_clock() {
    let name = "ticks";
    let dir = temp_dir(name);
    std::fs::write(dir.join("roster.yaml"), "reps: []\n").expect("roster");
    let broker = Broker::start();
    in_place_topics(&broker, 1, 1);
    let setup = write_config(
        &dir,
        &broker,
        name,
        &format!("clock: wall\nmode: at_least_once\ntick_interval: 200ms\n{FAST_GROUP}topics:\n  activity: [{{name: crm.events, keyed_by_customer: true}}]\n{OUTPUTS}"),
    );
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let at = |ms: i64| leadguard::time::Timestamp(ms).to_rfc3339_in(chrono_tz::UTC);
    let event = |id: &str, t: i64| {
        format!(
            r#"{{"event_id":"{id}","kind":"call","occurred_at":"{}","rep":{{"id":"r1"}},"customer":{{"id":"C1"}},"source":"cc"}}"#,
            at(t)
        )
    };
    let first = event("a", now_ms - 3_600_000);
    let later = event("b", now_ms - 3_300_000);
    let p = producer(&broker);
    produce(&p, "crm.events", &[first.as_bytes()], customer_id);
    let engine = Engine::start(&setup, "a");
    wait_until_processed(&broker, name, "crm.events", 1, MINUTES(3));
    // The tick is logged in the changelog before its outputs go out.
    wait_for("a tick on the quiet partition", MINUTES(2), || {
        read_all(&broker, "lg.changelog").iter().any(|r| {
            r.key.as_deref() == Some(&b"ticks"[..])
                && serde_json::from_slice::<serde_json::Value>(&r.value)
                    .is_ok_and(|log| log["ticks"].as_array().is_some_and(|t| !t.is_empty()))
        })
    });
    produce(&p, "crm.events", &[later.as_bytes()], customer_id);
    wait_until_processed(&broker, name, "crm.events", 1, MINUTES(3));
    engine.stop();
    let dead = read_all(&broker, "lg.dead");
    assert_eq!(dead.len(), 1, "the later event is refused");
    assert_eq!(dead[0].header("leadguard_reason"), Some("too_late"));
    assert_eq!(dead[0].value, later.as_bytes());
}
