//! Rules and roster hot reload end to end: `leadguard run --input -` is fed through a pipe
//! while its rules or its roster are changed under it and SIGHUP is sent. A valid change takes effect for the events after
//! it; an invalid file and a change that needs a restart are refused while the previous rules
//! keep running; and every input line is accounted for (accepted, duplicate or dead letter).
//!
//! The test waits for what the process says (its logs, its API), never for a length of time.

#![cfg(unix)]

#[path = "support/scratch.rs"]
mod scratch;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "reload-test-admin-token-0123";

const BASE_RULES: &str = "settings: {time_zone: Asia/Shanghai, allowed_lateness: 10m}
collisions:
  - {id: contention, type: multi_rep, min_reps: 2, window: 1d, severity: medium, cooldown: 1d}
";

const COMPLAINT_RULE: &str =
    "  - {id: complaint-watch, type: complaint, window: 7d, severity: critical, cooldown: 1h}\n";

/// A failsafe so that a broken build fails instead of hanging; never what a test asserts on.
const FAILSAFE: Duration = Duration::from_secs(120);

struct Running {
    child: Child,
    logs: mpsc::Receiver<String>,
    seen: Vec<String>,
    addr: String,
    dir: PathBuf,
}

impl Running {
    /// Starts `leadguard --log-format json run --input - --rules rules ARGS` in `dir`.
    fn spawn(dir: &Path, args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_leadguard"))
            .current_dir(dir)
            .args([
                "--log-format",
                "json",
                "run",
                "--input",
                "-",
                "--rules",
                "rules",
            ])
            .args(args)
            .env("LG_TEST_ADMIN", ADMIN_TOKEN)
            .env(
                "RUST_LOG",
                "info,leadguard::pipeline=debug,leadguard::rules_watch=debug",
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("leadguard starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, logs) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Running {
            child,
            logs,
            seen: Vec::new(),
            addr: String::new(),
            dir: dir.to_path_buf(),
        }
    }

    /// Starts leadguard with the API on a free port and SIGHUP as the only reload trigger.
    fn start(dir: &Path) -> Running {
        Running::start_with(dir, &[])
    }

    /// As [`Running::start`], with more arguments.
    fn start_with(dir: &Path, more: &[&str]) -> Running {
        std::fs::write(
            dir.join("tokens.yaml"),
            "tokens:\n  - {env: LG_TEST_ADMIN, admin: true}\n",
        )
        .unwrap();
        let mut r = Running::spawn(
            dir,
            &[
                "--rules-poll",
                "0s",
                "--listen",
                "127.0.0.1:0",
                "--api-tokens",
                "tokens.yaml",
                "--output",
                "out.jsonl",
                "--dead-letters",
                "dead.jsonl",
                "--metrics-out",
                "metrics.txt",
            ]
            .into_iter()
            .chain(more.iter().copied())
            .collect::<Vec<_>>(),
        );
        let line = r.wait_log("API listening on http://");
        let at = line.find("http://").unwrap() + "http://".len();
        r.addr = line[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
            .collect();
        r
    }

    /// Waits for a log line containing `needle` (returns it).
    fn wait_log(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + FAILSAFE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.logs.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no log line with `{needle}`; logs so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn sighup(&self) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "SIGHUP sent");
    }

    fn write_rules(&self, text: &str) {
        // Written whole and renamed into place, as a config management tool would.
        let tmp = self.dir.join("rules.yaml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.dir.join("rules/rules.yaml")).unwrap();
    }

    /// GET with the admin token: (status, body).
    fn get(&self, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).expect("API reachable");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        let status = response[9..12].parse().expect("status code");
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// Waits until the engine has processed the event that created `customer` (lines are
    /// processed in order, so everything written before it is processed too).
    fn wait_processed(&self, customer: &str) {
        let deadline = Instant::now() + FAILSAFE;
        while self.get(&format!("/customers/{customer}")).0 != 200 {
            assert!(Instant::now() < deadline, "{customer} never showed up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Writes events with increasing event times: calls over 40 customers by 4 reps, and the
/// occasional extra line given to `extra`.
struct Stream {
    minute: u32,
    lines: u64,
}

impl Stream {
    fn time(&mut self) -> String {
        self.minute += 1;
        let (d, h, m) = (
            2 + self.minute / (24 * 60),
            self.minute / 60 % 24,
            self.minute % 60,
        );
        format!("2026-11-{d:02}T{h:02}:{m:02}:00+08:00")
    }

    fn call_line(&mut self, n: u32) -> String {
        let t = self.time();
        format!(
            r#"{{"event_id":"k{n}","kind":"call","occurred_at":"{t}","rep":{{"id":"r{}","team":"t{}"}},"customer":{{"id":"C{}"}},"source":"cc"}}"#,
            n % 4,
            n % 2,
            n % 40
        )
    }

    fn call(&mut self, out: &mut impl Write, n: u32) {
        let line = self.call_line(n);
        self.raw(out, &line);
    }

    fn complaint(&mut self, out: &mut impl Write, id: &str, customer: &str) {
        let t = self.time();
        let line = format!(
            r#"{{"event_id":"{id}","kind":"complaint","occurred_at":"{t}","rep":{{"id":"r-service"}},"customer":{{"id":"{customer}"}},"source":"cc"}}"#
        );
        self.raw(out, &line);
    }

    fn raw(&mut self, out: &mut impl Write, line: &str) {
        writeln!(out, "{line}").expect("leadguard reads its input");
        self.lines += 1;
    }
}

fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn reloading_valid_and_invalid_rules_while_events_flow_loses_nothing() {
    let dir = scratch::Scratch::new("reload");
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/rules.yaml"), BASE_RULES).unwrap();
    let mut run = Running::start(&dir);
    let mut stdin: ChildStdin = run.child.stdin.take().expect("stdin");
    let mut s = Stream {
        minute: 0,
        lines: 0,
    };

    // Before the change: no complaint rule, so this complaint raises nothing.
    for n in 0..300 {
        s.call(&mut stdin, n);
    }
    s.complaint(&mut stdin, "comp-a", "CA");
    stdin.flush().unwrap();
    run.wait_processed("CA");

    // A valid change, applied while a writer keeps the input flowing. A redelivery and two
    // broken lines ride along: they must be accounted for too.
    let writer = std::thread::spawn(move || {
        for n in 300..3300 {
            if n != 1000 {
                s.call(&mut stdin, n);
            } else {
                // Delivered twice.
                let line = s.call_line(n);
                s.raw(&mut stdin, &line);
                s.raw(&mut stdin, &line);
                s.raw(&mut stdin, r#"{"event_id":"broken","#);
                // A phone sent as a number: a dead letter whose detail quotes it.
                let t = s.time();
                s.raw(
                    &mut stdin,
                    &format!(r#"{{"event_id":"num","kind":"call","occurred_at":"{t}","rep":{{"id":"r1"}},"customer":{{"phone":13800138000}}}}"#),
                );
            }
        }
        stdin.flush().unwrap();
        (stdin, s)
    });
    run.write_rules(&format!("{BASE_RULES}{COMPLAINT_RULE}"));
    run.sighup();
    let reloaded = run.wait_log("rules reloaded");
    assert!(reloaded.contains("added: complaint-watch"), "{reloaded}");
    // The engine takes the new rules between two events; lines written from now on see them.
    run.wait_log("rules applied");
    let (status, scraped) = run.get("/metrics");
    assert_eq!(status, 200);
    assert!(
        scraped.contains("leadguard_rule_reloads_total{outcome=\"ok\"} 1"),
        "{scraped}"
    );
    assert_eq!(run.get("/readyz").0, 200);
    let (mut stdin, mut s) = writer.join().expect("writer");
    s.complaint(&mut stdin, "comp-c", "CC");
    stdin.flush().unwrap();
    run.wait_processed("CC");

    // An invalid file: refused, counted, the rules above keep running.
    run.write_rules("collisions:\n  - {id: broken, type: nonsense}\n");
    run.sighup();
    let failed = run.wait_log("rules reload failed");
    assert!(failed.contains("nonsense"), "{failed}");
    s.complaint(&mut stdin, "comp-d", "CD");
    stdin.flush().unwrap();
    run.wait_processed("CD");

    // A change to a setting that shapes stored state: refused, naming it.
    run.write_rules(&format!(
        "{}{COMPLAINT_RULE}",
        BASE_RULES.replace("Asia/Shanghai", "Europe/Berlin")
    ));
    run.sighup();
    let refused = run.wait_log("rules reload refused");
    assert!(refused.contains("settings.time_zone"), "{refused}");
    assert!(refused.contains("restart"), "{refused}");
    for n in 3300..3400 {
        s.call(&mut stdin, n);
    }
    s.complaint(&mut stdin, "comp-e", "CE");
    drop(stdin);
    let status = run.child.wait().expect("exit");
    assert!(status.success(), "{status}");
    while let Ok(line) = run.logs.recv_timeout(Duration::from_secs(5)) {
        run.seen.push(line);
    }
    let logs = run.seen.join("\n");

    // Every line is accounted for: accepted, duplicate, or dead letter.
    let metrics = std::fs::read_to_string(dir.join("metrics.txt")).expect("metrics");
    let accepted = metric_sum(&metrics, "leadguard_events_total");
    let duplicates = metric_sum(&metrics, "leadguard_duplicate_events_total");
    let refused_lines = metric_sum(&metrics, "leadguard_rejected_events_total");
    assert_eq!(
        (accepted, duplicates, refused_lines),
        ((s.lines - 3) as f64, 1.0, 2.0),
        "{metrics}"
    );
    let dead = std::fs::read_to_string(dir.join("dead.jsonl")).unwrap();
    assert_eq!(dead.lines().count(), 2);
    assert!(
        metrics.contains("leadguard_rule_reloads_total{outcome=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("leadguard_rule_reloads_total{outcome=\"failed\"} 2"));

    // The new rule fired for complaints after it, never for the one before.
    let out = std::fs::read_to_string(dir.join("out.jsonl")).unwrap();
    let mut complaints: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON output"))
        .filter(|v| v["data"]["rule"] == "complaint-watch")
        .map(|v| {
            v["data"]["evidence"][0]["event_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    complaints.sort();
    assert_eq!(complaints, ["comp-c", "comp-d", "comp-e"]);

    // Logs mask the phone the dead letter quotes; the dead-letter file keeps the bytes.
    assert!(
        dead.contains("13800138000"),
        "dead letters keep the original"
    );
    assert!(
        logs.contains("****8000"),
        "the masked phone is logged:\n{logs}"
    );
    assert!(
        !logs.contains("13800138000"),
        "no phone in the logs:\n{logs}"
    );
}

#[test]
fn a_rules_file_change_is_noticed_without_a_signal() {
    let dir = scratch::Scratch::new("poll");
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/rules.yaml"), BASE_RULES).unwrap();
    let mut run = Running::spawn(
        &dir,
        &["--rules-poll", "50ms", "--dead-letters", "dead.jsonl"],
    );
    run.wait_log("watching the rules for changes");
    run.write_rules(&format!("{BASE_RULES}{COMPLAINT_RULE}"));
    let reloaded = run.wait_log("rules reloaded");
    assert!(reloaded.contains("added: complaint-watch"), "{reloaded}");
    run.wait_log("rules applied");
    drop(run.child.stdin.take());
    assert!(run.child.wait().unwrap().success());
}

/// A visit by `rep` to `customer` at 2026-11-02 `at` (HH:MM).
fn visit(id: &str, rep: &str, customer: &str, at: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","kind":"visit","occurred_at":"2026-11-02T{at}:00+08:00","rep":{{"id":"{rep}"}},"customer":{{"id":"{customer}"}},"source":"crm"}}"#
    )
}

#[test]
fn a_reloaded_roster_applies_to_the_events_after_it_and_a_broken_one_is_refused() {
    let dir = scratch::Scratch::new("roster");
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/rules.yaml"), BASE_RULES).unwrap();
    let roster = |text: &str| {
        let tmp = dir.join("roster.yaml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join("roster.yaml")).unwrap();
    };
    roster("reps:\n  - {id: r-a, role: sales}\n  - {id: r-b, role: sales}\n");
    let mut run = Running::start_with(&dir, &["--roster", "roster.yaml"]);
    let mut stdin = run.child.stdin.take().expect("stdin");
    let mut send = move |lines: &[String]| {
        for l in lines {
            writeln!(stdin, "{l}").unwrap();
        }
        stdin.flush().unwrap();
    };
    // The clock starts where the first events agree: a rep of its own works 64 customers
    // first.
    let warm_up: Vec<String> = (0..64)
        .map(|i| {
            format!(
                r#"{{"event_id":"w{i}","kind":"call","occurred_at":"2026-11-02T08:{:02}:{:02}+08:00","rep":{{"id":"r-z"}},"customer":{{"id":"W{i}"}},"source":"crm"}}"#,
                i / 2,
                i % 2 * 30
            )
        })
        .collect();
    send(&warm_up);
    // Two sellers on C1: an alert.
    send(&[
        visit("1", "r-a", "C1", "09:00"),
        visit("2", "r-b", "C1", "09:01"),
    ]);
    run.wait_processed("C1");

    // r-b moves to support, which doesn't sell (an exempt role by default).
    roster("reps:\n  - {id: r-a, role: sales}\n  - {id: r-b, role: support}\n");
    run.sighup();
    let reloaded = run.wait_log("roster reloaded");
    assert!(
        reloaded.contains("2 reps: 0 added, 1 changed, 0 removed"),
        "{reloaded}"
    );
    run.wait_log("roster applied");
    send(&[
        visit("3", "r-a", "C2", "09:02"),
        visit("4", "r-b", "C2", "09:03"),
    ]);
    run.wait_processed("C2");

    // A broken roster: refused and counted; r-b still supports.
    roster("reps:\n  - {id: r-a, role: sales, shoe_size: 42}\n");
    run.sighup();
    let failed = run.wait_log("roster reload failed");
    assert!(failed.contains("shoe_size"), "{failed}");
    send(&[
        visit("5", "r-a", "C3", "09:04"),
        visit("6", "r-b", "C3", "09:05"),
    ]);
    run.wait_processed("C3");
    let (_, scraped) = run.get("/metrics");
    assert!(
        scraped.contains("leadguard_roster_reloads_total{outcome=\"ok\"} 1"),
        "{scraped}"
    );
    assert!(
        scraped.contains("leadguard_roster_reloads_total{outcome=\"failed\"} 1"),
        "{scraped}"
    );
    drop(send);
    assert!(run.child.wait().expect("exit").success());

    let out = std::fs::read_to_string(dir.join("out.jsonl")).unwrap();
    let alerted: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON output"))
        .filter(|v| v["data"]["rule"] == "contention")
        .map(|v| v["subject"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(alerted, ["C1"], "{out}");
}
