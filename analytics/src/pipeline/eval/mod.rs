//! Runs a pipeline's SQL over the windows due, with DataFusion: one query
//! per round (a round holds at most one emission per window), over the
//! buffered rows of those windows with `window_start` and `window_end`
//! added. The engine then appends `window_version`, `watermark_at_emit`,
//! `late_count` and `is_final` by looking each output row's window up.
//!
//! A cumulative pipeline runs its SQL per step, keeps each step's output,
//! and a second query sums the `accumulate` columns from the period's start
//! to each step's end.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, Int64Array, RecordBatch, TimestampMicrosecondArray, UInt32Array,
};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampMicrosecondType};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::{SessionConfig, SessionContext};
use schemas::tables::{timestamp, window_meta_fields};

use super::manifest::{PipelineSpec, Windowing};
use super::operator::{Emission, Operator, WindowKey, project};
use crate::AnalyticsError;

mod sql;
use sql::CompiledSql;

/// hashbrown with its default (foldhash) hasher, as DataFusion uses.
type FastMap<K, V> = datafusion::common::HashMap<K, V>;

pub struct Evaluator {
    spec: Arc<PipelineSpec>,
    ctx: SessionContext,
    /// See [`Evaluator::source_columns`].
    source_columns: Vec<String>,
    /// See [`Evaluator::input_columns`].
    input_columns: Vec<String>,
    /// See [`Evaluator::filter_rows`]: the predicate and the kept source
    /// columns' schema it reads.
    row_filter: Option<RowFilter>,
    input_schema: SchemaRef,
    /// The SQL's output (per step, for a cumulative pipeline).
    stage_schema: SchemaRef,
    /// What the output table holds, meta columns included.
    pub output_schema: SchemaRef,
    cumulative_sql: Option<String>,
    /// Whether the SQL's plan can run again and again ([`REUSABLE_OPERATORS`]).
    reusable: bool,
    /// The SQL planned once per input schema that arrived (string columns
    /// come as plain strings or as views, see [`Evaluator::view_columns`]).
    compiled: std::sync::Mutex<Vec<Arc<CompiledSql>>>,
}

type RowFilter = (Arc<dyn PhysicalExpr>, SchemaRef);

