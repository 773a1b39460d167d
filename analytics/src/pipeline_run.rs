//! One pipeline inside a stream job: its operator, its evaluator and how
//! far it has read. Pipelines share no state, so the job steps them side by
//! side, each on its own task: a batch's pipelines use every core, and each
//! one's output depends on its own input alone (replays stay identical).

use std::sync::Arc;

use arrow::array::RecordBatch;
use schemas::tables::Table;

use crate::AnalyticsError;
use crate::checkpoint::idle_part_name;
use crate::layout::{PendingFile, partition_files, rows_from, table_layout};
use crate::parquet_out::FileLayout;
use crate::pipeline::{Evaluator, LateRow, Operator};
use crate::store::{DataStore, part_file_name};

pub(crate) struct PipelineRun {
    pub op: Operator,
    pub eval: Evaluator,
    pub next_seq: u64,
    pub idle_ticks: u64,
    pub layout: FileLayout,
}

/// What the job asks of every pipeline at once.
pub(crate) enum Step {
    /// Decoded rows of sequences `first..=last`, by source table.
    Rows { first: u64, last: u64, tables: Vec<(Table, RecordBatch)> },
    /// No input for `idle_ms` since sequence `last`: event time moves on.
    Idle { idle_ms: i64, last: u64 },
    /// The end of a fixed range at `last`: every window closes.
    Finish { last: u64 },
}

/// What one pipeline made of a step.
#[derive(Default)]
pub(crate) struct Emitted {
    pub files: Vec<PendingFile>,
    pub windows: u64,
    pub late_rows: u64,
    /// Anything to write under an idle tick (a commit must record the tick).
    pub ticked: bool,
}

impl PipelineRun {
    pub(crate) async fn step(&mut self, store: &DataStore, step: &Step) -> Result<Emitted, AnalyticsError> {
        match step {
            Step::Rows { first, last, tables } => {
                let from = self.next_seq;
                if *last < from {
                    return Ok(Emitted::default()); // replayed: this pipeline has it already
                }
                let Some((_, batch)) = tables.iter().find(|(t, _)| *t == self.op.spec.source) else {
                    return Ok(Emitted::default());
                };
                let rows = rows_from(batch, from)?;
                let mut late = Vec::new();
                let read = self.eval.rows_read(&rows)?;
                self.op.push_reading(&rows, read.as_ref(), &mut late)?;
                let (emitted, _) = self.emit(store, *last, late, &part_file_name((*first).max(from), *last)).await?;
                self.next_seq = last + 1;
                self.idle_ticks = 0;
                Ok(emitted)
            }
            Step::Idle { idle_ms, last } => {
                if self.next_seq != last + 1 {
                    return Ok(Emitted::default());
                }
                self.op.on_idle(*idle_ms, *last);
                self.tick(store, *last).await
            }
            Step::Finish { last } => {
                self.op.close_all(*last);
                self.tick(store, *last).await
            }
        }
    }

    /// Emits under the next idle tick's file name.
    async fn tick(&mut self, store: &DataStore, last: u64) -> Result<Emitted, AnalyticsError> {
        let tick = self.idle_ticks + 1;
        let (mut emitted, wrote) = self.emit(store, last, Vec::new(), &idle_part_name(last, tick)).await?;
        if wrote {
            self.idle_ticks = tick;
            emitted.ticked = true;
        }
        Ok(emitted)
    }

    /// Evaluates the due windows; their rows and the late rows become files
    /// named `file_name`. True if there was anything to write.
    async fn emit(
        &mut self,
        store: &DataStore,
        last: u64,
        late: Vec<LateRow>,
        file_name: &str,
    ) -> Result<(Emitted, bool), AnalyticsError> {
        let emissions = self.op.take_emissions(last);
        let mut emitted =
            Emitted { windows: emissions.len() as u64, late_rows: late.len() as u64, ..Emitted::default() };
        let outputs =
            if emissions.is_empty() { Vec::new() } else { self.eval.evaluate(&mut self.op, emissions).await? };
        self.op.expire()?;
        let spec = Arc::clone(&self.op.spec);
        let mut wrote = false;
        if !outputs.is_empty() {
            let all = arrow::compute::concat_batches(&self.eval.output_schema, &outputs)?;
            emitted.files.extend(partition_files(store, &spec.output, &all, "window_start", file_name, &self.layout)?);
            wrote = true;
        }
        if !late.is_empty() {
            let rows = crate::rows::late_events_batch(&spec, &late)?;
            let table = crate::layout::late_events_table(&spec.name);
            let layout = table_layout(Table::LateEvents);
            let time_column = Table::LateEvents.time_column();
            emitted.files.extend(partition_files(store, &table, &rows, time_column, file_name, &layout)?);
            wrote = true;
        }
        Ok((emitted, wrote))
    }
}

/// Steps every pipeline, each on its own task, and puts them back in their
/// order. A failed or panicked step fails the whole step: the job stops and
/// restarts from its checkpoint, so no pipeline is ever left behind.
pub(crate) async fn step_all(
    runs: &mut Vec<PipelineRun>,
    store: &DataStore,
    step: Step,
) -> Result<Vec<Emitted>, AnalyticsError> {
    let step = Arc::new(step);
    let tasks: Vec<_> = std::mem::take(runs)
        .into_iter()
        .map(|mut run| {
            let (store, step) = (store.clone(), Arc::clone(&step));
            tokio::spawn(async move {
                let emitted = run.step(&store, &step).await;
                (run, emitted)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(tasks.len());
    let mut failed = None;
    for task in tasks {
        match task.await {
            Ok((run, emitted)) => {
                runs.push(run);
                match emitted {
                    Ok(emitted) => all.push(emitted),
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
            }
            Err(e) => {
                failed.get_or_insert(AnalyticsError::task("a pipeline", e));
            }
        }
    }
    failed.map_or(Ok(all), Err)
}
