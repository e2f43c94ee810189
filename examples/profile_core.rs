//! Feeds the benchmark stream through the core once, for profilers:
//! `cargo build --release --example profile_core && perf record -g target/release/examples/profile_core`.

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
    let cfg = GenConfig {
        seed: 2026,
        customers: 100_000,
        reps: 1_000,
        events: 1_000_000,
        days: 90,
        ..GenConfig::default()
    };
    let generated = generate(&cfg);
    let rules = Arc::new(Rules::embedded());
    let roster = Roster::parse(&generated.roster_yaml, Path::new("roster.yaml")).expect("roster");
    let mut ingest = Ingest::new(rules.clone());
    let events: Vec<Event> = generated
        .lines
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| ingest.parse(l, None, "default").ok())
        .collect();
    let start = std::time::Instant::now();
    let mut engine = Engine::new(rules, &roster);
    let mut outputs = 0;
    let n = events.len();
    for e in events {
        let now = e
            .occurred_at()
            .max(engine.clock().unwrap_or(e.occurred_at()));
        let _ = engine.handle_event(e, now);
        outputs += engine.drain_outputs().count();
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{n} events, {outputs} outputs in {secs:.2}s: {:.0} events/s; reordered {}",
        n as f64 / secs,
        engine.stats().reordered
    );
}
