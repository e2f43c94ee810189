//! Throughput of the core and of `replay`, on a generated stream of 1,000,000 events over
//! 100,000 customers and 1,000 reps (90 days, 2% late deliveries, 1% redeliveries).
//!
//! Run: `cargo bench --bench throughput`. Figures, machine and date are kept in
//! `benches/RESULTS.md`; re-measure and update it when the core changes.
//!
//! - `core`: parsed events in, outputs out (`Engine::handle_event` + `drain_outputs`, each
//!   output's data and id rendered), one core, with the shipped rules (every ownership-lifecycle
//!   family on). Each iteration starts with an empty engine; freeing the engine and the parsed
//!   events afterwards is not timed (about 0.07 s, 5% of an iteration: a running engine does
//!   neither per event).
//! - `core_collisions`: the same with collision detection only (the shipped collision rules,
//!   identity, exemptions and first-touch claims; no pools, SLAs, extension or reclaims).
//! - `core_warm`: the core of a running engine. The stream has twice the events over twice the
//!   days (`GenConfig::benchmark_warm`); each iteration feeds the first half untimed and times
//!   the second, on an engine that already holds its customers, owners and memory, as a
//!   service does after its first days (the second half adds about 12% more customers). Each
//!   iteration after a process's first still faults ~20,000 freed pages back in (RESULTS.md).
//! - `replay`: JSON lines in, CloudEvents JSON lines out (`pipeline::replay` into a sink).
//! - After the timings, a memory report: live heap per tracked customer, measured with a
//!   counting allocator around one full run of the core.

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
#[path = "support/drive.rs"]
mod drive;

use leadguard::config::{Roster, Rules};
use leadguard::engine::Engine;
use leadguard::event::Event;
use leadguard::gen::GenConfig;
use leadguard::pipeline::{self, Pipeline};
use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counts live heap bytes for the memory report, and only then: the timed runs allocate through
/// mimalloc alone, as the binary does (a replay allocates on two threads, and one shared counter
/// bounced between the cores cost it about 15%). Counting starts before the report's run, which
/// frees nothing allocated earlier, so the difference it reports is exact.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

fn count(bytes: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE.fetch_add(bytes, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size() as isize);
        unsafe { MiMalloc.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        count(-(l.size() as isize));
        unsafe { MiMalloc.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count(n as isize - l.size() as isize);
        unsafe { MiMalloc.realloc(p, l, n) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

struct Fixture {
    rules: Arc<Rules>,
    collisions: Arc<Rules>,
    roster: Roster,
    lines: Vec<u8>,
    events: Vec<Event>,
}

fn fixture() -> Fixture {
    let rules = Arc::new(Rules::embedded());
    let collisions = Arc::new(Rules::without_lifecycle(Rules::embedded()));
    let (lines, events, roster) = drive::stream(&GenConfig::benchmark(), &rules);
    Fixture {
        rules,
        collisions,
        roster,
        lines,
        events,
    }
}

/// The outputs' count, the engine and the events: returned, so that a timed caller frees them
/// after its clock stops.
fn run_core(f: &Fixture, rules: &Arc<Rules>, events: Vec<Event>) -> (usize, Engine, Vec<Event>) {
    let mut engine = Engine::new(rules.clone(), &f.roster);
    let outputs = drive::feed(&mut engine, &events);
    (outputs, engine, events)
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    let n = f.events.len() as u64;
    let mut group = c.benchmark_group("throughput");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n));
    group.bench_function("core", |b| {
        b.iter_batched(
            || f.events.clone(),
            // Criterion drops what the routine returns after the measurement.
            |events| run_core(&f, &f.rules, events),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("core_collisions", |b| {
        b.iter_batched(
            || f.events.clone(),
            |events| run_core(&f, &f.collisions, events),
            BatchSize::PerIteration,
        )
    });
    {
        let (_, events, roster) = drive::stream(&GenConfig::benchmark_warm(), &f.rules);
        let (warm_up, timed) = events.split_at(events.len() / 2);
        group.throughput(Throughput::Elements(timed.len() as u64));
        group.bench_function("core_warm", |b| {
            b.iter_custom(|iters| {
                let mut took = Duration::ZERO;
                for _ in 0..iters {
                    let mut engine = Engine::new(f.rules.clone(), &roster);
                    drive::feed(&mut engine, warm_up);
                    let start = Instant::now();
                    std::hint::black_box(drive::feed(&mut engine, timed));
                    took += start.elapsed();
                }
                took
            })
        });
    }
    let lines = f.lines.len();
    group.throughput(Throughput::Elements(
        f.lines.iter().filter(|&&b| b == b'\n').count() as u64,
    ));
    group.bench_function("replay", |b| {
        b.iter(|| {
            let mut p = Pipeline::new(
                f.rules.clone(),
                &f.roster,
                None,
                std::io::sink(),
                std::io::sink(),
            )
            .expect("pipeline");
            pipeline::replay(&mut p, &mut f.lines.as_slice(), "bench").expect("replay");
            p.counts.outputs
        })
    });
    group.finish();

    // Memory report: live heap held by the engine after the whole stream.
    COUNTING.store(true, Ordering::Relaxed);
    let before = LIVE.load(Ordering::Relaxed);
    let events = f.events.clone();
    let (outputs, engine, events) = run_core(&f, &f.rules, events);
    drop(events);
    let held = LIVE.load(Ordering::Relaxed) - before;
    let size = engine.state_size();
    let stats = engine.stats();
    println!(
        "stream: {} events ({} bytes of JSON lines), {} outputs, {} alerts",
        n,
        lines,
        outputs,
        stats.alerts_total()
    );
    println!(
        "memory: {} bytes live in the engine after the stream; {} customers tracked ({} owned, {} evicted), {} window entries, {} identifiers: {:.0} bytes per tracked customer",
        held,
        size.customers,
        size.owned,
        stats.customers_evicted,
        size.log_entries,
        size.identifiers,
        held as f64 / size.customers.max(1) as f64
    );
    drop(engine);
}

criterion_group!(throughput, benches);

fn main() {
    throughput();
    Criterion::default().configure_from_args().final_summary();
}
