//! Exactly-once beyond JetStream's dedup window: an engine killed after it
//! published events but before it snapshotted, and left down longer than
//! the window, resumes without publishing any event a second time.

mod common;

use std::time::Duration;

use broker::TopologySettings;
use common::{Pipeline, TestResult, stock_level, tail_events, wait_for};
use futures::StreamExt;
use schemas::{OrderStatus, StockLevel};

/// Posts `n` orders of one unit of `product`; returns their ids.
async fn post_orders(p: &Pipeline, prefix: &str, n: usize, product: &str) -> Result<Vec<uuid::Uuid>, common::Error> {
    futures::stream::iter(0..n)
        .map(|i| async move { p.order(&format!("{prefix}-{i}"), &[(product, 1)]).await.map(|(id, _)| id) })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_down_longer_than_the_dedup_window_publishes_nothing_twice() -> TestResult {
    let window = Duration::from_secs(1);
    let p = Pipeline::start_with(TopologySettings { duplicate_window: window, ..TopologySettings::default() }).await?;
    let tally = tail_events(&p.js).await?;
    p.set_stock("sku", 1_000).await?;
    let confirmed = |ids: &[uuid::Uuid]| {
        let ids = ids.to_vec();
        move |t: &common::Tally| ids.iter().all(|id| t.last(id) == Some(OrderStatus::Confirmed))
    };

    // A first engine snapshots as it stops: the snapshot records where the
    // output streams stood.
    let (first, stop_first) = p.processor("p1", |c| c.runner.snapshot_every = Duration::from_millis(100)).await?;
    let early = post_orders(&p, "early", 30, "sku").await?;
    wait_for(&tally, Duration::from_secs(30), "the early orders confirmed", confirmed(&early)).await?;
    stop_first.send(true)?;
    first.join().await?;

    // A second engine never snapshots, and is killed (its tasks aborted)
    // after publishing the next orders' events.
    let (second, _keep) = p.processor("p2", |c| c.runner.snapshot_every = Duration::from_secs(3600)).await?;
    let late = post_orders(&p, "late", 40, "sku").await?;
    wait_for(&tally, Duration::from_secs(30), "the late orders confirmed", confirmed(&late)).await?;
    drop(second);

    // Down for well past the dedup window (and the lease's expiry), with
    // more orders waiting.
    let waiting = post_orders(&p, "waiting", 20, "sku").await?;
    tokio::time::sleep(window * 4).await;

    let (third, stop_third) = p.processor("p3", |_| {}).await?;
    wait_for(&tally, Duration::from_secs(30), "the waiting orders confirmed", confirmed(&waiting)).await?;
    // Events published twice would arrive by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let t = tally.lock().unwrap_or_else(|e| e.into_inner());
        assert!(t.duplicates().is_empty(), "published twice: {:?}", t.duplicates());
        for id in early.iter().chain(&late).chain(&waiting) {
            assert_eq!(t.statuses[id], [OrderStatus::Reserved, OrderStatus::Confirmed], "{id}");
        }
    }
    assert!(
        third.metrics.encode().contains("orderstream_processor_engine_resume_skipped 80"),
        "{}",
        third.metrics.encode()
    );
    assert_eq!(stock_level(&p.js, "sku").await?, StockLevel { available: 910, reserved: 0, sold: 90 });
    let report = processor::audit::audit(&p.js).await?;
    assert!(report.is_clean(true), "{report:#?}");
    stop_third.send(true)?;
    third.join().await?;
    Ok(())
}
