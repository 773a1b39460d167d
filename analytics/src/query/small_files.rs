//! Small Parquet files kept decoded in memory, as InfluxDB 3 keeps its
//! recent Parquet files in a memory cache.
//!
//! A pipeline output holds a few hundred rows a day in a file of tens of
//! kilobytes, and a dashboard query reads a fortnight or a month of them.
//! Reading such a file costs far more than its rows: opening it, a codec
//! context per column chunk, pruning, a decoder per column. Decoded once,
//! the file is a few Arrow batches that later queries scan from memory.
//!
//! Only files up to [`SMALL_FILE_BYTES`] are kept, whole (every column),
//! in the table's schema with their partition values; a file's entry is
//! used only while its size, modification time and tag are those of the
//! query's own listing (files are added or replaced whole, never rewritten
//! in place), and the least recently used go past the bound.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, new_null_array};
use arrow::compute::cast;
use arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::listing::PartitionedFile;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::query::file_cache::FileCache;

/// Files up to this size on disk are kept decoded.
pub const SMALL_FILE_BYTES: u64 = 1 << 20;

/// What all small files' batches may take.
pub const SMALL_FILES_MEMORY: usize = 256 << 20;

/// A scan whose small files add up to more than this on disk reads them
/// from Parquet as it goes: decoded up front, they would all be in memory
/// at once, outside the query's memory pool.
pub const SMALL_SCAN_BYTES: u64 = 16 << 20;

pub struct SmallFiles {
    decoded: FileCache<Path, Arc<Vec<RecordBatch>>>,
}

impl SmallFiles {
    pub fn new(max_bytes: usize) -> Self {
        SmallFiles { decoded: FileCache::new("small files", max_bytes) }
    }

    /// Which of `files` a scan reads through this cache: the small ones,
    /// unless together they are more than [`SMALL_SCAN_BYTES`].
    pub fn pick(files: Vec<PartitionedFile>) -> (Vec<PartitionedFile>, Vec<PartitionedFile>) {
        let (small, large): (Vec<_>, Vec<_>) =
            files.into_iter().partition(|f| f.range.is_none() && f.object_meta.size <= SMALL_FILE_BYTES);
        if small.iter().map(|f| f.object_meta.size).sum::<u64>() > SMALL_SCAN_BYTES {
            return (Vec::new(), small.into_iter().chain(large).collect());
        }
        (small, large)
    }

    /// Each of `files` as batches of `schema` (the table's: the file's
    /// columns, then its partition columns), from memory or read now.
    pub async fn batches(
        &self,
        store: &Arc<dyn ObjectStore>,
        files: &[PartitionedFile],
        schema: &SchemaRef,
    ) -> Result<Vec<Arc<Vec<RecordBatch>>>> {
        let mut found: Vec<Option<Arc<Vec<RecordBatch>>>> = vec![None; files.len()];
        let missing = self
            .decoded
            .visit(files.iter().map(|f| (&f.object_meta.location, &f.object_meta)), |at, batches| {
                found[at] = Some(batches.clone());
            })
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let reads = missing
            .iter()
            .map(|&at| async move { Ok::<_, DataFusionError>((at, read_whole(store, &files[at], schema).await?)) });
        for (at, batches) in futures::future::try_join_all(reads).await? {
            let batches = Arc::new(batches);
            let bytes = batches.iter().map(RecordBatch::get_array_memory_size).sum();
            let file = &files[at].object_meta;
            self.decoded
                .insert(file.location.clone(), file, batches.clone(), bytes)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            found[at] = Some(batches);
        }
        Ok(found.into_iter().flatten().collect())
    }
}

/// Every row of `file` in `schema`: columns by name (cast where the file's
/// type differs, nulls where it lacks one), partition values repeated.
async fn read_whole(
    store: &Arc<dyn ObjectStore>,
    file: &PartitionedFile,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>> {
    // Small enough to fetch whole and decode in one go.
    let bytes = store.get(&file.object_meta.location).await?.bytes().await?;
    let read = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?.collect::<Result<Vec<_>, _>>()?;
    let file_columns = schema.fields().len().saturating_sub(file.partition_values.len());
    read.iter()
        .map(|batch| {
            let rows = batch.num_rows();
            let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
            for field in schema.fields().iter().take(file_columns) {
                columns.push(match batch.column_by_name(field.name()) {
                    Some(column) if column.data_type() == field.data_type() => column.clone(),
                    Some(column) => cast(column, field.data_type())?,
                    None => new_null_array(field.data_type(), rows),
                });
            }
            for value in &file.partition_values {
                columns.push(value.to_array_of_size(rows)?);
            }
            Ok(RecordBatch::try_new(schema.clone(), columns)?)
        })
        .collect()
}
