//! Dates as the app writes them for people: on pages and in emails alike.

use time::OffsetDateTime;

/// `December 6, 2026`.
pub fn long_date(t: OffsetDateTime) -> String {
    t.format(time::macros::format_description!(
        "[month repr:long] [day padding:none], [year]"
    ))
    .unwrap_or_default()
}

/// [`long_date`] of a Stripe timestamp (unix seconds).
pub fn long_date_unix(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .map(long_date)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_read_like_a_person_writes_them() {
        assert_eq!(super::long_date_unix(1_795_478_400), "November 24, 2026");
        assert_eq!(super::long_date_unix(1_775_174_400), "April 3, 2026");
    }
}
