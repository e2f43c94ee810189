//! Where an event-time clock starts.
//!
//! When event time drives the clock (a replay, a file, a Kafka partition with no saved state on
//! the event clock, or on the wall clock when its first message has no timestamp), the first
//! event would otherwise set it alone. A first event with a
//! mistyped year then decides everything: ten years ahead, every later event is too late; ten
//! years behind, every later event is a jump further than `settings.max_clock_jump` and is
//! refused. Nothing after it would be placed.
//!
//! So the clock starts where the stream's first events agree: at the time of the first of them
//! (in arrival order) that lies within `max_clock_jump` of their median. Events before that one
//! disagree with most of the others; placed after the clock has started, they meet the usual
//! checks: refused (`future_timestamp` ahead, `too_late` behind) with the bytes kept in the
//! dead letters, except an ownership event behind, applied at the watermark as every late one
//! is. A stream whose first event agrees with the others starts exactly as before.
//!
//! The drivers hold the messages and their bytes (`pipeline` for files, `kafka::task` for a
//! partition, which commits no offset past them); this module only says where to start.

use crate::ingest::{RejectReason, Rejection};
use crate::time::{Span, Timestamp};

/// How many events a driver reads before it starts the clock, when it can wait for them.
/// An outlier must be outnumbered among them: more would only delay a stream's first outputs.
pub const START_EVENTS: usize = 64;

/// A driver holding messages for the clock's start starts it sooner when it holds this many
/// messages, or this many bytes of them, whatever they are: a stream that opens with a long
/// run of unreadable or oversized messages is not held in memory until 64 events come.
const HOLD_MESSAGES: usize = 1024;
const HOLD_BYTES: usize = 16 << 20;

/// Whether a driver that holds `events` events among `messages` messages of `bytes` bytes in
/// all should start the clock now.
pub fn start_now(events: usize, messages: usize, bytes: usize) -> bool {
    events >= START_EVENTS || messages >= HOLD_MESSAGES || bytes >= HOLD_BYTES
}

/// The time the clock starts at, given the times of a stream's first events in arrival order:
/// the first that lies within `jump` of their median (the lower one for an even count, so that
/// of two events that disagree, the earlier is believed: the later is then refused as a jump,
/// not every event after it as too late). `None` for no events.
pub fn agreed_start(times: &[Timestamp], jump: Span) -> Option<Timestamp> {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let median = *sorted.get(sorted.len().checked_sub(1)? / 2)?;
    times
        .iter()
        .copied()
        .find(|&t| (t - median).0.abs() <= jump.0)
}

/// Where the clock started, from its start until the first held event is placed. The events
/// held before that one are compared with the start, a time that comes after them in the
/// stream; their refusals say so, where the detail would otherwise speak of the newest event
/// time as if one had been placed.
#[derive(Debug, Default, Clone, Copy)]
pub struct StartNote(Option<Timestamp>);

impl StartNote {
    /// `start`: what [`crate::engine::Engine::start_clock_where_agreed`] returned.
    pub fn started(start: Option<Timestamp>) -> StartNote {
        StartNote(start)
    }

