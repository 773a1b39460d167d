//! How the job's tables and pipeline outputs are laid out as files: each
//! table's sort, bloom filters and row groups, a batch split into date
//! partitions, and the files encoded and stored.

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::Int64Type;
use schemas::tables::Table;

use crate::AnalyticsError;
use crate::parquet_out::{FileLayout, encode, split_by_date};
use crate::pipeline::Evaluator;
use crate::store::DataStore;

/// Rows per row group of `order_events`. Sorted by time, an order's events
/// scatter over its days' files; looking up a few orders' events (their
/// statuses, one customer's history) decodes the `order_id` of every row
/// group whose bloom filter may hold one of them. A day's events (~126k at
/// 10M orders a year) in row groups of 64k let those filters skip half a
/// file for a few orders. Smaller groups skip more for a few orders but
/// cost a page of 50 orders (whose events touch nearly every group) more
/// in per-group overhead than they save: at 16k, one customer's page fell
/// from ~200 to 122 ms (p50), while a page 360 days deep rose from 160–230
/// to 327 ms (docs/benchmarks.md).
pub const EVENT_ROW_GROUP_ROWS: usize = 64 * 1024;

/// Columns that get a Parquet bloom filter: point lookups by id.
pub fn bloom_filter_columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::Orders | Table::OrderItems | Table::OrderEvents => &["order_id", "customer_id"],
        Table::FraudLabels => &["order_id"],
        Table::Customers => &["customer_id"],
        Table::Products => &["product_id"],
        Table::LateEvents => &[],
    }
}

/// Columns whose values are (nearly) all distinct within a file: ids of
/// the row or its order, event times (rarely two alike), and the
/// customer and client address of a day's orders or events (few
/// customers order twice a day). Writers skip dictionary encoding for
/// them: a dictionary of distinct values is only hashing, and a page of
/// them, before the writer falls back to plain anyway.
pub fn distinct_columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::Orders => &["order_id", "customer_id", "placed_at", "received_at", "client_ip"],
        Table::OrderItems | Table::FraudLabels => &["order_id", "customer_id", "placed_at"],
        Table::OrderEvents => &["event_id", "order_id", "customer_id", "occurred_at"],
        Table::Customers => &["customer_id", "signed_up_at"],
        Table::Products => &["product_id"],
        Table::LateEvents => &["record_id", "event_time"],
    }
}

/// Distinct columns whose value is close to the row before's in a file's
/// time order, written as differences (Parquet's delta encodings): the
/// times a file is sorted by, and order ids in order time (UUIDv7 ids
/// begin with their order's time, so neighbours share a prefix; an
/// order's items share the whole id). Smaller than plain values and
/// cheaper to compress. Not the items' `placed_at`: it repeats per item,
/// which compression catches as it is.
pub fn delta_columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::Orders => &["order_id", "placed_at", "received_at"],
        Table::OrderItems => &["order_id"],
        Table::OrderEvents => &["occurred_at"],
        Table::Customers | Table::Products | Table::FraudLabels | Table::LateEvents => &[],
    }
}

/// A base table's files: sorted by time then stream position, with the
/// bloom filters, plain and delta columns above.
pub fn table_layout(table: Table) -> FileLayout {
    let layout = FileLayout::new(&[table.time_column(), "stream_seq"], bloom_filter_columns(table))
        .with_plain_columns(distinct_columns(table))
        .with_delta_columns(delta_columns(table));
    match table {
        Table::OrderEvents => layout.with_row_group_rows(EVENT_ROW_GROUP_ROWS),
        _ => layout,
    }
}

/// One table partition's rows, to be written as one Parquet file.
pub(crate) struct PendingFile {
    path: object_store::path::Path,
    rows: RecordBatch,
    layout: FileLayout,
}

/// `rows` split into date partitions of `table`, each named `file_name`.
pub(crate) fn partition_files(
    store: &DataStore,
    table: &str,
    rows: &RecordBatch,
    time_column: &str,
    file_name: &str,
    layout: &FileLayout,
) -> Result<Vec<PendingFile>, AnalyticsError> {
    if rows.num_rows() == 0 {
        return Ok(Vec::new());
    }
    Ok(split_by_date(rows, time_column)?
        .into_iter()
        .map(|(date, part)| PendingFile {
            path: store.path(&format!("{table}/date={date}/{file_name}")),
            rows: part,
            layout: layout.clone(),
        })
        .collect())
}

/// Encodes every file on the blocking pool, all at once (Parquet encoding
/// is CPU work: on the async workers it would stall reading), then stores
/// them. Returns (rows, files) written.
pub(crate) async fn write_files(store: DataStore, files: Vec<PendingFile>) -> Result<(u64, u64), AnalyticsError> {
    let encoded = futures::future::join_all(files.into_iter().map(|file| {
        tokio::task::spawn_blocking(move || {
            let rows = file.rows.num_rows() as u64;
            encode(&file.rows.schema(), std::slice::from_ref(&file.rows), &file.layout).map(|b| (file.path, b, rows))
        })
    }))
    .await;
    let (mut rows, mut count) = (0, 0);
    for file in encoded {
        let (path, bytes, n) = file.map_err(|e| AnalyticsError::task("writing Parquet", e))??;
        store.put(&path, bytes).await?;
        rows += n;
        count += 1;
    }
    Ok((rows, count))
}

/// Where a pipeline's too-late rows go: `late_events/pipeline={name}`, one
/// hive partition of the `late_events` table per pipeline.
pub fn late_events_table(pipeline: &str) -> String {
    format!("{}/pipeline={pipeline}", Table::LateEvents.name())
}

/// Pipeline outputs sort by window, then by every other column, so two
/// replays write byte-identical rows.
pub fn output_layout(eval: &Evaluator) -> FileLayout {
    let mut sort_by = vec!["window_start".to_string(), "window_end".to_string()];
    sort_by.extend(
        eval.output_schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| n != "window_start" && n != "window_end" && n != "watermark_at_emit"),
    );
    FileLayout { sort_by, ..FileLayout::new(&[], &[]) }
}

/// The rows with `stream_seq >= from`.
pub(crate) fn rows_from(batch: &RecordBatch, from: u64) -> Result<RecordBatch, AnalyticsError> {
    let Some(seqs) = batch.column_by_name("stream_seq").and_then(|c| c.as_primitive_opt::<Int64Type>()) else {
        return Ok(batch.clone());
    };
    if seqs.is_empty() || seqs.value(0) as u64 >= from {
        return Ok(batch.clone());
    }
    let keep: BooleanArray = seqs.iter().map(|s| Some(s.unwrap_or(0) as u64 >= from)).collect();
    Ok(filter_record_batch(batch, &keep)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuned_columns_are_columns_of_their_table() {
        for table in Table::ALL {
            let schema = table.schema();
            for column in bloom_filter_columns(table).iter().chain(distinct_columns(table)) {
                assert!(schema.field_with_name(column).is_ok(), "{}.{column}", table.name());
            }
            for column in delta_columns(table) {
                assert!(distinct_columns(table).contains(column), "{}.{column} is distinct", table.name());
            }
        }
    }
}
