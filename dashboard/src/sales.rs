//! The sales figures the Overview and Sales pages show, as typed answers
//! with exact money ([`Amount`]): today's gross and net sales with the
//! payment success rate, revenue per window against the period before,
//! and the best sellers.
//!
//! What each figure means (docs/dashboard.md says the same):
//! - **gross sales**: the totals of the orders placed, whatever became of
//!   them;
//! - **net sales**: the totals of the orders confirmed (paid) on the day,
//!   less the refunds issued on the day;
//! - **payment success**: approved / (approved + declined). An order
//!   cancelled for want of stock never reached payment, so it counts in
//!   neither.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use schemas::sql::SqlLiteral;
use schemas::{Amount, OrderStatus};
use serde::{Deserialize, Serialize};
use server::http::HttpError;

use crate::Dashboard;
use crate::params::{self, Q, bad, partitions, ts_sql};
use crate::rollups::{RevenueRow, Served};
use crate::sql_rows::{has, typed_rows};

#[derive(Deserialize)]
pub struct SummaryQuery {
    date: Option<String>,
    currency: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub date: NaiveDate,
    pub currency: String,
    /// Orders placed on the day.
    pub orders: u64,
    /// The placed orders' totals.
    pub gross_sales: Amount,
    /// Confirmed on the day, less the day's refunds.
    pub net_sales: Amount,
    pub refunds: Amount,
    /// Orders confirmed (paid) on the day.
    pub confirmed: u64,
    /// Net sales per confirmed order; null before the first.
    pub average_order: Option<Amount>,
    pub payments_approved: u64,
    pub payments_declined: u64,
    /// approved / (approved + declined); null before the first payment.
    pub payment_success_rate: Option<f64>,
    /// Cancelled on the day, by reason (out_of_stock, payment_declined, ...).
    pub cancelled: BTreeMap<String, u64>,
    pub live: serde_json::Value,
}

#[derive(Deserialize)]
struct PlacedRow {
    orders: u64,
    gross: Option<Amount>,
}

#[derive(Deserialize)]
struct DayEventsRow {
    confirmed: u64,
    confirmed_total: Option<Amount>,
    refunds: Option<Amount>,
}

#[derive(Deserialize)]
struct CancelRow {
    reason: Option<String>,
    n: u64,
}

/// `GET /api/dashboard/summary`: one day's (today's, UTC) sales.
#[utoipa::path(
    get, path = "/api/dashboard/summary", tag = "dashboard",
    params(("date" = Option<String>, Query, description = "YYYY-MM-DD, default today (UTC)"), ("currency" = Option<String>, Query)),
    responses((status = 200, body = Summary), (status = 400, body = schemas::ApiError))
)]
pub async fn summary(State(state): State<Dashboard>, Q(q): Q<SummaryQuery>) -> Result<Json<Summary>, HttpError> {
    let date = params::date("date", q.date.as_deref())?.unwrap_or_else(|| Utc::now().date_naive());
    let currency = params::currency(q.currency.as_deref())?;
    let mut summary = Summary {
        date,
        currency: currency.clone(),
        orders: 0,
        gross_sales: Amount::ZERO,
        net_sales: Amount::ZERO,
        refunds: Amount::ZERO,
        confirmed: 0,
        average_order: None,
        payments_approved: 0,
        payments_declined: 0,
        payment_success_rate: None,
        cancelled: BTreeMap::new(),
        live: serde_json::to_value(state.live.snapshot()).unwrap_or_default(),
    };
    let on_day = format!("date = '{date}' AND currency = '{currency}'");
    let placed_sql = format!("SELECT count(*) AS orders, sum(total) AS gross FROM orders WHERE {on_day}");
    let events_sql = format!(
        "SELECT count(*) FILTER (WHERE status = {confirmed}) AS confirmed, \
         sum(order_total) FILTER (WHERE status = {confirmed}) AS confirmed_total, \
         sum(refund_amount) FILTER (WHERE kind = {refund}) AS refunds \
         FROM order_events WHERE {on_day}",
        confirmed = OrderStatus::Confirmed.sql(),
        refund = schemas::EventKind::RefundIssued.sql(),
    );
    let cancel_sql = format!(
        "SELECT reason, count(*) AS n FROM order_events WHERE {on_day} AND status = {} GROUP BY reason",
        OrderStatus::Cancelled.sql()
    );
    let (with_orders, with_events) = (has(&state, &["orders"]).await, has(&state, &["order_events"]).await);
    if with_orders && let Some(placed) = typed_rows::<PlacedRow>(&state, &placed_sql).await?.into_iter().next() {
        summary.orders = placed.orders;
        summary.gross_sales = placed.gross.unwrap_or_default();
    }
    if with_events {
        let (day, cancels) = tokio::try_join!(
            typed_rows::<DayEventsRow>(&state, &events_sql),
            typed_rows::<CancelRow>(&state, &cancel_sql)
        )?;
        if let Some(day) = day.into_iter().next() {
            summary.confirmed = day.confirmed;
            summary.refunds = day.refunds.unwrap_or_default();
            summary.net_sales = day.confirmed_total.unwrap_or_default() - summary.refunds;
            summary.average_order = day.confirmed_total.unwrap_or_default().mean_over(day.confirmed);
        }
        for row in cancels {
            *summary.cancelled.entry(row.reason.unwrap_or_else(|| "unknown".into())).or_default() += row.n;
        }
    }
    summary.payments_approved = summary.confirmed;
    summary.payments_declined =
        summary.cancelled.get(schemas::CancelReason::PaymentDeclined.as_str()).copied().unwrap_or(0);
    let paid_or_not = summary.payments_approved + summary.payments_declined;
    summary.payment_success_rate = (paid_or_not > 0).then(|| summary.payments_approved as f64 / paid_or_not as f64);
    Ok(Json(summary))
}

