//! A forecast run: the series of a lake, every one fitted (in parallel,
//! on blocking threads) and written to `demand_forecast`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use analytics::query::QueryLimits;
use analytics::store::DataStore;
use chrono::{Duration, NaiveDate};
use datafusion::prelude::SessionContext;
use schemas::forecast::{DEFAULT_HORIZON_DAYS, Metric, Scope};
use schemas::tables::{PARTITION_COLUMN, Table};

use crate::ForecastError;
use crate::select::{self, Choice};
use crate::series::{self, DemandSeries, Selection};
use crate::table::{self, SeriesForecast};

/// Called with (done, total) series as a run goes.
pub type Progress = Arc<dyn Fn(usize, usize) + Send + Sync>;

#[derive(Clone, Debug)]
pub struct ForecastOptions {
    /// The last day of history; default [`default_as_of`].
    pub as_of: Option<NaiveDate>,
    pub horizon: usize,
    pub scopes: Vec<Scope>,
    pub threads: usize,
    pub limits: QueryLimits,
    /// Live stock per catalog product: with it the run also writes the
    /// `inventory_plan` (default lead time and service level).
    pub stock: Option<Vec<crate::inventory::StockPosition>>,
}

impl Default for ForecastOptions {
    fn default() -> Self {
        ForecastOptions {
            as_of: None,
            horizon: DEFAULT_HORIZON_DAYS as usize,
            scopes: Scope::ALL.to_vec(),
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            limits: QueryLimits::default(),
            stock: None,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ForecastReport {
    pub as_of: Option<NaiveDate>,
    pub series: usize,
    pub rows: usize,
    pub bytes: usize,
    /// How many series each method won.
    pub methods: BTreeMap<&'static str, usize>,
    pub load_seconds: f64,
    pub fit_seconds: f64,
    pub write_seconds: f64,
    /// Products in the `inventory_plan` written, when stock was given.
    pub planned: Option<usize>,
}

/// The newest `date` partition of `order_items`: the latest day with data.
pub async fn latest_day(store: &DataStore) -> Result<Option<NaiveDate>, ForecastError> {
    let files = store.list(&store.path(Table::OrderItems.name())).await?;
    let prefix = format!("{PARTITION_COLUMN}=");
    Ok(files
        .iter()
        .filter(|m| m.location.as_ref().ends_with(".parquet"))
        .filter_map(|m| {
            m.location.parts().find_map(|p| {
                p.as_ref().strip_prefix(&prefix).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            })
        })
        .max())
}

/// The last complete day with data: the latest day with orders, but never
/// today (it is still being written) or later.
pub fn default_as_of(latest: Option<NaiveDate>, today: NaiveDate) -> NaiveDate {
    let yesterday = today - Duration::days(1);
    latest.map_or(yesterday, |day| day.min(yesterday))
}

/// Fits every (series, metric) on `threads` threads; reports progress.
pub fn fit_all(
    series: &[DemandSeries],
    horizon: usize,
    threads: usize,
    progress: Option<&Progress>,
) -> Vec<(usize, Metric, Choice)> {
    let jobs: Vec<(usize, Metric)> =
        (0..series.len()).flat_map(|i| Metric::ALL.into_iter().map(move |m| (i, m))).collect();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let mut results: Vec<Vec<(usize, Choice)>> = Vec::new();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let j = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(i, metric)) = jobs.get(j) else { break };
                        mine.push((j, select::forecast(series[i].values(metric), horizon)));
                        let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if let Some(progress) = progress
                            && (finished % 256 == 0 || finished == jobs.len())
                        {
                            progress(finished, jobs.len());
                        }
                    }
                    mine
                })
            })
            .collect();
        results = workers.into_iter().filter_map(|w| w.join().ok()).collect();
    });
    let mut all: Vec<(usize, Choice)> = results.into_iter().flatten().collect();
    all.sort_by_key(|(j, _)| *j);
    all.into_iter().map(|(j, choice)| (jobs[j].0, jobs[j].1, choice)).collect()
}

/// Forecasts every series of `options.scopes` and writes their files.
pub async fn forecast_lake(
    store: &DataStore,
    options: &ForecastOptions,
    progress: Option<Progress>,
) -> Result<ForecastReport, ForecastError> {
    let today = chrono::Utc::now().date_naive();
    let as_of = match options.as_of {
        Some(day) => day,
        None => default_as_of(latest_day(store).await?, today),
    };
    let mut report = ForecastReport { as_of: Some(as_of), ..ForecastReport::default() };
    let started = Instant::now();
    let (ctx, _) = analytics::query::session(store, &options.limits).await?;
    let all = series::load(&ctx, as_of, &Selection::Scopes(options.scopes.clone())).await?;
    report.load_seconds = started.elapsed().as_secs_f64();
    report.series = all.len();

    let started = Instant::now();
    let (horizon, threads) = (options.horizon, options.threads);
    let (all, fitted) = tokio::task::spawn_blocking(move || {
        let fitted = fit_all(&all, horizon, threads, progress.as_ref());
        (all, fitted)
    })
    .await
    .map_err(|e| ForecastError::Worker(e.to_string()))?;
    report.fit_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    for scope in &options.scopes {
        let forecasts: Vec<SeriesForecast<'_>> = fitted
            .iter()
            .filter(|(i, _, _)| all[*i].scope == *scope)
            .map(|(i, metric, choice)| SeriesForecast { series: &all[*i], metric: *metric, choice: choice.clone() })
            .collect();
        for f in &forecasts {
            *report.methods.entry(f.choice.method.name()).or_default() += 1;
        }
        let batch = table::batch(&forecasts, as_of)?;
        report.rows += batch.num_rows();
        report.bytes += table::write_scope(store, as_of, *scope, batch).await?;
    }
    if let Some(stock) = &options.stock {
        // The plan reads the forecasts just written: registered now.
        analytics::query::register_tables(&ctx, store).await?;
        let rows = crate::inventory::plans(&ctx, as_of, stock, crate::inventory::PlanSettings::default()).await?;
        report.bytes += table::write_plan(store, as_of, &rows).await?;
        report.planned = Some(rows.len());
    }
    report.write_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// One series forecast on request (the API, for a series the table lacks):
/// `None` when it has no history.
pub async fn forecast_one(
    ctx: &SessionContext,
    as_of: NaiveDate,
    scope: Scope,
    key: &str,
    currency: &str,
    metric: Metric,
    horizon: usize,
) -> Result<Option<(DemandSeries, Choice)>, ForecastError> {
    let selection = Selection::One { scope, key: key.to_string() };
    let found = series::load(ctx, as_of, &selection).await?;
    let Some(one) = found.into_iter().find(|s| s.currency == currency && (scope == Scope::Total || s.key == key))
    else {
        return Ok(None);
    };
    let choice = tokio::task::spawn_blocking({
        let values = one.values(metric).to_vec();
        move || select::forecast(&values, horizon)
    })
    .await
    .map_err(|e| ForecastError::Worker(e.to_string()))?;
    Ok(Some((one, choice)))
}
