//! Time as the database and the API write it: RFC 3339, UTC, microseconds, `Z`, so that text
//! order is time order.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats a time with microsecond precision, so text order is time order.
pub fn format(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses an RFC 3339 time into UTC.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Serde helpers that write times with [`format`].
pub mod serde_micros {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    /// Serializes a time with microsecond precision.
    pub fn serialize<S: Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*time))
    }

    /// Serializes an optional time with microsecond precision.
    pub fn option<S: Serializer>(time: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match time {
            Some(t) => s.serialize_str(&super::format(*t)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn whole_seconds_still_carry_a_fraction_and_round_trip() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(format(t), "2026-01-02T03:04:05.000000Z");
        assert_eq!(parse(&format(t)), Some(t));
        assert_eq!(parse("yesterday"), None);
    }
}
