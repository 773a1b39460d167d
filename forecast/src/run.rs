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
    Ok(store.partition_days(Table::OrderItems.name(), PARTITION_COLUMN).await?.pop())
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
    fit_all_with(series, horizon, threads, progress, None)
}

/// [`fit_all`], every series with `method` alone when given.
pub fn fit_all_with(
    series: &[DemandSeries],
    horizon: usize,
    threads: usize,
    progress: Option<&Progress>,
    method: Option<crate::models::Method>,
) -> Vec<(usize, Metric, Choice)> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let total = series.len() * Metric::ALL.len();
    let fit = |values: &[f64]| match method {
        Some(m) => select::forecast_among(values, horizon, &[m]),
        None => select::forecast(values, horizon),
    };
    let mut results: Vec<Vec<(usize, Choice, Choice)>> = Vec::new();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(one) = series.get(i) else { break };
                        let units = fit(&one.units);
                        // A series sold at one price all along has revenue
                        // = price × units every day: its revenue forecast is
                        // the units forecast scaled (every method here is
                        // scale-equivariant), at half the cost.
                        let revenue = match constant_price(one) {
                            Some(price) => scaled(&units, price),
                            None => fit(&one.revenue),
                        };
                        mine.push((i, units, revenue));
                        let finished = done.fetch_add(Metric::ALL.len(), Ordering::Relaxed) + Metric::ALL.len();
                        if let Some(progress) = progress
                            && (finished.is_multiple_of(512) || finished == total)
                        {
                            progress(finished, total);
                        }
                    }
                    mine
                })
            })
            .collect();
        results = workers.into_iter().filter_map(|w| w.join().ok()).collect();
    });
    let mut all: Vec<(usize, Choice, Choice)> = results.into_iter().flatten().collect();
    all.sort_by_key(|(i, _, _)| *i);
    all.into_iter().flat_map(|(i, units, revenue)| [(i, Metric::Units, units), (i, Metric::Revenue, revenue)]).collect()
}

/// The one unit price of a series whose every day's revenue is that price
/// times its units (to the cent); `None` when prices varied.
pub fn constant_price(series: &DemandSeries) -> Option<f64> {
    if series.revenue.len() != series.units.len() {
        return None;
    }
    let units: f64 = series.units.iter().sum();
    let revenue: f64 = series.revenue.iter().sum();
    if units <= 0.0 {
        return None;
    }
    let price = revenue / units;
    let tolerance = 0.006;
    series
        .units
        .iter()
        .zip(&series.revenue)
        .all(|(u, r)| (r - price * u).abs() <= tolerance * u.max(1.0))
        .then_some(price)
}

/// A choice in another unit: points and bands times `factor`; the
/// backtest's errors are scale-free and stay.
fn scaled(choice: &Choice, factor: f64) -> Choice {
    let times = |values: &[f64]| values.iter().map(|v| v * factor).collect::<Vec<_>>();
    Choice {
        method: choice.method,
        point: times(&choice.point),
        b80: crate::models::Band { lower: times(&choice.b80.lower), upper: times(&choice.b80.upper) },
        b95: crate::models::Band { lower: times(&choice.b95.lower), upper: times(&choice.b95.upper) },
        backtest: choice.backtest.clone(),
    }
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
        let shown: Vec<&DemandSeries> = all.iter().filter(|s| s.scope == *scope).collect();
        let history = table::history_batch(&shown, as_of)?;
        report.bytes += table::write_history_scope(store, as_of, *scope, history).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn series(units: Vec<f64>, revenue: Vec<f64>) -> DemandSeries {
        DemandSeries {
            scope: Scope::Product,
            key: "p".into(),
            currency: "USD".into(),
            first_day: NaiveDate::default(),
            units,
            revenue,
        }
    }

    #[test]
    fn revenue_at_one_price_is_the_units_forecast_scaled() {
        let units: Vec<f64> = (0..120).map(|i| f64::from((i * 7) % 5)).collect();
        let one_price = series(units.clone(), units.iter().map(|u| u * 12.5).collect());
        assert_eq!(constant_price(&one_price), Some(12.5));
        let fitted = fit_all(std::slice::from_ref(&one_price), 14, 1, None);
        let (units_choice, revenue_choice) = (&fitted[0].2, &fitted[1].2);
        assert_eq!(fitted[1].1, Metric::Revenue);
        for h in 0..14 {
            assert!((revenue_choice.point[h] - 12.5 * units_choice.point[h]).abs() < 1e-9);
            assert!((revenue_choice.b95.upper[h] - 12.5 * units_choice.b95.upper[h]).abs() < 1e-9);
        }
        let mut two_prices = one_price.clone();
        two_prices.revenue[3] = two_prices.units[3] * 9.0 + 1.0;
        assert_eq!(constant_price(&two_prices), None);
    }
}
