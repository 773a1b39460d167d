//! The producer-facing HTTP API: validates orders, makes them durable in
//! JetStream (idempotently), and answers only after the PubAck.

mod config;
mod error;
mod intake;
pub mod metrics;
mod openapi;
mod routes;

use std::future::Future;
use std::sync::Arc;

use async_nats::jetstream;
use axum::Router;
use axum::routing::{get, post};
use thiserror::Error;

use broker::{BrokerError, IDEMPOTENCY_BUCKET, ORDERS_STREAM, TopologySettings, ensure_topology};

pub use config::IngestConfig;
pub use error::HttpError;
pub use intake::{Accepted, Claim, Intake, IntakeError};
pub use metrics::{Metrics, track};
pub use openapi::{ApiDoc, openapi_json};
pub use routes::{AppState, readiness};

#[derive(Debug, Error)]
pub enum IngestError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("cannot open {what}: {message}")]
    Open { what: &'static str, message: String },
    #[error("HTTP server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// Ensures the topology exists and opens the handles ingest needs.
pub async fn build_state(
    client: async_nats::Client,
    config: IngestConfig,
    topology: &TopologySettings,
) -> Result<AppState, IngestError> {
    let js = jetstream::new(client.clone());
    ensure_topology(&js, topology).await?;
    let orders = js
        .get_stream_no_info(ORDERS_STREAM)
        .await
        .map_err(|e| IngestError::Open { what: "the ORDERS stream", message: e.to_string() })?;
    let idempotency = js
        .get_key_value(IDEMPOTENCY_BUCKET)
        .await
        .map_err(|e| IngestError::Open { what: "the IDEMPOTENCY bucket", message: e.to_string() })?;
    let tracking = access::TrackingLinks::open(&js, config.tracking_ttl)
        .await
        .map_err(|e| IngestError::Open { what: "the tracking-link secret", message: e.to_string() })?;
    let intake = Intake {
        client,
        js: js.clone(),
        orders,
        idempotency,
        publish_timeout: config.publish_timeout,
        tax_rate: config.tax_rate,
    };
    let limiter = match config.customer_rate_limit {
        Some(_) => Some(
            access::RateLimiter::open(&js)
                .await
                .map_err(|e| IngestError::Open { what: "the rate limits", message: e.to_string() })?,
        ),
        None => None,
    };
    Ok(AppState {
        tracking: Some(tracking),
        limiter,
        intake: Arc::new(intake),
        metrics: Metrics::new(),
        config: Arc::new(config),
        health: schemas::health::Health::new(),
    })
}

/// The routes producers use: submitting orders. A deployment composes these
/// with whatever serves reads (the processor's live view, or [`router`]'s).
pub fn producer_routes(state: AppState) -> Router {
    Router::new()
        .route("/api/orders", post(routes::post_order))
        .route("/api/orders/batch", post(routes::post_batch))
        .with_state(state)
}

/// Liveness and readiness of the ingest path (NATS connected, streams there).
pub fn health_routes(state: AppState) -> Router {
    Router::new().route("/healthz", get(routes::healthz)).route("/readyz", get(routes::readyz)).with_state(state)
}

/// Ingest on its own: submit, read back as accepted, operations, metrics.
pub fn router(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    Router::new()
        .route("/api/orders/{id}", get(routes::get_order))
        .route("/metrics", get(routes::metrics))
        .with_state(state.clone())
        .merge(producer_routes(state.clone()))
        .merge(health_routes(state))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .fallback(schemas::http::not_found_route)
        .method_not_allowed_fallback(schemas::http::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(metrics, metrics::track))
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), IngestError> {
    use axum::serve::ListenerExt;
    // Small request/response exchanges on keep-alive connections must not
    // wait on Nagle's algorithm.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::warn!(%err, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
