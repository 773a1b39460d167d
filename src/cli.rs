//! Command-line flags. Every flag has an environment twin
//! `ORDERSTREAM_<FLAG>`, so a deployment configures roles by environment.

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "orderstream", version, about = "Real-time order processing and analytics on NATS JetStream")]
pub struct Cli {
    /// Log format: `text` for people, `json` for log shippers.
    #[arg(long, global = true, env = "ORDERSTREAM_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Everything in one process; starts a local nats-server if none is reachable.
    Up(crate::roles::UpArgs),
    /// The producer-facing HTTP API (POST /api/orders).
    Ingest(crate::roles::IngestArgs),
    /// The order processor: the engine (one active instance), payment and
    /// fulfilment workers, and the order/admin/live HTTP API.
    Processor(crate::roles::ProcessorArgs),
    /// The streams and buckets: what differs from these flags, and changing
    /// it on purpose (no other command changes an existing stream).
    Streams {
        #[command(subcommand)]
        command: StreamsCommand,
    },
    /// API keys: who may do what (producer, admin, analyst, viewer).
    Keys {
        #[command(subcommand)]
        command: crate::keys_cli::KeysCommand,
    },
    /// Catalog administration.
    Catalog {
        #[command(subcommand)]
        command: crate::roles::CatalogCommand,
    },
    /// Open-loop HTTP load against an ingest endpoint, with an HDR latency report.
    Loadgen(crate::loadgen::LoadgenArgs),
    /// The analytics job: ORDERS and ORDER_EVENTS to Parquet tables and windowed pipelines.
    Analytics(crate::analytics_cli::AnalyticsArgs),
    /// Rebuilds the tables and pipeline outputs from JetStream history into a new location.
    Replay(crate::analytics_cli::ReplayArgs),
    /// Realistic order history, straight to Parquet or published through JetStream.
    Seed(crate::seed_cli::SeedArgs),
    /// One SQL query over the analytics tables. It reads the files
    /// directly, so it is for whoever can read them anyway (the operator):
    /// no API key applies and PII is not masked. Read-only, as `POST
    /// /api/sql`, unless `--allow-writes`.
    Sql(crate::analytics_cli::SqlArgs),
    /// Demand forecasts per product, category and total (`demand_forecast`).
    Forecast(crate::forecast_cli::ForecastArgs),
    /// The bought-together model and the customer tables (segments,
    /// cohorts, new vs returning) of a lake.
    Customers(crate::customers_cli::CustomersArgs),
    /// Fit the fraud model on labelled orders, or judge one against labels.
    Fraud {
        #[command(subcommand)]
        command: crate::fraud_cli::FraudCommand,
    },
    /// The dashboard API and web page over the analytics tables.
    Dashboard(crate::dashboard_cli::DashboardArgs),
    /// Benchmarks (docs/benchmarks.md).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Checks the streams against the guarantees (valid paths, one terminal
    /// state per order, no duplicate events, stock conserved); exit 1 if not.
    Audit {
        #[command(flatten)]
        nats: crate::nats_args::NatsArgs,
        /// Orders still in flight are fine (a live system).
        #[arg(long, env = "ORDERSTREAM_ALLOW_UNFINISHED")]
        allow_unfinished: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// The windowed pipelines alone over rows already in Parquet (e.g. the
    /// `order_items` a replay wrote): read, window, aggregate, write Parquet.
    Window(crate::bench_window::BenchWindowArgs),
    /// Demand forecasts scored on held-out days (docs/benchmarks.md,
    /// bench/forecast/ compares them with statsforecast).
    Forecast(crate::forecast_cli::BenchForecastArgs),
    /// Recommendations' leave-one-out hit rate on a time split, against
    /// the popularity baseline.
    Recommendations(crate::customers_cli::BenchRecommendationsArgs),
}

#[derive(Subcommand, Debug)]
pub enum StreamsCommand {
    /// Prints how the streams and buckets differ from the flags (replicas,
    /// retention, size cap, dedup window, idempotency TTL); with `--yes`,
    /// changes them to match. Without `--yes` nothing changes.
    Apply {
        #[command(flatten)]
        nats: crate::nats_args::NatsArgs,
        /// Make the changes.
        #[arg(long)]
        yes: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_parses_with_defaults() {
        for args in [
            &["orderstream", "up"][..],
            &["orderstream", "processor"],
            &["orderstream", "ingest"],
            &["orderstream", "loadgen"],
            &["orderstream", "analytics"],
            &["orderstream", "replay", "--output", "x"],
            &["orderstream", "seed"],
            &["orderstream", "sql", "SELECT 1"],
            &["orderstream", "dashboard"],
        ] {
            Cli::try_parse_from(args).unwrap();
        }
        Cli::try_parse_from(["orderstream", "catalog", "import", "x.csv"]).unwrap();
        Cli::try_parse_from(["orderstream", "keys", "create", "--role", "analyst", "--grant", "pii"]).unwrap();
        Cli::try_parse_from(["orderstream", "keys", "revoke", "shop-1"]).unwrap();
        assert!(Cli::try_parse_from(["orderstream", "keys", "create", "--role", "owner"]).is_err());
    }
}