/// What [`Evaluator::plan_reads`] finds in a plan.
struct PlanReads {
    columns: Vec<String>,
    row_filter: Option<Expr>,
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Evaluator {
    /// Plans the SQL over an empty input: a mistake (unknown column, no
    /// `window_start`) stops start-up naming the pipeline.
    pub async fn new(spec: Arc<PipelineSpec>) -> Result<Evaluator, AnalyticsError> {
        let fail = |m: String| AnalyticsError::pipeline(&spec.name, m);
        let config = SessionConfig::new().with_target_partitions(1).with_information_schema(false);
        let ctx = SessionContext::new_with_config(config);
        let source = spec.source.schema();
        let all: Vec<String> = source.fields().iter().map(|f| f.name().clone()).collect();
        let input_schema = input_schema_of(&source, &all);
        let mut evaluator = Evaluator {
            spec: Arc::clone(&spec),
            ctx,
            source_columns: all.clone(),
            input_columns: all,
            row_filter: None,
            input_schema: Arc::clone(&input_schema),
            stage_schema: Arc::clone(&input_schema),
            output_schema: Arc::clone(&input_schema),
            cumulative_sql: None,
            reusable: false,
            compiled: Default::default(),
        };
        let reads = evaluator.plan_reads(&spec.sql).await.map_err(|e| fail(format!("sql: {e}")))?;
        let read = &reads.columns;
        let mut windowing: Vec<&str> = vec![spec.time_column(), "stream_seq"];
        windowing.extend(spec.session_key());
        let record_id = super::operator::record_id_columns(spec.source);
        let kept = |c: &&String, also: &[&str]| {
            read.contains(*c) || windowing.contains(&c.as_str()) || also.contains(&c.as_str())
        };
        evaluator.source_columns = evaluator.source_columns.iter().filter(|c| kept(c, record_id)).cloned().collect();
        evaluator.input_columns = evaluator.source_columns.iter().filter(|c| kept(c, &[])).cloned().collect();
        evaluator.input_schema = input_schema_of(&source, &evaluator.input_columns);
        evaluator.row_filter = match reads.row_filter {
            Some(predicate) => evaluator.source_predicate(&predicate).map_err(|e| fail(format!("sql: {e}")))?,
            None => None,
        };
        let stage = evaluator.run_sql(&spec.sql, "input", Vec::new()).await;
        let stage_schema = match stage {
            Ok((schema, _)) => without_views(&schema),
            Err(e) => return Err(fail(format!("sql: {e}"))),
        };
        for column in ["window_start", "window_end"] {
            match stage_schema.field_with_name(column) {
                Ok(f) if matches!(f.data_type(), DataType::Timestamp(..)) => {}
                _ => return Err(fail(format!("the SQL must select {column} (and group by it)"))),
            }
        }
        if let Some(key) = spec.session_key()
            && stage_schema.field_with_name(key).is_err()
        {
            return Err(fail(format!("a session pipeline's SQL must select its key {key}")));
        }
        if let Some(rollup) = spec.serves {
            let missing: Vec<&str> =
                rollup.columns().iter().copied().filter(|c| stage_schema.field_with_name(c).is_err()).collect();
            if !missing.is_empty() {
                return Err(fail(format!("serves {rollup} but its SQL selects no {}", missing.join(", "))));
            }
        }
        evaluator.stage_schema = Arc::clone(&stage_schema);
        // From here on, a distinct count over strings runs in one pass. The
        // output keeps the types DataFusion's own plan gives it (a decimal
        // sum beside a distinct count is Decimal128(38, _) there): results
        // are cast to `stage_schema`, so no output table changes type.
        crate::query::distinct_count::install(&evaluator.ctx);
        let plain = Arc::clone(&evaluator.input_schema);
        evaluator.reusable = evaluator.compiled_for(&plain).await.map_err(|e| fail(format!("sql: {e}")))?.is_some();
        let result_schema = if let Windowing::Cumulative { accumulate, .. } = &spec.windowing {
            for column in accumulate {
                if stage_schema.field_with_name(column).is_err() {
                    return Err(fail(format!("accumulate column {column} is not in the SQL's output")));
                }
            }
            let sql = cumulative_sql(&stage_schema, accumulate);
            evaluator.cumulative_sql = Some(sql.clone());
            let (schema, _) = evaluator.cumulate(Vec::new(), Vec::new()).await.map_err(|e| fail(format!("{e}")))?;
            schema
        } else {
            stage_schema
        };
        let mut out: Vec<Field> = result_schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        out.extend(window_meta_fields());
        evaluator.output_schema = Arc::new(Schema::new(out));
        Ok(evaluator)
    }

    /// The source columns the SQL reads, from its optimized plan's scans of
    /// `input` (subqueries included), and the predicate every row must pass
    /// before anything else sees it: a filter straight over the plan's only
    /// scan of `input`.
    async fn plan_reads(&self, sql: &str) -> Result<PlanReads, AnalyticsError> {
        use datafusion::logical_expr::LogicalPlan;
        let is_input =
            |plan: &LogicalPlan| matches!(plan, LogicalPlan::TableScan(s) if s.table_name.table() == "input");
        self.register("input", Arc::clone(&self.input_schema), Vec::new())?;
        let plan = self.ctx.sql(sql).await?.into_optimized_plan()?;
        let (mut columns, mut scans, mut filters) = (Vec::new(), 0, Vec::new());
        plan.apply_with_subqueries(|node| {
            match node {
                LogicalPlan::TableScan(scan) if is_input(node) => {
                    scans += 1;
                    columns.extend(scan.projected_schema.fields().iter().map(|f| f.name().clone()));
                    filters.extend(scan.filters.iter().cloned());
                }
                LogicalPlan::Filter(filter) if is_input(&filter.input) => filters.push(filter.predicate.clone()),
                _ => {}
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        let row_filter = if scans == 1 { datafusion::logical_expr::utils::conjunction(filters) } else { None };
        Ok(PlanReads { columns, row_filter })
    }

    /// `predicate` over the kept source columns alone, or None when it also
    /// reads `window_start`/`window_end` (which rows only get in a window)
    /// or is volatile (`random()`: evaluated twice, it would disagree).
    fn source_predicate(&self, predicate: &Expr) -> Result<Option<RowFilter>, AnalyticsError> {
        if predicate.column_refs().iter().any(|c| !self.input_columns.contains(&c.name)) || predicate.is_volatile() {
            return Ok(None);
        }
        let schema = Arc::new(Schema::new(self.input_schema.fields()[..self.input_columns.len()].to_vec()));
        let qualified = DFSchema::try_from_qualified_schema("input", &schema)?;
        Ok(Some((self.ctx.create_physical_expr(predicate.clone(), &qualified)?, schema)))
    }

    /// `rows` less those the SQL filters out before reading anything else:
    /// dropping them first changes no output. For whole closed windows only
    /// (the seed's days): in a stream every row still moves the watermark
    /// and may be late, so there the operator only leaves them unbuffered
    /// ([`Evaluator::rows_read`]).
    pub fn filter_rows(&self, rows: &RecordBatch) -> Result<RecordBatch, AnalyticsError> {
        match self.rows_read(rows)? {
            Some(read) => Ok(arrow::compute::filter_record_batch(rows, &read)?),
            None => Ok(rows.clone()),
        }
    }

    /// Which of `rows` (holding at least the kept source columns) pass the
    /// filter the SQL applies straight over `input`, before anything else
    /// reads them; `None` when it has none (every row is read).
    pub fn rows_read(&self, rows: &RecordBatch) -> Result<Option<BooleanArray>, AnalyticsError> {
        let Some((predicate, schema)) = &self.row_filter else { return Ok(None) };
        // The predicate's schema is the input columns', in their order.
        let projected = project(rows, &self.input_columns)?;
        let typed = RecordBatch::try_new(Arc::clone(schema), cast_to(projected.columns(), schema)?)?;
        let read = predicate.evaluate(&typed)?.into_array(typed.num_rows())?;
        let read = read
            .as_boolean_opt()
            .ok_or_else(|| AnalyticsError::pipeline(&self.spec.name, "a filter that is not boolean"))?;
        // A null is not true: SQL drops the row.
        Ok(Some(match read.nulls() {
            Some(_) => arrow::compute::prep_null_mask_filter(read),
            None => read.clone(),
        }))
    }

    /// The source columns the engine reads: what the SQL reads, plus what
    /// windowing and `late_events` need.
    pub fn source_columns(&self) -> &[String] {
        &self.source_columns
    }

    /// The source columns the operator buffers and the SQL gets: those of
    /// [`Evaluator::source_columns`] but a `late_events` id the SQL does
    /// not read (a late row's id comes from the row as it arrives). The
    /// rest is dropped on arrival, so buffering, gathering and state
    /// snapshots never copy it.
    pub fn input_columns(&self) -> &[String] {
        &self.input_columns
    }

    /// The string columns the SQL reads that the engine itself never reads
    /// row by row (not the time, the session key or a `late_events` id): a
    /// reader may hand them over as string views, which the SQL then reads
    /// as they are. Views of a Parquet dictionary page's short strings copy
    /// no string at all, and DataFusion groups short views by comparing
    /// 16 bytes.
    pub fn view_columns(&self) -> Vec<String> {
        let mut engine: Vec<&str> = vec![self.spec.time_column(), "stream_seq"];
        engine.extend(self.spec.session_key());
        engine.extend(super::operator::record_id_columns(self.spec.source));
        self.input_schema
            .fields()
            .iter()
            .take(self.input_columns.len())
            .filter(|f| f.data_type() == &DataType::Utf8 && !engine.contains(&f.name().as_str()))
            .map(|f| f.name().clone())
            .collect()
    }

    /// Evaluates `emissions` and returns the output rows, meta columns included.
    pub async fn evaluate(
        &self,
        op: &mut Operator,
        emissions: Vec<Emission>,
    ) -> Result<Vec<RecordBatch>, AnalyticsError> {
        let mut rounds: Vec<Vec<Emission>> = Vec::new();
        let mut seen: HashMap<WindowKey, usize> = HashMap::new();
        for emission in emissions {
            let round = seen.entry(emission.window.clone()).or_insert(0);
            if rounds.len() <= *round {
                rounds.push(Vec::new());
            }
            rounds[*round].push(emission);
            *round += 1;
        }
        let mut out = Vec::new();
        for round in rounds {
            let mut input = self.gather(op, &round)?;
            if input.windows(2).any(|pair| pair[0].schema() != pair[1].schema()) {
                // Views and plain strings in one round: all plain.
                input = input
                    .iter()
                    .map(|part| {
                        Ok(RecordBatch::try_new(
                            Arc::clone(&self.input_schema),
                            cast_to(part.columns(), &self.input_schema)?,
                        )?)
                    })
                    .collect::<Result<_, AnalyticsError>>()?;
            }
            let (schema, stage) = self.run_stage(input).await?;
            // To the stage's types: string views (a SQL function may make
            // them) back to plain strings, as the output table holds.
            let stage = concat_batches(&schema, &stage)?;
            let stage =
                RecordBatch::try_new(Arc::clone(&self.stage_schema), cast_to(stage.columns(), &self.stage_schema)?)?;
            let result = match &self.spec.windowing {
                Windowing::Cumulative { size_ms, .. } => {
                    self.keep_partials(op, &round, &stage)?;
                    let ends: Vec<(i64, i64)> = round
                        .iter()
                        .map(|e| (e.window.start_ms.div_euclid(*size_ms) * size_ms, e.window.end_ms))
                        .collect();
                    let periods: std::collections::BTreeSet<i64> = ends.iter().map(|(p, _)| *p).collect();
                    let partials: Vec<(i64, RecordBatch)> = op
                        .partials
                        .iter()
                        .filter(|(start, _)| periods.contains(&(start.div_euclid(*size_ms) * size_ms)))
                        .map(|(start, rows)| (start.div_euclid(*size_ms) * size_ms, rows.clone()))
                        .collect();
                    let (_, rows) = self.cumulate(partials, ends).await?;
                    concat_batches(&self.output_schema_without_meta(), &rows)?
                }
                _ => stage,
            };
            if result.num_rows() > 0 {
                out.push(self.with_meta(&result, &round)?);
            }
        }
        Ok(out)
    }

    fn output_schema_without_meta(&self) -> SchemaRef {
        let n = self.output_schema.fields().len() - window_meta_fields().len();
        Arc::new(Schema::new(self.output_schema.fields()[..n].to_vec()))
    }

    /// The buffered rows of the round's windows, labelled with the window.
    fn gather(&self, op: &Operator, round: &[Emission]) -> Result<Vec<RecordBatch>, AnalyticsError> {
        // Fixed windows by bounds alone: no key to hash per row. Looked up
        // once or more per buffered row, so with DataFusion's fast hasher,
        // not std's SipHash (which was a fifth of this function).
        let by_window: FastMap<(i64, i64), &Emission> =
            round.iter().map(|e| ((e.window.start_ms, e.window.end_ms), e)).collect();
        let mut by_key: FastMap<&str, Vec<&Emission>> = FastMap::default();
        for e in round {
            by_key.entry(e.window.key.as_str()).or_default().push(e);
        }
        // The buffer holds every row still within its lateness; only rows
        // inside the round's span can fall in one of its windows.
        let span_start = round.iter().map(|e| e.window.start_ms).min().unwrap_or(i64::MAX);
        let span_end = round.iter().map(|e| e.window.end_ms).max().unwrap_or(i64::MIN);
        let kind = self.spec.evaluation_window();
        let session_key = self.spec.session_key();
        // The round's windows of the last span of event times seen (see
        // `WindowKind::span_of`), with how far each is evaluated: rows in
        // time order look their windows up once per span, not per row.
        let mut span_windows: Option<(crate::window::Window, Vec<DueWindow>)> = None;
        let mut parts = Vec::new();
        for batch in &op.buffer {
            let Some(times) = batch.column_by_name(self.spec.time_column()) else { continue };
            let times = times.as_primitive::<TimestampMicrosecondType>();
            let Some(seqs) = batch.column_by_name("stream_seq") else { continue };
            let seqs = seqs.as_primitive::<arrow::datatypes::Int64Type>();
            let keys = session_key.and_then(|k| batch.column_by_name(k)).map(|c| c.as_string::<i32>());
            let mut rows = Picks::Run { start: 0, len: 0 };
            let (mut starts, mut ends): (Vec<i64>, Vec<i64>) = (Vec::new(), Vec::new());
            let n = batch.num_rows();
            for i in 0..n {
                let ts = times.value(i).div_euclid(1000);
                let seq = seqs.value(i) as u64;
                let mut label = |start_ms: i64, end_ms: i64| {
                    // From the first row in the round, room for every row
                    // left: no regrowth (and its fresh pages) row after row.
                    if starts.capacity() == 0 {
                        starts.reserve(n - i);
                        ends.reserve(n - i);
                    }
                    rows.push(i as u32);
                    starts.push(start_ms * 1000);
                    ends.push(end_ms * 1000);
                };
                match (&keys, kind) {
                    (Some(keys), _) => {
                        for e in by_key.get(keys.value(i)).into_iter().flatten() {
                            if e.window.window().contains(ts) && seq <= e.upto_seq {
                                label(e.window.start_ms, e.window.end_ms);
                            }
                        }
                    }
                    (None, Some(_)) if ts < span_start || ts >= span_end => {}
                    (None, Some(kind)) => {
                        if !span_windows.as_ref().is_some_and(|(span, _)| span.contains(ts)) {
                            let due = kind
                                .windows_of(ts)
                                .filter_map(|w| by_window.get(&(w.start_ms, w.end_ms)))
                                .map(|e| (e.window.start_ms, e.window.end_ms, e.upto_seq))
                                .collect();
                            let span =
                                kind.span_of(ts).unwrap_or(crate::window::Window { start_ms: ts, end_ms: ts + 1 });
                            span_windows = Some((span, due));
                        }
                        for &(start_ms, end_ms, upto_seq) in span_windows.iter().flat_map(|(_, due)| due) {
                            if seq <= upto_seq {
                                label(start_ms, end_ms);
                            }
                        }
                    }
                    (None, None) => {}
                }
            }
            let kept = project(batch, &self.input_columns)?;
            let taken = match rows {
                Picks::Run { len: 0, .. } => continue,
                // Rows of a time-ordered stream whose windows close together
                // are one run of the batch: a zero-copy slice, not a take.
                Picks::Run { start, len } => kept.slice(start as usize, len as usize),
                Picks::Rows(rows) => take_record_batch(&kept, &UInt32Array::from(rows))?,
            };
            let (mut fields, mut columns) = as_input(taken.columns(), &self.input_schema)?;
            let n = fields.len();
            fields.extend(self.input_schema.fields()[n..].iter().map(|f| f.as_ref().clone()));
            columns.push(Arc::new(TimestampMicrosecondArray::from(starts).with_timezone("UTC")));
            columns.push(Arc::new(TimestampMicrosecondArray::from(ends).with_timezone("UTC")));
            parts.push(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?);
        }
        Ok(parts)
    }

    /// Replaces each emitted step's stored output with this round's.
    fn keep_partials(&self, op: &mut Operator, round: &[Emission], stage: &RecordBatch) -> Result<(), AnalyticsError> {
        let starts = window_column(stage, "window_start")?;
        for e in round {
            let mask: BooleanArray =
                (0..stage.num_rows()).map(|i| Some(starts.value(i) == e.window.start_ms * 1000)).collect();
            let rows = arrow::compute::filter_record_batch(stage, &mask)?;
            if rows.num_rows() == 0 {
                op.partials.remove(&e.window.start_ms);
            } else {
                op.partials.insert(e.window.start_ms, rows);
            }
        }
        Ok(())
    }

    /// Running totals from each period's start to each `(period, end)`.
    async fn cumulate(
        &self,
        partials: Vec<(i64, RecordBatch)>,
        ends: Vec<(i64, i64)>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), AnalyticsError> {
        let Some(sql) = &self.cumulative_sql else { return Ok((Arc::clone(&self.stage_schema), Vec::new())) };
        let mut fields: Vec<Field> = self.stage_schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("_period_start", timestamp(), false));
        let partial_schema = Arc::new(Schema::new(fields));
        let mut parts = Vec::new();
        for (period, rows) in partials {
            let mut columns = rows.columns().to_vec();
            let period = TimestampMicrosecondArray::from(vec![period * 1000; rows.num_rows()]).with_timezone("UTC");
            columns.push(Arc::new(period));
            parts.push(RecordBatch::try_new(Arc::clone(&partial_schema), columns)?);
        }

        let ends_schema = Arc::new(Schema::new(vec![
            Field::new("period_start", timestamp(), false),
            Field::new("window_end", timestamp(), false),
        ]));
        let (periods, step_ends): (Vec<i64>, Vec<i64>) = ends.iter().map(|(p, e)| (p * 1000, e * 1000)).unzip();
        let ends = RecordBatch::try_new(
            ends_schema,
            vec![
                Arc::new(TimestampMicrosecondArray::from(periods).with_timezone("UTC")),
                Arc::new(TimestampMicrosecondArray::from(step_ends).with_timezone("UTC")),
            ],
        )?;
        let ends_schema = ends.schema();
        self.run_sql_with(sql, vec![("partials", partial_schema, parts), ("ends", ends_schema, vec![ends])]).await
    }

    /// Appends the meta columns, looking each row's window up in the round.
    fn with_meta(&self, rows: &RecordBatch, round: &[Emission]) -> Result<RecordBatch, AnalyticsError> {
        let key_of = |start_ms: i64, end_ms: i64, key: &str| -> (String, i64, i64) {
            match &self.spec.windowing {
                // Cumulative rows are (period start, step end): find the step.
                Windowing::Cumulative { step_ms, .. } => (String::new(), end_ms - step_ms, end_ms),
                Windowing::Session { .. } => (key.to_string(), start_ms, end_ms),
                Windowing::Fixed(_) => (String::new(), start_ms, end_ms),
            }
        };
        let lookup: HashMap<(String, i64, i64), &Emission> =
            round.iter().map(|e| ((e.window.key.clone(), e.window.start_ms, e.window.end_ms), e)).collect();
        let starts = window_column(rows, "window_start")?;
        let ends = window_column(rows, "window_end")?;
        let keys = self.spec.session_key().and_then(|k| rows.column_by_name(k)).map(|c| c.as_string::<i32>().clone());
        let (mut version, mut watermark, mut late, mut is_final) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..rows.num_rows() {
            let key = keys.as_ref().map_or("", |k| k.value(i));
            let (k, s, e) = key_of(starts.value(i) / 1000, ends.value(i) / 1000, key);
            let emission = lookup.get(&(k, s, e)).ok_or_else(|| {
                AnalyticsError::pipeline(
                    &self.spec.name,
                    "an output row's window_start/window_end is not a window the engine cut: select them unchanged",
                )
            })?;
            version.push(emission.version);
            watermark.push(emission.watermark_ms.saturating_mul(1000));
            late.push(emission.late_count);
            is_final.push(emission.is_final);
        }
        let mut columns = rows.columns().to_vec();
        columns.push(Arc::new(Int32Array::from(version)));
        columns.push(Arc::new(TimestampMicrosecondArray::from(watermark).with_timezone("UTC")));
        columns.push(Arc::new(Int64Array::from(late)));
        columns.push(Arc::new(BooleanArray::from(is_final)));
        Ok(RecordBatch::try_new(Arc::clone(&self.output_schema), columns)?)
    }
}

/// The source fields named in `columns`, then `window_start` and
/// `window_end`. Strings stay plain strings: with distinct counts over
/// strings in one pass (`distinct_count`), casting them to string views
/// cost more than it saved (docs/benchmarks.md, twelfth round).
fn input_schema_of(source: &Schema, columns: &[String]) -> SchemaRef {
    let mut fields: Vec<Field> =
        source.fields().iter().filter(|f| columns.contains(f.name())).map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("window_start", timestamp(), false));
    fields.push(Field::new("window_end", timestamp(), false));
    Arc::new(Schema::new(fields))
}

/// The schema with string views as plain strings: what output tables hold.
fn without_views(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8View => f.as_ref().clone().with_data_type(DataType::Utf8),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// A window of the round: its bounds and the last sequence it is evaluated to.
type DueWindow = (i64, i64, u64);

/// The rows a batch gives a round: one run of rows while they are one.
enum Picks {
    Run { start: u32, len: u32 },
    Rows(Vec<u32>),
}

impl Picks {
    fn push(&mut self, row: u32) {
        match self {
            Picks::Run { start, len } if *len == 0 => (*start, *len) = (row, 1),
            Picks::Run { start, len } if *start + *len == row => *len += 1,
            Picks::Run { start, len } => {
                let mut rows: Vec<u32> = (*start..*start + *len).collect();
                rows.push(row);
                *self = Picks::Rows(rows);
            }
            Picks::Rows(rows) => rows.push(row),
        }
    }
}

/// `columns` as the input's leading fields: string views stay views (the
/// SQL is planned for them, [`Evaluator::view_columns`]), anything else is
/// cast to the field's type.
fn as_input(columns: &[ArrayRef], schema: &Schema) -> Result<(Vec<Field>, Vec<ArrayRef>), AnalyticsError> {
    columns
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| match (column.data_type(), field.data_type()) {
            (DataType::Utf8View, DataType::Utf8) => {
                Ok((field.as_ref().clone().with_data_type(DataType::Utf8View), Arc::clone(column)))
            }
            (_, to) => Ok((field.as_ref().clone(), arrow::compute::cast(column, to)?)),
        })
        .collect::<Result<Vec<_>, AnalyticsError>>()
        .map(|pairs| pairs.into_iter().unzip())
}

/// `columns` cast to the types of `schema`'s leading fields (strings to and
/// from views; a column already of its type is not copied).
fn cast_to(columns: &[ArrayRef], schema: &Schema) -> Result<Vec<ArrayRef>, AnalyticsError> {
    Ok(columns
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| arrow::compute::cast(column, field.data_type()))
        .collect::<Result<_, _>>()?)
}

fn window_column<'a>(rows: &'a RecordBatch, name: &str) -> Result<&'a TimestampMicrosecondArray, AnalyticsError> {
    rows.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>()).ok_or_else(|| {
        AnalyticsError::Config { what: "pipeline output", message: format!("{name} must be a microsecond timestamp") }
    })
}

fn cumulative_sql(stage: &Schema, accumulate: &[String]) -> String {
    let groups: Vec<String> = stage
        .fields()
        .iter()
        .map(|f| f.name())
        .filter(|n| *n != "window_start" && *n != "window_end" && !accumulate.contains(n))
        .map(|n| format!("p.{}", quote(n)))
        .collect();
    let sums: Vec<String> = accumulate.iter().map(|c| format!("SUM(p.{0}) AS {0}", quote(c))).collect();
    let mut select = vec!["e.period_start AS window_start".to_string(), "e.window_end AS window_end".to_string()];
    select.extend(groups.iter().map(|g| format!("{g} AS {}", &g[2..])));
    select.extend(sums);
    let mut group_by = vec!["e.period_start".to_string(), "e.window_end".to_string()];
    group_by.extend(groups);
    format!(
        "SELECT {} FROM partials p JOIN ends e ON p._period_start = e.period_start AND p.window_end <= e.window_end GROUP BY {}",
        select.join(", "),
        group_by.join(", ")
    )
}

#[cfg(test)]
mod tests;
