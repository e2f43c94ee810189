//! `leadguard report` end to end: the HTML page is opened in a real headless Chromium, and every
//! bar the page draws is checked against counts this file makes itself from the input, with
//! serde_json and nothing from the report module.
//!
//! Chromium is a test requirement (`.ci/run` installs it). When it is missing these tests fail
//! saying so: a skipped browser test would let a broken page through unnoticed.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn leadguard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leadguard"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/report")
        .join(name)
}

#[path = "support/scratch.rs"]
mod scratch;

fn temp_dir(name: &str) -> scratch::Scratch {
    scratch::Scratch::new(&format!("report-{name}"))
}

// ------------------------------------------------------------------ direct counts

/// What the report should say, counted straight from the input.
#[derive(Debug, Default)]
struct Direct {
    /// Chart id → label → value, for every chart of the page.
    charts: BTreeMap<&'static str, BTreeMap<String, u64>>,
    collisions: u64,
    duplicates: u64,
    malformed_lines: Vec<u64>,
    withdrawn_in_input: u64,
}

fn bump(map: &mut BTreeMap<String, u64>, key: impl Into<String>) {
    *map.entry(key.into()).or_insert(0) += 1;
}

/// Whether a parsed line is an output the contract allows (README "Outputs").
fn well_formed(v: &Value) -> bool {
    let str_at = |p: &str| v.pointer(p).and_then(Value::as_str).is_some();
    let time_ok = v["time"]
        .as_str()
        .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok());
    let type_ok = v["type"]
        .as_str()
        .is_some_and(|t| t.starts_with("leadguard."));
    let mut ok = v["id"].as_str().is_some_and(|s| !s.is_empty())
        && type_ok
        && time_ok
        && v["data"].is_object();
    match v["type"].as_str() {
        Some("leadguard.collision.detected") => {
            ok &= str_at("/data/rule")
                && str_at("/data/severity")
                && v["data"]["reps"]
                    .as_array()
                    .is_some_and(|reps| reps.iter().all(|r| r["id"].is_string()));
        }
        Some("leadguard.output.withdrawn") => ok &= str_at("/data/withdrawn_id"),
        _ => {}
    }
    ok
}

