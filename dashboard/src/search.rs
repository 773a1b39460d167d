//! `GET /api/admin/orders`: admin order search over the `orders` table with
//! server-side filters, sorting and keyset pagination, at any depth.
//!
//! Sorted by time (the default, newest first), the search walks the `date`
//! partitions from the cursor's day outwards in growing chunks (1, 2, 4, …
//! days) until the page is full, so a page costs the days it reads, not the
//! history. With an id filter (`customer_id`, `q`) one query covers the
//! range: the bloom filters prune. Sorted by total, one query covers the
//! range (at most `MAX_TOTAL_SORT_DAYS`).
//!
//! The status of an order is its latest status event in the lake within
//! `STATUS_SPAN_DAYS` of the day it was placed (an order moves on within
//! days; its detail panel shows the whole timeline). "Currently X" is "entered
//! X and never left it", which the status events say directly: every
//! transition names the status it left.

use std::collections::HashMap;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use object_store::ObjectMeta;
use schemas::OrderStatus;
use schemas::sql::SqlLiteral;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use server::http::HttpError;

use crate::bloom_index::{DateScope, list_files};
use crate::params::{self, Days, Q, bad, ts_sql};
use crate::sql_rows::{partition_dates, rows};
use crate::status_index::Lookup;
use crate::{Dashboard, DashboardError};

pub const STATUS_SPAN_DAYS: i64 = 10;
pub const MAX_TOTAL_SORT_DAYS: i64 = 31;
const COLUMNS: &str = "o.order_id, o.customer_id, o.placed_at, o.total, o.currency, o.item_count, \
                       o.payment_method, o.country, o.date";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    pub status: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub min_total: Option<String>,
    pub max_total: Option<String>,
    pub customer_id: Option<String>,
    pub product_id: Option<String>,
    pub q: Option<String>,
    pub sort: Option<String>,
    pub page_size: Option<usize>,
    pub cursor: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SortKey {
    PlacedAt,
    Total,
}

/// A checked search.
struct Search {
    status: Option<OrderStatus>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    min_total: Option<String>,
    max_total: Option<String>,
    customer_id: Option<String>,
    product_id: Option<String>,
    q: Option<String>,
    key: SortKey,
    descending: bool,
    page_size: usize,
    cursor: Option<(String, String)>,
}

fn decimal(field: &str, value: Option<&str>) -> Result<Option<String>, HttpError> {
    let Some(v) = value.filter(|v| !v.is_empty()) else { return Ok(None) };
    match schemas::Amount::parse_filter(v) {
        Ok(amount) => Ok(Some(amount.to_string())),
        Err(e) => Err(bad(field, format!("an amount is a non-negative decimal such as 25 or 19.99: {v} {e}"))),
    }
}

