//! Time formatting: elapsed durations for progress lines and UTC timestamps for markers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats an elapsed time the way every progress line shows it: seconds with one decimal, `1.2s`.
pub fn secs(elapsed: Duration) -> String {
    format!("{:.1}s", elapsed.as_secs_f64())
}

/// Formats `time` as an RFC 3339 UTC timestamp, e.g. `2025-05-20T13:04:05Z`.
///
/// Times before the Unix epoch (a badly set clock) are shown as the epoch itself.
pub fn utc_timestamp(time: SystemTime) -> String {
    let total = time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = total / 86_400;
    let rem = total % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Converts days since 1970-01-01 into a proleptic Gregorian (year, month, day).
///
/// This is Howard Hinnant's `civil_from_days`, restricted to non-negative day counts.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
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

    #[test]
    fn formats_known_instants() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_747_746_245);
        assert_eq!(utc_timestamp(t), "2025-05-20T13:04:05Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc_timestamp(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn formats_seconds_with_one_decimal() {
        assert_eq!(secs(Duration::from_millis(1234)), "1.2s");
        assert_eq!(secs(Duration::from_secs(86)), "86.0s");
    }
}
