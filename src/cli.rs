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
    /// Open-loop HTTP load against an ingest endpoint, with an HDR latency report.
    Loadgen(crate::loadgen::LoadgenArgs),
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
}

impl NatsArgs {
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
}

impl IngestArgs {
    pub fn config(&self) -> IngestConfig {
        IngestConfig {
            max_body_bytes: self.max_body_bytes,
            publish_timeout: Duration::from_millis(self.publish_timeout_ms),
            tax_rate: TaxRate(self.tax_rate_bps),
            max_batch: self.max_batch,
            ..IngestConfig::default()
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    #[command(flatten)]
    pub ingest: IngestArgs,
    /// Where the embedded nats-server (and later analytics output) keeps data.
    #[arg(long, env = "ORDERSTREAM_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}
