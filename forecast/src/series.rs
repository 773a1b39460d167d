//! Daily demand series from the lake's base tables, in event time: what
//! customers ordered (`order_items` by `placed_at`, UTC days), every placed
//! order except the ones the fraud review rejected by `as_of` (a stockout
//! censors sales, not demand, so out-of-stock cancellations still count).
//! Per product, category and total, per currency; days without orders are
//! zeros from the series' first day with demand to `as_of`.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Date32Type, Float64Type};
use chrono::{Duration, NaiveDate};
use datafusion::prelude::SessionContext;
use schemas::CancelReason;
use schemas::OrderStatus;
use schemas::forecast::{Metric, Scope, TOTAL_KEY};
use schemas::tables::Table;

use crate::ForecastError;

/// History a forecast reads: three years, enough for MSTL's yearly period
/// (two years) with room to backtest.
pub const MAX_HISTORY_DAYS: i64 = 3 * 365;

/// Which series to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every series of these scopes.
    Scopes(Vec<Scope>),
    /// One product's, one category's, or the total's.
    One { scope: Scope, key: String },
}

/// One series: both metrics, day by day from `first_day` to `as_of`.
#[derive(Clone, Debug, PartialEq)]
pub struct DemandSeries {
    pub scope: Scope,
    pub key: String,
    pub currency: String,
    pub first_day: NaiveDate,
    pub units: Vec<f64>,
    pub revenue: Vec<f64>,
}

impl DemandSeries {
    pub fn values(&self, metric: Metric) -> &[f64] {
        match metric {
            Metric::Units => &self.units,
            Metric::Revenue => &self.revenue,
        }
    }
}

/// `'text'` as a SQL literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

pub fn day_number(day: NaiveDate) -> i32 {
    (day - NaiveDate::default()).num_days() as i32
}

pub fn day_of(number: i32) -> NaiveDate {
    NaiveDate::default() + Duration::days(i64::from(number))
}

/// The item rows a selection reads, aggregated per product and day.
fn demand_sql(as_of: NaiveDate, history_days: i64, tables: &[String], filter: &str) -> String {
    let from = as_of - Duration::days(history_days.max(1) - 1);
    let next = as_of + Duration::days(1);
    // The few rejected orders are the hash join's build side and the items
    // stream past them (a RIGHT ANTI join: a LEFT one would build a table
    // of every item, hundreds of MB on a large lake).
    let items = format!(
        "order_items i WHERE i.date BETWEEN '{from}' AND '{as_of}' AND i.placed_at < TIMESTAMP '{next}T00:00:00Z' {filter}"
    );
    let source = if tables.iter().any(|t| t == Table::OrderEvents.name()) {
        format!(
            "(SELECT DISTINCT order_id FROM order_events WHERE date BETWEEN '{from}' AND '{as_of}' \
             AND status = '{}' AND reason = '{}' AND occurred_at < TIMESTAMP '{next}T00:00:00Z') r \
             RIGHT ANTI JOIN (SELECT * FROM {items}) i ON r.order_id = i.order_id",
            OrderStatus::Cancelled.as_str(),
            CancelReason::FraudRejected.as_str()
        )
    } else {
        format!("(SELECT * FROM {items}) i")
    };
    format!(
        "SELECT i.product_id, i.category, i.currency, CAST(i.placed_at AS DATE) AS day, \
         CAST(SUM(i.quantity) AS DOUBLE) AS units, SUM(CAST(i.line_total AS DOUBLE)) AS revenue \
         FROM {source} \
         GROUP BY i.product_id, i.category, i.currency, CAST(i.placed_at AS DATE)"
    )
}

type Days = BTreeMap<i32, (f64, f64)>;

