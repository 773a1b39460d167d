//! Customer analytics from the lake's `orders` (less the cancelled ones,
//! told by `order_events`): each customer's segment and lifetime value,
//! cohort retention by month of first order, and new against returning
//! customers per day.
//!
//! DataFusion scans the orders and anti-joins the cancellations; the kept
//! orders stream through one pass here that interns each customer and
//! keeps, per customer, their days of ordering and, per currency, their
//! count, value and first and last order. Grouping 10M orders by customer
//! and by customer-day in SQL held several hash tables of string keys at
//! once (4 GB on the 10M-order seed, and a 1 GiB pool refused it); this
//! pass holds about 60 bytes per order.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{Date32Type, Decimal128Type, TimestampMicrosecondType};
use chrono::{Datelike, NaiveDate};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use schemas::customers::{
    CHURN_AFTER_DAYS, HIGH_VALUE_SHARE, Segment, customer_cohorts_schema, customer_segments_schema,
    customers_daily_schema,
};
use schemas::tables::{MONEY_PRECISION, MONEY_SCALE};

use crate::{CustomersError, Interned, utf8};

/// The three customer tables of one run.
pub struct CustomerTables {
    pub segments: RecordBatch,
    pub cohorts: RecordBatch,
    pub daily: RecordBatch,
}

fn shape(what: &'static str) -> CustomersError {
    CustomersError::Shape(what)
}

/// Every customer table as of the end of `as_of` (orders placed after it,
/// and cancellations recorded after it, are not read).
pub async fn customer_tables(ctx: &SessionContext, as_of: NaiveDate) -> Result<CustomerTables, CustomersError> {
    // The cancellations (a tenth of the orders) are the hash join's build
    // side; the orders stream past them. (A LEFT ANTI JOIN from orders
    // builds on the orders: 10M ids held at once.)
    let kept = if ctx.table_exist("order_events")? {
        format!(
            "SELECT o.customer_id, o.currency, o.placed_at, o.total FROM (SELECT DISTINCT order_id FROM order_events \
             WHERE status = {cancelled} AND date <= '{as_of}') c RIGHT ANTI JOIN orders o ON c.order_id = o.order_id \
             WHERE o.date <= '{as_of}'",
            cancelled = schemas::sql::SqlLiteral::sql(schemas::OrderStatus::Cancelled),
        )
    } else {
        format!("SELECT customer_id, currency, placed_at, total FROM orders WHERE date <= '{as_of}'")
    };
    let mut book = Book::default();
    let mut stream = ctx.sql(&kept).await?.execute_stream().await?;
    while let Some(batch) = stream.next().await {
        book.add(&batch?)?;
    }
    // Sorting 1.8M customers takes seconds of a core: off the async
    // workers, which the stream job in the same process shares.
    tokio::task::spawn_blocking(move || {
        let (customers, high) = book.segments();
        Ok(CustomerTables {
            segments: customers_batch(&customers, &high, as_of)?,
            cohorts: cohorts_batch(&book, as_of)?,
            daily: daily_batch(&book)?,
        })
    })
    .await
    .map_err(|e| CustomersError::Worker(e.to_string()))?
}

/// The kept orders, per customer.
#[derive(Default)]
struct Book {
    customers: Interned,
    /// Per customer, the day (days from the epoch) of each kept order.
    days: Vec<Vec<i32>>,
    currencies: Vec<String>,
    /// Per (customer, currency): orders, value, first and last order.
    totals: HashMap<(u32, u16), Totals>,
}

#[derive(Clone, Copy)]
struct Totals {
    orders: i64,
    value: i128,
    first: i64,
    last: i64,
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

impl Book {
    fn add(&mut self, batch: &RecordBatch) -> Result<(), CustomersError> {
        let (ids, currencies) = (utf8(batch.column(0))?, utf8(batch.column(1))?);
        let ids = ids.as_string_opt::<i32>().ok_or_else(|| shape("customer_id"))?;
        let currencies = currencies.as_string_opt::<i32>().ok_or_else(|| shape("currency"))?;
        let placed =
            batch.column(2).as_primitive_opt::<TimestampMicrosecondType>().ok_or_else(|| shape("placed_at"))?;
        let totals = batch.column(3).as_primitive_opt::<Decimal128Type>().ok_or_else(|| shape("total"))?;
        for i in 0..batch.num_rows() {
            if ids.is_null(i) || placed.is_null(i) {
                continue;
            }
            let id = ids.value(i);
            let (customer, new) = self.customers.number(id);
            if new {
                self.days.push(Vec::new());
            }
            let currency = if currencies.is_null(i) { "" } else { currencies.value(i) };
            let currency = match self.currencies.iter().position(|c| c == currency) {
                Some(k) => k as u16,
                None => {
                    self.currencies.push(currency.to_string());
                    (self.currencies.len() - 1) as u16
                }
            };
            let at = placed.value(i);
            let value = if totals.is_null(i) { 0 } else { totals.value(i) };
            self.days[customer as usize].push(at.div_euclid(MICROS_PER_DAY) as i32);
            let entry =
                self.totals.entry((customer, currency)).or_insert(Totals { orders: 0, value: 0, first: at, last: at });
            entry.orders += 1;
            entry.value += value;
            entry.first = entry.first.min(at);
            entry.last = entry.last.max(at);
        }
        Ok(())
    }

