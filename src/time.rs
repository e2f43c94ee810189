//! Event time as plain numbers.
//!
//! The core never reads the clock: every instant it sees comes in with an event or with a
//! driver's call. Instants are milliseconds since the Unix epoch in UTC ([`Timestamp`]); spans are
//! milliseconds too ([`Span`]). Conversions to and from text (RFC 3339, `10m`/`7d` durations) and
//! to a configured IANA time zone live here, so there is one place per concept.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use std::fmt;

/// An instant: milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// The wall clock, for the edges only (live mode, Kafka ticks, latency metrics, webhook
/// timing): the core never calls it; its time comes in with each call.
pub fn wall_clock() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp(ms)
}

/// A length of time in milliseconds. Never negative once parsed from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span(pub i64);

impl Span {
    pub const ZERO: Span = Span(0);
    pub const fn seconds(s: i64) -> Span {
        Span(s * 1_000)
    }
    pub const fn minutes(m: i64) -> Span {
        Span(m * 60_000)
    }
    pub const fn hours(h: i64) -> Span {
        Span(h * 3_600_000)
    }
    pub const fn days(d: i64) -> Span {
        Span(d * 86_400_000)
    }
    pub fn as_millis(self) -> i64 {
        self.0
    }
}

impl std::ops::Add<Span> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: Span) -> Timestamp {
        Timestamp(self.0.saturating_add(rhs.0))
    }
}

impl std::ops::Sub<Span> for Timestamp {
    type Output = Timestamp;
    fn sub(self, rhs: Span) -> Timestamp {
        Timestamp(self.0.saturating_sub(rhs.0))
    }
}

impl std::ops::Sub<Timestamp> for Timestamp {
    type Output = Span;
    fn sub(self, rhs: Timestamp) -> Span {
        Span(self.0.saturating_sub(rhs.0))
    }
}

/// Earliest instant an event may claim to have happened (2000-01-01T00:00:00Z). Anything earlier
/// is a corrupt or defaulted timestamp, not a contact.
pub const EARLIEST_PLAUSIBLE: Timestamp = Timestamp(946_684_800_000);
/// Latest instant an event may claim (2100-01-01T00:00:00Z).
pub const LATEST_PLAUSIBLE: Timestamp = Timestamp(4_102_444_800_000);

