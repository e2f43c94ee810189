//! Behaviour tests as files: one folder per case under `tests/cases/`.
//!
//! A case folder holds:
//! - `input.jsonl` — the messages, in arrival order (required);
//! - `rules/` — the rules directory for the case (default: the shipped `rules/`);
//! - `roster.yaml` — the roster (optional);
//! - `source.txt` — the name of a `sources:` mapping to read the input with (optional);
//! - `stream-continues` — present: the input is a stream read this far, as `replay
//!   --stream-continues` reads it (decisions waiting for the allowed lateness stay pending);
//! - `reloads/after-<N>/` — `rules/` and/or `roster.yaml` put in force after the first N input
//!   lines, as `leadguard run` puts a reload in force between two messages (optional; several
//!   `after-<N>` folders apply in the order of N). A case with reloads is read message by
//!   message as `leadguard run --input FILE` reads it; the others are replayed;
//! - `clock-starts-at-first-event` — present: the first event starts the event clock and each
//!   message is processed as it comes, instead of the first messages being held until enough
//!   agree where the clock starts ([`Pipeline::wait_for_agreed_start`]). For reloads among the
//!   first messages, which otherwise wait for the held ones;
//! - `expected.jsonl` — the output events, one per line (required; may be empty);
//! - `expected-dead-letters.jsonl` — the refused messages (absent means: none);
//! - `expected-metrics.txt` — lines that must appear in the metrics text (optional);
//! - `README.md` — what the case shows and why the expected outputs are right.
//!
//! Each case is replayed twice: the two runs must be byte-identical, and must match the expected
//! files. On a mismatch the runner prints both paths and a line diff of the pretty-printed JSON.
//! `LEADGUARD_BLESS=1 cargo test --test behaviour` writes the actual outputs as the expected
//! ones: read every changed line before committing it.

use leadguard::config::{Roster, Rules};
use leadguard::pipeline::{self, Pipeline};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Actual {
    outputs: String,
    dead_letters: String,
    metrics: String,
}

/// What a `reloads/after-<N>/` folder puts in force after the first N input lines.
struct Reload {
    after: u64,
    rules: Option<Rules>,
    roster: Option<Roster>,
}

/// The case's reloads, in the order they apply.
fn reloads(dir: &Path) -> Result<Vec<Reload>, String> {
    let Ok(entries) = std::fs::read_dir(dir.join("reloads")) else {
        return Ok(Vec::new());
    };
    let mut reloads = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let after = name
            .strip_prefix("after-")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("{}: name reload folders after-<N>", path.display()))?;
        // Anything else in the folder is a misnamed file that would be ignored silently.
        for inner in std::fs::read_dir(&path).map_err(|e| format!("{}: {e}", path.display()))? {
            let name = inner.map_err(|e| e.to_string())?.file_name();
            if name != "rules" && name != "roster.yaml" {
                return Err(format!(
                    "{}: {} is neither rules/ nor roster.yaml",
                    path.display(),
                    name.to_string_lossy()
                ));
            }
        }
        let rules = path.join("rules");
        let roster = path.join("roster.yaml");
        let reload = Reload {
            after,
            rules: match rules.is_dir() {
                true => Some(
                    Rules::load_dir(&rules).map_err(|e| format!("{}: {e:?}", rules.display()))?,
                ),
                false => None,
            },
            roster: match roster.exists() {
                true => Some(
                    Roster::load(&roster).map_err(|e| format!("{}: {e:?}", roster.display()))?,
                ),
                false => None,
            },
        };
        if reload.rules.is_none() && reload.roster.is_none() {
            return Err(format!(
                "{}: holds neither rules/ nor roster.yaml",
                path.display()
            ));
        }
        reloads.push(reload);
    }
    reloads.sort_by_key(|r| r.after);
    Ok(reloads)
}

fn run_case(dir: &Path) -> Result<Actual, String> {
    let rules_dir = dir.join("rules");
    let rules = if rules_dir.is_dir() {
        Rules::load_dir(&rules_dir)
    } else {
        Rules::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
    }
    .map_err(|e| format!("rules: {e:?}"))?;
    let roster_path = dir.join("roster.yaml");
    let roster = if roster_path.exists() {
        Roster::load(&roster_path).map_err(|e| format!("roster: {e:?}"))?
    } else {
        Roster::default()
    };
    let reloads = reloads(dir)?;
    let source = std::fs::read_to_string(dir.join("source.txt"))
        .ok()
        .map(|s| s.trim().to_string());
    let input = std::fs::read(dir.join("input.jsonl")).map_err(|e| format!("input.jsonl: {e}"))?;
    let mut out = Vec::new();
    let mut dead = Vec::new();
    let mut p = Pipeline::new(
        Arc::new(rules),
        &roster,
        source.as_deref(),
        &mut out,
        &mut dead,
    )?;
    let registry = leadguard::telemetry::Metrics::new();
    p.attach_metrics(registry.clone(), false);
    p.set_stream_continues(dir.join("stream-continues").exists());
    p.wait_for_agreed_start(!dir.join("clock-starts-at-first-event").exists());
    if reloads.is_empty() {
        pipeline::replay(&mut p, &mut input.as_slice(), "input.jsonl")
            .map_err(|e| e.to_string())?;
    } else {
        read_with_reloads(&mut p, &input, reloads).map_err(|e| e.to_string())?;
    }
    registry.report_partition(leadguard::telemetry::FILE_PARTITION, p.report(0));
    let metrics = registry.render();
    drop(p);
    Ok(Actual {
        outputs: String::from_utf8(out).map_err(|e| e.to_string())?,
        dead_letters: String::from_utf8(dead).map_err(|e| e.to_string())?,
        metrics,
    })
}

