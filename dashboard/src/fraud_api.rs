//! Fraud analytics for the Fraud page: the screen's rates over time, the
//! reasons it gives, the audit log of reviews, and a flagged order beside
//! its customer's usual orders.
//!
//! Rates come from `fraud_rates_1h|1d` for closed windows and from the
//! status events for the rest ([`crate::rollups::Coverage`]); reasons from
//! `fraud_reasons_1d` the same way. A window counts the reviews decided in
//! it: flagged share = flagged / screened, fraud rate = rejected / screened,
//! false-positive rate = approved / (approved + rejected).

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use server::http::{HttpError, Path};

use schemas::CancelReason::FraudRejected;
use schemas::EventKind::StatusChanged;
use schemas::OrderStatus::{Flagged, Pending};
use schemas::rollups::Rollup;
use schemas::sql::SqlLiteral;

use crate::Dashboard;
use crate::params::{self, Q, bad, ts_sql};
use crate::rollups::Coverage;
use crate::sql_rows::{has, typed_rows};

/// The status events the screen and the reviews write.
fn screening_events() -> String {
    format!("AND kind = {} AND from_status IN {}", StatusChanged.sql(), schemas::sql::list([Pending, Flagged]))
}

#[derive(Deserialize)]
pub struct StatsQuery {
    from: Option<String>,
    to: Option<String>,
    /// `hour` or `day` (default).
    bucket: Option<String>,
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// A window's (or the range's) screening counts and rates.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct FraudCounts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_start: Option<DateTime<Utc>>,
    pub screened: u64,
    pub flagged: u64,
    pub rejected: u64,
    pub approved: u64,
    /// flagged / screened
    #[serde(default)]
    pub flagged_share: Option<f64>,
    /// rejected / screened
    #[serde(default)]
    pub fraud_rate: Option<f64>,
    /// approved / (approved + rejected)
    #[serde(default)]
    pub false_positive_rate: Option<f64>,
}

