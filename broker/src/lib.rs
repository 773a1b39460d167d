//! NATS for orderstream: the stream topology (names, subjects, limits) that
//! every role agrees on, connecting with fast reconnects, and running a local
//! `nats-server` — for `orderstream up` and for every integration test.

pub mod lease;
pub mod security;
pub mod server;
pub mod stream_reader;
pub mod topology;

use std::time::Duration;

use thiserror::Error;

pub use lease::{ANALYTICS_LEASE_KEY, LEASE_RENEW_EVERY, Lease, LeaseError, Taken};
pub use security::NatsAuth;
pub use server::{NatsCluster, NatsServer, ServerError, ServerOptions, find_nats_server};
pub use stream_reader::{Delivery, ReaderError, ReaderOptions, StreamReader};
pub use topology::*;

#[derive(Debug, Error)]
pub enum BrokerError {
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("cannot create or update stream {name}: {source}")]
    Stream {
        name: String,
        #[source]
        source: async_nats::jetstream::context::CreateStreamError,
    },
    #[error("cannot read the state of {name}: {message}")]
    Inspect { name: String, message: String },
    #[error("cannot create object store {name}: {message}")]
    ObjectStore { name: String, message: String },
    #[error("cannot create or update key-value bucket {name}: {source}")]
    KeyValue {
        name: String,
        #[source]
        source: async_nats::jetstream::context::CreateKeyValueError,
    },
}

/// Whether connecting failed because the server refused us (credentials,
/// TLS), which retrying cannot mend, rather than because it is not up.
pub fn is_refused(err: &BrokerError) -> bool {
    use async_nats::ConnectErrorKind as Kind;
    match err {
        BrokerError::Connect { source, .. } => match source.kind() {
            Kind::Authentication | Kind::AuthorizationViolation | Kind::Tls => true,
            // async-nats reports a certificate it does not trust as I/O.
            Kind::Io => source.to_string().contains("certificate"),
            _ => false,
        },
        _ => false,
    }
}

/// Where every role looks for NATS unless told otherwise.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// The servers of `urls`: one URL, or several comma-separated for a cluster.
pub fn server_addrs(urls: &str) -> std::io::Result<Vec<async_nats::ServerAddr>> {
    urls.split(',').map(|url| url.trim().parse()).collect()
}

/// Connects to `urls` (one URL, or several comma-separated for a cluster)
/// with reconnects that never give up and never wait more than a quarter
/// second, so a restarted server is picked up within moments.
pub async fn connect(urls: &str, client_name: &str) -> Result<async_nats::Client, BrokerError> {
    connect_with(urls, client_name, false, &NatsAuth::default()).await
}

/// [`connect`] with TLS and credentials. Wrong credentials or an untrusted
/// certificate are an error at once, naming the server.
pub async fn connect_secure(urls: &str, auth: &NatsAuth, client_name: &str) -> Result<async_nats::Client, BrokerError> {
    connect_with(urls, client_name, false, auth).await
}

/// [`connect`], but answering at once with a client that connects in the
/// background: for a role that has work to do before NATS answers (the
/// dashboard serves its tables).
pub async fn connect_lazily(urls: &str, auth: &NatsAuth, client_name: &str) -> Result<async_nats::Client, BrokerError> {
    connect_with(urls, client_name, true, auth).await
}

async fn connect_with(
    urls: &str,
    client_name: &str,
    lazily: bool,
    auth: &NatsAuth,
) -> Result<async_nats::Client, BrokerError> {
    let connect_error = |source| BrokerError::Connect { url: urls.to_string(), source };
    let servers = server_addrs(urls).map_err(|e| {
        connect_error(async_nats::ConnectError::with_source(async_nats::ConnectErrorKind::ServerParse, e))
    })?;
    let mut options = async_nats::ConnectOptions::new()
        .name(client_name)
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| Duration::from_millis((attempts as u64 * 25).min(250)))
        .connection_timeout(Duration::from_secs(2))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Disconnected => tracing::warn!("NATS disconnected; reconnecting"),
                async_nats::Event::Connected => tracing::info!("NATS connected"),
                other => tracing::debug!(event = %other, "NATS event"),
            }
        });
    if lazily {
        options = options.retry_on_initial_connect();
    }
    let options = auth.apply(options).await.map_err(|e| {
        connect_error(async_nats::ConnectError::with_source(async_nats::ConnectErrorKind::Authentication, e))
    })?;
    options.connect(servers).await.map_err(connect_error)
}
