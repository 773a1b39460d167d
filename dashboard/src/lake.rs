//! The analytics tables as one long-lived DataFusion session: its runtime
//! keeps the memory pool every dashboard query shares and the Parquet
//! footer cache that makes repeated queries cheap. New tables (a pipeline's
//! first output) are registered by [`Lake::refresh`], which the dashboard
//! runs every few seconds; new files of known tables are seen by every query.
//!
//! Queries run on their own runtime (InfluxDB 3's "dedicated executor"):
//! a query busy in an operator that does not yield can hold its workers,
//! never the HTTP runtime, so the time limit always answers and the rest of
//! the API stays responsive.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use analytics::query::QueryLimits;
use analytics::store::DataStore;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;
use tokio::sync::RwLock;

use crate::DashboardError;

pub struct Lake {
    store: DataStore,
    ctx: SessionContext,
    /// The same tables with PII columns masked, for callers who may not see them.
    masked: SessionContext,
    tables: RwLock<Arc<BTreeSet<String>>>,
    queries: tokio::runtime::Handle,
    /// Queries and exports running now.
    running: Arc<std::sync::atomic::AtomicUsize>,
}

/// Counts a query as running until dropped (with the task that runs it).
pub struct Running(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The stack of each query thread. Parsing, planning and evaluating a
/// query recurse per level of expression nesting; the sandbox bounds the
/// nesting ([`crate::sandbox::MAX_EXPRESSION_DEPTH`]) and this holds what
/// it allows with a wide margin (the memory is reserved, and only touched
/// by a query that needs it).
pub const QUERY_THREAD_STACK: usize = 64 << 20;

/// A multi-thread runtime on its own thread, kept for the process's life.
fn query_runtime(workers: usize) -> Result<tokio::runtime::Handle, DashboardError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("query-runtime".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers.max(1))
                .thread_stack_size(QUERY_THREAD_STACK)
                .thread_name("query")
                .enable_all()
                .build();
            match runtime {
                Ok(runtime) => {
                    let _ = tx.send(Ok(runtime.handle().clone()));
                    runtime.block_on(std::future::pending::<()>());
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })
        .map_err(|e| DashboardError::Internal(format!("cannot start the query runtime: {e}")))?;
    rx.recv()
        .map_err(|e| DashboardError::Internal(format!("the query runtime did not start: {e}")))?
        .map_err(|e| DashboardError::Internal(format!("cannot build the query runtime: {e}")))
}

/// Results of a bounded query.
pub struct Collected {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub rows: usize,
    /// More rows existed than the limit allowed.
    pub truncated: bool,
    pub elapsed: Duration,
}

/// Read-only planning: the sandbox's second fence.
pub fn read_only() -> SQLOptions {
    SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false)
}

impl Lake {
    pub async fn open(location: &str, limits: &QueryLimits) -> Result<Arc<Lake>, DashboardError> {
        let store = DataStore::open(location)?;
        let (ctx, infos) = analytics::query::session(&store, limits).await?;
        let masked = analytics::query::masked_session(&ctx, &store).await?;
        let tables = infos.into_iter().map(|t| t.name).collect();
        let queries = query_runtime(limits.target_partitions)?;
        Ok(Arc::new(Lake {
            store,
            ctx,
            masked,
            tables: RwLock::new(Arc::new(tables)),
            queries,
            running: Arc::default(),
        }))
    }

    /// Marks a query running for as long as the guard lives.
    pub fn running(&self) -> Running {
        self.running.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Running(self.running.clone())
    }

    /// How many queries and exports run now.
    pub fn queries_running(&self) -> usize {
        self.running.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `work` on the query runtime.
    pub fn spawn<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.queries.spawn(work)
    }

    /// The sandbox's check of `sql`, on a query thread: dropping a parsed
    /// statement recurses as deep as it nests, which only the query
    /// threads' stack is sized for.
    pub async fn check(&self, sql: &str) -> Result<(), crate::sandbox::Refusal> {
        let tables = self.tables().await;
        let sql = sql.to_string();
        match self.queries.spawn(async move { crate::sandbox::check(&sql, &tables).map(drop) }).await {
            Ok(checked) => checked,
            Err(join) => Err(crate::sandbox::Refusal::Syntax(format!("the check failed: {join}"))),
        }
    }

    pub fn store(&self) -> &DataStore {
        &self.store
    }

    /// Registers tables that appeared since the last call.
    pub async fn refresh(&self) -> Result<(), DashboardError> {
        let added = analytics::query::register_tables(&self.ctx, &self.store).await?;
        analytics::query::register_masked_tables(&self.masked, &self.store).await?;
        if !added.is_empty() {
            let mut tables = self.tables.write().await;
            let mut next = (**tables).clone();
            next.extend(added.into_iter().map(|t| t.name));
            *tables = Arc::new(next);
        }
        Ok(())
    }

    pub async fn tables(&self) -> Arc<BTreeSet<String>> {
        self.tables.read().await.clone()
    }

    pub async fn has_table(&self, name: &str) -> bool {
        self.tables.read().await.contains(name)
    }

    /// Plans `sql` read-only (DDL, DML and statements refused).
    pub async fn plan(&self, sql: &str) -> Result<DataFrame, DataFusionError> {
        self.ctx.sql_with_options(sql, read_only()).await
    }

