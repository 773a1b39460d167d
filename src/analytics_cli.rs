//! The analytics roles: `analytics` (the live job), `replay`, `seed` and
//! `sql`, wired to the `analytics` crate.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use analytics::live::LiveSettings;
use analytics::pipeline::{PipelineSpec, load_pipelines};
use analytics::query::{OutputFormat, QueryLimits};
use analytics::replay::{ReplaySettings, ReplayStart};
use analytics::store::DataStore;
use anyhow::{Context, Result, bail};
use async_nats::jetstream;
use clap::Args;
use tokio::sync::watch;

use crate::nats_args::NatsArgs;

#[derive(Args, Debug, Clone)]
pub struct AnalyticsOptions {
    /// Where the Parquet tables go: a directory, or s3://, gs://, az://, memory:// URL.
    #[arg(long = "data", env = "ORDERSTREAM_ANALYTICS_DATA")]
    pub data: Option<String>,
    /// Pipeline directory (NAME.toml + NAME.sql); default: the shipped set.
    #[arg(long, env = "ORDERSTREAM_PIPELINES")]
    pub pipelines: Option<PathBuf>,
    /// Most messages per micro-batch.
    #[arg(long, env = "ORDERSTREAM_ANALYTICS_BATCH_MAX", default_value_t = 10_000)]
    pub batch_max: usize,
    /// Longest a micro-batch waits to fill, in milliseconds.
    #[arg(long, env = "ORDERSTREAM_ANALYTICS_BATCH_WAIT_MS", default_value_t = 500)]
    pub batch_wait_ms: u64,
    /// Idle this long (ms) and pipelines' event time moves on with the clock.
    #[arg(long, env = "ORDERSTREAM_ANALYTICS_IDLE_AFTER_MS", default_value_t = 2_000)]
    pub idle_after_ms: u64,
    /// How often pipelines snapshot their window state, in seconds.
    #[arg(long, env = "ORDERSTREAM_ANALYTICS_STATE_EVERY_SECS", default_value_t = 30)]
    pub state_every_secs: u64,
    /// How often small files are compacted, in seconds.
    #[arg(long, env = "ORDERSTREAM_ANALYTICS_COMPACT_EVERY_SECS", default_value_t = 60)]
    pub compact_every_secs: u64,
    /// A partition with this many committed files is compacted.
    #[arg(long, env = "ORDERSTREAM_ANALYTICS_COMPACT_MIN_FILES", default_value_t = 24)]
    pub compact_min_files: usize,
    /// Run the demand forecast and inventory plan once a day, after the UTC
    /// day closes (and at start when the latest closed day's run is missing).
    #[arg(long, env = "ORDERSTREAM_DAILY_FORECAST", default_value_t = true, action = clap::ArgAction::Set)]
    pub daily_forecast: bool,
    /// Rebuild the bought-together model and the customer tables this
    /// often, in minutes (at start, then every interval); 0 turns it off.
    #[arg(long, env = "ORDERSTREAM_CUSTOMERS_EVERY_MINS", default_value_t = 60)]
    pub customers_every_mins: u64,
}

impl AnalyticsOptions {
    pub fn data_location(&self, default: &str) -> String {
        self.data.clone().unwrap_or_else(|| default.to_string())
    }

    pub fn live_settings(&self) -> LiveSettings {
        LiveSettings {
            job: analytics::job::JobSettings {
                state_every: Duration::from_secs(self.state_every_secs),
                compact_min_files: self.compact_min_files.max(2),
                ..analytics::job::JobSettings::default()
            },
            batch_max: self.batch_max.max(1),
            batch_wait: Duration::from_millis(self.batch_wait_ms),
            idle_after: Duration::from_millis(self.idle_after_ms.max(10)),
            compact_every: Duration::from_secs(self.compact_every_secs),
            ..LiveSettings::default()
        }
    }
}

pub fn pipelines(dir: &Option<PathBuf>) -> Result<Vec<Arc<PipelineSpec>>> {
    let specs = match dir {
        Some(dir) => load_pipelines(dir)?,
        None => analytics::builtin::builtin_pipelines()?,
    };
    Ok(specs.into_iter().map(Arc::new).collect())
}

