//! Inventory planning per product: days of cover, the projected stockout
//! date, the reorder point and a suggested order, from live stock, the
//! demand history and the demand forecast.
//!
//! - Lead-time demand is the forecast summed over the lead time (the mean
//!   daily demand of the last 30 days when there is no forecast).
//! - Safety stock is `z(service level) · σ_L`: each forecast day's σ is
//!   read off its 95% band (`(hi95 − forecast) / 1.96`), days are taken as
//!   independent, `σ_L = √Σσ²`; without a forecast, σ is the daily
//!   standard deviation of the last 90 days times √lead time.
//! - Reorder point = lead-time demand + safety stock. When the available
//!   stock is at or under it, the suggested order brings it up to the
//!   demand over the lead time plus 30 days of cover, plus safety stock.
//! - Turnover is units sold over the stock on hand (available + reserved),
//!   which stands in for the average stock: the lake has no stock history.
//! - A stockout incident is a day with an `out_of_stock` cancellation of an
//!   order holding the product (an order's cancellation names no product,
//!   so every product of the order is counted).

use chrono::{Duration, NaiveDate};
use schemas::forecast::LOW_STOCK_UNITS;

/// Days of cover an order adds after it arrives.
pub const REVIEW_DAYS: usize = 30;
pub const DEFAULT_LEAD_TIME_DAYS: u32 = 7;
pub const DEFAULT_SERVICE_LEVEL: f64 = 0.95;
/// A product with stock and no sale for this long is overstocked.
pub const OVERSTOCK_DAYS: usize = 90;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlanSettings {
    pub lead_time_days: u32,
    pub service_level: f64,
}

impl Default for PlanSettings {
    fn default() -> Self {
        PlanSettings { lead_time_days: DEFAULT_LEAD_TIME_DAYS, service_level: DEFAULT_SERVICE_LEVEL }
    }
}

/// A product's stock now.
#[derive(Clone, Debug, PartialEq)]
pub struct StockPosition {
    pub product_id: String,
    pub name: Option<String>,
    pub category: Option<String>,
    pub available: u64,
    pub reserved: u64,
}

impl From<schemas::ProductView> for StockPosition {
    fn from(p: schemas::ProductView) -> Self {
        StockPosition {
            product_id: p.product_id,
            name: Some(p.name),
            category: Some(p.category),
            available: p.stock.available,
            reserved: p.stock.reserved,
        }
    }
}

/// A product's daily units forecast after `as_of`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UnitsForecast {
    pub model: String,
    pub point: Vec<f64>,
    pub hi95: Vec<f64>,
}

/// A product's recent demand: daily units, oldest first, ending on `as_of`
/// (the last 90 days or fewer), and its stockout days.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecentDemand {
    pub daily_units: Vec<f64>,
    pub stockout_days_90d: u64,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PlanRow {
    pub product_id: String,
    pub name: Option<String>,
    pub category: Option<String>,
    pub available: u64,
    pub reserved: u64,
    pub avg_daily_demand_30d: f64,
    pub days_of_cover: Option<f64>,
    pub stockout_date: Option<NaiveDate>,
    pub lead_time_days: u32,
    pub service_level: f64,
    pub lead_time_demand: f64,
    pub safety_stock: f64,
    pub reorder_point: f64,
    pub suggested_order_qty: u64,
    pub low_stock: bool,
    pub overstock: bool,
    pub turnover_30d: Option<f64>,
    pub turnover_90d: Option<f64>,
    pub stockout_incidents_90d: u64,
    pub model: Option<String>,
}

fn tail(values: &[f64], days: usize) -> &[f64] {
    &values[values.len().saturating_sub(days)..]
}

fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