#[derive(Deserialize)]
pub struct RevenueQuery {
    from: Option<String>,
    to: Option<String>,
    currency: Option<String>,
    window: Option<String>,
    category: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CategoryTotal {
    pub category: String,
    pub current: Amount,
    pub previous: Amount,
    /// Null when the comparison is incomplete or the previous is zero.
    pub change: Option<f64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Totals {
    pub current: Amount,
    pub previous: Amount,
    pub change: Option<f64>,
}

/// Whether the period before is a fair comparison.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Comparison {
    pub previous_from: DateTime<Utc>,
    pub previous_to: DateTime<Utc>,
    /// The first day the lake holds sales on (null: none yet).
    pub data_from: Option<NaiveDate>,
    /// False when the previous period starts before the first sales: its
    /// total is then partial and no change is given.
    pub complete: bool,
    pub note: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Revenue {
    pub window: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub currency: String,
    /// Gross sales (placed order lines) per window and category.
    pub windows: Vec<RevenueRow>,
    /// The previous period's windows, shifted onto this period's.
    pub previous: Vec<RevenueRow>,
    pub categories: Vec<CategoryTotal>,
    pub totals: Totals,
    pub comparison: Comparison,
    pub served: Served,
}

/// Calendar windows built from the daily rows: ISO weeks (from Monday)
/// and calendar months.
#[derive(Clone, Copy, PartialEq)]
enum Calendar {
    Week,
    Month,
}

impl Calendar {
    fn start(self, day: NaiveDate) -> NaiveDate {
        match self {
            Calendar::Week => day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
            Calendar::Month => day.with_day(1).unwrap_or(day),
        }
    }

    fn next(self, start: NaiveDate) -> NaiveDate {
        match self {
            Calendar::Week => start + Duration::days(7),
            Calendar::Month => start.checked_add_months(chrono::Months::new(1)).unwrap_or(start),
        }
    }

    fn back(self, start: NaiveDate, windows: usize) -> NaiveDate {
        match self {
            Calendar::Week => start - Duration::days(7 * windows as i64),
            Calendar::Month => start.checked_sub_months(chrono::Months::new(windows as u32)).unwrap_or(start),
        }
    }
}

fn change(current: Amount, previous: Amount, comparable: bool) -> Option<f64> {
    (comparable && previous.0 > 0).then(|| (current.to_f64() - previous.to_f64()) / previous.to_f64())
}

/// `GET /api/dashboard/revenue`: gross sales per window (1m, 1h, 1d, 1w,
/// 1mo) by category over `[from, to)`, beside the same number of windows
/// before it.
#[utoipa::path(
    get, path = "/api/dashboard/revenue", tag = "dashboard",
    params(("window" = Option<String>, Query, description = "1m, 1h (default), 1d, 1w or 1mo"), ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("currency" = Option<String>, Query), ("category" = Option<String>, Query)),
    responses((status = 200, body = Revenue), (status = 400, body = schemas::ApiError))
)]
pub async fn revenue(State(state): State<Dashboard>, Q(q): Q<RevenueQuery>) -> Result<Json<Revenue>, HttpError> {
    let name = q.window.as_deref().unwrap_or("1h");
    let calendar = match name {
        "1w" => Some(Calendar::Week),
        "1mo" => Some(Calendar::Month),
        _ => None,
    };
    let base = if calendar.is_some() { "1d" } else { name };
    let Some((_, window)) = crate::rollups::WINDOWS.iter().find(|(n, _)| *n == base) else {
        return Err(bad("window", "window is 1m, 1h, 1d, 1w or 1mo"));
    };
    let default_span = if calendar.is_some() { Duration::days(91) } else { window.default_span };
    let (from, to) = params::range(q.from.as_deref(), q.to.as_deref(), default_span, window.max_span)?;
    let currency = params::currency(q.currency.as_deref())?;
    let category = params::text("category", q.category.as_deref())?;
    // Whole windows, so none straddles the two periods; the previous period
    // is as many windows again, before.
    let (from, to, previous_from) = match calendar {
        None => {
            let (from, to) = (window.floor(from), window.ceil(to));
            (from, to, from - (to - from))
        }
        Some(cal) => {
            let first = cal.start(from.date_naive());
            let mut end = first;
            let mut count = 0;
            while params::midnight(end) < to {
                end = cal.next(end);
                count += 1;
            }
            (params::midnight(first), params::midnight(end), params::midnight(cal.back(first, count)))
        }
    };
    let filters = format!(
        "AND currency = '{currency}' {}",
        category.map(|c| format!("AND category = '{c}'")).unwrap_or_default()
    );
    let (found, served) = crate::rollups::revenue_rows(&state, *window, previous_from, to, &filters).await?;
    let (mut windows, mut previous) = (Vec::new(), Vec::new());
    match calendar {
        None => {
            let length = to - from;
            for row in found {
                if row.window_start >= from {
                    windows.push(row);
                } else {
                    previous.push(RevenueRow { window_start: row.window_start + length, ..row });
                }
            }
        }
        Some(cal) => {
            let starts = calendar_starts(cal, from.date_naive(), to.date_naive());
            let before = calendar_starts(cal, previous_from.date_naive(), from.date_naive());
            let mut sums: BTreeMap<(bool, usize, String), (Amount, i64)> = BTreeMap::new();
            for row in found {
                let day = row.window_start.date_naive();
                let (in_current, list) = if row.window_start >= from { (true, &starts) } else { (false, &before) };
                let Some(index) = list.iter().rposition(|s| *s <= day) else { continue };
                let sum = sums.entry((in_current, index, row.category)).or_default();
                sum.0 += row.revenue;
                sum.1 += row.units;
            }
            for ((in_current, index, category), (revenue, units)) in sums {
                // Previous windows land on the current window of the same index.
                let window_start = params::midnight(starts[index.min(starts.len() - 1)]);
                let row = RevenueRow { window_start, category, revenue, units };
                if in_current { windows.push(row) } else { previous.push(row) }
            }
        }
    }
    let data_from =
        crate::sql_rows::partition_dates(&state, schemas::tables::Table::OrderItems.name()).await?.first().copied();
    let complete = data_from.is_some_and(|first| params::midnight(first) <= previous_from);
    let note = (!complete).then(|| match data_from {
        Some(first) => format!(
            "the previous period starts {} but sales begin {first}: its total is partial, so no change is shown",
            previous_from.date_naive()
        ),
        None => "no sales yet".to_string(),
    });
    let mut categories: BTreeMap<String, (Amount, Amount)> = BTreeMap::new();
    for row in &windows {
        categories.entry(row.category.clone()).or_default().0 += row.revenue;
    }
    for row in &previous {
        categories.entry(row.category.clone()).or_default().1 += row.revenue;
    }
    let mut categories: Vec<CategoryTotal> = categories
        .into_iter()
        .map(|(category, (current, before))| CategoryTotal {
            category,
            current,
            previous: before,
            change: change(current, before, complete),
        })
        .collect();
    categories.sort_by(|a, b| b.current.cmp(&a.current).then_with(|| a.category.cmp(&b.category)));
    let current: Amount = windows.iter().map(|r| r.revenue).sum();
    let before: Amount = previous.iter().map(|r| r.revenue).sum();
    Ok(Json(Revenue {
        window: name.to_string(),
        from,
        to,
        currency,
        windows,
        previous,
        categories,
        totals: Totals { current, previous: before, change: change(current, before, complete) },
        comparison: Comparison { previous_from, previous_to: from, data_from, complete, note },
        served,
    }))
}