/// The cursor is the last row's sort key and id, hex-encoded: opaque to
/// callers, checked when it comes back.
fn encode_cursor(key: &str, id: &str) -> String {
    format!("{key}~{id}").bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(cursor: &str, sort: SortKey) -> Result<(String, String), HttpError> {
    let invalid = || bad("cursor", "the cursor is the next_cursor of a previous page with the same sort");
    // Hex digits only (any other byte, a multi-byte character included,
    // could not be sliced in pairs).
    if !cursor.len().is_multiple_of(2) || cursor.len() > 256 || !cursor.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let bytes: Result<Vec<u8>, _> =
        (0..cursor.len()).step_by(2).map(|i| u8::from_str_radix(&cursor[i..i + 2], 16)).collect();
    let text = String::from_utf8(bytes.map_err(|_| invalid())?).map_err(|_| invalid())?;
    let (key, id) = text.split_once('~').ok_or_else(invalid)?;
    let id = uuid::Uuid::parse_str(id).map_err(|_| invalid())?.to_string();
    match sort {
        SortKey::PlacedAt => key.parse::<i64>().map_err(|_| invalid())?,
        SortKey::Total => schemas::Amount::parse(key).map(|_| 0).map_err(|_| invalid())?,
    };
    Ok((key.to_string(), id))
}

impl Search {
    fn parse(q: SearchQuery) -> Result<Search, HttpError> {
        let status = q
            .status
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<OrderStatus>().map_err(|e| bad("status", e.to_string())))
            .transpose()?;
        let (key, descending) = match q.sort.as_deref().unwrap_or("-placed_at") {
            "-placed_at" => (SortKey::PlacedAt, true),
            "placed_at" => (SortKey::PlacedAt, false),
            "-total" => (SortKey::Total, true),
            "total" => (SortKey::Total, false),
            _ => return Err(bad("sort", "sort is placed_at, -placed_at, total or -total")),
        };
        let page_size = q.page_size.unwrap_or(50);
        if !(1..=500).contains(&page_size) {
            return Err(bad("page_size", "page_size is 1 to 500"));
        }
        let from = params::time("from", q.from.as_deref())?;
        let to = params::time("to", q.to.as_deref())?;
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            return Err(bad("from", "from must be before to"));
        }
        let (min_total, max_total) =
            (decimal("min_total", q.min_total.as_deref())?, decimal("max_total", q.max_total.as_deref())?);
        if let (Some(min), Some(max)) = (&min_total, &max_total)
            && schemas::Amount::parse(min).ok() > schemas::Amount::parse(max).ok()
        {
            return Err(bad("min_total", format!("min_total {min} is above max_total {max}: no order could match")));
        }
        let search = Search {
            status,
            from,
            to,
            min_total,
            max_total,
            customer_id: params::id("customer_id", q.customer_id.as_deref())?,
            product_id: params::id("product_id", q.product_id.as_deref())?,
            q: params::id("q", q.q.as_deref())?,
            key,
            descending,
            page_size,
            cursor: q.cursor.as_deref().filter(|c| !c.is_empty()).map(|c| decode_cursor(c, key)).transpose()?,
        };
        if key == SortKey::Total && search.q.is_none() && search.customer_id.is_none() {
            let bounded =
                matches!((search.from, search.to), (Some(f), Some(t)) if t - f <= Duration::days(MAX_TOTAL_SORT_DAYS));
            if !bounded {
                return Err(bad(
                    "sort",
                    format!(
                        "sorting by total needs from and to at most {MAX_TOTAL_SORT_DAYS} days apart (or a customer_id or q)"
                    ),
                ));
            }
        }
        Ok(search)
    }

    /// Filters on the orders themselves (not the partitions, not the status).
    fn order_filters(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(f) = self.from {
            out.push(format!("o.placed_at >= {}", ts_sql(f)));
        }
        if let Some(t) = self.to {
            out.push(format!("o.placed_at < {}", ts_sql(t)));
        }
        if let Some(v) = &self.min_total {
            out.push(format!("o.total >= CAST('{v}' AS DECIMAL(18,4))"));
        }
        if let Some(v) = &self.max_total {
            out.push(format!("o.total <= CAST('{v}' AS DECIMAL(18,4))"));
        }
        if let Some(c) = &self.customer_id {
            out.push(format!("o.customer_id = '{c}'"));
        }
        if let Some(q) = &self.q {
            out.push(format!("(o.order_id = '{q}' OR o.customer_id = '{q}')"));
        }
        if let Some((key, id)) = &self.cursor {
            let op = if self.descending { "<" } else { ">" };
            let value = match self.key {
                SortKey::PlacedAt => {
                    let micros: i64 = key.parse().unwrap_or_default();
                    ts_sql(DateTime::from_timestamp_micros(micros).unwrap_or_default())
                }
                SortKey::Total => format!("CAST('{key}' AS DECIMAL(18,4))"),
            };
            let column = self.column();
            out.push(format!("({column} {op} {value} OR ({column} = {value} AND o.order_id {op} '{id}'))"));
        }
        out
    }

    /// The id a search is narrowed to and the `orders` columns it may be
    /// in: a customer, else `q` (an order's or a customer's id).
    fn id_filter(&self) -> Option<(&'static [&'static str], &str)> {
        match (&self.customer_id, &self.q) {
            (Some(c), _) => Some((&["customer_id"], c.as_str())),
            (None, Some(q)) => Some((&["order_id", "customer_id"], q.as_str())),
            (None, None) => None,
        }
    }

    fn column(&self) -> &'static str {
        match self.key {
            SortKey::PlacedAt => "o.placed_at",
            SortKey::Total => "o.total",
        }
    }

    /// The SQL for orders placed on `days`; `with_status` joins each
    /// order's latest status (for exports; a page looks its statuses up
    /// after the page is cut).
    fn chunk_sql(&self, days: &Days, limit: Option<usize>, with_status: bool) -> String {
        let mut filters = vec![days.predicate("o.date", 0)];
        filters.extend(self.order_filters());
        let mut events_days = days.predicate("date", STATUS_SPAN_DAYS);
        // An order's events carry its customer: their bloom filters prune too.
        if let Some(c) = &self.customer_id {
            events_days.push_str(&format!(" AND customer_id = '{c}'"));
        }
        if let Some(status) = self.status {
            let s = status.as_str();
            if status != OrderStatus::Pending {
                filters.push(format!(
                    "o.order_id IN (SELECT order_id FROM order_events WHERE {events_days} AND status = '{s}')"
                ));
            }
            // Nothing leaves a terminal status (the one state machine in
            // `schemas`): entering it is being in it, and the second scan
            // of the events can go.
            if !status.is_terminal() {
                filters.push(format!(
                    "o.order_id NOT IN (SELECT order_id FROM order_events WHERE {events_days} AND from_status = '{s}')"
                ));
            }
        }
        if let Some(p) = &self.product_id {
            filters.push(format!(
                "o.order_id IN (SELECT order_id FROM order_items WHERE {} AND product_id = '{p}')",
                days.predicate("date", 0)
            ));
        }
        let direction = if self.descending { "DESC" } else { "ASC" };
        let limit = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
        let (status_column, status_join) = match (with_status, self.status) {
            (false, _) => (String::new(), String::new()),
            (true, Some(status)) => (format!(", {} AS status", status.sql()), String::new()),
            (true, None) => (
                format!(", coalesce(s.status, {}) AS status", OrderStatus::Pending.sql()),
                format!(
                    " LEFT JOIN (SELECT order_id, last_value(status ORDER BY occurred_at, stream_seq) AS status FROM order_events \
                     WHERE {events_days} AND status IS NOT NULL GROUP BY order_id) s ON s.order_id = o.order_id"
                ),
            ),
        };
        format!(
            "SELECT {COLUMNS}{status_column} FROM orders o{status_join} WHERE {} ORDER BY {} {direction}, o.order_id {direction}{limit}",
            filters.join(" AND "),
            self.column()
        )
    }

    /// The range of days to read, from `from`/`to` and the cursor.
    fn day_bounds(&self) -> (Option<NaiveDate>, Option<NaiveDate>) {
        let mut lo = self.from.map(|t| t.date_naive());
        let mut hi = self.to.map(|t| (t - Duration::microseconds(1)).date_naive());
        if let (SortKey::PlacedAt, Some((key, _))) = (self.key, &self.cursor) {
            let day = key.parse::<i64>().ok().and_then(DateTime::from_timestamp_micros).map(|t| t.date_naive());
            if self.descending {
                hi = match (hi, day) {
                    (Some(h), Some(d)) => Some(h.min(d)),
                    (h, d) => d.or(h),
                };
            } else {
                lo = match (lo, day) {
                    (Some(l), Some(d)) => Some(l.max(d)),
                    (l, d) => d.or(l),
                };
            }
        }
        (lo, hi)
    }
}

