//! Decoding of the timestamps in stream messages, for
//! `#[serde(deserialize_with = "crate::rfc3339::deserialize")]`.
//!
//! chrono's own decoding runs its general format parser on every
//! timestamp, and a replay decodes millions of them: that parser was a
//! fifth of all JSON decoding. What this system writes (chrono's
//! `2026-11-21T19:04:05.123456Z`: UTC, `Z`, up to nine decimals) is read
//! here directly. Anything else goes to chrono's parser, so exactly the
//! texts chrono accepts are accepted, with the same values and errors.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::Deserializer;

/// A `DateTime<Utc>` field, as chrono's `Deserialize` reads it.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    deserializer.deserialize_str(Rfc3339Visitor)
}

struct Rfc3339Visitor;

impl serde::de::Visitor<'_> for Rfc3339Visitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an RFC 3339 formatted date and time string")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<DateTime<Utc>, E> {
        parse(text).map_err(E::custom)
    }
}

/// What chrono's `Deserialize for DateTime<Utc>` makes of `text`.
pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    match parse_utc_z(text.as_bytes()) {
        Some(at) => Ok(at),
        None => text.parse::<DateTime<FixedOffset>>().map(|at| at.with_timezone(&Utc)),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.F{1,9}]Z` and nothing else; `None` sends the text
/// to chrono (other offsets, a leap second, more decimals, mistakes).
fn parse_utc_z(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let nanos = match (b[19], b.len()) {
        (b'Z', 20) => 0,
        (b'.', len) if (22..=30).contains(&len) && b[len - 1] == b'Z' => {
            let fraction = len - 21;
            digits(20..len - 1)? * 10u32.pow(9 - fraction as u32)
        }
        _ => return None,
    };
    if second > 59 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    Some(date.and_hms_nano_opt(hour, minute, second, nanos)?.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{SecondsFormat, TimeZone};
    use proptest::prelude::*;

    fn chrono_parse(text: &str) -> Result<DateTime<Utc>, String> {
        serde_json::from_value::<DateTime<Utc>>(serde_json::Value::String(text.to_string())).map_err(|e| e.to_string())
    }

    fn ours(text: &str) -> Result<DateTime<Utc>, String> {
        #[derive(serde::Deserialize)]
        struct At(#[serde(deserialize_with = "deserialize")] DateTime<Utc>);
        serde_json::from_value::<At>(serde_json::Value::String(text.to_string()))
            .map(|at| at.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_what_chrono_writes_and_hands_the_rest_to_chrono() {
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 19, 4, 5).unwrap() + chrono::Duration::microseconds(123_456);
        assert_eq!(parse_utc_z(b"2026-11-21T19:04:05.123456Z"), Some(at));
        assert_eq!(ours(serde_json::to_value(at).unwrap().as_str().unwrap()), Ok(at));
        for other in [
            "2026-11-21T20:04:05.123456+01:00",
            "2026-11-21 19:04:05Z",
            "2026-11-21T19:04:60Z",
            "2026-11-21T19:04:05.1234567891Z",
            "2026-02-30T19:04:05Z",
            "2026-11-21T19:04:05.Z",
            "2026-11-21T19:04:05",
            "not a time",
            "",
        ] {
            assert_eq!(parse_utc_z(other.as_bytes()), None, "{other}");
            assert_eq!(ours(other), chrono_parse(other), "{other}");
        }
    }

    proptest! {
        #[test]
        fn agrees_with_chrono_on_every_precision(
            secs in -62_000_000_000i64..253_000_000_000,
            nanos in 0u32..1_000_000_000,
            format in 0usize..5,
        ) {
            let at = Utc.timestamp_opt(secs, nanos).unwrap();
            let format = [SecondsFormat::Secs, SecondsFormat::Millis, SecondsFormat::Micros, SecondsFormat::Nanos, SecondsFormat::AutoSi][format];
            for use_z in [true, false] {
                let text = at.to_rfc3339_opts(format, use_z);
                prop_assert_eq!(ours(&text), chrono_parse(&text), "{}", text);
            }
        }

        #[test]
        fn agrees_with_chrono_on_near_misses(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,11})?(Z|z|[+-][0-9]{2}:[0-9]{2})?") {
            prop_assert_eq!(ours(&text), chrono_parse(&text), "{}", text);
        }
    }
}
