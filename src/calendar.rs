//! Day boundaries and business hours in the configured time zone (pure functions).
//!
//! Every "day" the rules speak of — claim limits, holidays, business hours — is a day of the
//! configured IANA zone, never the machine's or UTC (a classic CRM bug: claims reset at the
//! database server's midnight).

use crate::config::Calendar;
use crate::time::{Span, Timestamp};
use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

/// The local calendar date of `t`.
pub fn local_date(t: Timestamp, tz: Tz) -> NaiveDate {
    // The offset from the per-hour cache: a business-hours deadline reads a few dates each,
    // and the zone's transition table was most of that work.
    let local = crate::time::zone_offset(tz, t.0).map(|o| t.0 + i64::from(o) * 1000);
    local
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|d| d.date_naive())
        .unwrap_or_default()
}

/// The instant the local day `date` begins.
pub fn day_start(date: NaiveDate, tz: Tz) -> Timestamp {
    instant(date.and_time(chrono::NaiveTime::MIN), tz)
}

/// The instant a local wall-clock time happens (the earlier one when clocks go back; an hour
/// later when clocks going forward skip it: 02:30 on such a day is read as 03:30).
fn instant(local: NaiveDateTime, tz: Tz) -> Timestamp {
    // Remembered per thread: business-hours deadlines ask for the same few days' opening and
    // closing times over and over, and the zone's transition table was most of that work.
    const CACHE: usize = 64;
    thread_local! {
        static INSTANTS: std::cell::RefCell<[(Option<Tz>, i64, i64); CACHE]> =
            const { std::cell::RefCell::new([(None, 0, 0); CACHE]) };
    }
    let wall = local.and_utc().timestamp_millis();
    // Days' openings are a whole number of days apart: the minute is mixed so that they
    // don't all share a few places.
    let minute = (wall.div_euclid(60_000) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let i = (minute >> (64 - CACHE.trailing_zeros())) as usize;
    if let Some(t) = INSTANTS.with_borrow(|c| {
        let (z, w, t) = c[i];
        (z == Some(tz) && w == wall).then_some(t)
    }) {
        return Timestamp(t);
    }
    let t = resolve(local, tz);
    INSTANTS.with_borrow_mut(|c| c[i] = (Some(tz), wall, t.0));
    t
}

fn resolve(local: NaiveDateTime, tz: Tz) -> Timestamp {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(d) | chrono::LocalResult::Ambiguous(d, _) => {
            Timestamp(d.timestamp_millis())
        }
        chrono::LocalResult::None => {
            // A wall-clock time skipped by a daylight-saving change: an hour later exists.
            resolve(local + chrono::Duration::hours(1), tz)
        }
    }
}

impl Calendar {
    /// Whether `date` has business hours.
    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        if self.workdays.binary_search(&date).is_ok() {
            return true;
        }
        self.days.contains(&date.weekday()) && self.holidays.binary_search(&date).is_err()
    }

    /// The instant `span` of business hours after `t`. Ten years without a business day
    /// (a calendar with no days) ends the search there.
    pub fn add_business(&self, t: Timestamp, span: Span, tz: Tz) -> Timestamp {
        let mut left = span.0;
        let mut date = local_date(t, tz);
        for _ in 0..3660 {
            if self.is_business_day(date) {
                let opens = instant(date.and_time(self.opens), tz);
                let closes = instant(date.and_time(self.closes), tz);
                let from = opens.max(t);
                if from < closes {
                    let available = closes.0 - from.0;
                    if left <= available {
                        return Timestamp(from.0 + left);
                    }
                    left -= available;
                }
            }
            date = date.succ_opt().unwrap_or(date);
        }
        Timestamp(t.0 + span.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn a_day_begins_at_local_midnight() {
        let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        assert_eq!(
            day_start(date("2026-11-06"), tz),
            at("2026-11-06T00:00:00+08:00")
        );
        // Santiago skips midnight when summer time starts (2026-09-06): the day begins at 01:00.
        let tz: Tz = "America/Santiago".parse().unwrap();
        assert_eq!(
            day_start(date("2026-09-06"), tz),
            at("2026-09-06T01:00:00-03:00")
        );
    }

    #[test]
    fn business_hours_skip_nights_weekends_and_holidays() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let mut cal = Calendar::default();
        // Friday 17:00 + 2h of business time → Monday 10:00.
        assert_eq!(
            cal.add_business(at("2026-03-06T17:00:00+08:00"), Span::hours(2), tz),
            at("2026-03-09T10:00:00+08:00")
        );
        // Saturday night + 24h of business time: Mon 9–18 (9h), Tue (9h), Wed 9–15.
        assert_eq!(
            cal.add_business(at("2026-03-07T22:00:00+08:00"), Span::hours(24), tz),
            at("2026-03-11T15:00:00+08:00")
        );
        cal.holidays = vec![NaiveDate::from_ymd_opt(2026, 3, 9).unwrap()];
        assert_eq!(
            cal.add_business(at("2026-03-06T17:00:00+08:00"), Span::hours(2), tz),
            at("2026-03-10T10:00:00+08:00")
        );
        // A make-up working Saturday counts.
        cal.workdays = vec![NaiveDate::from_ymd_opt(2026, 3, 7).unwrap()];
        assert_eq!(
            cal.add_business(at("2026-03-06T17:00:00+08:00"), Span::hours(2), tz),
            at("2026-03-07T10:00:00+08:00")
        );
    }

    #[test]
    fn local_dates_follow_the_zone_not_utc() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        // 16:30 UTC is already the next day in Shanghai.
        assert_eq!(
            local_date(at("2026-03-06T16:30:00Z"), tz),
            NaiveDate::from_ymd_opt(2026, 3, 7).unwrap()
        );
    }

    #[test]
    fn remembered_instants_and_dates_agree_with_the_zone_database() {
        // Zones with daylight saving (skipped and repeated wall-clock hours), read twice so
        // that the second reading comes from what the thread remembered.
        let zones: [Tz; 4] = [
            chrono_tz::America::Santiago,
            chrono_tz::Europe::Berlin,
            chrono_tz::America::New_York,
            chrono_tz::Asia::Shanghai,
        ];
        let start = at("2026-01-01T00:00:00Z").0;
        let mut ms = start;
        while ms < start + 366 * 86_400_000 {
            // The same wall-clock time in every zone in turn (one place in the cache), and
            // another a few seconds later in the same minute.
            for wall_ms in [ms, ms + 17_000] {
                for tz in zones {
                    let t = Timestamp(wall_ms);
                    let expected = chrono::DateTime::from_timestamp_millis(wall_ms)
                        .unwrap()
                        .with_timezone(&tz)
                        .date_naive();
                    assert_eq!(local_date(t, tz), expected, "{tz} at {wall_ms}");
                    let wall = chrono::DateTime::from_timestamp_millis(wall_ms)
                        .unwrap()
                        .naive_utc();
                    for _ in 0..2 {
                        assert_eq!(instant(wall, tz), resolve(wall, tz), "{tz} at {wall}");
                    }
                }
            }
            ms += 37 * 60_000 + 11_000;
        }
    }
}