/// One order of a search page: the order as the lake has it, with its
/// latest status.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct OrderRow {
    pub order_id: String,
    pub customer_id: String,
    pub placed_at: DateTime<Utc>,
    pub total: schemas::Amount,
    pub currency: String,
    pub item_count: i32,
    pub payment_method: Option<String>,
    pub country: Option<String>,
    pub status: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchPage {
    pub orders: Vec<OrderRow>,
    /// Pass as `cursor` for the next page (same filters and sort).
    pub next_cursor: Option<String>,
    pub has_more: bool,
    /// Queries the page took (chunks of days).
    pub queries: usize,
    /// Where the statuses came from: `filter`, `index` or `sql`.
    pub statuses_from: &'static str,
    pub elapsed_ms: f64,
}

#[utoipa::path(
    get, path = "/api/admin/orders", tag = "admin",
    responses((status = 200, description = "a keyset page of matching orders with their latest status", body = SearchPage), (status = 400, body = schemas::ApiError))
)]
pub async fn search(State(state): State<Dashboard>, Q(q): Q<SearchQuery>) -> Result<Json<SearchPage>, HttpError> {
    let started = Instant::now();
    let search = Search::parse(q)?;
    // A table not written yet: nothing can match.
    let needed =
        [Some("orders"), search.status.map(|_| "order_events"), search.product_id.as_ref().map(|_| "order_items")];
    let tables = state.lake.tables().await;
    if needed.into_iter().flatten().any(|t| !tables.contains(t)) {
        return Ok(Json(SearchPage {
            orders: Vec::new(),
            next_cursor: None,
            has_more: false,
            queries: 0,
            statuses_from: "filter",
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        }));
    }
    let want = search.page_size + 1;
    let (lo, hi) = search.day_bounds();
    let mut found: Vec<Value> = Vec::new();
    let mut queries = 0;
    let one_query = search.key == SortKey::Total || search.q.is_some() || search.customer_id.is_some();
    if one_query {
        let days = match search.id_filter() {
            // Only the days whose files' bloom filters may hold the id.
            Some((columns, value)) => {
                let scope = DateScope::Between(lo, hi);
                let store = state.lake.store();
                let days = state.blooms.dates_that_may_hold(store, "orders", columns, scope, &[value]).await?;
                (!days.is_empty()).then_some(Days::Only(days))
            }
            None => {
                let days = partition_dates(&state, "orders").await?;
                let mut days = days.into_iter().filter(|d| lo.is_none_or(|l| *d >= l) && hi.is_none_or(|h| *d <= h));
                let first = days.next();
                first.map(|first| Days::Between(first, days.next_back().unwrap_or(first)))
            }
        };
        if let Some(days) = days {
            found = id_lookup_rows(&state, &search.chunk_sql(&days, Some(want), false)).await?;
            queries = 1;
        }
    } else {
        let mut days: Vec<NaiveDate> = partition_dates(&state, "orders")
            .await?
            .into_iter()
            .filter(|d| lo.is_none_or(|l| *d >= l) && hi.is_none_or(|h| *d <= h))
            .collect();
        if search.descending {
            days.reverse();
        }
        for (first, last) in params::growing_chunks(&days) {
            if found.len() >= want {
                break;
            }
            let days = Days::Between(first, last);
            let mut more = rows(&state, &search.chunk_sql(&days, Some(want - found.len()), false)).await?;
            found.append(&mut more);
            queries += 1;
            if started.elapsed() > state.settings.query_timeout {
                return Err(DashboardError::Timeout(state.settings.query_timeout).into());
            }
        }
    }
    let has_more = found.len() > search.page_size;
    found.truncate(search.page_size);
    let (statuses, statuses_from) = match search.status {
        Some(status) => (found.iter().map(|r| (id_of(r), status.as_str().to_string())).collect(), "filter"),
        None => latest_statuses(&state, &found).await?,
    };
    for row in &mut found {
        let status = statuses.get(&id_of(row)).cloned().unwrap_or_else(|| OrderStatus::Pending.as_str().to_string());
        row["status"] = json!(status);
        if let Some(map) = row.as_object_mut() {
            map.remove("date");
        }
    }
    let next_cursor = if has_more { found.last().map(|r| cursor_of(r, search.key)) } else { None };
    let orders = found
        .into_iter()
        .map(serde_json::from_value::<OrderRow>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DashboardError::Encode(format!("a search row: {e}")))?;
    Ok(Json(SearchPage {
        orders,
        next_cursor,
        has_more,
        queries,
        statuses_from,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    }))
}

