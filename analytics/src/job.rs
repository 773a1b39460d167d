//! The stream-to-Parquet job for one input stream: decodes a micro-batch,
//! writes the base tables, feeds the pipelines whose source it is, writes
//! their windows and late rows, then commits (see [`crate::checkpoint`]).
//! A batch's files are stored while the next batch is windowed, and it
//! commits after them ([`StreamJob::settle`]).
//! [`crate::live`] drives it from a durable consumer, [`crate::replay`]
//! from a fixed range.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use bytes::Bytes;
use schemas::tables::Table;

use crate::AnalyticsError;
use crate::categories::CatalogCategories;
use crate::checkpoint::{self, Checkpoint, PipelineSnapshot, remove_uncommitted};
use crate::compact::{self, Committed};
use crate::decode::{DecodedBatch, DecodedRows, decode_batch};
use crate::dedup::{Dedup, DedupLimits, fingerprint};
use crate::layout::{PendingFile, output_layout, partition_files, rows_from, table_layout, write_files};
use crate::pipeline::{Evaluator, Operator, PipelineSpec};
use crate::pipeline_run::{PipelineRun, Step, step_all};
use crate::rows::{order_events_batch, order_items_batch, orders_batch};
use crate::source::Source;
use crate::store::{DataStore, part_file_name};

#[derive(Clone, Debug)]
pub struct JobSettings {
    /// Pipelines snapshot their window state at most this often.
    pub state_every: Duration,
    /// A partition with this many committed files is compacted.
    pub compact_min_files: usize,
    /// How many message ids, over how much event time, are remembered to
    /// drop repeats.
    pub dedup: DedupLimits,
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings { state_every: Duration::from_secs(30), compact_min_files: 24, dedup: DedupLimits::default() }
    }
}

impl JobSettings {
    /// A fixed range (replay, bench): state is snapshotted at the end, and
    /// files are already batch-sized, so nothing is compacted.
    pub fn fixed_range() -> Self {
        JobSettings { state_every: Duration::from_secs(3600), compact_min_files: usize::MAX, ..JobSettings::default() }
    }
}

/// Counters since the job started.
#[derive(Clone, Debug, Default)]
pub struct JobStats {
    pub messages: u64,
    pub undecodable: u64,
    pub rows_written: u64,
    pub files_written: u64,
    pub windows_emitted: u64,
    pub late_rows: u64,
    /// Messages dropped because their id was already seen.
    pub repeats: u64,
    /// Products whose category could not be read from the catalog (NATS
    /// failed): their lines were written as `uncategorized`.
    pub catalog_misses: u64,
}

pub struct StreamJob {
    pub source: Source,
    store: DataStore,
    checkpoint: Checkpoint,
    pipelines: Vec<PipelineRun>,
    /// Each product's category, from the catalog.
    categories: CatalogCategories,
    settings: JobSettings,
    last_state_at: Instant,
    /// The last batch, while its files are stored: committed by
    /// [`StreamJob::settle`].
    unsettled: Option<Unsettled>,
    /// Ids already seen, and the first sequence it has not seen.
    dedup: Dedup,
    dedup_next_seq: u64,
    pub stats: JobStats,
}

/// Each pipeline's state, by pipeline name, and the dedup state (with the
/// first sequence it has not seen), for one commit.
struct Snapshots {
    pipelines: Vec<(String, PipelineSnapshot)>,
    dedup: (u64, Option<Bytes>),
}

/// A batch applied in memory whose files are still being encoded and
/// stored. It commits once they are all stored, and not before: the
/// checkpoint never names a sequence whose files might be missing.
struct Unsettled {
    writes: Vec<tokio::task::JoinHandle<Result<(u64, u64), AnalyticsError>>>,
    /// The checkpoint's `next_seq` once it commits.
    next_seq: u64,
    /// The pipelines' state right after the batch, when a snapshot was due.
    snapshots: Option<Snapshots>,
}

