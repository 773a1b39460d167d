//! Customer analytics from the lake's `orders` (less the cancelled ones,
//! told by `order_events`): each customer's segment and lifetime value,
//! cohort retention by month of first order, and new against returning
//! customers per day. DataFusion does the scans and groupings; the
//! segment rules (a percentile and three thresholds) are applied here.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Date32Type, Decimal128Type, Int64Type, TimestampMicrosecondType};
use chrono::{Datelike, NaiveDate};
use datafusion::prelude::SessionContext;
use schemas::customers::{
    CHURN_AFTER_DAYS, HIGH_VALUE_SHARE, Segment, customer_cohorts_schema, customer_segments_schema,
    customers_daily_schema,
};
use schemas::tables::{MONEY_PRECISION, MONEY_SCALE};

use crate::CustomersError;

/// The view of kept orders the queries below read.
const KEPT: &str = "customers_kept_orders";

/// The three customer tables of one run.
pub struct CustomerTables {
    pub segments: RecordBatch,
    pub cohorts: RecordBatch,
    pub daily: RecordBatch,
}

fn shape(what: &'static str) -> CustomersError {
    CustomersError::Shape(what)
}

fn utf8(column: &ArrayRef) -> Result<ArrayRef, CustomersError> {
    Ok(arrow::compute::cast(column, &DataType::Utf8).map_err(datafusion::error::DataFusionError::from)?)
}

/// The days from the epoch of `day` (Arrow's Date32).
pub fn day_number(day: NaiveDate) -> i32 {
    (day - NaiveDate::default()).num_days() as i32
}

/// Every customer table as of the end of `as_of` (orders placed after it,
/// and cancellations recorded after it, are not read).
pub async fn customer_tables(ctx: &SessionContext, as_of: NaiveDate) -> Result<CustomerTables, CustomersError> {
    let cancelled = if ctx.table_exist("order_events")? {
        format!(
            " LEFT ANTI JOIN (SELECT DISTINCT order_id FROM order_events \
             WHERE status = 'cancelled' AND date <= '{as_of}') c ON o.order_id = c.order_id"
        )
    } else {
        String::new()
    };
    let kept = format!(
        "SELECT o.customer_id, o.currency, o.placed_at, o.total FROM orders o{cancelled} WHERE o.date <= '{as_of}'"
    );
    let kept = ctx.sql(&kept).await?.cache().await?;
    ctx.register_table(KEPT, kept.into_view())?;
    let result = async {
        let (segments, cohorts, daily) = tokio::try_join!(segments(ctx, as_of), cohorts(ctx, as_of), daily(ctx))?;
        Ok(CustomerTables { segments, cohorts, daily })
    }
    .await;
    ctx.deregister_table(KEPT)?;
    result
}

/// One customer's kept orders in one currency.
struct Customer {
    id: String,
    currency: String,
    orders: i64,
    value: i128,
    first: i64,
    last: i64,
}

