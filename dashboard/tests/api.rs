//! The dashboard API over a seeded lake and a real nats-server: the SQL
//! sandbox refuses each class with its reason, formats follow `Accept`,
//! limits answer 4xx/503 JSON, an export of a whole table streams within a
//! small memory pool, and the admin search pages through every order
//! exactly once, in order, whatever the filter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use analytics::query::QueryLimits;
use analytics::store::DataStore;
use chrono::NaiveDate;
use dashboard::{Dashboard, DashboardSettings, Lake};
use seed::{SeedConfig, seed_to_parquet};
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Served {
    base: String,
    http: reqwest::Client,
    _nats: broker::NatsServer,
    _dir: tempfile::TempDir,
    lake_dir: String,
    _refresh: tokio::sync::watch::Sender<bool>,
}

const END: &str = "2026-11-21";

async fn serve(
    orders: u64,
    days: u32,
    settings: impl FnOnce(&mut DashboardSettings),
    memory_mib: usize,
) -> Result<Served, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let lake_dir = dir.path().join("lake").to_string_lossy().into_owned();
    let store = DataStore::open(&lake_dir)?;
    let end = NaiveDate::parse_from_str(END, "%Y-%m-%d")?;
    let pipelines: Vec<_> = analytics::builtin::builtin_pipelines()?.into_iter().map(std::sync::Arc::new).collect();
    seed_to_parquet(&store, &SeedConfig::new(7, orders, days, end), seed::SeedScreen::builtin()?, &pipelines, 2, false)
        .await?;
    write_late_row_fixture(&store, "revenue_by_category_1d", "order_items", "late-fixture:1").await?;
    let nats = broker::NatsServer::start_temporary().await?;
    let client = broker::connect(&nats.url(), "dashboard-test").await?;
    let js = async_nats::jetstream::new(client.clone());
    broker::ensure_topology(&js, &broker::TopologySettings::default()).await?;
    let lake = Lake::open(&lake_dir, &QueryLimits { memory_bytes: memory_mib << 20, target_partitions: 2 }).await?;
    let mut s = DashboardSettings { export_dir: dir.path().join("exports"), ..DashboardSettings::default() };
    settings(&mut s);
    let live = dashboard::live::Live::new();
    let (refresh, stop) = tokio::sync::watch::channel(false);
    dashboard::spawn_refresh(lake.clone(), stop);
    let state = Dashboard::new(lake, client, live, s);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, dashboard::routes(state)).await });
    Ok(Served { base, http: reqwest::Client::new(), _nats: nats, _dir: dir, lake_dir, _refresh: refresh })
}

/// One row of 2026-11-20 that reached `pipeline` (over `source`) too late:
/// its window's rows lack it, so the dashboard must read that day from the
/// source instead of the pipeline's output.
async fn write_late_row_fixture(store: &DataStore, pipeline: &str, source: &str, record: &str) -> TestResult {
    use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
    use schemas::tables::Table;
    let micros = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros();
    let ts = |s: &str| Arc::new(TimestampMicrosecondArray::from(vec![micros(s)]).with_timezone("UTC")) as ArrayRef;
    let rows = arrow::array::RecordBatch::try_new(
        Table::LateEvents.schema(),
        vec![
            Arc::new(StringArray::from(vec![source])),
            Arc::new(StringArray::from(vec![record])),
            ts("2026-11-20T12:00:00Z"),
            ts("2026-11-20T00:00:00Z"),
            ts("2026-11-21T00:00:00Z"),
            ts("2026-11-21T07:00:00Z"),
            Arc::new(Int64Array::from(vec![0])),
        ],
    )?;
    let bytes =
        analytics::parquet_out::encode(&rows.schema(), &[rows], &analytics::layout::table_layout(Table::LateEvents))?;
    let path = format!("late_events/pipeline={pipeline}/date=2026-11-20/part-fixture.parquet");
    store.put(&store.path(&path), bytes).await?;
    Ok(())
}

/// A status event flagging a new order at `at` with risk score `risk`
/// (never reviewed), in the events alone; returns the order and the
/// event's id.
async fn write_flag_event(
    store: &DataStore,
    at: &str,
    risk: u8,
) -> Result<(uuid::Uuid, String), Box<dyn std::error::Error>> {
    use schemas::{OrderEvent, OrderStatus};
    let order_id = uuid::Uuid::now_v7();
    let at = chrono::DateTime::parse_from_rfc3339(at)?.with_timezone(&chrono::Utc);
    let mut event = OrderEvent::status_changed(order_id, Some(OrderStatus::Pending), OrderStatus::Flagged, None, at)?
        .for_customer("fixture-customer");
    if let schemas::EventPayload::StatusChanged { risk_score, risk_reasons, .. } = &mut event.payload {
        *risk_score = Some(risk);
        risk_reasons.push("fixture".into());
    }
    write_events(store, at.date_naive(), &format!("part-flag-{order_id}"), &[(1, event.clone())]).await?;
    Ok((order_id, event.event_id))
}

/// `events` (with their stream sequences) as one `order_events` file of
/// `date` named `name`.
async fn write_events(
    store: &DataStore,
    date: NaiveDate,
    name: &str,
    events: &[(u64, schemas::OrderEvent)],
) -> Result<(), Box<dyn std::error::Error>> {
    use schemas::tables::Table;
    let rows = analytics::rows::order_events_batch(events)?;
    let bytes =
        analytics::parquet_out::encode(&rows.schema(), &[rows], &analytics::layout::table_layout(Table::OrderEvents))?;
    store.put(&store.path(&format!("order_events/date={date}/{name}.parquet")), bytes).await?;
    Ok(())
}

/// A restatement of 2026-11-19's `fraud_reviews_1d` window, as a late
/// event within the lateness makes: version 2 holds the seeded rows plus a
/// flag that came late (written to the events too).
async fn write_restated_review_day(store: &DataStore) -> Result<uuid::Uuid, Box<dyn std::error::Error>> {
    let (order_id, _) = write_flag_event(store, "2026-11-19T22:00:00Z", 100).await?;
    let (ctx, _) = analytics::query::session(store, &QueryLimits::default()).await?;
    let meta = "CAST(2 AS INT) AS window_version, TIMESTAMP '2026-11-20T09:00:00Z' AS watermark_at_emit, \
                CAST(1 AS BIGINT) AS late_count, true AS is_final";
    let columns = "order_id, customer_id, status, from_status, risk_score, risk_reasons, order_total, currency, occurred_at, stream_seq";
    let sql = format!(
        "SELECT window_start, window_end, {columns}, {meta} FROM fraud_reviews_1d WHERE date = '2026-11-19' \
         UNION ALL SELECT TIMESTAMP '2026-11-19T00:00:00Z', TIMESTAMP '2026-11-20T00:00:00Z', {columns}, {meta} \
         FROM order_events WHERE date = '2026-11-19' AND order_id = '{order_id}'"
    );
    let rows = analytics::query::run(&ctx, &sql).await?;
    assert!(rows.iter().map(|b| b.num_rows()).sum::<usize>() > 1, "the seeded day and the late flag");
    let layout = analytics::parquet_out::FileLayout::new(&["window_start"], &[]);
    let bytes = analytics::parquet_out::encode(&rows[0].schema(), &rows, &layout)?;
    store.put(&store.path("fraud_reviews_1d/date=2026-11-19/part-restated.parquet"), bytes).await?;
    Ok(order_id)
}

/// A money value from JSON (a decimal string or a number).
/// The `order_id`s of a JSON array of rows, in order.
fn order_ids(rows: &Value) -> Vec<String> {
    rows.as_array().unwrap().iter().map(|r| r["order_id"].as_str().unwrap().to_string()).collect()
}

fn money(v: &Value) -> f64 {
    v.as_str().map(|s| s.parse::<f64>().unwrap()).or(v.as_f64()).unwrap()
}

impl Served {
    async fn sql(&self, sql: &str, accept: &str) -> Result<reqwest::Response, reqwest::Error> {
        self.http
            .post(format!("{}/api/sql", self.base))
            .header("accept", accept)
            .json(&json!({"sql": sql}))
            .send()
            .await
    }

    async fn get(&self, path: &str) -> Result<(u16, Value), Box<dyn std::error::Error>> {
        let res = self.http.get(format!("{}{path}", self.base)).send().await?;
        let status = res.status().as_u16();
        Ok((status, res.json().await?))
    }
}