/// Reads `input` message by message, putting each reload in force after its line, as
/// `leadguard run --input FILE` applies a reload between two messages ([`Pipeline::reload`]).
fn read_with_reloads<O: std::io::Write, D: std::io::Write>(
    p: &mut Pipeline<O, D>,
    mut input: &[u8],
    reloads: Vec<Reload>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut reloads = reloads.into_iter().peekable();
    let mut line = Vec::new();
    let mut n = 0;
    loop {
        while let Some(reload) = reloads.next_if(|r| r.after == n) {
            let reloaded = p.reload(reload.rules.map(Arc::new), reload.roster.as_ref())?;
            if let Some(Err(refused)) = reloaded.rules {
                return Err(format!("the reload after line {n} is refused: {refused}").into());
            }
        }
        let limit = p.engine.rules().settings.max_message_bytes;
        let Some(truncated) = pipeline::read_line_limited(&mut input, &mut line, limit)? else {
            break;
        };
        n += 1;
        let origin = pipeline::Origin {
            input: "input.jsonl",
            line: n,
        };
        p.handle_message(&line, truncated, origin, None)?;
    }
    if let Some(r) = reloads.next() {
        return Err(format!("reloads/after-{}: the input has only {n} lines", r.after).into());
    }
    p.end_of_input()?;
    p.flush()?;
    Ok(())
}

/// Pretty-prints each JSON line so that a diff shows the field that changed.
fn pretty(jsonl: &str) -> String {
    let mut s = String::new();
    for (i, line) in jsonl.lines().enumerate() {
        let _ = writeln!(s, "--- line {}", i + 1);
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) => {
                let _ = writeln!(
                    s,
                    "{}",
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                );
            }
            Err(_) => {
                let _ = writeln!(s, "{line}");
            }
        }
    }
    s
}

fn diff(expected: &str, actual: &str) -> String {
    let d = similar::TextDiff::from_lines(expected, actual);
    d.unified_diff()
        .context_radius(4)
        .header("expected", "actual")
        .to_string()
}

fn compare(case: &Path, file: &str, actual: &str, bless: bool, failures: &mut Vec<String>) {
    let path = case.join(file);
    if bless {
        if actual.is_empty() && file != "expected.jsonl" {
            let _ = std::fs::remove_file(&path);
        } else {
            std::fs::write(&path, actual).expect("write expected file");
        }
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        failures.push(format!(
            "case {}: {} differs from what the engine produced\n  expected file: {}\n{}",
            case.file_name().unwrap_or_default().to_string_lossy(),
            file,
            path.display(),
            diff(&pretty(&expected), &pretty(actual))
        ));
    }
}

#[test]
fn behaviour_cases() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let bless = std::env::var_os("LEADGUARD_BLESS").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/cases exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        !cases.is_empty(),
        "no behaviour cases found in {}",
        root.display()
    );
    let mut failures = Vec::new();
    for case in &cases {
        assert!(
            case.join("expected.jsonl").exists() || bless,
            "case {} has no expected.jsonl",
            case.display()
        );
        let first = match run_case(case) {
            Ok(a) => a,
            Err(e) => {
                failures.push(format!("case {}: {e}", case.display()));
                continue;
            }
        };
        let second = run_case(case).expect("second run");
        if first.outputs != second.outputs || first.dead_letters != second.dead_letters {
            failures.push(format!(
                "case {}: two runs of the same input differ (the core is not deterministic)",
                case.display()
            ));
        }
        compare(case, "expected.jsonl", &first.outputs, bless, &mut failures);
        compare(
            case,
            "expected-dead-letters.jsonl",
            &first.dead_letters,
            bless,
            &mut failures,
        );
        if let Ok(wanted) = std::fs::read_to_string(case.join("expected-metrics.txt")) {
            for line in wanted
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            {
                if !first.metrics.lines().any(|m| m == line) {
                    failures.push(format!(
                        "case {}: metric line `{line}` not found in:\n{}",
                        case.display(),
                        first
                            .metrics
                            .lines()
                            .filter(|m| !m.starts_with('#'))
                            .collect::<Vec<_>>()
                            .join("\n")
                    ));
                }
            }
        }
    }
    println!("{} behaviour cases run", cases.len());
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}
