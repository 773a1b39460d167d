//! Running a pipeline's SQL with DataFusion: planned once per input schema
//! where the plan keeps nothing between runs (each round then hands its rows
//! to the same plan), planned per run otherwise.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::MemTable;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;

use super::Evaluator;
use crate::AnalyticsError;

impl Evaluator {
    /// The SQL planned over an `input` of `schema` that yields whatever
    /// rows are handed to it next, when the plan holds only operators that
    /// keep no state between runs; planned once per schema. Planning
    /// (parsing, optimizing, choosing operators) otherwise takes about a
    /// millisecond per evaluation.
    pub(super) async fn compiled_for(&self, schema: &SchemaRef) -> Result<Option<Arc<CompiledSql>>, AnalyticsError> {
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
    pub(super) async fn run_stage(
        &self,
        rows: Vec<RecordBatch>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), AnalyticsError> {
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

    /// (Re)binds table `name` to `rows`.
    pub(super) fn register(&self, name: &str, schema: SchemaRef, rows: Vec<RecordBatch>) -> Result<(), AnalyticsError> {
        let table = MemTable::try_new(schema, vec![rows])?;
        self.ctx.deregister_table(name)?;
        self.ctx.register_table(name, Arc::new(table))?;
        Ok(())
    }

    pub(super) async fn run_sql(
        &self,
        sql: &str,
        table: &str,
        rows: Vec<RecordBatch>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), AnalyticsError> {
        self.run_sql_with(sql, vec![(table, Arc::clone(&self.input_schema), rows)]).await
    }

    pub(super) async fn run_sql_with(
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
}

/// The operators of a compiled plan, none of which keeps anything from one
/// run to the next (a join's build side or a top-k's dynamic filter would).
/// (`UnnestExec` holds nothing between executions either: each makes a
/// fresh stream over its input's, as `fraud_reasons_1d` needs.)
const REUSABLE_OPERATORS: &[&str] =
    &["StreamingTableExec", "ProjectionExec", "FilterExec", "AggregateExec", "CoalesceBatchesExec", "UnnestExec"];

/// A physical plan over [`InputSlot`], run once per round.
pub(super) struct CompiledSql {
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
