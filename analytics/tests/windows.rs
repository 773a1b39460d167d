//! Windowed pipelines against a real nats-server: a known set of orders,
//! some out of order, one late within the allowed lateness, one beyond it,
//! through the live job; each window's revenue per category must equal an
//! independent computation to the cent, the late one must restate its
//! window, and the too-late one must land in `late_events`.

// Test helpers panic on failure, like the tests they serve.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use analytics::live::{LiveSettings, run};
use analytics::pipeline::parse_pipeline;
use analytics::query::{QueryLimits, session};
use analytics::store::DataStore;
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Decimal128Type, Int32Type, Int64Type, TimestampMicrosecondType};
use async_nats::jetstream;
use async_nats::jetstream::message::PublishMessage;
use broker::{NatsServer, TopologySettings, ensure_topology, kv_key};
use chrono::{TimeZone, Utc};
use schemas::{Currency, MinorUnits, NewOrder, Order, OrderItem, Product, TaxRate};
use uuid::Uuid;

const MIN: i64 = 60_000;
const T0: i64 = 1_764_000_000_000 - 1_764_000_000_000 % (60 * MIN); // an hour boundary

fn order(at_ms: i64, items: &[(&str, u32, i64)]) -> Order {
    let new = NewOrder {
        customer_id: format!("c-{}", at_ms % 7),
        items: items
            .iter()
            .map(|(p, q, price)| OrderItem { product_id: p.to_string(), quantity: *q, unit_price: MinorUnits(*price) })
            .collect(),
        currency: Currency::USD,
        shipping_address: None,
        payment_method: None,
        client_ip: None,
        placed_at: Some(Utc.timestamp_millis_opt(at_ms).unwrap()),
    };
    Order::accept(new, Uuid::now_v7(), Utc::now(), TaxRate(0), None)
}

async fn publish(js: &jetstream::Context, order: &Order) {
    let message = PublishMessage::build()
        .payload(serde_json::to_vec(order).unwrap().into())
        .message_id(order.order_id.to_string());
    js.send_publish(broker::order_submitted_subject(order.order_id), message).await.unwrap().await.unwrap();
}

async fn wait_for_checkpoint(
    store: &DataStore,
    seq: u64,
    job: &mut tokio::task::JoinHandle<Result<(), analytics::AnalyticsError>>,
) {
    for _ in 0..200 {
        if job.is_finished() {
            panic!("the job stopped: {:?}", job.await);
        }
        if let Some(cp) = analytics::checkpoint::load(store, "orders").await.unwrap()
            && cp.next_seq > seq
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the job never committed sequence {seq}");
}

/// A string column as `Utf8`, whatever view type the reader chose.
fn text(column: &arrow::array::ArrayRef) -> arrow::array::StringArray {
    arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8).unwrap().as_string::<i32>().clone()
}

