//! The producer-facing HTTP API: validates orders, makes them durable in
//! JetStream (idempotently), and answers only after the PubAck.

mod config;
mod error;
mod intake;
pub mod metrics;
mod openapi;
mod routes;

use std::sync::Arc;

use async_nats::jetstream;
use axum::Router;
use axum::routing::{get, post};
use thiserror::Error;

use broker::{BrokerError, IDEMPOTENCY_BUCKET, ORDERS_STREAM, TopologySettings, ensure_topology};

pub use config::IngestConfig;
pub use error::HttpError;
pub use intake::{Accepted, Claim, Intake, IntakeError};
pub use metrics::Metrics;
pub use openapi::{ApiDoc, openapi_json};
pub use routes::AppState;

#[derive(Debug, Error)]
pub enum IngestError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("cannot open {what}: {message}")]
    Open { what: &'static str, message: String },
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
        health: server::Health::new(),
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

/// What `/readyz` checks for ingest: NATS and the streams, every part.
pub fn readiness(state: &AppState) -> server::probes::Readiness {
    server::probes::Readiness::new(
        state.intake.client.clone(),
        state.health.clone(),
        true,
        state.config.retry_after_secs,
    )
}

/// Ingest on its own: submit, read back as accepted, operations, metrics.
pub fn router(state: AppState) -> Router {
    let http = server::HttpMetrics::new("ingest");
    let metrics: Vec<Arc<dyn server::MetricsSource>> =
        vec![Arc::new(state.health.clone()), http.clone(), state.metrics.clone()];
    Router::new()
        .route("/api/orders/{id}", get(routes::get_order))
        .with_state(state.clone())
        .merge(server::probes::routes(readiness(&state), metrics))
        .merge(producer_routes(state))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .fallback(server::http::not_found_route)
        .method_not_allowed_fallback(server::http::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(http, server::metrics::track))
}
