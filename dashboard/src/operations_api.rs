//! `GET /api/analytics/operations`: how the operation runs over a range of
//! days, from `orders`, `order_items` and `order_events`: average order
//! value and cancellations (by reason) per day, the time from accepted to
//! confirmed, shipped and delivered, payment methods with their declines,
//! and the products most often in orders cancelled out of stock.
//!
//! An out-of-stock cancellation does not say which line ran out, so a
//! product's count is of the orders holding it that were cancelled out of
//! stock (every line of such an order counts).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use chrono::{NaiveDate, Utc};
use schemas::{Amount, CancelReason, OrderStatus};
use serde::{Deserialize, Serialize};
use server::http::HttpError;

use crate::Dashboard;
use crate::params::{self, Q, invalid, unprocessable};
use crate::sql_rows::{has, typed_rows};

/// Days a range may span at most.
pub const MAX_DAYS: i64 = 366;
/// Days after an order its events are looked for (delivery takes days).
const EVENT_SPAN_DAYS: i64 = 14;
/// An answer is kept this long: the range's closed days do not change, and
/// today's figures may lag by this much.
pub const KEEP_FOR: Duration = Duration::from_secs(60);
const KEPT_ANSWERS: usize = 32;

#[derive(Deserialize)]
pub struct OperationsQuery {
    from: Option<String>,
    to: Option<String>,
    currency: Option<String>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OperationsDay {
    pub day: NaiveDate,
    pub orders: u64,
    pub gross_sales: Amount,
    /// Gross sales per order placed.
    pub average_order: Option<Amount>,
    /// Cancellations recorded that day, by reason.
    pub cancelled: BTreeMap<String, u64>,
    /// Cancellations over orders placed that day.
    pub cancellation_rate: Option<f64>,
}

/// From accepted to a status: how many orders reached it, and how long it took.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Stage {
    pub status: OrderStatus,
    pub orders: u64,
    pub mean_hours: Option<f64>,
    pub p50_hours: Option<f64>,
    pub p90_hours: Option<f64>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentMethodFigures {
    pub method: String,
    pub orders: u64,
    /// Of the range's orders.
    pub share: f64,
    /// Orders cancelled with a declined payment.
    pub declined: u64,
    pub failure_rate: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct OutOfStock {
    pub product_id: String,
    /// Order lines of the product in the range.
    pub lines: u64,
    /// Of them, in orders cancelled out of stock.
    pub out_of_stock: u64,
    pub rate: f64,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Operations {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub currency: String,
    pub days: Vec<OperationsDay>,
    pub orders: u64,
    pub average_order: Option<Amount>,
    pub cancelled: BTreeMap<String, u64>,
    pub cancellation_rate: Option<f64>,
    pub fulfilment: Vec<Stage>,
    pub payment_methods: Vec<PaymentMethodFigures>,
    /// Declined payments over orders placed.
    pub payment_failure_rate: Option<f64>,
    /// The products most often in orders cancelled out of stock (20 at most).
    pub out_of_stock: Vec<OutOfStock>,
}

type Key = (NaiveDate, NaiveDate, String);

#[derive(Default)]
pub struct OperationsCache {
    kept: Mutex<HashMap<Key, (Instant, Arc<Operations>)>>,
}

impl OperationsCache {
    fn get(&self, key: &Key) -> Option<Arc<Operations>> {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.get(key).filter(|(at, _)| at.elapsed() < KEEP_FOR).map(|(_, v)| v.clone())
    }

    fn put(&self, key: Key, value: Arc<Operations>) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.retain(|_, (at, _)| at.elapsed() < KEEP_FOR);
        if kept.len() < KEPT_ANSWERS {
            kept.insert(key, (Instant::now(), value));
        }
    }
}

#[derive(Deserialize)]
struct DayRow {
    day: NaiveDate,
    orders: u64,
    gross: Option<Amount>,
}

#[derive(Deserialize)]
struct CancelRow {
    day: NaiveDate,
    reason: Option<String>,
    n: u64,
}

#[derive(Deserialize)]
struct MethodRow {
    method: String,
    orders: u64,
    declined: u64,
}

/// The SQL of each figure (the benchmark gives DuckDB the same text).
pub fn queries(from: NaiveDate, to: NaiveDate, currency: &str) -> [String; 5] {
    let days = format!("date BETWEEN '{from}' AND '{to}'");
    let event_days = format!("date BETWEEN '{from}' AND '{}'", to + chrono::Duration::days(EVENT_SPAN_DAYS));
    let cancelled = OrderStatus::Cancelled.as_str();
    let cancelled_for = |reason: CancelReason| {
        format!(
            "SELECT DISTINCT order_id FROM order_events WHERE {event_days} AND status = '{cancelled}' AND reason = '{}'",
            reason.as_str()
        )
    };
    let reached: Vec<String> = [OrderStatus::Confirmed, OrderStatus::Shipped, OrderStatus::Delivered]
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    [
        format!(
            "SELECT date AS day, count(*) AS orders, sum(total) AS gross FROM orders \
             WHERE {days} AND currency = '{currency}' GROUP BY date ORDER BY date"
        ),
        format!(
            "SELECT date AS day, reason, count(*) AS n FROM order_events \
             WHERE {days} AND status = '{cancelled}' AND currency = '{currency}' GROUP BY 1, 2"
        ),
        format!(
            "WITH placed AS (SELECT order_id, received_at FROM orders WHERE {days} AND currency = '{currency}'), \
             reached AS (SELECT order_id, status, min(occurred_at) AS at FROM order_events \
               WHERE {event_days} AND status IN ({}) GROUP BY order_id, status), \
             took AS (SELECT r.status, (date_part('epoch', r.at) - date_part('epoch', p.received_at)) / 3600.0 AS hours \
               FROM reached r JOIN placed p ON r.order_id = p.order_id) \
             SELECT status, count(*) AS orders, avg(hours) AS mean_hours, \
               percentile_cont(0.5) WITHIN GROUP (ORDER BY hours) AS p50_hours, \
               percentile_cont(0.9) WITHIN GROUP (ORDER BY hours) AS p90_hours FROM took GROUP BY status",
            reached.join(", ")
        ),
        format!(
            "SELECT coalesce(o.payment_method, 'unknown') AS method, count(*) AS orders, count(d.order_id) AS declined \
             FROM orders o LEFT JOIN ({}) d ON o.order_id = d.order_id \
             WHERE o.{days} AND o.currency = '{currency}' GROUP BY 1 ORDER BY 2 DESC, 1",
            cancelled_for(CancelReason::PaymentDeclined)
        ),
        format!(
            "SELECT i.product_id, count(*) AS lines, count(s.order_id) AS out_of_stock, \
             CAST(count(s.order_id) AS DOUBLE) / count(*) AS rate \
             FROM order_items i LEFT JOIN ({}) s ON i.order_id = s.order_id \
             WHERE i.{days} AND i.currency = '{currency}' GROUP BY i.product_id HAVING count(s.order_id) > 0 \
             ORDER BY out_of_stock DESC, i.product_id LIMIT 20",
            cancelled_for(CancelReason::OutOfStock)
        ),
    ]
}

/// `GET /api/analytics/operations`
#[utoipa::path(
    get, path = "/api/analytics/operations", tag = "analytics",
    params(("from" = Option<String>, Query, description = "YYYY-MM-DD, default 29 days before to"),
        ("to" = Option<String>, Query, description = "YYYY-MM-DD, default today (UTC)"), ("currency" = Option<String>, Query)),
    responses((status = 200, body = Operations), (status = 422, body = schemas::ApiError))
)]
pub async fn operations(
    State(state): State<Dashboard>,
    Q(q): Q<OperationsQuery>,
) -> Result<Json<Operations>, HttpError> {
    let date = |field: &str, v: Option<&str>| params::date(field, v).map_err(unprocessable);
    let to = date("to", q.to.as_deref())?.unwrap_or_else(|| Utc::now().date_naive());
    let from = date("from", q.from.as_deref())?.unwrap_or(to - chrono::Duration::days(29));
    if from > to {
        return Err(invalid("from", "from is on or before to"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(invalid("from", format!("a range is at most {MAX_DAYS} days")));
    }
    let currency = params::currency(q.currency.as_deref()).map_err(unprocessable)?;
    let key = (from, to, currency.clone());
    if let Some(kept) = state.operations.get(&key) {
        return Ok(Json(kept.as_ref().clone()));
    }
    let mut answer = Operations {
        from,
        to,
        currency: currency.clone(),
        days: Vec::new(),
        orders: 0,
        average_order: None,
        cancelled: BTreeMap::new(),
        cancellation_rate: None,
        fulfilment: Vec::new(),
        payment_methods: Vec::new(),
        payment_failure_rate: None,
        out_of_stock: Vec::new(),
    };
    if has(&state, &["orders", "order_items", "order_events"]).await {
        let [days, cancels, stages, methods, stock] = queries(from, to, &currency);
        let (days, cancels, stages, methods, stock) = tokio::try_join!(
            typed_rows::<DayRow>(&state, &days),
            typed_rows::<CancelRow>(&state, &cancels),
            typed_rows::<Stage>(&state, &stages),
            typed_rows::<MethodRow>(&state, &methods),
            typed_rows::<OutOfStock>(&state, &stock),
        )?;
        fill(&mut answer, days, cancels, stages, methods, stock);
    }
    let answer = Arc::new(answer);
    state.operations.put(key, answer.clone());
    Ok(Json(answer.as_ref().clone()))
}

fn fill(
    answer: &mut Operations,
    days: Vec<DayRow>,
    cancels: Vec<CancelRow>,
    mut stages: Vec<Stage>,
    methods: Vec<MethodRow>,
    stock: Vec<OutOfStock>,
) {
    let mut by_day: BTreeMap<NaiveDate, OperationsDay> = BTreeMap::new();
    let mut gross = Amount::ZERO;
    for d in days {
        let sales = d.gross.unwrap_or_default();
        gross += sales;
        answer.orders += d.orders;
        by_day.insert(
            d.day,
            OperationsDay {
                day: d.day,
                orders: d.orders,
                gross_sales: sales,
                average_order: sales.mean_over(d.orders),
                cancelled: BTreeMap::new(),
                cancellation_rate: None,
            },
        );
    }
    for c in cancels {
        let reason = c.reason.unwrap_or_else(|| "unknown".into());
        *answer.cancelled.entry(reason.clone()).or_default() += c.n;
        let day = by_day.entry(c.day).or_insert_with(|| OperationsDay {
            day: c.day,
            orders: 0,
            gross_sales: Amount::ZERO,
            average_order: None,
            cancelled: BTreeMap::new(),
            cancellation_rate: None,
        });
        *day.cancelled.entry(reason).or_default() += c.n;
    }
    for day in by_day.values_mut() {
        let n: u64 = day.cancelled.values().sum();
        day.cancellation_rate = (day.orders > 0).then(|| n as f64 / day.orders as f64);
    }
    answer.days = by_day.into_values().collect();
    answer.average_order = gross.mean_over(answer.orders);
    let cancelled: u64 = answer.cancelled.values().sum();
    answer.cancellation_rate = (answer.orders > 0).then(|| cancelled as f64 / answer.orders as f64);
    stages.sort_by_key(|s| s.status);
    answer.fulfilment = stages;
    let placed: u64 = methods.iter().map(|m| m.orders).sum();
    let declined: u64 = methods.iter().map(|m| m.declined).sum();
    answer.payment_methods = methods
        .into_iter()
        .map(|m| PaymentMethodFigures {
            share: m.orders as f64 / placed.max(1) as f64,
            failure_rate: m.declined as f64 / m.orders.max(1) as f64,
            method: m.method,
            orders: m.orders,
            declined: m.declined,
        })
        .collect();
    answer.payment_failure_rate = (placed > 0).then(|| declined as f64 / placed as f64);
    answer.out_of_stock = stock;
}
