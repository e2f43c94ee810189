//! Feeds the benchmark stream through the core once, for profilers:
//! `cargo build --release --example profile_core && perf record -g target/release/examples/profile_core`.
//! The argument is the number of rounds. `COLLISIONS_ONLY=1`: the shipped collision rules and
//! first-touch claims without the ownership lifecycle (as `throughput/core_collisions`);
//! `NO_RULES=1`: no detection at all (the per-event bookkeeping alone). `CUSTOMERS=N`: the same
//! number of events over N customers instead of 100,000 (less state: how much is cache misses).

use leadguard::config::{Roster, Rules};
use leadguard::engine::Engine;
use leadguard::event::Event;
use leadguard::gen::{generate, GenConfig};
use leadguard::ingest::Ingest;
use std::path::Path;
use std::sync::Arc;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut cfg = GenConfig::benchmark();
    if let Some(n) = std::env::var("CUSTOMERS").ok().and_then(|v| v.parse().ok()) {
        cfg.customers = n;
    }
    let generated = generate(&cfg);
    let mut rules = Rules::embedded();
    if std::env::var_os("COLLISIONS_ONLY").is_some() {
        rules = Rules::without_lifecycle(rules);
    }
    if std::env::var_os("NO_RULES").is_some() {
        rules.collisions.clear();
        rules.ownership.first_touch = None;
    }
    let rules = Arc::new(rules);
    let roster = Roster::parse(&generated.roster_yaml, Path::new("roster.yaml")).expect("roster");
    let mut ingest = Ingest::new(rules.clone());
    let events: Vec<Event> = generated
        .lines
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| ingest.parse(l, None, "default").ok())
        .collect();
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let n = events.len();
    let mut secs = 0.0;
    let mut outputs = 0;
    let mut engine = Engine::new(rules.clone(), &roster);
    for _ in 0..rounds {
        // The previous round's engine is freed before the clock starts, as the criterion
        // bench frees it after its clock stops: a running engine doesn't free its state.
        engine = Engine::new(rules.clone(), &roster);
        let start = std::time::Instant::now();
        outputs = 0;
        for (i, e) in events.iter().enumerate() {
            // As a replay drives it.
            engine.prefetch([1, 2, 3, 4].map(|d| events.get(i + d)));
            let now = e
                .occurred_at()
                .max(engine.clock().unwrap_or(e.occurred_at()));
            let _ = engine.handle_event(e, now);
            // Rendered here: the core defers some outputs' data to whoever writes them.
            outputs += engine
                .drain_outputs()
                .filter(|o| !o.id().is_empty())
                .count();
        }
        secs += start.elapsed().as_secs_f64();
    }
    secs /= rounds as f64;
    eprintln!(
        "{n} events, {outputs} outputs in {secs:.2}s: {:.0} events/s; reordered {}; {:?}",
        n as f64 / secs,
        engine.stats().reordered,
        engine.state_size()
    );
}
