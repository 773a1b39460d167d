//! The `demand_forecast` table's files: `as_of=YYYY-MM-DD/{scope}.parquet`,
//! one per scope, rows sorted by key, currency, metric and date, so the
//! same lake and `as_of` give byte-identical files and a re-run replaces
//! its scope's file instead of adding one.

use std::sync::Arc;

use analytics::parquet_out::{FileLayout, encode};
use analytics::store::DataStore;
use arrow::array::{ArrayRef, Date32Builder, Float64Builder, RecordBatch, StringBuilder};
use chrono::NaiveDate;
use schemas::forecast::{
    AS_OF_COLUMN, DEMAND_FORECAST_TABLE, DEMAND_HISTORY_TABLE, HISTORY_DAYS, Metric, Scope, demand_forecast_schema,
    demand_history_schema,
};

use crate::ForecastError;
use crate::select::Choice;
use crate::series::{DemandSeries, day_number};

/// One forecast series: what it is, and its choice.
pub struct SeriesForecast<'a> {
    pub series: &'a DemandSeries,
    pub metric: Metric,
    pub choice: Choice,
}

/// The relative path of a partition, and of one scope's file in it.
pub fn partition(table: &str, as_of: NaiveDate) -> String {
    format!("{table}/{AS_OF_COLUMN}={as_of}")
}

pub fn file_path(as_of: NaiveDate, scope: Scope) -> String {
    scope_path(DEMAND_FORECAST_TABLE, as_of, scope)
}

fn scope_path(table: &str, as_of: NaiveDate, scope: Scope) -> String {
    format!("{}/{}.parquet", partition(table, as_of), scope.as_str())
}

/// The last [`HISTORY_DAYS`] days of `series` (in key order), both metrics.
pub fn history_batch(series: &[&DemandSeries], as_of: NaiveDate) -> Result<RecordBatch, ForecastError> {
    let mut columns: (StringBuilder, StringBuilder, StringBuilder, StringBuilder) =
        (StringBuilder::new(), StringBuilder::new(), StringBuilder::new(), StringBuilder::new());
    let (mut date, mut value) = (Date32Builder::new(), Float64Builder::new());
    let last = day_number(as_of);
    for s in series {
        for metric in Metric::ALL {
            let values = s.values(metric);
            let start = values.len().saturating_sub(HISTORY_DAYS);
            let first = last - (values.len() - start) as i32 + 1;
            for (i, v) in values[start..].iter().enumerate() {
                columns.0.append_value(s.scope.as_str());
                columns.1.append_value(&s.key);
                columns.2.append_value(&s.currency);
                columns.3.append_value(metric.as_str());
                date.append_value(first + i as i32);
                value.append_value(*v);
            }
        }
    }
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(columns.0.finish()),
        Arc::new(columns.1.finish()),
        Arc::new(columns.2.finish()),
        Arc::new(columns.3.finish()),
        Arc::new(date.finish()),
        Arc::new(value.finish()),
    ];
    Ok(RecordBatch::try_new(demand_history_schema(), arrays)?)
}

/// Writes (or replaces) one scope's history file of a partition.
pub async fn write_history_scope(
    store: &DataStore,
    as_of: NaiveDate,
    scope: Scope,
    batch: RecordBatch,
) -> Result<usize, ForecastError> {
    write_file(store, &scope_path(DEMAND_HISTORY_TABLE, as_of, scope), demand_history_schema(), batch).await
}

/// The rows of `forecasts` (already in key order) as one batch.
pub fn batch(forecasts: &[SeriesForecast<'_>], as_of: NaiveDate) -> Result<RecordBatch, ForecastError> {
    let rows: usize = forecasts.iter().map(|f| f.choice.point.len()).sum();
    let text = |capacity| StringBuilder::with_capacity(capacity, capacity * 8);
    let (mut scope, mut key, mut currency, mut metric, mut model) =
        (text(rows), text(rows), text(rows), text(rows), text(rows));
    let mut date = Date32Builder::with_capacity(rows);
    let mut numbers: Vec<Float64Builder> = (0..7).map(|_| Float64Builder::with_capacity(rows)).collect();
    let first_day = day_number(as_of) + 1;
    for f in forecasts {
        let c = &f.choice;
        for h in 0..c.point.len() {
            scope.append_value(f.series.scope.as_str());
            key.append_value(&f.series.key);
            currency.append_value(&f.series.currency);
            metric.append_value(f.metric.as_str());
            model.append_value(c.method.name());
            date.append_value(first_day + h as i32);
            let values = [c.point[h], c.b80.lower[h], c.b80.upper[h], c.b95.lower[h], c.b95.upper[h]];
            for (builder, value) in numbers.iter_mut().zip(values) {
                // Six significant decimals: what a plan needs, and no
                // last-bit noise in the files.
                builder.append_value((value * 1e6).round() / 1e6);
            }
            numbers[5].append_option(c.backtest.wape.map(|v| (v * 1e6).round() / 1e6));
            numbers[6].append_option(c.backtest.mase.map(|v| (v * 1e6).round() / 1e6));
        }
    }
    let mut numbers = numbers.into_iter().map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let mut next = || numbers.next().ok_or_else(|| ForecastError::Shape("forecast columns".into()));
    let (forecast, lo80, hi80, lo95, hi95, wape, mase) =
        (next()?, next()?, next()?, next()?, next()?, next()?, next()?);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(scope.finish()),
        Arc::new(key.finish()),
        Arc::new(currency.finish()),
        Arc::new(metric.finish()),
        Arc::new(date.finish()),
        forecast,
        lo80,
        hi80,
        lo95,
        hi95,
        Arc::new(model.finish()),
        wape,
        mase,
    ];
    Ok(RecordBatch::try_new(demand_forecast_schema(), columns)?)
}

