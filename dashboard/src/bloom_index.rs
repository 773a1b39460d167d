//! Which `date` partitions may hold an id, answered from the files' own
//! bloom filters kept in memory.
//!
//! Finding one customer's orders across a year means asking 400 daily
//! files whether they hold the id. DataFusion prunes with each file's
//! bloom filter, but it opens every file and reads its filters again on
//! every query, and that opening was most of a lookup's time. Here each
//! file's filters for a column are read once and kept, keyed by the file's
//! path and checked against its size, modification time and tag (files are only
//! ever added or replaced whole, never rewritten in place); a lookup then
//! lists the table, probes the filters in memory and hands the query only
//! the dates that may match, where DataFusion's own pruning takes over.
//! A file without a filter for the column may hold anything.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};
use parquet::bloom_filter::Sbbf;
use parquet::file::metadata::ParquetMetaDataReader;

use analytics::store::DataStore;

use crate::DashboardError;
use crate::params::partition_date;
use analytics::query::file_cache::FileCache;

/// Filter bytes kept at most; past it the least recently used files go.
const MAX_BYTES: usize = 256 << 20;
/// Files whose filters are read at once on a miss.
const READ_AHEAD: usize = 16;
/// Up to this many dates are listed one directory each; more, the table
/// is listed whole.
const LIST_DATES_SINGLY: usize = 32;

/// One file's filters for one column: one per row group, `None` where a
/// row group has none.
struct Filters {
    row_groups: Vec<Option<Sbbf>>,
    bytes: usize,
}

impl Filters {
    fn may_hold(&self, values: &[&str]) -> bool {
        self.row_groups.iter().any(|f| f.as_ref().is_none_or(|f| values.iter().any(|v| f.check(*v))))
    }
}

/// The `date` partitions a lookup may look in.
#[derive(Clone, Copy)]
pub enum DateScope<'a> {
    /// From the first through the last day (unbounded where `None`); the
    /// table is listed whole.
    Between(Option<NaiveDate>, Option<NaiveDate>),
    /// These days; up to `LIST_DATES_SINGLY` of them are listed one
    /// directory each.
    Only(&'a BTreeSet<NaiveDate>),
}

impl DateScope<'_> {
    fn contains(&self, day: NaiveDate) -> bool {
        match self {
            DateScope::Between(lo, hi) => lo.is_none_or(|l| day >= l) && hi.is_none_or(|h| day <= h),
            DateScope::Only(days) => days.contains(&day),
        }
    }
}

