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

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};
use parquet::bloom_filter::Sbbf;
use parquet::file::metadata::ParquetMetaDataReader;

use analytics::store::DataStore;

use crate::DashboardError;
use crate::params::partition_date;

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
    size: u64,
    modified: DateTime<Utc>,
    /// A cloud store's content tag: its times have whole seconds.
    e_tag: Option<String>,
    row_groups: Vec<Option<Sbbf>>,
    bytes: usize,
    used: u64,
}

impl Filters {
    fn is_of(&self, meta: &ObjectMeta) -> bool {
        self.size == meta.size && self.modified == meta.last_modified && self.e_tag == meta.e_tag
    }

    fn may_hold(&self, values: &[&str]) -> bool {
        self.row_groups.iter().any(|f| f.as_ref().is_none_or(|f| values.iter().any(|v| f.check(*v))))
    }
}

/// Filters by column, then by file.
#[derive(Default)]
struct Entries {
    files: HashMap<&'static str, HashMap<Path, Filters>>,
    bytes: usize,
    clock: u64,
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

#[derive(Default)]
pub struct BloomIndex {
    entries: Mutex<Entries>,
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
        let mut out = BTreeSet::new();
        let mut missing: Vec<(NaiveDate, ObjectMeta, &'static str)> = Vec::new();
        {
            let mut entries = self.lock()?;
            entries.clock += 1;
            let now = entries.clock;
            for (date, meta) in &files {
                for column in columns {
                    match entries.files.get_mut(column).and_then(|files| files.get_mut(&meta.location)) {
                        Some(f) if f.is_of(meta) => {
                            f.used = now;
                            if f.may_hold(values) {
                                out.insert(*date);
                            }
                        }
                        _ => missing.push((*date, meta.clone(), *column)),
                    }
                }
            }
        }
        missing.retain(|(date, _, _)| !out.contains(date));
        // Futures built in a loop, not a closure: a closure here trips
        // rustc's higher-ranked lifetime check on the handler's `Send`.
        let mut reads = Vec::with_capacity(missing.len());
        for (date, meta, column) in missing {
            let store = store.clone();
            reads.push(async move {
                let filters = read_filters(&store, &meta, column).await?;
                Ok::<_, DashboardError>((date, meta, column, filters))
            });
        }
        let read: Vec<(NaiveDate, ObjectMeta, &'static str, Filters)> =
            futures::stream::iter(reads).buffer_unordered(READ_AHEAD).try_collect().await?;
        let mut entries = self.lock()?;
        let now = entries.clock;
        for (date, meta, column, mut filters) in read {
            if filters.may_hold(values) {
                out.insert(date);
            }
            filters.used = now;
            entries.bytes += filters.bytes;
            if let Some(old) = entries.files.entry(column).or_default().insert(meta.location, filters) {
                entries.bytes -= old.bytes;
            }
        }
        entries.evict();
        Ok(out)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Entries>, DashboardError> {
        self.entries.lock().map_err(|_| DashboardError::Internal("bloom index poisoned".into()))
    }
}

impl Entries {
    /// Drops the least recently used files until a quarter under the limit
    /// (files compacted away are never used again and go first).
    fn evict(&mut self) {
        if self.bytes <= MAX_BYTES {
            return;
        }
        let mut by_age: Vec<(u64, &'static str, Path)> = self
            .files
            .iter()
            .flat_map(|(column, files)| files.iter().map(|(path, f)| (f.used, *column, path.clone())))
            .collect();
        by_age.sort_unstable();
        for (_, column, path) in by_age {
            if self.bytes <= MAX_BYTES / 4 * 3 {
                break;
            }
            if let Some(f) = self.files.get_mut(column).and_then(|files| files.remove(&path)) {
                self.bytes -= f.bytes;
            }
        }
    }
}

/// The Parquet files of `table` in `scope`, with the date each is on.
async fn list_files(
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
    Ok(Filters { size, modified: meta.last_modified, e_tag: meta.e_tag.clone(), row_groups, bytes, used: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(bytes: usize, used: u64) -> Filters {
        Filters { size: 1, modified: DateTime::UNIX_EPOCH, e_tag: None, row_groups: Vec::new(), bytes, used }
    }

    #[test]
    fn the_least_recently_used_files_go_first_and_only_past_the_limit() {
        let mut entries = Entries::default();
        let quarter = MAX_BYTES / 4;
        let put = |entries: &mut Entries, n: u32, used: u64| {
            entries.files.entry("order_id").or_default().insert(Path::from(format!("f{n}")), filters(quarter, used));
            entries.bytes += quarter;
        };
        for (n, used) in [(0, 5), (1, 1), (2, 3), (3, 2)] {
            put(&mut entries, n, used);
        }
        entries.evict();
        assert_eq!(entries.files["order_id"].len(), 4, "at the limit nothing goes");
        put(&mut entries, 4, 4);
        entries.evict();
        let mut kept: Vec<&str> = entries.files["order_id"].keys().map(|f| f.as_ref()).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["f0", "f2", "f4"], "the two used longest ago went, down to three quarters");
        assert_eq!(entries.bytes, 3 * quarter);
    }

    #[test]
    fn a_row_group_without_a_filter_may_hold_anything() {
        let mut bloom = Sbbf::new_with_num_of_bytes(1024);
        bloom.insert("a");
        let mut f = filters(0, 0);
        f.row_groups = vec![Some(bloom)];
        assert!(f.may_hold(&["a"]));
        assert!(!f.may_hold(&["b"]));
        f.row_groups.push(None);
        assert!(f.may_hold(&["b"]));
        assert!(!filters(0, 0).may_hold(&["a"]), "a file without row groups holds nothing");
    }
}