impl StreamJob {
    /// Loads the checkpoint, removes whatever a crash left uncommitted, and
    /// restores each pipeline of this source from its snapshot.
    pub async fn open(
        store: DataStore,
        source: Source,
        specs: &[Arc<PipelineSpec>],
        settings: JobSettings,
    ) -> Result<StreamJob, AnalyticsError> {
        let checkpoint = checkpoint::load(&store, source.name()).await?.unwrap_or_else(|| Checkpoint {
            stream: source.name().to_string(),
            next_seq: 1,
            ..Checkpoint::default()
        });
        // Half-written state snapshots are never read, but would pile up.
        store.remove_staged_writes(&format!("_checkpoints/{}", source.name()))?;
        for table in source.tables() {
            let removed = remove_uncommitted(&store, table.name(), checkpoint.next_seq, 0).await?;
            if removed > 0 {
                tracing::info!(table = table.name(), removed, "removed files a crash left uncommitted");
            }
        }
        let mut pipelines = Vec::new();
        for spec in specs.iter().filter(|s| source.feeds(s.source)) {
            let eval = Evaluator::new(Arc::clone(spec)).await?;
            let layout = output_layout(&eval);
            let saved = checkpoint.pipelines.get(&spec.name);
            let (op, next_seq, idle_ticks) = match saved {
                Some(saved) => {
                    let buffer = checkpoint::read_ipc(&store, &saved.buffer).await?;
                    let partials: BTreeMap<i64, RecordBatch> = checkpoint::read_ipc(&store, &saved.partials)
                        .await?
                        .into_iter()
                        .filter_map(|b| first_window_start(&b).map(|s| (s, b)))
                        .collect();
                    let op = Operator::restore(Arc::clone(spec), saved.state.clone(), buffer, partials);
                    (op.keep_columns(eval.input_columns())?, saved.next_seq, saved.idle_ticks)
                }
                None => (Operator::new(Arc::clone(spec)).keep_columns(eval.input_columns())?, 1, 0),
            };
            for table in [spec.output.clone(), crate::layout::late_events_table(&spec.name)] {
                let removed = remove_uncommitted(&store, &table, next_seq, idle_ticks).await?;
                if removed > 0 {
                    tracing::info!(table, removed, "removed files a crash left uncommitted");
                }
            }
            pipelines.push(PipelineRun { op, eval, next_seq, idle_ticks, layout });
        }
        let (dedup, dedup_next_seq) = match &checkpoint.dedup {
            Some(saved) => {
                let dedup = match &saved.state {
                    Some(file) => {
                        let path = store.path(file);
                        let bytes = store.get(&path).await?.ok_or_else(|| AnalyticsError::Checkpoint {
                            path: path.to_string(),
                            message: "the checkpoint names a dedup state that is missing".into(),
                        })?;
                        Dedup::decode(settings.dedup, bytes)?
                    }
                    None => Dedup::new(settings.dedup),
                };
                (dedup, saved.next_seq)
            }
            // Written before the job deduplicated: ids from here on.
            None => (Dedup::new(settings.dedup), checkpoint.next_seq),
        };
        Ok(StreamJob {
            source,
            store,
            checkpoint,
            pipelines,
            dedup,
            dedup_next_seq,
            categories: CatalogCategories::default(),
            settings,
            last_state_at: Instant::now(),
            unsettled: None,
            stats: JobStats::default(),
        })
    }

    /// The columns of `table` some pipeline of this job keeps, in the
    /// table's order: all a reader feeding only the pipelines must decode.
    pub fn pipeline_columns(&self, table: Table) -> Vec<String> {
        let kept: Vec<&String> = self
            .pipelines
            .iter()
            .filter(|run| run.op.spec.source == table)
            .flat_map(|run| run.eval.source_columns())
            .collect();
        table.schema().fields().iter().map(|f| f.name()).filter(|n| kept.contains(n)).cloned().collect()
    }

