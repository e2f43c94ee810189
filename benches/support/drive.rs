//! How the core's benchmark (`benches/throughput.rs`) and its profiler
//! (`examples/profile_core.rs`) drive an engine: the same stream and the same loop, so that
//! their figures compare.

use leadguard::config::{Roster, Rules};
use leadguard::engine::Engine;
use leadguard::event::Event;
use leadguard::gen::{generate, GenConfig};
use leadguard::ingest::Ingest;
use std::path::Path;
use std::sync::Arc;

/// A generated stream: its JSON lines, its events parsed, and its roster.
pub fn stream(cfg: &GenConfig, rules: &Arc<Rules>) -> (Vec<u8>, Vec<Event>, Roster) {
    let generated = generate(cfg);
    let roster = Roster::parse(&generated.roster_yaml, Path::new("roster.yaml")).expect("roster");
    let mut ingest = Ingest::new(rules.clone());
    let events = generated
        .lines
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| ingest.parse(l, None, "default").ok())
        .collect();
    (generated.lines, events, roster)
}

/// Feeds `events` as a replay drives the core (the next four events' loads started early, the
/// event's own time as the clock unless the clock is later) and renders every output's data and
/// id, as whoever writes them would; returns how many outputs came out.
pub fn feed(engine: &mut Engine, events: &[Event]) -> usize {
    let mut outputs = 0;
    for (i, e) in events.iter().enumerate() {
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
    outputs
}
