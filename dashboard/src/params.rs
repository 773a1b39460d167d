//! Query-string values the dashboard endpoints share, each checked into a
//! typed value or a 400 naming the parameter. Values reach SQL only in
//! these checked forms (dates, RFC 3339 times, ISO currency codes, ids of
//! a restricted alphabet), never as raw text.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use server::http::HttpError;

pub fn bad(field: &str, message: impl Into<String>) -> HttpError {
    HttpError::new(StatusCode::BAD_REQUEST, "invalid_parameter", message).with_field(field)
}

/// A parameter the caller got wrong, where the endpoint answers 422 (the
/// analytics endpoints: the request parsed, its values are refused).
pub fn invalid(field: &str, message: impl Into<String>) -> HttpError {
    HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_parameter", message).with_field(field)
}

/// One of this module's 400s as such a 422, same field and message.
pub fn unprocessable(e: HttpError) -> HttpError {
    HttpError { status: StatusCode::UNPROCESSABLE_ENTITY, ..e }
}

/// A number in `range` (`default` when absent), or a 422 saying `message`.
pub fn number<T: std::str::FromStr + PartialOrd>(
    field: &str,
    value: Option<&str>,
    default: T,
    range: std::ops::RangeInclusive<T>,
    message: &str,
) -> Result<T, HttpError> {
    match value {
        None => Ok(default),
        Some(v) => v.parse::<T>().ok().filter(|n| range.contains(n)).ok_or_else(|| invalid(field, message)),
    }
}

/// A query string decoded into `T`, or a JSON 400 (the one extractor every
/// route uses, declared in `server::http`).
pub use server::http::Query as Q;

/// `YYYY-MM-DD`.
pub fn date(field: &str, value: Option<&str>) -> Result<Option<NaiveDate>, HttpError> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| bad(field, "a date is YYYY-MM-DD")))
        .transpose()
}

/// An RFC 3339 time, or a date (its midnight, UTC).
pub fn time(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, HttpError> {
    let Some(v) = value.filter(|v| !v.is_empty()) else { return Ok(None) };
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        Ok(d) => Ok(Some(midnight(d))),
        Err(_) => Err(bad(field, "a time is RFC 3339 (2026-11-21T18:00:00Z) or a date (2026-11-21)")),
    }
}

pub fn midnight(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// Three ASCII letters, upper-cased; USD when absent.
pub fn currency(value: Option<&str>) -> Result<String, HttpError> {
    let v = value.unwrap_or("USD");
    match schemas::Currency::from_code(v) {
        Some(currency) => Ok(currency.code().to_string()),
        None => Err(bad("currency", "a currency is an ISO 4217 code orders are taken in, such as USD")),
    }
}

/// Customer, product and order ids: letters, digits, `-`, `_`, `.`, `:`;
/// 1–128 of them.
pub fn id(field: &str, value: Option<&str>) -> Result<Option<String>, HttpError> {
    let Some(v) = value.filter(|v| !v.is_empty()) else { return Ok(None) };
    if v.len() <= 128 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) {
        Ok(Some(v.to_string()))
    } else {
        Err(bad(field, "an id is 1 to 128 letters, digits, '-', '_', '.' or ':'"))
    }
}

/// Free text such as a category name ("Women's Clothing", "TV & Video"):
/// 1–128 printable characters, returned as the body of a SQL string
/// literal (quotes doubled).
pub fn text(field: &str, value: Option<&str>) -> Result<Option<String>, HttpError> {
    let Some(v) = value.filter(|v| !v.is_empty()) else { return Ok(None) };
    if v.chars().count() <= 128 && !v.chars().any(char::is_control) {
        Ok(Some(v.replace('\'', "''")))
    } else {
        Err(bad(field, "at most 128 printable characters"))
    }
}

/// `days` (in the order to read them) as runs of 1, 2, 4, … days, each
/// as its first and last date in calendar order: a search that wants the
/// newest (or oldest) few rows reads a day or two, not the whole range.
pub fn growing_chunks(days: &[NaiveDate]) -> impl Iterator<Item = (NaiveDate, NaiveDate)> + '_ {
    let mut next = 0;
    let mut chunk = 1;
    std::iter::from_fn(move || {
        let slice = days.get(next..(next + chunk).min(days.len())).filter(|s| !s.is_empty())?;
        next += slice.len();
        chunk *= 2;
        let (a, b) = (slice[0], slice[slice.len() - 1]);
        Some(if a <= b { (a, b) } else { (b, a) })
    })
}

/// A time as a SQL literal.
pub fn ts_sql(t: DateTime<Utc>) -> String {
    format!("TIMESTAMP '{}'", t.format("%Y-%m-%dT%H:%M:%S%.6fZ"))
}

/// The `date` partitions a time range touches, as a SQL predicate on `column`
/// (an exclusive end at midnight does not touch that day).
pub fn partitions(column: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let last = (to - Duration::microseconds(1)).date_naive();
    format!("{column} BETWEEN '{}' AND '{}'", from.date_naive(), last.max(from.date_naive()))
}

