//! `orderstream seed --publish`: the seeded catalog into the `CATALOG` and
//! `STOCK` buckets (through the processor's import), the side tables to
//! Parquet, and the orders through JetStream at a steady rate, in time
//! order, each with `Nats-Msg-Id = order_id` so a re-run adds nothing.
//!
//! With `--with-events`, each order's seeded status events follow on
//! `ORDER_EVENTS` (`Nats-Msg-Id = event_id`), date by date in event-time
//! order: a date is published once every day that can add to it has been
//! generated (events only follow their order), as in the Parquet seed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use analytics::seed::{SeedConfig, generate_day, orders_per_day, products};
use anyhow::{Context, Result};
use async_nats::jetstream::{self, message::PublishMessage};
use chrono::NaiveDate;
use schemas::OrderEvent;
use schemas::tables::Table;

use crate::analytics_cli::SeedArgs;

pub async fn publish(args: &SeedArgs, config: &SeedConfig) -> Result<()> {
    let client = args.nats.connect("orderstream-seed").await?;
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
    let mut pace = Pace::new(args.rate);
    let mut sent = (0u64, 0u64);
    // Status events by date, until their date is complete.
    let mut held: BTreeMap<NaiveDate, Vec<OrderEvent>> = BTreeMap::new();
    let mut screen = crate::analytics_cli::seed_screen(args)?;
    for day in 0..config.days {
        let mut generated = generate_day(config, &catalog, day, counts[day as usize]);
        if args.with_events {
            analytics::seed::settle(config, day, &mut generated, &mut screen);
        }
        // Only the side tables: the orders and events go through JetStream.
        for (table, rows) in [
            (Table::FraudLabels, analytics::seed::fraud_labels_batch(&generated)?),
            (Table::Customers, analytics::seed::customers_batch(&generated.new_customers)?),
        ] {
            analytics::seed::write_seed_rows(&store, config.seed, table, &rows, &format!("-d{day:05}")).await?;
        }
        let mut orders = Vec::with_capacity(generated.orders.len());
        for seeded in generated.orders {
            if args.with_events {
                for event in seeded.events {
                    held.entry(event.occurred_at.date_naive()).or_default().push(event);
                }
            }
            orders.push(seeded.order);
        }
        orders.sort_by_key(|o| o.placed_at);
        let messages = orders.iter().map(|order| {
            let subject = broker::order_submitted_subject(order.order_id);
            serde_json::to_vec(order).map(|payload| (subject, order.order_id.to_string(), payload))
        });
        sent.0 += publish_all(&js, messages, &mut pace, bar.as_ref()).await?;
        // Every date up to this day's is complete.
        let next_date = config.start() + chrono::Days::new(u64::from(day) + 1);
        let rest = held.split_off(&next_date);
        sent.1 += publish_events(&js, std::mem::replace(&mut held, rest), &mut pace).await?;
    }
    // The dates after the last day: events of its last orders.
    sent.1 += publish_events(&js, held, &mut pace).await?;
    if let Some(bar) = bar {
        bar.finish();
    }
    let secs = pace.started.elapsed().as_secs_f64();
    println!(
        "published {} orders and {} status events in {secs:.1} s ({:.0} messages/s)",
        sent.0,
        sent.1,
        (sent.0 + sent.1) as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// Paces publishing at `rate` messages per second overall.
struct Pace {
    started: Instant,
    interval: Duration,
    sent: u64,
}

impl Pace {
    fn new(rate: u64) -> Pace {
        Pace { started: Instant::now(), interval: Duration::from_secs_f64(1.0 / rate.max(1) as f64), sent: 0 }
    }

    /// When the next message is due.
    fn next_due(&mut self) -> Instant {
        let due = self.started + self.interval.mul_f64(self.sent as f64);
        self.sent += 1;
        due
    }
}

/// Complete dates of status events, each in event-time order.
async fn publish_events(
    js: &jetstream::Context,
    dates: BTreeMap<NaiveDate, Vec<OrderEvent>>,
    pace: &mut Pace,
) -> Result<u64> {
    let mut sent = 0;
    for (_, mut events) in dates {
        events.sort_by_key(|e| e.occurred_at);
        let messages = events.iter().map(|event| {
            let subject = broker::order_event_subject(event.order_id, event.subject_suffix());
            serde_json::to_vec(event).map(|payload| (subject, event.event_id.clone(), payload))
        });
        sent += publish_all(js, messages, pace, None).await?;
    }
    Ok(sent)
}

/// Publishes `(subject, message id, payload)` in their order, each
/// confirmed stored by JetStream, up to 256 awaiting confirmation. Each
/// message is handed to the connection before the next (a publish future
/// per message would let them overtake one another), so the stream holds
/// them in exactly this order.
async fn publish_all(
    js: &jetstream::Context,
    messages: impl Iterator<Item = serde_json::Result<(String, String, Vec<u8>)>>,
    pace: &mut Pace,
    bar: Option<&indicatif::ProgressBar>,
) -> Result<u64> {
    let mut acks = std::collections::VecDeque::new();
    let mut sent = 0;
    for message in messages {
        let (subject, id, payload) = message?;
        tokio::time::sleep_until(pace.next_due().into()).await;
        let message = PublishMessage::build().payload(payload.into()).message_id(id);
        acks.push_back(js.send_publish(subject, message).await.context("publish")?);
        sent += 1;
        while acks.len() >= 256
            && let Some(ack) = acks.pop_front()
        {
            confirm(ack, bar).await?;
        }
    }
    while let Some(ack) = acks.pop_front() {
        confirm(ack, bar).await?;
    }
    Ok(sent)
}

async fn confirm(ack: jetstream::context::PublishAckFuture, bar: Option<&indicatif::ProgressBar>) -> Result<()> {
    ack.await.context("JetStream did not store a message")?;
    if let Some(bar) = bar {
        bar.inc(1);
    }
    Ok(())
}