    /// The string columns of `table` that every pipeline reading it takes
    /// as string views ([`Evaluator::view_columns`]): a reader feeding only
    /// the pipelines may decode them so.
    pub fn pipeline_view_columns(&self, table: Table) -> Vec<String> {
        let runs: Vec<&PipelineRun> = self.pipelines.iter().filter(|run| run.op.spec.source == table).collect();
        let views: Vec<Vec<String>> = runs.iter().map(|run| run.eval.view_columns()).collect();
        let mut columns: Vec<String> = views.iter().flatten().cloned().collect();
        columns.sort();
        columns.dedup();
        columns.retain(|c| {
            runs.iter().zip(&views).all(|(run, views)| !run.eval.source_columns().contains(c) || views.contains(c))
        });
        columns
    }

    /// Reads item categories from this JetStream's `CATALOG` bucket.
    pub fn with_catalog(mut self, js: async_nats::jetstream::Context) -> Self {
        self.categories = CatalogCategories::from(js);
        self
    }

    /// The first sequence anything still needs: where reading resumes.
    pub fn start_seq(&self) -> u64 {
        self.pipelines
            .iter()
            .map(|p| p.next_seq)
            .chain([self.checkpoint.next_seq, self.dedup_next_seq])
            .min()
            .unwrap_or(1)
    }

    /// Drops the messages whose id was already seen at an earlier sequence
    /// (orders by order id, events by event id).
    fn drop_repeats(&mut self, rows: &mut DecodedRows, last: u64) {
        let dedup = &mut self.dedup;
        let before = dedup.dropped;
        match rows {
            DecodedRows::Orders(orders) => orders
                .retain(|(seq, order)| dedup.keep(order.order_id.as_u128(), *seq, order.placed_at.timestamp_millis())),
            DecodedRows::Events(events) => events.retain(|(seq, event)| {
                dedup.keep(fingerprint(&event.event_id), *seq, event.occurred_at.timestamp_millis())
            }),
        }
        let dropped = dedup.dropped - before;
        if dropped > 0 {
            self.stats.repeats += dropped;
            tracing::warn!(stream = self.source.stream(), dropped, "dropped messages whose id was already seen");
        }
        self.dedup_next_seq = self.dedup_next_seq.max(last + 1);
    }

    /// The last sequence the base tables committed.
    pub fn committed_seq(&self) -> u64 {
        self.checkpoint.next_seq.saturating_sub(1)
    }

    pub fn pipeline_names(&self) -> Vec<String> {
        self.pipelines.iter().map(|p| p.op.spec.name.clone()).collect()
    }

    /// The base-table rows of a decoded batch.
    async fn base_rows(&mut self, rows: DecodedRows) -> Result<Vec<(Table, RecordBatch)>, AnalyticsError> {
        match rows {
            DecodedRows::Orders(orders) => {
                self.stats.catalog_misses += self.categories.learn(&orders).await;
                Ok(vec![
                    (Table::Orders, orders_batch(&orders)?),
                    (Table::OrderItems, order_items_batch(&orders, self.categories.known())?),
                ])
            }
            DecodedRows::Events(events) => Ok(vec![(Table::OrderEvents, order_events_batch(&events)?)]),
        }
    }

    fn undecodable(&mut self, seq: u64, error: serde_json::Error) {
        self.stats.undecodable += 1;
        tracing::warn!(stream = self.source.stream(), seq, %error, "skipping a message that does not decode");
    }

    /// Applies one micro-batch (ascending sequences). It commits once its
    /// files are stored: at the next batch, or at [`StreamJob::settle`].
    pub async fn process(&mut self, messages: Vec<(u64, Bytes)>) -> Result<(), AnalyticsError> {
        match decode_batch(self.source, messages).await? {
            Some(batch) => self.process_decoded(batch).await,
            None => Ok(()),
        }
    }