impl FraudCounts {
    fn with_rates(mut self) -> FraudCounts {
        self.flagged_share = ratio(self.flagged, self.screened);
        self.fraud_rate = ratio(self.rejected, self.screened);
        self.false_positive_rate = ratio(self.approved, self.approved + self.rejected);
        self
    }
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ReasonCount {
    pub reason: String,
    pub orders: u64,
    pub flagged: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FraudStats {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket: &'static str,
    pub series: Vec<FraudCounts>,
    pub totals: FraudCounts,
    pub reasons: Vec<ReasonCount>,
    pub served: crate::rollups::Served,
}

/// A review decided, for the review log.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Review {
    pub order_id: String,
    pub customer_id: Option<String>,
    pub reviewed_at: DateTime<Utc>,
    /// `approved` or `rejected`.
    pub review: String,
    pub reviewer: Option<String>,
    pub review_note: Option<String>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub order_total: Option<schemas::Amount>,
    pub currency: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewLog {
    pub reviews: Vec<Review>,
}

/// `GET /api/dashboard/fraud-stats`: per window, orders screened, flagged,
/// rejected and approved with the three rates; the same over the range;
/// the most common reasons.
#[utoipa::path(
    get, path = "/api/dashboard/fraud-stats", tag = "dashboard",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query, description = "default: the last 30 days"), ("bucket" = Option<String>, Query, description = "hour or day (default)")),
    responses((status = 200, body = FraudStats), (status = 400, body = schemas::ApiError))
)]
pub async fn fraud_stats(State(state): State<Dashboard>, Q(q): Q<StatsQuery>) -> Result<Json<FraudStats>, HttpError> {
    let (from, to) = params::range(q.from.as_deref(), q.to.as_deref(), Duration::days(30), Duration::days(366))?;
    let (size, interval) = match q.bucket.as_deref().unwrap_or("day") {
        "day" => (Duration::days(1), "1 day"),
        "hour" => (Duration::hours(1), "1 hour"),
        _ => return Err(bad("bucket", "bucket is hour or day")),
    };
    if !has(&state, &["order_events"]).await {
        return Ok(Json(FraudStats {
            from,
            to,
            bucket: interval,
            series: Vec::new(),
            totals: FraudCounts::default(),
            reasons: Vec::new(),
            served: Default::default(),
        }));
    }
    let from = window_start(from, size);
    let counts = "window_start, screened, flagged, rejected, approved";
    let per_event = format!(
        "date_bin(INTERVAL '{interval}', occurred_at, TIMESTAMP '1970-01-01T00:00:00Z') AS window_start, \
         CASE WHEN from_status = {pending} THEN 1 ELSE 0 END AS screened, \
         CASE WHEN from_status = {pending} AND status = {flagged} THEN 1 ELSE 0 END AS flagged, \
         CASE WHEN from_status = {flagged} AND reason = {rejected} THEN 1 ELSE 0 END AS rejected, \
         CASE WHEN from_status = {flagged} AND (reason IS NULL OR reason <> {rejected}) THEN 1 ELSE 0 END AS approved",
        pending = Pending.sql(),
        flagged = Flagged.sql(),
        rejected = FraudRejected.sql(),
    );
    let coverage = Coverage::of(&state, Rollup::FraudRates, size, from, to).await?;
    let union = coverage.union_filtered(counts, &per_event, "", &screening_events());
    let sql = format!(
        "SELECT window_start, sum(screened) AS screened, sum(flagged) AS flagged, sum(rejected) AS rejected, \
                sum(approved) AS approved FROM ({union}) GROUP BY window_start ORDER BY window_start"
    );
    let series: Vec<FraudCounts> =
        typed_rows::<FraudCounts>(&state, &sql).await?.into_iter().map(FraudCounts::with_rates).collect();
    let mut totals = FraudCounts::default();
    for w in &series {
        totals.screened += w.screened;
        totals.flagged += w.flagged;
        totals.rejected += w.rejected;
        totals.approved += w.approved;
    }
    let reasons = top_reasons(&state, from, to).await?;
    Ok(Json(FraudStats {
        from,
        to,
        bucket: interval,
        series,
        totals: totals.with_rates(),
        reasons,
        served: coverage.served(),
    }))
}

