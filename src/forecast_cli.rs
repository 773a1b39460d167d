//! `orderstream forecast`: demand forecasts for every series of a lake.

use std::sync::Arc;

use analytics::query::QueryLimits;
use analytics::store::DataStore;
use anyhow::Result;
use chrono::NaiveDate;
use clap::Args;
use forecast::ForecastOptions;
use schemas::forecast::{DEFAULT_HORIZON_DAYS, MAX_HORIZON_DAYS, Scope};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeArg {
    Product,
    Category,
    Total,
    All,
}

impl ScopeArg {
    pub fn scopes(self) -> Vec<Scope> {
        match self {
            ScopeArg::Product => vec![Scope::Product],
            ScopeArg::Category => vec![Scope::Category],
            ScopeArg::Total => vec![Scope::Total],
            ScopeArg::All => Scope::ALL.to_vec(),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct ForecastArgs {
    /// The last day of history (UTC); default the latest complete day with orders.
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    /// Days to forecast after `--as-of`.
    #[arg(long, default_value_t = DEFAULT_HORIZON_DAYS, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_HORIZON_DAYS)))]
    pub horizon: u32,
    #[arg(long = "data", env = "ORDERSTREAM_ANALYTICS_DATA", default_value = "./data/lake")]
    pub data: String,
    #[arg(long, value_enum, default_value = "all")]
    pub scope: ScopeArg,
    /// Fitting threads; default one per core.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Memory pool for reading the history, in MiB.
    #[arg(long, default_value_t = 2048)]
    pub memory_mib: usize,
    #[arg(long)]
    pub no_progress: bool,
    /// Also write the `inventory_plan`, with live stock read from this NATS
    /// (the catalog and stock buckets); without it only forecasts are written.
    #[arg(long, env = "ORDERSTREAM_NATS_URL")]
    pub nats_url: Option<String>,
}

pub async fn forecast(args: ForecastArgs) -> Result<()> {
    let store = DataStore::open(&args.data)?;
    let defaults = ForecastOptions::default();
    let stock = match &args.nats_url {
        Some(url) => match tokio::time::timeout(std::time::Duration::from_secs(5), broker::connect(url, "orderstream-forecast")).await {
            Ok(Ok(client)) => crate::analytics_cli::live_stock(&async_nats::jetstream::new(client)).await,
            Ok(Err(e)) => {
                eprintln!("cannot connect to {url} ({e}): forecasts only, no inventory plan");
                None
            }
            Err(_) => {
                eprintln!("{url} did not answer within 5 s: forecasts only, no inventory plan");
                None
            }
        },
        None => None,
    };
    let options = ForecastOptions {
        as_of: args.as_of,
        horizon: args.horizon as usize,
        scopes: args.scope.scopes(),
        threads: args.threads.unwrap_or(defaults.threads).max(1),
        limits: QueryLimits { memory_bytes: args.memory_mib << 20, ..QueryLimits::default() },
        stock,
    };
    let bar = (!args.no_progress).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        let style = indicatif::ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} series ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message("forecast");
        bar
    });
    let progress: Option<forecast::run::Progress> = bar.clone().map(|bar| {
        Arc::new(move |done: usize, total: usize| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }) as forecast::run::Progress
    });
    let report = forecast::forecast_lake(&store, &options, progress).await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let methods: Vec<String> = report.methods.iter().map(|(m, n)| format!("{m} {n}")).collect();
    match report.as_of {
        Some(as_of) if report.series > 0 => println!(
            "forecast as of {as_of}: {} series × 2 metrics, {} rows, {:.1} MB (read {:.1} s, fit {:.1} s, write {:.1} s); chosen: {}",
            report.series,
            report.rows,
            report.bytes as f64 / 1e6,
            report.load_seconds,
            report.fit_seconds,
            report.write_seconds,
            methods.join(", ")
        ),
        _ => println!("no order history up to {:?} in {}: nothing to forecast", report.as_of, args.data),
    }
    if let Some(products) = report.planned {
        println!("inventory plan: {products} products");
    }
    Ok(())
}
