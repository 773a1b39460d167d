//! The seed's own checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::calendar::*;
use crate::catalog::*;
use crate::day::*;
use crate::verdict::*;
use crate::write::*;
use analytics::pipeline::PipelineSpec;
use chrono::{DateTime, NaiveDate, Utc};

fn config() -> SeedConfig {
    SeedConfig::new(42, 20_000, 30, NaiveDate::from_ymd_opt(2025, 12, 10).unwrap())
}

#[test]
fn black_friday_is_the_fourth_friday_of_november() {
    assert_eq!(black_friday(2025), NaiveDate::from_ymd_opt(2025, 11, 28).unwrap());
    assert_eq!(black_friday(2026), NaiveDate::from_ymd_opt(2026, 11, 27).unwrap());
}

#[test]
fn baskets_hold_companions_of_their_first_product() {
    let n = 2_000;
    for i in [0, 1, 49, 50, 777, 1_999] {
        let with = companions(i, n);
        assert!(with.iter().all(|&q| q < n && q != i), "{i}: {with:?}");
        assert_eq!(with[0] % 50, i % 50, "a bundle is of the product's category");
        assert_eq!(with[2] % 50, (i % 50) ^ 1, "an accessory is of the paired category");
    }
    let config = config();
    let catalog = products(&config);
    let day = generate_day(&config, &catalog, 3, 2_000);
    let index = |id: &str| id.trim_start_matches("p-").parse::<usize>().unwrap();
    let (mut pairs, mut with_companion) = (0, 0);
    for o in day.orders.iter().filter(|o| o.fraud.is_none() && o.order.items.len() >= 2) {
        let first = index(&o.order.items[0].product_id);
        for item in &o.order.items[1..] {
            pairs += 1;
            with_companion += usize::from(companions(first, catalog.len()).contains(&index(&item.product_id)));
        }
    }
    let share = with_companion as f64 / pairs as f64;
    assert!(pairs > 500 && (0.5..0.7).contains(&share), "{with_companion} of {pairs} lines are companions");
}

#[test]
fn a_seed_is_deterministic_and_has_the_asked_shape() {
    let config = config();
    let catalog = products(&config);
    let counts = orders_per_day(&config);
    assert_eq!(counts.iter().sum::<u64>(), 20_000);
    let bf = (black_friday(2025) - config.start()).num_days() as usize;
    assert!(counts[bf] as f64 > 3.0 * counts[bf - 7] as f64, "Black Friday spikes");
    let a = generate_day(&config, &catalog, 3, counts[3]);
    let b = generate_day(&config, &catalog, 3, counts[3]);
    assert_eq!(
        a.orders.iter().map(|o| o.order.order_id).collect::<Vec<_>>(),
        b.orders.iter().map(|o| o.order.order_id).collect::<Vec<_>>()
    );
    let mut screen = SeedScreen::builtin().unwrap();
    let days: Vec<SeedDay> = (0..config.days)
        .map(|d| {
            let mut day = generate_day(&config, &catalog, d, counts[d as usize]);
            settle(&config, d, &mut day, &mut screen);
            day
        })
        .collect();
    let orders: Vec<&SeedOrder> = days.iter().flat_map(|d| &d.orders).collect();
    let n = orders.len() as f64;
    let items: usize = orders.iter().map(|o| o.order.items.len()).sum();
    assert!((2.2..2.8).contains(&(items as f64 / n)), "items per order {}", items as f64 / n);
    let mut totals: Vec<i64> = orders.iter().map(|o| o.order.total.0).collect();
    totals.sort_unstable();
    let median = totals[totals.len() / 2] as f64 / 100.0;
    assert!((45.0..110.0).contains(&median), "median order ${median}");
    let fraud = orders.iter().filter(|o| o.fraud.is_some()).count() as f64 / n;
    assert!((0.01..0.04).contains(&fraud), "fraud share {fraud}");
    let evening = orders.iter().filter(|o| (19..22).contains(&o.order.placed_at.hour_of_day())).count() as f64 / n;
    assert!(evening > 0.18, "7–10 pm share {evening}");
    let stock_out = catalog.iter().filter(|p| p.stock_level == "out").count() as f64 / catalog.len() as f64;
    assert!((0.07..0.13).contains(&stock_out));
    let cancelled = orders
        .iter()
        .filter(|o| o.events.last().and_then(|e| e.new_status()) == Some(schemas::OrderStatus::Cancelled))
        .count() as f64
        / n;
    assert!((0.05..0.2).contains(&cancelled), "cancelled share {cancelled}");
}

