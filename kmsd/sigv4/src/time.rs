//! X-Amz-Date: `yyyyMMdd'T'HHmmss'Z'` (ISO 8601 basic format, UTC), to and
//! from seconds since the Unix epoch. Proleptic Gregorian calendar, no leap
//! seconds (as AWS and Unix time).

/// Length of an X-Amz-Date value: `20261202T023524Z`.
pub const AMZ_DATE_LEN: usize = 16;

/// How far X-Amz-Date may be from the server's clock, either way.
pub const MAX_SKEW_SECS: i64 = 15 * 60;

const SECS_PER_DAY: i64 = 86_400;

/// Parses an X-Amz-Date value into seconds since the epoch (negative before
/// 1970). `None` unless it is exactly `yyyyMMdd'T'HHmmss'Z'` with a real
/// calendar date, hour 00..=23, minute and second 00..=59.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != AMZ_DATE_LEN || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        b[range].iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * SECS_PER_DAY + hour * 3600 + minute * 60 + second)
}

/// Formats seconds since the epoch as X-Amz-Date (`20261202T023524Z`).
/// Years outside 0..=9999 still format (with more or fewer digits), so this
/// never panics.
pub fn format_amz_date(epoch_secs: i64) -> String {
    let days = epoch_secs.div_euclid(SECS_PER_DAY);
    let secs = epoch_secs.rem_euclid(SECS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]. Total for every `i64` whose year
/// fits (|days| < 2^62 or so; callers pass seconds / 86400).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20261202T023524Z"), Some(1_796_178_924));
        assert_eq!(format_amz_date(1_796_178_924), "20261202T023524Z");
        assert_eq!(parse_amz_date("20000229T235959Z"), Some(951_868_799));
        assert_eq!(format_amz_date(-1), "19691231T235959Z");
        assert_eq!(format_amz_date(0), "19700101T000000Z");
    }

    #[test]
    fn round_trip_over_four_centuries() {
        // Every day from 1900 to 2300 at a varying time of day.
        let start = parse_amz_date("19000101T000000Z").unwrap();
        let end = parse_amz_date("23000101T000000Z").unwrap();
        let mut t = start;
        let mut prev = String::new();
        while t < end {
            let s = format_amz_date(t);
            assert_eq!(parse_amz_date(&s), Some(t), "{s}");
            assert!(s > prev, "{s} after {prev}");
            prev = s;
            t += SECS_PER_DAY + 37;
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "20261202T023524",
            "20261202T023524z",
            "20261202t023524Z",
            "2026120T2023524Z",
            "20261202 023524Z",
            "20261302T023524Z",
            "20260002T023524Z",
            "20261200T023524Z",
            "20260229T023524Z",
            "21000229T000000Z",
            "20260431T000000Z",
            "20261202T243524Z",
            "20261202T026024Z",
            "20261202T023560Z",
            "+0261202T023524Z",
            "2026-12-02T02:35:24Z",
            "20261202T023524Z ",
            "２0261202T023524Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad:?}");
        }
        assert!(parse_amz_date("20240229T000000Z").is_some());
        assert!(parse_amz_date("20000229T000000Z").is_some());
    }

    #[test]
    fn extreme_values_do_not_panic() {
        for t in [i64::MIN / 2, -62_167_219_200, 253_402_300_799, i64::MAX / 2] {
            let s = format_amz_date(t);
            if s.len() == AMZ_DATE_LEN {
                assert_eq!(parse_amz_date(&s), Some(t));
            }
        }
        assert_eq!(format_amz_date(253_402_300_799), "99991231T235959Z");
        assert_eq!(format_amz_date(-62_167_219_200), "00000101T000000Z");
    }
}