    /// [`StreamJob::process`] for a batch already decoded.
    pub async fn process_decoded(&mut self, batch: DecodedBatch) -> Result<(), AnalyticsError> {
        let DecodedBatch { first, last, messages, mut rows, undecodable } = batch;
        self.stats.messages += messages;
        self.drop_repeats(&mut rows, last);
        for (seq, error) in undecodable {
            self.undecodable(seq, error);
        }
        let tables = self.base_rows(rows).await?;
        let base_from = self.checkpoint.next_seq;
        let mut base_files = Vec::new();
        if last >= base_from {
            for (table, batch) in &tables {
                let rows = rows_from(batch, base_from)?;
                let name = part_file_name(first.max(base_from), last);
                base_files.extend(partition_files(
                    &self.store,
                    table.name(),
                    &rows,
                    table.time_column(),
                    &name,
                    &table_layout(*table),
                )?);
            }
        }
        // The base tables encode and store while the pipelines compute.
        let base_writes = tokio::spawn(write_files(self.store.clone(), base_files));
        self.apply_to_pipelines(first, last, &tables, vec![base_writes]).await
    }

    /// Feeds decoded rows (sequences `first..=last`) to the pipelines alone:
    /// the windowed-aggregation engine without the base tables (what
    /// `orderstream bench window` measures). Commits as [`StreamJob::process`] does.
    pub async fn process_rows(
        &mut self,
        first: u64,
        last: u64,
        tables: &[(Table, RecordBatch)],
    ) -> Result<(), AnalyticsError> {
        self.apply_to_pipelines(first, last, tables, Vec::new()).await
    }

    /// Steps the pipelines over the batch, then commits the batch before
    /// it, whose files were stored meanwhile, and leaves this one's files
    /// storing in turn: encoding a batch's outputs overlaps the next
    /// batch's windowing instead of holding it up. Call
    /// [`StreamJob::settle`] to commit the last batch now.
    async fn apply_to_pipelines(
        &mut self,
        first: u64,
        last: u64,
        tables: &[(Table, RecordBatch)],
        mut writes: Vec<tokio::task::JoinHandle<Result<(u64, u64), AnalyticsError>>>,
    ) -> Result<(), AnalyticsError> {
        let (files, _) = self.step_pipelines(Step::Rows { first, last, tables: tables.to_vec() }).await?;
        writes.push(tokio::spawn(write_files(self.store.clone(), files)));
        // Taken now: by the time this batch commits, the next one has
        // moved the pipelines on.
        let snapshots = self.snapshot_due().then(|| self.snapshots());
        self.settle().await?;
        self.unsettled = Some(Unsettled { writes, next_seq: last + 1, snapshots });
        Ok(())
    }

    /// Commits the batch whose files are being stored, once they are.
    pub async fn settle(&mut self) -> Result<(), AnalyticsError> {
        match self.await_unsettled().await? {
            Some(snapshots) => self.save_checkpoint(snapshots).await,
            None => Ok(()),
        }
    }

    /// Waits for the unsettled batch's files and moves the commit point past
    /// it (in memory); returns the snapshots taken for it, `None` without
    /// such a batch.
    async fn await_unsettled(&mut self) -> Result<Option<Option<Snapshots>>, AnalyticsError> {
        let Some(batch) = self.unsettled.take() else { return Ok(None) };
        for write in batch.writes {
            let written = write.await.map_err(|e| AnalyticsError::task("writing Parquet", e))??;
            self.count_written(written);
        }
        self.checkpoint.next_seq = self.checkpoint.next_seq.max(batch.next_seq);
        Ok(Some(batch.snapshots))
    }

    /// Steps every pipeline side by side; counts what they emitted. Returns
    /// their files and whether any wrote under an idle tick.
    async fn step_pipelines(&mut self, step: Step) -> Result<(Vec<PendingFile>, bool), AnalyticsError> {
        let mut files = Vec::new();
        let mut ticked = false;
        for emitted in step_all(&mut self.pipelines, &self.store, step).await? {
            self.stats.windows_emitted += emitted.windows;
            self.stats.late_rows += emitted.late_rows;
            files.extend(emitted.files);
            ticked |= emitted.ticked;
        }
        Ok((files, ticked))
    }

    fn count_written(&mut self, (rows, files): (u64, u64)) {
        self.stats.rows_written += rows;
        self.stats.files_written += files;
    }

