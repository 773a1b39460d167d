//! The bought-together counts against an independent DataFusion self-join
//! over a small seeded lake.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use analytics::query::QueryLimits;
use analytics::store::DataStore;
use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use chrono::NaiveDate;
use seed::{SeedConfig, seed_to_parquet};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_counts_match_a_self_join() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = DataStore::open(&dir.path().to_string_lossy())?;
    let mut config = SeedConfig::new(5, 4_000, 20, NaiveDate::from_ymd_opt(2026, 11, 21).unwrap());
    config.products = 40;
    seed_to_parquet(&store, &config, seed::SeedScreen::builtin()?, &[], 2, false).await?;
    let (ctx, _) = analytics::query::session(&store, &QueryLimits::default()).await?;

    let model = customers::affinity::bought_together(&ctx, 2).await?;
    assert!(!model.is_empty(), "a seeded lake has products bought together");

    let sql = "WITH baskets AS (SELECT DISTINCT order_id, product_id FROM order_items), \
               counts AS (SELECT product_id, count(*) AS n FROM baskets GROUP BY product_id) \
               SELECT a.product_id, b.product_id AS other_id, count(*) AS support, \
                      min(ca.n) AS product_orders, min(cb.n) AS other_orders \
               FROM baskets a JOIN baskets b ON a.order_id = b.order_id AND a.product_id <> b.product_id \
               JOIN counts ca ON ca.product_id = a.product_id JOIN counts cb ON cb.product_id = b.product_id \
               GROUP BY a.product_id, b.product_id HAVING count(*) >= 2";
    let mut expected: BTreeMap<(String, String), (i64, i64, i64)> = BTreeMap::new();
    for batch in ctx.sql(sql).await?.collect().await? {
        let text = |i: usize| arrow::compute::cast(batch.column(i), &arrow::datatypes::DataType::Utf8).unwrap();
        let (a, b) = (text(0), text(1));
        let (a, b) = (a.as_string::<i32>(), b.as_string::<i32>());
        let (s, pa, pb) = (
            batch.column(2).as_primitive::<Int64Type>(),
            batch.column(3).as_primitive::<Int64Type>(),
            batch.column(4).as_primitive::<Int64Type>(),
        );
        for i in 0..batch.num_rows() {
            expected.insert((a.value(i).to_string(), b.value(i).to_string()), (s.value(i), pa.value(i), pb.value(i)));
        }
    }
    let got: BTreeMap<(String, String), (i64, i64, i64)> = model
        .iter()
        .map(|r| {
            (
                (r.product_id.clone(), r.other_id.clone()),
                (r.support as i64, r.product_orders as i64, r.other_orders as i64),
            )
        })
        .collect();
    assert_eq!(got, expected);

    // The scores follow from the counts; a product never recommends itself.
    let orders: f64 = ctx.sql("SELECT count(DISTINCT order_id) FROM order_items").await?.collect().await?[0]
        .column(0)
        .as_primitive::<Int64Type>()
        .value(0) as f64;
    for r in &model {
        assert_ne!(r.product_id, r.other_id);
        let (s, a, b) = (r.support as f64, r.product_orders as f64, r.other_orders as f64);
        assert!((r.confidence - s / a).abs() < 1e-12);
        assert!((r.lift - s * orders / (a * b)).abs() < 1e-9);
        assert!((r.cosine - s / (a * b).sqrt()).abs() < 1e-12 && r.cosine <= 1.0);
    }
    Ok(())
}
