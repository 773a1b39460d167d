//! The latest status of an order, answered from a summary of each
//! `order_events` file kept in memory (InfluxDB 3's "last value cache",
//! per immutable file).
//!
//! A page of the admin search shows each order's current status, its
//! latest status event, from the events of the days the order was placed
//! on and up to ten after. The event files are sorted by time, so one day's
//! orders are scattered over all of a file and a query for 50 orders
//! decodes every `order_id` of those eleven days (1.2M at 10M orders a
//! year) to find a few hundred events. Here each file is read once: its
//! last status event per order (`order_id`, `status`, `occurred_at`,
//! `stream_seq`) by id, about 50 bytes an order. A lookup then lists the
//! days' files and probes each summary. The latest status across files is
//! the one with the greatest (`occurred_at`, `stream_seq`), the order the
//! SQL form sorts by.
//!
//! A file with an `order_id` that is not a UUID, or a status the state
//! machine does not know, has no summary: lookups touching it go to SQL.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use chrono::NaiveDate;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use schemas::OrderStatus;
use tokio::sync::Semaphore;

use analytics::store::DataStore;

use crate::{DashboardError, Lake};
use analytics::query::file_cache::FileCache;

/// Summary bytes kept at most: ~80 days of events at 10M orders a year.
const MAX_BYTES: usize = 512 << 20;
/// Files summarised at once in the background.
const SUMMARISED_AT_ONCE: usize = 2;
const COLUMNS: [&str; 4] = ["order_id", "status", "occurred_at", "stream_seq"];

/// Where an event falls in an order's history: (`occurred_at` µs,
/// `stream_seq`).
type Position = (i64, i64);

/// One file's last status event per order, by order id (hashbrown with
/// foldhash, as DataFusion's own maps). A map, not the events sorted by
/// id: the sort was a fifth of a summary's cost in a profile.
struct FileStatuses {
    latest: datafusion::common::HashMap<u128, (Position, OrderStatus)>,
}

impl FileStatuses {
    fn bytes(&self) -> usize {
        // A slot per capacity, a control byte each.
        self.latest.capacity() * (size_of::<(u128, (Position, OrderStatus))>() + 1)
    }

    /// The file's last status event of `id`.
    fn get(&self, id: u128) -> Option<(Position, OrderStatus)> {
        self.latest.get(&id).copied()
    }
}

/// Reduces a file's rows to the last status event per order; `None` when
/// an id is not a UUID or a status is unknown.
fn summarise(batches: &[RecordBatch]) -> Result<Option<FileStatuses>, DashboardError> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut latest = datafusion::common::HashMap::with_capacity(rows / 2);
    for batch in batches {
        let column = |name: &str, to: &DataType| {
            let found = batch
                .column_by_name(name)
                .ok_or_else(|| DashboardError::Internal(format!("order_events has no {name} column")))?;
            arrow::compute::cast(found, to)
                .map_err(|e| DashboardError::Internal(format!("order_events column {name}: {e}")))
        };
        let (ids, statuses) = (column("order_id", &DataType::Utf8)?, column("status", &DataType::Utf8)?);
        let (times, seqs) = (column("occurred_at", &DataType::Int64)?, column("stream_seq", &DataType::Int64)?);
        let (ids, statuses) = (ids.as_string::<i32>(), statuses.as_string::<i32>());
        let (times, seqs) = (times.as_primitive::<Int64Type>(), seqs.as_primitive::<Int64Type>());
        for row in 0..batch.num_rows() {
            if statuses.is_null(row) {
                continue;
            }
            if ids.is_null(row) || times.is_null(row) || seqs.is_null(row) {
                return Ok(None);
            }
            let Ok(id) = uuid::Uuid::try_parse(ids.value(row)) else { return Ok(None) };
            let Ok(status) = statuses.value(row).parse::<OrderStatus>() else { return Ok(None) };
            let found = ((times.value(row), seqs.value(row)), status);
            latest
                .entry(id.as_u128())
                .and_modify(|kept: &mut (Position, OrderStatus)| {
                    if found.0 > kept.0 {
                        *kept = found;
                    }
                })
                .or_insert(found);
        }
    }
    Ok(Some(FileStatuses { latest }))
}

/// Reads the four columns of one events file and summarises them. The
/// file is fetched whole (one request; a day of events is a few MiB).
async fn read_file(store: DataStore, meta: ObjectMeta) -> Result<Option<FileStatuses>, DashboardError> {
    let failed = |e: &dyn std::fmt::Display| {
        DashboardError::Internal(format!("cannot read the statuses of {}: {e}", meta.location))
    };
    let bytes = store.object_store().get(&meta.location).await.map_err(|e| failed(&e))?;
    let bytes = bytes.bytes().await.map_err(|e| failed(&e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| failed(&e))?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), COLUMNS);
    let reader = builder.with_projection(mask).with_batch_size(8 * 1024).build().map_err(|e| failed(&e))?;
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().map_err(|e| failed(&e))?;
    summarise(&batches)
}

/// What the summaries say about a lookup.
pub enum Lookup {
    /// The latest status of each id that has one.
    Found(HashMap<String, OrderStatus>),
    /// These files have no summary yet.
    Unsummarised(Vec<ObjectMeta>),
    /// An id is not a UUID or a file cannot be summarised: only SQL
    /// answers.
    Unanswerable,
}

pub struct StatusIndex {
    files: FileCache<Path, Option<FileStatuses>>,
    /// One summarising run at a time, in the background.
    summarising: Arc<Semaphore>,
}

impl Default for StatusIndex {
    fn default() -> Self {
        StatusIndex { files: FileCache::new("status index", MAX_BYTES), summarising: Arc::new(Semaphore::new(1)) }
    }
}

