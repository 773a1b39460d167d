//! Writing seeded history to the lake: days generated in parallel, settled
//! in order by the fraud screen, encoded and stored, with the pipelines
//! whose manifests ask for it rolled up per day.

use std::collections::BTreeMap;
use std::sync::Arc;

use analytics::AnalyticsError;
use analytics::pipeline::PipelineSpec;
use analytics::rows::Categories;
use arrow::array::RecordBatch;
use bytes::Bytes;
use chrono::{Duration as ChronoDuration, TimeZone, Utc};
use schemas::tables::Table;

use crate::calendar::*;
use crate::catalog::*;
use crate::day::*;
use crate::rollup::DayRollup;
use crate::tables::*;
use crate::verdict::{SeedScreen, settle};

/// The products and the regular customers.
pub async fn write_side_tables(
    store: &analytics::store::DataStore,
    config: &SeedConfig,
    catalog: &[SeedProduct],
) -> Result<SeedReport, AnalyticsError> {
    let start = Utc.from_utc_datetime(&config.start().and_hms_opt(0, 0, 0).unwrap_or_default());
    let mut report = SeedReport::default();
    for (table, rows) in [
        (Table::Products, products_batch(catalog, start)?),
        (Table::Customers, customers_batch(&base_customers(config))?),
    ] {
        report.bytes += write_seed_rows(store, config.seed, table, &rows, "").await?;
        report.files += 1;
    }
    Ok(report)
}

/// Writes one table's rows under the seed's file names, split by date.
pub async fn write_seed_rows(
    store: &analytics::store::DataStore,
    seed: u64,
    table: Table,
    rows: &RecordBatch,
    suffix: &str,
) -> Result<u64, AnalyticsError> {
    let mut bytes_written = 0;
    for (date, part) in analytics::parquet_out::split_by_date(rows, table.time_column())? {
        let bytes = analytics::parquet_out::encode(&part.schema(), &[part], &analytics::layout::table_layout(table))?;
        bytes_written += bytes.len() as u64;
        let name = seed_file_name(seed, &format!("{date}{suffix}"));
        store.put(&store.path(&format!("{}/date={date}/{name}", table.name())), bytes).await?;
    }
    Ok(bytes_written)
}

/// What a seed run wrote.
#[derive(Clone, Debug, Default)]
pub struct SeedReport {
    pub orders: u64,
    pub items: u64,
    pub events: u64,
    pub fraud_orders: u64,
    pub files: u64,
    pub bytes: u64,
}