/// The ten reason codes given most often over whole days of the range.
async fn top_reasons(
    state: &Dashboard,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<ReasonCount>, HttpError> {
    let from = window_start(from, Duration::days(1));
    let coverage = Coverage::of(state, Rollup::FraudReasons, Duration::days(1), from, to).await?;
    let union = coverage.union_filtered(
        "reason AS reason_text, orders, flagged",
        &format!(
            "unnest(risk_reasons) AS reason_text, 1 AS orders, CASE WHEN status = {} THEN 1 ELSE 0 END AS flagged",
            Flagged.sql()
        ),
        "",
        &format!("AND kind = {} AND from_status = {} AND risk_reasons IS NOT NULL", StatusChanged.sql(), Pending.sql()),
    );
    let sql = format!(
        "SELECT split_part(reason_text, ':', 1) AS reason, sum(orders) AS orders, sum(flagged) AS flagged \
         FROM ({union}) GROUP BY 1 ORDER BY orders DESC, reason LIMIT 10"
    );
    typed_rows(state, &sql).await
}

/// `t` at the start of its window of `size`.
fn window_start(t: chrono::DateTime<chrono::Utc>, size: Duration) -> chrono::DateTime<chrono::Utc> {
    chrono::DurationRound::duration_trunc(t, size).unwrap_or(t)
}

#[derive(Deserialize)]
pub struct AuditQuery {
    days: Option<i64>,
    limit: Option<usize>,
}

/// `GET /api/dashboard/fraud-audit`: every review decided in the last
/// `days` (default 30), newest first: who, when, what, why, and the score.
#[utoipa::path(
    get, path = "/api/dashboard/fraud-audit", tag = "dashboard",
    params(("days" = Option<i64>, Query, description = "1 to 366, default 30"), ("limit" = Option<usize>, Query, description = "1 to 1000, default 200")),
    responses((status = 200, body = ReviewLog), (status = 400, body = schemas::ApiError))
)]
pub async fn fraud_audit(State(state): State<Dashboard>, Q(q): Q<AuditQuery>) -> Result<Json<ReviewLog>, HttpError> {
    let days = q.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(bad("days", "days is 1 to 366"));
    }
    let limit = q.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(bad("limit", "limit is 1 to 1000"));
    }
    if !has(&state, &["order_events"]).await {
        return Ok(Json(ReviewLog { reviews: Vec::new() }));
    }
    let to = chrono::Utc::now();
    let from = to - Duration::days(days);
    // Newest first, so the days are read newest first too, in growing
    // chunks (1, 2, 4, … days) until `limit` reviews are found: a busy
    // shop fills the log from its last day or two instead of scanning a
    // month of status events.
    let mut dates: Vec<chrono::NaiveDate> = crate::sql_rows::partition_dates(&state, "order_events")
        .await?
        .into_iter()
        .filter(|d| *d >= from.date_naive() && *d <= to.date_naive())
        .collect();
    dates.reverse();
    let mut reviews: Vec<Review> = Vec::new();
    for (oldest, newest) in params::growing_chunks(&dates) {
        if reviews.len() >= limit {
            break;
        }
        let sql = format!(
            "SELECT order_id, customer_id, occurred_at AS reviewed_at, \
                    CASE WHEN reason = {rejected} THEN 'rejected' ELSE 'approved' END AS review, \
                    reviewer, review_note, status, reason, order_total, currency \
             FROM order_events WHERE date BETWEEN '{oldest}' AND '{newest}' AND {range} \
             AND kind = {status_changed} AND from_status = {flagged} \
             ORDER BY occurred_at DESC, order_id LIMIT {limit}",
            range = params::time_range("occurred_at", from, to),
            limit = limit - reviews.len(),
            rejected = FraudRejected.sql(),
            status_changed = StatusChanged.sql(),
            flagged = Flagged.sql(),
        );
        reviews.extend(typed_rows::<Review>(&state, &sql).await?);
    }
    Ok(Json(ReviewLog { reviews }))
}