fn direct(path: &Path) -> Direct {
    let text = std::fs::read_to_string(path).expect("fixture is UTF-8");
    let mut d = Direct::default();
    let mut seen = HashSet::new();
    let mut outputs: Vec<Value> = Vec::new();
    let mut withdrawn = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = match serde_json::from_str(line) {
            Ok(v) if well_formed(&v) => v,
            _ => {
                d.malformed_lines.push(i as u64 + 1);
                continue;
            }
        };
        if !seen.insert(v["id"].as_str().unwrap().to_string()) {
            d.duplicates += 1;
            continue;
        }
        if v["type"] == "leadguard.output.withdrawn" {
            withdrawn.insert(v["data"]["withdrawn_id"].as_str().unwrap().to_string());
        } else {
            outputs.push(v);
        }
    }
    let team = |r: &Value| r["team"].as_str().unwrap_or("(no team)").to_string();
    let or_unspecified = |v: &Value| v.as_str().unwrap_or("(unspecified)").to_string();
    let mut c: BTreeMap<&'static str, BTreeMap<String, u64>> = BTreeMap::new();
    let mut intruders = BTreeMap::new();
    let mut customer_reps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for v in &outputs {
        if withdrawn.contains(v["id"].as_str().unwrap()) {
            d.withdrawn_in_input += 1;
            continue;
        }
        let data = &v["data"];
        match v["type"].as_str().unwrap() {
            "leadguard.collision.detected" => {
                d.collisions += 1;
                let reps = data["reps"].as_array().unwrap();
                let teams: BTreeSet<String> = reps.iter().map(team).collect();
                for t in teams {
                    bump(c.entry("per-team").or_default(), t);
                }
                let ids: BTreeSet<String> = reps
                    .iter()
                    .map(|r| r["id"].as_str().unwrap().to_string())
                    .collect();
                let ids: Vec<String> = ids.into_iter().collect();
                for a in 0..ids.len() {
                    for b in a + 1..ids.len() {
                        bump(
                            c.entry("per-pair").or_default(),
                            format!("{} + {}", ids[a], ids[b]),
                        );
                    }
                }
                if let Some(i) = data["intruder"]["id"].as_str() {
                    bump(&mut intruders, i);
                }
                let customer = data["customer"]["id"]
                    .as_str()
                    .or(v["subject"].as_str())
                    .unwrap()
                    .to_string();
                customer_reps.entry(customer).or_default().extend(ids);
                let rule = data["rule"].as_str().unwrap();
                let severity = data["severity"].as_str().unwrap();
                bump(
                    c.entry("by-rule").or_default(),
                    format!("{rule} ({severity})"),
                );
                bump(c.entry("by-severity").or_default(), severity);
                bump(
                    c.entry("per-day").or_default(),
                    &v["time"].as_str().unwrap()[..10],
                );
            }
            "leadguard.ownership.released" => {
                bump(
                    c.entry("reclaims-by-reason").or_default(),
                    or_unspecified(&data["reason_code"]),
                );
                bump(
                    c.entry("reclaims-per-team").or_default(),
                    team(&data["rep"]),
                );
            }
            "leadguard.ownership.assigned" => bump(
                c.entry("assignments-by-strategy").or_default(),
                or_unspecified(&data["strategy"]),
            ),
            "leadguard.ownership.reassigned" => bump(
                c.entry("reassignments-by-resolution").or_default(),
                or_unspecified(&data["resolution"]),
            ),
            "leadguard.reassignment.recommended" => bump(
                c.entry("recommendations-by-resolution").or_default(),
                or_unspecified(&data["resolution"]),
            ),
            _ => {}
        }
    }
    c.insert(
        "repeat-offenders",
        intruders.into_iter().filter(|(_, n)| *n >= 2).collect(),
    );
    c.insert(
        "customers-most-reps",
        customer_reps
            .into_iter()
            .map(|(k, reps)| (k, reps.len() as u64))
            .collect(),
    );
    for id in CHARTS {
        c.entry(id).or_default();
    }
    d.charts = c;
    d
}

const CHARTS: [&str; 12] = [
    "per-team",
    "per-pair",
    "repeat-offenders",
    "customers-most-reps",
    "by-rule",
    "by-severity",
    "per-day",
    "reclaims-by-reason",
    "reclaims-per-team",
    "assignments-by-strategy",
    "reassignments-by-resolution",
    "recommendations-by-resolution",
];
/// Charts cut at `--top`.
const RANKED: [&str; 3] = ["per-pair", "repeat-offenders", "customers-most-reps"];

// ------------------------------------------------------------------ the browser

fn chromium() -> PathBuf {
    let path = PathBuf::from("/usr/bin/chromium");
    if path.exists() {
        return path;
    }
    panic!(
        "headless Chromium is needed for the report tests and /usr/bin/chromium is missing: \
         run `.ci/run` (it installs it) or `apt-get install chromium`"
    );
}

/// Runs Chromium on `page` with `args`, standard output to `stdout_to`. A browser that hangs is
/// killed after a generous limit so the suite never hangs; that limit is no assertion on speed.
fn run_chromium(page: &Path, args: &[String], stdout_to: &Path, dir: &Path) {
    let profile = tempdir_in(dir, "profile");
    let stderr_path = dir.join(format!(
        "chromium-stderr-{}.txt",
        stdout_to.file_name().unwrap().to_string_lossy()
    ));
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(stdout_to).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("chromium starts");
    let limit = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting on chromium") {
            break status;
        }
        if Instant::now() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within 180 s; its stderr is in {}",
                stderr_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "chromium failed ({status}): {}",
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );
}

