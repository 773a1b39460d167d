//! Which windows of a range a pipeline covers, remembered per (pipeline,
//! range) together with the listing it was read from. Pipeline outputs and
//! `late_events` files are only ever added or replaced whole (exactly-once
//! names, compaction swaps files), never rewritten in place, so the same
//! listing — every file's path, size and modification time under the
//! range's `date` partitions of both, and which of the two tables are
//! registered — means the same answer. A request lists those directories
//! (a few directory reads) instead of opening and decoding the files; any
//! new, replaced or removed file is a miss.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::Dashboard;
use crate::DashboardError;

/// Entries kept at most; past it the cache starts over (ranges that end
/// "now" make new keys every window).
const MAX_ENTRIES: usize = 512;

/// A covered window's start and its latest final version.
pub type Covered = Vec<(DateTime<Utc>, i64)>;

type Key = (String, i64, i64);

#[derive(Default)]
pub struct CoverageCache {
    entries: Mutex<HashMap<Key, (u64, Covered)>>,
}

impl CoverageCache {
    /// The remembered answer for `pipeline` over `[from, to)` if its files
    /// are as they were, else None; and the listing's fingerprint to
    /// [`CoverageCache::put`] a fresh answer under.
    pub async fn get(
        &self,
        state: &Dashboard,
        pipeline: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(Option<Covered>, u64), DashboardError> {
        let fingerprint = listing_fingerprint(state, pipeline, from, to).await?;
        let key = (pipeline.to_string(), from.timestamp_micros(), to.timestamp_micros());
        let entries = self.entries.lock().map_err(|_| DashboardError::Internal("coverage cache poisoned".into()))?;
        let hit = entries.get(&key).filter(|(f, _)| *f == fingerprint).map(|(_, covered)| covered.clone());
        Ok((hit, fingerprint))
    }

    pub fn put(&self, pipeline: &str, from: DateTime<Utc>, to: DateTime<Utc>, fingerprint: u64, covered: &Covered) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            let key = (pipeline.to_string(), from.timestamp_micros(), to.timestamp_micros());
            entries.insert(key, (fingerprint, covered.clone()));
        }
    }
}

/// A hash of every file under the range's `date` partitions of the
/// pipeline's output and of its `late_events`.
async fn listing_fingerprint(
    state: &Dashboard,
    pipeline: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<u64, DashboardError> {
    let store = state.lake.store();
    let last = (to - chrono::Duration::microseconds(1)).date_naive().max(from.date_naive());
    let mut hasher = DefaultHasher::new();
    // An answer read before a table was registered (the refresh task adds
    // new tables within seconds) lacked it: keep it apart.
    let tables = state.lake.tables().await;
    (tables.contains(pipeline), tables.contains("late_events")).hash(&mut hasher);
    let dirs: Vec<_> = from
        .date_naive()
        .iter_days()
        .take_while(|d| *d <= last)
        .flat_map(|day| {
            [format!("{pipeline}/date={day}"), format!("{}/date={day}", analytics::layout::late_events_table(pipeline))]
        })
        .map(|dir| store.path(&dir))
        .collect();
    let listings = store.list_each(dirs).await?;
    for mut files in listings {
        files.sort_by(|a, b| a.location.cmp(&b.location));
        for file in files {
            file.location.as_ref().hash(&mut hasher);
            file.size.hash(&mut hasher);
            file.last_modified.timestamp_nanos_opt().hash(&mut hasher);
        }
    }
    Ok(hasher.finish())
}
