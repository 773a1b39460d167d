//! The endpoints the web page draws, each one SQL over the analytics
//! tables (partition-pruned by date) plus, where it says "live", figures
//! sampled from NATS. Money is summed per currency (`currency`, default
//! USD): the dashboard never adds dollars to euros.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use schemas::OrderStatus;
use schemas::rollups::Rollup;
use schemas::sql::SqlLiteral;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use server::http::HttpError;
use server::http::Path;

use crate::bloom_index::DateScope;
use crate::params::{self, Days, Q, bad};
use crate::rollups::Coverage;
use crate::sql_rows::{has, typed_rows};
use crate::{Dashboard, DashboardError};

#[derive(Deserialize)]
pub struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
    currency: Option<String>,
}

/// One weekday × hour cell of the heatmap.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HeatCell {
    /// 0 = Sunday.
    pub weekday: u8,
    pub hour: u8,
    /// Sales before tax (order lines), as on the Sales page.
    pub revenue: schemas::Amount,
    pub units: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Heatmap {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub currency: String,
    pub cells: Vec<HeatCell>,
    pub served: crate::rollups::Served,
}

/// Sales by weekday (0 = Sunday) × hour of day, UTC, over whole hours:
/// the hourly revenue windows (closed hours from `revenue_by_category_1h`,
/// the rest from the order lines) folded onto the week.
#[utoipa::path(
    get, path = "/api/dashboard/heatmap", tag = "dashboard",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query, description = "default: the last 28 days"), ("currency" = Option<String>, Query)),
    responses((status = 200, body = Heatmap), (status = 400, body = schemas::ApiError))
)]
pub async fn heatmap(State(state): State<Dashboard>, Q(q): Q<RangeQuery>) -> Result<Json<Heatmap>, HttpError> {
    use chrono::{Datelike, Timelike};
    let (from, to) = params::range(q.from.as_deref(), q.to.as_deref(), Duration::days(28), Duration::days(366))?;
    let currency = params::currency(q.currency.as_deref())?;
    let hour = crate::rollups::WINDOWS[1].1;
    let (from, to) = (hour.floor(from), hour.ceil(to));
    let filters = format!("AND currency = '{currency}'");
    let (windows, served) = crate::rollups::revenue_rows(&state, hour, from, to, &filters).await?;
    let mut grid: std::collections::BTreeMap<(u8, u8), (schemas::Amount, i64)> = std::collections::BTreeMap::new();
    for w in windows {
        let at = w.window_start;
        let cell = grid.entry((at.weekday().num_days_from_sunday() as u8, at.hour() as u8)).or_default();
        cell.0 += w.revenue;
        cell.1 += w.units;
    }
    let cells = grid
        .into_iter()
        .map(|((weekday, hour), (revenue, units))| HeatCell { weekday, hour, revenue, units })
        .collect();
    Ok(Json(Heatmap { from, to, currency, cells, served }))
}

/// How many status changes of one kind (and reason) happened.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct FunnelStep {
    pub status: String,
    pub reason: Option<String>,
    pub n: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Funnel {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub placed: u64,
    pub statuses: Vec<FunnelStep>,
}

#[derive(Deserialize)]
struct Count {
    n: u64,
}

/// Orders placed, and how many status changes of each kind happened, over
/// `[from, to)`: placed → reserved → confirmed → shipped → delivered, and
/// the cancellations by reason.
#[utoipa::path(
    get, path = "/api/dashboard/funnel", tag = "dashboard",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query, description = "default: the last 7 days")),
    responses((status = 200, body = Funnel), (status = 400, body = schemas::ApiError))
)]
pub async fn funnel(State(state): State<Dashboard>, Q(q): Q<RangeQuery>) -> Result<Json<Funnel>, HttpError> {
    let (from, to) = params::range(q.from.as_deref(), q.to.as_deref(), Duration::days(7), Duration::days(366))?;
    let placed_sql = format!("SELECT count(*) AS n FROM orders WHERE {}", params::time_range("placed_at", from, to));
    let steps_sql = format!(
        "SELECT status, reason, count(*) AS n FROM order_events WHERE {} \
         AND status IS NOT NULL GROUP BY status, reason ORDER BY status, reason",
        params::time_range("occurred_at", from, to)
    );
    let (with_orders, with_events) = (has(&state, &["orders"]).await, has(&state, &["order_events"]).await);
    // Two tables, two independent scans: run side by side.
    let placed = async { if with_orders { typed_rows::<Count>(&state, &placed_sql).await } else { Ok(Vec::new()) } };
    let steps = async { if with_events { typed_rows::<FunnelStep>(&state, &steps_sql).await } else { Ok(Vec::new()) } };
    let (placed, statuses) = tokio::try_join!(placed, steps)?;
    Ok(Json(Funnel { from, to, placed: placed.first().map_or(0, |c| c.n), statuses }))
}

