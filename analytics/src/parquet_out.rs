//! Parquet as readers want it: rows sorted by event time (recorded as the
//! file's sorting columns), zstd, page-level statistics with column and
//! offset indexes for page pruning, and bloom filters on the id columns a
//! point lookup uses (`order_id`, `customer_id`).

use std::sync::Arc;

use arrow::array::{Array, RecordBatch, TimestampMicrosecondArray, UInt32Array};
use arrow::compute::{
    LexicographicalComparator, SortColumn, SortOptions, concat_batches, lexsort_to_indices, take_record_batch,
};
use arrow::datatypes::{DataType, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::AnalyticsError;

/// Rows per row group: large enough for good compression, small enough
/// that row-group statistics prune well.
pub const ROW_GROUP_ROWS: usize = 256 * 1024;

#[derive(Clone, Debug)]
pub struct FileLayout {
    /// Sorted ascending by this timestamp column, then by the rest in order.
    pub sort_by: Vec<String>,
    pub bloom_filters: Vec<String>,
    /// Columns whose values are (nearly) all distinct, written plain: a
    /// dictionary of them only costs (the writer fills one up to its size
    /// limit, then falls back to plain anyway).
    pub plain_columns: Vec<String>,
    /// Columns written as differences from the row before, without a
    /// dictionary: DELTA_BINARY_PACKED for integers and times,
    /// DELTA_BYTE_ARRAY (shared prefix and suffix) for strings.
    pub delta_columns: Vec<String>,
    /// Rows per row group at most (each with its own bloom filters).
    pub row_group_rows: usize,
}

impl FileLayout {
    pub fn new(sort_by: &[&str], bloom_filters: &[&str]) -> Self {
        FileLayout {
            sort_by: sort_by.iter().map(|s| s.to_string()).collect(),
            bloom_filters: bloom_filters.iter().map(|s| s.to_string()).collect(),
            plain_columns: Vec::new(),
            delta_columns: Vec::new(),
            row_group_rows: ROW_GROUP_ROWS,
        }
    }

    pub fn with_plain_columns(self, columns: &[&str]) -> Self {
        FileLayout { plain_columns: columns.iter().map(|s| s.to_string()).collect(), ..self }
    }

    pub fn with_delta_columns(self, columns: &[&str]) -> Self {
        FileLayout { delta_columns: columns.iter().map(|s| s.to_string()).collect(), ..self }
    }

    pub fn with_row_group_rows(self, rows: usize) -> Self {
        FileLayout { row_group_rows: rows.max(1), ..self }
    }
}

fn writer_properties(schema: &SchemaRef, layout: &FileLayout, rows: usize) -> WriterProperties {
    let sorting: Vec<SortingColumn> = layout
        .sort_by
        .iter()
        .filter_map(|name| schema.index_of(name).ok())
        .map(|i| SortingColumn { column_idx: i as i32, descending: false, nulls_first: false })
        .collect();
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(layout.row_group_rows))
        .set_sorting_columns(Some(sorting))
        .set_created_by(format!("orderstream {}", env!("CARGO_PKG_VERSION")));
    for column in layout.plain_columns.iter().filter(|c| schema.index_of(c).is_ok()) {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(column.as_str()), false);
    }
    for column in &layout.delta_columns {
        let Ok(field) = schema.field_with_name(column) else { continue };
        let encoding = match field.data_type() {
            DataType::Utf8 | DataType::Binary => Encoding::DELTA_BYTE_ARRAY,
            DataType::Int32 | DataType::Int64 | DataType::Timestamp(..) => Encoding::DELTA_BINARY_PACKED,
            _ => continue,
        };
        let path = ColumnPath::from(column.as_str());
        builder = builder.set_column_dictionary_enabled(path.clone(), false).set_column_encoding(path, encoding);
    }
    for column in &layout.bloom_filters {
        if schema.index_of(column).is_ok() {
            let path = ColumnPath::from(column.as_str());
            // Sized for the rows a row group can hold, not parquet's default
            // of a million values: that default allocates and zeroes ~1 MiB
            // per column chunk and then folds it down, which dominated
            // writing small files.
            let ndv = rows.clamp(1, layout.row_group_rows) as u64;
            builder = builder
                .set_column_bloom_filter_enabled(path.clone(), true)
                .set_column_bloom_filter_fpp(path.clone(), 0.01)
                .set_column_bloom_filter_max_ndv(path, ndv);
        }
    }
    builder.build()
}

