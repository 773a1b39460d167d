//! The customers tables' files: `{table}/as_of=YYYY-MM-DD/part.parquet`,
//! one per run and table, rows sorted by key, so the same lake and `as_of`
//! give byte-identical files and a re-run replaces its partition's file.

use std::sync::Arc;

use analytics::parquet_out::{FileLayout, encode};
use analytics::store::DataStore;
use arrow::array::{ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use chrono::NaiveDate;
use schemas::customers::{
    AFFINITY_TOP_K, CUSTOMER_COHORTS_TABLE, CUSTOMER_PRODUCTS_TABLE, CUSTOMER_SEGMENTS_TABLE, CUSTOMERS_DAILY_TABLE,
    PRODUCT_AFFINITY_TABLE, PRODUCT_POPULARITY_TABLE, product_affinity_schema, product_popularity_schema,
};
use schemas::forecast::AS_OF_COLUMN;

use crate::CustomersError;
use crate::affinity::{AffinityModel, category_ranks, top_k};

/// The file of `table`'s `as_of` partition.
pub fn file_path(table: &str, as_of: NaiveDate) -> String {
    format!("{table}/{AS_OF_COLUMN}={as_of}/part.parquet")
}

/// Each table's sort order and bloom-filtered lookup column.
fn layout(table: &str) -> FileLayout {
    match table {
        PRODUCT_AFFINITY_TABLE => FileLayout::new(&["product_id", "rank"], &["product_id"]),
        PRODUCT_POPULARITY_TABLE => FileLayout::new(&["category", "category_rank"], &[]),
        CUSTOMER_SEGMENTS_TABLE => FileLayout::new(&["customer_id", "currency"], &["customer_id"]),
        CUSTOMER_COHORTS_TABLE => FileLayout::new(&["cohort", "month_offset"], &[]),
        CUSTOMERS_DAILY_TABLE => FileLayout::new(&["day"], &[]),
        // Written in order already (customer, then most recent first):
        // small row groups, so a customer's lookup decodes few rows.
        CUSTOMER_PRODUCTS_TABLE => FileLayout::new(&[], &["customer_id"]).with_row_group_rows(32 * 1024),
        _ => FileLayout::new(&[], &[]),
    }
}

/// The affinity table's rows: each product's best [`AFFINITY_TOP_K`]
/// (the model keeps no more; the cut here holds for any model).
pub fn affinity_batch(model: &AffinityModel) -> Result<RecordBatch, CustomersError> {
    let top = top_k(&model.pairs, AFFINITY_TOP_K);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(top.iter().map(|(_, p)| Some(p.product_id.as_str())).collect::<StringArray>()),
        Arc::new(top.iter().map(|(r, _)| *r as i32).collect::<Int32Array>()),
        Arc::new(top.iter().map(|(_, p)| Some(p.other_id.as_str())).collect::<StringArray>()),
        Arc::new(top.iter().map(|(_, p)| p.support as i64).collect::<Int64Array>()),
        Arc::new(top.iter().map(|(_, p)| p.product_orders as i64).collect::<Int64Array>()),
        Arc::new(top.iter().map(|(_, p)| p.other_orders as i64).collect::<Int64Array>()),
        Arc::new(top.iter().map(|(_, p)| round6(p.confidence)).collect::<Float64Array>()),
        Arc::new(top.iter().map(|(_, p)| round6(p.lift)).collect::<Float64Array>()),
        Arc::new(top.iter().map(|(_, p)| round6(p.cosine)).collect::<Float64Array>()),
    ];
    Ok(RecordBatch::try_new(product_affinity_schema(), columns)?)
}

/// Six decimals: enough to rank by, and no last-bit noise in the files.
pub fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

pub fn popularity_batch(model: &AffinityModel) -> Result<RecordBatch, CustomersError> {
    let ranks = category_ranks(&model.products);
    let p = &model.products;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(p.iter().map(|p| Some(p.product_id.as_str())).collect::<StringArray>()),
        Arc::new(p.iter().map(|p| Some(p.category.as_str())).collect::<StringArray>()),
        Arc::new(p.iter().map(|p| p.orders as i64).collect::<Int64Array>()),
        Arc::new(ranks.iter().map(|r| *r as i32).collect::<Int32Array>()),
    ];
    Ok(RecordBatch::try_new(product_popularity_schema(), columns)?)
}

/// Writes (or replaces) `table`'s file for `as_of`; returns its size.
pub async fn write(
    store: &DataStore,
    table: &'static str,
    as_of: NaiveDate,
    batch: RecordBatch,
) -> Result<usize, CustomersError> {
    let schema = batch.schema();
    let bytes = tokio::task::spawn_blocking(move || encode(&schema, &[batch], &layout(table)))
        .await
        .map_err(|e| CustomersError::Worker(e.to_string()))??;
    let size = bytes.len();
    store.put(&store.path(&file_path(table, as_of)), bytes).await?;
    Ok(size)
}

/// The `as_of` days `table` has, ascending.
pub async fn partitions(store: &DataStore, table: &str) -> Result<Vec<NaiveDate>, CustomersError> {
    Ok(store.partition_days(table, AS_OF_COLUMN).await?)
}