/// Why a timestamp could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeError(pub String);

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Timestamp {
    /// Parses RFC 3339 with an explicit offset (`2026-11-02T09:31:02+08:00`, `...Z`). A time
    /// without offset is refused: its zone would be a guess.
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, TimeError> {
        let dt = DateTime::parse_from_rfc3339(s).map_err(|e| {
            TimeError(format!(
                "`{}` is not an RFC 3339 time with offset ({e}); expected e.g. 2026-11-02T09:31:02+08:00",
                truncate(s, 64)
            ))
        })?;
        Self::plausible(Timestamp(dt.timestamp_millis()), s)
    }

    /// Parses a zone-less local time with a strftime pattern, read in `tz`.
    pub fn parse_local(s: &str, pattern: &str, tz: Tz) -> Result<Timestamp, TimeError> {
        let naive = NaiveDateTime::parse_from_str(s, pattern).map_err(|e| {
            TimeError(format!(
                "`{}` does not match the time pattern `{pattern}` ({e})",
                truncate(s, 64)
            ))
        })?;
        let dt = tz.from_local_datetime(&naive).earliest().ok_or_else(|| {
            TimeError(format!(
                "`{}` does not exist in time zone {tz} (skipped by a daylight-saving change)",
                truncate(s, 64)
            ))
        })?;
        Self::plausible(Timestamp(dt.timestamp_millis()), s)
    }

    /// Accepts Unix epoch milliseconds, checking plausibility.
    pub fn from_epoch_millis(ms: i64) -> Result<Timestamp, TimeError> {
        Self::plausible(Timestamp(ms), &ms.to_string())
    }

    fn plausible(t: Timestamp, raw: &str) -> Result<Timestamp, TimeError> {
        if t < EARLIEST_PLAUSIBLE || t >= LATEST_PLAUSIBLE {
            return Err(TimeError(format!(
                "`{}` is outside the plausible range 2000-01-01..2100-01-01",
                truncate(raw, 64)
            )));
        }
        Ok(t)
    }

    /// RFC 3339 in the given zone, with the zone's offset (`2026-11-02T09:31:02+08:00`;
    /// milliseconds only when not zero). Formatted by hand: alerts carry several timestamps
    /// and chrono's general formatter dominated the cost of rendering one.
    pub fn to_rfc3339_in(self, tz: Tz) -> String {
        let mut out = Vec::with_capacity(32);
        self.write_rfc3339_in(tz, &mut out);
        String::from_utf8(out).expect("RFC 3339 text is ASCII")
    }

    /// Appends [`Self::to_rfc3339_in`]'s text to `out` (no allocation once `out` has room).
    pub fn write_rfc3339_in(self, tz: Tz, out: &mut Vec<u8>) {
        match self.rfc3339_in(tz) {
            Rfc3339::Digits(d) => out.extend_from_slice(d.bytes()),
            Rfc3339::Text(text) => out.extend_from_slice(text.as_bytes()),
        }
    }

    /// Appends [`Self::to_rfc3339_in`]'s text to a string (explanations cite times).
    pub fn push_rfc3339_in(self, tz: Tz, out: &mut String) {
        match self.rfc3339_in(tz) {
            Rfc3339::Digits(d) => {
                out.push_str(std::str::from_utf8(d.bytes()).expect("RFC 3339 text is ASCII"))
            }
            Rfc3339::Text(text) => out.push_str(&text),
        }
    }

    fn rfc3339_in(self, tz: Tz) -> Rfc3339 {
        match zone_offset(tz, self.0) {
            Some(offset) => format_rfc3339(self.0 + i64::from(offset) * 1000, offset),
            None => Rfc3339::Text(self.0.to_string()),
        }
    }

    /// RFC 3339 in UTC (`...Z`).
    pub fn to_rfc3339_utc(self) -> String {
        match Utc.timestamp_millis_opt(self.0).single() {
            Some(utc) => utc.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            None => self.0.to_string(),
        }
    }
}

/// Entries of the per-thread cache of zone offsets: (zone, UTC hour, offset in seconds).
const OFFSET_CACHE: usize = 256;
const HOUR_MS: i64 = 3_600_000;

thread_local! {
    static OFFSETS: std::cell::RefCell<[(Option<Tz>, i64, i32); OFFSET_CACHE]> =
        const { std::cell::RefCell::new([(None, 0, 0); OFFSET_CACHE]) };
}

/// The offset of `tz` from UTC at `ms`, in seconds; `None` outside chrono's range.
///
/// Looking an offset up in the zone's transition table was a good part of rendering an
/// output, and outputs cite a few instants over and over. So offsets are cached per UTC hour
/// when the zone has the same offset at both ends of the hour: no zone in the tz database
/// changes its offset twice within one hour, so the whole hour has that offset. Hours with a
/// transition inside are looked up every time.
pub(crate) fn zone_offset(tz: Tz, ms: i64) -> Option<i32> {
    let hour = ms.div_euclid(HOUR_MS);
    let i = hour.rem_euclid(OFFSET_CACHE as i64) as usize;
    if let Some(offset) = OFFSETS.with_borrow(|c| {
        let (z, h, o) = c[i];
        (z == Some(tz) && h == hour).then_some(o)
    }) {
        return Some(offset);
    }
    let offset = lookup_offset(tz, ms)?;
    let start = hour * HOUR_MS;
    if lookup_offset(tz, start) == Some(offset)
        && lookup_offset(tz, start + HOUR_MS - 1) == Some(offset)
    {
        OFFSETS.with_borrow_mut(|c| c[i] = (Some(tz), hour, offset));
    }
    Some(offset)
}