#[derive(Args, Debug, Clone)]
pub struct AnalyticsArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub options: AnalyticsOptions,
}

/// Starts the live job; returns its task (it ends when `stop` is set).
pub async fn start_live(
    js: jetstream::Context,
    options: &AnalyticsOptions,
    specs: Vec<Arc<PipelineSpec>>,
    default_data: &str,
    stop: watch::Receiver<bool>,
    health: server::health::Health,
) -> Result<tokio::task::JoinHandle<Result<(), analytics::AnalyticsError>>> {
    let store = DataStore::open(&options.data_location(default_data))?;
    tracing::info!(data = %store.url(), pipelines = specs.len(), "analytics job starting");
    let settings = LiveSettings { health, ..options.live_settings() };
    if options.daily_forecast {
        let source = live_stock_source(js.clone());
        tokio::spawn(forecast::schedule::run_daily(store.clone(), source, stop.clone()));
    }
    if options.customers_every_mins > 0 {
        let every = Duration::from_secs(options.customers_every_mins * 60);
        tokio::spawn(customers::schedule::run_every(store.clone(), every, stop.clone()));
    }
    Ok(tokio::spawn(analytics::live::run(js, store, specs, settings, stop)))
}

/// The catalog's products with their live stock, for the inventory plan;
/// `None` (the plan is skipped) when NATS does not answer or the catalog
/// is empty.
pub async fn live_stock(js: &jetstream::Context) -> Option<Vec<forecast::inventory::StockPosition>> {
    let threshold = schemas::forecast::LOW_STOCK_UNITS;
    match tokio::time::timeout(Duration::from_secs(10), processor::catalog::product_views(js, threshold)).await {
        Ok(Ok(views)) if !views.is_empty() => {
            Some(views.into_iter().map(forecast::inventory::StockPosition::from).collect())
        }
        Ok(Ok(_)) => None,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read the catalog's stock; the inventory plan is skipped");
            None
        }
        Err(_) => {
            tracing::warn!("the catalog's stock did not arrive within 10 s; the inventory plan is skipped");
            None
        }
    }
}

fn live_stock_source(js: jetstream::Context) -> forecast::schedule::StockSource {
    Box::new(move || {
        let js = js.clone();
        Box::pin(async move { live_stock(&js).await })
    })
}

pub async fn analytics_role(args: AnalyticsArgs, stop: watch::Receiver<bool>) -> Result<()> {
    let client = crate::nats_args::connect_with_retry(&args.nats, "orderstream-analytics").await?;
    let js = jetstream::new(client);
    broker::ensure_topology(&js, &args.nats.topology()).await?;
    let specs = pipelines(&args.options.pipelines)?;
    let job = start_live(js, &args.options, specs, analytics::store::DEFAULT_LAKE, stop, server::health::Health::new())
        .await?;
    job.await.context("the analytics job panicked")??;
    Ok(())
}

#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// First stream sequence to replay (both streams).
    #[arg(long, conflicts_with = "from_time")]
    pub from_seq: Option<u64>,
    /// First publish time to replay, RFC 3339 (e.g. 2026-11-01T00:00:00Z).
    #[arg(long)]
    pub from_time: Option<String>,
    /// Last stream sequence (inclusive); default: the end of each stream now.
    #[arg(long)]
    pub to_seq: Option<u64>,
    /// Where the rebuilt tables go (a directory or a store URL); must be empty.
    #[arg(long)]
    pub output: String,
    /// Pipeline directory; default: the shipped set.
    #[arg(long)]
    pub pipelines: Option<PathBuf>,
    /// Messages per batch (fixed, so replays are reproducible).
    #[arg(long, default_value_t = 50_000)]
    pub batch_size: usize,
    #[arg(long)]
    pub no_progress: bool,
}

