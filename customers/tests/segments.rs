//! Segments, cohorts and new-vs-returning against a hand-computed lake of
//! five customers; the recommender's rules on its own model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use analytics::parquet_out::{FileLayout, encode};
use analytics::query::QueryLimits;
use analytics::store::DataStore;
use arrow::array::{
    ArrayRef, AsArray, BooleanArray, Decimal128Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, new_null_array,
};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type};
use chrono::{NaiveDate, TimeZone, Utc};
use customers::CustomersOptions;
use schemas::tables::{MONEY_PRECISION, MONEY_SCALE, Table};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A batch of `table` with the given columns; the rest zero, "x" or null.
fn batch(table: Table, rows: usize, given: HashMap<&str, ArrayRef>) -> RecordBatch {
    let schema = table.schema();
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            if let Some(c) = given.get(f.name().as_str()) {
                return c.clone();
            }
            if f.is_nullable() {
                return new_null_array(f.data_type(), rows);
            }
            match f.data_type() {
                DataType::Utf8 => Arc::new(StringArray::from(vec!["x"; rows])) as ArrayRef,
                DataType::Int32 => Arc::new(Int32Array::from(vec![0; rows])),
                DataType::Int64 => Arc::new(Int64Array::from(vec![0i64; rows])),
                DataType::Boolean => Arc::new(BooleanArray::from(vec![false; rows])),
                DataType::Decimal128(..) => Arc::new(money(&vec![0; rows])),
                DataType::Timestamp(..) => {
                    Arc::new(TimestampMicrosecondArray::from(vec![0i64; rows]).with_timezone("UTC"))
                }
                other => panic!("no default for {other}"),
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

fn money(cents: &[i64]) -> Decimal128Array {
    Decimal128Array::from(cents.iter().map(|c| i128::from(*c) * 100).collect::<Vec<_>>())
        .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)
        .unwrap()
}

fn text(values: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

fn at(day: &str) -> i64 {
    let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
    Utc.from_utc_datetime(&d.and_hms_opt(12, 0, 0).unwrap()).timestamp_micros()
}

async fn put(store: &DataStore, table: Table, day: &str, batch: RecordBatch) {
    let bytes = encode(&table.schema(), &[batch], &FileLayout::new(&[], &[])).unwrap();
    store.put(&store.path(&format!("{}/date={day}/part.parquet", table.name())), bytes).await.unwrap();
}

/// (order, customer, day, total in cents, products)
type Row = (&'static str, &'static str, &'static str, i64, &'static [&'static str]);

const ORDERS: [Row; 13] = [
    ("o01", "A", "2026-01-10", 10_000, &["p1", "p2"]),
    ("o02", "B", "2026-01-20", 2_000, &["p1", "p2", "p3"]),
    ("o03", "C", "2026-02-03", 4_000, &["p1", "p2"]),
    ("o04", "A", "2026-02-15", 5_000, &["p1", "p3"]),
    ("o05", "C", "2026-02-20", 1_000, &["p4"]),
    ("o06", "B", "2026-03-01", 50_000, &["p1", "p2"]), // cancelled
    ("o07", "E", "2026-05-05", 6_000, &["p2", "p3"]),
    ("o08", "E", "2026-06-01", 1_500, &["p5"]),
    ("o09", "A", "2026-06-20", 3_000, &["p4", "p5"]),
    ("o10", "D", "2026-06-29", 1_000, &["p1"]),
    ("o11", "D", "2026-06-29", 500, &["p6"]),
    ("o12", "E", "2026-07-02", 9_900, &["p1", "p2"]), // after as_of
    ("o13", "F", "2026-07-03", 9_900, &["p6"]),       // after as_of
];

async fn lake() -> (tempfile::TempDir, DataStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = DataStore::open(&dir.path().to_string_lossy()).unwrap();
    let days: std::collections::BTreeSet<&str> = ORDERS.iter().map(|r| r.2).collect();
    for day in days {
        let rows: Vec<&Row> = ORDERS.iter().filter(|r| r.2 == day).collect();
        let orders = batch(
            Table::Orders,
            rows.len(),
            HashMap::from([
                ("order_id", text(&rows.iter().map(|r| r.0).collect::<Vec<_>>())),
                ("customer_id", text(&rows.iter().map(|r| r.1).collect::<Vec<_>>())),
                (
                    "placed_at",
                    Arc::new(
                        TimestampMicrosecondArray::from(rows.iter().map(|r| at(r.2)).collect::<Vec<_>>())
                            .with_timezone("UTC"),
                    ) as ArrayRef,
                ),
                ("currency", text(&vec!["USD"; rows.len()])),
                ("total", Arc::new(money(&rows.iter().map(|r| r.3).collect::<Vec<_>>())) as ArrayRef),
            ]),
        );
        put(&store, Table::Orders, day, orders).await;
        let lines: Vec<(&str, &str, &str)> =
            rows.iter().flat_map(|r| r.4.iter().map(move |p| (r.0, r.1, *p))).collect();
        let category = |p: &str| if p == "p6" { "Garden" } else { "Electronics" };
        let items = batch(
            Table::OrderItems,
            lines.len(),
            HashMap::from([
                ("order_id", text(&lines.iter().map(|l| l.0).collect::<Vec<_>>())),
                ("customer_id", text(&lines.iter().map(|l| l.1).collect::<Vec<_>>())),
                ("product_id", text(&lines.iter().map(|l| l.2).collect::<Vec<_>>())),
                ("category", text(&lines.iter().map(|l| category(l.2)).collect::<Vec<_>>())),
                ("currency", text(&vec!["USD"; lines.len()])),
            ]),
        );
        put(&store, Table::OrderItems, day, items).await;
    }
    let cancel = batch(
        Table::OrderEvents,
        1,
        HashMap::from([("order_id", text(&["o06"])), ("status", text(&["cancelled"])), ("event_id", text(&["e1"]))]),
    );
    put(&store, Table::OrderEvents, "2026-03-01", cancel).await;
    (dir, store)
}

fn strings(b: &RecordBatch, name: &str) -> Vec<String> {
    let c = arrow::compute::cast(b.column_by_name(name).unwrap(), &DataType::Utf8).unwrap();
    c.as_string::<i32>().iter().map(|s| s.unwrap_or_default().to_string()).collect()
}

async fn rows(store: &DataStore, sql: &str) -> Vec<RecordBatch> {
    let (ctx, _) = analytics::query::session(store, &QueryLimits::default()).await.unwrap();
    ctx.sql(sql).await.unwrap().collect().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_cohorts_and_days_equal_the_hand_computed_figures() -> TestResult {
    let (_dir, store) = lake().await;
    let as_of = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
    let report =
        customers::build(&store, &CustomersOptions { as_of: Some(as_of), min_support: 2, ..Default::default() })
            .await?;
    assert_eq!(report.customers, 5, "F ordered after as_of");

    let segments = rows(
        &store,
        "SELECT customer_id, orders, CAST(lifetime_value AS VARCHAR) AS ltv, CAST(average_order_value AS VARCHAR) AS aov, \
         days_since_last_order, high_value, churn_risk, segment FROM customer_segments WHERE as_of = '2026-06-30' ORDER BY customer_id",
    )
    .await;
    let b = &segments[0];
    assert_eq!(strings(b, "customer_id"), ["A", "B", "C", "D", "E"]);
    assert_eq!(
        b.column(1).as_primitive::<Int64Type>().values().to_vec(),
        [3, 1, 2, 2, 2],
        "B's cancelled order is not kept"
    );
    assert_eq!(strings(b, "ltv"), ["180.0000", "20.0000", "50.0000", "15.0000", "75.0000"]);
    assert_eq!(strings(b, "aov"), ["60.0000", "20.0000", "25.0000", "7.5000", "37.5000"]);
    // Days from each last order (noon) to the end of as_of.
    assert_eq!(b.column(4).as_primitive::<Int32Type>().values().to_vec(), [10, 161, 130, 1, 29]);
    assert_eq!(strings(b, "segment"), ["high_value", "churn_risk", "churn_risk", "returning", "returning"]);
    let high: Vec<bool> = b.column(5).as_boolean().iter().map(|v| v.unwrap()).collect();
    assert_eq!(high, [true, false, false, false, false], "the top 10% of five is one customer");

    let cohorts = rows(
        &store,
        "SELECT CAST(cohort AS VARCHAR) AS cohort, month_offset, customers, active, retention FROM customer_cohorts \
         WHERE as_of = '2026-06-30' ORDER BY cohort, month_offset",
    )
    .await;
    let mut matrix: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for b in &cohorts {
        let (c, n, a) =
            (strings(b, "cohort"), b.column(2).as_primitive::<Int64Type>(), b.column(3).as_primitive::<Int64Type>());
        let r = b.column(4).as_primitive::<Float64Type>();
        for (i, cohort) in c.into_iter().enumerate() {
            assert!((r.value(i) - a.value(i) as f64 / n.value(i) as f64).abs() < 1e-12);
            matrix.entry(cohort).or_default().push((n.value(i), a.value(i)));
        }
    }
    let expected: BTreeMap<String, Vec<(i64, i64)>> = [
        ("2026-01-01", vec![(2, 2), (2, 1), (2, 0), (2, 0), (2, 0), (2, 1)]),
        ("2026-02-01", vec![(1, 1), (1, 0), (1, 0), (1, 0), (1, 0)]),
        ("2026-05-01", vec![(1, 1), (1, 1)]),
        ("2026-06-01", vec![(1, 1)]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(matrix, expected);

    let daily = rows(
        &store,
        "SELECT CAST(day AS VARCHAR) AS day, new_customers, returning_customers, new_customer_orders, returning_customer_orders \
         FROM customers_daily WHERE as_of = '2026-06-30' ORDER BY day",
    )
    .await;
    let mut got = Vec::new();
    for b in &daily {
        for (i, day) in strings(b, "day").into_iter().enumerate() {
            let n = |c: usize| b.column(c).as_primitive::<Int64Type>().value(i);
            got.push((day, n(1), n(2), n(3), n(4)));
        }
    }
    let want: Vec<(String, i64, i64, i64, i64)> = [
        ("2026-01-10", 1, 0, 1, 0),
        ("2026-01-20", 1, 0, 1, 0),
        ("2026-02-03", 1, 0, 1, 0),
        ("2026-02-15", 0, 1, 0, 1),
        ("2026-02-20", 0, 1, 0, 1),
        ("2026-05-05", 1, 0, 1, 0),
        ("2026-06-01", 0, 1, 0, 1),
        ("2026-06-20", 0, 1, 0, 1),
        ("2026-06-29", 1, 0, 2, 0),
    ]
    .into_iter()
    .map(|(d, a, b, c, e)| (d.to_string(), a, b, c, e))
    .collect();
    assert_eq!(got, want);

    // What each customer bought, most recent first: A's last order held p4
    // and p5; B's cancelled order is in it too (a purchase attempt is not
    // a thing to recommend back); E's order after as_of is not.
    let bought = rows(
        &store,
        "SELECT customer_id, product_id, CAST(last_bought AS VARCHAR) AS last, lines FROM customer_products \
         WHERE as_of = '2026-06-30' AND customer_id IN ('A', 'B', 'E')",
    )
    .await;
    let mut listed = Vec::new();
    for b in &bought {
        let (who, what, last) = (strings(b, "customer_id"), strings(b, "product_id"), strings(b, "last"));
        let lines = b.column(3).as_primitive::<Int64Type>();
        for (i, ((who, what), last)) in who.iter().zip(&what).zip(&last).enumerate() {
            listed.push(format!("{who} {what} {last} {}", lines.value(i)));
        }
    }
    assert_eq!(
        listed,
        [
            "A p4 2026-06-20 1",
            "A p5 2026-06-20 1",
            "A p1 2026-02-15 2",
            "A p3 2026-02-15 1",
            "A p2 2026-01-10 1",
            "B p1 2026-03-01 2",
            "B p2 2026-03-01 2",
            "B p3 2026-01-20 1",
            "E p5 2026-06-01 1",
            "E p2 2026-05-05 1",
            "E p3 2026-05-05 1",
        ]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommendations_follow_the_pairs_and_never_repeat_the_basket() -> TestResult {
    let (_dir, store) = lake().await;
    let as_of = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
    customers::build(&store, &CustomersOptions { as_of: Some(as_of), min_support: 1, ..Default::default() }).await?;
    let (ctx, _) = analytics::query::session(&store, &QueryLimits::default()).await?;
    let model = customers::recommend::Recommender::load(&ctx, as_of).await?;

    // p1 and p2 share 4 orders up to as_of (o01, o02, o03, o06): the only
    // pair at the thin-support bar (3); the rest of the list is p1's
    // category's bestsellers.
    let picks = model.for_product("p1", None, 10);
    assert_eq!(picks[0].product_id, "p2");
    assert_eq!(picks[0].support, 4);
    assert_eq!(picks[0].reason, schemas::customers::RecommendationReason::BoughtTogether);
    assert!(picks.iter().all(|p| p.product_id != "p1"), "never the product itself: {picks:?}");
    assert!(picks[1..].iter().all(|p| p.reason == schemas::customers::RecommendationReason::CategoryBestseller));
    let ids: Vec<&str> = picks.iter().map(|p| p.product_id.as_str()).collect();
    assert_eq!(ids, ["p2", "p3", "p4", "p5"], "Electronics by orders, then id; Garden's p6 is another category");
    assert_eq!(model.for_product("p1", None, 1).len(), 1, "the limit holds");
    assert!(!model.knows("p9"));
    assert_eq!(
        model.for_product("p9", Some("Garden"), 10).iter().map(|p| p.product_id.as_str()).collect::<Vec<_>>(),
        ["p6"]
    );

    // A customer who bought p1 and p4: neither comes back.
    let bought: HashSet<String> = ["p1", "p4"].map(String::from).into();
    let picks = model.for_customer(&["p1".to_string(), "p4".to_string()], &bought, 10);
    assert!(!picks.is_empty());
    assert_eq!(picks[0].product_id, "p2");
    assert!(picks.iter().all(|p| !bought.contains(&p.product_id)), "{picks:?}");
    assert_eq!(model.popular("p1", 2), ["p2", "p3"]);
    assert!(picks.iter().all(|p| p.product_id != "p1" && p.score > 0.0));
    Ok(())
}
