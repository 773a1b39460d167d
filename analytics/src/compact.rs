//! Compaction: a partition's small committed files become one file sorted
//! by time, named by the union of their ranges, written before the small
//! files are deleted. A crash between the two leaves files the covering
//! one makes redundant, which the next start removes
//! ([`crate::checkpoint::remove_uncommitted`]); readers may see both for
//! the moment between the write and the deletes.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::AnalyticsError;
use crate::checkpoint::{PartName, compacted_part_name, parse_name};
use crate::parquet_out::{FileLayout, encode};
use crate::store::DataStore;

/// The commit point of what is being compacted.
#[derive(Clone, Copy, Debug)]
pub struct Committed {
    pub next_seq: u64,
}

/// Compacts each partition of `table` holding at least `min_files`
/// committed files. Only files ending before the last committed sequence
/// are merged, so no idle tick can still land inside the merged range.
pub async fn compact_table(
    store: &DataStore,
    table: &str,
    committed: Committed,
    layout: &FileLayout,
    min_files: usize,
) -> Result<usize, AnalyticsError> {
    let mut partitions: BTreeMap<String, Vec<(Path, PartName)>> = BTreeMap::new();
    for meta in store.list(&store.path(table)).await? {
        let Some(name) = meta.location.filename().and_then(parse_name) else { continue };
        if name.last + 1 >= committed.next_seq {
            continue;
        }
        let dir = meta.location.as_ref().rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
        partitions.entry(dir).or_default().push((meta.location, name));
    }
    let mut merged = 0;
    for (dir, files) in partitions {
        if files.len() < min_files.max(2) {
            continue;
        }
        merged += merge(store, &dir, &files, layout).await?;
    }
    Ok(merged)
}

/// Merges `files` (one partition) into one; returns how many it replaced.
pub async fn merge(
    store: &DataStore,
    dir: &str,
    files: &[(Path, PartName)],
    layout: &FileLayout,
) -> Result<usize, AnalyticsError> {
    let mut batches: Vec<RecordBatch> = Vec::new();
    for (path, _) in files {
        let Some(bytes) = store.get(path).await? else { continue };
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.with_batch_size(64 * 1024).build()?;
        for batch in reader {
            batches.push(batch?);
        }
    }
    let Some(schema) = batches.first().map(RecordBatch::schema) else { return Ok(0) };
    let first = files.iter().map(|(_, n)| n.first).min().unwrap_or(0);
    let last = files.iter().map(|(_, n)| n.last).max().unwrap_or(0);
    let bytes = encode(&schema, &batches, layout)?;
    let target = Path::from(format!("{dir}/{}", compacted_part_name(first, last)));
    store.put(&target, bytes).await?;
    for (path, _) in files {
        if *path != target {
            store.delete(path).await?;
        }
    }
    tracing::debug!(dir, files = files.len(), first, last, "compacted");
    Ok(files.len())
}