/// A fresh directory, so that no earlier browser profile is reused.
fn tempdir_in(dir: &Path, name: &str) -> PathBuf {
    let mut n = 0;
    loop {
        let p = dir.join(format!("{name}-{n}"));
        if std::fs::create_dir(&p).is_ok() {
            return p;
        }
        n += 1;
    }
}

// ------------------------------------------------------------------ reading the dumped DOM

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The start tags of an HTML text with their attributes, closing tags as `/name`. Script and
/// comment contents are skipped. Enough for Chromium's serialization, which always quotes
/// attribute values with `"`.
fn tags(html: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        if let Some(after) = rest.strip_prefix("!--") {
            rest = after.find("-->").map_or("", |e| &after[e + 3..]);
            continue;
        }
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/' && !rest.starts_with('/'))
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        let mut attrs = BTreeMap::new();
        let mut body = &rest[name_end..];
        loop {
            body = body.trim_start();
            if body.starts_with('>') || body.starts_with("/>") || body.is_empty() {
                break;
            }
            let key_end = body
                .find(|c: char| c == '=' || c.is_whitespace() || c == '>')
                .unwrap_or(body.len());
            let key = body[..key_end].to_string();
            body = &body[key_end..];
            if let Some(v) = body.strip_prefix("=\"") {
                let end = v.find('"').expect("closed attribute value");
                attrs.insert(key, unescape(&v[..end]));
                body = &v[end + 1..];
            } else {
                attrs.insert(key, String::new());
            }
        }
        rest = body;
        if name == "script" {
            rest = rest.find("</script>").map_or("", |e| &rest[e + 9..]);
        }
        out.push((name, attrs));
    }
    out
}

/// Chart id → its bars (label, value) in page order.
type Charts = BTreeMap<String, Vec<(String, u64)>>;

fn charts_in(dom: &str) -> Charts {
    let mut charts = Charts::new();
    let mut current: Option<String> = None;
    for (name, attrs) in tags(dom) {
        match name.as_str() {
            "svg" => {
                if let Some(id) = attrs.get("data-chart") {
                    assert!(
                        charts.insert(id.clone(), Vec::new()).is_none(),
                        "chart {id} drawn twice"
                    );
                    current = Some(id.clone());
                }
            }
            "/svg" => current = None,
            _ => {
                if let (Some(chart), Some(label), Some(value)) =
                    (&current, attrs.get("data-label"), attrs.get("data-value"))
                {
                    let value = value
                        .parse()
                        .unwrap_or_else(|_| panic!("bar {label} of {chart}: value {value}"));
                    charts.get_mut(chart).unwrap().push((label.clone(), value));
                }
            }
        }
    }
    charts
}

// ------------------------------------------------------------------ the checks

/// The page built from `input` and opened in Chromium: (raw HTML, dumped DOM, charts).
fn open_report(input: &Path, name: &str, top: usize) -> (String, String, Charts) {
    let dir = temp_dir(name);
    let page = dir.join("report.html");
    let out = leadguard()
        .args(["report", "--top", &top.to_string(), "--input"])
        .arg(input)
        .arg("--html")
        .arg(&page)
        .output()
        .expect("leadguard runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).expect("page written");

    let dom_path = dir.join("dom.html");
    run_chromium(&page, &["--dump-dom".to_string()], &dom_path, &dir);
    let dom = std::fs::read_to_string(&dom_path).expect("dumped DOM");

    let png = dir.join("report.png");
    run_chromium(
        &page,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,2000".to_string(),
        ],
        &dir.join("screenshot-stdout.txt"),
        &dir,
    );
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
        "screenshot {} is not a PNG with content ({} bytes)",
        png.display(),
        bytes.len()
    );
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 2000), "screenshot size");

    let charts = charts_in(&dom);
    (html, dom, charts)
}

