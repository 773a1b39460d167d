//! The customers run inside `up` and `analytics`: at start, then every
//! `every` (an hour by default), as of the lake's latest day, so today's
//! orders reach the recommendations within the hour. One query partition
//! and a bounded memory pool keep it off the stream job's core; the run
//! replaces its day's files, so a run cut short changes nothing.

use std::time::Duration;

use analytics::query::QueryLimits;
use analytics::store::DataStore;
use tokio::sync::watch;

use crate::run::{CustomersOptions, build};

pub const DEFAULT_EVERY: Duration = Duration::from_secs(3600);
/// How soon a lake without orders is looked at again (a fresh `up` has
/// its first orders within minutes, not an hour).
pub const UNTIL_FIRST_ORDERS: Duration = Duration::from_secs(300);

/// Runs until `stop`.
pub async fn run_every(store: DataStore, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        let options = CustomersOptions {
            limits: QueryLimits { memory_bytes: 1 << 30, target_partitions: 1 },
            ..CustomersOptions::default()
        };
        let mut wait = every;
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            report = build(&store, &options) => match report {
                Ok(r) if r.as_of.is_some() => tracing::info!(
                    as_of = ?r.as_of, orders = r.orders, pairs = r.pairs, customers = r.customers,
                    affinity_seconds = r.affinity_seconds, customers_seconds = r.customers_seconds,
                    "customer tables and bought-together model written"
                ),
                Ok(_) => {
                    tracing::debug!("no orders yet: no customer tables");
                    wait = every.min(UNTIL_FIRST_ORDERS);
                }
                Err(e) => tracing::warn!(error = %e, "the customers run failed; retrying at the next interval"),
            }
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}
