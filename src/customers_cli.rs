//! `orderstream customers`: the bought-together model and the customer
//! tables of a lake; `orderstream bench recommendations`: their hit rate.

use analytics::query::QueryLimits;
use analytics::store::DataStore;
use anyhow::Result;
use chrono::NaiveDate;
use clap::Args;
use schemas::customers::DEFAULT_MIN_SUPPORT;

#[derive(Args, Debug, Clone)]
pub struct CustomersArgs {
    /// The last day of orders read; default the lake's latest.
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    #[arg(long = "data", env = "ORDERSTREAM_ANALYTICS_DATA", default_value = analytics::store::DEFAULT_LAKE)]
    pub data: String,
    /// Orders holding both products, at least, for a pair to be kept.
    #[arg(long, default_value_t = DEFAULT_MIN_SUPPORT)]
    pub min_support: u64,
    /// Memory pool for the queries, in MiB.
    #[arg(long, default_value_t = 2048)]
    pub memory_mib: usize,
    /// Query threads; default one per core.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Build only the bought-together model or only the customer tables.
    #[arg(long, value_enum)]
    pub only: Option<OnlyArg>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum OnlyArg {
    Affinity,
    Customers,
}

fn limits(memory_mib: usize, threads: Option<usize>) -> QueryLimits {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    QueryLimits { memory_bytes: memory_mib << 20, target_partitions: threads.unwrap_or(cores).max(1) }
}

pub async fn customers(args: CustomersArgs) -> Result<()> {
    let store = DataStore::open(&args.data)?;
    let options = customers::CustomersOptions {
        as_of: args.as_of,
        min_support: args.min_support,
        limits: limits(args.memory_mib, args.threads),
        parts: match args.only {
            None => customers::Parts::All,
            Some(OnlyArg::Affinity) => customers::Parts::Affinity,
            Some(OnlyArg::Customers) => customers::Parts::Customers,
        },
    };
    let report = customers::build(&store, &options).await?;
    match report.as_of {
        Some(as_of) => println!(
            "customers as of {as_of}: bought-together over {} orders, {} products, {} pairs (≥ {} orders), \
             {} rows kept, in {:.1} s; {} customers, {} cohort cells, {} days in {:.1} s; {:.1} MB written",
            report.orders,
            report.products,
            report.pairs,
            args.min_support,
            report.affinity_rows,
            report.affinity_seconds,
            report.customers,
            report.cohort_cells,
            report.days,
            report.customers_seconds,
            report.bytes as f64 / 1e6
        ),
        None => println!("no orders in {}: nothing to model", args.data),
    }
    Ok(())
}

#[derive(Args, Debug, Clone)]
pub struct BenchRecommendationsArgs {
    #[arg(long = "data", env = "ORDERSTREAM_ANALYTICS_DATA", default_value = analytics::store::DEFAULT_LAKE)]
    pub data: String,
    /// The last day of training orders; the orders after it are the test.
    #[arg(long)]
    pub train_end: NaiveDate,
    /// Recommendations per question (hit rate @k).
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    #[arg(long, default_value_t = DEFAULT_MIN_SUPPORT)]
    pub min_support: u64,
    /// Test baskets scored at most.
    #[arg(long, default_value_t = 100_000)]
    pub max_baskets: u64,
    #[arg(long, default_value_t = 2048)]
    pub memory_mib: usize,
}

pub async fn bench(args: BenchRecommendationsArgs) -> Result<()> {
    let store = DataStore::open(&args.data)?;
    let (ctx, _) = analytics::query::session(&store, &limits(args.memory_mib, None)).await?;
    let started = std::time::Instant::now();
    let rate = customers::evaluate::hit_rate(&ctx, args.train_end, args.min_support, args.k, args.max_baskets).await?;
    println!(
        "hit rate @{k}, trained on {} orders up to {}, {} test baskets after it: bought together {:.3}, popularity {:.3} ({:.1}×) in {:.1} s",
        rate.train_orders,
        args.train_end,
        rate.test_baskets,
        rate.model(),
        rate.popular(),
        rate.model() / rate.popular().max(f64::MIN_POSITIVE),
        started.elapsed().as_secs_f64(),
        k = args.k,
    );
    Ok(())
}
