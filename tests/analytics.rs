//! The analytics job as a real process against a real nats-server:
//! SIGKILLed mid-batch again and again and restarted, then checked for no
//! duplicate and no missing row; two replays of the same range compared
//! byte for byte; every table read by pyarrow and DuckDB; the notebook
//! executed headless on the output.

// Test helpers panic on failure, like the tests they serve.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use analytics::query::{QueryLimits, session};
use analytics::store::DataStore;
use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use async_nats::jetstream::{self, message::PublishMessage};
use broker::{NatsServer, TopologySettings, ensure_topology, kv_key};
use chrono::{TimeZone, Utc};
use schemas::{Currency, MinorUnits, NewOrder, Order, OrderEvent, OrderItem, OrderStatus, Product, TaxRate};
use tokio::process::{Child, Command};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_orderstream");
const ORDERS: usize = 4_000;
const PRODUCTS: [(&str, &str); 4] =
    [("kettle", "Kitchen"), ("mug", "Kitchen"), ("ball", "Sports"), ("tent", "Outdoors")];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Executes `notebooks/{name}.ipynb` headless over the lake at `data`,
/// keeping the executed copy as `target/test-artifacts/{saved_as}.ipynb`.
fn run_notebook(name: &str, saved_as: &str, data: &Path, failure: &str) {
    let artifacts = repo().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let output = std::process::Command::new(python())
        .arg(repo().join("scripts/run_notebook.py"))
        .arg(repo().join(format!("notebooks/{name}.ipynb")))
        .arg(artifacts.join(format!("{saved_as}.ipynb")))
        .env("ORDERSTREAM_DATA", data)
        .current_dir(repo().join("notebooks"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{failure}: {}", String::from_utf8_lossy(&output.stderr));
}

fn python() -> PathBuf {
    let venv = repo().join(".tools/venv/bin/python");
    assert!(venv.exists(), "run scripts/bootstrap: {} is missing", venv.display());
    venv
}

fn spawn_analytics(nats_url: &str, data: &Path) -> Child {
    Command::new(BIN)
        .args(["analytics", "--nats-url", nats_url, "--data", data.to_str().unwrap()])
        .args(["--batch-max", "250", "--batch-wait-ms", "20", "--state-every-secs", "1"])
        .args(["--compact-every-secs", "1", "--compact-min-files", "4", "--idle-after-ms", "600000"])
        .env("ORDERSTREAM_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn publish_history(js: &jetstream::Context) -> (Vec<Order>, usize) {
    let catalog = js.get_key_value(broker::CATALOG_BUCKET).await.unwrap();
    for (id, category) in PRODUCTS {
        let product = Product {
            product_id: id.into(),
            name: id.into(),
            category: category.into(),
            unit_price: MinorUnits(1),
            currency: Currency::USD,
        };
        catalog.put(kv_key(id), serde_json::to_vec(&product).unwrap().into()).await.unwrap();
    }
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 22, 0, 0).unwrap().timestamp_millis();
    let mut orders = Vec::new();
    let mut events = 0;
    for i in 0..ORDERS {
        // Three hours of orders, across midnight (two date partitions), a
        // little out of order.
        let jitter = if i % 7 == 0 { -3_000 } else { 0 };
        let at = start + (i as i64) * 2_700 + jitter;
        let items = (0..1 + i % 3)
            .map(|k| {
                let (id, _) = PRODUCTS[(i + k) % PRODUCTS.len()];
                OrderItem {
                    product_id: id.into(),
                    quantity: 1 + (k as u32),
                    unit_price: MinorUnits(199 + (i as i64 % 50) * 10),
                }
            })
            .collect();
        let new = NewOrder {
            customer_id: format!("c-{}", i % 300),
            items,
            currency: Currency::USD,
            shipping_address: None,
            payment_method: None,
            client_ip: None,
            placed_at: Some(Utc.timestamp_millis_opt(at).unwrap()),
        };
        let order = Order::accept(new, Uuid::now_v7(), Utc.timestamp_millis_opt(at + 50).unwrap(), TaxRate(800), None);
        let message = PublishMessage::build()
            .payload(serde_json::to_vec(&order).unwrap().into())
            .message_id(order.order_id.to_string());
        js.send_publish(broker::order_submitted_subject(order.order_id), message).await.unwrap().await.unwrap();
        // Every tenth order is flagged by the fraud screen and approved.
        let path: &[OrderStatus] = if i % 10 == 0 {
            &[OrderStatus::Flagged, OrderStatus::Reserved, OrderStatus::Confirmed]
        } else {
            &[OrderStatus::Reserved, OrderStatus::Confirmed]
        };
        let mut from = OrderStatus::Pending;
        for (step, to) in path.iter().copied().enumerate() {
            let when = Utc.timestamp_millis_opt(at + 100 * (step as i64 + 1)).unwrap();
            let mut event =
                OrderEvent::status_changed(order.order_id, Some(from), to, None, when).unwrap().for_order(&order);
            if let schemas::EventPayload::StatusChanged { risk_score, risk_reasons, .. } = &mut event.payload
                && to == OrderStatus::Flagged
            {
                *risk_score = Some(80);
                risk_reasons.push("velocity".into());
            }
            let message = PublishMessage::build()
                .payload(serde_json::to_vec(&event).unwrap().into())
                .message_id(event.event_id.clone());
            let subject = broker::order_event_subject(order.order_id, event.subject_suffix());
            js.send_publish(subject, message).await.unwrap().await.unwrap();
            from = to;
            events += 1;
        }
        orders.push(order);
    }
    (orders, events)
}

async fn committed(store: &DataStore, stream: &str) -> u64 {
    analytics::checkpoint::load(store, stream).await.ok().flatten().map_or(0, |c| c.next_seq.saturating_sub(1))
}

async fn count(store: &DataStore, sql: &str) -> Vec<i64> {
    let (ctx, _) = session(store, &QueryLimits::default()).await.unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    (0..batches[0].num_columns()).map(|c| batches[0].column(c).as_primitive::<Int64Type>().value(0)).collect()
}

fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                let relative = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_batch_the_job_loses_and_duplicates_nothing_and_replays_are_identical() {
    let mut server = NatsServer::start_temporary().await.unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = jetstream::new(client);
    ensure_topology(&js, &TopologySettings::default()).await.unwrap();
    let (orders, events) = publish_history(&js).await;
    let items: usize = orders.iter().map(|o| o.items.len()).sum();

    let work = tempfile::tempdir().unwrap();
    let live = work.path().join("live");
    let store = DataStore::open(live.to_str().unwrap()).unwrap();
    let mut kills = 0;
    let mut child = spawn_analytics(&server.url(), &live);
    loop {
        tokio::time::sleep(Duration::from_millis(250 + (kills * 137) % 400)).await;
        let done = committed(&store, "orders").await >= ORDERS as u64
            && committed(&store, "order_events").await >= events as u64;
        if done {
            break;
        }
        if kills < 8 {
            child.start_kill().unwrap(); // SIGKILL, whatever it is doing
            child.wait().await.unwrap();
            kills += 1;
            child = spawn_analytics(&server.url(), &live);
        }
    }
    // A graceful stop snapshots the pipelines; then the tables are final.
    let pid = child.id().unwrap();
    Command::new("kill").args(["-TERM", &pid.to_string()]).status().await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), child.wait()).await.unwrap().unwrap();
    assert!(kills >= 3, "the job finished before it could be killed enough ({kills})");

    let [rows, distinct] = count(&store, "SELECT count(*), count(DISTINCT order_id) FROM orders").await[..] else {
        panic!()
    };
    assert_eq!((rows, distinct), (ORDERS as i64, ORDERS as i64), "every order exactly once after {kills} kills");
    let [rows, distinct] =
        count(&store, "SELECT count(*), count(DISTINCT order_id || ':' || line_no) FROM order_items").await[..]
    else {
        panic!()
    };
    assert_eq!((rows, distinct), (items as i64, items as i64));
    let [rows, distinct] = count(&store, "SELECT count(*), count(DISTINCT event_id) FROM order_events").await[..]
    else {
        panic!()
    };
    assert_eq!((rows, distinct), (events as i64, events as i64), "every event id exactly once");
    // Every closed hour's revenue per category (latest version) equals the
    // sum over the items, and no window version appears twice.
    let [windows, mismatches, duplicates] = count(
        &store,
        "WITH latest AS (
            SELECT window_start, category, revenue FROM revenue_by_category_1h r
            WHERE window_version = (SELECT max(window_version) FROM revenue_by_category_1h l
                                    WHERE l.window_start = r.window_start AND l.category = r.category)),
         raw AS (SELECT date_trunc('hour', placed_at) AS window_start, category, sum(line_total) AS revenue
                 FROM order_items GROUP BY 1, 2)
         SELECT count(*),
                count(*) FILTER (WHERE latest.revenue <> raw.revenue),
                (SELECT count(*) - count(DISTINCT (window_start, category, window_version)) FROM revenue_by_category_1h)
         FROM latest JOIN raw USING (window_start, category)",
    )
    .await[..] else {
        panic!()
    };
    assert!(windows >= 6, "two closed hours × three categories at least, got {windows}");
    assert_eq!((mismatches, duplicates), (0, 0));

    // Two replays of one range: the same files, byte for byte.
    let (a, b) = (work.path().join("replay-a"), work.path().join("replay-b"));
    for out in [&a, &b] {
        let status = Command::new(BIN)
            .args(["replay", "--nats-url", &server.url(), "--from-seq", "1", "--to-seq", "6000", "--batch-size", "700"])
            .args(["--no-progress", "--output", out.to_str().unwrap()])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }
    // The fraud review pipeline keeps exactly the events into and out of
    // review (a filter, no aggregate; a list column), each once.
    let replay_store = DataStore::open(a.to_str().unwrap()).unwrap();
    let [reviews, expected] = count(
        &replay_store,
        "SELECT (SELECT count(*) FROM fraud_reviews_1d) AS reviews, \
                (SELECT count(*) FROM order_events WHERE status = 'flagged' OR from_status = 'flagged') AS expected",
    )
    .await[..] else {
        panic!()
    };
    assert!(expected > 100, "flagged and approved orders in the replayed range: {expected}");
    assert_eq!(reviews, expected);
    let (fa, fb) = (files(&a), files(&b));
    assert!(fa.keys().any(|k| k.starts_with("revenue_to_date_daily/")), "{:?}", fa.keys().collect::<Vec<_>>());
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>(), "the same file names");
    for (name, bytes) in &fa {
        assert!(fb[name] == *bytes, "{name} differs between two replays");
    }
    // The benchmark's engine-only path (`bench window`, fed the items the
    // replay wrote) computes exactly what the replay did, in every run.
    let bench = work.path().join("bench-window");
    let status = Command::new(BIN)
        .args(["bench", "window", "--runs", "2", "--input", a.to_str().unwrap(), "--output", bench.to_str().unwrap()])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let window_files = |all: &BTreeMap<String, Vec<u8>>| -> BTreeMap<String, Vec<u8>> {
        all.iter()
            .filter(|(k, _)| k.starts_with("revenue_by_category_1m/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let replayed = window_files(&fa);
    assert!(!replayed.is_empty());
    for run in ["run-1", "run-2"] {
        let benched = window_files(&files(&bench.join(run)));
        assert_eq!(replayed.keys().collect::<Vec<_>>(), benched.keys().collect::<Vec<_>>(), "{run}");
        for (name, bytes) in &replayed {
            assert!(benched[name] == *bytes, "{name} differs between the replay and bench window's {run}");
        }
    }

    // Readers that are not ours read every table; the notebook runs on it.
    let output =
        std::process::Command::new(python()).arg(repo().join("scripts/read_tables.py")).arg(&live).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let counts: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(counts["orders"]["duckdb"], ORDERS);
    assert_eq!(counts["order_events"]["pyarrow"], events);
    for table in [
        "order_items",
        "revenue_by_category_1m",
        "orders_by_status_1h",
        "revenue_to_date_daily",
        "revenue_hopping_1h_every_5m",
    ] {
        assert!(counts[table]["duckdb"].as_u64().unwrap_or(0) > 0, "{table}: {counts}");
    }
    // Live, every customer is still mid-session (orders 13.5 min apart, a
    // 30 min gap); a replay closes them at the end of its range.
    let output =
        std::process::Command::new(python()).arg(repo().join("scripts/read_tables.py")).arg(&a).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let replayed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(replayed["customer_sessions"]["duckdb"], 300, "{replayed}");
    run_notebook("revenue_by_window", "revenue_by_window.executed", &live, "notebook failed");
    server.stop().await.unwrap();
}

/// One column of strings a query returns, in its order.
async fn strings(store: &DataStore, sql: &str) -> Vec<String> {
    let (ctx, _) = session(store, &QueryLimits::default()).await.unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out = Vec::new();
    for batch in batches {
        let column = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        out.extend(column.as_string::<i32>().iter().map(|s| s.unwrap_or_default().to_string()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_seed_with_its_events_replays_to_the_seeds_own_rows() {
    let mut server = NatsServer::start_temporary().await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let seed = |publish: bool, output: &Path| {
        let mut command = Command::new(BIN);
        command
            .args(["seed", "--orders", "600", "--days", "3", "--end", "2026-11-21", "--seed", "7", "--no-progress"])
            .args(["--output", output.to_str().unwrap()])
            .env("ORDERSTREAM_LOG", "warn");
        if publish {
            command.args(["--publish", "--with-events", "--rate", "1000000", "--nats-url", &server.url()]);
            command.arg("--overwrite");
        }
        command.output()
    };
    let (parquet, side, replayed) = (work.path().join("parquet"), work.path().join("side"), work.path().join("replay"));
    assert!(seed(false, &parquet).await.unwrap().status.success());
    // A second seed into the same tables is refused unless asked for.
    let again = seed(false, &parquet).await.unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--append"), "{}", String::from_utf8_lossy(&again.stderr));
    // Twice: every message carries its dedup id, so the second adds nothing.
    for _ in 0..2 {
        assert!(seed(true, &side).await.unwrap().status.success());
    }
    let status = Command::new(BIN)
        .args(["replay", "--nats-url", &server.url(), "--from-seq", "1", "--no-progress"])
        .args(["--output", replayed.to_str().unwrap()])
        .env("ORDERSTREAM_LOG", "warn")
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let (seeded, replayed) =
        (DataStore::open(parquet.to_str().unwrap()).unwrap(), DataStore::open(replayed.to_str().unwrap()).unwrap());

    // The same orders, items (by category) and status events, each once.
    for sql in [
        "SELECT count(*), count(DISTINCT order_id), CAST(sum(total) * 10000 AS BIGINT) FROM orders",
        "SELECT count(*), CAST(sum(line_total) * 10000 AS BIGINT), count(DISTINCT category) FROM order_items",
        "SELECT count(*), count(DISTINCT event_id) FROM order_events",
    ] {
        let (a, b) = (count(&seeded, sql).await, count(&replayed, sql).await);
        assert_eq!(a, b, "{sql}");
        assert!(a[0] > 0, "{sql}: nothing seeded");
    }
    let ids = "SELECT event_id FROM order_events ORDER BY event_id";
    assert_eq!(strings(&seeded, ids).await, strings(&replayed, ids).await);
    // Published in event-time order: the stream's order is the events' order.
    let (ctx, _) = session(&replayed, &QueryLimits::default()).await.unwrap();
    let sql = "SELECT CAST(occurred_at AS BIGINT) FROM order_events ORDER BY stream_seq";
    let times: Vec<i64> = ctx
        .sql(sql)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap()
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert!(times.len() > 600);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "status events out of event-time order in ORDER_EVENTS");

    // The shipped notebook runs on seeded history as it does on the live job's.
    run_notebook("revenue_by_window", "revenue_by_window.seeded", &parquet, "notebook failed on seeded data");
    server.stop().await.unwrap();
}

/// The customers notebook reads the customers run's tables with DuckDB and
/// checks each figure against the base tables (it raises on a mismatch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customers_notebook_runs_against_a_customers_run() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let store = DataStore::open(&lake.to_string_lossy()).unwrap();
    let end = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
    let config = seed::SeedConfig::new(11, 4_000, 120, end);
    let screen = seed::SeedScreen::builtin().unwrap();
    seed::seed_to_parquet(&store, &config, screen, &[], 2, false).await.unwrap();
    let report = customers::build(&store, &customers::CustomersOptions::default()).await.unwrap();
    assert_eq!(report.as_of, Some(end));
    run_notebook("customers_and_baskets", "customers_and_baskets.executed", &lake, "notebook failed");
}