    /// What placing an event came to: a refusal before the first placed event gets the note.
    pub fn after(&mut self, placed: Result<(), Rejection>, tz: chrono_tz::Tz) -> Option<Rejection> {
        let mut rejection = match placed {
            Ok(()) => {
                self.0 = None;
                return None;
            }
            Err(r) => r,
        };
        if let Some(start) = self.0.filter(|_| {
            matches!(
                rejection.reason,
                RejectReason::FutureTimestamp | RejectReason::TooLate
            )
        }) {
            rejection.detail.push_str(&format!(
                " (the clock started at {}, where the stream's first events agree)",
                start.to_rfc3339_in(tz)
            ));
        }
        Some(rejection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: i64 = 86_400_000;
    const JUMP: Span = Span(30 * DAY);

    fn at(days: i64) -> Timestamp {
        Timestamp(1_780_000_000_000 + days * DAY)
    }

    #[test]
    fn a_stream_that_agrees_starts_at_its_first_event() {
        assert_eq!(agreed_start(&[at(0), at(1), at(-1)], JUMP), Some(at(0)));
        assert_eq!(agreed_start(&[at(5)], JUMP), Some(at(5)));
        assert_eq!(agreed_start(&[], JUMP), None);
    }

    #[test]
    fn a_first_event_years_ahead_or_behind_does_not_set_the_clock() {
        let ahead = [at(70 * 365), at(0), at(1), at(2)];
        assert_eq!(agreed_start(&ahead, JUMP), Some(at(0)));
        let behind = [at(-10 * 365), at(0), at(1), at(2)];
        assert_eq!(agreed_start(&behind, JUMP), Some(at(0)));
    }

    #[test]
    fn of_two_that_disagree_the_earlier_is_believed() {
        assert_eq!(agreed_start(&[at(400), at(0)], JUMP), Some(at(0)));
        assert_eq!(agreed_start(&[at(0), at(400)], JUMP), Some(at(0)));
    }

    #[test]
    fn a_driver_holds_64_events_or_less_when_messages_or_bytes_pile_up() {
        assert!(!start_now(63, 900, 1 << 20));
        assert!(start_now(64, 64, 10_000));
        // A stream opening with unreadable lines, or with large ones.
        assert!(start_now(0, 1024, 100_000));
        assert!(start_now(3, 300, 16 << 20));
    }

    #[test]
    fn refusals_say_where_the_clock_started_until_an_event_is_placed() {
        let tz = chrono_tz::Asia::Shanghai;
        let refusal = |reason| Err(Rejection::new(reason, "ahead of the newest event time"));
        let mut note = StartNote::started(Some(at(0)));
        let first = note
            .after(refusal(RejectReason::FutureTimestamp), tz)
            .unwrap();
        assert!(first.detail.ends_with(
            "(the clock started at 2026-05-29T04:26:40+08:00, where the stream's first events agree)"
        ), "{}", first.detail);
        // Other reasons are not about the clock.
        let other = note
            .after(refusal(RejectReason::AmbiguousCustomer), tz)
            .unwrap();
        assert_eq!(other.detail, "ahead of the newest event time");
        assert!(note.after(Ok(()), tz).is_none());
        // Placed: from now on the newest event time is an event's.
        let later = note.after(refusal(RejectReason::TooLate), tz).unwrap();
        assert_eq!(later.detail, "ahead of the newest event time");
    }

    #[test]
    fn a_spread_within_the_jump_of_the_median_is_not_an_outlier() {
        // 29 days from the median: still within the jump, so the first event starts it.
        assert_eq!(agreed_start(&[at(-29), at(0), at(0)], JUMP), Some(at(-29)));
        assert_eq!(agreed_start(&[at(-31), at(0), at(0)], JUMP), Some(at(0)));
    }

    proptest! {
        /// Whatever the times, the start is one of them and the median is always within the
        /// jump of itself, so there is a start; with fewer than half the events outliers, the
        /// start is never an outlier.
        #[test]
        fn the_start_is_an_event_that_agrees_with_the_majority(
            good in prop::collection::vec(-20i64..20, 3..40),
            bad in prop::collection::vec(prop_oneof![-4000i64..-100, 100i64..4000], 0..3),
            places in prop::collection::vec(any::<prop::sample::Index>(), 3),
        ) {
            prop_assume!(bad.len() * 2 < good.len());
            let mut times: Vec<Timestamp> = good.iter().map(|&d| at(d)).collect();
            for (d, place) in bad.iter().zip(&places) {
                let i = place.index(times.len() + 1);
                times.insert(i, at(*d));
            }
            let start = agreed_start(&times, JUMP).expect("events");
            prop_assert!(times.contains(&start));
            prop_assert!(good.iter().any(|&d| at(d) == start));
        }
    }
}