/// The day of a `date=YYYY-MM-DD` path segment.
pub fn partition_date(segment: &str) -> Option<NaiveDate> {
    segment.strip_prefix("date=").and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
}

/// The `date` partitions a query reads.
pub enum Days {
    Between(NaiveDate, NaiveDate),
    /// Only these (the dates the bloom index says may hold an id).
    Only(BTreeSet<NaiveDate>),
}

impl Days {
    /// A predicate on `column` for these days, each widened by `span` days
    /// after it (an order's status events follow it by days).
    pub fn predicate(&self, column: &str, span: i64) -> String {
        match self {
            Days::Between(first, last) => {
                format!("{column} BETWEEN '{first}' AND '{}'", *last + Duration::days(span))
            }
            Days::Only(days) => {
                let list: Vec<String> = widen(days.iter().copied(), span).iter().map(|d| format!("'{d}'")).collect();
                format!("{column} IN ({})", list.join(", "))
            }
        }
    }
}

/// Each of `days` and the `span` days after it.
pub fn widen(days: impl IntoIterator<Item = NaiveDate>, span: i64) -> BTreeSet<NaiveDate> {
    days.into_iter().flat_map(|d| (0..=span).map(move |n| d + Duration::days(n))).collect()
}

/// Rows of `[from, to)` by their time column: the `date` partitions the
/// range touches, and the times themselves unless the range is whole UTC
/// days. A row's `date` is its time column's UTC day, so on whole days the
/// partitions are the range and no row's time needs reading (a count is
/// then answered from the files' row counts).
pub fn time_range(time_column: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let days = partitions("date", from, to);
    let midnight = |t: DateTime<Utc>| t.time() == chrono::NaiveTime::MIN;
    if midnight(from) && midnight(to) {
        days
    } else {
        format!("{days} AND {time_column} >= {} AND {time_column} < {}", ts_sql(from), ts_sql(to))
    }
}

/// A `[from, to)` range from the query string, defaulting to the `default`
/// span that ends now (or at `to`); at most `max` long.
pub fn range(
    from: Option<&str>,
    to: Option<&str>,
    default: Duration,
    max: Duration,
) -> Result<(DateTime<Utc>, DateTime<Utc>), HttpError> {
    let to = time("to", to)?.unwrap_or_else(Utc::now);
    let from = time("from", from)?.unwrap_or(to - default);
    if from >= to {
        return Err(bad("from", "from must be before to"));
    }
    if to - from > max {
        return Err(bad("from", format!("the range is at most {} days", max.num_days().max(1))));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn values_are_checked_before_they_reach_sql() {
        assert!(id("customer_id", Some("cust-1")).unwrap().is_some());
        assert!(id("customer_id", Some("x' OR 1=1 --")).is_err());
        assert!(currency(Some("usd")).is_ok_and(|c| c == "USD"));
        assert!(currency(Some("US'")).is_err());
        assert!(currency(Some("XYZ")).is_err(), "not a currency orders are taken in");
        assert!(time("from", Some("2026-11-21")).unwrap().is_some());
        assert!(time("from", Some("yesterday")).is_err());
        assert!(date("date", Some("2026-13-01")).is_err());
        assert_eq!(text("category", Some("Women's Clothing")).unwrap().as_deref(), Some("Women''s Clothing"));
        assert!(text("category", Some("a\nb")).is_err());
    }

    #[test]
    fn partitions_cover_exactly_the_days_a_range_touches() {
        let from = time("from", Some("2026-11-20T23:00:00Z")).unwrap().unwrap();
        let to = time("to", Some("2026-11-22")).unwrap().unwrap();
        assert_eq!(partitions("date", from, to), "date BETWEEN '2026-11-20' AND '2026-11-21'");
        assert!(time_range("t", from, to).ends_with(&format!("AND t >= {} AND t < {}", ts_sql(from), ts_sql(to))));
        let from = time("from", Some("2026-11-20")).unwrap().unwrap();
        assert_eq!(time_range("t", from, to), "date BETWEEN '2026-11-20' AND '2026-11-21'", "whole days");
        let (f, t) = range(Some("2026-11-01"), Some("2026-11-02"), Duration::days(1), Duration::days(2)).unwrap();
        assert_eq!(t - f, Duration::days(1));
        assert!(range(Some("2026-11-02"), Some("2026-11-01"), Duration::days(1), Duration::days(2)).is_err());
        assert!(range(Some("2026-01-01"), Some("2026-11-01"), Duration::days(1), Duration::days(2)).is_err());
    }

    #[test]
    fn days_widen_by_the_span_after_each_without_repeats() {
        let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        let widened = widen([day("2026-11-20"), day("2026-11-21"), day("2026-12-31")], 1);
        let expected = ["2026-11-20", "2026-11-21", "2026-11-22", "2026-12-31", "2027-01-01"].map(day);
        assert_eq!(widened.into_iter().collect::<Vec<_>>(), expected);
        let only = Days::Only([day("2026-11-20")].into());
        assert_eq!(only.predicate("date", 2), "date IN ('2026-11-20', '2026-11-21', '2026-11-22')");
    }
}
