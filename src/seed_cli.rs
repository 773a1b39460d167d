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
use std::path::PathBuf;
use std::time::{Duration, Instant};

use analytics::store::DataStore;
use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, message::PublishMessage};
use chrono::NaiveDate;
use clap::Args;
use schemas::OrderEvent;
use schemas::tables::Table;
use seed::{SeedConfig, generate_day, orders_per_day, products};

use crate::nats_args::NatsArgs;

#[derive(Args, Debug, Clone)]
pub struct SeedArgs {
    /// Orders to generate.
    #[arg(long, default_value_t = 100_000)]
    pub orders: u64,
    /// Days of history, ending on --end.
    #[arg(long, default_value_t = 90)]
    pub days: u32,
    /// The last day of history (YYYY-MM-DD; default: today, UTC). Output is
    /// deterministic for a given --seed, --orders, --days and --end.
    #[arg(long)]
    pub end: Option<chrono::NaiveDate>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Products in the catalog (their popularity is skewed: a few sell
    /// daily, the long tail now and then).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub products: u32,
    /// Where the tables go (a directory or a store URL).
    #[arg(long, env = "ORDERSTREAM_ANALYTICS_DATA", default_value = analytics::store::DEFAULT_LAKE)]
    pub output: String,
    /// Days generated at once (default: the CPUs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Publish the orders through JetStream (the processor runs their saga,
    /// the analytics job writes them) instead of writing them to Parquet.
    /// Products and stock go to the catalog; products, customers and fraud
    /// labels still go to Parquet.
    #[arg(long)]
    pub publish: bool,
    /// Orders per second when publishing.
    #[arg(long, default_value_t = 2_000)]
    pub rate: u64,
    /// With --publish: also publish each order's seeded status events to
    /// ORDER_EVENTS, in event-time order, as a processor would have emitted
    /// them. A complete history to replay without running the saga; do not
    /// run a processor on the same orders (it would emit their events again).
    #[arg(long, requires = "publish")]
    pub with_events: bool,
    /// The fraud model whose verdicts the seeded status events carry
    /// (default: the built-in model; `orderstream fraud train` writes one).
    #[arg(long)]
    pub fraud_model: Option<PathBuf>,
    /// Pipeline directory (default: the shipped set); the outputs of those
    /// whose windows tile a day (tumbling, 1 h or longer, over order items)
    /// are written for the seeded days too.
    #[arg(long)]
    pub pipelines: Option<PathBuf>,
    /// Add to an --output that already holds tables (another seed's days).
    #[arg(long, conflicts_with = "overwrite")]
    pub append: bool,
    /// Delete every table under --output first.
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub nats: NatsArgs,
    #[arg(long)]
    pub no_progress: bool,
}

/// A non-empty `--output` is refused unless the caller said what to do
/// with what is there: seeding twice into one location silently doubled
/// its products.
async fn prepare_seed_output(store: &DataStore, args: &SeedArgs) -> Result<()> {
    let tables = store.table_names().await?;
    if tables.is_empty() || args.append {
        return Ok(());
    }
    if !args.overwrite {
        bail!(
            "{} already holds tables ({}): --append adds this history to them, --overwrite deletes them first",
            store.url(),
            tables.join(", ")
        );
    }
    for table in &tables {
        for meta in store.list(&store.path(table)).await? {
            store.delete(&meta.location).await?;
        }
    }
    for meta in store.list(&store.path("_checkpoints")).await? {
        store.delete(&meta.location).await?;
    }
    println!("deleted {} tables under {}", tables.len(), store.url());
    Ok(())
}

/// The fraud screen that judges the seeded orders.
pub fn seed_screen(args: &SeedArgs) -> Result<seed::SeedScreen> {
    let model = match &args.fraud_model {
        Some(path) => fraud::FraudModel::load(path)?,
        None => fraud::FraudModel::builtin()?,
    };
    Ok(seed::SeedScreen::new(std::sync::Arc::new(model), None))
}

pub async fn seed(args: SeedArgs) -> Result<()> {
    let end = args.end.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let mut config = SeedConfig::new(args.seed, args.orders, args.days, end);
    config.products = args.products as usize;
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let started = Instant::now();
    let store = DataStore::open(&args.output)?;
    prepare_seed_output(&store, &args).await?;
    if args.publish {
        return publish(&args, &config).await;
    }
    let specs = crate::analytics_cli::pipelines(&args.pipelines)?;
    let screen = seed_screen(&args)?;
    let report = seed::seed_to_parquet(&store, &config, screen, &specs, threads, !args.no_progress).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "seeded {} orders, {} items, {} events ({} labelled fraud) from {} to {} into {} in {:.1} s ({:.0} orders/s, {} files, {:.1} MiB)",
        report.orders,
        report.items,
        report.events,
        report.fraud_orders,
        config.start(),
        end,
        store.url(),
        secs,
        report.orders as f64 / secs.max(1e-9),
        report.files,
        report.bytes as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}

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
    seed::write_side_tables(&store, config, &catalog).await?;
    let counts = orders_per_day(config);
    let bar = analytics::replay::progress_bar(!args.no_progress, config.orders, "published");
    let mut pace = Pace::new(args.rate);
    let mut sent = (0u64, 0u64);
    // Status events by date, until their date is complete.
    let mut held: BTreeMap<NaiveDate, Vec<OrderEvent>> = BTreeMap::new();
    let mut screen = seed_screen(args)?;
    for day in 0..config.days {
        let mut generated = generate_day(config, &catalog, day, counts[day as usize]);
        if args.with_events {
            seed::settle(config, day, &mut generated, &mut screen);
        }
        // Only the side tables: the orders and events go through JetStream.
        for (table, rows) in [
            (Table::FraudLabels, seed::fraud_labels_batch(&generated)?),
            (Table::Customers, seed::customers_batch(&generated.new_customers)?),
        ] {
            seed::write_seed_rows(&store, config.seed, table, &rows, &format!("-d{day:05}")).await?;
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
