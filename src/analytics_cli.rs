//! The analytics roles: `analytics` (the live job), `replay`, `seed` and
//! `sql`, wired to the `analytics` crate.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use analytics::live::LiveSettings;
use analytics::pipeline::{PipelineSpec, load_pipelines};
use analytics::query::{OutputFormat, QueryLimits};
use analytics::replay::{ReplaySettings, ReplayStart};
use analytics::seed::SeedConfig;
use analytics::store::DataStore;
use anyhow::{Context, Result, bail};
use async_nats::jetstream;
use clap::Args;
use tokio::sync::watch;

use crate::cli::NatsArgs;

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
    default_data: &str,
    stop: watch::Receiver<bool>,
    health: schemas::health::Health,
) -> Result<tokio::task::JoinHandle<Result<(), analytics::AnalyticsError>>> {
    let store = DataStore::open(&options.data_location(default_data))?;
    let specs = pipelines(&options.pipelines)?;
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
    let client = crate::roles::connect_with_retry(&args.nats, "orderstream-analytics").await?;
    let js = jetstream::new(client);
    broker::ensure_topology(&js, &args.nats.topology()).await?;
    let job = start_live(js, &args.options, "./data/lake", stop, schemas::health::Health::new()).await?;
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
pub struct SeedArgs {
    /// Orders to generate.
    #[arg(long, default_value_t = 100_000)]
    pub orders: u64,
    /// Days of history, ending on --end.
    #[arg(long, default_value_t = 90)]
    pub days: u32,
    /// The last day of history (YYYY-MM-DD; default: today, UTC). Output is
    /// deterministic for a given --seed, --orders, --days and --end.
    #[arg(long)]
    pub end: Option<chrono::NaiveDate>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Products in the catalog (their popularity is skewed: a few sell
    /// daily, the long tail now and then).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub products: u32,
    /// Where the tables go (a directory or a store URL).
    #[arg(long, env = "ORDERSTREAM_ANALYTICS_DATA", default_value = "./data/lake")]
    pub output: String,
    /// Days generated at once (default: the CPUs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Publish the orders through JetStream (the processor runs their saga,
    /// the analytics job writes them) instead of writing them to Parquet.
    /// Products and stock go to the catalog; products, customers and fraud
    /// labels still go to Parquet.
    #[arg(long)]
    pub publish: bool,
    /// Orders per second when publishing.
    #[arg(long, default_value_t = 2_000)]
    pub rate: u64,
    /// With --publish: also publish each order's seeded status events to
    /// ORDER_EVENTS, in event-time order, as a processor would have emitted
    /// them. A complete history to replay without running the saga; do not
    /// run a processor on the same orders (it would emit their events again).
    #[arg(long, requires = "publish")]
    pub with_events: bool,
    /// The fraud model whose verdicts the seeded status events carry
    /// (default: the built-in model; `orderstream fraud train` writes one).
    #[arg(long)]
    pub fraud_model: Option<PathBuf>,
    /// Pipeline directory (default: the shipped set); the outputs of those
    /// whose windows tile a day (tumbling, 1 h or longer, over order items)
    /// are written for the seeded days too.
    #[arg(long)]
    pub pipelines: Option<PathBuf>,
    /// Add to an --output that already holds tables (another seed's days).
    #[arg(long, conflicts_with = "overwrite")]
    pub append: bool,
    /// Delete every table under --output first.
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub nats: NatsArgs,
    #[arg(long)]
    pub no_progress: bool,
}

/// A non-empty `--output` is refused unless the caller said what to do
/// with what is there: seeding twice into one location silently doubled
/// its products.
async fn prepare_seed_output(store: &DataStore, args: &SeedArgs) -> Result<()> {
    let tables = store.table_names().await?;
    if tables.is_empty() || args.append {
        return Ok(());
    }
    if !args.overwrite {
        bail!(
            "{} already holds tables ({}): --append adds this history to them, --overwrite deletes them first",
            store.url(),
            tables.join(", ")
        );
    }
    for table in &tables {
        for meta in store.list(&store.path(table)).await? {
            store.delete(&meta.location).await?;
        }
    }
    for meta in store.list(&store.path("_checkpoints")).await? {
        store.delete(&meta.location).await?;
    }
    println!("deleted {} tables under {}", tables.len(), store.url());
    Ok(())
}

/// The fraud screen that judges the seeded orders.
pub fn seed_screen(args: &SeedArgs) -> Result<analytics::seed::SeedScreen> {
    let model = match &args.fraud_model {
        Some(path) => fraud::FraudModel::load(path)?,
        None => fraud::FraudModel::builtin()?,
    };
    Ok(analytics::seed::SeedScreen::new(std::sync::Arc::new(model), None))
}

pub async fn seed(args: SeedArgs) -> Result<()> {
    let end = args.end.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let mut config = SeedConfig::new(args.seed, args.orders, args.days, end);
    config.products = args.products as usize;
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let started = Instant::now();
    let store = DataStore::open(&args.output)?;
    prepare_seed_output(&store, &args).await?;
    if args.publish {
        return crate::seed_publish::publish(&args, &config).await;
    }
    let specs = pipelines(&args.pipelines)?;
    let screen = seed_screen(&args)?;
    let report = analytics::seed::seed_to_parquet(&store, &config, screen, &specs, threads, !args.no_progress).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "seeded {} orders, {} items, {} events ({} labelled fraud) from {} to {} into {} in {:.1} s ({:.0} orders/s, {} files, {:.1} MiB)",
        report.orders,
        report.items,
        report.events,
        report.fraud_orders,
        config.start(),
        end,
        store.url(),
        secs,
        report.orders as f64 / secs.max(1e-9),
        report.files,
        report.bytes as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}

#[derive(Args, Debug, Clone)]
pub struct BenchWindowArgs {
    /// Where the input table is (a directory or a store URL).
    #[arg(long)]
    pub input: String,
    /// Where the pipeline outputs go; must be empty.
    #[arg(long)]
    pub output: String,
    /// Pipeline directory (all reading one table); default: the shipped
    /// `revenue_by_category_1m`.
    #[arg(long)]
    pub pipelines: Option<PathBuf>,
    /// Times to run, each into its own `run-N` under `--output` when more
    /// than one; the median is printed last. A single run is at the mercy
    /// of whatever else the machine does just then (page cache, huge-page
    /// compaction after a JVM exits).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
}

pub async fn bench_window(args: BenchWindowArgs) -> Result<()> {
    let specs = match &args.pipelines {
        Some(_) => pipelines(&args.pipelines)?,
        None => pipelines(&None)?.into_iter().filter(|p| p.name == "revenue_by_category_1m").collect(),
    };
    let input = DataStore::open(&args.input)?;
    let root = DataStore::open(&args.output)?;
    if !root.table_names().await?.is_empty() {
        anyhow::bail!("{} is not empty", root.url());
    }
    let mut rates = Vec::new();
    for run in 1..=args.runs {
        let output = match args.runs {
            1 => root.clone(),
            _ => DataStore::open(&format!("{}/run-{run}", args.output.trim_end_matches('/')))?,
        };
        let report = analytics::bench::window_from_parquet(&input, &output, &specs).await?;
        let secs = report.elapsed.as_secs_f64();
        let rate = report.input_rows as f64 / secs.max(1e-9);
        rates.push(rate);
        println!(
            "window bench: {} rows from {} files through {} pipeline(s) in {:.2} s = {:.0} rows/s ({} windows, {} rows written)",
            report.input_rows,
            report.input_files,
            specs.len(),
            secs,
            rate,
            report.windows_emitted,
            report.rows_written
        );
    }
    if rates.len() > 1 {
        rates.sort_by(f64::total_cmp);
        let mid = rates.len() / 2;
        let median = if rates.len() % 2 == 1 { rates[mid] } else { (rates[mid - 1] + rates[mid]) / 2.0 };
        println!("window bench: median of {} runs = {median:.0} rows/s", rates.len());
    }
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
    #[arg(long = "data", env = "ORDERSTREAM_ANALYTICS_DATA", default_value = "./data/lake")]
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
