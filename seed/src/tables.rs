//! The seeded rows as the lake's tables: a day's orders, items and
//! events, the fraud labels, customers and products.

use std::sync::Arc;

use analytics::AnalyticsError;
use analytics::rows::{Categories, money_value};
use arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};
use chrono::{DateTime, Utc};
use schemas::tables::Table;
use schemas::{Order, OrderEvent};

use crate::catalog::*;
use crate::day::*;

/// The base tables of one day, as record batches: orders, order_items,
/// order_events, fraud_labels and the day's new customers.
pub fn day_batches(day: &SeedDay, categories: &Categories) -> Result<Vec<(Table, RecordBatch)>, AnalyticsError> {
    // Borrowed, not cloned: the day's rows are built straight from it, in
    // generation order, then put in time order as columns. Reading the
    // events (and their strings) in time order instead jumped all over the
    // day's memory, a cache miss or more per event. Sorted once here, the
    // rows are in order for their files and for the rollups.
    let orders: Vec<(u64, &Order)> = day.orders.iter().map(|o| (0, &o.order)).collect();
    let events: Vec<(u64, &OrderEvent)> = day.orders.iter().flat_map(|o| o.events.iter().map(|e| (0, e))).collect();
    let time_sorted = |table: Table, rows: RecordBatch| {
        analytics::parquet_out::sort_rows(&rows.schema(), &[rows], &analytics::layout::table_layout(table))
    };
    Ok(vec![
        (Table::Orders, time_sorted(Table::Orders, analytics::rows::orders_batch(&orders)?)?),
        (Table::OrderItems, time_sorted(Table::OrderItems, analytics::rows::order_items_batch(&orders, categories)?)?),
        (Table::OrderEvents, time_sorted(Table::OrderEvents, analytics::rows::order_events_batch(&events)?)?),
        (Table::FraudLabels, fraud_labels_batch(day)?),
        (Table::Customers, customers_batch(&day.new_customers)?),
    ])
}

/// The day's ground truth: one row per seeded fraud order (`is_fraud`)
/// and per honest decoy (not fraud, but looks it).
pub fn fraud_labels_batch(day: &SeedDay) -> Result<RecordBatch, AnalyticsError> {
    let mut labels =
        (StringBuilder::new(), StringBuilder::new(), ts(), StringBuilder::new(), arrow::array::BooleanBuilder::new());
    for o in &day.orders {
        let Some(pattern) = o.fraud.or(o.decoy) else { continue };
        labels.0.append_value(o.order.order_id.to_string());
        labels.1.append_value(&o.order.customer_id);
        labels.2.append_value(o.order.placed_at.timestamp_micros());
        labels.3.append_value(pattern);
        labels.4.append_value(o.fraud.is_some());
    }
    Ok(RecordBatch::try_new(
        Table::FraudLabels.schema(),
        vec![
            Arc::new(labels.0.finish()),
            Arc::new(labels.1.finish()),
            Arc::new(labels.2.finish()),
            Arc::new(labels.3.finish()),
            Arc::new(labels.4.finish()),
        ],
    )?)
}

pub(crate) fn ts() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone("UTC")
}

pub fn customers_batch(customers: &[(String, DateTime<Utc>, usize)]) -> Result<RecordBatch, AnalyticsError> {
    let (mut id, mut at, mut country, mut city) =
        (StringBuilder::new(), ts(), StringBuilder::new(), StringBuilder::new());
    for (customer, signed_up, c) in customers {
        let (name, code) = CITIES[c % CITIES.len()];
        id.append_value(customer);
        at.append_value(signed_up.timestamp_micros());
        country.append_value(code);
        city.append_value(name);
    }
    let columns: Vec<ArrayRef> =
        vec![Arc::new(id.finish()), Arc::new(at.finish()), Arc::new(country.finish()), Arc::new(city.finish())];
    Ok(RecordBatch::try_new(Table::Customers.schema(), columns)?)
}

pub fn products_batch(catalog: &[SeedProduct], listed_at: DateTime<Utc>) -> Result<RecordBatch, AnalyticsError> {
    let mut b = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        arrow::array::Decimal128Builder::new().with_data_type(schemas::tables::money()),
        StringBuilder::new(),
        Int64Builder::new(),
        StringBuilder::new(),
        ts(),
    );
    for p in catalog {
        b.0.append_value(&p.product.product_id);
        b.1.append_value(&p.product.name);
        b.2.append_value(&p.product.category);
        b.3.append_value(money_value(p.product.unit_price, p.product.currency));
        b.4.append_value(p.product.currency.code());
        b.5.append_value(p.initial_stock as i64);
        b.6.append_value(p.stock_level);
        b.7.append_value(listed_at.timestamp_micros());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(b.0.finish()),
        Arc::new(b.1.finish()),
        Arc::new(b.2.finish()),
        Arc::new(b.3.finish()),
        Arc::new(b.4.finish()),
        Arc::new(b.5.finish()),
        Arc::new(b.6.finish()),
        Arc::new(b.7.finish()),
    ];
    Ok(RecordBatch::try_new(Table::Products.schema(), columns)?)
}

pub fn categories_of(catalog: &[SeedProduct]) -> Categories {
    catalog.iter().map(|p| (p.product.product_id.clone(), p.product.category.clone())).collect()
}

/// A seed file's name: not `part-…`, so no stream job ever treats it as its own.
pub fn seed_file_name(seed: u64, date: &str) -> String {
    format!("seed-{seed}-{date}.parquet")
}
