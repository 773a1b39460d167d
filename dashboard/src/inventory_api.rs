//! `GET /api/analytics/inventory`: the inventory plan per catalog product,
//! from live stock (the catalog and stock buckets), the lake's demand and
//! the `demand_forecast` run for `as_of`, at the request's lead time and
//! service level; filtered, sorted and paginated.

use axum::Json;
use axum::extract::State;
use chrono::NaiveDate;
use std::sync::Arc;

use forecast::inventory::{
    DEFAULT_LEAD_TIME_DAYS, DEFAULT_SERVICE_LEVEL, PlanInputs, PlanRow, PlanSettings, StockPosition,
};
use serde::Deserialize;
use server::http::HttpError;

use crate::params::{Q, invalid, number};
use crate::{Dashboard, DashboardError};

#[derive(Deserialize)]
pub struct InventoryQuery {
    lead_time_days: Option<String>,
    service_level: Option<String>,
    as_of: Option<String>,
    category: Option<String>,
    /// A product id or name fragment (case-insensitive).
    q: Option<String>,
    low_stock: Option<String>,
    overstock: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    page: Option<String>,
    page_size: Option<String>,
}

/// The columns a plan can be sorted by.
const SORTS: [&str; 9] = [
    "product_id",
    "available",
    "avg_daily_demand_30d",
    "days_of_cover",
    "stockout_date",
    "reorder_point",
    "suggested_order_qty",
    "turnover_30d",
    "stockout_incidents_90d",
];

fn flag(field: &str, value: Option<&str>) -> Result<Option<bool>, HttpError> {
    match value {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(invalid(field, "true or false")),
    }
}

#[utoipa::path(
    get, path = "/api/analytics/inventory", tag = "analytics",
    responses((status = 200, body = InventoryPage), (status = 400, body = schemas::ApiError))
)]
pub async fn inventory(
    State(state): State<Dashboard>,
    Q(q): Q<InventoryQuery>,
) -> Result<Json<InventoryPage>, HttpError> {
    let settings = PlanSettings {
        lead_time_days: number(
            "lead_time_days",
            q.lead_time_days.as_deref(),
            DEFAULT_LEAD_TIME_DAYS,
            1..=365,
            "1 to 365 days",
        )?,
        service_level: number(
            "service_level",
            q.service_level.as_deref(),
            DEFAULT_SERVICE_LEVEL,
            0.5..=0.999,
            "a probability from 0.5 to 0.999",
        )?,
    };
    let page = number("page", q.page.as_deref(), 1usize, 1..=1_000_000, "page starts at 1")?;
    let page_size = number("page_size", q.page_size.as_deref(), 50usize, 1..=500, "page_size is 1 to 500")?;
    let (low_stock, overstock) =
        (flag("low_stock", q.low_stock.as_deref())?, flag("overstock", q.overstock.as_deref())?);
    let sort = q.sort.as_deref().unwrap_or("product_id");
    if !SORTS.contains(&sort) {
        return Err(invalid("sort", format!("sort is one of {}", SORTS.join(", "))));
    }
    let descending = match q.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(invalid("order", "order is asc or desc")),
    };
    let as_of = match q.as_of.as_deref() {
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| invalid("as_of", "as_of is YYYY-MM-DD"))?,
        None => default_as_of(&state).await?,
    };
    let needle = q.q.as_deref().map(str::to_lowercase);
    let stock: Vec<StockPosition> = processor::catalog::product_views(&state.js, state.settings.low_stock_threshold)
        .await
        .map_err(DashboardError::nats)?
        .into_iter()
        .filter(|p| q.category.as_ref().is_none_or(|c| &p.category == c))
        .filter(|p| {
            needle.as_ref().is_none_or(|n| {
                p.product_id.to_lowercase().contains(n.as_str()) || p.name.to_lowercase().contains(n.as_str())
            })
        })
        .map(StockPosition::from)
        .collect();
    // No catalog product matches: nothing to plan, nothing to read.
    let mut rows =
        if stock.is_empty() { Vec::new() } else { plan_inputs(&state, as_of).await?.plans(&stock, settings) };
    rows.retain(|r| low_stock.is_none_or(|l| r.low_stock == l) && overstock.is_none_or(|o| r.overstock == o));
    sort_rows(&mut rows, sort, descending);
    let total = rows.len();
    let products: Vec<PlanRow> = rows.into_iter().skip((page - 1) * page_size).take(page_size).collect();
    Ok(Json(InventoryPage {
        as_of,
        lead_time_days: settings.lead_time_days,
        service_level: settings.service_level,
        sort: sort.to_string(),
        order: if descending { "desc" } else { "asc" },
        page,
        page_size,
        total,
        products,
    }))
}

