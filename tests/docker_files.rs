//! The files in `docker/` checked without a Docker engine: every YAML and JSON file parses,
//! every metric the dashboard and the alerting rules query is a metric the code defines (with
//! the labels they use), and the compose file, Dockerfile and configs agree with each other
//! and with the code (paths, build targets, flags, topics, tokens, the load generator's
//! roster).

use leadguard::output::{Output, OutputType};
use leadguard::telemetry::{Metrics, PartitionReport};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn docker() -> PathBuf {
    repo().join("docker")
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn yaml(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut docs = YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not valid YAML: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{}: one YAML document", path.display());
    docs.remove(0)
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not valid JSON: {e}", path.display()))
}

fn strings(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(String::from))
            .collect(),
        Yaml::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

#[test]
fn every_yaml_and_json_file_parses() {
    let mut files = Vec::new();
    files_under(&docker(), &mut files);
    let mut parsed = 0;
    for f in &files {
        match f.extension().and_then(|e| e.to_str()) {
            Some("yml" | "yaml") => {
                yaml(f);
                parsed += 1;
            }
            Some("json") => {
                json(f);
                parsed += 1;
            }
            _ => {}
        }
    }
    assert!(parsed >= 9, "found {parsed} YAML/JSON files in docker/");
}

/// The metric names `src/telemetry.rs` declares as constants.
fn declared_metrics() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("src/telemetry.rs")).expect("src/telemetry.rs");
    text.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("pub const ")?;
            let (_, value) = rest.split_once(": &str = \"")?;
            let name = value.strip_suffix("\";")?;
            name.starts_with("leadguard_").then(|| name.to_string())
        })
        .collect()
}

/// Label names of every metric, from a registry in which every metric has a sample.
fn labels_by_metric() -> BTreeMap<String, BTreeSet<String>> {
    let m = Metrics::new();
    let mut stats = leadguard::engine::Stats::default();
    stats.events.insert(("crm".into(), "assign"), 1);
    stats
        .rejected
        .insert(leadguard::ingest::RejectReason::TooLate, 1);
    stats.claims = 1;
    stats.ownership_changes.insert("first_touch", 1);
    m.report_partition(
        "0",
        PartitionReport {
            stats,
            ..PartitionReport::default()
        },
    );
    let alert = Output::from_rendered(
        OutputType::Collision,
        "C1".into(),
        leadguard::time::Timestamp(0),
        r#"{"intruder":{"id":"r1","team":"east-1"}}"#.to_string(),
        Some(("rule".into(), "high")),
    );
    m.observe_output(&alert, Some(std::time::Instant::now()), true);
    m.rule_reload(true);
    m.api_requests.with_label_values(&["/healthz", "200"]).inc();
    m.notifications
        .with_label_values(&["wecom", "delivered"])
        .inc();
    m.notification_retries.with_label_values(&["wecom"]).inc();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in m.render().lines().filter(|l| !l.starts_with('#')) {
        let (name, labels) = match line.split_once('{') {
            Some((n, rest)) => (n, rest.split_once('}').map_or("", |(l, _)| l)),
            None => (line.split(' ').next().unwrap_or(""), ""),
        };
        let entry = out.entry(name.to_string()).or_default();
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            entry.insert(pair.split('=').next().unwrap().to_string());
        }
    }
    out
}

/// `leadguard_*` names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("leadguard_") {
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..len].to_string());
        rest = &tail[len..];
    }
    names
}

/// Label names an expression uses: `by (...)`, `without (...)` and `{label=...}` matchers.
fn label_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for kw in ["by", "without"] {
        let mut rest = expr;
        while let Some(at) = rest.find(&format!("{kw} (")) {
            let after = &rest[at + kw.len() + 2..];
            let end = after.find(')').expect("closing bracket");
            out.extend(after[..end].split(',').map(|l| l.trim().to_string()));
            rest = &after[end..];
        }
    }
    let mut rest = expr;
    while let Some(at) = rest.find('{') {
        let after = &rest[at + 1..];
        let end = after.find('}').expect("closing brace");
        for m in after[..end].split(',') {
            if let Some(i) = m.find(['=', '!']) {
                out.push(m[..i].trim().to_string());
            }
        }
        rest = &after[end..];
    }
    out.retain(|l| !l.is_empty());
    out
}