/// `GET /api/dashboard/fraud-context/{order_id}`: the order, its screening
/// and reviews, and its customer's usual orders (count, average and largest
/// value, the places and IPs they order from, earlier flags).
#[utoipa::path(
    get, path = "/api/dashboard/fraud-context/{order_id}", tag = "dashboard",
    params(("order_id" = String, Path)),
    responses((status = 200, body = FraudContext), (status = 404, body = schemas::ApiError))
)]
pub async fn fraud_context(
    State(state): State<Dashboard>,
    Path(id): Path<String>,
) -> Result<Json<FraudContext>, HttpError> {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| bad("order_id", "an order id is a UUID"))?.to_string();
    if !has(&state, &["orders", "order_events"]).await {
        return Err(HttpError::not_found("order"));
    }
    let order: Vec<ContextOrder> = typed_rows(
        &state,
        &format!(
            "SELECT order_id, customer_id, placed_at, total, currency, city, country, client_ip, address_key \
             FROM orders WHERE order_id = '{id}' LIMIT 1"
        ),
    )
    .await?;
    let Some(order) = order.into_iter().next() else { return Err(HttpError::not_found("order")) };
    // Any text ingest accepted (quotes and spaces too): quoted, not checked.
    let customer = order.customer_id.replace('\'', "''");
    let before =
        format!("customer_id = '{customer}' AND order_id <> '{id}' AND placed_at < {}", ts_sql(order.placed_at));
    let usual_sql = format!(
        "SELECT count(*) AS orders, CAST(avg(total) AS DECIMAL(18, 4)) AS average_total, max(total) AS largest_total, \
                min(placed_at) AS first_order_at, max(placed_at) AS last_order_at FROM orders WHERE {before}"
    );
    let places_sql = format!(
        "SELECT city, country, address_key, count(*) AS orders, max(placed_at) AS last_at FROM orders \
         WHERE {before} GROUP BY city, country, address_key ORDER BY orders DESC, last_at DESC LIMIT 5"
    );
    let ips_sql = format!(
        "SELECT client_ip, count(*) AS orders, max(placed_at) AS last_at FROM orders \
         WHERE {before} AND client_ip IS NOT NULL GROUP BY client_ip ORDER BY orders DESC, last_at DESC LIMIT 5"
    );
    let flags_sql = format!(
        "SELECT order_id, scored_at, score, reasons, review, reviewer, reviewed_at FROM fraud_scores \
         WHERE customer_id = '{customer}' AND decision = {flagged} AND order_id <> '{id}' \
         ORDER BY scored_at DESC LIMIT 20",
        flagged = Flagged.sql(),
    );
    let screening_sql = format!(
        "SELECT scored_at, score, reasons, model_version, decision, review, reviewer, review_note, reviewed_at \
         FROM fraud_scores WHERE order_id = '{id}'"
    );
    let (usual, places, ips, earlier_flags, screening) = tokio::try_join!(
        typed_rows::<Usual>(&state, &usual_sql),
        typed_rows::<Place>(&state, &places_sql),
        typed_rows::<Ip>(&state, &ips_sql),
        typed_rows::<EarlierFlag>(&state, &flags_sql),
        typed_rows::<Screening>(&state, &screening_sql)
    )?;
    let customer = CustomerHistory {
        customer_id: order.customer_id.clone(),
        usual: usual.into_iter().next(),
        places,
        ips,
        earlier_flags,
    };
    Ok(Json(FraudContext { order, screening: screening.into_iter().next(), customer }))
}

/// The order under review, as the lake has it.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ContextOrder {
    pub order_id: String,
    pub customer_id: String,
    pub placed_at: DateTime<Utc>,
    pub total: schemas::Amount,
    pub currency: String,
    pub city: Option<String>,
    pub country: Option<String>,
    pub client_ip: Option<String>,
    pub address_key: Option<String>,
}

/// The customer's orders before this one.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Usual {
    pub orders: u64,
    pub average_total: Option<schemas::Amount>,
    pub largest_total: Option<schemas::Amount>,
    pub first_order_at: Option<DateTime<Utc>>,
    pub last_order_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Place {
    pub city: Option<String>,
    pub country: Option<String>,
    pub address_key: Option<String>,
    pub orders: u64,
    pub last_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Ip {
    pub client_ip: String,
    pub orders: u64,
    pub last_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct EarlierFlag {
    pub order_id: String,
    pub scored_at: DateTime<Utc>,
    pub score: Option<i32>,
    pub reasons: Option<Vec<String>>,
    pub review: Option<String>,
    pub reviewer: Option<String>,
    pub reviewed_at: Option<DateTime<Utc>>,
}

/// The fraud screen's verdict on the order, and its review.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Screening {
    pub scored_at: DateTime<Utc>,
    pub score: Option<i32>,
    pub reasons: Option<Vec<String>>,
    pub model_version: Option<String>,
    pub decision: String,
    pub review: Option<String>,
    pub reviewer: Option<String>,
    pub review_note: Option<String>,
    pub reviewed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerHistory {
    pub customer_id: String,
    pub usual: Option<Usual>,
    pub places: Vec<Place>,
    pub ips: Vec<Ip>,
    pub earlier_flags: Vec<EarlierFlag>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FraudContext {
    pub order: ContextOrder,
    pub screening: Option<Screening>,
    pub customer: CustomerHistory,
}