fn lookup_offset(tz: Tz, ms: i64) -> Option<i32> {
    use chrono::Offset;
    let utc = DateTime::from_timestamp_millis(ms)?;
    Some(
        tz.offset_from_utc_datetime(&utc.naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

/// A time's RFC 3339 text: digits in a fixed buffer, or (outside years 0–9999, or outside
/// the zone database's range) text made the slow way.
enum Rfc3339 {
    Digits(Digits),
    Text(String),
}

/// Formats `local_ms` (milliseconds since the epoch, already shifted into the zone) with the
/// given offset in seconds.
fn format_rfc3339(local_ms: i64, offset_secs: i32) -> Rfc3339 {
    let days = local_ms.div_euclid(86_400_000);
    let ms_of_day = local_ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss, ms) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    if !(0..=9999).contains(&y) {
        return Rfc3339::Text(format!("{y}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}"));
    }
    let off = offset_secs.unsigned_abs();
    // Written digit by digit: `write!` with padding was most of the cost of an alert.
    let mut out = Digits::default();
    out.num(y as u64, 4);
    out.byte(b'-');
    out.num(u64::from(m), 2);
    out.byte(b'-');
    out.num(u64::from(d), 2);
    out.byte(b'T');
    out.num(hh as u64, 2);
    out.byte(b':');
    out.num(mm as u64, 2);
    out.byte(b':');
    out.num(ss as u64, 2);
    if ms != 0 {
        out.byte(b'.');
        out.num(ms as u64, 3);
    }
    out.byte(if offset_secs < 0 { b'-' } else { b'+' });
    out.num(u64::from(off / 3600), 2);
    out.byte(b':');
    out.num(u64::from(off / 60 % 60), 2);
    Rfc3339::Digits(out)
}

/// A fixed buffer for an RFC 3339 timestamp.
#[derive(Default)]
struct Digits {
    buf: [u8; 32],
    len: usize,
}

impl Digits {
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }
    /// `v` zero-padded to `width` digits.
    fn num(&mut self, mut v: u64, width: usize) {
        for i in (0..width).rev() {
            self.buf[self.len + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        self.len += width;
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses a span such as `90s`, `10m`, `24h`, `7d`, `2w` or a sum like `1d12h`. Plain numbers
/// are refused so that a missing unit never turns days into milliseconds.
pub fn parse_span(s: &str) -> Result<Span, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration; write e.g. 30m, 24h or 7d".into());
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    let mut saw_unit = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit_ms: i64 = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            'w' => 7 * 86_400_000,
            ' ' => continue,
            other => {
                return Err(format!(
                    "`{s}`: unknown duration unit `{other}`; use ms, s, m, h, d or w"
                ))
            }
        };
        if digits.is_empty() {
            return Err(format!("`{s}`: a unit without a number"));
        }
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("`{s}`: number too large"))?;
        total = n
            .checked_mul(unit_ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("`{s}`: duration too large"))?;
        digits.clear();
        saw_unit = true;
    }
    if !digits.is_empty() {
        return Err(if saw_unit {
            format!("`{s}`: trailing number without a unit")
        } else {
            format!("`{s}`: a duration needs a unit, e.g. {s}m, {s}h or {s}d")
        });
    }
    Ok(Span(total))
}

/// Formats a span compactly (`7d`, `1d12h`, `90s`), the inverse of [`parse_span`].
pub fn format_span(span: Span) -> String {
    let mut out = String::new();
    push_span(span, &mut out);
    out
}

/// Appends [`format_span`]'s text to `out`.
pub fn push_span(span: Span, out: &mut String) {
    if span.0 == 0 {
        out.push_str("0s");
        return;
    }
    if span.0 < 0 {
        out.push('-');
    }
    let mut ms = span.0.unsigned_abs();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(itoa::Buffer::new().format(ms / size));
            out.push_str(unit);
            ms %= size;
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_zone_offsets_agree_with_the_zone_table() {
        // Zones with daylight saving and one without, through a year and its transitions, at a
        // step that lands inside every hour at varying minutes. Lord Howe (a 30-minute shift)
        // and St. John's change at half past a UTC hour: a cache that trusted one lookup per
        // hour would be wrong for half of those hours.
        let zones = [
            chrono_tz::Asia::Shanghai,
            chrono_tz::Europe::Berlin,
            chrono_tz::America::New_York,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::America::St_Johns,
        ];
        let start = Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap().0;
        for tz in zones {
            let mut ms = start;
            while ms < start + 366 * 86_400_000 {
                assert_eq!(zone_offset(tz, ms), lookup_offset(tz, ms), "{tz} at {ms}");
                ms += 13 * 60_000 + 7_001;
            }
        }
    }

    #[test]
    fn rfc3339_text_agrees_with_chrono_and_survives_extreme_times() {
        for tz in [chrono_tz::Asia::Shanghai, chrono_tz::America::St_Johns] {
            let mut ms = -86_400_000 * 400;
            while ms < 86_400_000 * 20_000 {
                let expected = tz
                    .timestamp_millis_opt(ms)
                    .unwrap()
                    .to_rfc3339_opts(SecondsFormat::AutoSi, false);
                assert_eq!(Timestamp(ms).to_rfc3339_in(tz), expected, "{ms}");
                ms += 86_400_000 * 3 + 3_600_000 * 7 + 1_234;
            }
        }
        // Past year 9999, and outside the zone table's range: plain, never a panic.
        let far = Timestamp(400_000_000_000_000);
        assert!(far.to_rfc3339_in(chrono_tz::UTC).starts_with("14645"));
        for t in [i64::MAX, i64::MIN] {
            assert_eq!(Timestamp(t).to_rfc3339_in(chrono_tz::UTC), t.to_string());
        }
    }

    #[test]
    fn spans_round_trip() {
        for (text, ms) in [
            ("90s", 90_000),
            ("10m", 600_000),
            ("24h", 86_400_000),
            ("7d", 7 * 86_400_000),
            ("1d12h", 36 * 3_600_000),
            ("250ms", 250),
            ("2w", 14 * 86_400_000),
        ] {
            assert_eq!(parse_span(text), Ok(Span(ms)), "{text}");
        }
        assert_eq!(format_span(Span(36 * 3_600_000)), "1d12h");
        assert_eq!(format_span(Span(250)), "250ms");
        assert_eq!(format_span(Span(-90_000)), "-1m30s");
        assert!(format_span(Span(i64::MIN)).starts_with("-106751991167d"));
    }

    #[test]
    fn spans_without_units_are_refused() {
        assert!(parse_span("10").unwrap_err().contains("needs a unit"));
        assert!(parse_span("5y")
            .unwrap_err()
            .contains("unknown duration unit"));
        assert!(parse_span("").is_err());
    }

    #[test]
    fn rfc3339_requires_offset_and_plausible_year() {
        let t = Timestamp::parse_rfc3339("2026-11-02T09:31:02+08:00").unwrap();
        assert_eq!(t.to_rfc3339_utc(), "2026-11-02T01:31:02Z");
        assert_eq!(
            t.to_rfc3339_in(chrono_tz::Asia::Shanghai),
            "2026-11-02T09:31:02+08:00"
        );
        assert!(Timestamp::parse_rfc3339("2026-11-02T09:31:02").is_err());
        assert!(Timestamp::parse_rfc3339("1970-01-01T00:00:00Z")
            .unwrap_err()
            .0
            .contains("plausible"));
        assert!(Timestamp::parse_rfc3339("2026-13-45T09:31:02+08:00").is_err());
    }

    #[test]
    fn hand_formatting_matches_chrono() {
        let zones = [
            chrono_tz::Asia::Shanghai,
            chrono_tz::UTC,
            chrono_tz::America::New_York,
            chrono_tz::Asia::Kolkata,
        ];
        let mut x: i64 = 0x2545_f491_4f6c_dd1d;
        for i in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ms = EARLIEST_PLAUSIBLE.0 + x.rem_euclid(LATEST_PLAUSIBLE.0 - EARLIEST_PLAUSIBLE.0);
            let ms = if i % 3 == 0 { ms - ms % 1000 } else { ms };
            let tz = zones[i % zones.len()];
            let expected = Utc
                .timestamp_millis_opt(ms)
                .unwrap()
                .with_timezone(&tz)
                .fixed_offset()
                .to_rfc3339_opts(SecondsFormat::AutoSi, false);
            assert_eq!(Timestamp(ms).to_rfc3339_in(tz), expected, "{ms} in {tz}");
        }
    }

    #[test]
    fn local_times_are_read_in_the_configured_zone() {
        let t = Timestamp::parse_local(
            "2026-11-02 09:31:02",
            "%Y-%m-%d %H:%M:%S",
            chrono_tz::Asia::Shanghai,
        )
        .unwrap();
        assert_eq!(t.to_rfc3339_utc(), "2026-11-02T01:31:02Z");
    }
}
