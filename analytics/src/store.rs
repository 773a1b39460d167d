//! Where the tables live: one object store (a local directory by default;
//! `s3://`, `gs://`, `az://` or `memory://` by URL) and the layout inside it.
//!
//! ```text
//! {root}/{table}/date=YYYY-MM-DD/part-{first_seq:020}-{last_seq:020}.parquet
//! {root}/_checkpoints/{job}.json
//! ```
//! A data file's name is the stream-sequence range it holds, so writing the
//! same range twice writes the same name: an overwrite, never a duplicate.

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

use crate::AnalyticsError;

/// Directory listings in flight at once in [`DataStore::list_each`].
const LISTINGS_AT_ONCE: usize = 16;

/// Where `up` keeps its data (the embedded nats-server's store, the lake,
/// exports) unless told otherwise.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// The lake's directory under the data directory.
pub const LAKE_DIR: &str = "lake";
/// Where every role reads and writes the lake unless told otherwise:
/// [`DEFAULT_DATA_DIR`]`/`[`LAKE_DIR`].
pub const DEFAULT_LAKE: &str = "./data/lake";

#[derive(Clone, Debug)]
pub struct DataStore {
    store: Arc<dyn ObjectStore>,
    /// The root inside the store (a key prefix).
    root: Path,
    /// `scheme://authority/root/`, what DataFusion's listing tables take.
    url: Url,
}

impl DataStore {
    /// `location` is a URL (`s3://bucket/prefix`, `memory://`, `file:///abs`)
    /// or a local directory, created when missing. Credentials for cloud
    /// stores come from the usual `AWS_*`, `GOOGLE_*` and `AZURE_*` variables.
    pub fn open(location: &str) -> Result<DataStore, AnalyticsError> {
        let bad = |message: String| AnalyticsError::Config { what: "data location", message };
        let url = match Url::parse(location) {
            Ok(url) if url.scheme().len() > 1 => url,
            // A bare path (or a Windows drive letter, which parses as a scheme).
            _ => {
                let dir = std::path::Path::new(location);
                std::fs::create_dir_all(dir).map_err(|e| bad(format!("{location}: {e}")))?;
                let dir = dir.canonicalize().map_err(|e| bad(format!("{location}: {e}")))?;
                Url::from_directory_path(&dir).map_err(|()| bad(format!("{location} is not an absolute path")))?
            }
        };
        if url.scheme() == "file" {
            let dir = url.to_file_path().map_err(|()| bad(format!("{url} is not a local path")))?;
            std::fs::create_dir_all(&dir).map_err(|e| bad(format!("{}: {e}", dir.display())))?;
        }
        let options = std::env::vars().filter_map(|(key, value)| {
            let lower = key.to_ascii_lowercase();
            ["aws_", "google_", "azure_"].iter().any(|p| lower.starts_with(p)).then_some((lower, value))
        });
        let (store, root) = object_store::parse_url_opts(&url, options).map_err(|e| bad(format!("{url}: {e}")))?;
        let mut url = url;
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        Ok(DataStore { store: Arc::from(store), root, url })
    }

    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// The store's base URL (`s3://bucket`), under which DataFusion finds it.
    pub fn base_url(&self) -> Url {
        let mut base = self.url.clone();
        base.set_path("/");
        base
    }

