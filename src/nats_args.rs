//! How every role reaches NATS: the URL(s), TLS and credentials, and the
//! streams' settings, as flags and environment variables.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use broker::TopologySettings;
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated for a cluster.
    #[arg(long, env = "ORDERSTREAM_NATS_URL", default_value = broker::DEFAULT_NATS_URL)]
    pub nats_url: String,
    /// JetStream deduplication window for Nats-Msg-Id, in seconds.
    #[arg(long, env = "ORDERSTREAM_DUPLICATE_WINDOW_SECS", default_value_t = TopologySettings::default().duplicate_window.as_secs())]
    pub duplicate_window_secs: u64,
    /// How long streams keep orders and events, in seconds (0: forever).
    #[arg(long, env = "ORDERSTREAM_STREAM_MAX_AGE_SECS", default_value_t = TopologySettings::default().max_age.as_secs())]
    pub stream_max_age_secs: u64,
    /// Size cap per stream in bytes (-1: none); at the cap publishes get 503.
    #[arg(long, env = "ORDERSTREAM_STREAM_MAX_BYTES", default_value_t = TopologySettings::default().max_bytes, allow_negative_numbers = true)]
    pub stream_max_bytes: i64,
    /// Stream replicas (3 on a three-node cluster).
    #[arg(long, env = "ORDERSTREAM_STREAM_REPLICAS", default_value_t = TopologySettings::default().replicas)]
    pub stream_replicas: usize,
    /// How long an Idempotency-Key returns its order, in seconds.
    #[arg(long, env = "ORDERSTREAM_IDEMPOTENCY_TTL_SECS", default_value_t = TopologySettings::default().idempotency_ttl.as_secs())]
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

/// Connects, retrying while NATS is not up yet: roles may start in any
/// order. Refused credentials or an untrusted certificate are not retried:
/// they are a clear error at start-up.
pub async fn connect_with_retry(nats: &NatsArgs, name: &str) -> Result<async_nats::Client> {
    let mut delay = Duration::from_millis(100);
    loop {
        match nats.connect(name).await {
            Ok(client) => return Ok(client),
            Err(err) if broker::is_refused(&err) => {
                bail!(
                    "NATS at {} refused this connection: {err} (check --nats-user/--nats-password, --nats-token, --nats-nkey, --nats-creds, --nats-ca)",
                    nats.nats_url
                )
            }
            Err(err) => {
                tracing::warn!(%err, retry_in = ?delay, "NATS not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
