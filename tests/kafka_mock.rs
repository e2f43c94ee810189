//! `exactly_once` mode against librdkafka's mock cluster (in this test process, reached by the
//! `leadguard` process over TCP). The mock accepts the whole transactional protocol (init, begin,
//! produce, send offsets, commit) but keeps neither commit markers nor transactional offsets, so
//! these tests check the client side of exactly-once — that leadguard drives transactions without
//! an error, and that a transaction the broker refuses is aborted and redone with nothing lost —
//! not the broker's visibility guarantees (see README "Kafka").

mod support;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, Producer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::collections::BTreeSet;
use std::time::Duration;
use support::*;

const PARTITIONS: i32 = 3;

struct Mock {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl Mock {
    fn start() -> Mock {
        let cluster = MockCluster::new(1).expect("mock cluster");
        for (topic, partitions) in [
            ("crm.events", PARTITIONS),
            ("lg.alerts", PARTITIONS),
            ("lg.ownership", PARTITIONS),
            ("lg.dead", 1),
            ("lg.changelog", PARTITIONS),
        ] {
            cluster
                .create_topic(topic, partitions, 1)
                .expect("topic created");
        }
        Mock { cluster }
    }
}

/// Distinct output ids in the alerts and ownership topics of the mock.
fn output_ids(bootstrap: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for topic in ["lg.alerts", "lg.ownership"] {
        for r in read_all_at(bootstrap, topic) {
            ids.insert(r.header("ce_id").expect("ce_id").to_string());
        }
    }
    ids
}

/// What a run left to look at: leadguard's log and its last metrics scrape.
struct Run {
    log: String,
    metrics: String,
}

/// The value of the sample of `metric` whose labels include every one of `labels`.
fn sample(metrics: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Runs the stream through `exactly_once` mode (metrics on).
fn run_exactly_once(
    name: &str,
    inject: impl FnOnce(&MockCluster<'static, DefaultProducerContext>),
) -> Run {
    let dir = temp_dir(name);
    let stream = generate(
        &dir,
        &leadguard::gen::GenConfig {
            seed: 9,
            customers: 400,
            reps: 40,
            events: 4_000,
            id_less: 0.0,
            ..leadguard::gen::GenConfig::default()
        },
    );
    let mock = Mock::start();
    let bootstrap = mock.cluster.bootstrap_servers();
    let p = producer_at(&bootstrap);
    produce(&p, "crm.events", &lines(&stream), customer_id);
    p.flush(Duration::from_secs(10)).expect("flushed");
    let (reference, _) = replay_topic_at(&bootstrap, "crm.events", &dir);
    let reference: BTreeSet<String> = reference.into_iter().collect();
    assert!(reference.len() > 100);

    let config = dir.join("eos.yaml");
    std::fs::write(
        &config,
        format!(
            "brokers: {bootstrap}\ngroup_id: {name}\nrules: {}\nroster: roster.yaml\nmode: exactly_once\nclock: event\nsnapshot_every: 500\n\
             topics:\n  activity: [{{name: crm.events, keyed_by_customer: true}}]\n  alerts: lg.alerts\n  ownership_changes: lg.ownership\n  dead_letters: lg.dead\n  changelog: lg.changelog\n",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules").display()
        ),
    )
    .expect("config");
    inject(&mock.cluster);
    let api = free_address();
    let mut engine = Engine::start_with(
        &Setup {
            dir: dir.to_path_buf(),
            config,
            group: name.to_string(),
        },
        "a",
        &["--listen", &api],
    );
    wait_for("every reference output", Duration::from_secs(300), || {
        engine.assert_running();
        output_ids(&bootstrap).is_superset(&reference)
    });
    let (status, metrics) = http_get(&api, "/metrics", None);
    assert_eq!(status, 200, "{metrics}");
    let log_file = engine.log.clone();
    engine.stop();
    let got = output_ids(&bootstrap);
    let unexpected: Vec<&String> = got.difference(&reference).collect();
    assert!(
        unexpected.is_empty(),
        "{} unexpected outputs",
        unexpected.len()
    );
    let log = std::fs::read_to_string(log_file).expect("log");
    assert!(log.contains("engine: stopped; 3 partitions"), "{log}");
    Run { log, metrics }
}

/// Transactions begin, carry outputs, snapshots and offsets, and commit without an error.
#[test]
fn exactly_once_drives_transactions_cleanly() {
    let Run { log, metrics } = run_exactly_once("eos-clean", |_| {});
    assert!(!log.contains("aborted"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
    for cause in ["commit_failed", "restore_failed", "partitions_lost"] {
        let restarts = sample(
            &metrics,
            "leadguard_stage_restarts_total",
            &["stage=\"engine\"", &format!("cause=\"{cause}\"")],
        );
        assert_eq!(restarts, Some(0.0), "{cause}:\n{metrics}");
    }
}

/// The broker refuses some writes: the transaction is aborted, every partition restarts from
/// what was committed, and the outputs are all there.
#[test]
fn exactly_once_aborts_and_redoes_a_refused_transaction() {
    let Run { log, metrics } = run_exactly_once("eos-abort", |cluster| {
        cluster.request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_RECORD; 3],
        );
    });
    assert!(log.contains("batch aborted"), "{log}");
    assert!(log.contains("restarted"), "{log}");
    // The on-call engineer sees it without reading the log.
    let restarts = sample(
        &metrics,
        "leadguard_stage_restarts_total",
        &["stage=\"engine\"", "cause=\"commit_failed\""],
    );
    assert!(restarts.is_some_and(|n| n >= 1.0), "{metrics}");
}
