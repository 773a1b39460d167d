//! `orderstream seed --publish`: the seeded catalog into the `CATALOG` and
//! `STOCK` buckets (through the processor's import), the side tables to
//! Parquet, and the orders through JetStream at a steady rate, in time
//! order, each with `Nats-Msg-Id = order_id` so a re-run adds nothing.

use std::time::{Duration, Instant};

use analytics::seed::{SeedConfig, generate_day, orders_per_day, products};
use anyhow::{Context, Result};
use async_nats::jetstream::{self, message::PublishMessage};
use futures::StreamExt;

use crate::analytics_cli::SeedArgs;

pub async fn publish(args: &SeedArgs, config: &SeedConfig) -> Result<()> {
    let client = broker::connect(&args.nats.nats_url, "orderstream-seed").await?;
    let js = jetstream::new(client.clone());
    broker::ensure_topology(&js, &args.nats.topology()).await?;
    let catalog = products(config);
    let entries: Vec<processor::catalog::CatalogEntry> = catalog
        .iter()
        .map(|p| processor::catalog::CatalogEntry { product: p.product.clone(), stock: p.initial_stock })
        .collect();
    let imported = processor::catalog::import(&js, &format!("seed {}", config.seed), &entries).await?;
    println!("imported {imported} products");
    // The side tables and the fraud ground truth go straight to Parquet; the
    // orders and their events reach Parquet through the analytics job.
    let store = analytics::store::DataStore::open(&args.output)?;
    analytics::seed::write_side_tables(&store, config, &catalog).await?;
    let counts = orders_per_day(config);
    let bar = analytics::replay::progress_bar(!args.no_progress, config.orders, "published");
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
    let mut sent = 0u64;
    for day in 0..config.days {
        let generated = generate_day(config, &catalog, day, counts[day as usize]);
        let categories = analytics::seed::categories_of(&catalog);
        for (table, rows) in analytics::seed::day_batches(&generated, &categories)? {
            if matches!(table, schemas::tables::Table::FraudLabels | schemas::tables::Table::Customers) {
                analytics::seed::write_seed_rows(&store, config.seed, table, &rows, &format!("-d{day:05}")).await?;
            }
        }
        let mut orders: Vec<schemas::Order> = generated.orders.into_iter().map(|o| o.order).collect();
        orders.sort_by_key(|o| o.placed_at);
        let acks = futures::stream::iter(orders.into_iter().map(|order| {
            let js = js.clone();
            let due = started + interval.mul_f64(sent as f64);
            sent += 1;
            async move {
                tokio::time::sleep_until(due.into()).await;
                let payload = serde_json::to_vec(&order)?;
                let message = PublishMessage::build().payload(payload.into()).message_id(order.order_id.to_string());
                js.send_publish(broker::order_submitted_subject(order.order_id), message)
                    .await
                    .context("publish")?
                    .await
                    .context("JetStream did not store an order")?;
                anyhow::Ok(())
            }
        }))
        .buffered(256);
        futures::pin_mut!(acks);
        while let Some(result) = acks.next().await {
            result?;
            if let Some(bar) = &bar {
                bar.inc(1);
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish();
    }
    let secs = started.elapsed().as_secs_f64();
    println!("published {sent} orders in {secs:.1} s ({:.0}/s)", sent as f64 / secs.max(1e-9));
    Ok(())
}