/// The starts of the calendar windows covering `[from, to)`.
fn calendar_starts(cal: Calendar, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    let mut starts = vec![cal.start(from)];
    loop {
        let next = cal.next(*starts.last().unwrap_or(&from));
        if next >= to || starts.len() > 1000 {
            return starts;
        }
        starts.push(next);
    }
}

#[derive(Deserialize)]
pub struct TopQuery {
    from: Option<String>,
    to: Option<String>,
    currency: Option<String>,
    limit: Option<usize>,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct TopProduct {
    pub product_id: String,
    pub name: Option<String>,
    pub category: Option<String>,
    pub units: i64,
    pub revenue: Amount,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TopProducts {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub currency: String,
    pub products: Vec<TopProduct>,
    pub served: Served,
}

/// `GET /api/dashboard/top-products`: the best sellers by revenue over
/// `[from, to)`, named from the catalog (the live one where the lake's
/// products table does not know them yet).
#[utoipa::path(
    get, path = "/api/dashboard/top-products", tag = "dashboard",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("currency" = Option<String>, Query), ("limit" = Option<usize>, Query, description = "1 to 100, default 10")),
    responses((status = 200, body = TopProducts), (status = 400, body = schemas::ApiError))
)]
pub async fn top_products(State(state): State<Dashboard>, Q(q): Q<TopQuery>) -> Result<Json<TopProducts>, HttpError> {
    let (from, to) = params::range(q.from.as_deref(), q.to.as_deref(), Duration::days(7), Duration::days(366))?;
    let currency = params::currency(q.currency.as_deref())?;
    let limit = q.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(bad("limit", "limit is 1 to 100"));
    }
    let mut served = Served::default();
    let mut products = if has(&state, &["order_items"]).await {
        let (top, by) =
            crate::rollups::top_product_rows(&state, from, to, &format!("AND currency = '{currency}'"), limit).await?;
        served = by;
        let sql = if has(&state, &["products"]).await {
            format!(
                "SELECT t.product_id, p.name, p.category, t.units, t.revenue FROM ({top}) t \
                 LEFT JOIN products p ON p.product_id = t.product_id ORDER BY t.revenue DESC, t.product_id"
            )
        } else {
            format!("SELECT product_id, NULL AS name, NULL AS category, units, revenue FROM ({top})")
        };
        typed_rows::<TopProduct>(&state, &sql).await?
    } else {
        Vec::new()
    };
    if products.iter().any(|p| p.name.is_none() || p.category.is_none()) {
        name_from_catalog(&state, &mut products, from, to).await;
    }
    Ok(Json(TopProducts { from, to, currency, products, served }))
}

