//! The forecasting layer over a seeded lake: the series builder agrees
//! with an independent DataFusion query, fraud-rejected orders are not
//! demand, a run is byte-identical when repeated and replaces its files,
//! and every row's bands are non-negative and nested.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use analytics::query::QueryLimits;
use analytics::store::DataStore;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{Date32Type, Float64Type, Int64Type};
use chrono::NaiveDate;
use forecast::series::{self, Selection, day_number};
use forecast::{ForecastOptions, forecast_lake};
use schemas::forecast::{DEMAND_FORECAST_TABLE, Scope};
use seed::{SeedConfig, seed_to_parquet};

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn seeded(
    orders: u64,
    days: u32,
) -> Result<(tempfile::TempDir, DataStore, NaiveDate), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = DataStore::open(&dir.path().to_string_lossy())?;
    let end = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
    let mut config = SeedConfig::new(11, orders, days, end);
    config.products = 60;
    seed_to_parquet(&store, &config, seed::SeedScreen::builtin()?, &[], 2, false).await?;
    Ok((dir, store, end))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_match_an_independent_query_and_exclude_fraud_rejections() -> TestResult {
    let (_dir, store, end) = seeded(6_000, 60).await?;
    let (ctx, _) = analytics::query::session(&store, &QueryLimits::default()).await?;
    let as_of = end - chrono::Duration::days(3);
    let all = series::load(&ctx, as_of, &Selection::Scopes(Scope::ALL.to_vec())).await?;

    // Independently: items by category and day, minus the orders whose
    // fraud review rejected them (NOT IN, no anti join), up to `as_of`.
    let sql = format!(
        "SELECT category, CAST(date_trunc('day', placed_at) AS DATE) AS d, SUM(CAST(quantity AS BIGINT)) AS units \
         FROM order_items WHERE placed_at < TIMESTAMP '{}T00:00:00Z' AND order_id NOT IN \
         (SELECT order_id FROM order_events WHERE reason = 'fraud_rejected' AND occurred_at < TIMESTAMP '{}T00:00:00Z') \
         GROUP BY 1, 2",
        as_of + chrono::Duration::days(1),
        as_of + chrono::Duration::days(1)
    );
    let mut expected: BTreeMap<(String, i32), f64> = BTreeMap::new();
    for batch in ctx.sql(&sql).await?.collect().await? {
        let (c, d, u) = (
            batch.column(0).as_string::<i32>(),
            batch.column(1).as_primitive::<Date32Type>(),
            batch.column(2).as_primitive::<Int64Type>(),
        );
        for i in 0..batch.num_rows() {
            expected.insert((c.value(i).to_string(), d.value(i)), u.value(i) as f64);
        }
    }
    let mut checked = 0;
    for s in all.iter().filter(|s| s.scope == Scope::Category) {
        let first = day_number(s.first_day);
        assert_eq!(first + s.units.len() as i32 - 1, day_number(as_of), "{} ends on as_of", s.key);
        for (i, units) in s.units.iter().enumerate() {
            let want = expected.remove(&(s.key.clone(), first + i as i32)).unwrap_or(0.0);
            assert_eq!(*units, want, "{} day {}", s.key, i);
            checked += 1;
        }
    }
    assert!(expected.is_empty(), "days the builder missed: {expected:?}");
    assert!(checked > 1_000, "{checked} category-days");

    // The total is the sum of the categories; a product sums into both.
    let total = all.iter().find(|s| s.scope == Scope::Total).unwrap();
    let by_category: f64 = all.iter().filter(|s| s.scope == Scope::Category).map(|s| s.units.iter().sum::<f64>()).sum();
    let by_product: f64 = all.iter().filter(|s| s.scope == Scope::Product).map(|s| s.units.iter().sum::<f64>()).sum();
    assert_eq!(total.units.iter().sum::<f64>(), by_category);
    assert_eq!(by_category, by_product);

    // Rejections exist in the seed, so the exclusion is exercised.
    let rejected = ctx
        .sql(&format!("SELECT count(*) FROM order_events WHERE reason = 'fraud_rejected' AND occurred_at < TIMESTAMP '{as_of}T00:00:00Z'"))
        .await?
        .collect()
        .await?;
    assert!(rejected[0].column(0).as_primitive::<Int64Type>().value(0) > 0, "the seed rejects some orders");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_deterministic_replaces_its_files_and_nests_its_bands() -> TestResult {
    let (_dir, store, end) = seeded(3_000, 70).await?;
    let options = ForecastOptions {
        as_of: Some(end),
        horizon: 14,
        scopes: vec![Scope::Category, Scope::Total],
        ..ForecastOptions::default()
    };
    let first = forecast_lake(&store, &options, None).await?;
    assert_eq!(first.as_of, Some(end));
    assert!(first.series > 0 && first.rows == first.series * 2 * 14, "{first:?}");
    let files = |store: DataStore| async move {
        let mut listed = store.list(&store.path(DEMAND_FORECAST_TABLE)).await.unwrap();
        listed.sort_by(|a, b| a.location.cmp(&b.location));
        let mut out = Vec::new();
        for meta in listed {
            out.push((meta.location.to_string(), store.get(&meta.location).await.unwrap().unwrap()));
        }
        out
    };
    let before = files(store.clone()).await;
    assert_eq!(before.len(), 2, "one file per scope: {:?}", before.iter().map(|f| &f.0).collect::<Vec<_>>());
    let history = store.list(&store.path(schemas::forecast::DEMAND_HISTORY_TABLE)).await?;
    assert_eq!(history.len(), 2, "and one history file per scope");
    let again = forecast_lake(&store, &ForecastOptions { threads: 1, ..options.clone() }, None).await?;
    assert_eq!(again.rows, first.rows);
    let after = files(store.clone()).await;
    assert_eq!(before, after, "same lake and as_of, one thread or two: the same bytes");

    let (ctx, _) = analytics::query::session(&store, &QueryLimits::default()).await?;
    let rows = ctx
        .sql(&format!(
            "SELECT count(*) AS n, count(DISTINCT scope || key || currency || metric) AS series, \
             sum(CASE WHEN lo95 < 0 OR lo95 > lo80 OR lo80 > forecast OR forecast > hi80 OR hi80 > hi95 THEN 1 ELSE 0 END) AS bad \
             FROM {DEMAND_FORECAST_TABLE} WHERE as_of = '{end}'"
        ))
        .await?
        .collect()
        .await?;
    let n = rows[0].column(0).as_primitive::<Int64Type>().value(0);
    let bad = rows[0].column(2).as_primitive::<Int64Type>().value(0);
    assert_eq!(n as usize, first.rows, "a re-run replaced, never added");
    assert_eq!(bad, 0, "bands are nested and non-negative");
    let models = ctx
        .sql(&format!("SELECT DISTINCT model, backtest_wape FROM {DEMAND_FORECAST_TABLE} WHERE scope = 'total' AND metric = 'units'"))
        .await?
        .collect()
        .await?;
    let wape = models[0].column(1).as_primitive::<Float64Type>();
    assert!(!wape.is_null(0) && wape.value(0) < 1.0, "the total's backtest WAPE is defined and sane");
    Ok(())
}
