//! Rules hot reload, the edge side: notice a change, read and check the new rules, hand them
//! to the engine's task.
//!
//! A change is noticed two ways: SIGHUP (reload now), and a poll of the rules directory's
//! content every `poll` (no file-watching crate: a hash of the names and bytes of the rules
//! files is cheap at this size and works on every filesystem, bind mounts and ConfigMaps
//! included). A poll reloads only when it has seen the same new content twice in a row, so an
//! editor still writing a file is not read half-way.
//!
//! Reading and checking happen here, off the engines' tasks, and this is where a reload is
//! decided and counted (`leadguard_rule_reloads_total`), once however many engines run. Rules
//! that don't load, or that change a setting needing a restart
//! ([`crate::engine::settings_needing_restart`]), are logged with every problem and counted as
//! failed; no engine sees them and the previous rules keep running. Accepted rules are
//! published on a `watch` channel: every engine task (one in file mode, one per partition in
//! Kafka mode, including partitions assigned later) takes the newest rules between two events
//! (`Engine::replace_rules`) and logs "rules applied". The same content is not tried twice:
//! fix the files (or send SIGHUP) to retry.

use crate::config::Rules;
use crate::engine::{settings_needing_restart, ReloadSummary, RestartNeeded};
use crate::telemetry::Metrics;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch as channel;

/// A hash of the rules files' names and contents, as `Rules::load_dir` would read them (a
/// directory's `*.yaml`/`*.yml` files in name order, or one file).
pub fn content_hash(path: &Path) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut files: Vec<PathBuf> = if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        match std::fs::read_dir(path) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
                .collect(),
            Err(e) => {
                h.update(e.to_string().as_bytes());
                Vec::new()
            }
        }
    };
    files.sort();
    for f in files {
        h.update(f.to_string_lossy().as_bytes());
        h.update(&[0]);
        match std::fs::read(&f) {
            Ok(bytes) => h.update(&bytes),
            Err(e) => h.update(e.to_string().as_bytes()),
        }
        h.update(&[0]);
    }
    h.digest()
}

/// Loads the rules, logging and counting a failure.
fn load(path: &Path, metrics: &Metrics) -> Option<Rules> {
    match Rules::load_dir(path) {
        Ok(rules) => Some(rules),
        Err(errs) => {
            metrics.rule_reload(false);
            let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            tracing::error!(
                rules = %path.display(),
                problems = errs.len(),
                "rules reload failed; the previous rules keep running. Fix these and save again (or send SIGHUP):\n{}",
                lines.join("\n")
            );
            None
        }
    }
}

/// Decides whether `new` may replace `current`, logging and counting the outcome.
fn accept(current: &Rules, new: Rules, path: &Path, metrics: &Metrics) -> Option<Rules> {
    let settings = settings_needing_restart(current, &new);
    if !settings.is_empty() {
        metrics.rule_reload(false);
        tracing::error!(
            rules = %path.display(),
            "rules reload refused: {}",
            RestartNeeded { settings }
        );
        return None;
    }
    metrics.rule_reload(true);
    tracing::info!(
        rules = %path.display(),
        summary = %ReloadSummary::between(current, &new),
        "rules reloaded"
    );
    Some(new)
}

/// Watches `path` (None: the rules are built into the binary, so there is nothing to reload)
/// and publishes every accepted change on `rules`, whose current value is the rules in force.
/// Runs until every receiver of `rules` is gone.
pub async fn watch(
    path: Option<PathBuf>,
    poll: Option<Duration>,
    metrics: Arc<Metrics>,
    rules: channel::Sender<Arc<Rules>>,
) {
    let mut hangup = hangup_signal();
    let mut tick = tokio::time::interval(poll.unwrap_or(Duration::from_secs(3600)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let hash_of = |p: PathBuf| async move {
        tokio::task::spawn_blocking(move || content_hash(&p))
            .await
            .unwrap_or(0)
    };
    let mut tried = match &path {
        Some(p) => hash_of(p.clone()).await,
        None => 0,
    };
    let mut pending: Option<u64> = None;
    if let Some(p) = &path {
        tracing::debug!(
            rules = %p.display(),
            poll = ?poll,
            "watching the rules for changes (SIGHUP reloads at once)"
        );
    }
    loop {
        let forced = tokio::select! {
            _ = rules.closed() => return,
            _ = hangup.recv() => true,
            _ = tick.tick(), if poll.is_some() => false,
        };
        let Some(p) = &path else {
            if forced {
                tracing::warn!("SIGHUP: the rules are built into the binary; start with --rules DIR to reload them");
            }
            continue;
        };
        let now = hash_of(p.clone()).await;
        if !forced {
            if now == tried {
                pending = None;
                continue;
            }
            // Seen once: wait for the next poll to see the same bytes.
            if pending != Some(now) {
                pending = Some(now);
                continue;
            }
        }
        pending = None;
        tried = now;
        tracing::info!(rules = %p.display(), reason = if forced { "SIGHUP" } else { "files changed" }, "reloading rules");
        let loaded = {
            let (p, m) = (p.clone(), metrics.clone());
            tokio::task::spawn_blocking(move || load(&p, &m))
                .await
                .ok()
                .flatten()
        };
        let current = rules.borrow().clone();
        if let Some(new) = loaded.and_then(|new| accept(&current, new, p, &metrics)) {
            rules.send_replace(Arc::new(new));
        }
    }
}

/// SIGHUP as a stream (never fires where there are no Unix signals).
struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = &mut self.signal {
            if s.recv().await.is_some() {
                return;
            }
        }
        std::future::pending::<()>().await
    }
}

fn hangup_signal() -> Hangup {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        Hangup {
            signal: signal(SignalKind::hangup()).ok(),
        }
    }
    #[cfg(not(unix))]
    {
        Hangup {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_follows_names_and_bytes_of_yaml_files_only() {
        let dir = std::env::temp_dir().join(format!("leadguard-hash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.yaml"), "collisions: []\n").unwrap();
        let first = content_hash(&dir);
        std::fs::write(dir.join("notes.txt"), "not rules").unwrap();
        assert_eq!(content_hash(&dir), first, "other files don't count");
        std::fs::write(dir.join("a.yaml"), "collisions: [] \n").unwrap();
        let second = content_hash(&dir);
        assert_ne!(second, first);
        std::fs::rename(dir.join("a.yaml"), dir.join("b.yaml")).unwrap();
        assert_ne!(
            content_hash(&dir),
            second,
            "a rename changes the order rules are read in"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