    /// No input for a while: lets each pipeline's event time move on.
    pub async fn idle(&mut self, idle_for: Duration) -> Result<(), AnalyticsError> {
        self.settle().await?;
        let last = self.committed_seq();
        let idle_ms = idle_for.as_millis() as i64;
        let (files, ticked) = self.step_pipelines(Step::Idle { idle_ms, last }).await?;
        let written = write_files(self.store.clone(), files).await?;
        self.count_written(written);
        if ticked {
            self.commit(true).await?;
        }
        Ok(())
    }

    /// End of a replay's range: every window closes, and the checkpoint
    /// after it holds every pipeline's state (once: it is the run's largest
    /// write, 200 MB after the bench's replay).
    pub async fn finish(&mut self) -> Result<(), AnalyticsError> {
        self.settle().await?;
        let last = self.committed_seq();
        let (files, _) = self.step_pipelines(Step::Finish { last }).await?;
        let written = write_files(self.store.clone(), files).await?;
        self.count_written(written);
        self.checkpoint_now().await
    }

    /// Commits the last batch, then rewrites the checkpoint, snapshotting
    /// pipeline state when due (or `force`).
    async fn commit(&mut self, force: bool) -> Result<(), AnalyticsError> {
        // One checkpoint write for both: a snapshot taken now covers the
        // last batch too (nothing has stepped the pipelines since).
        let unsettled = self.await_unsettled().await?.flatten();
        let snapshots = if force || self.snapshot_due() { Some(self.snapshots()) } else { unsettled };
        self.save_checkpoint(snapshots).await
    }

    fn snapshot_due(&self) -> bool {
        self.last_state_at.elapsed() >= self.settings.state_every
    }

    /// Every pipeline's state as it is now (cheap: the buffered rows are
    /// shared, not copied), and the dedup state.
    fn snapshots(&mut self) -> Snapshots {
        self.last_state_at = Instant::now();
        let pipelines = self
            .pipelines
            .iter()
            .map(|run| {
                let snapshot = PipelineSnapshot {
                    next_seq: run.next_seq,
                    idle_ticks: run.idle_ticks,
                    state: run.op.state(),
                    buffer: run.op.buffer.clone(),
                    partials: run.op.partials.values().cloned().collect(),
                };
                (run.op.spec.name.clone(), snapshot)
            })
            .collect();
        let dedup = (!self.dedup.is_empty()).then(|| self.dedup.encode());
        Snapshots { pipelines, dedup: (self.dedup_next_seq, dedup) }
    }

    /// Stores `snapshots` (state files first), then the checkpoint naming them.
    async fn save_checkpoint(&mut self, snapshots: Option<Snapshots>) -> Result<(), AnalyticsError> {
        self.checkpoint.commits += 1;
        let (store, stream, commit) = (&self.store, self.source.name(), self.checkpoint.commits);
        let Some(Snapshots { pipelines, dedup: (dedup_next_seq, dedup_state) }) = snapshots else {
            return checkpoint::save(&self.store, &self.checkpoint).await;
        };
        let saved = futures::future::try_join_all(pipelines.into_iter().map(|(name, snapshot)| async move {
            let saved = checkpoint::save_pipeline_state(store, stream, &name, commit, snapshot).await?;
            Ok::<_, AnalyticsError>((name, saved))
        }));
        let dedup = checkpoint::save_dedup_state(store, stream, commit, dedup_next_seq, dedup_state);
        let (saved, dedup) = futures::try_join!(saved, dedup)?;
        self.checkpoint.pipelines.extend(saved);
        self.checkpoint.dedup = Some(dedup);
        checkpoint::save(&self.store, &self.checkpoint).await
    }

    /// Snapshots everything now (shutdown), then drops stale state files.
    pub async fn checkpoint_now(&mut self) -> Result<(), AnalyticsError> {
        self.commit(true).await?;
        checkpoint::remove_stale_state(&self.store, &self.checkpoint).await
    }

