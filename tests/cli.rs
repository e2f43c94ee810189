//! The command line as a newcomer uses it: the README's first command, `validate`, and a
//! generated history replayed end to end.

use std::path::Path;
use std::process::{Command, Stdio};

fn leadguard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leadguard"))
}

#[path = "support/scratch.rs"]
mod scratch;

fn temp_dir(name: &str) -> scratch::Scratch {
    scratch::Scratch::new(&format!("cli-{name}"))
}

#[test]
fn run_without_arguments_shows_alerts_from_the_bundled_sample() {
    let dir = temp_dir("run");
    let out = leadguard()
        .arg("run")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--dead-letters"])
        .arg(dir.join("dead.jsonl"))
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let alerts = stdout
        .lines()
        .filter(|l| l.contains("\"type\":\"leadguard.collision.detected\""))
        .count();
    assert!(alerts >= 10, "only {alerts} alerts from the sample");
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("each output is JSON");
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["id"].as_str().map(str::len), Some(32));
    }
    // The README shows this summary to a newcomer: it must be what they will see (all but the
    // speed line, which depends on the machine).
    let stderr = String::from_utf8_lossy(&out.stderr);
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let shown: Vec<&str> = readme
        .split("\n```\n")
        .find(|block| block.starts_with("leadguard: no input given"))
        .expect("the README shows the first command's summary")
        .lines()
        .filter(|l| !l.contains(" lines/s over "))
        .collect();
    let seen: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains(" lines/s over "))
        .collect();
    assert_eq!(
        shown, seen,
        "the README's summary of the first command (left) differs from a run's (right)"
    );
    let dead = std::fs::read_to_string(dir.join("dead.jsonl")).expect("dead letters written");
    assert!(
        dead.lines().count() >= 1,
        "the sample has a few broken messages"
    );
}

#[test]
fn validate_reports_every_problem_and_fails() {
    let dir = temp_dir("validate");
    std::fs::write(
        dir.join("a.yaml"),
        "collisions:\n  - id: x\n    type: multi_rep\n    windw: 7d\n    severity: loud\n",
    )
    .unwrap();
    std::fs::write(dir.join("b.yaml"), "settings:\n  time_zone: Mars/Base\n").unwrap();
    let out = leadguard()
        .arg("validate")
        .arg(&dir)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("a.yaml:4:5:"), "{text}");
    assert!(text.contains("a.yaml:5:15:"), "{text}");
    assert!(text.contains("b.yaml:2:14:"), "{text}");
    assert!(text.contains("4 problem(s)"), "{text}");
    let ok = leadguard()
        .arg("validate")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
        .output()
        .expect("runs");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
}

