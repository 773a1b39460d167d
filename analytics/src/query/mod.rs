//! DataFusion over every table in the data location: each first-level
//! directory is a table, registered by name, with its hive partition
//! columns (`date`, and `pipeline` for `late_events`) usable for pruning.
//! Base and forecasting tables use their declared schema; pipeline outputs
//! are inferred.
//! Parquet reads push filters down (row groups, page index, bloom filters).

pub mod bounded_functions;
pub mod dated_table;
pub mod distinct_count;
pub mod file_cache;
pub mod small_files;
pub mod yielding;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use schemas::tables::Table;

use crate::AnalyticsError;
use crate::query::dated_table::DatedTable;
use crate::query::small_files::{SMALL_FILES_MEMORY, SmallFiles};
use crate::store::DataStore;

#[derive(Clone, Debug)]
pub struct QueryLimits {
    /// The memory pool; a query that needs more fails with "resources exhausted".
    pub memory_bytes: usize,
    pub target_partitions: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits { memory_bytes: 1 << 30, target_partitions: 2 }
    }
}

/// A table as registered: its name, partition columns and column count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableInfo {
    pub name: String,
    pub partition_columns: Vec<String>,
    pub columns: usize,
}

/// A session with every table of `store` registered.
pub async fn session(
    store: &DataStore,
    limits: &QueryLimits,
) -> Result<(SessionContext, Vec<TableInfo>), AnalyticsError> {
    let mut config = SessionConfig::new()
        .with_target_partitions(limits.target_partitions.max(1))
        .with_information_schema(true)
        .with_parquet_pruning(true)
        .with_parquet_bloom_filter_pruning(true)
        .with_parquet_page_index_pruning(true);
    config.options_mut().execution.parquet.pushdown_filters = true;
    config.options_mut().execution.parquet.reorder_filters = true;
    // Day-partitioned tables read their small files decoded from memory.
    let config = config.with_extension(Arc::new(SmallFiles::new(SMALL_FILES_MEMORY)));
    // DataFusion caches directory listings forever by default; a long-lived
    // session (the dashboard) must see the files the analytics job keeps
    // committing, so listings are not cached (footers still are).
    let caches = CacheManagerConfig::default().with_list_files_cache_limit(0);
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(limits.memory_bytes)))
        .with_cache_manager(caches)
        .build_arc()?;
    let ctx = bare_session(config, runtime, store)?;
    let tables = register_tables(&ctx, store).await?;
    Ok((ctx, tables))
}

fn bare_session(
    config: SessionConfig,
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    store: &DataStore,
) -> Result<SessionContext, AnalyticsError> {
    let state = datafusion::execution::SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_physical_optimizer_rule(Arc::new(crate::query::yielding::YieldingJoins))
        .build();
    let ctx = SessionContext::new_with_state(state);
    crate::query::bounded_functions::register(&ctx)?;
    ctx.register_object_store(&store.base_url(), store.object_store());
    Ok(ctx)
}

/// A session over the same files, settings and memory pool as `ctx`, with
/// its own catalog, in which every PII column ([`Table::pii_columns`])
/// reads as NULL: what an analyst without the `pii` grant queries. The raw
/// tables are not registered in it under any name.
pub async fn masked_session(ctx: &SessionContext, store: &DataStore) -> Result<SessionContext, AnalyticsError> {
    let masked = bare_session(ctx.copied_config(), ctx.runtime_env(), store)?;
    register_masked_tables(&masked, store).await?;
    Ok(masked)
}

/// [`register_tables`] for a masked session: each new table with PII is
/// replaced by a view that projects its PII columns to NULL.
pub async fn register_masked_tables(ctx: &SessionContext, store: &DataStore) -> Result<Vec<TableInfo>, AnalyticsError> {
    use datafusion::prelude::{cast, col, lit};
    let added = register_tables(ctx, store).await?;
    for info in &added {
        let Some(table) = Table::ALL.iter().find(|t| t.name() == info.name) else { continue };
        let pii = table.pii_columns();
        if pii.is_empty() {
            continue;
        }
        let Some(raw) = ctx.deregister_table(info.name.as_str())? else { continue };
        let frame = ctx.read_table(raw)?;
        let columns = frame
            .schema()
            .fields()
            .iter()
            .map(|f| {
                let name = f.name();
                if pii.contains(&name.as_str()) {
                    cast(lit(datafusion::scalar::ScalarValue::Null), f.data_type().clone()).alias(name)
                } else {
                    col(datafusion::common::Column::from_name(name.clone()))
                }
            })
            .collect::<Vec<_>>();
        ctx.register_table(info.name.as_str(), frame.select(columns)?.into_view())?;
    }
    Ok(added)
}