async fn segments(ctx: &SessionContext, as_of: NaiveDate) -> Result<RecordBatch, CustomersError> {
    let sql = format!(
        "SELECT customer_id, currency, count(*) AS orders, sum(total) AS value, \
         min(placed_at) AS first_at, max(placed_at) AS last_at FROM {KEPT} GROUP BY customer_id, currency"
    );
    let mut customers = Vec::new();
    for batch in ctx.sql(&sql).await?.collect().await? {
        let (ids, currencies) = (utf8(batch.column(0))?, utf8(batch.column(1))?);
        let ids = ids.as_string_opt::<i32>().ok_or_else(|| shape("customer_id"))?;
        let currencies = currencies.as_string_opt::<i32>().ok_or_else(|| shape("currency"))?;
        let orders = batch.column(2).as_primitive_opt::<Int64Type>().ok_or_else(|| shape("orders"))?;
        let values = batch.column(3).as_primitive_opt::<Decimal128Type>().ok_or_else(|| shape("lifetime value"))?;
        let first = batch.column(4).as_primitive_opt::<TimestampMicrosecondType>().ok_or_else(|| shape("first"))?;
        let last = batch.column(5).as_primitive_opt::<TimestampMicrosecondType>().ok_or_else(|| shape("last"))?;
        for i in 0..batch.num_rows() {
            customers.push(Customer {
                id: ids.value(i).to_string(),
                currency: currencies.value(i).to_string(),
                orders: orders.value(i),
                value: if values.is_null(i) { 0 } else { values.value(i) },
                first: first.value(i),
                last: last.value(i),
            });
        }
    }
    // Top spenders per currency: the first ⌈10%⌉ by value (ties by id).
    let mut by_value: Vec<usize> = (0..customers.len()).collect();
    by_value.sort_by(|&a, &b| {
        let (x, y) = (&customers[a], &customers[b]);
        x.currency.cmp(&y.currency).then(y.value.cmp(&x.value)).then_with(|| x.id.cmp(&y.id))
    });
    let mut high = vec![false; customers.len()];
    let mut per_currency: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &customers {
        *per_currency.entry(c.currency.as_str()).or_default() += 1;
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for &i in &by_value {
        let currency = customers[i].currency.as_str();
        let rank = seen.entry(currency).or_default();
        let quota = (per_currency[currency] as f64 * HIGH_VALUE_SHARE).ceil() as usize;
        high[i] = *rank < quota;
        *rank += 1;
    }
    customers_batch(&customers, &high, as_of)
}

fn customers_batch(customers: &[Customer], high: &[bool], as_of: NaiveDate) -> Result<RecordBatch, CustomersError> {
    let end = as_of.succ_opt().unwrap_or(as_of).and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let end_micros = end.timestamp_micros();
    let days_since: Vec<i32> = customers.iter().map(|c| ((end_micros - c.last) / 86_400_000_000) as i32).collect();
    let money = |values: Vec<i128>| -> Result<ArrayRef, CustomersError> {
        Ok(Arc::new(
            Decimal128Array::from(values)
                .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)
                .map_err(datafusion::error::DataFusionError::from)?,
        ))
    };
    let timestamps =
        |values: Vec<i64>| -> ArrayRef { Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC")) };
    let average: Vec<i128> = customers.iter().map(|c| rounded_mean(c.value, c.orders)).collect();
    let churn: Vec<bool> = days_since.iter().map(|d| i64::from(*d) > CHURN_AFTER_DAYS).collect();
    let segment: Vec<&str> = customers
        .iter()
        .zip(&days_since)
        .zip(high)
        .map(|((c, d), h)| Segment::of(c.orders as u64, i64::from(*d), *h).as_str())
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(customers.iter().map(|c| Some(c.id.as_str())).collect::<StringArray>()),
        Arc::new(customers.iter().map(|c| Some(c.currency.as_str())).collect::<StringArray>()),
        Arc::new(customers.iter().map(|c| c.orders).collect::<Int64Array>()),
        money(customers.iter().map(|c| c.value).collect())?,
        money(average)?,
        timestamps(customers.iter().map(|c| c.first).collect()),
        timestamps(customers.iter().map(|c| c.last).collect()),
        Arc::new(Int32Array::from(days_since)),
        Arc::new(BooleanArray::from(high.to_vec())),
        Arc::new(BooleanArray::from(churn)),
        Arc::new(StringArray::from(segment)),
    ];
    Ok(RecordBatch::try_new(customer_segments_schema(), columns)?)
}

/// `value / count` rounded half away from zero (0 for no orders).
fn rounded_mean(value: i128, count: i64) -> i128 {
    if count <= 0 {
        return 0;
    }
    let n = i128::from(count);
    let (q, r) = (value / n, value % n);
    if 2 * r.abs() >= n { q + value.signum() } else { q }
}

/// Months from `cohort` to `month` (both first days of a month).
fn months_between(cohort: NaiveDate, month: NaiveDate) -> i32 {
    (month.year() - cohort.year()) * 12 + month.month() as i32 - cohort.month() as i32
}