/// The series of `selection` up to `as_of` ([`MAX_HISTORY_DAYS`] at most),
/// sorted by scope, key and currency. Empty when the lake has no items.
pub async fn load(
    ctx: &SessionContext,
    as_of: NaiveDate,
    selection: &Selection,
) -> Result<Vec<DemandSeries>, ForecastError> {
    load_days(ctx, as_of, MAX_HISTORY_DAYS, selection).await
}

/// [`load`] over the last `history_days` days only.
pub async fn load_days(
    ctx: &SessionContext,
    as_of: NaiveDate,
    history_days: i64,
    selection: &Selection,
) -> Result<Vec<DemandSeries>, ForecastError> {
    let tables = table_names(ctx);
    if !tables.iter().any(|t| t == Table::OrderItems.name()) {
        return Ok(Vec::new());
    }
    let filter = match selection {
        Selection::One { scope: Scope::Product, key } => format!("AND i.product_id = {}", literal(key)),
        Selection::One { scope: Scope::Category, key } => format!("AND i.category = {}", literal(key)),
        _ => String::new(),
    };
    let batches = ctx.sql(&demand_sql(as_of, history_days, &tables, &filter)).await?.collect().await?;
    let wanted = |scope: Scope| match selection {
        Selection::Scopes(scopes) => scopes.contains(&scope),
        Selection::One { scope: s, .. } => *s == scope,
    };
    let mut groups: BTreeMap<(Scope, String, String), Days> = BTreeMap::new();
    for batch in &batches {
        for_each_row(batch, |product, category, currency, day, units, revenue| {
            let keys = [(Scope::Product, product), (Scope::Category, category), (Scope::Total, TOTAL_KEY)];
            for (scope, key) in keys {
                if wanted(scope) {
                    let days = groups.entry((scope, key.to_string(), currency.to_string())).or_default();
                    let cell = days.entry(day).or_default();
                    cell.0 += units;
                    cell.1 += revenue;
                }
            }
        })?;
    }
    let last = day_number(as_of);
    Ok(groups
        .into_iter()
        .filter_map(|((scope, key, currency), days)| {
            let first = *days.keys().next()?;
            let len = (last - first + 1).max(0) as usize;
            let (mut units, mut revenue) = (vec![0.0; len], vec![0.0; len]);
            for (day, (u, r)) in days {
                units[(day - first) as usize] = u;
                // Money sums to cents: no float dust from the decimal cast.
                revenue[(day - first) as usize] = (r * 100.0).round() / 100.0;
            }
            Some(DemandSeries { scope, key, currency, first_day: day_of(first), units, revenue })
        })
        .collect())
}

pub fn table_names(ctx: &SessionContext) -> Vec<String> {
    let state = ctx.state();
    let catalog = state.config_options().catalog.default_catalog.clone();
    let schema = state.config_options().catalog.default_schema.clone();
    ctx.catalog(&catalog).and_then(|c| c.schema(&schema)).map(|s| s.table_names()).unwrap_or_default()
}

fn for_each_row(
    batch: &RecordBatch,
    mut row: impl FnMut(&str, &str, &str, i32, f64, f64),
) -> Result<(), ForecastError> {
    let shape = || ForecastError::Shape("the demand query's columns".into());
    let product = batch.column(0).as_string_opt::<i32>().ok_or_else(shape)?;
    let category = batch.column(1).as_string_opt::<i32>().ok_or_else(shape)?;
    let currency = batch.column(2).as_string_opt::<i32>().ok_or_else(shape)?;
    let day = batch.column(3).as_primitive_opt::<Date32Type>().ok_or_else(shape)?;
    let units = batch.column(4).as_primitive_opt::<Float64Type>().ok_or_else(shape)?;
    let revenue = batch.column(5).as_primitive_opt::<Float64Type>().ok_or_else(shape)?;
    for i in 0..batch.num_rows() {
        if day.is_null(i) {
            continue;
        }
        row(product.value(i), category.value(i), currency.value(i), day.value(i), units.value(i), revenue.value(i));
    }
    Ok(())
}
