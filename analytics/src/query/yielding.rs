//! Queries that can be stopped: operators that multiply rows (joins,
//! `unnest`) pass their output through DataFusion's [`CooperativeExec`],
//! which spends the task's Tokio budget on every batch. Without it, an
//! aggregate over a cross join of in-memory inputs computes for minutes
//! without ever returning to the runtime (its inputs are always ready, and
//! the join makes thousands of batches from each one it reads), so neither
//! the time limit nor a client that left could stop it: aborting a task
//! takes effect only when it yields. DataFusion's own `EnsureCooperative`
//! rule wraps the leaves, which a multiplying join reads too rarely.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;

/// Operators whose output can be far larger than what they read.
const MULTIPLYING: [&str; 7] = [
    "CrossJoinExec",
    "NestedLoopJoinExec",
    "HashJoinExec",
    "SortMergeJoinExec",
    "SymmetricHashJoinExec",
    "PiecewiseMergeJoinExec",
    "UnnestExec",
];

#[derive(Debug, Default)]
pub struct YieldingJoins;

impl PhysicalOptimizerRule for YieldingJoins {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if MULTIPLYING.contains(&node.name()) {
                Ok(Transformed::yes(Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "YieldingJoins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use datafusion::prelude::SessionContext;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_aborted_cross_join_stops_at_once() {
        let state = datafusion::execution::SessionStateBuilder::new()
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(YieldingJoins))
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.sql("CREATE TABLE t AS SELECT value AS v, CAST(value AS VARCHAR) AS s FROM range(3000)")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let sql = "SELECT sum(length(a.s || b.s || c.s)) FROM t a, t b, t c";
        let plan = ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
        let shown = datafusion::physical_plan::displayable(plan.as_ref()).indent(false).to_string();
        assert!(shown.contains("CooperativeExec"), "{shown}");
        let frame = ctx.sql(sql).await.unwrap();
        let task = tokio::spawn(async move { frame.collect().await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let aborted = Instant::now();
        task.abort();
        let _ = task.await;
        assert!(aborted.elapsed() < Duration::from_secs(2), "stopped after {:?}", aborted.elapsed());
    }
}
