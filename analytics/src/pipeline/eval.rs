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
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::MemTable;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use schemas::tables::{timestamp, window_meta_fields};

use super::manifest::{PipelineSpec, Windowing};
use super::operator::{Emission, Operator, WindowKey};
use crate::AnalyticsError;

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
        evaluator.stage_schema = Arc::clone(&stage_schema);
        // From here on, a distinct count over strings runs in one pass. The
        // output keeps the types DataFusion's own plan gives it (a decimal
        // sum beside a distinct count is Decimal128(38, _) there): results
        // are cast to `stage_schema`, so no output table changes type.
        crate::distinct_count::install(&evaluator.ctx);
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

    /// The SQL planned over an `input` of `schema` that yields whatever
    /// rows are handed to it next, when the plan holds only operators that
    /// keep no state between runs; planned once per schema. Planning
    /// (parsing, optimizing, choosing operators) otherwise takes about a
    /// millisecond per evaluation.
    async fn compiled_for(&self, schema: &SchemaRef) -> Result<Option<Arc<CompiledSql>>, AnalyticsError> {
        let known = |compiled: &Vec<Arc<CompiledSql>>| compiled.iter().find(|c| &c.input.schema == schema).cloned();
        if let Some(found) = known(&self.compiled.lock().unwrap_or_else(std::sync::PoisonError::into_inner)) {
            return Ok(Some(found));
        }
        let input = Arc::new(InputSlot { schema: Arc::clone(schema), rows: Default::default() });
        let table = datafusion::catalog::streaming::StreamingTable::try_new(
            Arc::clone(schema),
            vec![Arc::clone(&input) as Arc<dyn PartitionStream>],
        )?;
        self.ctx.deregister_table("input")?;
        self.ctx.register_table("input", Arc::new(table))?;
        let plan = self.ctx.sql(&self.spec.sql).await?.create_physical_plan().await?;
        let mut reusable = true;
        plan.apply(|node| {
            reusable &= REUSABLE_OPERATORS.contains(&node.name());
            Ok(TreeNodeRecursion::Continue)
        })?;
        if !reusable {
            return Ok(None);
        }
        let compiled = Arc::new(CompiledSql { plan, input, running: Default::default() });
        self.compiled.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Arc::clone(&compiled));
        Ok(Some(compiled))
    }

    /// The SQL over `rows` (of one schema): through a compiled plan when
    /// the SQL allows one.
    async fn run_stage(&self, rows: Vec<RecordBatch>) -> Result<(SchemaRef, Vec<RecordBatch>), AnalyticsError> {
        let schema = rows.first().map_or_else(|| Arc::clone(&self.input_schema), RecordBatch::schema);
        let compiled = if self.reusable { self.compiled_for(&schema).await? } else { None };
        let Some(compiled) = compiled else {
            return self.run_sql_with(&self.spec.sql, vec![("input", schema, rows)]).await;
        };
        // One run at a time: the rows handed over are the run's own.
        let _running = compiled.running.lock().await;
        *compiled.input.rows.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = rows;
        // A fresh copy of the operators: their metrics start from zero, so
        // a long-running job's plan does not grow run after run.
        let plan = datafusion::physical_plan::execution_plan::reset_plan_states(Arc::clone(&compiled.plan))?;
        let schema = plan.schema();
        let batches = datafusion::physical_plan::collect(plan, self.ctx.task_ctx()).await?;
        Ok((schema, batches))
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

    /// (Re)binds table `name` to `rows`.
    fn register(&self, name: &str, schema: SchemaRef, rows: Vec<RecordBatch>) -> Result<(), AnalyticsError> {
        let table = MemTable::try_new(schema, vec![rows])?;
        self.ctx.deregister_table(name)?;
        self.ctx.register_table(name, Arc::new(table))?;
        Ok(())
    }

    async fn run_sql(
        &self,
        sql: &str,
        table: &str,
        rows: Vec<RecordBatch>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), AnalyticsError> {
        self.run_sql_with(sql, vec![(table, Arc::clone(&self.input_schema), rows)]).await
    }

    async fn run_sql_with(
        &self,
        sql: &str,
        tables: Vec<(&str, SchemaRef, Vec<RecordBatch>)>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), AnalyticsError> {
        for (name, schema, rows) in tables {
            self.register(name, schema, rows)?;
        }
        // The physical plan's schema, which is what the batches carry (the
        // logical one can differ, e.g. in a decimal sum's precision).
        let plan = self.ctx.sql(sql).await?.create_physical_plan().await?;
        let schema = plan.schema();
        let batches = datafusion::physical_plan::collect(plan, self.ctx.task_ctx()).await?;
        Ok((schema, batches))
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

/// The operators of a compiled plan, none of which keeps anything from one
/// run to the next (a join's build side or a top-k's dynamic filter would).
/// (`UnnestExec` holds nothing between executions either: each makes a
/// fresh stream over its input's, as `fraud_reasons_1d` needs.)
const REUSABLE_OPERATORS: &[&str] =
    &["StreamingTableExec", "ProjectionExec", "FilterExec", "AggregateExec", "CoalesceBatchesExec", "UnnestExec"];

/// A physical plan over [`InputSlot`], run once per round.
struct CompiledSql {
    plan: Arc<dyn ExecutionPlan>,
    input: Arc<InputSlot>,
    running: tokio::sync::Mutex<()>,
}

/// The plan's `input`: each run takes the rows last handed to it.
#[derive(Debug)]
struct InputSlot {
    schema: SchemaRef,
    rows: std::sync::Mutex<Vec<RecordBatch>>,
}

impl PartitionStream for InputSlot {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<datafusion::execution::TaskContext>) -> SendableRecordBatchStream {
        let rows = std::mem::take(&mut *self.rows.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            futures::stream::iter(rows.into_iter().map(Ok)),
        ))
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

/// `batch`'s `columns`, in that order (no copy).
pub(crate) fn project(batch: &RecordBatch, columns: &[String]) -> Result<RecordBatch, AnalyticsError> {
    let schema = batch.schema();
    let indices = columns
        .iter()
        .map(|c| {
            schema.index_of(c).map_err(|_| AnalyticsError::Config {
                what: "pipeline input",
                message: format!("the source rows have no column {c}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(batch.project(&indices)?)
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
mod tests {
    use super::*;

    fn builtin(name: &str) -> Arc<PipelineSpec> {
        let specs = crate::builtin::builtin_pipelines().unwrap();
        Arc::new(specs.into_iter().find(|s| s.name == name).unwrap())
    }

    #[tokio::test]
    async fn the_engine_keeps_only_the_columns_a_pipeline_needs_and_outputs_plain_strings() {
        let eval = Evaluator::new(builtin("revenue_by_category_1m")).await.unwrap();
        // The SQL's columns, the time and stream position, and the item's
        // identity for late_events; not customer_id, product_id, unit_price.
        let expected =
            ["order_id", "line_no", "placed_at", "category", "quantity", "line_total", "currency", "stream_seq"];
        assert_eq!(eval.source_columns(), expected);
        // The operator buffers all but the late-row id's line_no: the SQL
        // reads order_id (a distinct count), not line_no.
        let buffered = ["order_id", "placed_at", "category", "quantity", "line_total", "currency", "stream_seq"];
        assert_eq!(eval.input_columns(), buffered);
        assert_eq!(eval.input_schema.field_with_name("category").unwrap().data_type(), &DataType::Utf8);
        assert_eq!(eval.output_schema.field_with_name("category").unwrap().data_type(), &DataType::Utf8);

        let sessions = Evaluator::new(builtin("customer_sessions")).await.unwrap();
        assert!(sessions.source_columns().iter().any(|c| c == "customer_id"), "a session pipeline keeps its key");
        for eval in [&eval, &sessions] {
            assert!(eval.output_schema.fields().iter().all(|f| f.data_type() != &DataType::Utf8View));
        }
    }

    #[tokio::test]
    async fn the_sql_is_planned_once_and_each_round_reads_only_its_own_rows() {
        for spec in crate::builtin::builtin_pipelines().unwrap() {
            let eval = Evaluator::new(Arc::new(spec)).await.unwrap();
            assert!(eval.reusable, "{} is planned once", eval.spec.name);
        }
        // A join keeps its build side between runs: planned every round.
        let spec = crate::pipeline::parse_pipeline(
            "self_join",
            "source = \"order_events\"\n[window]\nkind = \"tumbling\"\nsize = \"1h\"\n",
            "SELECT a.window_start, a.window_end, count(*) AS n FROM input a JOIN input b USING (event_id) GROUP BY 1, 2",
        )
        .unwrap();
        assert!(!Evaluator::new(Arc::new(spec)).await.unwrap().reusable);

        // Minute 0 gets 2 units of 10.00, minute 1 gets 1 of 3.00; each closes
        // in its own round, through the one plan.
        let spec = builtin("revenue_by_category_1m");
        let eval = Evaluator::new(Arc::clone(&spec)).await.unwrap();
        let mut op = Operator::new(spec).keep_columns(eval.input_columns()).unwrap();
        let items = |seq: u64, second: i64, quantity: u32, price: i64| {
            let mut order = crate::rows::tests::order("c", &[("p", quantity, price)], "USD");
            order.placed_at = chrono::DateTime::from_timestamp(second, 0).unwrap();
            crate::rows::order_items_batch(&[(seq, order)], &Default::default()).unwrap()
        };
        let mut revenue_per_round = Vec::new();
        for (seq, second, quantity, price) in [(1, 10, 2, 1000), (2, 70, 1, 300), (3, 130, 1, 1)] {
            op.push(&items(seq, second, quantity, price), &mut Vec::new()).unwrap();
            let emissions = op.take_emissions(seq);
            if emissions.is_empty() {
                continue;
            }
            let out = eval.evaluate(&mut op, emissions).await.unwrap();
            let out = concat_batches(&eval.output_schema, &out).unwrap();
            let revenue = out.column_by_name("revenue").unwrap().as_primitive::<arrow::datatypes::Decimal128Type>();
            let units = out.column_by_name("units").unwrap().as_primitive::<arrow::datatypes::Int64Type>();
            let orders = out.column_by_name("orders").unwrap().as_primitive::<arrow::datatypes::Int64Type>();
            revenue_per_round.push((out.num_rows(), revenue.value(0), units.value(0), orders.value(0)));
        }
        // Decimal(38, 4): 20.00 and 3.00, one order each.
        assert_eq!(revenue_per_round, vec![(1, 200_000, 2, 1), (1, 30_000, 1, 1)]);
    }

    #[tokio::test]
    async fn string_views_from_a_reader_give_the_same_windows_as_plain_strings() {
        let spec = builtin("revenue_by_category_1m");
        let eval = Evaluator::new(Arc::clone(&spec)).await.unwrap();
        // Not order_id or line_no: late_events ids read them row by row.
        assert_eq!(eval.view_columns(), ["category", "currency"]);
        let sessions = Evaluator::new(builtin("customer_sessions")).await.unwrap();
        assert!(!sessions.view_columns().contains(&"customer_id".to_string()), "a session key is read per row");

        let categories = crate::rows::Categories::from([("p".to_string(), "toys".to_string())]);
        let items: Vec<RecordBatch> = [(1, 10, "p"), (2, 20, "q"), (3, 30, "p"), (4, 130, "p")]
            .into_iter()
            .map(|(seq, second, product)| {
                let mut order = crate::rows::tests::order("c", &[(product, 2, 250)], "EUR");
                order.placed_at = chrono::DateTime::from_timestamp(second, 0).unwrap();
                crate::rows::order_items_batch(&[(seq, order)], &categories).unwrap()
            })
            .collect();
        let as_views = |batch: &RecordBatch| {
            let (fields, columns): (Vec<Field>, Vec<ArrayRef>) = batch
                .schema()
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(f, c)| match f.name().as_str() {
                    "category" | "currency" => (
                        f.as_ref().clone().with_data_type(DataType::Utf8View),
                        arrow::compute::cast(c, &DataType::Utf8View).unwrap(),
                    ),
                    _ => (f.as_ref().clone(), Arc::clone(c)),
                })
                .unzip();
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
        };
        let windows = |views: bool| {
            let (spec, items) = (Arc::clone(&spec), items.clone());
            async move {
                let eval = Evaluator::new(Arc::clone(&spec)).await.unwrap();
                let mut op = Operator::new(spec).keep_columns(eval.input_columns()).unwrap();
                let mut out = Vec::new();
                for (seq, batch) in (1..).zip(&items) {
                    let batch = if views { as_views(batch) } else { batch.clone() };
                    op.push(&batch, &mut Vec::new()).unwrap();
                    let emissions = op.take_emissions(seq);
                    out.extend(eval.evaluate(&mut op, emissions).await.unwrap());
                }
                concat_batches(&eval.output_schema, &out).unwrap()
            }
        };
        let plain = windows(false).await;
        assert_eq!(plain.num_rows(), 2, "minute 0: toys and uncategorized");
        assert_eq!(windows(true).await, plain);
    }

    #[tokio::test]
    async fn a_distinct_count_runs_in_one_pass_and_the_output_keeps_its_types() {
        let eval = Evaluator::new(builtin("revenue_by_category_1m")).await.unwrap();
        let plan = eval.ctx.sql(&eval.spec.sql).await.unwrap().into_optimized_plan().unwrap();
        let plan = plan.display_indent().to_string();
        assert!(plan.contains("count_distinct_strings(input.order_id)"), "{plan}");
        // DataFusion's own plan (a group-by per order, then a sum of sums)
        // types the revenue Decimal128(38, 4); the output stays so.
        let revenue = eval.output_schema.field_with_name("revenue").unwrap();
        assert_eq!(revenue.data_type(), &DataType::Decimal128(38, 4));
    }

    /// The status events of one seeded day of 3,000 orders.
    fn seeded_day_events(seed: u64) -> RecordBatch {
        use crate::seed::{SeedConfig, SeedScreen, categories_of, day_batches, generate_day, products, settle};
        let config = SeedConfig::new(seed, 3_000, 1, chrono::NaiveDate::from_ymd_opt(2026, 3, 20).unwrap());
        let catalog = products(&config);
        let mut day = generate_day(&config, &catalog, 0, 3_000);
        settle(&config, 0, &mut day, &mut SeedScreen::builtin().unwrap());
        let tables = day_batches(&day, &categories_of(&catalog)).unwrap();
        tables.into_iter().find(|(t, _)| *t == schemas::tables::Table::OrderEvents).unwrap().1
    }

    #[tokio::test]
    async fn rows_the_sql_filters_out_first_are_not_buffered_yet_count_and_may_be_late() {
        let events = seeded_day_events(7);
        // The day in time order, then again its first rows (too late) and
        // rows from the last hours (late, within the lateness): sequences
        // renumbered in arrival order.
        let order = arrow::compute::sort_to_indices(events.column_by_name("occurred_at").unwrap(), None, None).unwrap();
        let sorted = take_record_batch(&events, &order).unwrap();
        let n = sorted.num_rows();
        let arrivals = [
            sorted.slice(0, n / 2),
            sorted.slice(n / 2, n - n / 2),
            sorted.slice(0, 500),
            sorted.slice(n - 2000, 2000),
        ];
        let mut seq = 0;
        let batches: Vec<RecordBatch> = arrivals
            .iter()
            .map(|b| {
                let seqs = Int64Array::from_iter_values((seq + 1..=seq + b.num_rows() as i64).collect::<Vec<_>>());
                seq += b.num_rows() as i64;
                let at = b.schema().index_of("stream_seq").unwrap();
                let mut columns = b.columns().to_vec();
                columns[at] = Arc::new(seqs);
                RecordBatch::try_new(b.schema(), columns).unwrap()
            })
            .collect();
        let manifest = "source = \"order_events\"\n[window]\nkind = \"tumbling\"\nsize = \"1h\"\n\
                        [watermark]\nallowed_lateness = \"2h\"\n";
        let spec = Arc::new(
            crate::pipeline::parse_pipeline("reviews_1h", manifest, &builtin("fraud_reviews_1d").sql).unwrap(),
        );
        let eval = Evaluator::new(Arc::clone(&spec)).await.unwrap();
        assert!(!eval.input_columns().contains(&"event_id".to_string()), "the late-row id is not buffered");
        let run = |filtered: bool| {
            let (spec, eval, batches) = (Arc::clone(&spec), &eval, &batches);
            async move {
                let mut op = Operator::new(spec).keep_columns(eval.input_columns()).unwrap();
                let (mut out, mut late, mut most_buffered) = (Vec::new(), Vec::new(), 0);
                for batch in batches {
                    let read = if filtered { eval.rows_read(batch).unwrap() } else { None };
                    op.push_reading(batch, read.as_ref(), &mut late).unwrap();
                    most_buffered = most_buffered.max(op.buffer.iter().map(RecordBatch::num_rows).sum::<usize>());
                    let last =
                        batch.column_by_name("stream_seq").unwrap().as_primitive::<arrow::datatypes::Int64Type>();
                    let emissions = op.take_emissions(last.value(last.len() - 1) as u64);
                    out.extend(eval.evaluate(&mut op, emissions).await.unwrap());
                }
                op.close_all(seq as u64);
                let emissions = op.take_emissions(seq as u64);
                out.extend(eval.evaluate(&mut op, emissions).await.unwrap());
                (concat_batches(&eval.output_schema, &out).unwrap(), late, most_buffered)
            }
        };
        let (all_out, all_late, all_buffered) = run(false).await;
        let (out, late, buffered) = run(true).await;
        assert!(out.num_rows() > 0 && !late.is_empty(), "{} rows, {} late", out.num_rows(), late.len());
        let versions = out.column_by_name("window_version").unwrap().as_primitive::<arrow::datatypes::Int32Type>();
        assert!(versions.iter().any(|v| v > Some(1)), "a late row restated a window");
        assert_eq!(out, all_out, "the same windows, versions and late counts");
        assert_eq!(late, all_late, "every too-late row reported, reviews or not");
        assert!(buffered * 10 < all_buffered, "buffered {buffered} rows against {all_buffered}");
    }

    #[tokio::test]
    async fn rows_the_sql_filters_out_first_can_be_dropped_before_windowing() {
        let events = seeded_day_events(5);
        let reviews = Evaluator::new(builtin("fraud_reviews_1d")).await.unwrap();
        let kept = reviews.filter_rows(&project(&events, reviews.source_columns()).unwrap()).unwrap();
        let text = |b: &RecordBatch, c: &str| -> Vec<Option<String>> {
            b.column_by_name(c).unwrap().as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect()
        };
        let is_review =
            |s: &Option<String>, f: &Option<String>| s.as_deref() == Some("flagged") || f.as_deref() == Some("flagged");
        let expected =
            text(&events, "status").iter().zip(text(&events, "from_status")).filter(|(s, f)| is_review(s, f)).count();
        assert!(expected > 0 && expected < events.num_rows() / 10, "a few review events among {}", events.num_rows());
        assert_eq!(kept.num_rows(), expected);
        assert!(text(&kept, "status").iter().zip(text(&kept, "from_status")).all(|(s, f)| is_review(s, &f)));

        // No filter: every row stays. Two scans of input: no single filter
        // holds for every row, so none is applied.
        let revenue = Evaluator::new(builtin("revenue_by_category_1m")).await.unwrap();
        assert!(revenue.row_filter.is_none());
        let self_join = "SELECT a.window_start, a.window_end, count(*) AS n FROM input a \
                         JOIN (SELECT order_id FROM input WHERE status = 'flagged') b USING (order_id) GROUP BY 1, 2";
        let spec = crate::pipeline::parse_pipeline(
            "self_join",
            "source = \"order_events\"\n[window]\nkind = \"tumbling\"\nsize = \"1h\"\n",
            self_join,
        )
        .unwrap();
        let joined = Evaluator::new(Arc::new(spec)).await.unwrap();
        assert!(joined.row_filter.is_none());
        assert_eq!(
            joined.filter_rows(&project(&events, joined.source_columns()).unwrap()).unwrap().num_rows(),
            events.num_rows()
        );
    }
}