    /// The session a caller queries: PII masked unless `sees_pii`.
    fn session(&self, sees_pii: bool) -> &SessionContext {
        if sees_pii { &self.ctx } else { &self.masked }
    }

    /// [`Lake::plan`] in the session `sees_pii` chooses.
    pub async fn plan_as(&self, sql: &str, sees_pii: bool) -> Result<DataFrame, DataFusionError> {
        self.session(sees_pii).sql_with_options(sql, read_only()).await
    }

    /// Runs `sql`, keeping at most `row_limit` rows, within `timeout`, on
    /// the query runtime; past the limit its task is aborted, which stops
    /// the plan at its next yield.
    pub async fn collect(
        self: &Arc<Self>,
        sql: &str,
        row_limit: usize,
        timeout: Duration,
    ) -> Result<Collected, DashboardError> {
        self.collect_in(sql, row_limit, timeout, None, true).await
    }

    /// [`Lake::collect`] for a caller's own SQL: PII masked unless `sees_pii`.
    pub async fn collect_as(
        self: &Arc<Self>,
        sql: &str,
        row_limit: usize,
        timeout: Duration,
        sees_pii: bool,
    ) -> Result<Collected, DashboardError> {
        self.collect_in(sql, row_limit, timeout, None, sees_pii).await
    }

    /// [`Lake::collect`] with the scan split `partitions` ways: for lookups
    /// whose cost is opening many files for a few rows.
    pub async fn collect_wide(
        self: &Arc<Self>,
        sql: &str,
        row_limit: usize,
        timeout: Duration,
        partitions: usize,
    ) -> Result<Collected, DashboardError> {
        self.collect_in(sql, row_limit, timeout, Some(partitions), true).await
    }

    async fn collect_in(
        self: &Arc<Self>,
        sql: &str,
        row_limit: usize,
        timeout: Duration,
        partitions: Option<usize>,
        sees_pii: bool,
    ) -> Result<Collected, DashboardError> {
        let started = Instant::now();
        let lake = self.clone();
        let sql = sql.to_string();
        let running = self.running();
        // Aborted when this request's future is dropped (its client went
        // away) as well as at the time limit.
        let mut task = AbortOnDrop(self.queries.spawn(async move {
            let _running = running;
            let frame = match partitions {
                None => lake.plan_as(&sql, sees_pii).await?,
                Some(n) => {
                    let mut state = lake.session(sees_pii).state();
                    state.config_mut().options_mut().execution.target_partitions = n.max(1);
                    SessionContext::new_with_state(state).sql_with_options(&sql, read_only()).await?
                }
            };
            // One row past the limit tells us whether it truncated.
            let frame = frame.limit(0, Some(row_limit.saturating_add(1)))?;
            let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
            let mut stream = frame.execute_stream().await?;
            let (batches, rows, truncated) = take_rows(&mut stream, row_limit).await?;
            Ok::<_, DataFusionError>((schema, batches, rows, truncated))
        }));
        match tokio::time::timeout(timeout, &mut task.0).await {
            Ok(Ok(Ok((schema, batches, rows, truncated)))) => {
                Ok(Collected { schema, batches, rows, truncated, elapsed: started.elapsed() })
            }
            Ok(Ok(Err(e))) => Err(e.into()),
            Ok(Err(source)) => Err(DashboardError::Task { what: "the query", source }),
            Err(_) => Err(DashboardError::Timeout(timeout)),
        }
    }

    /// Runs `work` with the lake's session on the query runtime, within
    /// `timeout`, aborted when the caller goes away (as [`Lake::collect`]).
    pub async fn run<F, Fut, T>(&self, timeout: Duration, work: F) -> Result<T, DashboardError>
    where
        F: FnOnce(SessionContext) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, DashboardError>> + Send + 'static,
        T: Send + 'static,
    {
        let ctx = self.ctx.clone();
        let running = self.running();
        let mut task = AbortOnDrop(self.queries.spawn(async move {
            let _running = running;
            work(ctx).await
        }));
        match tokio::time::timeout(timeout, &mut task.0).await {
            Ok(Ok(result)) => result,
            Ok(Err(source)) => Err(DashboardError::Task { what: "the query", source }),
            Err(_) => Err(DashboardError::Timeout(timeout)),
        }
    }

    /// Plans `sql` and returns its unbounded stream (for exports).
    pub async fn stream(&self, sql: &str) -> Result<SendableRecordBatchStream, DashboardError> {
        self.stream_as(sql, true).await
    }

    /// [`Lake::stream`] with PII masked unless `sees_pii`.
    pub async fn stream_as(&self, sql: &str, sees_pii: bool) -> Result<SendableRecordBatchStream, DashboardError> {
        Ok(self.plan_as(sql, sees_pii).await?.execute_stream().await?)
    }
}

/// A query task that stops when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads batches until `limit` rows; the batch that crosses it is sliced.
async fn take_rows(
    stream: &mut SendableRecordBatchStream,
    limit: usize,
) -> Result<(Vec<RecordBatch>, usize, bool), DataFusionError> {
    let mut batches = Vec::new();
    let mut rows = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let room = limit - rows;
        if batch.num_rows() > room {
            if room > 0 {
                batches.push(batch.slice(0, room));
            }
            return Ok((batches, limit, true));
        }
        rows += batch.num_rows();
        batches.push(batch);
    }
    Ok((batches, rows, false))
}