/// `batches` as one, sorted by the layout's sort columns, copying each row
/// at most once: only the sort keys are concatenated and sorted, then the
/// rows are gathered from where they are. Rows already in order are not
/// moved (a micro-batch of a time-ordered stream often is), and one batch in
/// order is returned as it is.
pub fn sort_rows(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    layout: &FileLayout,
) -> Result<RecordBatch, AnalyticsError> {
    let batches: Vec<&RecordBatch> = batches.iter().filter(|b| b.num_rows() > 0).collect();
    if batches.is_empty() {
        return Ok(RecordBatch::new_empty(Arc::clone(schema)));
    }
    let as_one = |batches: &[&RecordBatch]| -> Result<RecordBatch, AnalyticsError> {
        match batches {
            [one] => Ok((*one).clone()),
            _ => Ok(concat_batches(schema, batches.iter().copied())?),
        }
    };
    let mut keys = Vec::new();
    for name in &layout.sort_by {
        let Ok(index) = schema.index_of(name) else { continue };
        let values = match batches.as_slice() {
            [one] => Arc::clone(one.column(index)),
            _ => arrow::compute::concat(&batches.iter().map(|b| b.column(index).as_ref()).collect::<Vec<_>>())?,
        };
        keys.push(SortColumn { values, options: Some(SortOptions { descending: false, nulls_first: false }) });
    }
    // Strictly increasing first key: in layout order whatever follows.
    let in_order = keys.first().and_then(|k| is_increasing(&k.values)) == Some(true);
    if keys.is_empty() || in_order || keys[0].values.len() < 2 {
        return as_one(&batches);
    }
    // `None`: the rows are in order already.
    let order = match (integer_keys(&keys), integer_keys(&keys[..1])) {
        (Some(columns), _) => integer_order(&columns),
        (None, Some(first)) => first_key_then_rest(first[0], &keys[1..])?,
        (None, None) => Some(lexsort_to_indices(&keys, None)?)
            .filter(|order| !order.values().iter().enumerate().all(|(i, &at)| at as usize == i)),
    };
    let Some(order) = order else { return as_one(&batches) };
    if let [one] = batches.as_slice() {
        return Ok(take_record_batch(one, &order)?);
    }
    // Row number in the concatenation -> (batch, row in that batch).
    let starts: Vec<usize> = batches
        .iter()
        .scan(0, |at, b| {
            let start = *at;
            *at += b.num_rows();
            Some(start)
        })
        .collect();
    let picks: Vec<(usize, usize)> = order
        .values()
        .iter()
        .map(|&row| {
            let row = row as usize;
            let part = starts.partition_point(|&start| start <= row) - 1;
            (part, row - starts[part])
        })
        .collect();
    Ok(arrow::compute::interleave_record_batch(&batches, &picks)?)
}

/// The sort keys' values when all of them are null-free 64-bit integers
/// or timestamps (every layout here: event time, then stream position).
fn integer_keys(keys: &[SortColumn]) -> Option<Vec<&[i64]>> {
    use arrow::array::AsArray;
    use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
    keys.iter()
        .map(|key| {
            let column = &key.values;
            if column.null_count() > 0 {
                return None;
            }
            match column.data_type() {
                DataType::Int64 => Some(column.as_primitive::<Int64Type>().values().as_ref()),
                DataType::Timestamp(..) => {
                    column.as_primitive_opt::<TimestampMicrosecondType>().map(|c| c.values().as_ref())
                }
                _ => None,
            }
        })
        .collect()
}

