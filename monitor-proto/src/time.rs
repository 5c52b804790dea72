//! RFC 3339 timestamps with nanoseconds, as the exit file and the CRI log write them, without a
//! date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-05-01T12:00:00.123456789Z`: UTC, always nine fraction digits (every entry the same
/// width; Go's parser takes it). Times before the epoch are written as the epoch.
pub fn rfc3339_nano(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_nanos()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm, for days
/// after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_dates_and_nanoseconds() {
        let at = |secs, nanos| UNIX_EPOCH + Duration::new(secs, nanos);
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nano(at(1_700_000_000, 5)),
            "2023-11-14T22:13:20.000000005Z"
        );
        assert_eq!(
            rfc3339_nano(at(951_782_400, 5)),
            "2000-02-29T00:00:00.000000005Z"
        );
        assert_eq!(
            rfc3339_nano(at(1_735_689_599, 999_999_999)),
            "2024-12-31T23:59:59.999999999Z"
        );
        assert_eq!(
            rfc3339_nano(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00.000000000Z"
        );
    }
}