async fn cohorts(ctx: &SessionContext, as_of: NaiveDate) -> Result<RecordBatch, CustomersError> {
    let sql = format!(
        "WITH months AS (SELECT DISTINCT customer_id, CAST(date_trunc('month', placed_at) AS DATE) AS month FROM {KEPT}), \
         firsts AS (SELECT customer_id, min(month) AS cohort FROM months GROUP BY customer_id) \
         SELECT f.cohort, m.month, count(*) AS active FROM months m JOIN firsts f ON m.customer_id = f.customer_id \
         GROUP BY f.cohort, m.month"
    );
    // cohort → month offset → customers ordering then.
    let mut cells: BTreeMap<NaiveDate, BTreeMap<i32, i64>> = BTreeMap::new();
    for batch in ctx.sql(&sql).await?.collect().await? {
        let cohort = batch.column(0).as_primitive_opt::<Date32Type>().ok_or_else(|| shape("cohort"))?;
        let month = batch.column(1).as_primitive_opt::<Date32Type>().ok_or_else(|| shape("month"))?;
        let active = batch.column(2).as_primitive_opt::<Int64Type>().ok_or_else(|| shape("active"))?;
        for i in 0..batch.num_rows() {
            let (Some(c), Some(m)) = (cohort.value_as_date(i), month.value_as_date(i)) else { continue };
            cells.entry(c).or_default().insert(months_between(c, m), active.value(i));
        }
    }
    let last_month = as_of.with_day(1).unwrap_or(as_of);
    let (mut cohort, mut offset, mut size, mut active, mut retention) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (c, months) in &cells {
        let customers = months.get(&0).copied().unwrap_or(0);
        // Every month up to as_of, zeros included: an empty cell is news.
        for k in 0..=months_between(*c, last_month).max(0) {
            let n = months.get(&k).copied().unwrap_or(0);
            cohort.push(day_number(*c));
            offset.push(k);
            size.push(customers);
            active.push(n);
            retention.push(if customers > 0 { n as f64 / customers as f64 } else { 0.0 });
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(cohort)),
        Arc::new(Int32Array::from(offset)),
        Arc::new(Int64Array::from(size)),
        Arc::new(Int64Array::from(active)),
        Arc::new(Float64Array::from(retention)),
    ];
    Ok(RecordBatch::try_new(customer_cohorts_schema(), columns)?)
}

async fn daily(ctx: &SessionContext) -> Result<RecordBatch, CustomersError> {
    let sql = format!(
        "WITH firsts AS (SELECT customer_id, CAST(min(placed_at) AS DATE) AS first_day FROM {KEPT} GROUP BY customer_id), \
         days AS (SELECT customer_id, CAST(placed_at AS DATE) AS day, count(*) AS n FROM {KEPT} GROUP BY 1, 2) \
         SELECT d.day, \
           sum(CASE WHEN d.day = f.first_day THEN 1 ELSE 0 END) AS new_customers, \
           sum(CASE WHEN d.day > f.first_day THEN 1 ELSE 0 END) AS returning_customers, \
           sum(CASE WHEN d.day = f.first_day THEN d.n ELSE 0 END) AS new_customer_orders, \
           sum(CASE WHEN d.day > f.first_day THEN d.n ELSE 0 END) AS returning_customer_orders \
         FROM days d JOIN firsts f ON d.customer_id = f.customer_id GROUP BY d.day ORDER BY d.day"
    );
    let batches = ctx.sql(&sql).await?.collect().await?;
    let schema = customers_daily_schema();
    let mut columns: Vec<Vec<ArrayRef>> = vec![Vec::new(); schema.fields().len()];
    for batch in &batches {
        for (i, field) in schema.fields().iter().enumerate() {
            columns[i].push(
                arrow::compute::cast(batch.column(i), field.data_type())
                    .map_err(datafusion::error::DataFusionError::from)?,
            );
        }
    }
    let columns: Vec<ArrayRef> = columns
        .into_iter()
        .zip(schema.fields())
        .map(|(parts, field)| {
            let parts: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
            if parts.is_empty() {
                Ok(arrow::array::new_empty_array(field.data_type()))
            } else {
                arrow::compute::concat(&parts).map_err(datafusion::error::DataFusionError::from)
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(RecordBatch::try_new(schema, columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_round_half_away_from_zero_and_months_count_across_years() {
        assert_eq!(rounded_mean(10, 4), 3);
        assert_eq!(rounded_mean(-10, 4), -3);
        assert_eq!(rounded_mean(9, 4), 2);
        assert_eq!(rounded_mean(5, 0), 0);
        let d = |y, m| NaiveDate::from_ymd_opt(y, m, 1).unwrap();
        assert_eq!(months_between(d(2025, 11), d(2026, 2)), 3);
        assert_eq!(months_between(d(2026, 1), d(2026, 1)), 0);
    }
}