/// Every bar equals the direct count; complete charts show every label; ranked charts show the
/// `top` largest.
fn check_bars(charts: &Charts, direct: &Direct, top: usize, input: &str) {
    for id in CHARTS {
        let bars = charts
            .get(id)
            .unwrap_or_else(|| panic!("{input}: no chart data-chart=\"{id}\" in the page"));
        let expected = &direct.charts[id];
        let labels: BTreeSet<&String> = bars.iter().map(|(l, _)| l).collect();
        assert_eq!(labels.len(), bars.len(), "{input} {id}: a label twice");
        for (label, value) in bars {
            let want = expected.get(label).copied().unwrap_or(0);
            assert_eq!(*value, want, "{input} {id}: bar {label}");
        }
        if RANKED.contains(&id) {
            assert_eq!(
                bars.len(),
                expected.len().min(top),
                "{input} {id}: bar count"
            );
            let smallest = bars.iter().map(|(_, v)| *v).min().unwrap_or(0);
            for (label, value) in expected {
                if !labels.contains(label) {
                    assert!(
                        *value <= smallest,
                        "{input} {id}: {label} ({value}) left out but a bar of {smallest} shown"
                    );
                }
            }
        } else {
            let shown: BTreeMap<String, u64> =
                bars.iter().filter(|(_, v)| *v > 0).cloned().collect();
            assert_eq!(&shown, expected, "{input} {id}");
        }
    }
    // Days: one column for each day from the first to the last collision, gaps at zero.
    let days = &charts["per-day"];
    if let (Some(first), Some(last)) = (
        direct.charts["per-day"].keys().next(),
        direct.charts["per-day"].keys().next_back(),
    ) {
        let parse = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        let span = (parse(last) - parse(first)).num_days() as usize + 1;
        assert_eq!(days.len(), span, "{input}: a column per day");
        assert_eq!(&days[0].0, first);
        assert_eq!(&days[days.len() - 1].0, last);
    }
}

fn self_contained(html: &str) {
    assert!(html.contains("<noscript>"), "a <noscript> note");
    assert!(
        html.contains("<script type=\"application/json\" id=\"report-data\">"),
        "figures embedded as JSON"
    );
    for forbidden in [
        "<script src",
        "<link",
        "<img",
        "<iframe",
        "url(",
        "@import",
        "https://",
    ] {
        assert!(
            !html.contains(forbidden),
            "the page loads nothing from elsewhere, but has `{forbidden}`"
        );
    }
}

#[test]
fn html_report_of_a_generated_stream_draws_the_direct_counts() {
    let input = fixture("generated.jsonl");
    let d = direct(&input);
    assert!(d.collisions >= 20, "the fixture has collisions to chart");
    assert!(
        d.charts["per-pair"].len() > 5,
        "enough pairs to cut at --top 5"
    );
    let (html, dom, charts) = open_report(&input, "generated", 5);
    self_contained(&html);
    // The script ran: the charts exist only in the DOM Chromium built, not in the file.
    assert!(!html.contains("data-chart=\"per-team\""));
    assert!(dom.contains("data-chart=\"per-team\""));
    check_bars(&charts, &d, 5, "generated.jsonl");
}

