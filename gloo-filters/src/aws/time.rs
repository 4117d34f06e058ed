//! UTC calendar arithmetic for the few timestamps AWS uses: `x-amz-date`
//! (`YYYYMMDDTHHMMSSZ`), the scope date (`YYYYMMDD`), and ISO 8601 expirations
//! (`2024-05-01T12:00:00Z`, with optional fractional seconds) in STS and IMDS answers.
//! (Howard Hinnant's `days_from_civil` / `civil_from_days`.)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// (year, month, day, hour, minute, second) of `time` in UTC; times before 1970 clamp to it.
fn civil(time: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYYMMDDTHHMMSSZ`, the `x-amz-date` of a request signed at `time`.
pub(crate) fn amz_date(time: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(time);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// `YYYYMMDD`, the date of a signature's credential scope.
pub(crate) fn scope_date(time: SystemTime) -> String {
    let (y, mo, d, ..) = civil(time);
    format!("{y:04}{mo:02}{d:02}")
}

/// Parses an ISO 8601 UTC timestamp as AWS writes them (`2024-05-01T12:00:00Z`,
/// `2024-05-01T12:00:00.123Z`, `...+00:00`).
pub(crate) fn parse_iso8601(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let (date, rest) = text.split_once('T')?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    let time = rest
        .strip_suffix('Z')
        .or_else(|| rest.strip_suffix("+00:00"))?;
    let time = time.split('.').next()?;
    let mut time_parts = time.splitn(3, ':');
    let hour: u64 = time_parts.next()?.parse().ok()?;
    let minute: u64 = time_parts.next()?.parse().ok()?;
    let second: u64 = time_parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = u64::try_from(days).ok()? * 86_400 + hour * 3600 + minute * 60 + second;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_utc_timestamps() {
        let t = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        assert_eq!(amz_date(t), "20150830T123600Z");
        assert_eq!(scope_date(t), "20150830");
        assert_eq!(parse_iso8601("2015-08-30T12:36:00Z"), Some(t));
        assert_eq!(parse_iso8601("2015-08-30T12:36:00.250Z"), Some(t));
        assert_eq!(parse_iso8601("2015-08-30T12:36:00+00:00"), Some(t));
        // Leap day, and the end of a year.
        let leap = parse_iso8601("2024-02-29T23:59:59Z").unwrap();
        assert_eq!(amz_date(leap), "20240229T235959Z");
        assert_eq!(amz_date(leap + Duration::from_secs(1)), "20240301T000000Z");
        assert_eq!(
            amz_date(parse_iso8601("1999-12-31T23:59:59Z").unwrap() + Duration::from_secs(1)),
            "20000101T000000Z"
        );
        assert_eq!(parse_iso8601("2015-13-01T00:00:00Z"), None);
        assert_eq!(parse_iso8601("yesterday"), None);
        assert_eq!(
            parse_iso8601("2015-08-30T12:36:00"),
            None,
            "no zone: not UTC"
        );
    }
}