/// An order awaiting review.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct FlaggedOrder {
    pub order_id: String,
    pub customer_id: Option<String>,
    pub risk_score: Option<i32>,
    pub risk_reasons: Option<Vec<String>>,
    pub order_total: Option<schemas::Amount>,
    pub currency: Option<String>,
    pub flagged_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FraudQueue {
    pub orders: Vec<FlaggedOrder>,
    pub served: crate::rollups::Served,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LowStock {
    pub threshold: u64,
    pub products: Vec<schemas::ProductView>,
}

#[derive(Deserialize)]
pub struct FraudQuery {
    days: Option<i64>,
    limit: Option<usize>,
}

/// Orders still `flagged` (flagged within `days`, default 14, and not yet
/// reviewed), highest risk first, with the screen's reasons. Closed days
/// come from `fraud_reviews_1d` (the events in and out of review), the rest
/// from the status events themselves (see [`crate::rollups`]).
///
/// Two steps, so the wide columns are read only for the queue itself: one
/// scan groups the review events by order over the narrow columns and keeps
/// the orders that entered review and never left (nothing re-enters
/// `flagged` without leaving it, so each has exactly one `flagged` row),
/// the top `limit` by risk; the second reads those orders' rows, on the
/// days they were flagged only. The anti-join this replaces scanned every
/// day's files twice (docs/benchmarks.md).
#[utoipa::path(
    get, path = "/api/dashboard/fraud-queue", tag = "dashboard",
    params(("days" = Option<i64>, Query, description = "1 to 366, default 14"), ("limit" = Option<usize>, Query, description = "1 to 1000, default 100")),
    responses((status = 200, body = FraudQueue), (status = 400, body = schemas::ApiError))
)]
pub async fn fraud_queue(State(state): State<Dashboard>, Q(q): Q<FraudQuery>) -> Result<Json<FraudQueue>, HttpError> {
    let days = q.days.unwrap_or(14);
    if !(1..=366).contains(&days) {
        return Err(bad("days", "days is 1 to 366"));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(bad("limit", "limit is 1 to 1000"));
    }
    if !has(&state, &["order_events"]).await {
        return Ok(Json(FraudQueue { orders: Vec::new(), served: Default::default() }));
    }
    // Whole days, through today: the queue as it stands now.
    let today = Utc::now().date_naive();
    let (from, to) = (params::midnight(today - Duration::days(days)), params::midnight(today + Duration::days(1)));
    let coverage = Coverage::of(&state, Rollup::FraudReviews, Duration::days(1), from, to).await?;
    let served = coverage.served();
    let flagged = OrderStatus::Flagged.sql();
    let in_review = format!("AND (status = {flagged} OR from_status = {flagged})");
    let keys = "order_id, status, from_status, risk_score, occurred_at, date";
    let still_flagged = format!(
        "SELECT order_id, min(date) FILTER (WHERE status = {flagged}) AS date FROM ({reviews}) GROUP BY order_id \
         HAVING count(*) FILTER (WHERE status = {flagged}) > 0 AND count(*) FILTER (WHERE from_status = {flagged}) = 0 \
         ORDER BY max(risk_score) FILTER (WHERE status = {flagged}) DESC, \
         min(occurred_at) FILTER (WHERE status = {flagged}), order_id LIMIT {limit}",
        reviews = coverage.union(keys, keys, &in_review)
    );
    #[derive(Deserialize)]
    struct Waiting {
        order_id: String,
        date: String,
    }
    let queue: Vec<Waiting> = typed_rows(&state, &still_flagged).await?;
    if queue.is_empty() {
        return Ok(Json(FraudQueue { orders: Vec::new(), served }));
    }
    let quoted = |v: &str| format!("'{}'", v.replace('\'', "''"));
    let ids: BTreeSet<String> = queue.iter().map(|w| quoted(&w.order_id)).collect();
    let dates: BTreeSet<String> = queue.iter().map(|w| quoted(&w.date)).collect();
    let columns = "order_id, customer_id, risk_score, risk_reasons, order_total, currency, occurred_at";
    let filters = format!(
        "AND status = {flagged} AND date IN ({}) AND order_id IN ({})",
        dates.into_iter().collect::<Vec<_>>().join(", "),
        ids.into_iter().collect::<Vec<_>>().join(", ")
    );
    let sql = format!(
        "SELECT order_id, customer_id, risk_score, risk_reasons, order_total, currency, occurred_at AS flagged_at \
         FROM ({reviews}) ORDER BY risk_score DESC, occurred_at, order_id",
        reviews = coverage.union(columns, columns, &filters)
    );
    Ok(Json(FraudQueue { orders: typed_rows(&state, &sql).await?, served }))
}

/// Products at or below the low-stock threshold, from the live stock.
#[utoipa::path(
    get, path = "/api/dashboard/low-stock", tag = "dashboard",
    responses((status = 200, body = LowStock), (status = 503, body = schemas::ApiError))
)]
pub async fn low_stock(State(state): State<Dashboard>) -> Result<Json<LowStock>, HttpError> {
    let threshold = state.settings.low_stock_threshold;
    let products = processor::catalog::product_views(&state.js, threshold).await.map_err(DashboardError::nats)?;
    let low: Vec<_> = products.into_iter().filter(|p| p.low_stock).collect();
    Ok(Json(LowStock { threshold, products: low }))
}

