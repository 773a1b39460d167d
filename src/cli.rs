//! Command-line flags. Every flag has an environment twin
//! `ORDERSTREAM_<FLAG>`, so a deployment configures roles by environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use broker::TopologySettings;
use ingest::IngestConfig;
use schemas::TaxRate;

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
    Up(UpArgs),
    /// The producer-facing HTTP API (POST /api/orders).
    Ingest(IngestArgs),
    /// The order processor: the engine (one active instance), payment and
    /// fulfilment workers, and the order/admin/live HTTP API.
    Processor(ProcessorArgs),
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
        command: CatalogCommand,
    },
    /// Open-loop HTTP load against an ingest endpoint, with an HDR latency report.
    Loadgen(crate::loadgen::LoadgenArgs),
    /// The analytics job: ORDERS and ORDER_EVENTS to Parquet tables and windowed pipelines.
    Analytics(crate::analytics_cli::AnalyticsArgs),
    /// Rebuilds the tables and pipeline outputs from JetStream history into a new location.
    Replay(crate::analytics_cli::ReplayArgs),
    /// Realistic order history, straight to Parquet or published through JetStream.
    Seed(crate::analytics_cli::SeedArgs),
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
        nats: NatsArgs,
        /// Orders still in flight are fine (a live system).
        #[arg(long, env = "ORDERSTREAM_ALLOW_UNFINISHED")]
        allow_unfinished: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// The windowed pipelines alone over rows already in Parquet (e.g. the
    /// `order_items` a replay wrote): read, window, aggregate, write Parquet.
    Window(crate::analytics_cli::BenchWindowArgs),
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
        nats: NatsArgs,
        /// Make the changes.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Imports products and their stock from a CSV file with the header
    /// `product_id,name,category,unit_price,stock[,currency]`.
    Import {
        file: PathBuf,
        #[command(flatten)]
        nats: NatsArgs,
    },
}

#[derive(Args, Debug, Clone)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated for a cluster.
    #[arg(long, env = "ORDERSTREAM_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// JetStream deduplication window for Nats-Msg-Id, in seconds.
    #[arg(long, env = "ORDERSTREAM_DUPLICATE_WINDOW_SECS", default_value_t = 120)]
    pub duplicate_window_secs: u64,
    /// How long streams keep orders and events, in seconds (0: forever).
    #[arg(long, env = "ORDERSTREAM_STREAM_MAX_AGE_SECS", default_value_t = 0)]
    pub stream_max_age_secs: u64,
    /// Size cap per stream in bytes (-1: none); at the cap publishes get 503.
    #[arg(long, env = "ORDERSTREAM_STREAM_MAX_BYTES", default_value_t = -1, allow_negative_numbers = true)]
    pub stream_max_bytes: i64,
    /// Stream replicas (3 on a three-node cluster).
    #[arg(long, env = "ORDERSTREAM_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
    /// How long an Idempotency-Key returns its order, in seconds.
    #[arg(long, env = "ORDERSTREAM_IDEMPOTENCY_TTL_SECS", default_value_t = 24 * 3600)]
    pub idempotency_ttl_secs: u64,
    /// PEM CA certificate(s) the NATS servers' certificates must chain to
    /// (default: the system's). `tls://` URLs, or a server that requires
    /// TLS, use TLS.
    #[arg(long, env = "ORDERSTREAM_NATS_CA")]
    pub nats_ca: Option<PathBuf>,
    /// PEM client certificate, for servers that verify clients (with --nats-key).
    #[arg(long, env = "ORDERSTREAM_NATS_CERT")]
    pub nats_cert: Option<PathBuf>,
    #[arg(long, env = "ORDERSTREAM_NATS_KEY")]
    pub nats_key: Option<PathBuf>,
    /// Require TLS even with `nats://` URLs.
    #[arg(long, env = "ORDERSTREAM_NATS_TLS")]
    pub nats_tls: bool,
    /// User and password (with --nats-password).
    #[arg(long, env = "ORDERSTREAM_NATS_USER")]
    pub nats_user: Option<String>,
    #[arg(long, env = "ORDERSTREAM_NATS_PASSWORD")]
    pub nats_password: Option<String>,
    #[arg(long, env = "ORDERSTREAM_NATS_TOKEN")]
    pub nats_token: Option<String>,
    /// An NKey seed (`SU…`).
    #[arg(long, env = "ORDERSTREAM_NATS_NKEY")]
    pub nats_nkey: Option<String>,
    /// A `.creds` file (user JWT and seed), for servers in operator mode.
    #[arg(long, env = "ORDERSTREAM_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
}