/// Rows of a query that finds a few orders by id across many daily files
/// (a customer's whole history, a page's statuses): much of its time goes
/// to opening each file and reading its bloom filter, which waits on reads
/// more than it computes, so it is split more ways than there are cores to
/// overlap those waits. One customer over 405 files: p50 353 ms with 2
/// partitions, 326 with 8, 307 with 16 (docs/benchmarks.md).
const ID_LOOKUP_PARTITIONS: usize = 8;

async fn id_lookup_rows(state: &Dashboard, sql: &str) -> Result<Vec<Value>, HttpError> {
    let (limit, timeout) = (state.settings.row_limit, state.settings.query_timeout);
    let collected = state.lake.collect_wide(sql, limit, timeout, ID_LOOKUP_PARTITIONS).await?;
    crate::sql_rows::json_rows(&collected.batches)
}

fn id_of(row: &Value) -> String {
    row.get("order_id").and_then(Value::as_str).unwrap_or_default().to_string()
}

fn cursor_of(row: &Value, key: SortKey) -> String {
    let value = match key {
        SortKey::PlacedAt => row
            .get("placed_at")
            .and_then(Value::as_str)
            .and_then(|t| params::time("placed_at", Some(t)).ok().flatten())
            .map(|t| t.timestamp_micros().to_string())
            .unwrap_or_default(),
        SortKey::Total => match row.get("total") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        },
    };
    encode_cursor(&value, &id_of(row))
}