#[test]
fn html_report_counts_lifecycle_outputs_once_and_leaves_out_withdrawn_ones() {
    let input = fixture("lifecycle.jsonl");
    let d = direct(&input);
    let (html, dom, charts) = open_report(&input, "lifecycle", 20);
    self_contained(&html);
    check_bars(&charts, &d, 20, "lifecycle.jsonl");

    // The fixture's known answers (tests/report/README.md), so that the direct counting above
    // is itself checked.
    assert_eq!(d.collisions, 5);
    assert_eq!(d.duplicates, 2);
    assert_eq!(d.withdrawn_in_input, 3);
    assert_eq!(d.malformed_lines, [7, 22, 23, 28]);
    let bar = |chart: &str, label: &str| {
        charts[chart]
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| *v)
    };
    assert_eq!(bar("repeat-offenders", "r-wang"), Some(2));
    assert_eq!(bar("per-pair", "r-wang + r-zhao"), Some(1));
    assert_eq!(bar("per-pair", "r-li + r-wang"), Some(3));
    assert_eq!(bar("per-team", "(no team)"), Some(1));
    assert_eq!(bar("per-team", "华南二组"), Some(1));
    assert_eq!(bar("per-day", "2026-11-02"), Some(3));
    assert_eq!(bar("per-day", "2026-11-03"), Some(0));
    assert_eq!(bar("reclaims-by-reason", "no_follow_up"), Some(2));
    assert_eq!(bar("reclaims-by-reason", "no_deal"), None);
    assert_eq!(bar("assignments-by-strategy", "round_robin"), Some(1));
    assert_eq!(
        bar("reassignments-by-resolution", "transfer_to_owner"),
        Some(1)
    );
    assert_eq!(bar("recommendations-by-resolution", "keep_owner"), Some(1));
    // The malformed lines are listed with their numbers in the page's table.
    for line in [
        "<td class=\"n\">7</td>",
        "<td class=\"n\">22</td>",
        "<td class=\"n\">28</td>",
    ] {
        assert!(dom.contains(line), "malformed line listed: {line}");
    }
}

/// The text table titled `title`: (label, last column) per row.
fn text_table(text: &str, title: &str) -> BTreeMap<String, u64> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(title)).skip(1);
    let header = lines.next().unwrap_or_else(|| panic!("table {title}"));
    if header.trim() == "(none)" {
        return BTreeMap::new();
    }
    lines
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let (label, count) = l.trim().rsplit_once(' ').expect("label and count");
            (label.trim().to_string(), count.parse().expect("a count"))
        })
        .collect()
}

#[test]
fn text_report_of_a_fresh_gen_replay_stream_read_from_stdin() {
    let dir = temp_dir("fresh");
    let gen = leadguard()
        .args(["gen", "--seed", "11", "--customers", "150", "--reps", "16"])
        .args(["--events", "1500", "--days", "4", "-o"])
        .arg(dir.join("history.jsonl"))
        .arg("--roster-out")
        .arg(dir.join("roster.yaml"))
        .output()
        .expect("gen runs");
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    let replay = leadguard()
        .current_dir(&dir)
        .args([
            "replay",
            "--roster",
            "roster.yaml",
            "--input",
            "history.jsonl",
        ])
        .args(["-o", "outputs.jsonl", "--dead-letters", "dead.jsonl"])
        .output()
        .expect("replay runs");
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let outputs = dir.join("outputs.jsonl");
    let d = direct(&outputs);
    assert!(d.collisions > 0, "the generated history has collisions");

    let out = leadguard()
        .args(["report", "--input", "-"])
        .stdin(std::fs::File::open(&outputs).unwrap())
        .output()
        .expect("report runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("leadguard report: stdin\n"), "{text}");
    assert!(
        text.contains(&format!("\nCollisions: {}\n", d.collisions)),
        "{text}"
    );
    assert_eq!(
        text_table(&text, "Collisions per team"),
        d.charts["per-team"],
        "{text}"
    );
    assert_eq!(
        text_table(&text, "Collisions by severity"),
        d.charts["by-severity"],
        "{text}"
    );
    let days: BTreeMap<String, u64> = text_table(&text, "Collisions per day")
        .into_iter()
        .filter(|(_, v)| *v > 0)
        .collect();
    assert_eq!(days, d.charts["per-day"], "{text}");
}

#[test]
fn a_missing_input_is_a_clear_error() {
    let out = leadguard()
        .args(["report", "--input", "/nonexistent/outputs.jsonl"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open the input /nonexistent/outputs.jsonl"),
        "{err}"
    );
}
