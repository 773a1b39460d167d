//! The commit protocol that makes the Parquet output exactly-once.
//!
//! For each input stream, one JSON checkpoint (`_checkpoints/{stream}.json`)
//! says how far the base tables and each pipeline are committed. A batch's
//! data files are written first, named by the sequence range they hold;
//! the checkpoint is rewritten (a single atomic put) after them. After a
//! crash, [`remove_uncommitted`] deletes every file beyond the checkpoint
//! (and every file a finished compaction made redundant), and the job
//! resumes from the checkpoint: what was half-written is written again,
//! what was committed is never written twice.
//!
//! Pipelines snapshot their window state (watermark, open windows and their
//! rows, as Arrow IPC) less often than the base tables commit, so each has
//! its own `next_seq`; on restart the stream is read from the lowest.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use bytes::Bytes;
use object_store::PutPayload;
use serde::{Deserialize, Serialize};

use crate::AnalyticsError;
use crate::pipeline::OperatorState;
use crate::store::DataStore;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PipelineCheckpoint {
    /// The first stream sequence this pipeline has not applied.
    pub next_seq: u64,
    /// Idle ticks emitted since the last message (their files end `-idleNNNN`).
    pub idle_ticks: u64,
    pub state: OperatorState,
    /// Arrow IPC files holding the buffered rows and cumulative partials.
    pub buffer: Option<String>,
    pub partials: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    pub stream: String,
    /// The first stream sequence the base tables have not written.
    pub next_seq: u64,
    /// Commits so far (names snapshot files uniquely).
    pub commits: u64,
    pub pipelines: BTreeMap<String, PipelineCheckpoint>,
    /// The ids already seen ([`crate::dedup`]); absent in checkpoints
    /// written before the job deduplicated.
    #[serde(default)]
    pub dedup: Option<DedupCheckpoint>,
}

/// Where the dedup state was snapshotted.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DedupCheckpoint {
    /// The first stream sequence the saved state has not seen.
    pub next_seq: u64,
    /// The state file (none while no id was seen).
    pub state: Option<String>,
}

/// Writes the dedup state and returns its checkpoint entry.
pub async fn save_dedup_state(
    store: &DataStore,
    stream: &str,
    commit: u64,
    next_seq: u64,
    state: Option<Bytes>,
) -> Result<DedupCheckpoint, AnalyticsError> {
    let Some(state) = state else { return Ok(DedupCheckpoint { next_seq, state: None }) };
    let relative = format!("_checkpoints/{stream}/dedup-{commit:010}.bin");
    store.put(&store.path(&relative), state).await?;
    Ok(DedupCheckpoint { next_seq, state: Some(relative) })
}

pub fn checkpoint_path(stream: &str) -> String {
    format!("_checkpoints/{stream}.json")
}

pub async fn load(store: &DataStore, stream: &str) -> Result<Option<Checkpoint>, AnalyticsError> {
    let path = store.path(&checkpoint_path(stream));
    let Some(bytes) = store.get(&path).await? else { return Ok(None) };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| AnalyticsError::Checkpoint { path: path.to_string(), message: e.to_string() })
}

pub async fn save(store: &DataStore, checkpoint: &Checkpoint) -> Result<(), AnalyticsError> {
    let path = store.path(&checkpoint_path(&checkpoint.stream));
    let bytes = serde_json::to_vec_pretty(checkpoint)
        .map_err(|e| AnalyticsError::Checkpoint { path: path.to_string(), message: e.to_string() })?;
    store.put(&path, Bytes::from(bytes)).await
}

/// `batches` as an Arrow IPC stream, in chunks: a snapshot of a day's
/// buffered rows runs to hundreds of MiB, which one growing buffer would
/// copy again at every doubling.
pub fn encode_ipc(batches: &[RecordBatch]) -> Result<Option<PutPayload>, AnalyticsError> {
    let Some(first) = batches.first() else { return Ok(None) };
    let mut chunks = Chunks::default();
    let mut writer = StreamWriter::try_new(&mut chunks, &first.schema())?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    drop(writer);
    Ok(Some(chunks.into_payload()))
}

