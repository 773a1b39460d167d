//! `orderstream dashboard` and the dashboard part of `up`: the dashboard
//! API and web page over the analytics tables, with the processor's
//! read/review API beside it (the page approves fraud and reads stock
//! through it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use analytics::pipeline::PipelineSpec;
use anyhow::{Context, Result};
use clap::Args;
use tokio::sync::watch;

use crate::nats_args::NatsArgs;
use crate::processor_args::ProcessorOptions;

#[derive(Args, Debug, Clone)]
pub struct DashboardOptions {
    /// Rows a dashboard query answers at most (exports stream all).
    #[arg(long, env = "ORDERSTREAM_QUERY_ROW_LIMIT", default_value_t = 10_000)]
    pub query_row_limit: usize,
    /// A dashboard query is stopped after this many milliseconds.
    #[arg(long, env = "ORDERSTREAM_QUERY_TIMEOUT_MS", default_value_t = 10_000)]
    pub query_timeout_ms: u64,
    /// A streamed or background export is stopped after this many
    /// milliseconds (sooner when its client goes away).
    #[arg(long, env = "ORDERSTREAM_EXPORT_TIMEOUT_MS", default_value_t = 600_000)]
    pub export_timeout_ms: u64,
    /// The memory pool all dashboard queries share, in MiB.
    #[arg(long, env = "ORDERSTREAM_QUERY_MEMORY_MIB", default_value_t = 512)]
    pub query_memory_mib: usize,
    /// Where background exports are written (default: `<data-dir>/exports`,
    /// or the system temp directory for `orderstream dashboard`).
    #[arg(long, env = "ORDERSTREAM_EXPORT_DIR")]
    pub export_dir: Option<PathBuf>,
}

impl DashboardOptions {
    /// The settings, with which pipeline output serves which figure read
    /// from `pipelines`' manifests.
    pub fn settings(
        &self,
        processor: &ProcessorOptions,
        default_export_dir: PathBuf,
        pipelines: &[Arc<PipelineSpec>],
    ) -> Result<dashboard::DashboardSettings> {
        let rollups = dashboard::rollups::RollupTables::from_specs(pipelines).map_err(anyhow::Error::msg)?;
        let served: Vec<String> =
            rollups.iter().map(|(figure, size, table)| format!("{figure}/{}m: {table}", size.num_minutes())).collect();
        tracing::info!(served = %served.join(", "), "figures read from pipeline outputs (the rest from the base tables)");
        Ok(dashboard::DashboardSettings {
            row_limit: self.query_row_limit.max(1),
            query_timeout: Duration::from_millis(self.query_timeout_ms.max(1)),
            export_timeout: Duration::from_millis(self.export_timeout_ms.max(1)),
            low_stock_threshold: processor.low_stock_threshold,
            export_dir: self.export_dir.clone().unwrap_or(default_export_dir),
            rollups,
            ..dashboard::DashboardSettings::default()
        })
    }

