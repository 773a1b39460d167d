//! The long-running roles: `ingest` alone, or everything with `up`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use broker::{NatsServer, ServerOptions};
use clap::{Args, Subcommand};
use ingest::IngestConfig;
use schemas::TaxRate;

use crate::nats_args::{NatsArgs, connect_with_retry};
use crate::processor_args::ProcessorOptions;

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Imports products and their stock from a CSV file with the header
    /// `product_id,name,category,unit_price,stock[,currency]`.
    Import {
        file: PathBuf,
        #[command(flatten)]
        nats: NatsArgs,
    },
}

#[derive(Args, Debug, Clone)]
pub struct IngestArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Address the HTTP API listens on.
    #[arg(long, env = "ORDERSTREAM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Largest request body in bytes (413 above).
    #[arg(long, env = "ORDERSTREAM_MAX_BODY_BYTES", default_value_t = IngestConfig::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// Longest wait for JetStream's PubAck before answering 503, in milliseconds.
    #[arg(long, env = "ORDERSTREAM_PUBLISH_TIMEOUT_MS", default_value_t = IngestConfig::default().publish_timeout.as_millis() as u64)]
    pub publish_timeout_ms: u64,
    /// Tax on the subtotal in basis points (1000 = 10%).
    #[arg(long, env = "ORDERSTREAM_TAX_RATE_BPS", default_value_t = IngestConfig::default().tax_rate.0)]
    pub tax_rate_bps: u32,
    /// Most orders in one batch request.
    #[arg(long, env = "ORDERSTREAM_MAX_BATCH", default_value_t = IngestConfig::default().max_batch)]
    pub max_batch: usize,
    /// Orders one customer may submit a minute, counted across every ingest
    /// instance in NATS (e.g. 3); beyond it `429` with `Retry-After`. Off by default.
    #[arg(long, env = "ORDERSTREAM_CUSTOMER_RATE_LIMIT")]
    pub customer_rate_limit: Option<u32>,
    #[command(flatten)]
    pub access: crate::keys_cli::AccessArgs,
}

impl IngestArgs {
    pub fn config(&self) -> IngestConfig {
        IngestConfig {
            max_body_bytes: self.max_body_bytes,
            publish_timeout: Duration::from_millis(self.publish_timeout_ms),
            tax_rate: TaxRate(self.tax_rate_bps),
            max_batch: self.max_batch,
            tracking_ttl: self.access.tracking_ttl(),
            customer_rate_limit: self.customer_rate_limit.filter(|n| *n > 0),
            ..IngestConfig::default()
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct ProcessorArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub options: ProcessorOptions,
    /// Address the processor's API listens on.
    #[arg(long, env = "ORDERSTREAM_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub access: crate::keys_cli::AccessArgs,
}

#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    #[command(flatten)]
    pub ingest: IngestArgs,
    #[command(flatten)]
    pub processor: ProcessorOptions,
    #[command(flatten)]
    pub analytics: crate::analytics_cli::AnalyticsOptions,
    #[command(flatten)]
    pub dashboard: crate::dashboard_cli::DashboardOptions,
    /// Where the embedded nats-server keeps its data (and, by default, the
    /// analytics tables, in `lake/`).
    #[arg(long, env = "ORDERSTREAM_DATA_DIR", default_value = analytics::store::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Allow admins to run load tests from the dashboard at up to this many
    /// orders per second (0, the default: no load tests).
    #[arg(long, env = "ORDERSTREAM_LOAD_TEST_MAX_RATE", default_value_t = 0.0)]
    pub load_test_max_rate: f64,
    /// The longest load test allowed, in seconds.
    #[arg(long, env = "ORDERSTREAM_LOAD_TEST_MAX_SECS", default_value_t = 60.0)]
    pub load_test_max_secs: f64,
}

/// Sends what the client still buffers, unless NATS is gone: then there is
/// nothing to wait for.
async fn flush(client: &async_nats::Client) {
    let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
}

/// Waits for a processor's tasks to stop, bounded: shutdown never hangs.
async fn stop_processor(running: processor::Processor) -> Result<()> {
    match tokio::time::timeout(Duration::from_secs(10), running.join()).await {
        Ok(result) => Ok(result?),
        Err(_) => {
            tracing::warn!("processor tasks did not stop within 10 s; exiting anyway");
            Ok(())
        }
    }
}

/// Reads the API keys (before serving: a role must not start open by
/// mistake) and opens what guards the routes, over one JetStream context.
pub(crate) async fn guard(
    access: &crate::keys_cli::AccessArgs,
    client: &async_nats::Client,
    health: server::health::Health,
) -> Result<crate::keys_cli::Guard> {
    let js = async_nats::jetstream::new(client.clone());
    Ok(crate::keys_cli::Guard {
        keyring: access::Keyring::open(&js, access.admin_token.as_deref(), health)
            .await
            .context("reading the API keys")?,
        limiter: Some(access::RateLimiter::open(&js).await.context("opening the rate limits")?),
        audit: Some(js),
        cors_origins: access.cors_origins.clone(),
    })
}

pub async fn ingest(args: IngestArgs) -> Result<()> {
    let listener = server::bind(args.listen).await?;
    let client = connect_with_retry(&args.nats, "orderstream-ingest").await?;
    let state = ingest::build_state(client.clone(), args.config(), &args.nats.topology()).await?;
    let guard = guard(&args.access, &client, state.health.clone()).await?;
    tracing::info!(listen = %args.listen, "ingest API serving");
    server::serve_until(listener, guard.protect(ingest::router(state)), server::shutdown_flag()).await?;
    // Whatever publishes are still buffered go out before we exit.
    flush(&client).await;
    Ok(())
}

pub async fn processor(args: ProcessorArgs) -> Result<()> {
    let listener = server::bind(args.listen).await?;
    let client = connect_with_retry(&args.nats, "orderstream-processor").await?;
    let stop = server::shutdown_flag();
    let running =
        processor::Processor::start(client.clone(), args.options.config()?, &args.nats.topology(), stop.clone())
            .await?;
    let api =
        processor::ApiState::open(client.clone(), args.options.api(&args.access), running.metrics.clone()).await?;
    let guard = guard(&args.access, &client, running.health.clone()).await?;
    tracing::info!(listen = %args.listen, "processor API serving");
    let router = crate::http::processor_router(
        api,
        client.clone(),
        running.metrics.clone(),
        running.health.clone(),
        None,
        &guard,
    );
    let served = server::serve_until(listener, router, stop).await.map_err(anyhow::Error::from);
    stop_processor(running).await?;
    flush(&client).await;
    served
}

pub async fn catalog(command: CatalogCommand) -> Result<()> {
    match command {
        CatalogCommand::Import { file, nats } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let entries = processor::catalog::parse_csv(&text)?;
            let client = nats.connect("orderstream-catalog").await?;
            let js = async_nats::jetstream::new(client.clone());
            broker::ensure_topology(&js, &nats.topology()).await?;
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let imported = processor::catalog::import(&js, &name, &entries).await?;
            flush(&client).await;
            println!("imported {imported} products from {}", file.display());
            Ok(())
        }
    }
}

