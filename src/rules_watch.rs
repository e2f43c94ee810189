//! Rules and roster hot reload, the edge side: notice a change, read and check the new rules
//! or roster, hand them to the engines' tasks. The two are watched apart, the same way.
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

use crate::config::{Roster, Rules};
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

/// Something the watcher reloads: the rules or the roster.
trait Watched: Sized + Send + Sync + 'static {
    /// What it is, for logs ("rules", "roster").
    const WHAT: &'static str;
    /// A hash of what [`Watched::load`] would read at `path`.
    fn hash(path: &Path) -> u64;
    /// Reads and checks it: every problem, one per line, when it doesn't load.
    fn load(path: &Path) -> Result<Self, Vec<String>>;
    /// Whether `new` may replace `current`: a summary of the change to log, or why not.
    fn accept(current: &Self, new: &Self) -> Result<String, String>;
    /// Counts a reload by outcome.
    fn count(metrics: &Metrics, ok: bool);
}

impl Watched for Rules {
    const WHAT: &'static str = "rules";
    fn hash(path: &Path) -> u64 {
        content_hash(path)
    }
    fn load(path: &Path) -> Result<Rules, Vec<String>> {
        Rules::load_dir(path).map_err(|errs| errs.iter().map(|e| e.to_string()).collect())
    }
    fn accept(current: &Rules, new: &Rules) -> Result<String, String> {
        let settings = settings_needing_restart(current, new);
        if !settings.is_empty() {
            return Err(RestartNeeded { settings }.to_string());
        }
        Ok(ReloadSummary::between(current, new).to_string())
    }
    fn count(metrics: &Metrics, ok: bool) {
        metrics.rule_reload(ok);
    }
}

impl Watched for Roster {
    const WHAT: &'static str = "roster";
    fn hash(path: &Path) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        match std::fs::read(path) {
            Ok(bytes) => h.update(&bytes),
            Err(e) => h.update(e.to_string().as_bytes()),
        }
        h.digest()
    }
    fn load(path: &Path) -> Result<Roster, Vec<String>> {
        Roster::load(path).map_err(|errs| errs.iter().map(|e| e.to_string()).collect())
    }
    fn accept(current: &Roster, new: &Roster) -> Result<String, String> {
        Ok(roster_summary(current, new))
    }
    fn count(metrics: &Metrics, ok: bool) {
        metrics.roster_reload(ok);
    }
}

/// Reps listed now and not before, listed before and not now, and listed in both with other
/// fields, by id.
pub fn roster_summary(current: &Roster, new: &Roster) -> String {
    let before: std::collections::HashMap<&str, &crate::config::RosterRep> =
        current.reps.iter().map(|r| (r.id.as_str(), r)).collect();
    let after: std::collections::HashSet<&str> = new.reps.iter().map(|r| r.id.as_str()).collect();
    let (mut added, mut changed) = (0, 0);
    for r in &new.reps {
        match before.get(r.id.as_str()) {
            None => added += 1,
            Some(old) if *old != r => changed += 1,
            Some(_) => {}
        }
    }
    let removed = current
        .reps
        .iter()
        .filter(|r| !after.contains(r.id.as_str()))
        .count();
    format!(
        "{} reps: {added} added, {changed} changed, {removed} removed",
        new.reps.len()
    )
}

/// Loads what `path` holds, logging and counting a failure.
fn load<T: Watched>(path: &Path, metrics: &Metrics) -> Option<T> {
    match T::load(path) {
        Ok(loaded) => Some(loaded),
        Err(problems) => {
            T::count(metrics, false);
            tracing::error!(
                path = %path.display(),
                problems = problems.len(),
                "{what} reload failed; keeping the previous {what}. Fix these and save again (or send SIGHUP):\n{}",
                problems.join("\n"),
                what = T::WHAT,
            );
            None
        }
    }
}

/// Decides whether `new` may replace `current`, logging and counting the outcome.
fn accept<T: Watched>(current: &T, new: T, path: &Path, metrics: &Metrics) -> Option<T> {
    match T::accept(current, &new) {
        Err(why) => {
            T::count(metrics, false);
            tracing::error!(path = %path.display(), "{} reload refused: {why}", T::WHAT);
            None
        }
        Ok(summary) => {
            T::count(metrics, true);
            tracing::info!(path = %path.display(), summary = %summary, "{} reloaded", T::WHAT);
            Some(new)
        }
    }
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
    follow(path, poll, metrics, rules).await
}

/// Watches the roster file at `path` as [`watch`] watches the rules, and publishes every
/// roster that loads on `roster`. Without a roster file there is nothing to watch: start
/// with `--roster FILE` to reload one.
pub async fn watch_roster(
    path: PathBuf,
    poll: Option<Duration>,
    metrics: Arc<Metrics>,
    roster: channel::Sender<Arc<Roster>>,
) {
    follow(Some(path), poll, metrics, roster).await
}

async fn follow<T: Watched>(
    path: Option<PathBuf>,
    poll: Option<Duration>,
    metrics: Arc<Metrics>,
    current: channel::Sender<Arc<T>>,
) {
    let mut hangup = hangup_signal();
    let mut tick = tokio::time::interval(poll.unwrap_or(Duration::from_secs(3600)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let hash_of = |p: PathBuf| async move {
        tokio::task::spawn_blocking(move || T::hash(&p))
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
            path = %p.display(),
            poll = ?poll,
            "watching the {} for changes (SIGHUP reloads at once)",
            T::WHAT
        );
    }
    loop {
        let forced = tokio::select! {
            _ = current.closed() => return,
            _ = hangup.recv() => true,
            _ = tick.tick(), if poll.is_some() => false,
        };
        let Some(p) = &path else {
            if forced {
                tracing::warn!("SIGHUP: the {} are built into the binary; start with --rules DIR to reload them", T::WHAT);
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
        tracing::info!(path = %p.display(), reason = if forced { "SIGHUP" } else { "files changed" }, "reloading the {}", T::WHAT);
        let loaded = {
            let (p, m) = (p.clone(), metrics.clone());
            tokio::task::spawn_blocking(move || load::<T>(&p, &m))
                .await
                .ok()
                .flatten()
        };
        let before = current.borrow().clone();
        if let Some(new) = loaded.and_then(|new| accept(&*before, new, p, &metrics)) {
            current.send_replace(Arc::new(new));
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