/// The latest status of each order on the page, from the events of the
/// days each order was placed on and `STATUS_SPAN_DAYS` after: only those
/// partitions are read, so one customer's orders spread over a year cost
/// their few weeks of events, not the year's. The files' summaries in
/// [`crate::status_index`] answer ("summaries"); SQL does ("events") when
/// some file has none yet.
///
/// A page in time order covers one or two placing days, and the hundreds
/// of pages after it the same ones: its whole span is summarised, so that
/// they find every file ready whatever days their own ids are on. A page
/// scattered over months (one customer's orders) is summarised only on
/// the days the bloom filters say its ids may be on.
async fn latest_statuses(
    state: &Dashboard,
    page: &[Value],
) -> Result<(HashMap<String, String>, &'static str), HttpError> {
    let mut out = HashMap::new();
    if page.is_empty() || !state.lake.has_table("order_events").await {
        return Ok((out, "events"));
    }
    let placed = page.iter().filter_map(|r| {
        r.get("date").and_then(Value::as_str).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    });
    let span = params::widen(placed, STATUS_SPAN_DAYS);
    let ids: Vec<String> = page.iter().map(id_of).collect();
    let values: Vec<&str> = ids.iter().map(String::as_str).collect();
    // One listing of the span serves the summaries, the bloom filters and
    // (through the days they keep) the SQL.
    let files = list_files(state.lake.store(), "order_events", DateScope::Only(&span)).await?;
    let mut unsummarised = Vec::new();
    let mut from_summaries = |files: &[(NaiveDate, ObjectMeta)]| {
        Ok::<_, DashboardError>(match state.statuses.latest(files, &values)? {
            Lookup::Found(found) => {
                Some(found.into_iter().map(|(id, status)| (id, status.as_str().to_string())).collect())
            }
            Lookup::Unsummarised(files) => {
                unsummarised = files;
                None
            }
            Lookup::Unanswerable => None,
        })
    };
    let whole_span = span.len() <= 2 * (STATUS_SPAN_DAYS as usize + 1);
    if whole_span && let Some(found) = from_summaries(&files)? {
        return Ok((found, "summaries"));
    }
    let days = state.blooms.dates_among(state.lake.store(), &files, &["order_id"], &values).await?;
    if days.is_empty() {
        return Ok((out, "events"));
    }
    if !whole_span {
        let on_days: Vec<(NaiveDate, ObjectMeta)> = files.into_iter().filter(|(d, _)| days.contains(d)).collect();
        if let Some(found) = from_summaries(&on_days)? {
            return Ok((found, "summaries"));
        }
    }
    let ids: Vec<String> = ids.iter().map(|id| format!("'{id}'")).collect();
    let sql = format!(
        "SELECT order_id, status FROM order_events WHERE {} \
         AND status IS NOT NULL AND order_id IN ({}) ORDER BY occurred_at, stream_seq",
        Days::Only(days).predicate("date", 0),
        ids.join(", ")
    );
    for row in id_lookup_rows(state, &sql).await? {
        if let Some(status) = row.get("status").and_then(Value::as_str) {
            out.insert(id_of(&row), status.to_string());
        }
    }
    state.statuses.summarise_in_background(&state.lake, unsummarised);
    Ok((out, "events"))
}

/// A search as an export: the same filters, every matching row, read a
/// day at a time in the search's order (bounded memory at any size).
pub struct ExportPlan {
    search: Search,
}

impl ExportPlan {
    pub fn parse(q: SearchQuery) -> Result<ExportPlan, HttpError> {
        Ok(ExportPlan { search: Search::parse(SearchQuery { cursor: None, ..q })? })
    }

    /// The days to read, in order.
    pub async fn days(&self, state: &Dashboard) -> Result<Vec<NaiveDate>, DashboardError> {
        let (lo, hi) = self.search.day_bounds();
        let mut days: Vec<NaiveDate> = partition_dates(state, "orders")
            .await?
            .into_iter()
            .filter(|d| lo.is_none_or(|l| *d >= l) && hi.is_none_or(|h| *d <= h))
            .collect();
        if self.search.descending && self.search.key == SortKey::PlacedAt {
            days.reverse();
        }
        Ok(days)
    }

