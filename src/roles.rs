//! The long-running roles: `ingest` alone, or everything with `up`.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use broker::{NatsServer, ServerOptions};
use tokio::net::TcpListener;

use tokio::sync::watch;

use crate::cli::{CatalogCommand, IngestArgs, ProcessorArgs, UpArgs};

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// Connects, retrying while NATS is not up yet: roles may start in any
/// order. Refused credentials or an untrusted certificate are not retried:
/// they are a clear error at start-up.
pub(crate) async fn connect_with_retry(nats: &crate::cli::NatsArgs, name: &str) -> Result<async_nats::Client> {
    let mut delay = Duration::from_millis(100);
    loop {
        match nats.connect(name).await {
            Ok(client) => return Ok(client),
            Err(err) if broker::is_refused(&err) => {
                bail!(
                    "NATS at {} refused this connection: {err} (check --nats-user/--nats-password, --nats-token, --nats-nkey, --nats-creds, --nats-ca)",
                    nats.nats_url
                )
            }
            Err(err) => {
                tracing::warn!(%err, retry_in = ?delay, "NATS not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
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

/// A shutdown flag set by Ctrl-C or SIGTERM, for every part of a role.
pub(crate) fn shutdown_flag() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = tx.send(true);
    });
    rx
}

async fn flag_set(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}

/// Reads the API keys (before serving: a role must not start open by
/// mistake) and opens what guards the routes, over one JetStream context.
pub(crate) async fn guard(
    access: &crate::keys_cli::AccessArgs,
    client: &async_nats::Client,
    health: schemas::health::Health,
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

/// Takes the HTTP port before anything else starts: a busy port is an
/// error at once, not a server that says it is up and is not.
pub(crate) async fn bind(listen: std::net::SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen} (is another orderstream running there? choose another with --listen)")
    })
}

pub(crate) async fn serve(listener: TcpListener, router: axum::Router, stop: watch::Receiver<bool>) -> Result<()> {
    ingest::serve(listener, router, flag_set(stop)).await?;
    Ok(())
}

pub async fn ingest(args: IngestArgs) -> Result<()> {
    let listener = bind(args.listen).await?;
    let client = connect_with_retry(&args.nats, "orderstream-ingest").await?;
    let state = ingest::build_state(client.clone(), args.config(), &args.nats.topology()).await?;
    let guard = guard(&args.access, &client, state.health.clone()).await?;
    tracing::info!(listen = %args.listen, "ingest API serving");
    serve(listener, guard.protect(ingest::router(state)), shutdown_flag()).await?;
    // Whatever publishes are still buffered go out before we exit.
    flush(&client).await;
    Ok(())
}

pub async fn processor(args: ProcessorArgs) -> Result<()> {
    let listener = bind(args.listen).await?;
    let client = connect_with_retry(&args.nats, "orderstream-processor").await?;
    let stop = shutdown_flag();
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
    let served = serve(listener, router, stop).await;
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
    let first = urls.split(',').next().unwrap_or("").trim();
    let without_scheme = first.split("://").last().unwrap_or(first);
    let host_port = without_scheme.rsplit('@').next().unwrap_or(without_scheme);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse::<u16>().with_context(|| format!("bad port in {first}"))?),
        None => (host_port.to_string(), 4222),
    };
    Ok((host, port))
}

pub async fn up(args: UpArgs) -> Result<()> {
    let listener = bind(args.ingest.listen).await?;
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
    let stop = shutdown_flag();
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
    let lake = args.data_dir.join("lake").to_string_lossy().into_owned();
    let js = async_nats::jetstream::new(client.clone());
    let analytics =
        crate::analytics_cli::start_live(js, &args.analytics, &lake, stop.clone(), state.health.clone()).await?;
    let lake_location = args.analytics.data_location(&lake);
    let dashboard_settings = args.dashboard.settings(&args.processor, args.data_dir.join("exports"));
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
    let served = serve(listener, router, stop).await;
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
pub async fn streams_apply(nats: crate::cli::NatsArgs, yes: bool) -> Result<()> {
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

pub async fn audit(nats: crate::cli::NatsArgs, allow_unfinished: bool) -> Result<()> {
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