/// The file layout: sorted by series and date; bloom filter on the key for
/// a product's lookup.
pub fn layout() -> FileLayout {
    FileLayout::new(&["scope", "key", "currency", "metric", "date"], &["key"])
}

/// Writes (or replaces) one scope's file of a partition; removes it when
/// there is nothing to write.
pub async fn write_scope(
    store: &DataStore,
    as_of: NaiveDate,
    scope: Scope,
    batch: RecordBatch,
) -> Result<usize, ForecastError> {
    write_file(store, &file_path(as_of, scope), demand_forecast_schema(), batch).await
}

async fn write_file(
    store: &DataStore,
    relative: &str,
    schema: arrow::datatypes::SchemaRef,
    batch: RecordBatch,
) -> Result<usize, ForecastError> {
    let path = store.path(relative);
    if batch.num_rows() == 0 {
        if store.get(&path).await?.is_some() {
            store.delete(&path).await?;
        }
        return Ok(0);
    }
    let bytes = tokio::task::spawn_blocking(move || encode(&schema, &[batch], &layout()))
        .await
        .map_err(|e| ForecastError::Worker(e.to_string()))??;
    let size = bytes.len();
    store.put(&path, bytes).await?;
    Ok(size)
}

/// The `as_of` days the table has, ascending.
pub async fn partitions(store: &DataStore, table: &str) -> Result<Vec<NaiveDate>, ForecastError> {
    Ok(store.partition_days(table, AS_OF_COLUMN).await?)
}

/// The `inventory_plan` file of a partition (one per run).
pub fn plan_path(as_of: NaiveDate) -> String {
    format!("{}/plan.parquet", partition(schemas::forecast::INVENTORY_PLAN_TABLE, as_of))
}

/// The plan rows (in product order) as one batch.
pub fn plan_batch(rows: &[crate::inventory::PlanRow]) -> Result<RecordBatch, ForecastError> {
    use arrow::array::{BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, StringArray};
    let text = |f: &dyn Fn(&crate::inventory::PlanRow) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let float = |f: &dyn Fn(&crate::inventory::PlanRow) -> Option<f64>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<Float64Array>())
    };
    let int = |f: &dyn Fn(&crate::inventory::PlanRow) -> i64| -> ArrayRef {
        Arc::new(rows.iter().map(|r| Some(f(r))).collect::<Int64Array>())
    };
    let flag = |f: &dyn Fn(&crate::inventory::PlanRow) -> bool| -> ArrayRef {
        Arc::new(rows.iter().map(|r| Some(f(r))).collect::<BooleanArray>())
    };
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let columns: Vec<ArrayRef> = vec![
        text(&|r| Some(r.product_id.as_str())),
        text(&|r| r.name.as_deref()),
        text(&|r| r.category.as_deref()),
        int(&|r| clamp(r.available)),
        int(&|r| clamp(r.reserved)),
        float(&|r| Some(r.avg_daily_demand_30d)),
        float(&|r| r.days_of_cover),
        Arc::new(rows.iter().map(|r| r.stockout_date.map(day_number)).collect::<Date32Array>()),
        Arc::new(rows.iter().map(|r| Some(r.lead_time_days as i32)).collect::<Int32Array>()),
        float(&|r| Some(r.service_level)),
        float(&|r| Some(r.lead_time_demand)),
        float(&|r| Some(r.safety_stock)),
        float(&|r| Some(r.reorder_point)),
        int(&|r| clamp(r.suggested_order_qty)),
        flag(&|r| r.low_stock),
        flag(&|r| r.overstock),
        float(&|r| r.turnover_30d),
        float(&|r| r.turnover_90d),
        int(&|r| clamp(r.stockout_incidents_90d)),
        text(&|r| r.model.as_deref()),
    ];
    Ok(RecordBatch::try_new(schemas::forecast::inventory_plan_schema(), columns)?)
}

/// Writes (or replaces) the plan of `as_of`.
pub async fn write_plan(
    store: &DataStore,
    as_of: NaiveDate,
    rows: &[crate::inventory::PlanRow],
) -> Result<usize, ForecastError> {
    let batch = plan_batch(rows)?;
    let schema = schemas::forecast::inventory_plan_schema();
    let bytes = tokio::task::spawn_blocking(move || encode(&schema, &[batch], &FileLayout::new(&["product_id"], &[])))
        .await
        .map_err(|e| ForecastError::Worker(e.to_string()))??;
    let size = bytes.len();
    store.put(&store.path(&plan_path(as_of)), bytes).await?;
    Ok(size)
}
