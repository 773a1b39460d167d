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
    #[arg(long = "data", env = "ORDERSTREAM_ANALYTICS_DATA", default_value = analytics::store::DEFAULT_LAKE)]
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
        Some(url) => {
            match tokio::time::timeout(std::time::Duration::from_secs(5), broker::connect(url, "orderstream-forecast"))
                .await
            {
                Ok(Ok(client)) => crate::analytics_cli::live_stock(&async_nats::jetstream::new(client)).await,
                Ok(Err(e)) => {
                    eprintln!("cannot connect to {url} ({e}): forecasts only, no inventory plan");
                    None
                }
                Err(_) => {
                    eprintln!("{url} did not answer within 5 s: forecasts only, no inventory plan");
                    None
                }
            }
        }
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
        let style =
            indicatif::ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} series ({per_sec}, eta {eta})")
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

#[derive(Args, Debug, Clone)]
pub struct BenchForecastArgs {
    /// Series as CSV `unique_id,ds,y` (daily, one row per day; statsforecast's layout).
    #[arg(long, conflicts_with = "data")]
    pub series: Option<std::path::PathBuf>,
    /// Or the units series of a lake, up to `--as-of`.
    #[arg(long)]
    pub data: Option<String>,
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    #[arg(long, value_enum, default_value = "all")]
    pub scope: ScopeArg,
    /// Days held out at the end of every series and forecast.
    #[arg(long, default_value_t = 28)]
    pub holdout: usize,
    /// Write the series used (all days, held-out ones included) as CSV.
    #[arg(long)]
    pub export_series: Option<std::path::PathBuf>,
    /// Write every scored forecast day as CSV.
    #[arg(long)]
    pub output: Option<std::path::PathBuf>,
    #[arg(long)]
    pub threads: Option<usize>,
    /// Score one method alone on every series instead of choosing.
    #[arg(long)]
    pub method: Option<String>,
}

fn read_series(path: &std::path::Path) -> Result<Vec<forecast::evaluate::NamedSeries>> {
    use anyhow::Context;
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut by_id: std::collections::BTreeMap<String, Vec<(NaiveDate, f64)>> = std::collections::BTreeMap::new();
    for (line, row) in reader.records().enumerate() {
        let row = row.with_context(|| format!("{} line {}", path.display(), line + 2))?;
        let field = |i: usize| row.get(i).unwrap_or_default();
        let day = NaiveDate::parse_from_str(field(1).get(..10).unwrap_or_default(), "%Y-%m-%d")
            .with_context(|| format!("line {}: ds {:?} is not a date", line + 2, field(1)))?;
        let y: f64 =
            field(2).parse().with_context(|| format!("line {}: y {:?} is not a number", line + 2, field(2)))?;
        by_id.entry(field(0).to_string()).or_default().push((day, y));
    }
    Ok(by_id
        .into_iter()
        .map(|(id, mut days)| {
            days.sort_by_key(|(d, _)| *d);
            // Missing days are zeros, as in the lake's series.
            let first = days.first().map(|(d, _)| *d).unwrap_or_default();
            let span = days.last().map_or(0, |(d, _)| (*d - first).num_days() as usize + 1);
            let mut values = vec![0.0; span];
            for (d, y) in days {
                values[(d - first).num_days() as usize] += y;
            }
            forecast::evaluate::NamedSeries { id, values }
        })
        .collect())
}

async fn lake_series(
    args: &BenchForecastArgs,
    data: &str,
) -> Result<(Vec<forecast::evaluate::NamedSeries>, NaiveDate)> {
    let store = DataStore::open(data)?;
    let as_of = match args.as_of {
        Some(d) => d,
        None => forecast::run::default_as_of(forecast::run::latest_day(&store).await?, chrono::Utc::now().date_naive()),
    };
    let (ctx, _) = analytics::query::session(&store, &QueryLimits::default()).await?;
    let all = forecast::series::load(&ctx, as_of, &forecast::Selection::Scopes(args.scope.scopes())).await?;
    let named = all
        .into_iter()
        .map(|s| forecast::evaluate::NamedSeries {
            id: format!("{}/{}/{}", s.scope.as_str(), s.key, s.currency),
            values: s.units,
        })
        .collect();
    Ok((named, as_of))
}

pub async fn bench(args: BenchForecastArgs) -> Result<()> {
    let (series, last_day) = match (&args.series, &args.data) {
        (Some(path), _) => (read_series(path)?, None),
        (None, Some(data)) => {
            let (series, as_of) = lake_series(&args, data).await?;
            (series, Some(as_of))
        }
        (None, None) => anyhow::bail!("give --series FILE or --data LAKE"),
    };
    if let Some(path) = &args.export_series {
        let mut out = csv::Writer::from_path(path)?;
        out.write_record(["unique_id", "ds", "y"])?;
        for s in &series {
            let end =
                last_day.unwrap_or_else(|| NaiveDate::default() + chrono::Duration::days(s.values.len() as i64 - 1));
            let first = end - chrono::Duration::days(s.values.len() as i64 - 1);
            for (i, y) in s.values.iter().enumerate() {
                out.write_record([
                    s.id.clone(),
                    (first + chrono::Duration::days(i as i64)).to_string(),
                    y.to_string(),
                ])?;
            }
        }
        out.flush()?;
    }
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let holdout = args.holdout.max(1);
    let method = match &args.method {
        Some(name) => Some(forecast::models::Method::parse(name).ok_or_else(|| {
            let names: Vec<&str> = forecast::models::Method::ALL.iter().map(|m| m.name()).collect();
            anyhow::anyhow!("--method {name}: one of {}", names.join(", "))
        })?),
        None => None,
    };
    let evaluation =
        tokio::task::spawn_blocking(move || forecast::evaluate::evaluate(&series, holdout, threads, method)).await?;
    if let Some(path) = &args.output {
        let mut out = csv::Writer::from_path(path)?;
        out.write_record(["unique_id", "step", "actual", "forecast", "lo80", "hi80", "lo95", "hi95", "model"])?;
        for d in &evaluation.days {
            let numbers = [d.actual, d.forecast, d.lo80, d.hi80, d.lo95, d.hi95].map(|v| v.to_string());
            let mut record = vec![d.id.clone(), d.step.to_string()];
            record.extend(numbers);
            record.push(d.model.to_string());
            out.write_record(&record)?;
        }
        out.flush()?;
    }
    let methods: Vec<String> = evaluation.methods.iter().map(|(m, n)| format!("{m} {n}")).collect();
    println!(
        "{} series, last {} days held out: WAPE {:.4} (seasonal naive {:.4}, ratio {:.3}); 80% coverage {:.3}, 95% coverage {:.3}; fit {:.2} s on {threads} threads; chosen: {}",
        evaluation.series,
        evaluation.holdout,
        evaluation.wape,
        evaluation.seasonal_naive_wape,
        if evaluation.seasonal_naive_wape > 0.0 { evaluation.wape / evaluation.seasonal_naive_wape } else { f64::NAN },
        evaluation.coverage80,
        evaluation.coverage95,
        evaluation.seconds,
        methods.join(", ")
    );
    Ok(())
}