/// The row order that sorts by `keys`, ties kept in input order; `None`
/// when the rows are in that order already. Rows of one order share its
/// time and stream position, and the seed's rows have no stream position
/// at all, so the first key alone is often not strictly increasing while
/// the rows are still sorted: one pass finds that out before any sort.
/// Sorting (keys, row) tuples beats `lexsort_to_indices`, which compares
/// through a dynamic comparator per pair.
fn integer_order(keys: &[&[i64]]) -> Option<UInt32Array> {
    let rows = keys.first().map_or(0, |k| k.len());
    let key_of = |i: usize| keys.iter().map(move |k| k[i]);
    if (1..rows).all(|i| key_of(i - 1).cmp(key_of(i)).is_le()) {
        return None;
    }
    // Keys after the first that hold one value decide nothing (the seed's
    // rows have no stream position).
    let deciding = keys.iter().rposition(|k| k.iter().any(|&v| v != k[0])).map_or(1, |last| last + 1);
    let by_comparison = || {
        let mut order: Vec<u32> = (0..rows as u32).collect();
        order.sort_by(|&a, &b| key_of(a as usize).cmp(key_of(b as usize)));
        order
    };
    let order: Vec<u32> = match &keys[..deciding] {
        // Compared only when the times span too much to pack with the rows.
        [first] => packed_order(first).unwrap_or_else(by_comparison),
        [first, second] => {
            let mut tuples: Vec<(i64, i64, u32)> =
                first.iter().zip(second.iter()).enumerate().map(|(i, (&a, &b))| (a, b, i as u32)).collect();
            tuples.sort_unstable();
            tuples.into_iter().map(|(_, _, i)| i).collect()
        }
        _ => by_comparison(),
    };
    Some(UInt32Array::from(order))
}

/// The row order that sorts by an integer first key, then by `rest`;
/// `None` when the rows are in that order already. The first key is sorted
/// as integers, then each run of rows sharing it by `rest` alone. A
/// pipeline's output is a few windows with many groups each: comparing
/// through arrow's dynamic comparator within a window's rows, rather than
/// across all of them, is a fraction of the comparisons.
fn first_key_then_rest(first: &[i64], rest: &[SortColumn]) -> Result<Option<UInt32Array>, AnalyticsError> {
    let mut order = packed_order(first).unwrap_or_else(|| {
        let mut order: Vec<u32> = (0..first.len() as u32).collect();
        order.sort_by_key(|&i| first[i as usize]);
        order
    });
    let compare = LexicographicalComparator::try_new(rest)?;
    let mut start = 0;
    while let Some(&row) = order.get(start) {
        let key = first[row as usize];
        let len = order[start..].iter().take_while(|&&i| first[i as usize] == key).count();
        order[start..start + len].sort_by(|&a, &b| compare.compare(a as usize, b as usize));
        start += len;
    }
    let in_order = order.iter().enumerate().all(|(i, &at)| at as usize == i);
    Ok((!in_order).then(|| UInt32Array::from(order)))
}

