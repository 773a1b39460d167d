//! The processor's HTTP API: live order status, the timeline, a customer's
//! orders, cancellation and review, products and stock, the dead-letter
//! queue, and live updates (WebSocket and SSE).

mod admin;
mod live;
pub mod openapi;
mod orders;
mod track;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use axum::Router;
use axum::routing::{get, post, put};
use server::http::HttpError;

use broker::{CATALOG_BUCKET, DLQ_STREAM, LEASE_BUCKET, ORDER_VIEW_BUCKET, ORDERS_STREAM};

use crate::ProcessorError;
use crate::metrics::Metrics;

#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// Products at or below this many available units are "low stock".
    pub low_stock_threshold: u64,
    /// How long cancel/review/stock requests wait for the engine's verdict.
    pub command_timeout: Duration,
    pub max_body_bytes: usize,
    /// How long a tracking link stays valid (ingest signs them; this side
    /// only verifies, with the same shared secret).
    pub tracking_ttl: Duration,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            low_stock_threshold: 10,
            command_timeout: Duration::from_secs(5),
            max_body_bytes: 64 * 1024,
            tracking_ttl: access::DEFAULT_TRACKING_TTL,
        }
    }
}

#[derive(Clone)]
pub struct ApiState {
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) views: kv::Store,
    pub(crate) lease: kv::Store,
    pub(crate) catalog: kv::Store,
    pub(crate) orders: jetstream::stream::Stream<()>,
    pub(crate) dlq: jetstream::stream::Stream<()>,
    pub(crate) events: jetstream::stream::Stream<()>,
    pub(crate) stock_events: jetstream::stream::Stream<()>,
    pub(crate) settings: Arc<ApiSettings>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) tracking: Option<access::TrackingLinks>,
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> HttpError {
    HttpError::unavailable(format!("NATS: {e}"), 1)
}

impl ApiState {
    pub async fn open(
        client: async_nats::Client,
        settings: ApiSettings,
        metrics: Arc<Metrics>,
    ) -> Result<ApiState, ProcessorError> {
        let js = jetstream::new(client.clone());
        let nats = |what: &'static str| move |e: String| ProcessorError::Nats { what, message: e };
        Ok(ApiState {
            views: js.get_key_value(ORDER_VIEW_BUCKET).await.map_err(|e| nats("open ORDER_VIEW")(e.to_string()))?,
            lease: js.get_key_value(LEASE_BUCKET).await.map_err(|e| nats("open PROCESSOR_LEASE")(e.to_string()))?,
            catalog: js.get_key_value(CATALOG_BUCKET).await.map_err(|e| nats("open CATALOG")(e.to_string()))?,
            orders: js.get_stream_no_info(ORDERS_STREAM).await.map_err(|e| nats("open ORDERS")(e.to_string()))?,
            dlq: js.get_stream_no_info(DLQ_STREAM).await.map_err(|e| nats("open ORDERS_DLQ")(e.to_string()))?,
            events: js
                .get_stream_no_info(broker::ORDER_EVENTS_STREAM)
                .await
                .map_err(|e| nats("open ORDER_EVENTS")(e.to_string()))?,
            stock_events: js
                .get_stream_no_info(broker::STOCK_EVENTS_STREAM)
                .await
                .map_err(|e| nats("open STOCK_EVENTS")(e.to_string()))?,
            tracking: Some(
                access::TrackingLinks::open(&js, settings.tracking_ttl)
                    .await
                    .map_err(|e| nats("open the tracking-link secret")(e.to_string()))?,
            ),
            client,
            js,
            settings: Arc::new(settings),
            metrics,
        })
    }
}

/// The processor's routes (no fallback, no /metrics: the binary composes those).
pub fn routes(state: ApiState) -> Router {
    let admin = Router::new()
        .route("/api/admin/orders/{id}/review", post(admin::review))
        .route("/api/admin/products/{id}/stock", put(admin::set_stock))
        .route("/api/admin/dlq", get(admin::list_dlq))
        .route("/api/admin/dlq/{seq}/retry", post(admin::retry_dlq))
        .route("/api/admin/audit", get(admin::audit_log));
    Router::new()
        .route("/api/orders", get(orders::list))
        .route("/api/orders/{id}", get(orders::get))
        .route("/api/orders/{id}/events", get(orders::timeline))
        .route("/api/orders/{id}/cancel", post(orders::cancel))
        .route("/api/orders/{id}/stream", get(live::sse))
        .route("/api/ws/orders", get(live::websocket))
        .route("/api/track/{token}", get(track::track))
        .route("/api/track/{token}/stream", get(track::track_stream))
        .route("/api/products", get(admin::products))
        .merge(admin)
        .with_state(state)
}