    pub fn limits(&self) -> analytics::query::QueryLimits {
        analytics::query::QueryLimits {
            memory_bytes: self.query_memory_mib.max(16) << 20,
            ..analytics::query::QueryLimits::default()
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct DashboardArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub options: DashboardOptions,
    #[command(flatten)]
    pub processor: ProcessorOptions,
    /// The analytics tables: a directory, or s3://, gs://, az:// URL.
    #[arg(long = "data", env = "ORDERSTREAM_ANALYTICS_DATA", default_value = analytics::store::DEFAULT_LAKE)]
    pub data: String,
    #[arg(long, env = "ORDERSTREAM_LISTEN", default_value = "127.0.0.1:8082")]
    pub listen: SocketAddr,
    /// The pipeline directory the analytics job runs (default: the shipped
    /// set): their manifests say which output serves which figure.
    #[arg(long, env = "ORDERSTREAM_PIPELINES")]
    pub pipelines: Option<PathBuf>,
    #[command(flatten)]
    pub access: crate::keys_cli::AccessArgs,
}

/// The dashboard's state over `lake`, with its live sampler and table refresh.
pub async fn start(
    client: async_nats::Client,
    lake: &str,
    settings: dashboard::DashboardSettings,
    limits: &analytics::query::QueryLimits,
    stop: watch::Receiver<bool>,
) -> Result<dashboard::Dashboard> {
    let lake = dashboard::Lake::open(lake, limits).await.with_context(|| format!("opening the tables at {lake}"))?;
    dashboard::spawn_refresh(lake.clone(), stop.clone());
    let live = dashboard::live::Live::start(client.clone(), stop).await?;
    let dashboard = dashboard::Dashboard::new(lake, client, live, settings);
    // The inventory plan's lake inputs take seconds: read them now, not on
    // the first visit to the page.
    tokio::spawn(dashboard::inventory_api::warm(dashboard.clone()));
    tokio::spawn(dashboard::customers_api::warm(dashboard.clone()));
    Ok(dashboard)
}

/// `orderstream dashboard`: the tables answer at once, whether or not NATS
/// does; the order API beside them (and the live figures) join when NATS
/// answers, and until then say so with a 503.
pub async fn dashboard_role(args: DashboardArgs) -> Result<()> {
    let listener = server::bind(args.listen).await?;
    let client = broker::connect_lazily(&args.nats.nats_url, &args.nats.auth(), "orderstream-dashboard").await?;
    let stop = server::shutdown_flag();
    let pipelines = crate::analytics_cli::pipelines(&args.pipelines)?;
    let settings =
        args.options.settings(&args.processor, std::env::temp_dir().join("orderstream-exports"), &pipelines)?;
    let state = start(client.clone(), &args.data, settings, &args.options.limits(), stop.clone()).await?;
    let health = server::health::Health::new();
    let metrics = processor::Metrics::new();
    let order_api = std::sync::Arc::new(std::sync::OnceLock::new());
    // The keys come from NATS too: until they are read, only public routes
    // and the locally configured --admin-token answer.
    let guard = crate::keys_cli::Guard {
        keyring: access::Keyring::pending(health.clone(), args.access.admin_token.as_deref()),
        // Keys' request limits are counted where orders come in (ingest, up).
        limiter: None,
        audit: Some(async_nats::jetstream::new(client.clone())),
        cors_origins: args.access.cors_origins.clone(),
    };
    tokio::spawn(attach_order_api(
        client.clone(),
        args.clone(),
        metrics.clone(),
        health.clone(),
        order_api.clone(),
        guard.keyring.clone(),
    ));
    let router = crate::http::lake_router(dashboard::routes(state), client, metrics, health, order_api, &guard);
    println!("dashboard: http://{}/   (tables: {})", args.listen, args.data);
    Ok(server::serve_until(listener, router, stop).await?)
}

/// Opens the processor's read and review API once NATS answers.
async fn attach_order_api(
    client: async_nats::Client,
    args: DashboardArgs,
    metrics: std::sync::Arc<processor::Metrics>,
    health: server::health::Health,
    cell: std::sync::Arc<std::sync::OnceLock<axum::Router>>,
    keyring: access::Keyring,
) {
    const NAME: &str = "order_api";
    health.standby(NAME, "waiting for NATS");
    let js = async_nats::jetstream::new(client.clone());
    let mut delay = Duration::from_millis(200);
    loop {
        let opened = async {
            broker::ensure_topology(&js, &args.nats.topology()).await?;
            let api =
                processor::ApiState::open(client.clone(), args.processor.api(&args.access), metrics.clone()).await?;
            keyring.load(&js).await?;
            Ok::<_, anyhow::Error>(api)
        };
        match opened.await {
            Ok(api) => {
                let routes = processor::routes(api)
                    .fallback(server::http::not_found_route)
                    .method_not_allowed_fallback(server::http::method_not_allowed);
                let _ = cell.set(routes);
                health.ok(NAME, "serving orders, products and reviews");
                tracing::info!("NATS answers: the order API is up beside the tables");
                return;
            }
            Err(e) => {
                health.standby(NAME, format!("waiting for NATS: {e}"));
                tracing::debug!(error = %e, "the order API waits for NATS");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