/// Writes the whole history to `store` as Parquet, `threads` days at a time.
///
/// Orders, items and fraud labels fall on the day they were generated for.
/// A day's status events run on for up to ~10 days, so they are held until
/// every day that can still add to their date has been generated, then
/// written as one file per date: a date's events in one file, not one per
/// generating day (each file a reader opens costs it a footer and a bloom
/// filter).
///
/// The outputs of the `pipelines` marked `seed_history` are written too,
/// date by date (see [`crate::rollup`]): over order items per generated
/// day, over status events per complete date.
pub async fn seed_to_parquet(
    store: &analytics::store::DataStore,
    config: &SeedConfig,
    screen: SeedScreen,
    pipelines: &[Arc<PipelineSpec>],
    threads: usize,
    progress: bool,
) -> Result<SeedReport, AnalyticsError> {
    use futures::StreamExt;
    // Pipeline outputs of each day, on their own task beside generation.
    let rollups = DayRollup::for_pipelines(pipelines).await?;
    let rolls_events = rollups.iter().any(|r| r.source() == Table::OrderEvents);
    let (to_rollups, mut rollup_days) = tokio::sync::mpsc::channel::<RollupDay>(4);
    let seed = config.seed;
    let rolling = tokio::spawn(async move {
        let mut files = Vec::new();
        while let Some((date, source, rows)) = rollup_days.recv().await {
            for rollup in rollups.iter().filter(|r| r.source() == source) {
                files.extend(rollup.day_file(&rows, &date, &seed_file_name(seed, &date)).await?);
            }
        }
        Ok::<_, AnalyticsError>(files)
    });
    let catalog = Arc::new(products(config));
    let categories = Arc::new(categories_of(&catalog));
    let config = Arc::new(config.clone());
    let counts = orders_per_day(&config);
    let mut report = write_side_tables(store, &config, &catalog).await?;
    let bar = analytics::replay::progress_bar(progress, config.orders, "orders");
    let generated = (0..config.days).map(|index| {
        let (config, catalog) = (Arc::clone(&config), Arc::clone(&catalog));
        let count = counts[index as usize];
        tokio::task::spawn_blocking(move || generate_day(&config, &catalog, index, count))
    });
    // Generated in parallel, judged by the fraud screen one day after the
    // other (its windows run across days), then encoded in parallel; in day
    // order, so a date's events are complete once its day is done.
    let mut screen = screen;
    let mut index = 0u32;
    let settled = futures::stream::iter(generated).buffered(threads.max(1)).map(|day| {
        let (config, categories) = (Arc::clone(&config), Arc::clone(&categories));
        let this = index;
        let day = day.map(|mut day| {
            settle(&config, this, &mut day, &mut screen);
            day
        });
        index += 1;
        tokio::task::spawn_blocking(move || {
            day.map_err(|e| AnalyticsError::task("seed", e))
                .and_then(|day| day_files(config.seed, this, &day, &categories))
        })
    });
    let mut done = settled.buffered(threads.max(1));
    let mut held: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
    let mut held_items: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
    let mut encoding = Vec::new();
    let mut index = 0i64;
    while let Some(result) = done.next().await {
        let day = result.map_err(|e| AnalyticsError::task("seed", e))??;
        for (date, part) in day.events {
            held.entry(date).or_default().push(part);
        }
        let date = (config.start() + ChronoDuration::days(index)).format("%Y-%m-%d").to_string();
        index += 1;
        let rest = held.split_off(&format!("{date}\u{1}"));
        let complete = std::mem::replace(&mut held, rest);
        if rolls_events {
            send_event_dates(&to_rollups, &complete).await;
        }
        if !complete.is_empty() {
            // Encoded beside the next days' generation, not in their way.
            encoding.push(tokio::task::spawn_blocking(move || encode_events(seed, complete)));
        }
        // A day's orders may fall just past its midnight (a burst that
        // started late): items go to the rollup of the date they were
        // placed on, once the days that can hold that date are generated,
        // so every window is rolled up once, from all its rows.
        for (placed, part) in analytics::parquet_out::split_by_date(&day.items, Table::OrderItems.time_column())? {
            held_items.entry(placed).or_default().push(part);
        }
        let later = held_items.split_off(&date);
        for (complete, parts) in std::mem::replace(&mut held_items, later) {
            // A closed receiver means the rollup task failed: its error is below.
            let _ = to_rollups.send((complete, Table::OrderItems, parts)).await;
        }
        let mut files = day.files;
        // Write what has finished encoding; hold the rest (no waiting).
        let (finished, running): (Vec<_>, Vec<_>) = encoding.into_iter().partition(|t| t.is_finished());
        encoding = running;
        for task in finished {
            files.extend(task.await.map_err(|e| AnalyticsError::task("seed", e))??);
        }
        put_files(store, &mut report, files).await?;
        let stats = day.stats;
        report.orders += stats.0;
        report.items += stats.1;
        report.events += stats.2;
        report.fraud_orders += stats.3;
        if let Some(bar) = &bar {
            bar.inc(stats.0);
        }
    }
    for (date, parts) in std::mem::take(&mut held_items) {
        let _ = to_rollups.send((date, Table::OrderItems, parts)).await;
    }
    // Dates after the last day (events of its last orders).
    if rolls_events {
        send_event_dates(&to_rollups, &held).await;
    }
    encoding.push(tokio::task::spawn_blocking(move || encode_events(seed, held)));
    for task in encoding {
        put_files(store, &mut report, task.await.map_err(|e| AnalyticsError::task("seed", e))??).await?;
    }
    drop(to_rollups);
    put_files(store, &mut report, rolling.await.map_err(|e| AnalyticsError::task("seed", e))??).await?;
    if let Some(bar) = bar {
        bar.finish();
    }
    Ok(report)
}