pub async fn replay(args: ReplayArgs) -> Result<()> {
    let start = match (&args.from_seq, &args.from_time) {
        (Some(seq), None) => ReplayStart::Seq(*seq),
        (None, Some(text)) => ReplayStart::Time(
            chrono::DateTime::parse_from_rfc3339(text)
                .with_context(|| format!("--from-time {text:?} is not RFC 3339"))?
                .with_timezone(&chrono::Utc),
        ),
        (None, None) => ReplayStart::Seq(1),
        (Some(_), Some(_)) => bail!("give --from-seq or --from-time, not both"),
    };
    let store = DataStore::open(&args.output)?;
    if !store.table_names().await?.is_empty() {
        bail!("{} already holds tables: replay into an empty location", args.output);
    }
    // Control and catalog only: the messages come through each stream's reader.
    let js = jetstream::new(args.nats.connect("orderstream-replay").await?);
    let specs = pipelines(&args.pipelines)?;
    let settings = ReplaySettings {
        start,
        to_seq: args.to_seq,
        batch_size: args.batch_size.max(1),
        progress: !args.no_progress,
        auth: args.nats.auth(),
    };
    let started = Instant::now();
    let reports = analytics::replay::replay(&js, &args.nats.nats_url, &store, &specs, &settings).await?;
    let secs = started.elapsed().as_secs_f64();
    for r in &reports {
        let rate = r.messages as f64 / r.elapsed.as_secs_f64().max(1e-9);
        println!(
            "{:>13}: seq {}..{}  {} messages in {:.2} s ({:.0}/s), {} rows, {} windows, {} late",
            r.stream,
            r.first_seq,
            r.last_seq,
            r.messages,
            r.elapsed.as_secs_f64(),
            rate,
            r.rows_written,
            r.windows_emitted,
            r.late_rows
        );
    }
    // The streams replay side by side: the total over the whole wall time.
    let messages: u64 = reports.iter().map(|r| r.messages).sum();
    println!("{:>13}: {messages} messages in {secs:.2} s ({:.0}/s)", "both", messages as f64 / secs.max(1e-9));
    Ok(())
}

#[derive(Args, Debug, Clone)]
pub struct SqlArgs {
    /// One SQL query over the tables (each directory of the data location).
    pub query: String,
    /// Allow statements that write (CREATE EXTERNAL TABLE, COPY, INSERT,
    /// SET, ...), which the HTTP endpoint never runs.
    #[arg(long)]
    pub allow_writes: bool,
    #[arg(long = "data", env = "ORDERSTREAM_ANALYTICS_DATA", default_value = analytics::store::DEFAULT_LAKE)]
    pub data: String,
    #[arg(long, value_enum, default_value = "table")]
    pub format: SqlFormat,
    /// Write the result to this file instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Memory pool for the query, in MiB.
    #[arg(long, default_value_t = 2048)]
    pub memory_mib: usize,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum SqlFormat {
    Table,
    Csv,
    Json,
    Parquet,
}

pub async fn sql(args: SqlArgs) -> Result<()> {
    let store = DataStore::open(&args.data)?;
    let limits = QueryLimits { memory_bytes: args.memory_mib << 20, ..QueryLimits::default() };
    let (ctx, tables) = analytics::query::session(&store, &limits).await?;
    let frame = if args.allow_writes {
        ctx.sql(&args.query).await
    } else {
        let names: std::collections::BTreeSet<String> = tables.into_iter().map(|t| t.name).collect();
        dashboard::sandbox::check(&args.query, &names)
            .map_err(|e| anyhow::anyhow!("{e} (the query is read-only; --allow-writes runs statements that write)"))?;
        ctx.sql_with_options(&args.query, dashboard::lake::read_only()).await
    };
    let frame = frame.map_err(|e| anyhow::anyhow!("{e}"))?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let format = match args.format {
        SqlFormat::Table => OutputFormat::Table,
        SqlFormat::Csv => OutputFormat::Csv,
        SqlFormat::Json => OutputFormat::Json,
        SqlFormat::Parquet => OutputFormat::Parquet,
    };
    let bytes = analytics::query::encode(&batches, schema, format)?;
    match &args.output {
        Some(path) => std::fs::write(path, &bytes).with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
        }
    }
    Ok(())
}