/// (where, PromQL expression, legend) of every query in the dashboard and the alerting rules.
fn queries() -> Vec<(String, String, Option<String>)> {
    let mut out = Vec::new();
    let dash = json(&docker().join("grafana/dashboards/leadguard.json"));
    for panel in dash["panels"].as_array().expect("panels") {
        for t in panel["targets"].as_array().expect("targets") {
            out.push((
                format!(
                    "dashboard panel `{}`",
                    panel["title"].as_str().unwrap_or("?")
                ),
                t["expr"].as_str().expect("expr").to_string(),
                t["legendFormat"].as_str().map(String::from),
            ));
        }
    }
    let alerts = yaml(&docker().join("prometheus/alerts.yml"));
    for group in alerts["groups"].as_vec().expect("groups") {
        for rule in group["rules"].as_vec().expect("rules") {
            let name = rule["alert"].as_str().expect("alert name");
            assert!(
                rule["annotations"]["summary"].as_str().is_some(),
                "alert {name} has a summary"
            );
            assert!(
                rule["labels"]["severity"].as_str().is_some(),
                "alert {name}: severity"
            );
            out.push((
                format!("alert {name}"),
                rule["expr"].as_str().expect("expr").to_string(),
                None,
            ));
        }
    }
    out
}

#[test]
fn every_metric_the_dashboard_and_alerts_query_exists_in_the_code() {
    let declared = declared_metrics();
    assert!(
        declared.len() >= 20,
        "constants read from src/telemetry.rs: {declared:?}"
    );
    let labels = labels_by_metric();
    let histograms: BTreeSet<&str> = labels
        .keys()
        .filter_map(|k| k.strip_suffix("_bucket"))
        .collect();
    let queries = queries();
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for (place, expr, legend) in &queries {
        let names = metric_names(expr);
        if names.is_empty() {
            problems.push(format!("{place}: no leadguard metric in `{expr}`"));
        }
        let mut available: BTreeSet<String> = BTreeSet::new();
        for name in &names {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| histograms.contains(b)))
                .unwrap_or(name);
            if !declared.contains(base) {
                problems.push(format!(
                    "{place}: `{name}` is not a metric constant in src/telemetry.rs"
                ));
            }
            used.insert(base.to_string());
            available.extend(labels.get(name.as_str()).cloned().unwrap_or_default());
        }
        let mut wanted = label_names(expr);
        if let Some(legend) = legend {
            let mut rest = legend.as_str();
            while let Some(at) = rest.find("{{") {
                let end = rest[at..].find("}}").expect("closing braces") + at;
                wanted.push(rest[at + 2..end].trim().to_string());
                rest = &rest[end + 2..];
            }
        }
        for l in wanted {
            if !available.contains(&l) {
                problems.push(format!("{place}: label `{l}` is not a label of {names:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The dashboard shows what the operating guide promises.
    for must in [
        "leadguard_alerts_total",
        "leadguard_event_to_output_seconds",
        "leadguard_receipt_to_output_seconds",
        "leadguard_partition_lag_messages",
        "leadguard_partition_state_customers",
        "leadguard_rule_reloads_total",
        "leadguard_rejected_events_total",
    ] {
        assert!(used.contains(must), "{must} is queried somewhere");
    }
}

#[test]
fn the_expression_scanner_finds_names_and_labels() {
    let e = r#"sum by (rule, team) (rate(leadguard_alerts_total{severity="high"}[5m])) / leadguard_x_bucket"#;
    assert_eq!(
        metric_names(e),
        ["leadguard_alerts_total", "leadguard_x_bucket"]
    );
    assert_eq!(label_names(e), ["rule", "team", "severity"]);
}

fn compose() -> Yaml {
    yaml(&docker().join("compose.yml"))
}

fn service<'a>(compose: &'a Yaml, name: &str) -> &'a Yaml {
    let s = &compose["services"][name];
    assert!(!s.is_badvalue(), "compose has a `{name}` service");
    s
}

/// `host:container[:mode]` volume entries of a service, as (host, container).
fn volumes(svc: &Yaml) -> Vec<(String, String)> {
    strings(&svc["volumes"])
        .iter()
        .map(|v| {
            let mut parts = v.split(':');
            (
                parts.next().unwrap().to_string(),
                parts.next().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn dockerfile() -> String {
    std::fs::read_to_string(docker().join("Dockerfile")).expect("docker/Dockerfile")
}

fn dockerfile_stages() -> BTreeSet<String> {
    dockerfile()
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .filter_map(|l| l.split(" AS ").nth(1).map(|s| s.trim().to_string()))
        .collect()
}

#[test]
fn compose_refers_to_files_and_build_targets_that_exist() {
    let c = compose();
    let stages = dockerfile_stages();
    let services = c["services"].as_hash().expect("services");
    for (name, svc) in services {
        let name = name.as_str().unwrap();
        if !svc["build"].is_badvalue() {
            let context = docker().join(svc["build"]["context"].as_str().expect("context"));
            assert!(
                context.is_dir(),
                "{name}: build context {}",
                context.display()
            );
            let file = context.join(svc["build"]["dockerfile"].as_str().expect("dockerfile"));
            assert!(file.is_file(), "{name}: {}", file.display());
            let target = svc["build"]["target"].as_str().expect("target");
            assert!(
                stages.contains(target),
                "{name}: stage {target} in {stages:?}"
            );
        } else {
            assert!(
                svc["image"].as_str().is_some(),
                "{name}: an image or a build"
            );
        }
        for (host, _) in volumes(svc) {
            if host.starts_with('.') {
                assert!(
                    docker().join(&host).exists(),
                    "{name}: volume source {host}"
                );
            }
        }
        for dep in svc["depends_on"]
            .as_hash()
            .map(|h| h.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_else(|| svc["depends_on"].as_vec().cloned().unwrap_or_default())
        {
            let dep = dep.as_str().unwrap();
            assert!(!c["services"][dep].is_badvalue(), "{name} depends on {dep}");
        }
    }
    // The Dockerfile copies only what exists.
    for line in dockerfile().lines().filter(|l| l.starts_with("COPY ")) {
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        if words.iter().any(|w| w.starts_with("--from=")) {
            let from = words
                .iter()
                .find_map(|w| w.strip_prefix("--from="))
                .unwrap();
            assert!(
                stages.contains(from) || from.contains(':'),
                "COPY --from={from}: a stage or a pinned image"
            );
            continue;
        }
        for src in &words[..words.len() - 1] {
            assert!(repo().join(src).exists(), "Dockerfile COPY {src}");
        }
    }
}

/// `--flags` of a leadguard subcommand, from its `--help`.
fn flags_of(subcommand: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_leadguard"))
        .args([subcommand, "--help"])
        .output()
        .expect("leadguard runs");
    let help = String::from_utf8(out.stdout).unwrap();
    flags_in(&[help]).into_iter().collect()
}

fn flags_in(words: &[String]) -> Vec<String> {
    words
        .iter()
        .flat_map(|w| w.split_whitespace())
        .filter(|w| w.starts_with("--"))
        .map(|w| {
            w.trim_end_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .split('=')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn the_commands_compose_runs_exist() {
    let c = compose();
    let leadguard = service(&c, "leadguard");
    let command = strings(&leadguard["command"]);
    assert_eq!(command.first().map(String::as_str), Some("run"));
    let help = flags_of("run");
    for flag in flags_in(&command) {
        assert!(
            help.contains(&flag),
            "leadguard run {flag} (compose) exists"
        );
    }
    // The API listens where Prometheus scrapes.
    let listen = command
        .iter()
        .skip_while(|w| *w != "--listen")
        .nth(1)
        .expect("--listen ADDR");
    let port = listen.rsplit(':').next().unwrap();
    let prom = yaml(&docker().join("prometheus/prometheus.yml"));
    let targets: Vec<String> = prom["scrape_configs"]
        .as_vec()
        .unwrap()
        .iter()
        .flat_map(|s| s["static_configs"].as_vec().cloned().unwrap_or_default())
        .flat_map(|s| strings(&s["targets"]))
        .collect();
    assert!(
        targets.contains(&format!("leadguard:{port}")),
        "Prometheus scrapes leadguard:{port}: {targets:?}"
    );
    // The load generator's `leadguard gen` flags exist.
    let script = std::fs::read_to_string(docker().join("loadgen.sh")).unwrap();
    let gen_line: String = script
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("leadguard gen"))
        .take_while(|l| !l.trim_start().starts_with('|'))
        .collect();
    let gen_help = flags_of("gen");
    let gen_flags = flags_in(&[gen_line]);
    assert!(gen_flags.contains(&"--live".to_string()), "{gen_flags:?}");
    for flag in gen_flags {
        assert!(
            gen_help.contains(&flag),
            "leadguard gen {flag} (loadgen.sh) exists"
        );
    }
}

#[test]
fn configs_mounted_into_containers_are_where_they_are_read() {
    let c = compose();
    let mounted = |svc: &str| -> BTreeSet<String> {
        volumes(service(&c, svc))
            .into_iter()
            .map(|(_, target)| target)
            .collect()
    };
    // leadguard: its config, the files the config names, and the tokens file.
    let lg = mounted("leadguard");
    let command = strings(&service(&c, "leadguard")["command"]);
    for path in command.iter().filter(|w| w.starts_with('/')) {
        assert!(
            lg.contains(path),
            "{path} is mounted into leadguard: {lg:?}"
        );
    }
    let config = kafka_settings();
    for (key, path) in [("rules", &config.rules), ("roster", &config.roster)] {
        let path = path.as_ref().expect(key).to_str().expect("a UTF-8 path");
        assert!(lg.contains(path), "leadguard.yaml {key}: {path} is mounted");
    }
    // Prometheus reads its rule files where they are mounted.
    let prom = yaml(&docker().join("prometheus/prometheus.yml"));
    let p = mounted("prometheus");
    for f in strings(&prom["rule_files"]) {
        assert!(p.contains(&f), "Prometheus rule file {f} is mounted: {p:?}");
    }
    // Grafana: the provider's dashboard folder is mounted, and the dashboard's data source is
    // the provisioned one.
    let g = mounted("grafana");
    let provider = yaml(&docker().join("grafana/provisioning/dashboards/leadguard.yml"));
    let folder = provider["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    assert!(
        g.contains(folder),
        "dashboards folder {folder} mounted: {g:?}"
    );
    let ds = yaml(&docker().join("grafana/provisioning/datasources/prometheus.yml"));
    let uid = ds["datasources"][0]["uid"].as_str().unwrap();
    let dash = json(&docker().join("grafana/dashboards/leadguard.json"));
    for panel in dash["panels"].as_array().unwrap() {
        assert_eq!(panel["datasource"]["uid"], uid, "{}", panel["title"]);
    }
}

/// docker/leadguard.yaml as `leadguard run --config` reads it (no environment, no flags).
fn kafka_settings() -> leadguard::kafka::KafkaSettings {
    leadguard::kafka::KafkaSettings::load(
        &docker().join("leadguard.yaml"),
        &Default::default(),
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("docker/leadguard.yaml: {e:?}"))
}

#[test]
fn topics_tokens_and_roster_agree_with_the_code() {
    let c = compose();
    let config = kafka_settings();
    let t = &config.topics;
    let mut named: BTreeSet<String> = t.inputs().map(|i| i.name.clone()).collect();
    for topic in [&t.alerts, &t.ownership_changes, &t.dead_letters] {
        named.insert(topic.clone());
    }
    named.extend(t.repartition.clone());
    // The init container creates exactly these topics, the changelog compacted...
    let script = strings(&service(&c, "kafka-topics")["command"]).join("\n");
    let lists: Vec<(Vec<String>, bool)> = script
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let list = l
                .trim()
                .strip_prefix("for topic in ")?
                .trim_end_matches("; do");
            let body = script.lines().nth(i + 2).unwrap_or_default();
            Some((
                list.split_whitespace().map(String::from).collect(),
                body.contains("cleanup.policy=compact"),
            ))
        })
        .collect();
    let created: BTreeSet<String> = lists
        .iter()
        .filter(|(_, compact)| !compact)
        .flat_map(|(l, _)| l.clone())
        .collect();
    let compacted: BTreeSet<String> = lists
        .iter()
        .filter(|(_, compact)| *compact)
        .flat_map(|(l, _)| l.clone())
        .collect();
    assert_eq!(created, named, "topics created vs docker/leadguard.yaml");
    assert_eq!(
        compacted,
        BTreeSet::from([t.changelog.clone()]),
        "the changelog, and only it, is compacted"
    );
    // ...and the load generator publishes to two of them.
    let env = &service(&c, "loadgen")["environment"];
    for key in ["ACTIVITY_TOPIC", "OWNERSHIP_TOPIC"] {
        let t = env[key].as_str().expect(key);
        assert!(named.contains(t), "loadgen {key}={t}");
    }
    // The tokens file is valid (any environment token will do here).
    let tokens = leadguard::api::Tokens::load(&docker().join("tokens.yaml"), |_| {
        Some("a-demo-token-long-enough".to_string())
    })
    .unwrap_or_else(|e| panic!("docker/tokens.yaml: {e:?}"));
    assert!(!tokens.is_empty());
    // The roster is the load generator's world.
    let num = |k: &str| -> u64 { env[k].as_str().expect(k).parse().expect(k) };
    let cfg = leadguard::gen::GenConfig {
        seed: num("LOADGEN_SEED"),
        customers: num("LOADGEN_CUSTOMERS") as usize,
        reps: num("LOADGEN_REPS") as usize,
        ..leadguard::gen::GenConfig::default()
    };
    let roster = std::fs::read_to_string(docker().join("roster.yaml")).unwrap();
    assert!(
        roster == leadguard::gen::roster_yaml(&cfg),
        "docker/roster.yaml is stale: leadguard gen --seed {} --customers {} --reps {} --events 1 -o /dev/null --roster-out docker/roster.yaml",
        cfg.seed,
        cfg.customers,
        cfg.reps
    );
    leadguard::config::Roster::load(&docker().join("roster.yaml")).expect("a valid roster");
}
