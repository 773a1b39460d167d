//! The saga's guarantees end to end: real nats-server, real ingest, real
//! processors.

mod common;

use std::time::Duration;

use common::{Pipeline, TestResult, stock_level, tail_events, wait_for};
use futures::StreamExt;
use schemas::{CancelReason, OrderStatus, StockLevel};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flash_sale_sells_exactly_the_stock_to_the_first_buyers_in_line() -> TestResult {
    let p = Pipeline::start().await?;
    let (_processor, _stop) = p.processor("p1", |_| {}).await?;
    let tally = tail_events(&p.js).await?;
    p.set_stock("flash-tv", 100).await?;

    let buyers: Vec<(uuid::Uuid, u64)> = futures::stream::iter(0..10_000)
        .map(|i| {
            let p = &p;
            async move { p.order(&format!("buyer-{i}"), &[("flash-tv", 1)]).await }
        })
        .buffer_unordered(200)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let answered = wait_for(&tally, Duration::from_secs(120), "all buyers answered", |t| {
        let settled = buyers
            .iter()
            .filter(|(id, _)| matches!(t.last(id), Some(OrderStatus::Confirmed | OrderStatus::Cancelled)))
            .count();
        settled == buyers.len()
    })
    .await?;
    println!("flash sale: all 10,000 buyers answered {answered:?} after the last order was accepted");

    {
        let t = tally.lock().unwrap_or_else(|e| e.into_inner());
        let mut in_line = buyers.clone();
        in_line.sort_by_key(|(_, seq)| *seq);
        let winners: Vec<_> =
            in_line.iter().filter(|(id, _)| t.last(id) == Some(OrderStatus::Confirmed)).map(|(id, _)| *id).collect();
        assert_eq!(winners.len(), 100);
        let first_hundred: Vec<_> = in_line[..100].iter().map(|(id, _)| *id).collect();
        assert_eq!(winners, first_hundred, "the winners are the first 100 in stream order");
        let out_of_stock = buyers.iter().filter(|(id, _)| t.reasons.get(id) == Some(&CancelReason::OutOfStock)).count();
        assert_eq!(out_of_stock, 9_900);
        assert!(t.duplicates().is_empty(), "an event was published twice: {:?}", &t.duplicates()[..1]);
    }
    assert_eq!(stock_level(&p.js, "flash-tv").await?, StockLevel { available: 0, reserved: 0, sold: 100 });
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_failure_storm_releases_every_reservation_exactly_once() -> TestResult {
    let p = Pipeline::start().await?;
    let (_processor, _stop) = p.processor("p1", |c| c.workers.payment_failure_rate = 0.3).await?;
    let tally = tail_events(&p.js).await?;
    let products: Vec<String> = (0..20).map(|i| format!("sku-{i}")).collect();
    for product in &products {
        p.set_stock(product, 1_000).await?;
    }
    let orders: Vec<(uuid::Uuid, Vec<(String, u32)>)> = futures::stream::iter(0..5_000_u32)
        .map(|i| {
            let p = &p;
            let products = &products;
            async move {
                let lines: Vec<(String, u32)> = (0..1 + i % 3)
                    .map(|k| (products[((i * 7 + k * 3) % 20) as usize].clone(), 1 + (i + k) % 2))
                    .collect();
                let refs: Vec<(&str, u32)> = lines.iter().map(|(s, q)| (s.as_str(), *q)).collect();
                p.order(&format!("c-{}", i % 400), &refs).await.map(|(id, _)| (id, lines))
            }
        })
        .buffer_unordered(100)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    wait_for(&tally, Duration::from_secs(120), "every order settled", |t| {
        orders.iter().all(|(id, _)| matches!(t.last(id), Some(OrderStatus::Confirmed | OrderStatus::Cancelled)))
    })
    .await?;

    let sold = {
        let t = tally.lock().unwrap_or_else(|e| e.into_inner());
        let declined =
            orders.iter().filter(|(id, _)| t.reasons.get(id) == Some(&CancelReason::PaymentDeclined)).count();
        assert!((1_200..1_800).contains(&declined), "about 30% declined, got {declined}");
        assert!(t.duplicates().is_empty());
        // What confirmed orders bought is exactly what is sold; nothing is left
        // reserved, and everything else is available again.
        let mut sold = std::collections::HashMap::<String, u64>::new();
        for (id, lines) in &orders {
            if t.last(id) == Some(OrderStatus::Confirmed) {
                for (sku, q) in lines {
                    *sold.entry(sku.clone()).or_default() += u64::from(*q);
                }
            }
        }
        sold
    };
    for product in &products {
        let level = stock_level(&p.js, product).await?;
        let expected_sold = sold.get(product).copied().unwrap_or(0);
        assert_eq!(
            level,
            StockLevel { available: 1_000 - expected_sold, reserved: 0, sold: expected_sold },
            "{product}"
        );
    }
    Ok(())
}