/// Throughput, latency percentiles, consumer lag per consumer and the DLQ.
#[utoipa::path(
    get, path = "/api/dashboard/health", tag = "dashboard",
    responses((status = 200, body = Health))
)]
pub async fn health(State(state): State<Dashboard>) -> Result<Json<Health>, HttpError> {
    let queries_running = state.lake.queries_running();
    if state.client.connection_state() != async_nats::connection::State::Connected {
        // The tables still answer; what only NATS knows is marked unavailable.
        return Ok(Json(Health { nats: "unavailable", live: None, consumers: None, dlq_size: None, queries_running }));
    }
    let consumers = crate::live::consumer_lag(&state.js).await.map_err(HttpError::from)?;
    let dlq = crate::live::stream_messages(&state.js, broker::DLQ_STREAM).await.map_err(HttpError::from)?;
    Ok(Json(Health {
        nats: "connected",
        live: Some(state.live.snapshot()),
        consumers: Some(consumers),
        dlq_size: Some(dlq),
        queries_running,
    }))
}

/// What only NATS knows (null while it does not answer) and the queries
/// running now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `connected` or `unavailable`.
    pub nats: &'static str,
    /// The live block (rates, latency percentiles, newest orders), as the
    /// WebSocket sends it.
    #[schema(value_type = Option<Object>)]
    pub live: Option<Value>,
    pub consumers: Option<Vec<crate::live::ConsumerLag>>,
    pub dlq_size: Option<u64>,
    pub queries_running: usize,
}

/// An order's row in the lake's `orders` table.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct LakeOrder {
    pub order_id: String,
    pub customer_id: String,
    pub placed_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub currency: String,
    pub subtotal: schemas::Amount,
    pub tax: schemas::Amount,
    pub total: schemas::Amount,
    pub item_count: i32,
    pub unit_count: i64,
    pub payment_method: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub client_ip: Option<String>,
    pub stream_seq: i64,
}

/// An order line in the lake's `order_items` table.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct LakeItem {
    pub line_no: i32,
    pub product_id: String,
    pub category: String,
    pub quantity: i32,
    pub unit_price: schemas::Amount,
    pub line_total: schemas::Amount,
    pub currency: String,
}

/// An order event in the lake's `order_events` table.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct LakeEvent {
    pub event_id: String,
    pub kind: String,
    pub from_status: Option<String>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub risk_score: Option<i32>,
    pub risk_reasons: Option<Vec<String>>,
    pub refund_amount: Option<schemas::Amount>,
    pub command: Option<String>,
    pub message: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub stream_seq: i64,
    pub reviewer: Option<String>,
    pub review_note: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderDetail {
    pub order: LakeOrder,
    pub items: Vec<LakeItem>,
    pub events: Vec<LakeEvent>,
}

/// One order from the lake: the order, its items and its timeline, each
/// read only on the days whose files' bloom filters may hold the id.
#[utoipa::path(
    get, path = "/api/admin/orders/{id}/detail", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 200, body = OrderDetail), (status = 404, body = schemas::ApiError))
)]
pub async fn order_detail(
    State(state): State<Dashboard>,
    Path(id): Path<String>,
) -> Result<Json<OrderDetail>, HttpError> {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| HttpError::bad_id("id"))?.to_string();
    let sql_on = |table: &'static str, order_by: &'static str| {
        let (state, id) = (&state, &id);
        async move {
            if !has(state, &[table]).await {
                return Ok(None);
            }
            let store = state.lake.store();
            let scope = DateScope::Between(None, None);
            let days = state.blooms.dates_that_may_hold(store, table, &["order_id"], scope, &[id.as_str()]).await?;
            if days.is_empty() {
                return Ok::<_, HttpError>(None);
            }
            let on = Days::Only(days).predicate("date", 0);
            Ok(Some(format!("SELECT * FROM {table} WHERE {on} AND order_id = '{id}'{order_by}")))
        }
    };
    let (order_sql, items_sql, events_sql) = tokio::try_join!(
        sql_on("orders", ""),
        sql_on("order_items", " ORDER BY line_no"),
        sql_on("order_events", " ORDER BY occurred_at, stream_seq"),
    )?;
    let Some(order_sql) = order_sql else { return Err(HttpError::not_found("order")) };
    let items = async {
        match &items_sql {
            Some(sql) => typed_rows::<LakeItem>(&state, sql).await,
            None => Ok(Vec::new()),
        }
    };
    let events = async {
        match &events_sql {
            Some(sql) => typed_rows::<LakeEvent>(&state, sql).await,
            None => Ok(Vec::new()),
        }
    };
    let (order, items, events) = tokio::try_join!(typed_rows::<LakeOrder>(&state, &order_sql), items, events)?;
    let order = order.into_iter().next().ok_or_else(|| HttpError::not_found("order"))?;
    Ok(Json(OrderDetail { order, items, events }))
}