/// Where `up` records its embedded nats-server's process id.
const EMBEDDED_PID_FILE: &str = "nats-server.pid";

/// An embedded nats-server left by an `up` that died without stopping it
/// (where the kernel could not be asked to kill it with its parent) would
/// otherwise be silently attached to: it is stopped, with a warning, and
/// this `up` starts its own.
async fn stop_stale_embedded_server(pid_file: &std::path::Path) {
    let Ok(text) = std::fs::read_to_string(pid_file) else { return };
    let _ = std::fs::remove_file(pid_file);
    let Ok(pid) = text.trim().parse::<u32>() else { return };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let store = pid_file.parent().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default();
    let command = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    if !command.contains("nats-server") || !command.contains(&store) {
        return; // gone, or the id now belongs to another process
    }
    tracing::warn!(pid, store = %store, "stopping the embedded nats-server a previous `orderstream up` left running");
    let _ = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
    for _ in 0..100 {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = tokio::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// `host:port` of the first URL in a NATS URL list.
fn first_host_port(urls: &str) -> Result<(String, u16)> {
    let servers = broker::server_addrs(urls).with_context(|| format!("bad NATS URL in {urls}"))?;
    let first = servers.first().with_context(|| format!("no NATS URL in {urls:?}"))?;
    Ok((first.host().to_string(), first.port()))
}

pub async fn up(args: UpArgs) -> Result<()> {
    let listener = server::bind(args.ingest.listen).await?;
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let url = args.ingest.nats.nats_url.clone();
    let (host, port) = first_host_port(&url)?;
    let store_dir = args.data_dir.join("nats");
    let pid_file = store_dir.join(EMBEDDED_PID_FILE);
    stop_stale_embedded_server(&pid_file).await;
    let reachable =
        tokio::time::timeout(Duration::from_millis(500), tokio::net::TcpStream::connect((host.as_str(), port)))
            .await
            .is_ok_and(|r| r.is_ok());
    let mut embedded = None;
    if !reachable {
        if !matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1" | "[::1]") {
            bail!("NATS at {url} is not reachable, and an embedded server can only be started on this machine");
        }
        let options = ServerOptions {
            port,
            store_dir: store_dir.clone(),
            server_name: "orderstream".to_string(),
            cluster: None,
            config_file: None,
        };
        let server = NatsServer::start(options).await.context("starting the embedded nats-server")?;
        tracing::info!(url = %server.url(), store = %store_dir.display(), "started embedded nats-server");
        if let Some(pid) = server.pid() {
            let _ = std::fs::write(&pid_file, format!("{pid}\n"));
        }
        embedded = Some(server);
    }
    let client = connect_with_retry(&args.ingest.nats, "orderstream-up").await?;
    let stop = server::shutdown_flag();
    let state = ingest::build_state(client.clone(), args.ingest.config(), &args.ingest.nats.topology()).await?;
    // One health registry for the whole process: /readyz shows every part.
    let config = processor::ProcessorConfig { health: state.health.clone(), ..args.processor.config()? };
    let running =
        processor::Processor::start(client.clone(), config, &args.ingest.nats.topology(), stop.clone()).await?;
    let api =
        processor::ApiState::open(client.clone(), args.processor.api(&args.ingest.access), running.metrics.clone())
            .await?;
    let guard = guard(&args.ingest.access, &client, state.health.clone()).await?;
    let listen = listener.local_addr().unwrap_or(args.ingest.listen);
    let lake = args.data_dir.join(analytics::store::LAKE_DIR).to_string_lossy().into_owned();
    let js = async_nats::jetstream::new(client.clone());
    // One set of pipelines: the job runs them, the dashboard reads their outputs.
    let pipelines = crate::analytics_cli::pipelines(&args.analytics.pipelines)?;
    let dashboard_settings = args.dashboard.settings(&args.processor, args.data_dir.join("exports"), &pipelines)?;
    let analytics =
        crate::analytics_cli::start_live(js, &args.analytics, pipelines, &lake, stop.clone(), state.health.clone())
            .await?;
    let lake_location = args.analytics.data_location(&lake);
    let dashboard = crate::dashboard_cli::start(
        client.clone(),
        &lake_location,
        dashboard_settings,
        &args.dashboard.limits(),
        stop.clone(),
    )
    .await?;
    let limits = crate::load_test::Limits {
        max_rate: if args.load_test_max_rate.is_finite() { args.load_test_max_rate.max(0.0) } else { 0.0 },
        max_duration: Duration::from_secs_f64(args.load_test_max_secs.clamp(1.0, 3600.0)),
        max_connections: 64,
    };
    let load_tests = crate::load_test::LoadTests::new(limits, listen).routes();
    let router = crate::http::up_router(
        state,
        api,
        running.metrics.clone(),
        dashboard::routes(dashboard).merge(load_tests),
        &guard,
    );
    println!("orderstream is up");
    println!("  dashboard: http://{listen}/");
    println!("  API:       http://{listen}/api/orders   (OpenAPI: http://{listen}/api/openapi.json)");
    println!("  live:      ws://{listen}/api/ws/orders   products: http://{listen}/api/products");
    println!("  health:    http://{listen}/readyz   metrics: http://{listen}/metrics");
    if guard.keyring.is_enforced() {
        println!("  access:    API keys required (orderstream keys list)");
    } else {
        println!("  access:    OPEN to anyone: no API key exists. Create the first (this turns keys on):");
        println!("             orderstream keys create --role admin --nats-url {url}");
    }
    match &embedded {
        Some(server) => println!("  NATS:      {} (embedded, data in {})", server.url(), args.data_dir.display()),
        None => println!("  NATS:      {url}"),
    }
    println!(
        "  analytics: {}   (query: orderstream sql --data {0} \"SELECT ...\")",
        args.analytics.data_location(&lake)
    );
    let served = server::serve_until(listener, router, stop).await.map_err(anyhow::Error::from);
    let processed = stop_processor(running).await;
    match tokio::time::timeout(Duration::from_secs(20), analytics).await {
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "the analytics job failed"),
        Ok(Err(e)) => tracing::error!(error = %e, "the analytics job panicked"),
        Err(_) => tracing::warn!("the analytics job did not stop within 20 s"),
        Ok(Ok(Ok(()))) => {}
    }
    flush(&client).await;
    if let Some(mut server) = embedded {
        server.stop().await.context("stopping the embedded nats-server")?;
        let _ = std::fs::remove_file(&pid_file);
    }
    served?;
    processed
}