#[test]
fn a_generated_history_replays_deterministically_from_stdin_and_file() {
    let dir = temp_dir("replay");
    let gen = leadguard()
        .args([
            "gen",
            "--seed",
            "3",
            "--customers",
            "400",
            "--reps",
            "30",
            "--events",
            "4000",
            "--malformed",
            "0.01",
        ])
        .arg("--output")
        .arg(dir.join("h.jsonl"))
        .arg("--roster-out")
        .arg(dir.join("roster.yaml"))
        .output()
        .expect("gen runs");
    assert!(gen.status.success());
    let replay = |out: &str, input: &str| {
        let mut cmd = leadguard();
        cmd.arg("replay")
            .arg("--rules")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
            .arg("--roster")
            .arg(dir.join("roster.yaml"))
            .arg("--output")
            .arg(dir.join(out))
            .arg("--dead-letters")
            .arg(dir.join(format!("{out}.dead")))
            .arg("--metrics-out")
            .arg(dir.join(format!("{out}.prom")));
        if input == "-" {
            cmd.args(["--input", "-"]).stdin(Stdio::from(
                std::fs::File::open(dir.join("h.jsonl")).unwrap(),
            ));
        } else {
            cmd.arg("--input").arg(dir.join(input));
        }
        let o = cmd.output().expect("replay runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(dir.join(out)).expect("outputs written")
    };
    let a = replay("a.jsonl", "h.jsonl");
    let b = replay("b.jsonl", "-");
    assert!(!a.is_empty());
    assert_eq!(a, b, "same input, same output bytes");
    let dead = std::fs::read_to_string(dir.join("a.jsonl.dead")).unwrap();
    assert!(
        dead.lines().count() >= 20,
        "malformed lines become dead letters"
    );
    let metrics = std::fs::read_to_string(dir.join("a.jsonl.prom")).unwrap();
    assert!(metrics.contains("leadguard_alerts_total{"), "{metrics}");
}

#[test]
fn a_dash_as_an_output_path_means_standard_output() {
    let dir = temp_dir("dash");
    let gen = leadguard()
        .args(["gen", "--seed", "5", "--customers", "50", "--reps", "8"])
        .args(["--events", "300", "--malformed", "0.05", "-o", "-"])
        .output()
        .expect("gen runs");
    assert!(gen.status.success());
    assert!(
        gen.stdout.len() > 10_000,
        "gen -o - writes the events to stdout"
    );
    std::fs::write(dir.join("h.jsonl"), &gen.stdout).unwrap();
    let replay = |args: &[&str]| {
        leadguard()
            .current_dir(&dir)
            .args(["replay", "--rules"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
            .args(["--input", "h.jsonl"])
            .args(args)
            .output()
            .expect("replay runs")
    };
    let to_file = replay(&["-o", "out.jsonl", "--dead-letters", "dead.jsonl"]);
    assert!(to_file.status.success());
    let outputs = std::fs::read(dir.join("out.jsonl")).unwrap();
    let dead = std::fs::read(dir.join("dead.jsonl")).unwrap();
    assert!(!outputs.is_empty() && !dead.is_empty());

    let o = replay(&["-o", "-", "--dead-letters", "d2.jsonl"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, outputs, "-o - writes the outputs to stdout");
    assert!(String::from_utf8_lossy(&o.stderr).contains("outputs: stdout"));
    let d = replay(&["-o", "o2.jsonl", "--dead-letters", "-"]);
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    assert_eq!(d.stdout, dead, "--dead-letters - writes them to stdout");
    assert!(!dir.join("-").exists(), "no file is named -");

    let both = replay(&["-o", "-", "--dead-letters", "-"]);
    assert!(!both.status.success());
    let err = String::from_utf8_lossy(&both.stderr);
    assert!(err.contains("can't both go to standard output"), "{err}");
    assert!(both.stdout.is_empty(), "nothing is processed");
}

#[test]
fn gen_refuses_out_of_range_values_as_wrong_flags() {
    for (flag, value) in [
        ("--out-of-order", "1.5"),
        ("--duplicates", "2"),
        ("--malformed", "-0.1"),
        ("--customers", "0"),
        ("--reps", "0"),
        ("--days", "0"),
    ] {
        let out = leadguard()
            .args(["gen", "--events", "10", &format!("{flag}={value}")])
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}={value}: {stderr}");
        assert!(stderr.contains(flag), "{flag}={value}: {stderr}");
        assert!(out.stdout.is_empty(), "{flag}={value} wrote events");
    }
    let out = leadguard()
        .args(["gen", "--live", "--rate=0"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_missing_source_mapping_is_refused_before_processing() {
    let dir = temp_dir("source");
    std::fs::write(dir.join("in.jsonl"), "{}\n").unwrap();
    let out = leadguard()
        .args(["replay", "--source", "nope", "--input"])
        .arg(dir.join("in.jsonl"))
        .arg("--rules")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
        .arg("--dead-letters")
        .arg(dir.join("dead.jsonl"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no source named `nope`"), "{err}");
    assert!(
        err.contains("callcenter-cdr"),
        "lists the known sources: {err}"
    );
}

#[test]
fn live_mode_reads_stdin_and_refuses_events_from_the_future() {
    use std::io::Write as _;
    let dir = temp_dir("live");
    let mut child = leadguard()
        .args(["run", "--live", "--input", "-", "--rules"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
        .arg("--dead-letters")
        .arg(dir.join("dead.jsonl"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    // Live mode runs on the wall clock: events must be recent to be on time.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let at = |ms_ago: i64| leadguard::time::Timestamp(now_ms - ms_ago).to_rfc3339_utc();
    let lines = [
        format!(r#"{{"event_id":"a","kind":"call","occurred_at":"{}","rep":{{"id":"r1"}},"customer":{{"id":"C1"}}}}"#, at(120_000)),
        format!(r#"{{"event_id":"b","kind":"call","occurred_at":"{}","rep":{{"id":"r2"}},"customer":{{"id":"C1"}}}}"#, at(60_000)),
        r#"{"event_id":"c","kind":"call","occurred_at":"2099-01-01T00:00:00+08:00","rep":{"id":"r3"},"customer":{"id":"C1"}}"#.to_string(),
        r#"{"event_id":"d","kind":"call","occurred_at":"2026-01-01T00:00:00+08:00","rep":{"id":"r4"},"customer":{"id":"C1"}}"#.to_string(),
    ];
    let mut stdin = child.stdin.take().expect("stdin");
    for l in lines {
        writeln!(stdin, "{l}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().expect("finishes at end of input");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("leadguard.collision.detected"))
            .count(),
        1,
        "{stdout}"
    );
    let dead = std::fs::read_to_string(dir.join("dead.jsonl")).unwrap();
    assert!(dead.contains("\"reason\":\"future_timestamp\""), "{dead}");
    assert!(
        dead.contains("\"reason\":\"too_late\""),
        "an event far behind the wall clock is too late: {dead}"
    );
}

/// `run --notifications` hands the critical alerts of the sample to a WeCom robot (a local HTTP
/// server here), and counts the deliveries in the metrics.
#[test]
fn run_delivers_alerts_to_a_webhook_and_counts_them() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = temp_dir("notify-run");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().unwrap().port();
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).into_owned());
            let answer = br#"{"errcode":0,"errmsg":"ok"}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                answer.len()
            );
            let _ = stream.write_all(answer);
        }
    });
    let config = dir.join("notifications.yaml");
    std::fs::write(
        &config,
        format!(
            "channels:\n  - name: all\n    platform: wecom\n    url: http://127.0.0.1:{port}/hook\n    min_severity: critical\n"
        ),
    )
    .unwrap();
    let metrics = dir.join("metrics.txt");
    let out = leadguard()
        .args(["run", "--output", "/dev/null", "--notifications"])
        .arg(&config)
        .arg("--metrics-out")
        .arg(&metrics)
        .arg("--dead-letters")
        .arg(dir.join("dl.jsonl"))
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bodies = bodies.lock().unwrap().clone();
    assert!(!bodies.is_empty(), "no message reached the webhook");
    for b in &bodies {
        let v: serde_json::Value = serde_json::from_str(b).expect("JSON body");
        assert_eq!(v["msgtype"], "markdown", "{b}");
        assert!(
            v["markdown"]["content"]
                .as_str()
                .unwrap()
                .contains("critical"),
            "{b}"
        );
    }
    let text = std::fs::read_to_string(&metrics).unwrap();
    let delivered = format!(
        "leadguard_notifications_total{{outcome=\"delivered\",platform=\"wecom\"}} {}",
        bodies.len()
    );
    assert!(
        text.lines().any(|l| l == delivered),
        "{delivered} in\n{text}"
    );
}
