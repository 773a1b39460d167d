//! Chaos: two `orderstream processor` processes share the work while they
//! are SIGKILLed at random moments and restarted, and NATS itself is
//! restarted once mid-run. Afterwards every accepted order has reached
//! exactly one terminal state, every event id is in ORDER_EVENTS once, and
//! stock is conserved (`orderstream audit` logic).
//!
//! CI size by default; the soak is the same test, bigger:
//! `CHAOS_ORDERS=50000 CHAOS_KILLS=30 cargo test --release --test chaos -- --nocapture`,
//! or against an already built release binary with a debug harness (the
//! harness only publishes and audits): `ORDERSTREAM_BIN=target/release/orderstream`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use broker::NatsServer;
use broker::server::free_port;
use futures::StreamExt;
use tokio::process::{Child, Command};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const BIN: &str = env!("CARGO_BIN_EXE_orderstream");

/// The binary under test: this build's, or `ORDERSTREAM_BIN` for a soak of
/// a release build.
fn bin() -> String {
    std::env::var("ORDERSTREAM_BIN").unwrap_or_else(|_| BIN.to_string())
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn spawn(args: &[&str], nats_url: &str, listen: u16) -> std::io::Result<Child> {
    Command::new(bin())
        .args(args)
        .env("ORDERSTREAM_NATS_URL", nats_url)
        .env("ORDERSTREAM_LISTEN", format!("127.0.0.1:{listen}"))
        .env("ORDERSTREAM_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
}

struct ProcessorProc {
    name: String,
    child: Child,
}

impl ProcessorProc {
    fn start(name: &str, nats_url: &str) -> std::io::Result<ProcessorProc> {
        let port = free_port().map_err(std::io::Error::other)?;
        let child = spawn(
            &[
                "processor",
                "--instance",
                name,
                "--payment-failure-rate",
                "0.1",
                "--payment-latency-ms",
                "5",
                "--fulfilment-delays-ms",
                "5,5,5",
                "--snapshot-interval-ms",
                "500",
            ],
            nats_url,
            port,
        )?;
        Ok(ProcessorProc { name: name.to_string(), child })
    }
}

/// POSTs one order until it is accepted, retrying 503s, 504s and dropped
/// connections with the same Idempotency-Key, as a careful producer does
/// (a 504 may be stored: the API says to retry with the same key, which
/// returns that order; the audit then proves there is one of it).
async fn place(http: &reqwest::Client, base: &str, i: u64, products: u64) -> Result<(), String> {
    let body = serde_json::json!({
        "customer_id": format!("cust-{}", i % 500),
        "items": [
            {"product_id": format!("sku-{}", i % products), "quantity": 1 + i % 2, "unit_price": "12.50"},
            {"product_id": format!("sku-{}", (i * 7 + 3) % products), "quantity": 1, "unit_price": "12.50"}
        ]
    });
    let body = if (i * 7 + 3) % products == i % products {
        serde_json::json!({"customer_id": format!("cust-{}", i % 500), "items": [body["items"][0].clone()]})
    } else {
        body
    };
    for _ in 0..600 {
        match http
            .post(format!("{base}/api/orders"))
            .header("idempotency-key", format!("chaos-{i}"))
            .json(&body)
            .send()
            .await
        {
            Ok(res) if res.status() == 202 || res.status() == 200 => return Ok(()),
            Ok(res) if res.status() == 503 || res.status() == 504 => {}
            Ok(res) => return Err(format!("order {i}: unexpected {}", res.status())),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("order {i} never accepted"))
}

/// The audit once every one of `orders` orders has reached a terminal state.
async fn settled(
    js: &async_nats::jetstream::Context,
    orders: u64,
    limit: Duration,
) -> Result<processor::audit::AuditReport, Box<dyn std::error::Error + Send + Sync>> {
    let deadline = Instant::now() + limit;
    loop {
        let report = processor::audit::audit(js).await?;
        if report.orders as u64 == orders && report.unfinished.is_empty() && report.never_processed.is_empty() {
            return Ok(report);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not settled: {} orders, {} terminal, {} unfinished, {} never processed",
                report.orders,
                report.terminal,
                report.unfinished.len(),
                report.never_processed.len()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_processors_and_restarting_nats_loses_and_duplicates_nothing() -> TestResult {
    let orders = env_or("CHAOS_ORDERS", 3_000);
    let kills = env_or("CHAOS_KILLS", 6);
    let products = 40;
    let mut nats = NatsServer::start_temporary().await?;
    let url = nats.url();

    let catalog = tempfile::NamedTempFile::new()?;
    let mut csv = String::from("product_id,name,category,unit_price,stock\n");
    for p in 0..products {
        csv.push_str(&format!("sku-{p},Product {p},cat-{},12.50,{}\n", p % 5, 150 + p * 5));
    }
    std::fs::write(catalog.path(), csv)?;
    let import = Command::new(bin())
        .args(["catalog", "import"])
        .arg(catalog.path())
        .env("ORDERSTREAM_NATS_URL", &url)
        .output()
        .await?;
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));

    let ingest_port = free_port()?;
    let _ingest = spawn(&["ingest"], &url, ingest_port)?;
    let base = format!("http://127.0.0.1:{ingest_port}");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    for _ in 0..200 {
        if http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut procs = [ProcessorProc::start("p1", &url)?, ProcessorProc::start("p2", &url)?];

    let started = Instant::now();
    let producer = {
        let http = http.clone();
        let base = base.clone();
        tokio::spawn(async move {
            futures::stream::iter(0..orders)
                .map(|i| {
                    let http = &http;
                    let base = &base;
                    async move { place(http, base, i, products).await }
                })
                .buffer_unordered(32)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<Vec<()>, String>>()
        })
    };

    // Chaos while the orders flow: SIGKILL a random processor, restart it a
    // moment later; restart NATS once halfway through.
    let mut seed = 0x2545_F491_4F6C_DD1D_u64;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for kill in 0..kills {
        tokio::time::sleep(Duration::from_millis(300 + rand(900))).await;
        let victim = rand(2) as usize;
        procs[victim].child.kill().await?;
        let name = procs[victim].name.clone();
        if kill == kills / 2 {
            nats.restart().await?;
        }
        tokio::time::sleep(Duration::from_millis(100 + rand(600))).await;
        procs[victim] = ProcessorProc::start(&name, &url)?;
    }
    producer.await?.map_err(|e| e.to_string())?;
    let accepted_in = started.elapsed();

    // Let the survivors finish every saga, then audit.
    let client = broker::connect(&url, "chaos-audit").await?;
    let js = async_nats::jetstream::new(client);
    let report = settled(&js, orders, Duration::from_secs(180)).await?;
    println!(
        "chaos: {orders} orders, {kills} kills, 1 NATS restart; accepted in {accepted_in:?}, settled in {:?}; {:?}",
        started.elapsed(),
        report.by_status
    );
    assert_eq!(report.orders as u64, orders, "every order accepted once");
    assert!(report.awaiting_review.is_empty(), "the chaos load trips no fraud rule");
    assert_eq!(report.terminal as u64, orders, "every order reached a terminal state");
    assert!(report.is_clean(false), "{report:#?}");
    Ok(())
}

async fn ready_status(http: &reqwest::Client, base: &str) -> Option<(u16, serde_json::Value)> {
    let res = http.get(format!("{base}/readyz")).send().await.ok()?;
    let status = res.status().as_u16();
    Some((status, res.json().await.ok()?))
}

/// Exactly-once past JetStream's dedup window (made 1 s here): the engine
/// is SIGKILLed after publishing events it has not snapshotted and left
/// down for longer than the window, twice; ORDER_EVENTS fills up (its size
/// cap reached, as a full disk would) so the engine stands down until room
/// is made; the analytics job is SIGKILLed too. Afterwards the audit is
/// clean (no event twice, valid paths, stock conserved) and the analytics
/// tables hold every order and every event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_longer_than_the_dedup_window_and_a_full_stream_duplicate_nothing() -> TestResult {
    let orders = env_or("CHAOS_WINDOW_ORDERS", 1_200);
    let products = 30;
    let nats = NatsServer::start_temporary().await?;
    let url = nats.url();
    let run = |args: &[&str]| {
        let mut command = Command::new(bin());
        command.args(args).env("ORDERSTREAM_NATS_URL", &url).env("ORDERSTREAM_LOG", "warn");
        command.output()
    };
    // The topology with a one-second dedup window, made on purpose.
    let applied = run(&["streams", "apply", "--duplicate-window-secs", "1", "--yes"]).await?;
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    let catalog = tempfile::NamedTempFile::new()?;
    let mut csv = String::from("product_id,name,category,unit_price,stock\n");
    for p in 0..products {
        csv.push_str(&format!("sku-{p},Product {p},cat-{},12.50,{}\n", p % 5, 150 + p * 5));
    }
    std::fs::write(catalog.path(), csv)?;
    let imported = run(&["catalog", "import", catalog.path().to_str().ok_or("path")?]).await?;
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));

    let lake = tempfile::tempdir()?;
    let analytics = || {
        Command::new(bin())
            .args(["analytics", "--data"])
            .arg(lake.path())
            .env("ORDERSTREAM_NATS_URL", &url)
            .env("ORDERSTREAM_ANALYTICS_BATCH_WAIT_MS", "100")
            .env("ORDERSTREAM_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
    };
    // Snapshots only every minute: a kill re-applies everything since the start.
    let processor_port = free_port()?;
    let processor = || {
        spawn(
            &[
                "processor",
                "--instance",
                "solo",
                "--payment-failure-rate",
                "0.1",
                "--payment-latency-ms",
                "5",
                "--fulfilment-delays-ms",
                "5,5,5",
                "--snapshot-interval-ms",
                "60000",
            ],
            &url,
            processor_port,
        )
    };
    let ingest_port = free_port()?;
    let _ingest = spawn(&["ingest"], &url, ingest_port)?;
    let base = format!("http://127.0.0.1:{ingest_port}");
    let processor_base = format!("http://127.0.0.1:{processor_port}");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    for _ in 0..200 {
        if http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut engine = processor()?;
    let mut job = analytics()?;

    let producer = {
        let (http, base) = (http.clone(), base.clone());
        tokio::spawn(async move {
            let mut results = Vec::new();
            // Spread over about 20 s, so orders keep coming through every outage.
            let pause = Duration::from_millis(20_000 * 10 / orders.max(10));
            for chunk in (0..orders).collect::<Vec<_>>().chunks(10) {
                let placed = futures::future::join_all(chunk.iter().map(|i| place(&http, &base, *i, products))).await;
                results.extend(placed);
                tokio::time::sleep(pause).await;
            }
            results.into_iter().collect::<Result<Vec<()>, String>>()
        })
    };
    let client = broker::connect(&url, "chaos-window").await?;
    let js = async_nats::jetstream::new(client);

    // Two engine outages, each longer than the window (and the lease).
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        engine.kill().await?;
        tokio::time::sleep(Duration::from_millis(3_500)).await;
        engine = processor()?;
    }
    // The analytics job dies mid-batch and comes back after the window.
    job.kill().await?;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    job = analytics()?;

    // ORDER_EVENTS full: its cap at its current size, as a full disk.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let mut events = js.get_stream(broker::ORDER_EVENTS_STREAM).await?;
    let mut config = events.info().await?.config.clone();
    let size = events.info().await?.state.bytes as i64;
    config.max_bytes = size + 4_096;
    js.update_stream(config.clone()).await?;
    let started = Instant::now();
    let mut seen_failing = false;
    while started.elapsed() < Duration::from_secs(20) && !seen_failing {
        if let Some((503, body)) = ready_status(&http, &processor_base).await {
            seen_failing = body["message"].as_str().is_some_and(|m| m.contains("engine"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen_failing, "the engine standing down shows on /readyz");
    tokio::time::sleep(Duration::from_millis(2_000)).await; // past the window
    config.max_bytes = -1;
    js.update_stream(config).await?;

    producer.await?.map_err(|e| e.to_string())?;
    let report = settled(&js, orders, Duration::from_secs(240)).await?;
    assert!(report.is_clean(false), "{report:#?}");
    let skipped = http.get(format!("{processor_base}/metrics")).send().await?.text().await?;
    println!(
        "chaos past the window: {orders} orders, {} events; {:?}; engine after the outages: {}",
        report.events,
        report.by_status,
        skipped.lines().find(|l| l.starts_with("orderstream_processor_engine_resume_skipped ")).unwrap_or("?")
    );

    // The analytics tables: every order and every event exactly once.
    let events_in_stream = report.events as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = Command::new(bin())
            .args(["sql", "--format", "csv", "--data"])
            .arg(lake.path())
            .arg(
                "SELECT (SELECT count(*) FROM orders) AS o, (SELECT count(DISTINCT order_id) FROM orders) AS od, \
                 (SELECT count(*) FROM order_events) AS e, (SELECT count(DISTINCT event_id) FROM order_events) AS ed",
            )
            .output()
            .await?;
        let line = String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap_or("").to_string();
        let counts: Vec<u64> = line.split(',').filter_map(|n| n.parse().ok()).collect();
        if counts == [orders, orders, events_in_stream, events_in_stream] {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "analytics counts {line} (want {orders} orders, {events_in_stream} events, once each)"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(job);
    Ok(())
}
