//! The query helpers every endpoint uses: SQL (built from checked values
//! only) over the lake as JSON or typed rows, whether a table has been
//! written yet, and a table's day partitions.

use chrono::NaiveDate;
use serde_json::Value;
use server::http::HttpError;

use crate::{Dashboard, DashboardError, params};

/// Runs `sql` (built from checked values only) as JSON objects.
pub async fn rows(state: &Dashboard, sql: &str) -> Result<Vec<Value>, HttpError> {
    let collected = state.lake.collect(sql, state.settings.row_limit, state.settings.query_timeout).await?;
    json_rows(&collected.batches)
}

/// Batches as JSON objects.
pub fn json_rows(batches: &[arrow::array::RecordBatch]) -> Result<Vec<Value>, HttpError> {
    let out = crate::sql_api::json_array(batches)?;
    serde_json::from_slice(&out).map_err(|e| DashboardError::Encode(e.to_string()).into())
}

/// `sql`'s rows read into `T` straight from the query's JSON, so money
/// ([`schemas::Amount`]) is read from its digits, never through a float.
pub async fn typed_rows<T: serde::de::DeserializeOwned>(state: &Dashboard, sql: &str) -> Result<Vec<T>, HttpError> {
    let collected = state.lake.collect(sql, state.settings.row_limit, state.settings.query_timeout).await?;
    let out = crate::sql_api::json_array(&collected.batches)?;
    serde_json::from_slice(&out).map_err(|e| DashboardError::Encode(e.to_string()).into())
}

/// Whether every table a query needs is registered; one that is not has
/// had nothing written yet (the refresh task registers it within seconds),
/// so the answer is "no rows".
pub(crate) async fn has(state: &Dashboard, names: &[&str]) -> bool {
    let tables = state.lake.tables().await;
    names.iter().all(|name| tables.contains(*name))
}

/// The `date=` partitions a table has, in order.
pub async fn partition_dates(state: &Dashboard, table: &str) -> Result<Vec<NaiveDate>, DashboardError> {
    let store = state.lake.store();
    let listing = store
        .object_store()
        .list_with_delimiter(Some(&store.path(table)))
        .await
        .map_err(|e| DashboardError::Internal(format!("cannot list {table}: {e}")))?;
    let mut dates: Vec<NaiveDate> =
        listing.common_prefixes.iter().filter_map(|p| params::partition_date(p.filename()?)).collect();
    dates.sort_unstable();
    Ok(dates)
}