#[tokio::test]
async fn the_sql_sandbox_refuses_with_reasons_and_answers_in_every_format() -> TestResult {
    let s = serve(3_000, 5, |s| s.row_limit = 1_000, 256).await?;
    for (sql, code) in [
        ("DROP TABLE orders", "read_only"),
        ("INSERT INTO orders SELECT * FROM orders", "read_only"),
        ("COPY orders TO '/tmp/stolen.parquet'", "read_only"),
        ("CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc'", "read_only"),
        ("SET datafusion.execution.target_partitions = 64", "read_only"),
        ("SELECT 1; SELECT 2", "one_statement"),
        ("SELECT * FROM 'file:///etc/passwd'", "unknown_table"),
        ("SELECT * FROM not_a_table", "unknown_table"),
        ("SELECT * FROM generate_series(1, 10)", "table_function"),
        ("SELEKT 1", "sql_syntax"),
        ("SELECT no_such_column FROM orders", "sql_invalid"),
    ] {
        let res = s.sql(sql, "application/json").await?;
        assert_eq!(res.status(), 400, "{sql}");
        let body: Value = res.json().await?;
        assert_eq!(body["error"], code, "{sql}: {body}");
        assert_eq!(body["field"], "sql");
        assert!(!body["message"].as_str().unwrap_or("").is_empty());
    }
    assert!(!std::path::Path::new("/tmp/stolen.parquet").exists());

    let res = s.sql("SELECT order_id, total FROM orders ORDER BY order_id", "application/json").await?;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await?;
    assert_eq!(body["row_count"], 1_000);
    assert_eq!(body["truncated"], true);
    assert_eq!(body["rows"].as_array().map(Vec::len), Some(1_000));

    let csv = s.sql("SELECT count(*) AS n FROM orders", "text/csv").await?;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await?;
    assert_eq!(text.lines().next(), Some("n"));
    let total: usize = text.lines().nth(1).unwrap().parse()?;
    assert_eq!(total, 3_000);

    let arrow = s.sql("SELECT order_id FROM orders LIMIT 10", "application/vnd.apache.arrow.stream").await?;
    let bytes = arrow.bytes().await?;
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes.to_vec()), None)?;
    assert_eq!(reader.map(|b| b.unwrap().num_rows()).sum::<usize>(), 10);

    let parquet = s.sql("SELECT order_id FROM orders LIMIT 7", "application/vnd.apache.parquet").await?;
    let bytes = parquet.bytes().await?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    assert_eq!(reader.map(|b| b.unwrap().num_rows()).sum::<usize>(), 7);

    let res = s.sql("SELECT 1", "image/png").await?;
    assert_eq!(res.status(), 406);
    let res =
        s.http.post(format!("{}/api/sql", s.base)).header("content-type", "text/plain").body("SELECT 1").send().await?;
    assert_eq!(res.status(), 415);
    let res = s.http.post(format!("{}/api/sql", s.base)).json(&json!({"query": "SELECT 1"})).send().await?;
    assert_eq!(res.status(), 422);
    let (status, tables) = s.get("/api/sql/tables").await?;
    assert_eq!(status, 200);
    assert!(tables["tables"].as_array().unwrap().iter().any(|t| t["name"] == "order_items"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_query_stops_at_the_timeout_and_a_whole_table_streams_in_a_small_pool() -> TestResult {
    let s = serve(70_000, 10, |s| s.query_timeout = Duration::from_millis(700), 16).await?;
    let started = std::time::Instant::now();
    let res = s
        .sql(
            "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t",
            "application/json",
        )
        .await?;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await?;
    assert_eq!(body["error"], "query_timeout", "{body}");
    assert!(started.elapsed() < Duration::from_secs(5), "stopped at the limit, not at the end");

    // The stopped query frees the query runtime: the next one answers.
    let stopped = std::time::Instant::now();
    let mut expected = None;
    while expected.is_none() && stopped.elapsed() < Duration::from_secs(30) {
        let res = s.sql("SELECT count(*) AS n FROM order_items", "text/csv").await?;
        let text = res.text().await?;
        expected = text.lines().nth(1).and_then(|n| n.parse::<usize>().ok());
    }
    let expected = expected.ok_or("the runaway query kept the query runtime busy")?;
    eprintln!("the next query answered {:?} after the timeout", stopped.elapsed());
    let res = s
        .http
        .post(format!("{}/api/sql", s.base))
        .header("accept", "text/csv")
        .json(&json!({"sql": "SELECT * FROM order_items", "export": true}))
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let text = res.text().await?;
    assert!(text.len() > 16 << 20, "the export ({} bytes) is larger than the pool", text.len());
    assert_eq!(text.lines().count(), expected + 1, "every row and the header");
    let res = s
        .http
        .post(format!("{}/api/sql", s.base))
        .json(&json!({"sql": "SELECT * FROM order_items", "export": true}))
        .send()
        .await?;
    assert_eq!(res.status(), 400, "an export is CSV, Arrow or Parquet");
    let _ = &s.lake_dir;
    Ok(())
}

#[tokio::test]
async fn admin_search_pages_through_every_match_once_and_in_order() -> TestResult {
    let s = serve(6_000, 12, |_| {}, 256).await?;
    let ids_of = |sql_rows: &Value| -> Vec<String> {
        sql_rows["rows"].as_array().unwrap().iter().map(|r| r["order_id"].as_str().unwrap().to_string()).collect()
    };
    for filter in ["", "&status=delivered", "&status=flagged", "&min_total=50&max_total=120", "&sort=placed_at"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut path = format!("/api/admin/orders?page_size=250{filter}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let (status, page) = s.get(&path).await?;
            assert_eq!(status, 200, "{page}");
            for row in page["orders"].as_array().unwrap() {
                let at = chrono::DateTime::parse_from_rfc3339(row["placed_at"].as_str().unwrap()).unwrap();
                seen.push((at, row["order_id"].as_str().unwrap().to_string()));
                if let Some(st) = filter.strip_prefix("&status=") {
                    assert_eq!(row["status"], st);
                }
            }
            pages += 1;
            cursor = page["next_cursor"].as_str().map(String::from);
            if cursor.is_none() {
                break;
            }
        }
        // An independent answer: the same filter in SQL, latest status per order.
        let condition = match filter {
            "&status=delivered" => "s.status = 'delivered'",
            "&status=flagged" => "s.status = 'flagged'",
            "&min_total=50&max_total=120" => "o.total >= 50 AND o.total <= 120",
            _ => "true",
        };
        let sql = format!(
            "SELECT o.order_id FROM orders o LEFT JOIN (SELECT order_id, last_value(status ORDER BY occurred_at, stream_seq) AS status \
             FROM order_events WHERE status IS NOT NULL GROUP BY order_id) s ON s.order_id = o.order_id WHERE {condition}"
        );
        let res = s.http.post(format!("{}/api/sql", s.base)).json(&json!({"sql": sql})).send().await?;
        let expected: HashSet<String> = ids_of(&res.json().await?).into_iter().collect();
        let got: HashSet<String> = seen.iter().map(|(_, id)| id.clone()).collect();
        assert_eq!(got.len(), seen.len(), "{filter}: an order appeared twice");
        assert_eq!(got, expected, "{filter}: every match, nothing else");
        let mut sorted = seen.clone();
        sorted.sort();
        if filter != "&sort=placed_at" {
            sorted.reverse();
        }
        assert_eq!(seen, sorted, "{filter}: keyset order");
        assert!(pages >= 1);
    }
    let (status, body) = s.get("/api/admin/orders?status=lost").await?;
    assert_eq!((status, body["field"].as_str()), (400, Some("status")));
    let (status, body) = s.get("/api/admin/orders?cursor=zz").await?;
    assert_eq!((status, body["field"].as_str()), (400, Some("cursor")));
    let (status, body) = s.get("/api/admin/orders?customer_id=x'%20OR%201=1").await?;
    assert_eq!((status, body["field"].as_str()), (400, Some("customer_id")));

    // One customer's orders, and an export of a filter.
    let (_, first) = s.get("/api/admin/orders?page_size=1").await?;
    let customer = first["orders"][0]["customer_id"].as_str().unwrap().to_string();
    let (_, theirs) = s.get(&format!("/api/admin/orders?customer_id={customer}")).await?;
    assert!(theirs["orders"].as_array().unwrap().iter().all(|o| o["customer_id"] == customer.as_str()));
    let res = s.http.get(format!("{}/api/admin/orders/export?status=delivered", s.base)).send().await?;
    assert_eq!(res.headers()["x-truncated"], "false");
    let rows: usize = res.headers()["x-row-count"].to_str()?.parse()?;
    let csv = res.text().await?;
    assert_eq!(csv.lines().count(), rows + 1);
    assert!(csv.lines().skip(1).all(|l| l.ends_with(",delivered")));

    let res = s.http.post(format!("{}/api/admin/exports", s.base)).json(&json!({"status": "delivered"})).send().await?;
    assert_eq!(res.status(), 202);
    let job: Value = res.json().await?;
    let mut done = Value::Null;
    for _ in 0..200 {
        let (_, st) = s.get(job["status_url"].as_str().unwrap()).await?;
        if st["status"] != "running" {
            done = st;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["rows"].as_u64(), Some(rows as u64));
    let file = s.http.get(format!("{}{}", s.base, done["download_url"].as_str().unwrap())).send().await?.text().await?;
    assert_eq!(file, csv, "the background export and the immediate one agree");
    Ok(())
}

/// Orders of `customer` placed at `at`, written as one `orders` file at
/// `name`, with a status event per order moving it to `flagged`.
async fn write_customer_orders(
    store: &DataStore,
    customer: &str,
    at: &str,
    name: &str,
    count: usize,
) -> Result<Vec<uuid::Uuid>, Box<dyn std::error::Error>> {
    use schemas::{Currency, MinorUnits, Order, OrderEvent, OrderItem, OrderStatus, tables::Table};
    let at = chrono::DateTime::parse_from_rfc3339(at)?.with_timezone(&chrono::Utc);
    let mut orders = Vec::new();
    let mut events = Vec::new();
    for n in 0..count {
        let order_id = uuid::Uuid::now_v7();
        let item = OrderItem { product_id: "fixture-product".into(), quantity: 1, unit_price: MinorUnits(1_000) };
        orders.push((
            n as u64 + 1,
            Order {
                schema_version: schemas::order::ORDER_SCHEMA_VERSION,
                order_id,
                customer_id: customer.to_string(),
                items: vec![item],
                currency: Currency::USD,
                subtotal: MinorUnits(1_000),
                tax: MinorUnits(0),
                total: MinorUnits(1_000),
                shipping_address: None,
                payment_method: None,
                client_ip: None,
                placed_at: at,
                received_at: at,
                idempotency_key: None,
                producer: None,
                tax_rate: None,
            },
        ));
        let event = OrderEvent::status_changed(order_id, Some(OrderStatus::Pending), OrderStatus::Flagged, None, at)?
            .for_customer(customer);
        events.push((n as u64 + 1, event));
    }
    let date = at.date_naive();
    let rows = analytics::rows::orders_batch(&orders)?;
    let bytes =
        analytics::parquet_out::encode(&rows.schema(), &[rows], &analytics::layout::table_layout(Table::Orders))?;
    store.put(&store.path(&format!("orders/date={date}/{name}.parquet")), bytes).await?;
    write_events(store, date, name, &events).await?;
    Ok(orders.iter().map(|(_, o)| o.order_id).collect())
}

#[tokio::test]
async fn id_searches_find_every_order_of_a_customer_with_its_latest_status() -> TestResult {
    use schemas::{CancelReason, OrderEvent, OrderStatus};
    let s = serve(4_000, 12, |_| {}, 256).await?;
    let store = DataStore::open(&s.lake_dir)?;
    let sql_rows = |sql: String| {
        let s = &s;
        async move {
            let res = s.sql(&sql, "application/json").await?;
            let body: Value = res.json().await?;
            Ok::<Vec<Value>, Box<dyn std::error::Error>>(body["rows"].as_array().cloned().unwrap_or_default())
        }
    };
    let pairs = |rows: &[Value]| -> HashSet<(String, String)> {
        rows.iter()
            .map(|r| (r["order_id"].as_str().unwrap().to_string(), r["status"].as_str().unwrap().to_string()))
            .collect()
    };
    let expected = |condition: String| {
        sql_rows(format!(
            "SELECT o.order_id, coalesce(s.status, 'pending') AS status FROM orders o LEFT JOIN \
             (SELECT order_id, last_value(status ORDER BY occurred_at, stream_seq) AS status FROM order_events \
             WHERE status IS NOT NULL GROUP BY order_id) s ON s.order_id = o.order_id WHERE {condition}"
        ))
    };
    let customers = sql_rows(
        "SELECT customer_id FROM orders GROUP BY customer_id HAVING count(DISTINCT date) BETWEEN 2 AND 6 \
         ORDER BY count(*) DESC, customer_id LIMIT 1"
            .into(),
    )
    .await?;
    let customer = customers[0]["customer_id"].as_str().unwrap().to_string();
    let search = |query: String| {
        let s = &s;
        async move {
            let (status, page) = s.get(&format!("/api/admin/orders?page_size=500&{query}")).await?;
            assert_eq!(status, 200, "{page}");
            Ok::<Vec<Value>, Box<dyn std::error::Error>>(page["orders"].as_array().cloned().unwrap())
        }
    };

    // Every order of the customer, each with its latest status, over days
    // the bloom index keeps only where the customer's orders are.
    let want = pairs(&expected(format!("o.customer_id = '{customer}'")).await?);
    assert!(want.len() >= 2, "{want:?}");
    let got = search(format!("customer_id={customer}")).await?;
    assert_eq!(got.len(), want.len(), "each order once");
    assert_eq!(pairs(&got), want);
    assert_eq!(pairs(&search(format!("q={customer}")).await?), want, "q finds a customer");
    let (one, status) = want.iter().next().unwrap().clone();
    assert_eq!(
        pairs(&search(format!("q={one}")).await?),
        HashSet::from([(one.clone(), status.clone())]),
        "q finds an order"
    );
    let with_status: HashSet<_> = want.iter().filter(|(_, st)| *st == status).cloned().collect();
    assert_eq!(pairs(&search(format!("customer_id={customer}&status={status}")).await?), with_status);
    assert!(search(format!("customer_id={}", uuid::Uuid::now_v7())).await?.is_empty(), "nobody's orders");

    // New files are seen at once, replaced ones read again: an order on a
    // day past the seeded ones (only these fixture files are on it), then
    // that file replaced by one holding two other orders of the customer.
    let at = "2026-12-15T12:00:00Z";
    let added = write_customer_orders(&store, &customer, at, "part-fixture", 1).await?;
    let mut want_now = want.clone();
    want_now.insert((added[0].to_string(), "flagged".into()));
    assert_eq!(pairs(&search(format!("customer_id={customer}")).await?), want_now, "a new file is read");
    let flagged = |id: &uuid::Uuid| HashSet::from([(id.to_string(), "flagged".to_string())]);
    assert_eq!(pairs(&search(format!("q={}", added[0])).await?), flagged(&added[0]));
    let replaced = write_customer_orders(&store, &customer, at, "part-fixture", 2).await?;
    let mut want_now = want.clone();
    want_now.extend(replaced.iter().map(|id| (id.to_string(), "flagged".to_string())));
    assert_eq!(pairs(&search(format!("customer_id={customer}")).await?), want_now, "a replaced file is read again");
    assert_eq!(pairs(&search(format!("q={}", replaced[1])).await?), flagged(&replaced[1]));
    assert!(search(format!("q={}", added[0])).await?.is_empty(), "the replaced order is gone");

    // A later status in a later day's file wins, and that file replaced
    // (a compaction, a restatement) is read again: the page's statuses
    // come from per-file summaries kept in memory.
    let moved = |to: OrderStatus, reason: Option<CancelReason>, at: &str| {
        let at = chrono::DateTime::parse_from_rfc3339(at).map(|t| t.with_timezone(&chrono::Utc));
        let event = OrderEvent::status_changed(replaced[1], Some(OrderStatus::Flagged), to, reason, at.unwrap());
        event.map(|e| e.for_customer(&customer))
    };
    let next_day = NaiveDate::parse_from_str("2026-12-16", "%Y-%m-%d")?;
    let reserved = moved(OrderStatus::Reserved, None, "2026-12-16T08:00:00Z")?;
    write_events(&store, next_day, "part-later", &[(10, reserved)]).await?;
    // The first lookup on new files is answered from the events by SQL
    // while the files are summarised in the background; the summaries
    // answer once ready, and must agree.
    let status_of = |id: uuid::Uuid| {
        let s = &s;
        async move {
            let mut sources = Vec::new();
            for _ in 0..100 {
                let (code, page) = s.get(&format!("/api/admin/orders?q={id}")).await?;
                assert_eq!(code, 200, "{page}");
                let source = page["statuses_from"].as_str().unwrap_or_default().to_string();
                sources.push((source.clone(), page["orders"][0]["status"].clone()));
                if source == "summaries" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let answers: HashSet<String> = sources.iter().map(|(_, status)| status.to_string()).collect();
            assert_eq!(answers.len(), 1, "the events and the summaries agree: {sources:?}");
            let (source, status) = sources.pop().unwrap();
            assert_eq!(source, "summaries", "the files were summarised");
            Ok::<_, Box<dyn std::error::Error>>(status)
        }
    };
    assert_eq!(status_of(replaced[1]).await?, "reserved");
    assert_eq!(status_of(replaced[0]).await?, "flagged", "the other order did not move");
    // Two events at one instant: the later in the stream is the latest.
    let cancelled = moved(OrderStatus::Cancelled, Some(CancelReason::FraudRejected), "2026-12-16T08:00:00Z")?;
    let reserved = moved(OrderStatus::Reserved, None, "2026-12-16T08:00:00Z")?;
    write_events(&store, next_day, "part-later", &[(12, cancelled), (11, reserved)]).await?;
    assert_eq!(status_of(replaced[1]).await?, "cancelled");
    let got = pairs(&search(format!("customer_id={customer}")).await?);
    let mut want_now = want.clone();
    want_now.insert((replaced[0].to_string(), "flagged".into()));
    want_now.insert((replaced[1].to_string(), "cancelled".into()));
    assert_eq!(got, want_now, "the customer's page agrees");

    // An order's detail reads the days that may hold it, in all three tables.
    let (status, detail) = s.get(&format!("/api/admin/orders/{one}/detail")).await?;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["order"]["order_id"], one.as_str());
    for (table, key) in [("order_items", "items"), ("order_events", "events")] {
        let n = sql_rows(format!("SELECT count(*) AS n FROM {table} WHERE order_id = '{one}'")).await?;
        assert_eq!(detail[key].as_array().unwrap().len() as u64, n[0]["n"].as_u64().unwrap(), "{table}");
    }
    let (status, detail) = s.get(&format!("/api/admin/orders/{}/detail", replaced[1])).await?;
    assert_eq!((status, detail["events"][0]["status"].as_str()), (200, Some("flagged")), "{detail}");
    let (status, body) = s.get(&format!("/api/admin/orders/{}/detail", added[0])).await?;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "{body}");
    Ok(())
}

#[tokio::test]
async fn dashboard_views_answer_from_the_tables() -> TestResult {
    let s = serve(5_000, 10, |_| {}, 256).await?;
    let (status, summary) = s.get(&format!("/api/dashboard/summary?date={END}")).await?;
    assert_eq!(status, 200);
    let res = s
        .sql(
            &format!("SELECT count(*) AS n, sum(total) AS r FROM orders WHERE date = '{END}' AND currency = 'USD'"),
            "application/json",
        )
        .await?;
    let expected: Value = res.json().await?;
    assert_eq!(summary["orders"].as_f64(), expected["rows"][0]["n"].as_f64());
    // Money is an exact decimal string, equal to SQL's own sum.
    let exact = |v: &Value| schemas::Amount::parse(v.as_str().map_or_else(|| v.to_string(), str::to_string).as_str());
    assert_eq!(exact(&summary["gross_sales"]), exact(&expected["rows"][0]["r"]), "{summary}");
    // Net sales: confirmed on the day less the day's refunds; payment
    // success: approved / (approved + declined), out-of-stock left out.
    let day: Value = s
        .sql(
            &format!(
                "SELECT sum(order_total) FILTER (WHERE status = 'confirmed') AS paid, \
                 coalesce(sum(refund_amount) FILTER (WHERE kind = 'refund_issued'), 0) AS refunds, \
                 count(*) FILTER (WHERE status = 'confirmed') AS approved, \
                 count(*) FILTER (WHERE status = 'cancelled' AND reason = 'payment_declined') AS declined \
                 FROM order_events WHERE date = '{END}' AND currency = 'USD'"
            ),
            "application/json",
        )
        .await?
        .json()
        .await?;
    let day = &day["rows"][0];
    assert_eq!(exact(&summary["net_sales"])?, exact(&day["paid"])? - exact(&day["refunds"])?, "{summary} {day}");
    let (approved, declined) = (day["approved"].as_f64().unwrap(), day["declined"].as_f64().unwrap());
    assert!(approved > 0.0, "{day}");
    let rate = summary["payment_success_rate"].as_f64().unwrap_or(f64::NAN);
    assert!((rate - approved / (approved + declined)).abs() < 1e-9, "{summary}");

    let (status, windows) = s.get("/api/dashboard/revenue?window=1d&from=2026-11-17&to=2026-11-22").await?;
    assert_eq!(status, 200, "{windows}");
    assert_eq!(
        windows["windows"].as_array().map(|w| w
            .iter()
            .filter(|r| r["window_start"].as_str().unwrap().starts_with("2026-11-21"))
            .count()
            > 0),
        Some(true)
    );
    assert!(exact(&windows["totals"]["previous"])? > schemas::Amount::ZERO, "the previous five days");
    // Closed seeded days come from the daily pipeline's output, except the
    // one with a late event (and the empty 2026-11-22, which has no rows).
    assert_eq!(windows["served"]["windows_from_pipeline"], 9, "{}", windows["served"]);
    for (window, interval, from, to) in [
        ("1d", "1 day", "2026-11-17T00:00:00Z", "2026-11-22T00:00:00Z"),
        ("1h", "1 hour", "2026-11-20T05:30:00Z", "2026-11-21T02:10:00Z"),
    ] {
        let (status, got) = s.get(&format!("/api/dashboard/revenue?window={window}&from={from}&to={to}")).await?;
        assert_eq!(status, 200, "{got}");
        // The range is widened to whole windows.
        let (from, to) = (got["from"].as_str().unwrap(), got["to"].as_str().unwrap());
        assert!(got["served"]["windows_from_pipeline"].as_u64().unwrap() > 0, "{window}: {}", got["served"]);
        let sql = format!(
            "SELECT date_bin(INTERVAL '{interval}', placed_at, TIMESTAMP '1970-01-01T00:00:00Z') AS window_start, category, \
             sum(line_total) AS revenue, sum(quantity) AS units FROM order_items \
             WHERE placed_at >= TIMESTAMP '{from}' AND placed_at < TIMESTAMP '{to}' AND currency = 'USD' GROUP BY 1, 2 ORDER BY 1, 2"
        );
        let expected: Value = s.sql(&sql, "application/json").await?.json().await?;
        let key = |r: &Value| {
            let at = chrono::DateTime::parse_from_rfc3339(r["window_start"].as_str().unwrap()).unwrap();
            (at.timestamp(), r["category"].as_str().unwrap().to_string())
        };
        let (got, expected) = (got["windows"].as_array().unwrap(), expected["rows"].as_array().unwrap());
        assert!(expected.len() > 10, "{window}: {} windows × categories", expected.len());
        assert_eq!(got.iter().map(key).collect::<Vec<_>>(), expected.iter().map(key).collect::<Vec<_>>(), "{window}");
        for (g, e) in got.iter().zip(expected) {
            assert_eq!(exact(&g["revenue"]), exact(&e["revenue"]), "{window}: {g} vs {e}");
            assert_eq!(g["units"].as_i64(), e["units"].as_i64(), "{window}: {g} vs {e}");
        }
    }
    // Calendar windows: weeks from Monday, months from the first, each the
    // sum of its days; a previous period before the first sale is partial
    // and gets no change.
    for (window, from, to, first, windows) in [
        ("1w", "2026-11-04", "2026-11-22", "2026-11-02T00:00:00Z", 3),
        ("1mo", "2026-11-04", "2026-11-22", "2026-11-01T00:00:00Z", 1),
    ] {
        let (status, got) = s.get(&format!("/api/dashboard/revenue?window={window}&from={from}&to={to}")).await?;
        assert_eq!(status, 200, "{got}");
        assert_eq!(got["from"], first, "{window}");
        let starts: HashSet<&str> =
            got["windows"].as_array().unwrap().iter().map(|r| r["window_start"].as_str().unwrap()).collect();
        assert!(!starts.is_empty() && starts.len() <= windows, "{window}: {starts:?}");
        let sql = format!(
            "SELECT sum(line_total) AS revenue FROM order_items WHERE placed_at >= TIMESTAMP '{}' AND placed_at < TIMESTAMP '{}' AND currency = 'USD'",
            got["from"].as_str().unwrap(),
            got["to"].as_str().unwrap()
        );
        let expected: Value = s.sql(&sql, "application/json").await?.json().await?;
        assert_eq!(exact(&got["totals"]["current"]), exact(&expected["rows"][0]["revenue"]), "{window}");
        let sum: schemas::Amount =
            got["categories"].as_array().unwrap().iter().map(|c| exact(&c["current"]).unwrap()).sum();
        assert_eq!(Ok(sum), exact(&got["totals"]["current"]), "{window}: categories add up");
        assert_eq!(got["comparison"]["complete"], false, "{window}: {}", got["comparison"]);
        assert!(got["comparison"]["note"].as_str().is_some_and(|n| n.contains("partial")), "{}", got["comparison"]);
        assert!(got["totals"]["change"].is_null(), "{window}: no change against a partial period");
    }
    for path in [
        "/api/dashboard/heatmap?from=2026-11-12&to=2026-11-22",
        "/api/dashboard/top-products?from=2026-11-12&to=2026-11-22",
        "/api/dashboard/funnel?from=2026-11-12&to=2026-11-22",
    ] {
        let (status, body) = s.get(path).await?;
        assert_eq!(status, 200, "{path}: {body}");
    }
    // The heatmap's cells add up to the range's sales (order lines, as the
    // Sales page counts them), exactly.
    let (_, heat) = s.get("/api/dashboard/heatmap?from=2026-11-12T06:00:00Z&to=2026-11-22").await?;
    assert!(heat["served"]["windows_from_pipeline"].as_u64().unwrap() > 0, "{}", heat["served"]);
    let cells: schemas::Amount = heat["cells"].as_array().unwrap().iter().map(|c| exact(&c["revenue"]).unwrap()).sum();
    let total: Value = s
        .sql(
            "SELECT sum(line_total) AS r FROM order_items WHERE placed_at >= TIMESTAMP '2026-11-12T06:00:00Z' \
             AND placed_at < TIMESTAMP '2026-11-22T00:00:00Z' AND currency = 'USD'",
            "application/json",
        )
        .await?
        .json()
        .await?;
    assert_eq!(Ok(cells), exact(&total["rows"][0]["r"]), "{heat}");
    // The funnel over whole days (partitions alone) and over cut times
    // equals the same counts taken from the rows' times.
    for (from, to) in
        [("2026-11-12T00:00:00Z", "2026-11-22T00:00:00Z"), ("2026-11-12T10:00:00Z", "2026-11-21T18:30:00Z")]
    {
        let (_, funnel) = s.get(&format!("/api/dashboard/funnel?from={from}&to={to}")).await?;
        let within = |column: &str| format!("{column} >= TIMESTAMP '{from}' AND {column} < TIMESTAMP '{to}'");
        let placed: Value = s
            .sql(&format!("SELECT count(*) AS n FROM orders WHERE {}", within("placed_at")), "application/json")
            .await?
            .json()
            .await?;
        assert_eq!(funnel["placed"].as_f64(), placed["rows"][0]["n"].as_f64(), "{from}: {funnel}");
        let steps: Value = s
            .sql(
                &format!(
                    "SELECT status, reason, count(*) AS n FROM order_events WHERE {} AND status IS NOT NULL \
                     GROUP BY status, reason ORDER BY status, reason",
                    within("occurred_at")
                ),
                "application/json",
            )
            .await?
            .json()
            .await?;
        let triples = |rows: &Value| -> Vec<(Value, Value, Option<f64>)> {
            rows.as_array()
                .unwrap()
                .iter()
                .map(|r| (r["status"].clone(), r["reason"].clone(), r["n"].as_f64()))
                .collect()
        };
        assert!(steps["rows"].as_array().unwrap().len() > 3);
        assert_eq!(triples(&funnel["statuses"]), triples(&steps["rows"]), "{from}");
    }
    let (_, top) = s.get("/api/dashboard/top-products?from=2026-11-12&to=2026-11-22&limit=3").await?;
    assert_eq!(top["products"].as_array().map(Vec::len), Some(3));
    assert!(top["products"][0]["name"].is_string(), "joined with products");
    // Best sellers over cut days: whole days from the product pipeline, the
    // edges from the items; the same ten, to the cent, as the items alone.
    let (from, to) = ("2026-11-12T10:00:00Z", "2026-11-21T18:30:00Z");
    let (_, top) = s.get(&format!("/api/dashboard/top-products?from={from}&to={to}")).await?;
    assert_eq!(top["served"]["windows_from_pipeline"], 8, "{}", top["served"]);
    let expected: Value = s
        .sql(
            &format!(
                "SELECT product_id, sum(line_total) AS revenue FROM order_items WHERE placed_at >= TIMESTAMP '{from}' \
                 AND placed_at < TIMESTAMP '{to}' AND currency = 'USD' GROUP BY product_id ORDER BY revenue DESC, product_id LIMIT 10"
            ),
            "application/json",
        )
        .await?
        .json()
        .await?;
    let pairs = |rows: &Value| -> Vec<(String, String)> {
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| (r["product_id"].as_str().unwrap().to_string(), format!("{:.2}", money(&r["revenue"]))))
            .collect()
    };
    assert_eq!(pairs(&top["products"]), pairs(&expected["rows"]));

    // The fraud queue: closed days from fraud_reviews_1d, the day with a
    // late status event from the events; the same orders as the events
    // alone, the late flag first (the highest risk).
    let first_day = NaiveDate::parse_from_str(END, "%Y-%m-%d")? - chrono::Duration::days(10);
    let days = (chrono::Utc::now().date_naive() - first_day).num_days();
    assert!(days <= 366, "END is over a year ago: move it forward");
    let queue_path = format!("/api/dashboard/fraud-queue?days={days}&limit=1000");
    // Asked once before the fixtures land: the answer remembered for this
    // range must not outlive the files it was read from.
    let (status, before) = s.get(&queue_path).await?;
    assert_eq!(status, 200, "{before}");
    let store = DataStore::open(&s.lake_dir)?;
    let (late_flag, late_event) = write_flag_event(&store, "2026-11-20T12:00:00Z", 99).await?;
    write_late_row_fixture(&store, "fraud_reviews_1d", "order_events", &late_event).await?;
    let restated_flag = write_restated_review_day(&store).await?;
    let (status, queue) = s.get(&queue_path).await?;
    assert_eq!(status, 200, "{queue}");
    let since = chrono::Utc::now().date_naive() - chrono::Duration::days(days);
    let expected: Value = s
        .sql(
            &format!(
                "SELECT order_id, customer_id, risk_score, risk_reasons, order_total, occurred_at AS flagged_at \
                 FROM order_events WHERE date >= '{since}' AND status = 'flagged' AND order_id NOT IN \
                 (SELECT order_id FROM order_events WHERE date >= '{since}' AND from_status = 'flagged') \
                 ORDER BY risk_score DESC, occurred_at, order_id"
            ),
            "application/json",
        )
        .await?
        .json()
        .await?;
    assert_eq!(
        order_ids(&queue["orders"]),
        order_ids(&expected["rows"]),
        "each flagged order once, from the latest version"
    );
    // The queue's columns are those of the flagged event (read in a second
    // step, by id, on the day each was flagged).
    let shown = |rows: &Value| -> Vec<String> {
        let fields = ["order_id", "customer_id", "risk_score", "risk_reasons", "order_total", "flagged_at"];
        // Money as its exact value, whether a string (the API) or a number (SQL's JSON).
        let cell = |v: &Value| match v.as_str().and_then(|t| schemas::Amount::parse(t).ok()) {
            Some(amount) => amount.to_string(),
            None if v.is_number() => schemas::Amount::parse(&v.to_string()).map_or(v.to_string(), |a| a.to_string()),
            None => v.to_string(),
        };
        let row = |r: &Value| format!("{:?}", fields.map(|f| cell(&r[f])));
        rows.as_array().unwrap().iter().map(row).collect()
    };
    assert_eq!(shown(&queue["orders"]), shown(&expected["rows"]));
    let (_, top) = s.get(&format!("/api/dashboard/fraud-queue?days={days}&limit=1")).await?;
    assert_eq!(shown(&top["orders"]), shown(&expected["rows"])[..1], "the limit keeps the highest risk");
    assert_eq!(order_ids(&queue["orders"]).iter().collect::<HashSet<_>>().len(), order_ids(&queue["orders"]).len());
    let (restated_flag, late_flag) = (restated_flag.to_string(), late_flag.to_string());
    // The fixtures score 100 and 99, as high as the screen's own top flags.
    let queued = order_ids(&queue["orders"]);
    assert!(queued.contains(&restated_flag) && queued.contains(&late_flag), "the fixtures are queued: {queued:?}");
    let reviewed: Value = s
        .sql("SELECT count(*) AS n FROM fraud_reviews_1d WHERE from_status = 'flagged'", "application/json")
        .await?
        .json()
        .await?;
    assert!(reviewed["rows"][0]["n"].as_i64().unwrap() > 10, "reviews the queue leaves out: {reviewed}");
    // Every seeded day with reviews but the late one.
    let from_pipeline = queue["served"]["windows_from_pipeline"].as_u64().unwrap();
    let seeded: Value = s
        .sql("SELECT count(DISTINCT window_start) AS n FROM fraud_reviews_1d", "application/json")
        .await?
        .json()
        .await?;
    assert_eq!(Some(from_pipeline + 1), seeded["rows"][0]["n"].as_u64(), "{}", queue["served"]);
    assert_eq!(before["served"]["windows_from_pipeline"].as_u64(), Some(from_pipeline + 1), "before the late row");
    let (_, again) = s.get(&queue_path).await?;
    assert_eq!(again, queue, "the remembered coverage answers the same");
    let (status, body) = s.get("/api/dashboard/fraud-queue?days=0").await?;
    assert_eq!((status, body["field"].as_str()), (400, Some("days")));

    let (status, body) = s.get("/api/dashboard/top-products?limit=ten").await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_parameter")), "JSON, not axum's text");
    let (status, body) = s.get("/api/dashboard/revenue?window=5m").await?;
    assert_eq!((status, body["field"].as_str()), (400, Some("window")));
    let (status, body) = s.get("/api/dashboard/revenue?from=2026-11-20&to=2026-11-01").await?;
    assert_eq!((status, body["field"].as_str()), (400, Some("from")));

    // Who may call these is the access layer's (tests/access.rs); here the
    // routes alone, as an admin sees them.
    let res = s.http.get(format!("{}/api/admin/orders?page_size=3", s.base)).send().await?;
    assert_eq!(res.status(), 200);
    let res = s.http.post(format!("{}/api/admin/orders/bulk", s.base))
        .json(&json!({"action": "cancel", "order_ids": (0..101).map(|_| uuid::Uuid::now_v7().to_string()).collect::<Vec<_>>()}))
        .send().await?;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await?;
    assert_eq!(body["field"], "order_ids");
    let res = s
        .http
        .post(format!("{}/api/admin/orders/bulk", s.base))
        .json(&json!({"action": "cancel", "order_ids": ["nope"]}))
        .send()
        .await?;
    let body: Value = res.json().await?;
    assert_eq!(body["field"], "order_ids[0]");

    let res = s.http.get(format!("{}/", s.base)).send().await?;
    assert_eq!(res.status(), 200);
    assert!(res.text().await?.contains("/assets/vendor/uPlot.iife.min.js"));
    Ok(())
}

/// No request can take the process down: deep expressions are refused
/// before planning (and the deepest allowed one runs), a result larger than
/// the pool is refused, an export whose client left stops its query, a
/// background export can be cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_query_exhausts_the_stack_or_memory_or_outlives_its_client() -> TestResult {
    let s = serve(3_000, 5, |_| {}, 64).await?;
    let chain = |terms: usize| format!("SELECT {} AS n", vec!["1"; terms].join("+"));
    for terms in [2_000, 30_000] {
        let res = s.sql(&chain(terms), "application/json").await?;
        assert_eq!(res.status(), 400, "{terms} terms");
        let body: Value = res.json().await?;
        assert_eq!(body["error"], "too_deep", "{body}");
    }
    let deepest = dashboard::sandbox::MAX_EXPRESSION_DEPTH - 2;
    let res = s.sql(&chain(deepest), "application/json").await?;
    assert_eq!(res.status(), 200, "the deepest expression allowed plans and runs");
    let body: Value = res.json().await?;
    assert_eq!(body["rows"][0]["n"], deepest);
    let ors = vec!["total = 1"; dashboard::sandbox::MAX_EXPRESSION_DEPTH - 3].join(" OR ");
    let res = s.sql(&format!("SELECT count(*) AS n FROM orders WHERE {ors}"), "application/json").await?;
    assert_eq!(res.status(), 200);

    for sql in [
        "SELECT length(repeat('a', 1000000000)) AS n",
        "SELECT max(length(lpad(order_id, 100000))) FROM orders",
        "SELECT cardinality(range(TIMESTAMP '2000-01-01', TIMESTAMP '2100-01-01', INTERVAL '1 second'))",
    ] {
        let res = s.sql(sql, "application/json").await?;
        assert_eq!(res.status(), 503, "{sql}");
        let body: Value = res.json().await?;
        assert_eq!(body["error"], "memory_limit", "{sql}: {body}");
    }

    // An export that computes for long before its first row, abandoned by
    // its client: its query stops.
    // A sum over an expression: statistics cannot answer it, unlike count(*).
    let heavy = "SELECT sum(length(a.order_id || b.product_id || c.category)) AS n FROM order_items a, order_items b, order_items c";
    let running = |s: &Served| {
        let (http, base) = (s.http.clone(), s.base.clone());
        async move {
            let health: Value = http.get(format!("{base}/api/dashboard/health")).send().await?.json().await?;
            Ok::<_, Box<dyn std::error::Error>>(health["queries_running"].as_u64().unwrap_or(u64::MAX))
        }
    };
    // A plain query whose client leaves stops, long before its time limit.
    let request = s.sql(heavy, "application/json");
    let _ = tokio::time::timeout(Duration::from_millis(800), request).await;
    let left = std::time::Instant::now();
    while running(&s).await? > 0 {
        assert!(left.elapsed() < Duration::from_secs(3), "the abandoned query still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("abandoned query stopped after {:?}", left.elapsed());

    let request = s
        .http
        .post(format!("{}/api/sql", s.base))
        .header("accept", "text/csv")
        .json(&json!({"sql": heavy, "export": true}))
        .send();
    let _ = tokio::time::timeout(Duration::from_millis(800), request).await;
    let left = std::time::Instant::now();
    while running(&s).await? > 0 {
        assert!(left.elapsed() < Duration::from_secs(3), "the abandoned export's query still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("abandoned export stopped after {:?}", left.elapsed());

    // A background export of the same, cancelled.
    let res = s.http.post(format!("{}/api/admin/exports", s.base)).json(&json!({})).send().await?;
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await?["id"].as_str().unwrap().to_string();
    let res = s.http.delete(format!("{}/api/admin/exports/{id}", s.base)).send().await?;
    assert_eq!(res.status(), 200);
    let job: Value = res.json().await?;
    assert!(matches!(job["status"].as_str(), Some("cancelled" | "deleted")), "{job}");
    let (status, job) = s.get(&format!("/api/admin/exports/{id}")).await?;
    assert_eq!(status, 200);
    assert!(job["download_url"].is_null());
    let res = s.http.delete(format!("{}/api/admin/exports/not-a-uuid", s.base)).send().await?;
    assert_eq!(res.status(), 400);
    Ok(())
}

fn nested_points(points: &[Value]) {
    for p in points {
        let row: Vec<f64> =
            ["lo95", "lo80", "forecast", "hi80", "hi95"].iter().map(|k| p[*k].as_f64().unwrap()).collect();
        assert!(row[0] >= 0.0 && row.windows(2).all(|w| w[0] <= w[1] + 1e-9), "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demand_forecasts_and_the_inventory_plan_answer_from_the_lake() -> TestResult {
    let s = serve(8_000, 120, |_| {}, 512).await?;
    let category = seed::CATEGORIES[0];

    // Computed on request: the total, a category and a product.
    let (status, total) = s.get("/api/analytics/demand-forecast").await?;
    assert_eq!(status, 200, "{total}");
    assert_eq!(
        (total["scope"].as_str(), total["key"].as_str(), total["as_of"].as_str()),
        (Some("total"), Some("all"), Some(END))
    );
    assert_eq!(total["source"], "computed");
    assert_eq!(total["history"].as_array().unwrap().len(), 90);
    assert_eq!(total["points"].as_array().unwrap().len(), 30);
    assert_eq!(total["points"][0]["date"], "2026-11-22", "the day after as_of");
    assert_eq!(total["backtest"]["folds"], 3);
    nested_points(total["points"].as_array().unwrap());
    for query in
        [format!("category={category}&metric=revenue&horizon=60"), "product_id=p-00000&as_of=2026-11-01".into()]
    {
        let (status, one) = s.get(&format!("/api/analytics/demand-forecast?{query}")).await?;
        assert_eq!(status, 200, "{query}: {one}");
        nested_points(one["points"].as_array().unwrap());
        assert!(one["model"].as_str().is_some_and(|m| !m.is_empty()), "{one}");
    }
    let (_, early) = s.get("/api/analytics/demand-forecast?product_id=p-00000&as_of=2026-11-01").await?;
    assert_eq!(early["history"].as_array().unwrap().last().unwrap()["date"], "2026-11-01", "nothing after as_of");

    // Errors: 404 for no history, 422 naming the parameter.
    let (status, body) = s.get("/api/analytics/demand-forecast?product_id=no-such-product").await?;
    assert_eq!(
        (status, body["error"].as_str(), body["field"].as_str()),
        (404, Some("not_found"), Some("product_id")),
        "{body}"
    );
    for (query, field) in [
        ("metric=profit", "metric"),
        ("horizon=0", "horizon"),
        ("horizon=366", "horizon"),
        ("horizon=ten", "horizon"),
        ("as_of=2026-13-01", "as_of"),
        ("currency=DOLLARS", "currency"),
        ("product_id=p-00000&category=x", "category"),
    ] {
        let (status, body) = s.get(&format!("/api/analytics/demand-forecast?{query}")).await?;
        assert_eq!((status, body["field"].as_str()), (422, Some(field)), "{query}: {body}");
    }

    // After a run for that day the table answers, with the same forecast.
    let store = DataStore::open(&s.lake_dir)?;
    let end = NaiveDate::parse_from_str(END, "%Y-%m-%d")?;
    let options = forecast::ForecastOptions { as_of: Some(end), ..forecast::ForecastOptions::default() };
    forecast::forecast_lake(&store, &options, None).await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (status, stored) = s.get("/api/analytics/demand-forecast").await?;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["source"], "table", "{stored}");
    assert_eq!(stored["model"], total["model"]);
    assert_eq!(stored["history"], total["history"], "the run's history is what the lake says");
    for (a, b) in stored["points"].as_array().unwrap().iter().zip(total["points"].as_array().unwrap()) {
        assert_eq!(a["date"], b["date"]);
        assert!((a["forecast"].as_f64().unwrap() - b["forecast"].as_f64().unwrap()).abs() < 1e-5, "{a} vs {b}");
    }

    // The plan: live stock from the buckets, demand from the lake.
    let client = broker::connect(&s._nats.url(), "inventory-test").await?;
    let js = async_nats::jetstream::new(client);
    let (catalog, stock) =
        (js.get_key_value(broker::CATALOG_BUCKET).await?, js.get_key_value(broker::STOCK_BUCKET).await?);
    for (id, available) in [("p-00000", 3u64), ("p-00001", 400), ("p-01999", 50)] {
        let product = schemas::Product {
            product_id: id.into(),
            name: format!("Product {id}"),
            category: category.into(),
            unit_price: schemas::MinorUnits(1_000),
            currency: schemas::Currency::USD,
        };
        catalog.put(broker::kv_key(id), serde_json::to_vec(&product)?.into()).await?;
        let level = json!({"product_id": id, "available": available, "reserved": 0, "sold": 0});
        stock.put(broker::kv_key(id), serde_json::to_vec(&level)?.into()).await?;
    }
    let (status, plan) =
        s.get("/api/analytics/inventory?sort=avg_daily_demand_30d&order=desc&lead_time_days=14").await?;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["total"], 3);
    let products = plan["products"].as_array().unwrap();
    let top = &products[0];
    assert_eq!(top["product_id"], "p-00000", "the seed's most popular product: {plan}");
    assert!(top["avg_daily_demand_30d"].as_f64().unwrap() > 0.0);
    assert_eq!((top["low_stock"].as_bool(), top["lead_time_days"].as_u64()), (Some(true), Some(14)));
    assert!(top["stockout_date"].is_string(), "3 units run out within the horizon: {top}");
    assert!(top["suggested_order_qty"].as_u64().unwrap() > 0);
    assert!(top["reorder_point"].as_f64().unwrap() >= top["lead_time_demand"].as_f64().unwrap());
    let (_, low) = s.get("/api/analytics/inventory?low_stock=true").await?;
    assert_eq!(low["total"], 1);
    for (query, field) in [
        ("lead_time_days=0", "lead_time_days"),
        ("service_level=1.5", "service_level"),
        ("sort=price", "sort"),
        ("order=up", "order"),
        ("page=0", "page"),
        ("low_stock=maybe", "low_stock"),
    ] {
        let (status, body) = s.get(&format!("/api/analytics/inventory?{query}")).await?;
        assert_eq!((status, body["field"].as_str()), (422, Some(field)), "{query}: {body}");
    }
    Ok(())
}

/// The Fraud page's numbers agree with the status events, from the
/// pipelines for closed days; the audit log names the reviewer; a flagged
/// order is shown beside its customer's usual orders; bad input is a 4xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fraud_rates_reasons_audit_and_context_answer_from_the_lake() -> TestResult {
    let s = serve(20_000, 20, |_| {}, 512).await?;
    let (from, to) = ("2026-11-02T00:00:00Z", "2026-11-22T00:00:00Z");
    let (status, stats) = s.get(&format!("/api/dashboard/fraud-stats?from={from}&to={to}")).await?;
    assert_eq!(status, 200, "{stats}");
    assert!(stats["served"]["windows_from_pipeline"].as_u64().unwrap() > 10, "{}", stats["served"]);
    let sql = format!(
        "SELECT count(*) FILTER (WHERE from_status = 'pending') AS screened, \
                count(*) FILTER (WHERE from_status = 'pending' AND status = 'flagged') AS flagged, \
                count(*) FILTER (WHERE from_status = 'flagged' AND reason = 'fraud_rejected') AS rejected, \
                count(*) FILTER (WHERE from_status = 'flagged' AND (reason IS NULL OR reason <> 'fraud_rejected')) AS approved \
         FROM order_events WHERE kind = 'status_changed' AND occurred_at >= TIMESTAMP '{from}' AND occurred_at < TIMESTAMP '{to}'"
    );
    let expected: Value = s.sql(&sql, "application/json").await?.json().await?;
    for name in ["screened", "flagged", "rejected", "approved"] {
        assert_eq!(stats["totals"][name].as_f64(), expected["rows"][0][name].as_f64(), "{name}: {}", stats["totals"]);
    }
    let totals = &stats["totals"];
    let share = totals["flagged_share"].as_f64().unwrap();
    assert!((0.005..0.06).contains(&share), "flagged share {share}");
    let series_flagged: f64 = stats["series"].as_array().unwrap().iter().map(|w| w["flagged"].as_f64().unwrap()).sum();
    assert_eq!(Some(series_flagged), totals["flagged"].as_f64());
    let reasons = stats["reasons"].as_array().unwrap();
    assert!(!reasons.is_empty());
    let features: Vec<&str> = fraud::features::Feature::ALL.iter().map(|f| f.name()).collect();
    assert!(reasons.iter().all(|r| features.contains(&r["reason"].as_str().unwrap())), "{reasons:?}");

    let (status, audit) = s.get("/api/dashboard/fraud-audit?days=366&limit=1000").await?;
    assert_eq!(status, 200);
    let reviews = audit["reviews"].as_array().unwrap();
    assert!(!reviews.is_empty());
    assert!(reviews.iter().all(|r| r["reviewer"] == "seed-reviewer" && r["review_note"].is_string()), "{reviews:?}");
    // Read newest day first in growing chunks, the log is the one query's
    // answer: the same reviews in the same order, for any limit.
    for limit in [3, 40, 1000] {
        let (_, audit) = s.get(&format!("/api/dashboard/fraud-audit?days=366&limit={limit}")).await?;
        let expected: Value = s
            .sql(
                &format!(
                    "SELECT order_id FROM order_events WHERE kind = 'status_changed' AND from_status = 'flagged' \
                     AND occurred_at >= now() - INTERVAL '366 days' ORDER BY occurred_at DESC, order_id LIMIT {limit}"
                ),
                "application/json",
            )
            .await?
            .json()
            .await?;
        assert_eq!(order_ids(&audit["reviews"]), order_ids(&expected["rows"]), "limit {limit}");
    }

    let flagged: Value = s
        .sql(
            "SELECT order_id, score, customer_id FROM fraud_scores WHERE decision = 'flagged' AND customer_id LIKE 'c-0%' ORDER BY scored_at DESC LIMIT 1",
            "application/json",
        )
        .await?
        .json()
        .await?;
    let row = &flagged["rows"][0];
    let id = row["order_id"].as_str().unwrap();
    let (status, context) = s.get(&format!("/api/dashboard/fraud-context/{id}")).await?;
    assert_eq!(status, 200, "{context}");
    assert_eq!(context["screening"]["score"], row["score"]);
    assert_eq!(context["screening"]["decision"], "flagged");
    assert_eq!(context["customer"]["customer_id"], row["customer_id"]);
    assert!(context["customer"]["usual"]["orders"].as_f64().is_some());
    assert!(context["customer"]["places"].is_array() && context["customer"]["ips"].is_array());

    for (path, code, field) in [
        ("/api/dashboard/fraud-stats?bucket=week", 400, "bucket"),
        ("/api/dashboard/fraud-stats?from=2026-11-22&to=2026-11-01", 400, "from"),
        ("/api/dashboard/fraud-audit?days=0", 400, "days"),
        ("/api/dashboard/fraud-context/not-a-uuid", 400, "order_id"),
    ] {
        let (status, body) = s.get(path).await?;
        assert_eq!((status, body["field"].as_str()), (code, Some(field)), "{path}: {body}");
    }
    let (status, _) = s.get(&format!("/api/dashboard/fraud-context/{}", uuid::Uuid::now_v7())).await?;
    assert_eq!(status, 404);
    Ok(())
}

/// Rows of `sql` over the served lake, read directly (not through the API).
async fn lake_rows(s: &Served, sql: &str) -> Vec<Value> {
    let store = DataStore::open(&s.lake_dir).unwrap();
    let (ctx, _) = analytics::query::session(&store, &QueryLimits::default()).await.unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    dashboard::sql_rows::json_rows(&batches).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommendations_and_customer_figures_answer_from_the_customers_run() -> TestResult {
    let s = serve(8_000, 150, |_| {}, 512).await?;
    // Before any run: a clear 503, not an empty list.
    let (status, body) = s.get("/api/recommendations?product_id=p-00000").await?;
    assert_eq!((status, body["error"].as_str()), (503, Some("model_not_built")), "{body}");

    let store = DataStore::open(&s.lake_dir)?;
    let report = customers::build(&store, &customers::CustomersOptions::default()).await?;
    assert_eq!(report.as_of, NaiveDate::parse_from_str(END, "%Y-%m-%d").ok());
    // The dashboard registers the new tables within seconds.
    let mut answer = (0, Value::Null);
    for _ in 0..100 {
        answer = s.get("/api/recommendations?product_id=p-00000").await?;
        if answer.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, recs) = answer;
    assert_eq!(status, 200, "{recs}");
    let list = recs["recommendations"].as_array().unwrap();
    assert_eq!(list.len(), 10, "{recs}");
    assert!(list.iter().all(|r| r["product_id"] != "p-00000"), "never the asked product: {recs}");
    assert!(list.iter().all(|r| r["name"].is_string() && r["category"].is_string()), "named from the catalog: {recs}");
    // The first pick is the product's best pair in the table.
    let best = lake_rows(
        &s,
        &format!("SELECT other_id, support FROM product_affinity WHERE as_of = '{END}' AND product_id = 'p-00000' AND support >= 3 ORDER BY rank LIMIT 1"),
    )
    .await;
    assert_eq!(list[0]["product_id"], best[0]["other_id"], "{recs}");
    assert_eq!(list[0]["reason"], "bought_together");
    assert_eq!(list[0]["support"], best[0]["support"]);
    // A seeded basket's companions are what the model finds.
    let companions = seed::companions(0, 2_000).map(|i| format!("p-{i:05}"));
    let top4: Vec<&str> = list.iter().take(4).filter_map(|r| r["product_id"].as_str()).collect();
    assert!(companions.iter().filter(|c| top4.contains(&c.as_str())).count() >= 3, "{top4:?} vs {companions:?}");

    for (query, code, field) in [
        ("/api/recommendations", 422, "product_id"),
        ("/api/recommendations?product_id=p-00000&limit=0", 422, "limit"),
        ("/api/recommendations?product_id=p-00000&limit=ten", 422, "limit"),
        ("/api/recommendations?product_id=bad%20id!", 422, "product_id"),
        ("/api/recommendations?product_id=p-99999", 404, "product_id"),
        ("/api/recommendations/personalized", 422, "customer_id"),
        ("/api/recommendations/personalized?customer_id=c-nobody", 404, "customer_id"),
        ("/api/recommendations/personalized?customer_id=c-00000001&limit=101", 422, "limit"),
        ("/api/analytics/customers/segments?segment=vip", 422, "segment"),
        ("/api/analytics/customers/segments?limit=0", 422, "limit"),
        ("/api/analytics/customers/cohorts?months=0", 422, "months"),
        ("/api/analytics/customers/new-vs-returning?from=2026-11-02&to=2026-11-01", 422, "from"),
        ("/api/analytics/customers/clv?currency=dollars", 422, "currency"),
        ("/api/analytics/operations?from=2025-01-01&to=2026-11-21", 422, "from"),
    ] {
        let (status, body) = s.get(query).await?;
        assert_eq!((status, body["field"].as_str()), (code, Some(field)), "{query}: {body}");
    }
    let (_, short) = s.get("/api/recommendations?product_id=p-00000&limit=3").await?;
    assert_eq!(short["recommendations"].as_array().unwrap().len(), 3);

    // Personalized: a regular customer's picks are none of what they bought.
    let regular = lake_rows(
        &s,
        "SELECT customer_id FROM order_items GROUP BY customer_id HAVING count(DISTINCT order_id) >= 3 ORDER BY customer_id LIMIT 1",
    )
    .await;
    let customer = regular[0]["customer_id"].as_str().unwrap();
    let bought: HashSet<String> =
        lake_rows(&s, &format!("SELECT DISTINCT product_id FROM order_items WHERE customer_id = '{customer}'"))
            .await
            .iter()
            .map(|r| r["product_id"].as_str().unwrap().to_string())
            .collect();
    let (status, mine) = s.get(&format!("/api/recommendations/personalized?customer_id={customer}")).await?;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["bought"].as_u64(), Some(bought.len() as u64));
    let picks = mine["recommendations"].as_array().unwrap();
    assert!(!picks.is_empty());
    assert!(picks.iter().all(|p| !bought.contains(p["product_id"].as_str().unwrap())), "{mine} vs {bought:?}");

    // Segments: every customer in one, the list is the segment's, by value.
    let (status, seg) = s.get("/api/analytics/customers/segments").await?;
    assert_eq!(status, 200, "{seg}");
    let customers_n = lake_rows(&s, &format!("SELECT count(*) AS n FROM customer_segments WHERE as_of = '{END}'"))
        .await[0]["n"]
        .as_u64()
        .unwrap();
    let summed: u64 = seg["segments"].as_array().unwrap().iter().map(|x| x["customers"].as_u64().unwrap()).sum();
    assert_eq!((seg["customers"].as_u64(), summed), (Some(customers_n), customers_n));
    let churn = seg["list"].as_array().unwrap();
    assert!(!churn.is_empty(), "150 days of history leave customers gone quiet: {seg}");
    assert!(churn.iter().all(|c| c["segment"] == "churn_risk" && c["days_since_last_order"].as_i64().unwrap() > 90));
    let values: Vec<f64> = churn.iter().map(|c| money(&c["lifetime_value"])).collect();
    assert!(values.windows(2).all(|w| w[0] >= w[1]), "most valuable first");

    let (_, clv) = s.get("/api/analytics/customers/clv").await?;
    let in_buckets: u64 = clv["buckets"].as_array().unwrap().iter().map(|b| b["customers"].as_u64().unwrap()).sum();
    assert_eq!((clv["customers"].as_u64(), in_buckets), (Some(customers_n), customers_n), "{clv}");
    assert!(clv["p50"].as_f64().unwrap() <= clv["p90"].as_f64().unwrap());

    let (_, cohorts) = s.get("/api/analytics/customers/cohorts?months=6").await?;
    let cohorts = cohorts["cohorts"].as_array().unwrap();
    assert_eq!(cohorts.len(), 6);
    for c in cohorts {
        assert_eq!(c["active"][0], c["customers"], "month +0 is the whole cohort");
        assert_eq!(c["retention"][0].as_f64(), Some(1.0));
    }

    let (_, days) = s.get("/api/analytics/customers/new-vs-returning?from=2020-01-01").await?;
    assert_eq!(days["new_customers"].as_u64(), Some(customers_n), "each customer is new once: {}", days["from"]);

    // Operations: the orders and payment methods add up to the lake's.
    let (status, ops) = s.get("/api/analytics/operations?from=2026-11-01&to=2026-11-21").await?;
    assert_eq!(status, 200, "{ops}");
    let placed = lake_rows(&s, "SELECT count(*) AS n FROM orders WHERE date BETWEEN '2026-11-01' AND '2026-11-21'")
        .await[0]["n"]
        .as_u64()
        .unwrap();
    assert_eq!(ops["orders"].as_u64(), Some(placed));
    let by_method: u64 = ops["payment_methods"].as_array().unwrap().iter().map(|m| m["orders"].as_u64().unwrap()).sum();
    assert_eq!(by_method, placed);
    let stages: Vec<&str> = ops["fulfilment"].as_array().unwrap().iter().filter_map(|x| x["status"].as_str()).collect();
    assert_eq!(stages, ["confirmed", "shipped", "delivered"], "{ops}");
    assert!(
        ops["cancelled"]["out_of_stock"].as_u64().unwrap() > 0 && !ops["out_of_stock"].as_array().unwrap().is_empty()
    );
    Ok(())
}

/// A pipeline set without the figures' pipelines (`--pipelines DIR` of
/// one's own) serves every figure from the base tables, with the same
/// numbers, and says no pipeline served them.
#[tokio::test]
async fn figures_no_pipeline_serves_come_from_the_base_tables() -> TestResult {
    let with = serve(3_000, 5, |_| {}, 256).await?;
    let without = serve(3_000, 5, |s| s.rollups = dashboard::rollups::RollupTables::default(), 256).await?;
    for path in [
        "/api/dashboard/revenue?window=1d&from=2026-11-17&to=2026-11-22",
        "/api/dashboard/revenue?window=1h&from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z",
        "/api/dashboard/top-products?from=2026-11-17&to=2026-11-22",
        "/api/dashboard/fraud-stats?from=2026-11-17&to=2026-11-22",
    ] {
        let ((status, served), (plain_status, plain)) = (with.get(path).await?, without.get(path).await?);
        assert_eq!((status, plain_status), (200, 200), "{path}: {served} {plain}");
        assert!(served["served"]["windows_from_pipeline"].as_u64().unwrap() > 0, "{path}: {}", served["served"]);
        assert!(served["served"]["pipeline"].is_string(), "{path}: {}", served["served"]);
        assert_eq!(plain["served"]["windows_from_pipeline"], 0, "{path}: {}", plain["served"]);
        assert!(plain["served"]["pipeline"].is_null(), "{path}: {}", plain["served"]);
        let (mut a, mut b) = (served.clone(), plain.clone());
        for v in [&mut a, &mut b] {
            v.as_object_mut().map(|o| o.remove("served"));
        }
        assert_eq!(a, b, "{path}: the same figures either way");
    }
    Ok(())
}