    /// Merges small committed files, partition by partition.
    pub async fn compact(&mut self) -> Result<usize, AnalyticsError> {
        self.settle().await?;
        let mut merged = 0;
        let base = Committed { next_seq: self.checkpoint.next_seq };
        for table in self.source.tables() {
            merged += compact::compact_table(
                &self.store,
                table.name(),
                base,
                &table_layout(*table),
                self.settings.compact_min_files,
            )
            .await?;
        }
        for run in &self.pipelines {
            // Only what the pipeline's snapshot covers: the rest may be rewritten.
            let saved = self.checkpoint.pipelines.get(&run.op.spec.name).map_or(1, |p| p.next_seq);
            let committed = Committed { next_seq: saved };
            merged += compact::compact_table(
                &self.store,
                &run.op.spec.output,
                committed,
                &run.layout,
                self.settings.compact_min_files,
            )
            .await?;
            let late = crate::layout::late_events_table(&run.op.spec.name);
            merged += compact::compact_table(
                &self.store,
                &late,
                committed,
                &table_layout(Table::LateEvents),
                self.settings.compact_min_files,
            )
            .await?;
        }
        checkpoint::remove_stale_state(&self.store, &self.checkpoint).await?;
        Ok(merged)
    }

    pub fn watermarks(&self) -> Vec<(String, Option<i64>, usize)> {
        self.pipelines.iter().map(|p| (p.op.spec.name.clone(), p.op.watermark_ms(), p.op.open_windows())).collect()
    }
}

fn first_window_start(batch: &RecordBatch) -> Option<i64> {
    let starts =
        batch.column_by_name("window_start")?.as_primitive_opt::<arrow::datatypes::TimestampMicrosecondType>()?;
    (!starts.is_empty()).then(|| starts.value(0) / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn committed_next_seq(store: &DataStore) -> Option<u64> {
        checkpoint::load(store, Source::Orders.name()).await.unwrap().map(|c| c.next_seq)
    }

    async fn output_files(store: &DataStore, table: &str) -> Vec<String> {
        let mut names: Vec<String> = store
            .list(&store.path(table))
            .await
            .unwrap()
            .into_iter()
            .filter_map(|m| m.location.filename().map(str::to_string))
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_batch_commits_after_its_files_at_the_next_batch_or_when_settled() {
        let dir = tempfile::tempdir().unwrap();
        let store = DataStore::open(dir.path().to_str().unwrap()).unwrap();
        let spec = crate::builtin::builtin_pipelines()
            .unwrap()
            .into_iter()
            .find(|s| s.name == "revenue_by_category_1m")
            .map(Arc::new)
            .unwrap();
        let output = spec.output.clone();
        let mut job = StreamJob::open(store.clone(), Source::Orders, &[spec], JobSettings::default()).await.unwrap();
        assert_eq!(job.pipeline_view_columns(Table::OrderItems), ["category", "currency"]);
        assert!(job.pipeline_view_columns(Table::Orders).is_empty());
        let items = |seq: u64, second: i64| {
            let mut order = crate::rows::tests::order("c", &[("p", 1, 100)], "USD");
            order.placed_at = chrono::DateTime::from_timestamp(second, 0).unwrap();
            vec![(Table::OrderItems, order_items_batch(&[(seq, order)], &crate::rows::Categories::new()).unwrap())]
        };

        job.process_rows(1, 1, &items(1, 10)).await.unwrap();
        assert_eq!(committed_next_seq(&store).await, None, "nothing is committed while its files may be storing");
        // Two minutes on: minute 0's window closes in this batch.
        job.process_rows(2, 2, &items(2, 130)).await.unwrap();
        assert_eq!(committed_next_seq(&store).await, Some(2), "the first batch commits once the second is applied");
        job.settle().await.unwrap();
        assert_eq!(committed_next_seq(&store).await, Some(3));
        assert_eq!(output_files(&store, &output).await, vec![crate::store::part_file_name(2, 2)]);
        assert_eq!(job.stats.rows_written, 1, "the window's one row, counted once it is stored");
        job.settle().await.unwrap();
        assert_eq!(committed_next_seq(&store).await, Some(3), "settling twice commits nothing new");
    }
}
