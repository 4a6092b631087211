//! Civil dates from seconds since the epoch, for FHIR `date` and
//! `dateTime` values (UTC), without a date library in the hot path.

/// Seconds in a day.
pub(crate) const SECONDS_PER_DAY: i64 = 86_400;

/// (year, month, day) of the day `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// "YYYY-MM-DD" of the instant.
pub(crate) fn iso_date(seconds: i64) -> String {
    let (year, month, day) = civil_from_days(seconds.div_euclid(SECONDS_PER_DAY));
    format!("{year:04}-{month:02}-{day:02}")
}

/// "YYYY-MM-DDThh:mm:ssZ" of the instant.
pub(crate) fn iso_date_time(seconds: i64) -> String {
    let within_day = seconds.rem_euclid(SECONDS_PER_DAY);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        iso_date(seconds),
        within_day / 3_600,
        within_day % 3_600 / 60,
        within_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_format_as_iso_8601() {
        assert_eq!(iso_date_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_date_time(1_767_225_600), "2026-01-01T00:00:00Z");
        assert_eq!(iso_date_time(951_782_400 + 3_661), "2000-02-29T01:01:01Z");
        assert_eq!(iso_date(-1), "1969-12-31");
        assert_eq!(iso_date(-1_262_304_000), "1930-01-01");
    }
}
