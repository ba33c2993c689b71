//! Event times: milliseconds since the Unix epoch, written as RFC 3339 UTC
//! with milliseconds (`2025-01-02T03:04:05.678Z`), parsed back for `--since`.

use kmsd_client::types::{civil_from_days, days_from_civil};
use serde::{Serialize, Serializer};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time with millisecond precision (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventTime(i64);

const MS_PER_DAY: i64 = 86_400_000;

impl EventTime {
    pub fn now() -> EventTime {
        EventTime::from_system(SystemTime::now())
    }

    pub fn from_system(t: SystemTime) -> EventTime {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => EventTime(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(e) => EventTime(-i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX)),
        }
    }

    pub fn from_millis(ms: i64) -> EventTime {
        EventTime(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// This time minus `d` (saturating).
    pub fn minus(self, d: Duration) -> EventTime {
        EventTime(
            self.0
                .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub fn to_rfc3339(self) -> String {
        let days = self.0.div_euclid(MS_PER_DAY);
        let ms = self.0.rem_euclid(MS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let secs = ms / 1000;
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60,
            ms % 1000
        )
    }

    /// Parses `YYYY-MM-DD` (midnight UTC) or
    /// `YYYY-MM-DDTHH:MM[:SS[.fff]](Z|±HH:MM)` (a space may replace `T`;
    /// without a zone the time is taken as UTC). Digits past milliseconds are
    /// dropped.
    pub fn parse_rfc3339(s: &str) -> Result<EventTime, String> {
        let bad = || format!("'{s}' is not an RFC 3339 time (e.g. 2025-01-31T12:00:00Z)");
        let b = s.trim().as_bytes();
        let mut p = Parser { b, i: 0 };
        let y = p.digits(4).ok_or_else(bad)?;
        p.expect(b'-').ok_or_else(bad)?;
        let mo = p.digits(2).ok_or_else(bad)?;
        p.expect(b'-').ok_or_else(bad)?;
        let d = p.digits(2).ok_or_else(bad)?;
        if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
            return Err(bad());
        }
        let mut ms = days_from_civil(y, mo as u32, d as u32) * MS_PER_DAY;
        if p.done() {
            return Ok(EventTime(ms));
        }
        match p.next() {
            Some(b'T' | b't' | b' ') => {}
            _ => return Err(bad()),
        }
        let h = p.digits(2).ok_or_else(bad)?;
        p.expect(b':').ok_or_else(bad)?;
        let mi = p.digits(2).ok_or_else(bad)?;
        let mut sec = 0;
        if p.peek() == Some(b':') {
            p.next();
            sec = p.digits(2).ok_or_else(bad)?;
        }
        if h > 23 || mi > 59 || sec > 60 {
            return Err(bad());
        }
        let mut frac_ms = 0;
        if p.peek() == Some(b'.') {
            p.next();
            let mut n = 0;
            while let Some(c) = p.peek().filter(u8::is_ascii_digit) {
                p.next();
                if n < 3 {
                    frac_ms = frac_ms * 10 + i64::from(c - b'0');
                }
                n += 1;
            }
            if n == 0 {
                return Err(bad());
            }
            for _ in n..3 {
                frac_ms *= 10;
            }
        }
        ms += ((h * 60 + mi) * 60 + sec) * 1000 + frac_ms;
        let offset_min = match p.next() {
            None => 0,
            Some(b'Z' | b'z') => 0,
            Some(sign @ (b'+' | b'-')) => {
                let oh = p.digits(2).ok_or_else(bad)?;
                p.expect(b':').ok_or_else(bad)?;
                let om = p.digits(2).ok_or_else(bad)?;
                let off = oh * 60 + om;
                if sign == b'+' { off } else { -off }
            }
            Some(_) => return Err(bad()),
        };
        if !p.done() {
            return Err(bad());
        }
        Ok(EventTime(ms - offset_min * 60_000))
    }
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for EventTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

/// Parses a `--since` value: an RFC 3339 time or date, or an age such as
/// `90s`, `15m`, `2h`, `7d` (counted back from `now`).
pub fn parse_since(s: &str, now: EventTime) -> Result<EventTime, String> {
    let t = s.trim();
    if let Some(unit) = t.chars().last() {
        let scale = match unit {
            's' => Some(1_000u64),
            'm' => Some(60_000),
            'h' => Some(3_600_000),
            'd' => Some(MS_PER_DAY as u64),
            _ => None,
        };
        let num = &t[..t.len() - 1];
        if let (Some(scale), Ok(n)) = (scale, num.parse::<u64>()) {
            return Ok(now.minus(Duration::from_millis(n.saturating_mul(scale))));
        }
    }
    EventTime::parse_rfc3339(t).map_err(|e| format!("{e}, or an age like 15m, 2h, 7d"))
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }
    fn done(&self) -> bool {
        self.i >= self.b.len()
    }
    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }
    fn digits(&mut self, n: usize) -> Option<i64> {
        let mut v = 0i64;
        for _ in 0..n {
            let c = self.next()?;
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_and_known_instants() {
        assert_eq!(EventTime(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        // 2000-02-29T23:59:59.999Z
        assert_eq!(
            EventTime(951_868_799_999).to_rfc3339(),
            "2000-02-29T23:59:59.999Z"
        );
        assert_eq!(EventTime(-1).to_rfc3339(), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn parse_round_trips_over_a_range() {
        let mut t = -86_400_000i64 * 800;
        while t < 86_400_000i64 * 40_000 {
            let e = EventTime(t);
            assert_eq!(EventTime::parse_rfc3339(&e.to_rfc3339()), Ok(e));
            t += 86_400_000 * 37 + 3_723_456;
        }
    }

    #[test]
    fn parses_dates_offsets_and_fractions() {
        let base = EventTime::parse_rfc3339("2025-01-31T12:00:00Z").unwrap();
        assert_eq!(
            EventTime::parse_rfc3339("2025-01-31").unwrap().millis() + 12 * 3_600_000,
            base.millis()
        );
        assert_eq!(
            EventTime::parse_rfc3339("2025-01-31T14:00:00+02:00"),
            Ok(base)
        );
        assert_eq!(
            EventTime::parse_rfc3339("2025-01-31 07:30:00-04:30"),
            Ok(base)
        );
        assert_eq!(EventTime::parse_rfc3339("2025-01-31T12:00"), Ok(base));
        assert_eq!(
            EventTime::parse_rfc3339("2025-01-31T12:00:00.5Z")
                .unwrap()
                .millis(),
            base.millis() + 500
        );
        assert_eq!(
            EventTime::parse_rfc3339("2025-01-31T12:00:00.123456789Z")
                .unwrap()
                .millis(),
            base.millis() + 123
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2025",
            "2025-13-01",
            "2025-02-30",
            "2025-01-31T24:00:00Z",
            "2025-01-31T12:00:00.Z",
            "2025-01-31T12:00:00Q",
            "2025-01-31T12:00:00Zjunk",
            "yesterday",
        ] {
            assert!(EventTime::parse_rfc3339(bad).is_err(), "{bad:?} accepted");
        }
        assert!(EventTime::parse_rfc3339("2024-02-29").is_ok());
        assert!(EventTime::parse_rfc3339("2023-02-29").is_err());
    }

    #[test]
    fn since_accepts_ages_and_times() {
        let now = EventTime(10 * MS_PER_DAY);
        assert_eq!(
            parse_since("90s", now),
            Ok(EventTime(10 * MS_PER_DAY - 90_000))
        );
        assert_eq!(
            parse_since("15m", now),
            Ok(EventTime(10 * MS_PER_DAY - 900_000))
        );
        assert_eq!(
            parse_since("2h", now),
            Ok(EventTime(10 * MS_PER_DAY - 7_200_000))
        );
        assert_eq!(parse_since("7d", now), Ok(EventTime(3 * MS_PER_DAY)));
        assert_eq!(parse_since("1970-01-02", now), Ok(EventTime(MS_PER_DAY)));
        assert!(parse_since("xd", now).is_err());
        assert!(parse_since("soon", now).is_err());
    }
}