    /// `…/{table}/` as a URL, for a listing table.
    pub fn table_url(&self, table: &str) -> String {
        format!("{}{table}/", self.url)
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn path(&self, relative: &str) -> Path {
        relative.split('/').filter(|p| !p.is_empty()).fold(self.root.clone(), |path, part| path.clone().join(part))
    }

    pub async fn put(&self, path: &Path, bytes: Bytes) -> Result<(), AnalyticsError> {
        self.put_payload(path, PutPayload::from(bytes)).await
    }

    /// Stores one object made of several buffers (written in order).
    pub async fn put_payload(&self, path: &Path, payload: PutPayload) -> Result<(), AnalyticsError> {
        self.store.put(path, payload).await.map_err(|e| AnalyticsError::store("write", path, e))?;
        Ok(())
    }

    pub async fn get(&self, path: &Path) -> Result<Option<Bytes>, AnalyticsError> {
        match self.store.get(path).await {
            Ok(result) => Ok(Some(result.bytes().await.map_err(|e| AnalyticsError::store("read", path, e))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(AnalyticsError::store("read", path, e)),
        }
    }

    pub async fn delete(&self, path: &Path) -> Result<(), AnalyticsError> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(AnalyticsError::store("delete", path, e)),
        }
    }

    /// Every object under `prefix`, recursively.
    pub async fn list(&self, prefix: &Path) -> Result<Vec<ObjectMeta>, AnalyticsError> {
        self.store.list(Some(prefix)).try_collect().await.map_err(|e| AnalyticsError::store("list", prefix, e))
    }

    /// The days of `table`'s `column=YYYY-MM-DD` partitions that hold
    /// Parquet, ascending (the lake's `date=` and the derived tables' `as_of=`).
    pub async fn partition_days(&self, table: &str, column: &str) -> Result<Vec<chrono::NaiveDate>, AnalyticsError> {
        let prefix = format!("{column}=");
        let mut days: Vec<chrono::NaiveDate> = self
            .list(&self.path(table))
            .await?
            .iter()
            .filter(|m| m.location.as_ref().ends_with(".parquet"))
            .filter_map(|m| {
                m.location.parts().find_map(|part| {
                    part.as_ref()
                        .strip_prefix(&prefix)
                        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                })
            })
            .collect();
        days.sort();
        days.dedup();
        Ok(days)
    }

    /// [`DataStore::list`] of each prefix, in the order given. A listing
    /// waits on the file system or the network more than it computes, so
    /// up to `LISTINGS_AT_ONCE` run at once (a fortnight of a pipeline and
    /// its late rows is 30 directories).
    pub async fn list_each(&self, prefixes: Vec<Path>) -> Result<Vec<Vec<ObjectMeta>>, AnalyticsError> {
        futures::stream::iter(prefixes.into_iter().map(|prefix| async move { self.list(&prefix).await }))
            .buffered(LISTINGS_AT_ONCE)
            .try_collect()
            .await
    }

    /// Removes the half-written files a killed writer left under `relative`
    /// and returns how many. object_store's local backend writes `name#N`
    /// and renames it to `name`; a kill in between leaves the staged file,
    /// which object_store's own listings skip but other readers (pyarrow,
    /// DuckDB globs) try to read. Other stores have no such leftovers (an
    /// unfinished upload is never visible), so this does nothing there.
    pub fn remove_staged_writes(&self, relative: &str) -> Result<usize, AnalyticsError> {
        if self.url.scheme() != "file" {
            return Ok(0);
        }
        let Ok(root) = self.url.to_file_path() else { return Ok(0) };
        let mut pending = vec![relative.split('/').filter(|p| !p.is_empty()).fold(root, |dir, part| dir.join(part))];
        let mut removed = 0;
        while let Some(dir) = pending.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(AnalyticsError::io(&dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| AnalyticsError::io(&dir, e))?;
                let path = entry.path();
                let kind = entry.file_type().map_err(|e| AnalyticsError::io(&path, e))?;
                if kind.is_dir() {
                    pending.push(path);
                } else if is_staged_write(&entry.file_name().to_string_lossy()) {
                    std::fs::remove_file(&path).map_err(|e| AnalyticsError::io(&path, e))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// The tables present: the first-level directories that hold Parquet.
    pub async fn table_names(&self) -> Result<Vec<String>, AnalyticsError> {
        let listing = self
            .store
            .list_with_delimiter(Some(&self.root))
            .await
            .map_err(|e| AnalyticsError::store("list", &self.root, e))?;
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .filter(|name| !name.starts_with('_') && !name.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }
}

/// `name#123`: object_store's local staging name (see
/// [`DataStore::remove_staged_writes`]).
fn is_staged_write(file_name: &str) -> bool {
    file_name.rsplit_once('#').is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `part-{first:020}-{last:020}.parquet`: zero-padded so names sort by range.
pub fn part_file_name(first_seq: u64, last_seq: u64) -> String {
    format!("part-{first_seq:020}-{last_seq:020}.parquet")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_lake_is_in_the_default_data_dir() {
        assert_eq!(super::DEFAULT_LAKE, format!("{}/{}", super::DEFAULT_DATA_DIR, super::LAKE_DIR));
    }

    use super::*;

    #[test]
    fn part_names_sort_by_range() {
        assert!(part_file_name(9, 100) < part_file_name(101, 2_000));
    }

    #[tokio::test]
    async fn a_local_directory_is_created_and_round_trips_objects() {
        let dir = tempfile::tempdir().unwrap();
        let store = DataStore::open(dir.path().join("lake").to_str().unwrap()).unwrap();
        let path = store.path("orders/date=2026-11-22/x.bin");
        store.put(&path, Bytes::from_static(b"abc")).await.unwrap();
        assert_eq!(store.get(&path).await.unwrap().unwrap(), Bytes::from_static(b"abc"));
        assert_eq!(store.table_names().await.unwrap(), vec!["orders".to_string()]);
        store.delete(&path).await.unwrap();
        assert!(store.get(&path).await.unwrap().is_none());
        assert!(store.table_url("orders").starts_with("file:///"));
    }

    #[tokio::test]
    async fn staged_writes_a_kill_left_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let store = DataStore::open(dir.path().to_str().unwrap()).unwrap();
        let partition = dir.path().join("orders/date=2026-03-01");
        std::fs::create_dir_all(&partition).unwrap();
        for name in ["part-1-2.parquet", "part-1-2.parquet#1", "part-3-4.parquet#12", "notes#draft"] {
            std::fs::write(partition.join(name), b"").unwrap();
        }
        std::fs::create_dir_all(dir.path().join("other")).unwrap();
        std::fs::write(dir.path().join("other/x.parquet#1"), b"").unwrap();

        assert_eq!(store.remove_staged_writes("orders").unwrap(), 2);
        let mut left: Vec<String> =
            std::fs::read_dir(&partition).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["notes#draft", "part-1-2.parquet"]);
        assert!(dir.path().join("other/x.parquet#1").exists(), "only the named table is touched");
        assert_eq!(store.remove_staged_writes("missing-table").unwrap(), 0);
    }

    #[tokio::test]
    async fn memory_urls_work_without_a_directory() {
        let store = DataStore::open("memory:///lake").unwrap();
        let path = store.path("t/a");
        store.put(&path, Bytes::from_static(b"1")).await.unwrap();
        assert_eq!(store.list(&store.path("t")).await.unwrap().len(), 1);
    }
}
