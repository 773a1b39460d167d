//! Pipeline outputs for seeded history: the seed writes its days straight
//! to Parquet, not through JetStream, so no live job ever sees them. For
//! the pipelines whose manifest says `seed_history = true` (their windows
//! tile a day: tumbling, an hour to a day) one generated day is a set of
//! whole windows, and the seed runs the pipeline engine itself — the same
//! [`Operator`] and [`Evaluator`] the live job uses — over that day alone.
//! The rows are those of a replay of the day: final, version 1, no late
//! rows. Rows the SQL filters out before reading anything else are dropped
//! first ([`Evaluator::filter_rows`]): a day's status events hold few that
//! the fraud review table keeps.
//!
//! The dashboard reads these rollups for long revenue ranges, best sellers
//! and the fraud queue instead of scanning millions of source rows on every
//! request. Other pipelines come from `orderstream replay` or the live job.

use std::sync::Arc;

use arrow::array::RecordBatch;
use bytes::Bytes;
use schemas::tables::Table;

use analytics::AnalyticsError;
use analytics::pipeline::{Evaluator, Operator, PipelineSpec};

/// One pipeline, ready to run over closed days.
pub struct DayRollup {
    spec: Arc<PipelineSpec>,
    eval: Evaluator,
}

impl DayRollup {
    /// The rollups of the pipelines in `specs` the seed writes.
    pub async fn for_pipelines(specs: &[Arc<PipelineSpec>]) -> Result<Vec<DayRollup>, AnalyticsError> {
        let mut out = Vec::new();
        for spec in specs.iter().filter(|s| s.seed_history) {
            out.push(DayRollup { spec: Arc::clone(spec), eval: Evaluator::new(Arc::clone(spec)).await? });
        }
        Ok(out)
    }

    /// The table the pipeline reads.
    pub fn source(&self) -> Table {
        self.spec.source
    }

    /// The pipeline's output rows for one closed day of source rows (every
    /// row within that UTC day), meta columns included.
    pub async fn run(&self, parts: &[RecordBatch]) -> Result<Vec<RecordBatch>, AnalyticsError> {
        // Only the columns the pipeline keeps and the rows its SQL lets
        // through: the sort copies no others.
        let kept = parts
            .iter()
            .map(|rows| {
                self.eval.filter_rows(&analytics::pipeline::operator::project(rows, self.eval.source_columns())?)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let Some(first) = kept.first() else { return Ok(Vec::new()) };
        let time_column = self.spec.time_column();
        if first.schema().index_of(time_column).is_err() {
            return Err(AnalyticsError::pipeline(&self.spec.name, format!("no column {time_column}")));
        }
        // In event-time order, as a replay of the day would see them: with
        // no row behind the watermark, none is late. The writers' sort: rows
        // already in order (the seed's items, one sorted batch a day) are
        // neither sorted again nor copied.
        let by_time = analytics::parquet_out::FileLayout::new(&[time_column], &[]);
        let sorted = analytics::parquet_out::sort_rows(&first.schema(), &kept, &by_time)?;
        if sorted.num_rows() == 0 {
            return Ok(Vec::new());
        }
        let mut op = Operator::new(Arc::clone(&self.spec)).keep_columns(self.eval.input_columns())?;
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
        rows: &[RecordBatch],
        date: &str,
        file_name: &str,
    ) -> Result<Option<(String, Bytes)>, AnalyticsError> {
        let out = self.run(rows).await?;
        if out.iter().all(|b| b.num_rows() == 0) {
            return Ok(None);
        }
        let bytes = analytics::parquet_out::encode(
            &self.eval.output_schema,
            &out,
            &analytics::layout::output_layout(&self.eval),
        )?;
        Ok(Some((format!("{}/date={date}/{file_name}", self.spec.output), bytes)))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_tumbling_windows_of_an_hour_to_a_day_tile_a_day() {
        let specs = analytics::builtin::builtin_pipelines().unwrap();
        let mut tiling: Vec<&str> =
            specs.iter().filter(|s| s.windowing.tiles_a_day()).map(|s| s.name.as_str()).collect();
        tiling.sort_unstable();
        assert_eq!(
            tiling,
            [
                "fraud_rates_1d",
                "fraud_rates_1h",
                "fraud_reasons_1d",
                "fraud_reviews_1d",
                "orders_by_status_1d",
                "orders_by_status_1h",
                "revenue_by_category_1d",
                "revenue_by_category_1h",
                "revenue_by_product_1d"
            ]
        );
        let mut seeded: Vec<&str> = specs.iter().filter(|s| s.seed_history).map(|s| s.name.as_str()).collect();
        seeded.sort_unstable();
        assert_eq!(
            seeded,
            [
                "fraud_rates_1d",
                "fraud_rates_1h",
                "fraud_reasons_1d",
                "fraud_reviews_1d",
                "revenue_by_category_1d",
                "revenue_by_category_1h",
                "revenue_by_product_1d"
            ]
        );
    }
}
