//! Pipeline outputs for seeded history: the seed writes its days straight
//! to Parquet, not through JetStream, so no live job ever sees them. For
//! the pipelines whose windows tile a day (tumbling, an hour or longer,
//! over order items) one generated day is a set of whole windows, and the
//! seed runs the pipeline engine itself — the same [`Operator`] and
//! [`Evaluator`] the live job uses — over that day alone. The rows are
//! those of a replay of the day: final, version 1, no late rows.
//!
//! The dashboard reads these rollups for long revenue ranges and best
//! sellers instead of re-aggregating millions of item rows on every
//! request. Finer, hopping, session and cumulative pipelines come from
//! `orderstream replay` or the live job.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::{SortOptions, sort_to_indices, take_record_batch};
use bytes::Bytes;
use schemas::tables::Table;

use crate::AnalyticsError;
use crate::pipeline::{Evaluator, Operator, PipelineSpec, Windowing};
use crate::window::WindowKind;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Whether a seeded day is whole windows of `spec`.
pub fn tiles_a_day(spec: &PipelineSpec) -> bool {
    spec.source == Table::OrderItems
        && matches!(spec.windowing,
            Windowing::Fixed(WindowKind::Tumbling { size_ms }) if size_ms >= HOUR_MS && DAY_MS % size_ms == 0)
}

/// One pipeline, ready to run over closed days.
pub struct DayRollup {
    spec: Arc<PipelineSpec>,
    eval: Evaluator,
}

impl DayRollup {
    /// The rollups of the pipelines in `specs` that tile a day.
    pub async fn for_pipelines(specs: &[Arc<PipelineSpec>]) -> Result<Vec<DayRollup>, AnalyticsError> {
        let mut out = Vec::new();
        for spec in specs.iter().filter(|s| tiles_a_day(s)) {
            out.push(DayRollup { spec: Arc::clone(spec), eval: Evaluator::new(Arc::clone(spec)).await? });
        }
        Ok(out)
    }

    /// The pipeline's output rows for one closed day of source rows (every
    /// row within that UTC day), meta columns included.
    pub async fn run(&self, rows: &RecordBatch) -> Result<Vec<RecordBatch>, AnalyticsError> {
        if rows.num_rows() == 0 {
            return Ok(Vec::new());
        }
        // Only the columns the pipeline keeps: the sort copies no others.
        let rows = crate::pipeline::eval::project(rows, self.eval.source_columns())?;
        let time = rows.column_by_name(self.spec.time_column()).ok_or_else(|| {
            AnalyticsError::pipeline(&self.spec.name, format!("no column {}", self.spec.time_column()))
        })?;
        // In event-time order, as a replay of the day would see them: with
        // no row behind the watermark, none is late.
        let order = sort_to_indices(time, Some(SortOptions { descending: false, nulls_first: false }), None)?;
        let sorted = take_record_batch(&rows, &order)?;
        let mut op = Operator::new(Arc::clone(&self.spec)).keep_columns(self.eval.source_columns())?;
        let mut late = Vec::new();
        op.push(&sorted, &mut late)?;
        if !late.is_empty() {
            return Err(AnalyticsError::pipeline(&self.spec.name, "a closed day's rows in time order came out late"));
        }
        let last_seq = 0; // Seeded rows carry no stream sequence.
        op.close_all(last_seq);
        let emissions = op.take_emissions(last_seq);
        self.eval.evaluate(&mut op, emissions).await
    }

    /// [`DayRollup::run`], encoded as the output table's file for `date`.
    pub async fn day_file(
        &self,
        rows: &RecordBatch,
        date: &str,
        file_name: &str,
    ) -> Result<Option<(String, Bytes)>, AnalyticsError> {
        let out = self.run(rows).await?;
        if out.iter().all(|b| b.num_rows() == 0) {
            return Ok(None);
        }
        let bytes = crate::parquet_out::encode(&self.eval.output_schema, &out, &crate::job::output_layout(&self.eval))?;
        Ok(Some((format!("{}/date={date}/{file_name}", self.spec.output), bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tumbling_item_windows_of_an_hour_to_a_day_tile_a_day() {
        let specs = crate::builtin::builtin_pipelines().unwrap();
        let mut tiling: Vec<&str> = specs.iter().filter(|s| tiles_a_day(s)).map(|s| s.name.as_str()).collect();
        tiling.sort_unstable();
        assert_eq!(tiling, ["revenue_by_category_1d", "revenue_by_category_1h", "revenue_by_product_1d"]);
    }
}