async fn query(store: &DataStore, sql: &str) -> Vec<RecordBatch> {
    let (ctx, _) = session(store, &QueryLimits::default()).await.unwrap();
    ctx.sql(sql).await.unwrap().collect().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_revenue_matches_an_independent_sum_and_late_rows_are_kept() {
    let mut server = NatsServer::start_temporary().await.unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = jetstream::new(client);
    ensure_topology(&js, &TopologySettings::default()).await.unwrap();
    let catalog = js.get_key_value(broker::CATALOG_BUCKET).await.unwrap();
    for (id, category) in [("kettle", "Kitchen"), ("mug", "Kitchen"), ("ball", "Sports")] {
        let product = Product {
            product_id: id.into(),
            name: id.into(),
            category: category.into(),
            unit_price: MinorUnits(100),
            currency: Currency::USD,
        };
        catalog.put(kv_key(id), serde_json::to_vec(&product).unwrap().into()).await.unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let store = DataStore::open(dir.path().to_str().unwrap()).unwrap();
    let manifest = "source = \"order_items\"\n[window]\nkind = \"tumbling\"\nsize = \"1m\"\n[watermark]\nout_of_order = \"10s\"\nallowed_lateness = \"3m\"\nidle_timeout = \"1h\"\n";
    let sql =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/revenue_by_category_1m.sql")).unwrap();
    let spec = Arc::new(parse_pipeline("revenue_by_category_1m", manifest, &sql).unwrap());
    let settings = LiveSettings {
        batch_max: 4,
        batch_wait: Duration::from_millis(50),
        idle_after: Duration::from_secs(3600),
        ..LiveSettings::default()
    };
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut job = tokio::spawn(run(js.clone(), store.clone(), vec![spec], settings, stop));

    // (placed_at offset, items); comments say how each one arrives.
    type Lines = Vec<(&'static str, u32, i64)>;
    let script: Vec<(i64, Lines)> = vec![
        (5_000, vec![("kettle", 1, 2_999), ("ball", 2, 1_050)]),
        (30_000, vec![("mug", 3, 333)]),
        (MIN + 1_000, vec![("ball", 1, 1)]),
        (55_000, vec![("kettle", 2, 2_999)]), // out of order, within 10 s: on time
        (2 * MIN + 500, vec![("mug", 1, 999)]),
        (3 * MIN + 20_000, vec![("ball", 1, 1_000)]),
        (45_000, vec![("mug", 1, 10_001)]), // window 0 closed: late, restates it
        (10 * MIN, vec![("kettle", 1, 100)]),
        (20_000, vec![("ball", 5, 7)]),  // 10 minutes behind: too late
        (60 * MIN, vec![("mug", 1, 1)]), // closes everything before
    ];
    let mut orders = Vec::new();
    for (offset, items) in &script {
        let o = order(T0 + offset, items);
        publish(&js, &o).await;
        orders.push(o);
        tokio::time::sleep(Duration::from_millis(60)).await; // several batches
    }
    wait_for_checkpoint(&store, orders.len() as u64, &mut job).await;
    stop_tx.send(true).unwrap();
    job.await.unwrap().unwrap();

    // The independent computation: every row but the too-late one.
    let mut expected: BTreeMap<(i64, String), i128> = BTreeMap::new();
    for (i, o) in orders.iter().enumerate() {
        if i == 8 || i == 9 {
            continue; // too late; and the last window is still open
        }
        let window = o.placed_at.timestamp_millis().div_euclid(MIN) * MIN;
        for item in &o.items {
            let category = if item.product_id == "ball" { "Sports" } else { "Kitchen" };
            *expected.entry((window, category.to_string())).or_default() += i128::from(item.line_total().0) * 100;
        }
    }
    let latest = query(
        &store,
        "SELECT window_start, category, revenue, window_version, late_count FROM revenue_by_category_1m r \
         WHERE window_version = (SELECT max(window_version) FROM revenue_by_category_1m l \
                                 WHERE l.window_start = r.window_start AND l.category = r.category) \
         ORDER BY window_start, category",
    )
    .await;
    let mut actual: BTreeMap<(i64, String), i128> = BTreeMap::new();
    let mut versions: BTreeMap<i64, (i32, i64)> = BTreeMap::new();
    for batch in &latest {
        let start = batch.column(0).as_primitive::<TimestampMicrosecondType>();
        let category = text(batch.column(1));
        let revenue = batch.column(2).as_primitive::<Decimal128Type>();
        let version = batch.column(3).as_primitive::<Int32Type>();
        let late = batch.column(4).as_primitive::<Int64Type>();
        for i in 0..batch.num_rows() {
            let window = start.value(i) / 1000;
            let previous = actual.insert((window, category.value(i).to_string()), revenue.value(i));
            assert!(previous.is_none(), "one latest row per window and category");
            versions.insert(window, (version.value(i), late.value(i)));
        }
    }
    assert_eq!(actual, expected, "revenue per window and category, to the cent");
    assert_eq!(versions[&T0], (2, 1), "the late order restated window 0 as version 2");
    assert_eq!(versions[&(T0 + MIN)], (1, 0));

    let first = query(&store, &format!(
        "SELECT sum(revenue) FROM revenue_by_category_1m WHERE window_version = 1 AND window_start = to_timestamp_micros({})",
        T0 * 1000
    ))
    .await;
    let v1 = first[0].column(0).as_primitive::<arrow::datatypes::Decimal128Type>().value(0);
    assert_eq!(v1, (2_999 + 2 * 1_050 + 3 * 333 + 2 * 2_999) * 100, "version 1 is what was known at close");

    let late = query(&store, "SELECT record_id, pipeline, source_table, stream_seq FROM late_events").await;
    assert_eq!(late.iter().map(RecordBatch::num_rows).sum::<usize>(), 1, "one row beyond the lateness");
    assert_eq!(text(late[0].column(0)).value(0), format!("{}:1", orders[8].order_id));
    assert_eq!(text(late[0].column(1)).value(0), "revenue_by_category_1m");
    assert_eq!(late[0].column(3).as_primitive::<Int64Type>().value(0), 9);

    let items = query(&store, "SELECT count(*), count(DISTINCT order_id || ':' || line_no) FROM order_items").await;
    let n: usize = orders.iter().map(|o| o.items.len()).sum();
    assert_eq!(items[0].column(0).as_primitive::<Int64Type>().value(0) as usize, n, "every item once");
    assert_eq!(items[0].column(1).as_primitive::<Int64Type>().value(0) as usize, n);
    server.stop().await.unwrap();
}

async fn publish_event(js: &jetstream::Context, event: &schemas::OrderEvent, message_id: &str) {
    let message = PublishMessage::build().payload(serde_json::to_vec(event).unwrap().into()).message_id(message_id);
    let subject = broker::order_event_subject(event.order_id, event.subject_suffix());
    js.send_publish(subject, message).await.unwrap().await.unwrap();
}

async fn count(store: &DataStore, sql: &str) -> (i64, i64) {
    let rows = query(store, sql).await;
    (rows[0].column(0).as_primitive::<Int64Type>().value(0), rows[0].column(1).as_primitive::<Int64Type>().value(0))
}

/// Repeats that JetStream's dedup window no longer catches (here: copies
/// published under other message ids) are dropped by id, before and after
/// the job restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_and_events_repeated_in_the_stream_are_stored_once() {
    use schemas::{OrderEvent, OrderStatus};
    let mut server = NatsServer::start_temporary().await.unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = jetstream::new(client);
    ensure_topology(&js, &TopologySettings::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = DataStore::open(dir.path().to_str().unwrap()).unwrap();
    let settings = LiveSettings { batch_max: 3, batch_wait: Duration::from_millis(50), ..LiveSettings::default() };

    let orders: Vec<Order> = (0..4).map(|i| order(T0 + i * 1_000, &[("kettle", 1, 500)])).collect();
    let events: Vec<OrderEvent> = orders
        .iter()
        .map(|o| {
            OrderEvent::status_changed(
                o.order_id,
                Some(OrderStatus::Pending),
                OrderStatus::Reserved,
                None,
                o.received_at,
            )
            .unwrap()
            .for_order(o)
        })
        .collect();
    let run_job = |stop| tokio::spawn(run(js.clone(), store.clone(), Vec::new(), settings.clone(), stop));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut job = run_job(stop);
    for o in &orders {
        publish(&js, o).await;
    }
    for (i, e) in events.iter().enumerate() {
        publish_event(&js, e, &e.event_id).await;
        if i == 1 {
            // A copy of the first order and of the first event, as a
            // republish after the dedup window stores them.
            let copy = PublishMessage::build()
                .payload(serde_json::to_vec(&orders[0]).unwrap().into())
                .message_id("copy-of-order-0");
            js.send_publish(broker::order_submitted_subject(orders[0].order_id), copy).await.unwrap().await.unwrap();
            publish_event(&js, &events[0], "copy-of-event-0").await;
        }
    }
    wait_for_checkpoint(&store, 5, &mut job).await;
    stop_tx.send(true).unwrap();
    job.await.unwrap().unwrap();

    // Restarted, the job still knows the ids: a later copy is dropped too.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut job = run_job(stop);
    publish_event(&js, &events[2], "a-late-copy-of-event-2").await;
    let extra = order(T0 + 9_000, &[("mug", 1, 100)]);
    publish(&js, &extra).await;
    wait_for_checkpoint(&store, 6, &mut job).await;
    for _ in 0..100 {
        let cp = analytics::checkpoint::load(&store, "order_events").await.unwrap();
        if cp.is_some_and(|c| c.next_seq > 6) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_tx.send(true).unwrap();
    job.await.unwrap().unwrap();

    assert_eq!(count(&store, "SELECT count(*), count(DISTINCT order_id) FROM orders").await, (5, 5));
    assert_eq!(count(&store, "SELECT count(*), count(DISTINCT event_id) FROM order_events").await, (4, 4));
    server.stop().await.unwrap();
}