/// One page of the inventory plan.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct InventoryPage {
    pub as_of: NaiveDate,
    pub lead_time_days: u32,
    pub service_level: f64,
    pub sort: String,
    pub order: &'static str,
    pub page: usize,
    pub page_size: usize,
    /// Products matching the filters.
    pub total: usize,
    /// Each product's plan (docs/forecasting.md, "Inventory plan").
    #[schema(value_type = Vec<Object>)]
    pub products: Vec<PlanRow>,
}

/// The day the plan is as of when the request names none: the lake's last
/// closed day.
async fn default_as_of(state: &Dashboard) -> Result<NaiveDate, DashboardError> {
    Ok(forecast::run::default_as_of(
        forecast::run::latest_day(state.lake.store()).await?,
        chrono::Utc::now().date_naive(),
    ))
}

/// The kept inputs for `as_of`, or read now (and kept).
async fn plan_inputs(state: &Dashboard, as_of: NaiveDate) -> Result<Arc<PlanInputs>, DashboardError> {
    match state.plan_inputs.get(as_of) {
        Some(inputs) => Ok(inputs),
        None => read_plan_inputs(state, as_of).await,
    }
}

async fn read_plan_inputs(state: &Dashboard, as_of: NaiveDate) -> Result<Arc<PlanInputs>, DashboardError> {
    let timeout = state.settings.query_timeout;
    let inputs = state
        .lake
        .run(timeout, move |ctx| async move { Ok(forecast::inventory::plan_inputs(&ctx, as_of).await?) })
        .await?;
    Ok(state.plan_inputs.put(inputs))
}

/// Reads the default day's inputs ahead of the requests, and again before
/// they expire, so no visitor waits for them (a failure is only logged: a
/// request then reads them itself).
pub async fn warm(state: Dashboard) {
    loop {
        let warmed = async { read_plan_inputs(&state, default_as_of(&state).await?).await };
        if let Err(e) = warmed.await {
            tracing::debug!(error = %e, "could not read the inventory plan's inputs ahead");
        }
        tokio::time::sleep(PLAN_INPUTS_TTL.saturating_sub(std::time::Duration::from_secs(60))).await;
    }
}

/// The lake's part of the plan for one `as_of`, kept for a few minutes: it
/// takes seconds to read (90 days of demand, the stockout days, the
/// forecasts) and changes only when files of those days do (a late event,
/// a forecast run), while live stock and the settings are applied per
/// request. At most [`PLAN_INPUTS_TTL`] stale.
#[derive(Default)]
pub struct PlanInputsCache {
    kept: std::sync::Mutex<Option<(std::time::Instant, Arc<PlanInputs>)>>,
}

pub const PLAN_INPUTS_TTL: std::time::Duration = std::time::Duration::from_secs(300);

impl PlanInputsCache {
    fn get(&self, as_of: NaiveDate) -> Option<Arc<PlanInputs>> {
        let kept = self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.as_ref()
            .filter(|(at, inputs)| inputs.as_of == as_of && at.elapsed() < PLAN_INPUTS_TTL)
            .map(|(_, inputs)| inputs.clone())
    }

    fn put(&self, inputs: PlanInputs) -> Arc<PlanInputs> {
        let inputs = Arc::new(inputs);
        *self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((std::time::Instant::now(), inputs.clone()));
        inputs
    }
}

/// Sorted by `column`, missing values last either way, ties by product.
fn sort_rows(rows: &mut [PlanRow], column: &str, descending: bool) {
    let key = |r: &PlanRow| -> Option<f64> {
        match column {
            "available" => Some(r.available as f64),
            "avg_daily_demand_30d" => Some(r.avg_daily_demand_30d),
            "days_of_cover" => r.days_of_cover,
            "stockout_date" => r.stockout_date.map(|d| forecast::series::day_number(d) as f64),
            "reorder_point" => Some(r.reorder_point),
            "suggested_order_qty" => Some(r.suggested_order_qty as f64),
            "turnover_30d" => r.turnover_30d,
            "stockout_incidents_90d" => Some(r.stockout_incidents_90d as f64),
            _ => None,
        }
    };
    rows.sort_by(|a, b| {
        let by_value = match (key(a), key(b)) {
            (Some(x), Some(y)) if descending => y.total_cmp(&x),
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        let by_id = if column == "product_id" && descending {
            b.product_id.cmp(&a.product_id)
        } else {
            a.product_id.cmp(&b.product_id)
        };
        by_value.then(by_id)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_inputs_are_kept_for_their_day_only() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        let cache = PlanInputsCache::default();
        assert!(cache.get(day(20)).is_none());
        cache.put(PlanInputs { as_of: day(20), ..PlanInputs::default() });
        assert_eq!(cache.get(day(20)).map(|i| i.as_of), Some(day(20)));
        assert!(cache.get(day(21)).is_none(), "another day reads the lake again");
    }
}