/// The plan of one product.
pub fn plan(
    stock: &StockPosition,
    recent: &RecentDemand,
    forecast: Option<&UnitsForecast>,
    as_of: NaiveDate,
    settings: PlanSettings,
) -> PlanRow {
    let lead = settings.lead_time_days as usize;
    let z = distrs::Normal::ppf(settings.service_level.clamp(0.5, 0.9999), 0.0, 1.0).max(0.0);
    let units_30: f64 = tail(&recent.daily_units, 30).iter().sum();
    let units_90: f64 = tail(&recent.daily_units, 90).iter().sum();
    let avg_30 = units_30 / 30.0;
    let available = stock.available as f64;
    let on_hand = (stock.available + stock.reserved) as f64;
    let daily = |h: usize| forecast.and_then(|f| f.point.get(h).copied()).unwrap_or(avg_30);
    let (lead_time_demand, sigma_lead) = match forecast {
        Some(f) if !f.point.is_empty() => {
            let demand: f64 = (0..lead).map(daily).sum();
            let variance: f64 = (0..lead)
                .map(|h| {
                    let sigma = f.hi95.get(h).zip(f.point.get(h)).map_or(0.0, |(hi, p)| (hi - p).max(0.0) / 1.96);
                    sigma * sigma
                })
                .sum();
            (demand, variance.sqrt())
        }
        _ => {
            let recent90 = tail(&recent.daily_units, 90);
            let mean = recent90.iter().sum::<f64>() / recent90.len().max(1) as f64;
            let variance = recent90.iter().map(|u| (u - mean).powi(2)).sum::<f64>() / recent90.len().max(1) as f64;
            (avg_30 * lead as f64, variance.sqrt() * (lead as f64).sqrt())
        }
    };
    let safety_stock = z * sigma_lead;
    let reorder_point = lead_time_demand + safety_stock;
    let stockout_date = forecast.and_then(|f| {
        let mut cumulative = 0.0;
        f.point.iter().position(|p| {
            cumulative += p;
            cumulative > available
        })
    });
    let order_up_to = (0..lead + REVIEW_DAYS).map(daily).sum::<f64>() + safety_stock;
    let suggested = if available <= reorder_point { (order_up_to - available).max(0.0).ceil() as u64 } else { 0 };
    let last_sale = recent.daily_units.iter().rposition(|u| *u > 0.0).map(|i| recent.daily_units.len() - 1 - i);
    PlanRow {
        product_id: stock.product_id.clone(),
        name: stock.name.clone(),
        category: stock.category.clone(),
        available: stock.available,
        reserved: stock.reserved,
        avg_daily_demand_30d: round(avg_30, 4),
        days_of_cover: (avg_30 > 0.0).then(|| round(available / avg_30, 1)),
        stockout_date: stockout_date.map(|h| as_of + Duration::days(h as i64 + 1)),
        lead_time_days: settings.lead_time_days,
        service_level: settings.service_level,
        lead_time_demand: round(lead_time_demand, 2),
        safety_stock: round(safety_stock, 2),
        reorder_point: round(reorder_point, 2),
        suggested_order_qty: suggested,
        low_stock: stock.available < LOW_STOCK_UNITS,
        overstock: stock.available > 0 && last_sale.is_none_or(|days_ago| days_ago >= OVERSTOCK_DAYS),
        turnover_30d: (on_hand > 0.0).then(|| round(units_30 / on_hand, 4)),
        turnover_90d: (on_hand > 0.0).then(|| round(units_90 / on_hand, 4)),
        stockout_incidents_90d: recent.stockout_days_90d,
        model: forecast.map(|f| f.model.clone()),
    }
}

/// What the lake says about every product as of a day: its recent demand
/// and stockout days, and its forecast when a run for that day exists. It
/// depends on the lake alone (not on live stock or the plan's settings), so
/// a caller may keep it while the day's files stay as they are.
#[derive(Clone, Debug, Default)]
pub struct PlanInputs {
    pub as_of: NaiveDate,
    pub recent: std::collections::HashMap<String, RecentDemand>,
    pub forecasts: std::collections::HashMap<String, UnitsForecast>,
}

impl PlanInputs {
    /// The plan of every product in `stock`.
    pub fn plans(&self, stock: &[StockPosition], settings: PlanSettings) -> Vec<PlanRow> {
        let empty = RecentDemand::default();
        stock
            .iter()
            .map(|s| {
                let demand = self.recent.get(&s.product_id).unwrap_or(&empty);
                plan(s, demand, self.forecasts.get(&s.product_id), self.as_of, settings)
            })
            .collect()
    }
}

/// The plan of every product in `stock`, from the lake as of `as_of`.
pub async fn plans(
    ctx: &datafusion::prelude::SessionContext,
    as_of: NaiveDate,
    stock: &[StockPosition],
    settings: PlanSettings,
) -> Result<Vec<PlanRow>, crate::ForecastError> {
    Ok(plan_inputs(ctx, as_of).await?.plans(stock, settings))
}