    /// One day's rows with their status; `None` for the whole range at once
    /// (sorted by total: one query, ordered by the engine).
    pub fn sql(&self, day: Option<NaiveDate>, limit: Option<usize>) -> String {
        match day {
            Some(d) => self.search.chunk_sql(&Days::Between(d, d), limit, true),
            None => {
                let first = self.search.from.map(|t| t.date_naive()).or(NaiveDate::from_ymd_opt(1970, 1, 1));
                let last = self.search.to.map(|t| t.date_naive()).or(NaiveDate::from_ymd_opt(9999, 12, 31));
                let days = Days::Between(first.unwrap_or_default(), last.unwrap_or_default());
                self.search.chunk_sql(&days, limit, true)
            }
        }
    }

    /// Sorted by total the export is one ordered query, not day by day.
    pub fn by_day(&self) -> bool {
        self.search.key == SortKey::PlacedAt
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let id = uuid::Uuid::now_v7().to_string();
        let c = encode_cursor("1732200000000000", &id);
        assert_eq!(decode_cursor(&c, SortKey::PlacedAt).unwrap(), ("1732200000000000".into(), id.clone()));
        assert!(decode_cursor(&c[1..], SortKey::PlacedAt).is_err());
        assert!(decode_cursor(&encode_cursor("x' OR 1=1", &id), SortKey::PlacedAt).is_err());
        assert!(decode_cursor(&encode_cursor("12.50", "not-a-uuid"), SortKey::Total).is_err());
        assert!(decode_cursor(&encode_cursor("12.50", &id), SortKey::Total).is_ok());
    }

    #[test]
    fn parameters_are_checked() {
        let parse = |q: SearchQuery| Search::parse(q).err().map(|e| e.body.field.unwrap_or_default());
        assert_eq!(parse(SearchQuery { status: Some("lost".into()), ..Default::default() }), Some("status".into()));
        assert_eq!(parse(SearchQuery { sort: Some("name".into()), ..Default::default() }), Some("sort".into()));
        assert_eq!(parse(SearchQuery { page_size: Some(0), ..Default::default() }), Some("page_size".into()));
        assert_eq!(
            parse(SearchQuery { min_total: Some("1e9".into()), ..Default::default() }),
            Some("min_total".into())
        );
        assert_eq!(parse(SearchQuery { sort: Some("-total".into()), ..Default::default() }), Some("sort".into()));
        assert_eq!(parse(SearchQuery { min_total: Some("19.99".into()), ..Default::default() }), None);
        assert_eq!(parse(SearchQuery { min_total: Some("-5".into()), ..Default::default() }), Some("min_total".into()));
        let crossed =
            SearchQuery { min_total: Some("50".into()), max_total: Some("9.99".into()), ..Default::default() };
        assert_eq!(parse(crossed), Some("min_total".into()));
        assert_eq!(parse(SearchQuery { cursor: Some("a\u{e9}b".into()), ..Default::default() }), Some("cursor".into()));
    }

    fn text() -> impl proptest::strategy::Strategy<Value = Option<String>> {
        use proptest::prelude::*;
        prop_oneof![
            Just(None),
            any::<String>().prop_map(Some),
            "[0-9a-f\\-+.:TZ~ ]{0,40}".prop_map(Some),
            "-?[0-9]{0,30}(\\.[0-9]{0,30})?".prop_map(Some),
        ]
    }

    proptest::proptest! {
        /// Whatever the query string holds, parsing answers Ok or a 4xx
        /// naming a field; it never panics.
        #[test]
        fn any_parameters_parse_or_are_refused_without_panicking(
            status in text(), from in text(), to in text(), min_total in text(), max_total in text(),
            customer_id in text(), product_id in text(), q in text(), sort in text(),
            page_size in proptest::option::of(proptest::num::usize::ANY), cursor in text(),
        ) {
            let query = || SearchQuery {
                status: status.clone(), from: from.clone(), to: to.clone(), min_total: min_total.clone(),
                max_total: max_total.clone(), customer_id: customer_id.clone(), product_id: product_id.clone(),
                q: q.clone(), sort: sort.clone(), page_size, cursor: cursor.clone(),
            };
            if let Err(e) = Search::parse(query()) {
                proptest::prop_assert!(e.status.is_client_error());
                proptest::prop_assert!(e.body.field.is_some(), "{:?}", e.body);
            }
            if let Err(e) = ExportPlan::parse(query()) {
                proptest::prop_assert!(e.status.is_client_error());
            }
            for sort in [SortKey::PlacedAt, SortKey::Total] {
                let _ = decode_cursor(cursor.as_deref().unwrap_or(""), sort);
            }
        }
    }
}