/// Filters by column and file.
pub struct BloomIndex {
    files: FileCache<(&'static str, Path), Filters>,
}

impl Default for BloomIndex {
    fn default() -> Self {
        BloomIndex { files: FileCache::new("bloom index", MAX_BYTES) }
    }
}

impl BloomIndex {
    /// The dates in `scope` on which some file of `table` may hold one of
    /// `values` in one of `columns`.
    pub async fn dates_that_may_hold(
        &self,
        store: &DataStore,
        table: &str,
        columns: &[&'static str],
        scope: DateScope<'_>,
        values: &[&str],
    ) -> Result<BTreeSet<NaiveDate>, DashboardError> {
        let files = list_files(store, table, scope).await?;
        self.dates_among(store, &files, columns, values).await
    }

    /// [`BloomIndex::dates_that_may_hold`] over files already listed.
    pub async fn dates_among(
        &self,
        store: &DataStore,
        files: &[(NaiveDate, ObjectMeta)],
        columns: &[&'static str],
        values: &[&str],
    ) -> Result<BTreeSet<NaiveDate>, DashboardError> {
        let keyed: Vec<((&'static str, Path), NaiveDate, &ObjectMeta)> = files
            .iter()
            .flat_map(|(date, meta)| columns.iter().map(move |column| ((*column, meta.location.clone()), *date, meta)))
            .collect();
        let mut out = BTreeSet::new();
        let missing = self.files.visit(keyed.iter().map(|(key, _, meta)| (key, *meta)), |at, filters| {
            if filters.may_hold(values) {
                out.insert(keyed[at].1);
            }
        })?;
        // Futures built in a loop, not a closure: a closure here trips
        // rustc's higher-ranked lifetime check on the handler's `Send`.
        let mut reads = Vec::with_capacity(missing.len());
        for at in missing.into_iter().filter(|at| !out.contains(&keyed[*at].1)) {
            let ((column, _), date, meta) = &keyed[at];
            let (store, column, date, meta) = (store.clone(), *column, *date, (*meta).clone());
            reads.push(async move {
                let filters = read_filters(&store, &meta, column).await?;
                Ok::<_, DashboardError>((date, meta, column, filters))
            });
        }
        let read: Vec<(NaiveDate, ObjectMeta, &'static str, Filters)> =
            futures::stream::iter(reads).buffer_unordered(READ_AHEAD).try_collect().await?;
        for (date, meta, column, filters) in read {
            if filters.may_hold(values) {
                out.insert(date);
            }
            let bytes = filters.bytes;
            self.files.insert((column, meta.location.clone()), &meta, filters, bytes)?;
        }
        Ok(out)
    }
}

/// The Parquet files of `table` in `scope`, with the date each is on.
pub(crate) async fn list_files(
    store: &DataStore,
    table: &str,
    scope: DateScope<'_>,
) -> Result<Vec<(NaiveDate, ObjectMeta)>, DashboardError> {
    let listed: Vec<ObjectMeta> = match scope {
        DateScope::Only(days) if days.len() <= LIST_DATES_SINGLY => {
            let dirs: Vec<Path> = days.iter().map(|d| store.path(&format!("{table}/date={d}"))).collect();
            store.list_each(dirs).await?.into_iter().flatten().collect()
        }
        _ => store.list(&store.path(table)).await?,
    };
    Ok(listed
        .into_iter()
        .filter(|m| m.location.as_ref().ends_with(".parquet"))
        .filter_map(|m| {
            let day = m.location.parts().find_map(|p| partition_date(p.as_ref()))?;
            scope.contains(day).then_some((day, m))
        })
        .collect())
}

/// Bytes read from a file's end at first: the footer of a daily file
/// (a few row groups) fits.
const FOOTER_GUESS: u64 = 64 << 10;

/// Reads one file's filters for `column` (none when the file lacks the
/// column: each of its row groups may then hold anything): its footer,
/// then every row group's filter in one ranged read.
async fn read_filters(store: &DataStore, meta: &ObjectMeta, column: &str) -> Result<Filters, DashboardError> {
    let failed = |e: &dyn std::fmt::Display| {
        DashboardError::Internal(format!("cannot read the bloom filters of {}: {e}", meta.location))
    };
    let objects = store.object_store();
    let size = meta.size;
    if size < 12 {
        return Err(failed(&"shorter than a Parquet footer"));
    }
    let start = size.saturating_sub(FOOTER_GUESS);
    let mut tail = objects.get_range(&meta.location, start..size).await.map_err(|e| failed(&e))?;
    let footer = &tail[tail.len() - 8..];
    if &footer[4..] != b"PAR1" {
        return Err(failed(&"no Parquet footer"));
    }
    let metadata_len = u64::from(u32::from_le_bytes([footer[0], footer[1], footer[2], footer[3]]));
    let metadata_start = size.checked_sub(metadata_len + 8).ok_or_else(|| failed(&"footer length past the file"))?;
    if metadata_start < start {
        tail = objects.get_range(&meta.location, metadata_start..size).await.map_err(|e| failed(&e))?;
    }
    let offset = (metadata_start - size.saturating_sub(tail.len() as u64)) as usize;
    let metadata = ParquetMetaDataReader::decode_metadata(&tail[offset..tail.len() - 8]).map_err(|e| failed(&e))?;
    let index = metadata.file_metadata().schema_descr().columns().iter().position(|c| c.path().string() == column);
    let ranges: Vec<Option<std::ops::Range<u64>>> = metadata
        .row_groups()
        .iter()
        .map(|rg| {
            let chunk = rg.column(index?);
            let from = u64::try_from(chunk.bloom_filter_offset()?).ok()?;
            let len = u64::try_from(chunk.bloom_filter_length()?).ok()?;
            Some(from..from + len)
        })
        .collect();
    let wanted: Vec<std::ops::Range<u64>> = ranges.iter().flatten().cloned().collect();
    let mut read = objects.get_ranges(&meta.location, &wanted).await.map_err(|e| failed(&e))?.into_iter();
    let mut row_groups = Vec::with_capacity(ranges.len());
    let mut bytes = 0;
    for range in &ranges {
        let filter = match range {
            Some(_) => {
                let buf = read.next().ok_or_else(|| failed(&"a bloom filter read came back short"))?;
                bytes += buf.len();
                Some(Sbbf::from_bytes(&buf).map_err(|e| failed(&e))?)
            }
            None => None,
        };
        row_groups.push(filter);
    }
    Ok(Filters { row_groups, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_group_without_a_filter_may_hold_anything() {
        let mut bloom = Sbbf::new_with_num_of_bytes(1024);
        bloom.insert("a");
        let mut f = Filters { row_groups: vec![Some(bloom)], bytes: 0 };
        assert!(f.may_hold(&["a"]));
        assert!(!f.may_hold(&["b"]));
        f.row_groups.push(None);
        assert!(f.may_hold(&["b"]));
        assert!(
            !Filters { row_groups: Vec::new(), bytes: 0 }.may_hold(&["a"]),
            "a file without row groups holds nothing"
        );
    }
}