/// The order of `values`, ties in input order, found by sorting one `u64`
/// per row: the value's offset from the least value in the high bits, the
/// row number in the low ones. Half the bytes of (value, row) tuples, and
/// compared in one instruction.
/// `None` when the two do not fit in 64 bits together.
fn packed_order(values: &[i64]) -> Option<Vec<u32>> {
    let (min, max) = values.iter().fold((i64::MAX, i64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let row_bits = usize::BITS - values.len().saturating_sub(1).leading_zeros();
    let value_bits = u64::BITS - max.abs_diff(min).leading_zeros();
    if values.is_empty() || row_bits + value_bits > u64::BITS || values.len() > u32::MAX as usize {
        return None;
    }
    let rows = (1u64 << row_bits) - 1;
    let mut packed: Vec<u64> =
        values.iter().enumerate().map(|(i, &v)| (v.abs_diff(min) << row_bits) | i as u64).collect();
    packed.sort_unstable();
    Some(packed.into_iter().map(|p| (p & rows) as u32).collect())
}

/// Whether an integer or timestamp column strictly increases (`None`: other
/// types, or nulls).
fn is_increasing(column: &arrow::array::ArrayRef) -> Option<bool> {
    use arrow::array::AsArray;
    use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
    if column.null_count() > 0 {
        return None;
    }
    let increasing = |values: &[i64]| values.windows(2).all(|w| w[0] < w[1]);
    match column.data_type() {
        DataType::Int64 => Some(increasing(column.as_primitive::<Int64Type>().values())),
        DataType::Timestamp(..) => {
            column.as_primitive_opt::<TimestampMicrosecondType>().map(|c| increasing(c.values()))
        }
        _ => None,
    }
}

/// One Parquet file's bytes, rows sorted per the layout.
pub fn encode(schema: &SchemaRef, batches: &[RecordBatch], layout: &FileLayout) -> Result<Bytes, AnalyticsError> {
    let sorted = sort_rows(schema, batches, layout)?;
    // About the compressed size; a slice's own rows, not its parent's buffers.
    let bytes: usize = sorted.columns().iter().map(|c| c.to_data().get_slice_memory_size().unwrap_or(0)).sum();
    let mut buffer = Vec::with_capacity(bytes / 4 + 1024);
    let mut writer = ArrowWriter::try_new(
        &mut buffer,
        Arc::clone(schema),
        Some(writer_properties(schema, layout, sorted.num_rows())),
    )?;
    writer.write(&sorted)?;
    writer.close()?;
    Ok(Bytes::from(buffer))
}

/// The UTC day number (days since the epoch) of each row's timestamp.
fn row_days(batch: &RecordBatch, time_column: &str) -> Result<Vec<i64>, AnalyticsError> {
    let values = batch
        .column_by_name(time_column)
        .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
        .ok_or_else(|| AnalyticsError::Config {
            what: "partitioning",
            message: format!("column {time_column} is missing or not a microsecond timestamp"),
        })?;
    Ok((0..values.len())
        .map(|i| if values.is_null(i) { 0 } else { values.value(i).div_euclid(MICROS_PER_DAY) })
        .collect())
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The `YYYY-MM-DD` (UTC) of a day number, for hive partitioning.
fn date_of_day(day: i64) -> String {
    chrono::DateTime::from_timestamp(day * 86_400, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".to_string())
}

/// Splits a batch by the date of `time_column`: `(date, rows)`, dates ascending.
pub fn split_by_date(batch: &RecordBatch, time_column: &str) -> Result<Vec<(String, RecordBatch)>, AnalyticsError> {
    let days = row_days(batch, time_column)?;
    // Rows in date order (a time-sorted batch): each date is one run of
    // rows, handed on as a zero-copy slice.
    if days.windows(2).all(|w| w[0] <= w[1]) {
        let mut parts = Vec::new();
        let mut start = 0;
        while let Some(&day) = days.get(start) {
            let len = days[start..].iter().take_while(|&&d| d == day).count();
            parts.push((date_of_day(day), batch.slice(start, len)));
            start += len;
        }
        return Ok(parts);
    }
    let mut groups: std::collections::BTreeMap<i64, Vec<u32>> = std::collections::BTreeMap::new();
    for (i, day) in days.iter().enumerate() {
        groups.entry(*day).or_default().push(i as u32);
    }
    if groups.len() == 1 {
        return Ok(groups.into_keys().map(|d| (date_of_day(d), batch.clone())).collect());
    }
    groups
        .into_iter()
        .map(|(day, rows)| {
            let indices = UInt32Array::from(rows);
            Ok((date_of_day(day), take_record_batch(batch, &indices)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::properties::ReaderProperties;
    use parquet::file::reader::FileReader;
    use parquet::file::serialized_reader::{ReadOptionsBuilder, SerializedFileReader};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("order_id", DataType::Utf8, false),
            Field::new("placed_at", schemas::tables::timestamp(), false),
            Field::new("n", DataType::Int64, false),
        ]));
        let day = 86_400_000_000_i64;
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["c", "a", "b"])),
                Arc::new(TimestampMicrosecondArray::from(vec![day + 5, 3, 1]).with_timezone("UTC")),
                Arc::new(Int64Array::from(vec![3, 2, 1])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn files_are_sorted_and_carry_bloom_filters_and_page_indexes() {
        let batch = batch();
        let layout = FileLayout::new(&["placed_at"], &["order_id"]);
        let bytes = encode(&batch.schema(), std::slice::from_ref(&batch), &layout).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).unwrap().build().unwrap();
        let read: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
        let n = read[0].column_by_name("n").unwrap().as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(n.values(), &[1, 2, 3], "sorted by placed_at");

        let options = ReadOptionsBuilder::new()
            .with_reader_properties(ReaderProperties::builder().set_read_bloom_filter(true).build())
            .build();
        let file = SerializedFileReader::new_with_options(bytes, options).unwrap();
        let row_group = file.metadata().row_group(0);
        assert!(row_group.column(0).bloom_filter_offset().is_some(), "order_id has a bloom filter");
        assert!(row_group.column(2).bloom_filter_offset().is_none());
        assert!(row_group.column(0).column_index_offset().is_some(), "page index written");
        let filter = file.get_row_group(0).unwrap().get_column_bloom_filter(0).cloned().unwrap();
        assert!(filter.check(&"a"));
        assert_eq!(row_group.sorting_columns().unwrap()[0].column_idx, 1);
    }

    #[test]
    fn delta_columns_are_written_as_differences_and_read_back_the_same() {
        let batch = batch();
        let layout = FileLayout::new(&["placed_at"], &[])
            .with_plain_columns(&["order_id", "placed_at"])
            .with_delta_columns(&["order_id", "placed_at"]);
        let bytes = encode(&batch.schema(), std::slice::from_ref(&batch), &layout).unwrap();
        let file = SerializedFileReader::new(bytes.clone()).unwrap();
        let encodings = |i: usize| file.metadata().row_group(0).column(i).encodings().collect::<Vec<_>>();
        assert!(encodings(0).contains(&Encoding::DELTA_BYTE_ARRAY), "{:?}", encodings(0));
        assert!(encodings(1).contains(&Encoding::DELTA_BINARY_PACKED), "{:?}", encodings(1));
        assert!(!encodings(2).contains(&Encoding::DELTA_BINARY_PACKED), "n keeps the default");
        let read = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap().next().unwrap().unwrap();
        let sorted = sort_rows(&batch.schema(), std::slice::from_ref(&batch), &layout).unwrap();
        assert_eq!(read, sorted);
    }

    #[test]
    fn each_row_group_has_its_own_bloom_filter_holding_its_own_ids() {
        let batch = batch();
        let layout = FileLayout::new(&["placed_at"], &["order_id"]).with_row_group_rows(2);
        let bytes = encode(&batch.schema(), std::slice::from_ref(&batch), &layout).unwrap();
        let options = ReadOptionsBuilder::new()
            .with_reader_properties(ReaderProperties::builder().set_read_bloom_filter(true).build())
            .build();
        let file = SerializedFileReader::new_with_options(bytes, options).unwrap();
        assert_eq!(file.metadata().num_row_groups(), 2, "three rows, two per row group");
        let filter = |rg: usize| file.get_row_group(rg).unwrap().get_column_bloom_filter(0).cloned().unwrap();
        // Sorted by placed_at: b, a | c.
        assert!(filter(0).check(&"a") && filter(0).check(&"b") && !filter(0).check(&"c"));
        assert!(filter(1).check(&"c") && !filter(1).check(&"a"));
        let events = crate::layout::table_layout(schemas::tables::Table::OrderEvents);
        assert_eq!(events.row_group_rows, crate::layout::EVENT_ROW_GROUP_ROWS);
        assert_eq!(crate::layout::table_layout(schemas::tables::Table::Orders).row_group_rows, ROW_GROUP_ROWS);
    }

    #[test]
    fn the_first_key_decides_when_it_has_no_ties_and_ties_sort_on_the_rest() {
        let layout = FileLayout::new(&["n", "order_id"], &[]);
        let batch = batch();
        let n = |b: &RecordBatch| b.column_by_name("n").unwrap().as_primitive::<arrow::datatypes::Int64Type>().clone();
        let sorted = sort_rows(&batch.schema(), std::slice::from_ref(&batch), &layout).unwrap();
        assert_eq!(n(&sorted).values(), &[1, 2, 3]);
        let again = sort_rows(&sorted.schema(), std::slice::from_ref(&sorted), &layout).unwrap();
        assert_eq!(n(&again).values(), &[1, 2, 3], "already in order: kept as it is");
        let tied = RecordBatch::try_new(
            batch.schema(),
            vec![
                Arc::new(StringArray::from(vec!["b", "a"])),
                Arc::new(TimestampMicrosecondArray::from(vec![1, 1]).with_timezone("UTC")),
                Arc::new(Int64Array::from(vec![7, 7])),
            ],
        )
        .unwrap();
        let sorted = sort_rows(&tied.schema(), &[tied], &layout).unwrap();
        let ids = sorted.column_by_name("order_id").unwrap().as_string::<i32>();
        assert_eq!((ids.value(0), ids.value(1)), ("a", "b"), "a tie on n is ordered by order_id");
    }

    #[test]
    fn rows_split_by_utc_date() {
        let parts = split_by_date(&batch(), "placed_at").unwrap();
        let dates: Vec<&str> = parts.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(dates, vec!["1970-01-01", "1970-01-02"]);
        assert_eq!(parts[0].1.num_rows(), 2);
        let n = |b: &RecordBatch| b.column_by_name("n").unwrap().as_primitive::<arrow::datatypes::Int64Type>().clone();
        assert_eq!(n(&parts[0].1).values(), &[2, 1], "unsorted rows keep their order within a date");

        // Sorted by time: each date is a slice of the rows, in order.
        let layout = FileLayout::new(&["placed_at"], &[]);
        let sorted = sort_rows(&batch().schema(), &[batch()], &layout).unwrap();
        let parts = split_by_date(&sorted, "placed_at").unwrap();
        let dates: Vec<&str> = parts.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(dates, vec!["1970-01-01", "1970-01-02"]);
        assert_eq!((n(&parts[0].1).values().to_vec(), n(&parts[1].1).values().to_vec()), (vec![1, 2], vec![3]));
        assert!(split_by_date(&sorted.slice(0, 0), "placed_at").unwrap().is_empty());
    }

    #[test]
    fn several_batches_merge_into_the_order_one_sort_gives() {
        let layout = FileLayout::new(&["placed_at", "n"], &["order_id"]);
        let schema = batch().schema();
        let part = |ids: Vec<&str>, at: Vec<i64>, n: Vec<i64>| {
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(StringArray::from(ids)),
                    Arc::new(TimestampMicrosecondArray::from(at).with_timezone("UTC")),
                    Arc::new(Int64Array::from(n)),
                ],
            )
            .unwrap()
        };
        let parts = [
            part(vec!["a", "b", "c"], vec![1, 5, 9], vec![1, 2, 3]),
            part(vec![], vec![], vec![]),
            part(vec!["d", "e"], vec![2, 5], vec![4, 0]),
        ];
        let merged = sort_rows(&schema, &parts, &layout).unwrap();
        let one = concat_batches(&schema, &parts).unwrap();
        let expected = sort_rows(&schema, &[one], &layout).unwrap();
        assert_eq!(merged, expected);
        let ids = merged.column_by_name("order_id").unwrap().as_string::<i32>();
        let ids: Vec<&str> = ids.iter().flatten().collect();
        assert_eq!(ids, ["a", "d", "e", "b", "c"], "a tie on time is ordered by n");

        // No rows at all: an empty batch of the schema.
        assert_eq!(sort_rows(&schema, &parts[1..2], &layout).unwrap().num_rows(), 0);
        assert_eq!(sort_rows(&schema, &[], &layout).unwrap().schema(), schema);

        // Parts already in order follow each other.
        let in_order = [part(vec!["a"], vec![1], vec![1]), part(vec!["b", "c"], vec![2, 3], vec![0, 0])];
        let merged = sort_rows(&schema, &in_order, &layout).unwrap();
        assert_eq!(merged, concat_batches(&schema, &in_order).unwrap());
    }

    proptest::proptest! {
        /// The integer-key sort gives lexicographic key order with ties in
        /// input order, and says "already sorted" exactly when it is.
        #[test]
        fn integer_keys_sort_stably(rows in proptest::collection::vec((0i64..6, 0i64..3), 0..60)) {
            let (first, second): (Vec<i64>, Vec<i64>) = rows.iter().copied().unzip();
            let keys = [first.as_slice(), second.as_slice()];
            let mut expected: Vec<u32> = (0..rows.len() as u32).collect();
            expected.sort_by_key(|&i| rows[i as usize]);
            let sorted = expected.iter().enumerate().all(|(i, &at)| at as usize == i);
            match integer_order(&keys) {
                None => proptest::prop_assert!(sorted),
                Some(order) => proptest::prop_assert_eq!(order.values().to_vec(), expected),
            }
            let first_only = integer_order(&keys[..1]).map(|o| o.values().to_vec());
            let mut by_first: Vec<u32> = (0..rows.len() as u32).collect();
            by_first.sort_by_key(|&i| rows[i as usize].0);
            let in_order = by_first.iter().enumerate().all(|(i, &at)| at as usize == i);
            proptest::prop_assert_eq!(&first_only, &(!in_order).then_some(by_first));
            let zeros = vec![0; rows.len()];
            let constant_second = integer_order(&[first.as_slice(), zeros.as_slice()]).map(|o| o.values().to_vec());
            proptest::prop_assert_eq!(&constant_second, &first_only, "a key of one value decides nothing");
            // Times too far apart to pack with the row number are compared.
            let wide: Vec<i64> = first.iter().map(|v| v << 60).collect();
            let wide_order = integer_order(&[wide.as_slice()]).map(|o| o.values().to_vec());
            proptest::prop_assert_eq!(wide_order, first_only, "the same order, unpacked");
        }

        /// An integer first key, then others of any type: the order a full
        /// lexicographic sort gives (the keys here are distinct as a whole).
        #[test]
        fn runs_of_the_first_key_sort_on_the_rest(
            rows in proptest::collection::btree_set((0i64..5, "[a-c]{0,2}", 0i64..3), 0..60)
        ) {
            let mut rows: Vec<(i64, String, i64)> = rows.into_iter().collect();
            // Input order unlike the sorted one.
            rows.sort_by(|a, b| (&a.1, a.2).cmp(&(&b.1, b.2)).reverse());
            let schema = Arc::new(Schema::new(vec![
                Field::new("window_start", schemas::tables::timestamp(), false),
                Field::new("category", DataType::Utf8, false),
                Field::new("n", DataType::Int64, false),
            ]));
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(TimestampMicrosecondArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>()).with_timezone("UTC")),
                    Arc::new(StringArray::from(rows.iter().map(|r| r.1.as_str()).collect::<Vec<_>>())),
                    Arc::new(Int64Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
                ],
            )
            .unwrap();
            let layout = FileLayout::new(&["window_start", "category", "n"], &[]);
            let sorted = sort_rows(&schema, std::slice::from_ref(&batch), &layout).unwrap();
            let keys: Vec<SortColumn> = batch
                .columns()
                .iter()
                .map(|c| SortColumn { values: Arc::clone(c), options: Some(SortOptions { descending: false, nulls_first: false }) })
                .collect();
            let expected = take_record_batch(&batch, &lexsort_to_indices(&keys, None).unwrap()).unwrap();
            proptest::prop_assert_eq!(sorted, expected);
        }

        /// Packing value and row into one u64 sorts stably, and declines only
        /// when the two do not fit.
        #[test]
        fn packed_order_is_a_stable_sort(
            values in proptest::collection::vec(proptest::prop_oneof![0i64..8, proptest::num::i64::ANY], 0..60)
        ) {
            let mut expected: Vec<u32> = (0..values.len() as u32).collect();
            expected.sort_by_key(|&i| values[i as usize]);
            match packed_order(&values) {
                Some(order) => proptest::prop_assert_eq!(order, expected),
                None => {
                    let range = values.iter().max().zip(values.iter().min()).map(|(hi, lo)| hi.abs_diff(*lo));
                    proptest::prop_assert!(range.is_none_or(|r| r >= 1 << 58), "declined a range of {range:?}");
                }
            }
        }
    }

    #[test]
    fn distinct_id_columns_are_written_without_a_dictionary() {
        use parquet::basic::Encoding;
        let batch = batch();
        let layout = FileLayout::new(&["placed_at"], &[]).with_plain_columns(&["order_id"]);
        let bytes = encode(&batch.schema(), std::slice::from_ref(&batch), &layout).unwrap();
        let file = SerializedFileReader::new(bytes).unwrap();
        let row_group = file.metadata().row_group(0);
        assert!(row_group.column(0).dictionary_page_offset().is_none(), "order_id: no dictionary");
        assert!(!row_group.column(0).encodings().any(|e| e == Encoding::RLE_DICTIONARY));
        assert!(row_group.column(2).dictionary_page_offset().is_some(), "other columns keep theirs");
    }
}