/// The `k=v` directory names between the table and its files.
async fn partition_columns(store: &DataStore, table: &str) -> Result<Vec<String>, AnalyticsError> {
    let files = store.list(&store.path(table)).await?;
    let Some(first) = files.iter().find(|m| m.location.as_ref().ends_with(".parquet")) else { return Ok(Vec::new()) };
    let prefix = store.path(table);
    let columns = first
        .location
        .prefix_match(&prefix)
        .map(|parts| parts.filter_map(|p| p.as_ref().split_once('=').map(|(k, _)| k.to_string())).collect::<Vec<_>>())
        .unwrap_or_default();
    Ok(columns)
}

/// Registers every table of `store` not registered yet (so a long-lived
/// session picks up a pipeline's new output table by calling this again);
/// returns the newly registered ones.
pub async fn register_tables(ctx: &SessionContext, store: &DataStore) -> Result<Vec<TableInfo>, AnalyticsError> {
    let mut infos = Vec::new();
    for name in store.table_names().await? {
        if ctx.table_exist(name.as_str())? {
            continue;
        }
        let partitions = partition_columns(store, &name).await?;
        if partitions.is_empty()
            && store.list(&store.path(&name)).await?.iter().all(|m| !m.location.as_ref().ends_with(".parquet"))
        {
            continue;
        }
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(partitions.iter().map(|p| (p.clone(), DataType::Utf8)).collect());
        let url = ListingTableUrl::parse(store.table_url(&name))?;
        let config = ListingTableConfig::new(url).with_listing_options(options);
        let declared = Table::ALL
            .iter()
            .find(|t| t.name() == name)
            .map(|t| t.schema())
            .or_else(|| schemas::forecast::declared_schema(&name))
            .or_else(|| schemas::customers::declared_schema(&name));
        let config = match declared {
            Some(schema) => config.with_schema(schema),
            None => config.infer_schema(&ctx.state()).await?,
        };
        let table = ListingTable::try_new(config)?;
        let columns = table.schema().fields().len();
        // Partitioned by day alone (every table but `late_events`): list
        // only the days a query's filters allow.
        let table: Arc<dyn TableProvider> =
            if partitions == ["date"] { Arc::new(DatedTable::new(table)) } else { Arc::new(table) };
        ctx.register_table(name.as_str(), table)?;
        infos.push(TableInfo { name, partition_columns: partitions, columns });
    }
    register_views(ctx, &mut infos).await?;
    Ok(infos)
}

/// The views over the tables: `fraud_scores` once `order_events` exists.
async fn register_views(ctx: &SessionContext, infos: &mut Vec<TableInfo>) -> Result<(), AnalyticsError> {
    use schemas::fraud::{FRAUD_SCORES_SQL, FRAUD_SCORES_VIEW};
    if ctx.table_exist(FRAUD_SCORES_VIEW)? || !ctx.table_exist(Table::OrderEvents.name())? {
        return Ok(());
    }
    let plan = ctx.sql(FRAUD_SCORES_SQL).await?.into_view();
    ctx.register_table(FRAUD_SCORES_VIEW, plan)?;
    let columns = schemas::fraud::arrow::fraud_scores_schema().fields().len();
    infos.push(TableInfo { name: FRAUD_SCORES_VIEW.to_string(), partition_columns: Vec::new(), columns });
    Ok(())
}

/// How `orderstream sql` prints results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
    Parquet,
}

/// Runs `sql` and returns its batches.
pub async fn run(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, AnalyticsError> {
    Ok(ctx.sql(sql).await?.collect().await?)
}

/// Encodes batches in `format`.
pub fn encode(
    batches: &[RecordBatch],
    schema: arrow::datatypes::SchemaRef,
    format: OutputFormat,
) -> Result<Vec<u8>, AnalyticsError> {
    let mut out = Vec::new();
    match format {
        OutputFormat::Table => {
            let text = arrow::util::pretty::pretty_format_batches(batches)?;
            out.extend_from_slice(format!("{text}\n").as_bytes());
        }
        OutputFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
            for batch in batches {
                writer.write(batch)?;
            }
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::ArrayWriter::new(&mut out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            if out.is_empty() {
                out.extend_from_slice(b"[]");
            }
            out.push(b'\n');
        }
        OutputFormat::Parquet => {
            let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None)?;
            for batch in batches {
                writer.write(batch)?;
            }
            writer.close()?;
        }
    }
    Ok(out)
}