/// The lake's part of the plan as of `as_of`: the last 90 days of demand,
/// the stockout days, and the product forecasts of the `demand_forecast`
/// run for `as_of` when there is one.
pub async fn plan_inputs(
    ctx: &datafusion::prelude::SessionContext,
    as_of: NaiveDate,
) -> Result<PlanInputs, crate::ForecastError> {
    use std::collections::HashMap;

    use crate::series::{self, Selection};
    use schemas::forecast::{DEMAND_FORECAST_TABLE, Scope};
    use schemas::tables::Table;

    let tables = series::table_names(ctx);
    let demand = series::load_days(ctx, as_of, OVERSTOCK_DAYS as i64, &Selection::Scopes(vec![Scope::Product])).await?;
    let mut recent: HashMap<String, RecentDemand> = HashMap::new();
    for s in demand {
        let entry = recent.entry(s.key).or_default();
        // Days before the series' first demand are zeros.
        let days = OVERSTOCK_DAYS.max(s.units.len());
        if entry.daily_units.len() < days {
            let mut padded = vec![0.0; days - entry.daily_units.len()];
            padded.append(&mut entry.daily_units);
            entry.daily_units = padded;
        }
        let offset = entry.daily_units.len() - s.units.len();
        for (i, u) in s.units.iter().enumerate() {
            entry.daily_units[offset + i] += u;
        }
    }
    let from = as_of - Duration::days(OVERSTOCK_DAYS as i64 - 1);
    let next = as_of + Duration::days(1);
    if tables.iter().any(|t| t == Table::OrderEvents.name()) {
        let sql = format!(
            "SELECT i.product_id, CAST(COUNT(DISTINCT CAST(e.occurred_at AS DATE)) AS BIGINT) AS days \
             FROM order_events e JOIN order_items i ON e.order_id = i.order_id \
             WHERE e.date BETWEEN '{from}' AND '{as_of}' AND e.occurred_at < TIMESTAMP '{next}T00:00:00Z' \
             AND e.status = '{}' AND e.reason = '{}' \
             AND i.date BETWEEN '{}' AND '{as_of}' GROUP BY i.product_id",
            schemas::OrderStatus::Cancelled.as_str(),
            schemas::CancelReason::OutOfStock.as_str(),
            from - Duration::days(1),
        );
        for batch in ctx.sql(&sql).await?.collect().await? {
            let shape = || crate::ForecastError::Shape("the stockout query's columns".into());
            let ids = arrow::array::AsArray::as_string_opt::<i32>(batch.column(0)).ok_or_else(shape)?;
            let days = arrow::array::AsArray::as_primitive_opt::<arrow::datatypes::Int64Type>(batch.column(1))
                .ok_or_else(shape)?;
            for i in 0..batch.num_rows() {
                recent.entry(ids.value(i).to_string()).or_default().stockout_days_90d = days.value(i).max(0) as u64;
            }
        }
    }
    let mut forecasts: HashMap<String, UnitsForecast> = HashMap::new();
    if tables.iter().any(|t| t == DEMAND_FORECAST_TABLE) {
        let sql = format!(
            "SELECT key, currency, forecast, hi95, model FROM {DEMAND_FORECAST_TABLE} \
             WHERE as_of = '{as_of}' AND scope = 'product' AND metric = 'units' ORDER BY key, currency, date"
        );
        let mut currency_of: HashMap<String, String> = HashMap::new();
        for batch in ctx.sql(&sql).await?.collect().await? {
            let shape = || crate::ForecastError::Shape("the forecast table's columns".into());
            let text = |i: usize| arrow::array::AsArray::as_string_opt::<i32>(batch.column(i)).ok_or_else(shape);
            let number = |i: usize| {
                arrow::array::AsArray::as_primitive_opt::<arrow::datatypes::Float64Type>(batch.column(i))
                    .ok_or_else(shape)
            };
            let (keys, currencies, points, his, models) = (text(0)?, text(1)?, number(2)?, number(3)?, text(4)?);
            for i in 0..batch.num_rows() {
                let key = keys.value(i);
                // One currency per product: the first one listed.
                let first = currency_of.entry(key.to_string()).or_insert_with(|| currencies.value(i).to_string());
                if first != currencies.value(i) {
                    continue;
                }
                let f = forecasts.entry(key.to_string()).or_default();
                f.model = models.value(i).to_string();
                f.point.push(points.value(i));
                f.hi95.push(his.value(i));
            }
        }
    }
    Ok(PlanInputs { as_of, recent, forecasts })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stock(available: u64) -> StockPosition {
        StockPosition { product_id: "p".into(), name: None, category: None, available, reserved: 2 }
    }

    #[test]
    fn steady_demand_runs_out_when_the_forecast_says() {
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let recent = RecentDemand { daily_units: vec![2.0; 90], stockout_days_90d: 1 };
        let forecast = UnitsForecast { model: "m".into(), point: vec![2.0; 90], hi95: vec![2.0 + 1.96; 90] };
        let row = plan(&stock(9), &recent, Some(&forecast), as_of, PlanSettings::default());
        assert_eq!(row.avg_daily_demand_30d, 2.0);
        assert_eq!(row.days_of_cover, Some(4.5));
        // 2, 4, 6, 8, 10 > 9 on the fifth day.
        assert_eq!(row.stockout_date, NaiveDate::from_ymd_opt(2026, 12, 5));
        assert_eq!(row.lead_time_demand, 14.0);
        // σ = 1 a day, √7 over the lead time, z(0.95) = 1.645.
        assert!((row.safety_stock - 1.645 * 7f64.sqrt()).abs() < 0.01, "{}", row.safety_stock);
        assert!(row.low_stock && !row.overstock);
        assert_eq!(row.suggested_order_qty, (74.0 + row.safety_stock - 9.0_f64).ceil() as u64);
        assert_eq!(row.turnover_30d, Some(60.0 / 11.0).map(|t| round(t, 4)));
    }

    #[test]
    fn stock_without_sales_is_overstock_and_needs_no_order() {
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let row = plan(&stock(500), &RecentDemand::default(), None, as_of, PlanSettings::default());
        assert!(row.overstock && !row.low_stock);
        assert_eq!((row.days_of_cover, row.stockout_date, row.suggested_order_qty), (None, None, 0));
    }
}
