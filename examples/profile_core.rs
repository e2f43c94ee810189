//! Feeds the benchmark stream through the core once, for profilers:
//! `cargo build --release --example profile_core && perf record -g target/release/examples/profile_core`.
//! The argument is the number of rounds. `COLLISIONS_ONLY=1`: the shipped collision rules and
//! first-touch claims without the ownership lifecycle (as `throughput/core_collisions`);
//! `NO_RULES=1`: no detection at all (the per-event bookkeeping alone). `CUSTOMERS=N`: the same
//! number of events over N customers instead of 100,000 (less state: how much is cache misses).
//! `WARM=1`: as `throughput/core_warm`, twice the events over twice the days, each round timing
//! only the second half, on the engine the first half left (a running engine's steady state).
//! `SLOWEST=1`: also times each event on its own and reports the five slowest (a stall: the
//! state growing in one step), each with the sizes of the state after it.

#[path = "../benches/support/drive.rs"]
mod drive;

use leadguard::config::Rules;
use leadguard::engine::Engine;
use leadguard::gen::GenConfig;
use std::sync::Arc;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let warm = std::env::var_os("WARM").is_some();
    let mut cfg = if warm {
        GenConfig::benchmark_warm()
    } else {
        GenConfig::benchmark()
    };
    if let Some(n) = std::env::var("CUSTOMERS").ok().and_then(|v| v.parse().ok()) {
        cfg.customers = n;
    }
    let mut rules = Rules::embedded();
    if std::env::var_os("COLLISIONS_ONLY").is_some() {
        rules = Rules::without_lifecycle(rules);
    }
    if std::env::var_os("NO_RULES").is_some() {
        rules.collisions.clear();
        rules.ownership.first_touch = None;
    }
    let rules = Arc::new(rules);
    let (_, events, roster) = drive::stream(&cfg, &rules);
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let (untimed, timed) = events.split_at(if warm { events.len() / 2 } else { 0 });
    let n = timed.len();
    let mut secs = 0.0;
    let mut outputs = 0;
    let mut engine = Engine::new(rules.clone(), &roster);
    for _ in 0..rounds {
        // The previous round's engine is freed before the clock starts, as the criterion
        // bench frees it after its clock stops: a running engine doesn't free its state.
        engine = Engine::new(rules.clone(), &roster);
        drive::feed(&mut engine, untimed);
        let start = std::time::Instant::now();
        outputs = drive::feed(&mut engine, timed);
        secs += start.elapsed().as_secs_f64();
    }
    secs /= rounds as f64;
    if std::env::var_os("SLOWEST").is_some() {
        let mut engine = Engine::new(rules.clone(), &roster);
        drive::feed(&mut engine, untimed);
        // The five slowest, so that one stall (or one preemption of the process) doesn't hide
        // the others; each with the state's sizes after it, to tell growth steps apart.
        let mut worst: Vec<(f64, usize, leadguard::engine::StateSize)> = Vec::new();
        for i in 0..timed.len() {
            let start = std::time::Instant::now();
            drive::feed(&mut engine, &timed[i..=i]);
            let took = start.elapsed().as_secs_f64();
            if worst.len() < 5 || took > worst[worst.len() - 1].0 {
                worst.push((took, i, engine.state_size()));
                worst.sort_by(|a, b| b.0.total_cmp(&a.0));
                worst.truncate(5);
            }
        }
        for (took, at, size) in worst {
            eprintln!("slow event: #{at}, {:.1} ms, after it {size:?}", took * 1e3);
        }
    }
    eprintln!(
        "{n} events, {outputs} outputs in {secs:.2}s: {:.0} events/s; reordered {}; {:?}",
        n as f64 / secs,
        engine.stats().reordered,
        engine.state_size()
    );
}
