//! The daily forecast inside `up` and `analytics`: once the UTC day has
//! closed (midnight plus a grace period for late events, the pipelines'
//! default lateness), and at start when the latest closed day's run is
//! missing. One fitting thread and a small query pool, so the stream job
//! keeps its core. The files are deterministic, so two instances running
//! it for the same day write the same bytes.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use analytics::query::QueryLimits;
use analytics::store::DataStore;
use chrono::{NaiveDate, Utc};
use schemas::forecast::{DEFAULT_HORIZON_DAYS, DEMAND_FORECAST_TABLE, Scope};
use tokio::sync::watch;

use crate::inventory::StockPosition;
use crate::run::{ForecastOptions, default_as_of, forecast_lake, latest_day};

/// How long after midnight a day counts as closed.
pub const GRACE: Duration = Duration::from_secs(10 * 60);
/// How often the schedule looks again (after a failure, or for a lake that
/// had no data yet).
pub const RECHECK: Duration = Duration::from_secs(3600);

/// Live stock for the plan, when it can be read.
pub type StockSource = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Option<Vec<StockPosition>>> + Send>> + Send + Sync>;

/// The day the schedule forecasts from now: the latest closed day with data.
pub async fn due(store: &DataStore, now: chrono::DateTime<Utc>) -> Result<Option<NaiveDate>, crate::ForecastError> {
    let closed = (now - chrono::Duration::from_std(GRACE).unwrap_or_default()).date_naive();
    let Some(latest) = latest_day(store).await? else { return Ok(None) };
    let as_of = default_as_of(Some(latest), closed);
    let done = crate::table::partitions(store, DEMAND_FORECAST_TABLE).await?;
    Ok((!done.contains(&as_of)).then_some(as_of))
}

/// Runs until `stop`.
pub async fn run_daily(store: DataStore, stock: StockSource, mut stop: watch::Receiver<bool>) {
    loop {
        let now = Utc::now();
        match due(&store, now).await {
            Ok(Some(as_of)) => {
                let options = ForecastOptions {
                    as_of: Some(as_of),
                    horizon: DEFAULT_HORIZON_DAYS as usize,
                    scopes: Scope::ALL.to_vec(),
                    threads: 1,
                    limits: QueryLimits { memory_bytes: 512 << 20, target_partitions: 1 },
                    stock: stock().await,
                };
                tracing::info!(%as_of, "daily demand forecast starting");
                let run = forecast_lake(&store, &options, None);
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    report = run => match report {
                        Ok(r) => tracing::info!(
                            %as_of, series = r.series, rows = r.rows, planned = ?r.planned,
                            fit_seconds = r.fit_seconds, "daily demand forecast written"
                        ),
                        Err(e) => tracing::warn!(error = %e, %as_of, "daily demand forecast failed; retrying within the hour"),
                    }
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot tell whether today's forecast is due"),
        }
        let now = Utc::now();
        let next_midnight = (now.date_naive() + chrono::Duration::days(1)).and_hms_opt(0, 0, 0).unwrap_or_default();
        let until_closed = (next_midnight.and_utc() - now).to_std().unwrap_or_default() + GRACE;
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(until_closed.min(RECHECK)) => {}
        }
    }
}