/// (date, source table, that date's rows of it), for the rollup task.
type RollupDay = (String, Table, Vec<RecordBatch>);

/// Complete dates of status events to the rollup task (the batches are
/// shared, not copied). A closed channel means the task failed; its error
/// surfaces when it is joined.
async fn send_event_dates(
    to_rollups: &tokio::sync::mpsc::Sender<RollupDay>,
    dates: &BTreeMap<String, Vec<RecordBatch>>,
) {
    for (date, parts) in dates {
        let _ = to_rollups.send((date.clone(), Table::OrderEvents, parts.clone())).await;
    }
}

/// Stores encoded files (paths relative to the store) and counts them.
async fn put_files(
    store: &analytics::store::DataStore,
    report: &mut SeedReport,
    files: Vec<(String, Bytes)>,
) -> Result<(), AnalyticsError> {
    for (relative, bytes) in files {
        report.bytes += bytes.len() as u64;
        report.files += 1;
        store.put(&store.path(&relative), bytes).await?;
    }
    Ok(())
}

/// One generated day: its encoded files (all but events), its events split
/// by date, and its row counts (orders, items, events, fraud orders).
struct DayFiles {
    files: Vec<(String, Bytes)>,
    /// The day's order items, for the pipeline rollups.
    items: RecordBatch,
    events: Vec<(String, RecordBatch)>,
    stats: (u64, u64, u64, u64),
}

fn day_files(seed: u64, index: u32, day: &SeedDay, categories: &Categories) -> Result<DayFiles, AnalyticsError> {
    let mut out = DayFiles {
        files: Vec::new(),
        items: RecordBatch::new_empty(Table::OrderItems.schema()),
        events: Vec::new(),
        stats: (0, 0, 0, 0),
    };
    for (table, rows) in day_batches(day, categories)? {
        let n = rows.num_rows() as u64;
        match table {
            Table::Orders => out.stats.0 = n,
            Table::OrderItems => {
                out.stats.1 = n;
                out.items = rows.clone();
            }
            Table::OrderEvents => out.stats.2 = n,
            Table::FraudLabels => out.stats.3 = day.orders.iter().filter(|o| o.fraud.is_some()).count() as u64,
            _ => {}
        }
        // New accounts may fall on a later date than the order.
        for (date, part) in analytics::parquet_out::split_by_date(&rows, table.time_column())? {
            if part.num_rows() == 0 {
                continue;
            }
            if table == Table::OrderEvents {
                out.events.push((date, part));
                continue;
            }
            let bytes =
                analytics::parquet_out::encode(&part.schema(), &[part], &analytics::layout::table_layout(table))?;
            let name = seed_file_name(seed, &format!("{date}-d{index:05}"));
            out.files.push((format!("{}/date={date}/{name}", table.name()), bytes));
        }
    }
    Ok(out)
}

/// One file per date of held status events, sorted by time.
fn encode_events(seed: u64, dates: BTreeMap<String, Vec<RecordBatch>>) -> Result<Vec<(String, Bytes)>, AnalyticsError> {
    let table = Table::OrderEvents;
    let layout = analytics::layout::table_layout(table);
    dates
        .into_iter()
        .map(|(date, parts)| {
            let bytes = analytics::parquet_out::encode(&table.schema(), &parts, &layout)?;
            Ok((format!("{}/date={date}/{}", table.name(), seed_file_name(seed, &date)), bytes))
        })
        .collect()
}