/// Fills names and categories the lake's products table lacks: from the
/// live catalog, else the category the order lines carried.
async fn name_from_catalog(state: &Dashboard, products: &mut [TopProduct], from: DateTime<Utc>, to: DateTime<Utc>) {
    match processor::catalog::product_views(&state.js, state.settings.low_stock_threshold).await {
        Ok(catalog) => {
            let by_id: HashMap<&str, &schemas::ProductView> =
                catalog.iter().map(|p| (p.product_id.as_str(), p)).collect();
            for product in products.iter_mut() {
                if let Some(known) = by_id.get(product.product_id.as_str()) {
                    product.name.get_or_insert_with(|| known.name.clone());
                    product.category.get_or_insert_with(|| known.category.clone());
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the catalog to name the best sellers"),
    }
    let unnamed: Vec<String> = products
        .iter()
        .filter(|p| p.category.is_none() && crate::params::id("product_id", Some(&p.product_id)).is_ok())
        .map(|p| format!("'{}'", p.product_id))
        .collect();
    if unnamed.is_empty() || !has(state, &["order_items"]).await {
        return;
    }
    #[derive(Deserialize)]
    struct Line {
        product_id: String,
        category: String,
    }
    let sql = format!(
        "SELECT product_id, min(category) AS category FROM order_items WHERE {} AND placed_at >= {} AND placed_at < {} \
         AND product_id IN ({}) GROUP BY product_id",
        partitions("date", from, to),
        ts_sql(from),
        ts_sql(to),
        unnamed.join(", ")
    );
    match typed_rows::<Line>(state, &sql).await {
        Ok(lines) => {
            for line in lines {
                if let Some(p) = products.iter_mut().find(|p| p.product_id == line.product_id) {
                    p.category.get_or_insert(line.category);
                }
            }
        }
        Err(e) => tracing::warn!(error = ?e.body, "cannot read the best sellers' categories"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn calendar_windows_start_on_monday_and_the_first() {
        assert_eq!(Calendar::Week.start(d("2026-12-03")), d("2026-11-30"));
        assert_eq!(Calendar::Month.start(d("2026-12-03")), d("2026-12-01"));
        assert_eq!(Calendar::Month.back(d("2026-12-01"), 3), d("2026-09-01"));
        assert_eq!(
            calendar_starts(Calendar::Week, d("2026-11-30"), d("2026-12-15")),
            [d("2026-11-30"), d("2026-12-07"), d("2026-12-14")]
        );
    }

    #[test]
    fn no_change_without_a_whole_comparison() {
        assert_eq!(change(Amount(200), Amount(100), true), Some(1.0));
        assert_eq!(change(Amount(200), Amount(100), false), None);
        assert_eq!(change(Amount(200), Amount::ZERO, true), None);
    }
}