/// A `Write` into fixed-size buffers.
#[derive(Default)]
struct Chunks {
    full: Vec<Bytes>,
    current: Vec<u8>,
}

impl Chunks {
    const SIZE: usize = 8 << 20;

    fn into_payload(mut self) -> PutPayload {
        if !self.current.is_empty() {
            self.full.push(Bytes::from(self.current));
        }
        self.full.into_iter().collect()
    }
}

impl std::io::Write for Chunks {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.current.capacity() == 0 {
            self.current = Vec::with_capacity(Self::SIZE);
        }
        let taken = bytes.len().min(Self::SIZE - self.current.len());
        self.current.extend_from_slice(&bytes[..taken]);
        if self.current.len() == Self::SIZE {
            self.full.push(Bytes::from(std::mem::take(&mut self.current)));
        }
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub async fn read_ipc(store: &DataStore, relative: &Option<String>) -> Result<Vec<RecordBatch>, AnalyticsError> {
    let Some(relative) = relative else { return Ok(Vec::new()) };
    let path = store.path(relative);
    let bytes = store.get(&path).await?.ok_or_else(|| AnalyticsError::Checkpoint {
        path: path.to_string(),
        message: "the checkpoint names a state file that is missing".into(),
    })?;
    let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

/// A data file's name: `part-{first}-{last}[-idleNNNN].parquet`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartName {
    pub first: u64,
    pub last: u64,
    pub idle_tick: Option<u64>,
    /// Made by compaction: it holds every file its range covers.
    pub compacted: bool,
}

pub fn parse_name(name: &str) -> Option<PartName> {
    let stem = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let mut parts = stem.split('-');
    let first = parts.next()?.parse().ok()?;
    let last = parts.next()?.parse().ok()?;
    let mut part = PartName { first, last, idle_tick: None, compacted: false };
    match parts.next() {
        None => {}
        Some("compacted") => part.compacted = true,
        Some(tick) => part.idle_tick = Some(tick.strip_prefix("idle")?.parse().ok()?),
    }
    parts.next().is_none().then_some(part)
}

pub fn compacted_part_name(first_seq: u64, last_seq: u64) -> String {
    format!("part-{first_seq:020}-{last_seq:020}-compacted.parquet")
}

pub fn idle_part_name(last_seq: u64, tick: u64) -> String {
    format!("part-{last_seq:020}-{last_seq:020}-idle{tick:04}.parquet")
}

/// Deletes, under `table/`, the half-written files a killed writer left
/// (see [`DataStore::remove_staged_writes`]), the files written after the commit point
/// (`next_seq`, `idle_ticks`) and the files a compaction already covered
/// (compaction only merges files ending before the last committed
/// sequence, so a covering file holds every idle tick in its range).
/// Returns how many were removed.
pub async fn remove_uncommitted(
    store: &DataStore,
    table: &str,
    next_seq: u64,
    idle_ticks: u64,
) -> Result<usize, AnalyticsError> {
    let staged = store.remove_staged_writes(table)?;
    let files = store.list(&store.path(table)).await?;
    let mut by_partition: BTreeMap<String, Vec<(object_store::path::Path, PartName)>> = BTreeMap::new();
    for meta in files {
        let Some(name) = meta.location.filename().and_then(parse_name) else { continue };
        let dir = meta.location.as_ref().rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
        by_partition.entry(dir).or_default().push((meta.location, name));
    }
    let mut removed = staged;
    for files in by_partition.values() {
        for (path, name) in files {
            let uncommitted =
                name.first >= next_seq || name.idle_tick.is_some_and(|t| name.last + 1 == next_seq && t > idle_ticks);
            let covered = files
                .iter()
                .any(|(other, o)| other != path && o.compacted && o.first <= name.first && name.last <= o.last);
            if uncommitted || covered {
                store.delete(path).await?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Writes the state files of one pipeline and returns their checkpoint entry.
pub async fn save_pipeline_state(
    store: &DataStore,
    stream: &str,
    pipeline: &str,
    commit: u64,
    snapshot: PipelineSnapshot,
) -> Result<PipelineCheckpoint, AnalyticsError> {
    let put = |kind: &'static str, batches: Vec<RecordBatch>| {
        let relative = format!("_checkpoints/{stream}/{pipeline}-{commit:010}.{kind}.arrow");
        async move {
            // Encoding is CPU work: off the async workers.
            let encoded = tokio::task::spawn_blocking(move || encode_ipc(&batches))
                .await
                .map_err(|e| AnalyticsError::task("encoding pipeline state", e))??;
            match encoded {
                Some(payload) => {
                    store.put_payload(&store.path(&relative), payload).await?;
                    Ok::<_, AnalyticsError>(Some(relative))
                }
                None => Ok(None),
            }
        }
    };
    let (buffer, partials) = futures::try_join!(put("buffer", snapshot.buffer), put("partials", snapshot.partials))?;
    Ok(PipelineCheckpoint {
        next_seq: snapshot.next_seq,
        idle_ticks: snapshot.idle_ticks,
        state: snapshot.state,
        buffer,
        partials,
    })
}

pub struct PipelineSnapshot {
    pub next_seq: u64,
    pub idle_ticks: u64,
    pub state: OperatorState,
    pub buffer: Vec<RecordBatch>,
    pub partials: Vec<RecordBatch>,
}

/// State files no checkpoint names any more.
pub async fn remove_stale_state(store: &DataStore, checkpoint: &Checkpoint) -> Result<(), AnalyticsError> {
    let live: std::collections::HashSet<String> = checkpoint
        .pipelines
        .values()
        .flat_map(|p| [p.buffer.clone(), p.partials.clone()])
        .chain(checkpoint.dedup.iter().map(|d| d.state.clone()))
        .flatten()
        .map(|r| store.path(&r).to_string())
        .collect();
    for meta in store.list(&store.path(&format!("_checkpoints/{}", checkpoint.stream))).await? {
        if !live.contains(meta.location.as_ref()) {
            store.delete(&meta.location).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::part_file_name;

    #[test]
    fn names_parse_with_and_without_idle_ticks() {
        let plain = PartName { first: 3, last: 9, idle_tick: None, compacted: false };
        assert_eq!(parse_name(&part_file_name(3, 9)), Some(plain));
        assert_eq!(
            parse_name(&idle_part_name(9, 2)),
            Some(PartName { first: 9, last: 9, idle_tick: Some(2), ..plain })
        );
        assert_eq!(parse_name(&compacted_part_name(3, 9)), Some(PartName { compacted: true, ..plain }));
        assert_eq!(parse_name("part-1-2-what.parquet"), None);
        assert_eq!(parse_name("part-x-1.parquet"), None);
        assert_eq!(parse_name("other.parquet"), None);
        assert_eq!(parse_name("x.parquet"), None);
    }

    #[tokio::test]
    async fn uncommitted_and_covered_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = DataStore::open(dir.path().to_str().unwrap()).unwrap();
        let put = |name: String| {
            let store = store.clone();
            async move {
                store.put(&store.path(&format!("t/date=2026-01-01/{name}")), Bytes::from_static(b"x")).await.unwrap()
            }
        };
        put(part_file_name(1, 10)).await;
        put(part_file_name(11, 15)).await;
        put(idle_part_name(15, 1)).await;
        put(compacted_part_name(1, 15)).await; // a compaction of the three above
        put(part_file_name(16, 20)).await;
        put(idle_part_name(20, 1)).await; // committed idle tick
        put(idle_part_name(20, 2)).await; // not committed
        put(part_file_name(21, 30)).await; // beyond the checkpoint
        let removed = remove_uncommitted(&store, "t", 21, 1).await.unwrap();
        assert_eq!(removed, 5);
        let mut left: Vec<String> = store
            .list(&store.path("t"))
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.location.filename().unwrap().to_string())
            .collect();
        left.sort();
        assert_eq!(left, vec![compacted_part_name(1, 15), part_file_name(16, 20), idle_part_name(20, 1)]);
    }
}