/// Every date's status events in one file, and every event written once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_one_file_per_date() {
    let store = analytics::store::DataStore::open("memory:///seed-test").unwrap();
    let config = SeedConfig::new(7, 3_000, 12, NaiveDate::from_ymd_opt(2026, 3, 20).unwrap());
    let report = seed_to_parquet(&store, &config, SeedScreen::builtin().unwrap(), &[], 2, false).await.unwrap();
    let mut per_date: BTreeMap<String, usize> = BTreeMap::new();
    let mut rows = 0u64;
    for meta in store.list(&store.path("order_events")).await.unwrap() {
        let dir = meta.location.as_ref().rsplit_once('/').unwrap().0.to_string();
        *per_date.entry(dir).or_default() += 1;
        let bytes = store.get(&meta.location).await.unwrap().unwrap();
        let file = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        rows += file.metadata().file_metadata().num_rows() as u64;
    }
    assert!(per_date.len() >= 12, "events fall on every generated day and after: {per_date:?}");
    assert!(per_date.values().all(|n| *n == 1), "{per_date:?}");
    assert_eq!(rows, report.events);
}

/// The seeded pipeline outputs are final, version 1, and each window's
/// revenue equals the sum over the items it covers, to the cent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_rollups_equal_the_items_they_summarise() {
    let dir = tempfile::tempdir().unwrap();
    let store = analytics::store::DataStore::open(dir.path().to_str().unwrap()).unwrap();
    // This seed's third day ends in a burst of orders that runs past
    // midnight into the fourth: those rows belong to the fourth day's
    // windows alone.
    let config = SeedConfig::new(5, 12_000, 4, NaiveDate::from_ymd_opt(2026, 3, 23).unwrap());
    let specs: Vec<Arc<PipelineSpec>> =
        analytics::builtin::builtin_pipelines().unwrap().into_iter().map(Arc::new).collect();
    seed_to_parquet(&store, &config, SeedScreen::builtin().unwrap(), &specs, 2, false).await.unwrap();
    let limits = analytics::query::QueryLimits { memory_bytes: 256 << 20, target_partitions: 2 };
    let (ctx, _) = analytics::query::session(&store, &limits).await.unwrap();
    for (table, interval) in [("revenue_by_category_1h", "1 hour"), ("revenue_by_category_1d", "1 day")] {
        let sql = format!(
            "WITH raw AS (SELECT date_bin(INTERVAL '{interval}', placed_at, TIMESTAMP '1970-01-01T00:00:00Z') AS window_start, \
                    category, currency, sum(line_total) AS revenue, count(DISTINCT order_id) AS orders FROM order_items GROUP BY 1, 2, 3) \
             SELECT (SELECT count(*) FROM raw) AS raw_rows, (SELECT count(*) FROM {table}) AS rollup_rows, \
                    (SELECT count(*) FROM {table} WHERE NOT is_final OR window_version <> 1 OR late_count <> 0) AS odd, \
                    count(*) FILTER (WHERE r.revenue IS NULL OR r.revenue <> raw.revenue OR r.orders <> raw.orders) \
             FROM raw LEFT JOIN {table} r USING (window_start, category, currency)"
        );
        let batches = analytics::query::run(&ctx, &sql).await.unwrap();
        let row: Vec<i64> = (0..4)
            .map(|c| batches[0].column(c).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().value(0))
            .collect();
        assert!(row[0] > 4, "{table}: windows × categories over 4 days, got {}", row[0]);
        assert_eq!(row[1], row[0], "{table}: one row per window, category and currency");
        assert_eq!(row[2..], [0, 0], "{table}: every row final, version 1, no late rows, equal to the items");
    }
    // The fraud review rows are exactly the events in and out of review,
    // each in its own day's window.
    let sql = "WITH raw AS (SELECT order_id, status, from_status, occurred_at FROM order_events \
                           WHERE status = 'flagged' OR from_status = 'flagged') \
               SELECT (SELECT count(*) FROM raw WHERE status = 'flagged') AS flagged, \
                      (SELECT count(*) FROM raw) AS raw_rows, (SELECT count(*) FROM fraud_reviews_1d) AS rollup_rows, \
                      (SELECT count(*) FROM fraud_reviews_1d WHERE NOT is_final OR window_version <> 1 \
                         OR window_start <> date_bin(INTERVAL '1 day', occurred_at, TIMESTAMP '1970-01-01T00:00:00Z')) AS odd, \
                      (SELECT count(*) FROM (SELECT order_id, status, from_status, occurred_at FROM raw \
                         EXCEPT SELECT order_id, status, from_status, occurred_at FROM fraud_reviews_1d)) AS missing";
    let batches = analytics::query::run(&ctx, sql).await.unwrap();
    let row: Vec<i64> = (0..5)
        .map(|c| batches[0].column(c).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().value(0))
        .collect();
    assert!(row[0] > 10, "about 2% of 12,000 orders are flagged, got {}", row[0]);
    assert!(row[1] > row[0], "most flagged orders are reviewed: {row:?}");
    assert_eq!(row[2], row[1], "one rollup row per event in or out of review");
    assert_eq!(row[3..], [0, 0], "final, version 1, in its day's window, and none missing");
}

trait Hour {
    fn hour_of_day(&self) -> u32;
}
impl Hour for DateTime<Utc> {
    fn hour_of_day(&self) -> u32 {
        chrono::Timelike::hour(self)
    }
}