    /// Every (customer, currency), sorted, and whether each is among the
    /// currency's top spenders: the first ⌈10%⌉ by value (ties by id).
    fn segments(&self) -> (Vec<Customer>, Vec<bool>) {
        let mut customers: Vec<Customer> = self
            .totals
            .iter()
            .map(|((c, k), t)| Customer {
                id: self.customers.names[*c as usize].clone(),
                currency: self.currencies[*k as usize].clone(),
                orders: t.orders,
                value: t.value,
                first: t.first,
                last: t.last,
            })
            .collect();
        customers.sort_by(|x, y| x.id.cmp(&y.id).then_with(|| x.currency.cmp(&y.currency)));
        let mut by_value: Vec<usize> = (0..customers.len()).collect();
        by_value.sort_by(|&a, &b| {
            let (x, y) = (&customers[a], &customers[b]);
            x.currency.cmp(&y.currency).then(y.value.cmp(&x.value)).then_with(|| x.id.cmp(&y.id))
        });
        let mut per_currency: BTreeMap<&str, usize> = BTreeMap::new();
        for c in &customers {
            *per_currency.entry(c.currency.as_str()).or_default() += 1;
        }
        let mut high = vec![false; customers.len()];
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for &i in &by_value {
            let currency = customers[i].currency.as_str();
            let rank = seen.entry(currency).or_default();
            let quota = (per_currency[currency] as f64 * HIGH_VALUE_SHARE).ceil() as usize;
            high[i] = *rank < quota;
            *rank += 1;
        }
        (customers, high)
    }
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

/// The first day of the month of an Arrow day number.
fn month_of(day: i32) -> NaiveDate {
    Date32Type::to_naive_date_opt(day).and_then(|d| d.with_day(1)).unwrap_or_default()
}

/// Months from `cohort` to `month` (both first days of a month).
fn months_between(cohort: NaiveDate, month: NaiveDate) -> i32 {
    (month.year() - cohort.year()) * 12 + month.month() as i32 - cohort.month() as i32
}

fn cohorts_batch(book: &Book, as_of: NaiveDate) -> Result<RecordBatch, CustomersError> {
    // cohort → month offset → customers ordering then.
    let mut cells: BTreeMap<NaiveDate, BTreeMap<i32, i64>> = BTreeMap::new();
    for days in &book.days {
        let Some(first) = days.iter().min() else { continue };
        let cohort = month_of(*first);
        let mut offsets: Vec<i32> = days.iter().map(|d| months_between(cohort, month_of(*d))).collect();
        offsets.sort_unstable();
        offsets.dedup();
        let row = cells.entry(cohort).or_default();
        for k in offsets {
            *row.entry(k).or_default() += 1;
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
            cohort.push(Date32Type::from_naive_date(*c));
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

/// Per day: [new customers, returning customers, their orders, theirs].
fn daily_batch(book: &Book) -> Result<RecordBatch, CustomersError> {
    let mut per_day: BTreeMap<i32, [i64; 4]> = BTreeMap::new();
    for days in &book.days {
        let Some(first) = days.iter().min().copied() else { continue };
        let mut sorted = days.clone();
        sorted.sort_unstable();
        let mut previous = None;
        for d in sorted {
            let row = per_day.entry(d).or_default();
            let (customer, orders) = if d == first { (0, 2) } else { (1, 3) };
            if previous != Some(d) {
                row[customer] += 1;
            }
            row[orders] += 1;
            previous = Some(d);
        }
    }
    let column = |k: usize| -> ArrayRef { Arc::new(per_day.values().map(|r| r[k]).collect::<Int64Array>()) };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(per_day.keys().copied().collect::<Vec<i32>>())),
        column(0),
        column(1),
        column(2),
        column(3),
    ];
    Ok(RecordBatch::try_new(customers_daily_schema(), columns)?)
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