impl NatsArgs {
    /// TLS and credentials, for every connection this process makes.
    pub fn auth(&self) -> broker::NatsAuth {
        broker::NatsAuth {
            ca_file: self.nats_ca.clone(),
            cert_file: self.nats_cert.clone(),
            key_file: self.nats_key.clone(),
            require_tls: self.nats_tls,
            user: self.nats_user.clone(),
            password: self.nats_password.clone(),
            token: self.nats_token.clone(),
            nkey_seed: self.nats_nkey.clone(),
            creds_file: self.nats_creds.clone(),
        }
    }

    /// Connects once: an unreachable server or refused credentials is an error.
    pub async fn connect(&self, client_name: &str) -> Result<async_nats::Client, broker::BrokerError> {
        broker::connect_secure(&self.nats_url, &self.auth(), client_name).await
    }

    pub fn topology(&self) -> TopologySettings {
        TopologySettings {
            duplicate_window: Duration::from_secs(self.duplicate_window_secs),
            max_age: Duration::from_secs(self.stream_max_age_secs),
            max_bytes: self.stream_max_bytes,
            replicas: self.stream_replicas,
            idempotency_ttl: Duration::from_secs(self.idempotency_ttl_secs),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct IngestArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Address the HTTP API listens on.
    #[arg(long, env = "ORDERSTREAM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Largest request body in bytes (413 above).
    #[arg(long, env = "ORDERSTREAM_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,
    /// Longest wait for JetStream's PubAck before answering 503, in milliseconds.
    #[arg(long, env = "ORDERSTREAM_PUBLISH_TIMEOUT_MS", default_value_t = 2000)]
    pub publish_timeout_ms: u64,
    /// Tax on the subtotal in basis points (1000 = 10%).
    #[arg(long, env = "ORDERSTREAM_TAX_RATE_BPS", default_value_t = 1000)]
    pub tax_rate_bps: u32,
    /// Most orders in one batch request.
    #[arg(long, env = "ORDERSTREAM_MAX_BATCH", default_value_t = 1000)]
    pub max_batch: usize,
    /// Orders one customer may submit a minute, counted across every ingest
    /// instance in NATS (e.g. 3); beyond it `429` with `Retry-After`. Off by default.
    #[arg(long, env = "ORDERSTREAM_CUSTOMER_RATE_LIMIT")]
    pub customer_rate_limit: Option<u32>,
    #[command(flatten)]
    pub access: crate::keys_cli::AccessArgs,
}

impl IngestArgs {
    pub fn config(&self) -> IngestConfig {
        IngestConfig {
            max_body_bytes: self.max_body_bytes,
            publish_timeout: Duration::from_millis(self.publish_timeout_ms),
            tax_rate: TaxRate(self.tax_rate_bps),
            max_batch: self.max_batch,
            tracking_ttl: self.access.tracking_ttl(),
            customer_rate_limit: self.customer_rate_limit.filter(|n| *n > 0),
            ..IngestConfig::default()
        }
    }
}

/// Fulfilment delays: `off` (instant), `disabled` (orders stop at
/// confirmed), or three milliseconds `processing,shipped,delivered`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FulfilmentDelays(pub Option<[Duration; 3]>);

pub fn parse_delays(text: &str) -> Result<FulfilmentDelays, String> {
    Ok(FulfilmentDelays(match text.trim() {
        "disabled" => None,
        "off" | "0" => Some([Duration::ZERO; 3]),
        list => {
            let parts: Vec<u64> = list
                .split(',')
                .map(|p| p.trim().parse::<u64>().map_err(|_| format!("{p:?} is not milliseconds")))
                .collect::<Result<_, _>>()?;
            let [a, b, c] = parts[..] else {
                return Err("give three delays in ms (processing,shipped,delivered), off, or disabled".into());
            };
            Some([Duration::from_millis(a), Duration::from_millis(b), Duration::from_millis(c)])
        }
    }))
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum PricingArg {
    Reject,
    Reprice,
    Trust,
}

#[derive(Args, Debug, Clone)]
pub struct ProcessorOptions {
    /// This instance's name (in the engine lease); host and pid by default.
    #[arg(long, env = "ORDERSTREAM_INSTANCE")]
    pub instance: Option<String>,
    /// Orders whose fraud score is above this are flagged for review
    /// (0-100; default: the model's own threshold).
    #[arg(long, env = "ORDERSTREAM_FRAUD_THRESHOLD", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub fraud_threshold: Option<u8>,
    /// A fraud model file written by `orderstream fraud train` (default:
    /// the model built into the binary).
    #[arg(long, env = "ORDERSTREAM_FRAUD_MODEL")]
    pub fraud_model: Option<std::path::PathBuf>,
    /// A submitted unit price that differs from the catalog's: `reject`
    /// cancels the order (`price_mismatch`), `reprice` charges the catalog's,
    /// `trust` charges what was sent. Products not in the catalog keep the
    /// submitted price.
    #[arg(long, env = "ORDERSTREAM_PRICING", default_value = "reject")]
    pub pricing: PricingArg,
    /// How far a submitted unit price may be from the catalog's, in minor
    /// units (cents), and still count as the same (the catalog's is charged).
    #[arg(long, env = "ORDERSTREAM_PRICE_TOLERANCE", default_value_t = 0)]
    pub price_tolerance: u32,
    /// Share of simulated payments declined (0.05 = 5%).
    #[arg(long, env = "ORDERSTREAM_PAYMENT_FAILURE_RATE", default_value_t = 0.05)]
    pub payment_failure_rate: f64,
    /// Simulated payment latency in milliseconds.
    #[arg(long, env = "ORDERSTREAM_PAYMENT_LATENCY_MS", default_value_t = 20)]
    pub payment_latency_ms: u64,
    /// Seed of the simulated payment provider's decisions.
    #[arg(long, env = "ORDERSTREAM_PAYMENT_SEED", default_value_t = 0)]
    pub payment_seed: u64,
    /// Fulfilment delays in ms `processing,shipped,delivered`, `off` (none), or `disabled`.
    #[arg(long, env = "ORDERSTREAM_FULFILMENT_DELAYS_MS", default_value = "500,1500,3000", value_parser = parse_delays)]
    pub fulfilment_delays_ms: FulfilmentDelays,
    /// How often the engine snapshots its state, in milliseconds.
    #[arg(long, env = "ORDERSTREAM_SNAPSHOT_INTERVAL_MS", default_value_t = 2000)]
    pub snapshot_interval_ms: u64,
    /// Products with at most this many available units are low on stock.
    #[arg(long, env = "ORDERSTREAM_LOW_STOCK_THRESHOLD", default_value_t = 10)]
    pub low_stock_threshold: u64,
}

impl ProcessorOptions {
    pub fn config(&self) -> anyhow::Result<processor::ProcessorConfig> {
        let instance = self.instance.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        });
        let mut config = processor::ProcessorConfig::new(instance);
        config.runner.engine.fraud_threshold = self.fraud_threshold;
        config.runner.engine.pricing = match self.pricing {
            PricingArg::Reject => processor::Pricing::Reject,
            PricingArg::Reprice => processor::Pricing::Reprice,
            PricingArg::Trust => processor::Pricing::Trust,
        };
        config.runner.engine.price_tolerance = i64::from(self.price_tolerance);
        if let Some(path) = &self.fraud_model {
            config.runner.engine.fraud_model = std::sync::Arc::new(fraud::FraudModel::load(path)?);
        }
        config.runner.snapshot_every = Duration::from_millis(self.snapshot_interval_ms.max(100));
        config.workers.payment_failure_rate = self.payment_failure_rate.clamp(0.0, 1.0);
        config.workers.payment_latency = Duration::from_millis(self.payment_latency_ms);
        config.workers.seed = self.payment_seed;
        config.workers.fulfilment_delays = self.fulfilment_delays_ms.0;
        Ok(config)
    }

    pub fn api(&self, access: &crate::keys_cli::AccessArgs) -> processor::ApiSettings {
        processor::ApiSettings {
            tracking_ttl: access.tracking_ttl(),
            low_stock_threshold: self.low_stock_threshold,
            ..processor::ApiSettings::default()
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct ProcessorArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub options: ProcessorOptions,
    /// Address the processor's API listens on.
    #[arg(long, env = "ORDERSTREAM_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub access: crate::keys_cli::AccessArgs,
}

#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    #[command(flatten)]
    pub ingest: IngestArgs,
    #[command(flatten)]
    pub processor: ProcessorOptions,
    #[command(flatten)]
    pub analytics: crate::analytics_cli::AnalyticsOptions,
    #[command(flatten)]
    pub dashboard: crate::dashboard_cli::DashboardOptions,
    /// Where the embedded nats-server keeps its data (and, by default, the
    /// analytics tables, in `lake/`).
    #[arg(long, env = "ORDERSTREAM_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Allow admins to run load tests from the dashboard at up to this many
    /// orders per second (0, the default: no load tests).
    #[arg(long, env = "ORDERSTREAM_LOAD_TEST_MAX_RATE", default_value_t = 0.0)]
    pub load_test_max_rate: f64,
    /// The longest load test allowed, in seconds.
    #[arg(long, env = "ORDERSTREAM_LOAD_TEST_MAX_SECS", default_value_t = 60.0)]
    pub load_test_max_secs: f64,
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

    #[test]
    fn fulfilment_delays_parse() {
        assert_eq!(parse_delays("off"), Ok(FulfilmentDelays(Some([Duration::ZERO; 3]))));
        assert_eq!(parse_delays("disabled"), Ok(FulfilmentDelays(None)));
        assert_eq!(
            parse_delays("1,2,3"),
            Ok(FulfilmentDelays(Some([Duration::from_millis(1), Duration::from_millis(2), Duration::from_millis(3)])))
        );
        assert!(parse_delays("1,2").is_err());
        assert!(parse_delays("soon").is_err());
    }
}
