//! What is derived from whole Parquet files (the dashboard's bloom filters
//! and orders' latest statuses, the query session's decoded small files),
//! kept in memory per file.
//!
//! The lake's files are only ever added or replaced whole, never rewritten
//! in place, so a file's size, modification time and tag (a cloud store's
//! times have whole seconds) say whether a kept value is still the file's.
//! The cache is bounded in bytes; past the bound the least recently used
//! values go (files compacted away are never used again and go first).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use object_store::ObjectMeta;

use crate::AnalyticsError;

struct Entry<V> {
    size: u64,
    modified: DateTime<Utc>,
    e_tag: Option<String>,
    value: V,
    bytes: usize,
    used: u64,
}

impl<V> Entry<V> {
    fn is_of(&self, meta: &ObjectMeta) -> bool {
        self.size == meta.size && self.modified == meta.last_modified && self.e_tag == meta.e_tag
    }
}

struct Entries<K, V> {
    values: HashMap<K, Entry<V>>,
    bytes: usize,
    clock: u64,
}

pub struct FileCache<K, V> {
    entries: Mutex<Entries<K, V>>,
    max_bytes: usize,
    name: &'static str,
}

impl<K: Hash + Eq + Clone, V> FileCache<K, V> {
    /// A cache holding at most `max_bytes` (as its values count them);
    /// `name` says which in errors.
    pub fn new(name: &'static str, max_bytes: usize) -> Self {
        let entries = Entries { values: HashMap::new(), bytes: 0, clock: 0 };
        FileCache { entries: Mutex::new(entries), max_bytes, name }
    }

    /// Calls `found` with the position and value of each of `files` whose
    /// value is kept and still the file's; returns the positions of the
    /// others, to be read and [`FileCache::insert`]ed.
    pub fn visit<'a>(
        &self,
        files: impl IntoIterator<Item = (&'a K, &'a ObjectMeta)>,
        mut found: impl FnMut(usize, &V),
    ) -> Result<Vec<usize>, AnalyticsError>
    where
        K: 'a,
    {
        let mut entries = self.lock()?;
        entries.clock += 1;
        let now = entries.clock;
        let mut missing = Vec::new();
        for (at, (key, meta)) in files.into_iter().enumerate() {
            match entries.values.get_mut(key) {
                Some(entry) if entry.is_of(meta) => {
                    entry.used = now;
                    found(at, &entry.value);
                }
                _ => missing.push(at),
            }
        }
        Ok(missing)
    }

    /// Keeps `value`, `bytes` large, as the value of the file `meta`
    /// describes, then evicts past the bound.
    pub fn insert(&self, key: K, meta: &ObjectMeta, value: V, bytes: usize) -> Result<(), AnalyticsError> {
        let mut entries = self.lock()?;
        let used = entries.clock;
        let entry =
            Entry { size: meta.size, modified: meta.last_modified, e_tag: meta.e_tag.clone(), value, bytes, used };
        entries.bytes += bytes;
        if let Some(old) = entries.values.insert(key, entry) {
            entries.bytes -= old.bytes;
        }
        entries.evict(self.max_bytes);
        Ok(())
    }

    fn lock(&self) -> Result<MutexGuard<'_, Entries<K, V>>, AnalyticsError> {
        self.entries
            .lock()
            .map_err(|_| AnalyticsError::Config { what: self.name, message: "the cache is poisoned".into() })
    }
}

impl<K: Hash + Eq + Clone, V> Entries<K, V> {
    /// Drops the least recently used values until a quarter under the
    /// bound.
    fn evict(&mut self, max_bytes: usize) {
        if self.bytes <= max_bytes {
            return;
        }
        let mut by_age: Vec<(u64, K)> = self.values.iter().map(|(key, e)| (e.used, key.clone())).collect();
        by_age.sort_unstable_by_key(|(used, _)| *used);
        for (_, key) in by_age {
            if self.bytes <= max_bytes / 4 * 3 {
                break;
            }
            if let Some(e) = self.values.remove(&key) {
                self.bytes -= e.bytes;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use object_store::path::Path;

    fn meta(name: &str, size: u64) -> ObjectMeta {
        ObjectMeta { location: Path::from(name), last_modified: DateTime::UNIX_EPOCH, size, e_tag: None, version: None }
    }

    fn kept(cache: &FileCache<String, u32>, names: &[&str]) -> Vec<u32> {
        let files: Vec<(String, ObjectMeta)> = names.iter().map(|n| (n.to_string(), meta(n, 1))).collect();
        let mut out = Vec::new();
        cache.visit(files.iter().map(|(k, m)| (k, m)), |_, v| out.push(*v)).unwrap();
        out.sort_unstable();
        out
    }

    #[test]
    fn the_least_recently_used_files_go_first_and_only_past_the_bound() {
        let cache: FileCache<String, u32> = FileCache::new("test", 400);
        for (n, name) in ["f0", "f1", "f2", "f3"].iter().enumerate() {
            cache.insert(name.to_string(), &meta(name, 1), n as u32, 100).unwrap();
        }
        // Used in the order f1, f3, f2, f0: f1 longest ago.
        for name in ["f1", "f3", "f2", "f0"] {
            kept(&cache, &[name]);
        }
        assert_eq!(kept(&cache, &["f0", "f1", "f2", "f3"]), [0, 1, 2, 3], "at the bound nothing goes");
        for name in ["f1", "f3", "f2", "f0"] {
            kept(&cache, &[name]);
        }
        cache.insert("f4".into(), &meta("f4", 1), 4, 100).unwrap();
        assert_eq!(kept(&cache, &["f0", "f1", "f2", "f3", "f4"]), [0, 2, 4], "the two used longest ago went");
        assert_eq!(cache.lock().unwrap().bytes, 300, "down to three quarters");
    }

    #[test]
    fn a_file_replaced_whole_is_read_again() {
        let cache: FileCache<String, u32> = FileCache::new("test", 1 << 20);
        cache.insert("f".into(), &meta("f", 10), 1, 8).unwrap();
        let key = "f".to_string();
        let same = meta("f", 10);
        let missing = cache.visit([(&key, &same)], |_, _| {}).unwrap();
        assert!(missing.is_empty());
        let replaced = meta("f", 11);
        let missing = cache.visit([(&key, &same), (&key, &replaced)], |at, v| assert_eq!((at, *v), (0, 1))).unwrap();
        assert_eq!(missing, [1], "another size is another file");
        cache.insert("f".into(), &replaced, 2, 8).unwrap();
        assert_eq!(cache.lock().unwrap().bytes, 8, "the old value's bytes went with it");
    }
}