/// `orderstream streams apply [--yes]`: the one command that changes
/// existing streams and buckets.
pub async fn streams_apply(nats: NatsArgs, yes: bool) -> Result<()> {
    let client = nats.connect("orderstream-streams").await?;
    let js = async_nats::jetstream::new(client.clone());
    let settings = nats.topology();
    let differences = broker::plan(&js, &settings).await?;
    if differences.is_empty() {
        broker::ensure_topology(&js, &settings).await?;
        println!("the streams and buckets already match these settings");
        return Ok(());
    }
    println!("differences from these settings:");
    for difference in &differences {
        println!("  {difference}");
    }
    if !yes {
        println!("nothing changed; run again with --yes to apply");
        return Ok(());
    }
    broker::apply(&js, &settings).await?;
    flush(&client).await;
    println!("applied {} changes", differences.len());
    Ok(())
}

pub async fn audit(nats: NatsArgs, allow_unfinished: bool) -> Result<()> {
    let client = nats.connect("orderstream-audit").await?;
    let js = async_nats::jetstream::new(client);
    let report = processor::audit::audit(&js).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !report.is_clean(allow_unfinished) {
        bail!("the audit found violations");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::first_host_port;

    #[test]
    fn finds_the_first_host_and_port() {
        assert_eq!(first_host_port("nats://127.0.0.1:4222").unwrap(), ("127.0.0.1".into(), 4222));
        assert_eq!(first_host_port("nats://u:p@localhost:5000,nats://b:1").unwrap(), ("localhost".into(), 5000));
        assert_eq!(first_host_port("localhost").unwrap(), ("localhost".into(), 4222));
        assert!(first_host_port("nats://h:notaport").is_err());
    }
}