impl StatusIndex {
    /// The latest status of each of `ids` that has one in `files` (of
    /// `order_events`), when every one of those files has a summary. Otherwise the caller asks SQL, and then has the files
    /// without one summarised in the background
    /// ([`StatusIndex::summarise_in_background`]): a summary costs about
    /// one and a half times the SQL lookup it replaces, so the first page
    /// on some days is answered by SQL and the next ones on the same days
    /// (hundreds of pages share a day) from memory.
    pub fn latest(&self, files: &[(NaiveDate, ObjectMeta)], ids: &[&str]) -> Result<Lookup, DashboardError> {
        let Ok(wanted) =
            ids.iter().map(|id| uuid::Uuid::try_parse(id).map(|u| u.as_u128())).collect::<Result<Vec<_>, _>>()
        else {
            return Ok(Lookup::Unanswerable);
        };
        let mut best: HashMap<u128, (Position, OrderStatus)> = HashMap::with_capacity(wanted.len());
        let mut summarisable = true;
        let missing = self.files.visit(files.iter().map(|(_, m)| (&m.location, m)), |_, summary| match summary {
            Some(summary) => {
                for id in &wanted {
                    if let Some(found) = summary.get(*id) {
                        let kept = best.entry(*id).or_insert(found);
                        if found.0 > kept.0 {
                            *kept = found;
                        }
                    }
                }
            }
            None => summarisable = false,
        })?;
        if !missing.is_empty() {
            return Ok(Lookup::Unsummarised(missing.into_iter().map(|at| files[at].1.clone()).collect()));
        }
        if !summarisable {
            return Ok(Lookup::Unanswerable);
        }
        Ok(Lookup::Found(
            ids.iter().zip(&wanted).filter_map(|(text, id)| Some((text.to_string(), best.get(id)?.1))).collect(),
        ))
    }

    /// Summarises `files` unless a run is under way (the next lookup that
    /// misses asks again), `SUMMARISED_AT_ONCE` at a time on the query
    /// runtime. Called after the request's own SQL, so the two do not
    /// compete.
    pub fn summarise_in_background(self: &Arc<Self>, lake: &Lake, files: Vec<ObjectMeta>) {
        if files.is_empty() {
            return;
        }
        let Ok(permit) = self.summarising.clone().try_acquire_owned() else { return };
        let (index, store) = (self.clone(), lake.store().clone());
        lake.spawn(async move {
            // Each file on its own task: decoding is synchronous work, and
            // futures polled by one task would take turns on one thread.
            let reads = files.into_iter().map(|meta| {
                let read = tokio::spawn(read_file(store.clone(), meta.clone()));
                async move { (read.await, meta) }
            });
            let mut reads = futures::stream::iter(reads).buffered(SUMMARISED_AT_ONCE);
            while let Some((read, meta)) = reads.next().await {
                match read.map_err(|e| DashboardError::Internal(e.to_string())).and_then(|r| r) {
                    Ok(summary) => {
                        let bytes = summary.as_ref().map_or(0, FileStatuses::bytes);
                        if let Err(e) = index.files.insert(meta.location.clone(), &meta, summary, bytes) {
                            tracing::warn!(error = %e, "cannot keep a status summary");
                        }
                    }
                    // Compacted away since the listing, most likely.
                    Err(e) => tracing::debug!(error = %e, "no status summary"),
                }
            }
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema, TimeUnit};

    fn batch(rows: &[(&str, Option<&str>, i64, i64)]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("order_id", DataType::Utf8, false),
            Field::new("status", DataType::Utf8, true),
            Field::new("occurred_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
            Field::new("stream_seq", DataType::Int64, false),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(rows.iter().map(|r| Some(r.0)).collect::<StringArray>()),
                Arc::new(rows.iter().map(|r| r.1).collect::<StringArray>()),
                Arc::new(
                    TimestampMicrosecondArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>()).with_timezone("UTC"),
                ),
                Arc::new(Int64Array::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())),
            ],
        )
        .unwrap()
    }

    const A: &str = "019a0000-0000-7000-8000-000000000001";
    const B: &str = "019a0000-0000-7000-8000-000000000002";

    #[test]
    fn a_file_keeps_each_orders_latest_status_by_time_then_sequence() {
        let a = uuid::Uuid::parse_str(A).unwrap().as_u128();
        let b = uuid::Uuid::parse_str(B).unwrap().as_u128();
        let summary = summarise(&[
            batch(&[(A, Some("reserved"), 20, 5), (B, Some("flagged"), 10, 2), (A, Some("pending"), 10, 1)]),
            // Same time, later in the stream: the later one wins. A row
            // without a status (a command's note) changes nothing.
            batch(&[(A, Some("confirmed"), 20, 7), (A, None, 30, 8), (B, Some("cancelled"), 5, 9)]),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(summary.latest.len(), 2);
        assert_eq!(summary.get(a), Some(((20, 7), OrderStatus::Confirmed)));
        assert_eq!(summary.get(b), Some(((10, 2), OrderStatus::Flagged)), "by time first, not by sequence");
        assert_eq!(summary.get(a + 7), None);
    }

    #[test]
    fn ids_that_are_not_uuids_or_unknown_statuses_leave_a_file_unsummarised() {
        assert!(summarise(&[batch(&[("order-1", Some("flagged"), 1, 1)])]).unwrap().is_none());
        assert!(summarise(&[batch(&[(A, Some("lost"), 1, 1)])]).unwrap().is_none());
        assert!(
            summarise(&[batch(&[("order-1", None, 1, 1)])]).unwrap().is_some(),
            "rows without a status are skipped"
        );
    }
}
