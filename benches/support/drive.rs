//! How the core's benchmark (`benches/throughput.rs`) and its profiler
//! (`examples/profile_core.rs`) drive an engine: the same loop, so that their figures compare.

use leadguard::engine::Engine;
use leadguard::event::Event;

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
