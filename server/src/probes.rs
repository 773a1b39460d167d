//! `/healthz`, `/readyz` and `/metrics`, one implementation for every role.
//! Ready means: NATS connected and the order streams present (where the
//! role needs NATS; the dashboard alone only reports it), and no part of
//! the process failing.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use broker::{ORDER_EVENTS_STREAM, ORDERS_STREAM};
use serde_json::json;

use crate::health::Health;
use crate::metrics::MetricsSource;

/// The streams a role that needs NATS cannot serve without.
const REQUIRED_STREAMS: [&str; 2] = [ORDERS_STREAM, ORDER_EVENTS_STREAM];

/// What `/readyz` looks at.
#[derive(Clone)]
pub struct Readiness {
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    health: Health,
    nats_required: bool,
    retry_after_secs: u32,
}

impl Readiness {
    /// `nats_required`: not ready without NATS and the streams (ingest,
    /// processor, `up`); the dashboard alone serves the lake without it and
    /// only reports it. `retry_after_secs`: what a 503 tells the caller to
    /// wait.
    pub fn new(client: async_nats::Client, health: Health, nats_required: bool, retry_after_secs: u32) -> Self {
        let js = async_nats::jetstream::new(client.clone());
        Readiness { client, js, health, nats_required, retry_after_secs }
    }

    /// Every problem, or none.
    async fn problems(&self) -> (bool, Vec<String>) {
        let connected = self.client.connection_state() == async_nats::connection::State::Connected;
        let mut problems = Vec::new();
        if self.nats_required {
            if !connected {
                problems.push("NATS not connected".to_string());
            } else {
                let mut missing = Vec::new();
                for name in REQUIRED_STREAMS {
                    let found = tokio::time::timeout(Duration::from_secs(1), self.js.get_stream_no_info(name)).await;
                    if !matches!(found, Ok(Ok(_))) {
                        missing.push(name);
                    }
                }
                if !missing.is_empty() {
                    problems.push(format!("streams missing: {}", missing.join(", ")));
                }
            }
        }
        problems.extend(self.health.failing_parts().into_iter().map(|(name, why)| format!("{name}: {why}")));
        (connected, problems)
    }

    /// 200 when nothing is wrong, else 503 naming every problem; both list
    /// the state of each long-running part.
    pub async fn answer(&self) -> Response {
        let (connected, problems) = self.problems().await;
        let nats = if connected { "connected" } else { "disconnected" };
        let components = self.health.parts();
        if problems.is_empty() {
            return Json(json!({
                "status": "ready",
                "nats": nats,
                "streams": REQUIRED_STREAMS,
                "components": components,
            }))
            .into_response();
        }
        let mut response = (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "error": "not_ready",
                "message": problems.join("; "),
                "nats": nats,
                "components": components,
            })),
        )
            .into_response();
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(self.retry_after_secs));
        response
    }
}

#[derive(Clone)]
pub struct Probes {
    readiness: Readiness,
    metrics: Arc<[Arc<dyn MetricsSource>]>,
}

/// `/healthz`, `/readyz`, and `/metrics` with every source's series (the
/// process's health, its HTTP metrics, the role's own).
pub fn routes(readiness: Readiness, metrics: Vec<Arc<dyn MetricsSource>>) -> Router {
    let metrics: Arc<[Arc<dyn MetricsSource>]> = metrics.into();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Probes { readiness, metrics })
}

/// Liveness: the process serves HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200)))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: NATS connected and the streams present, every part working.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200), (status = 503, body = schemas::ApiError)))]
pub async fn readyz(State(probes): State<Probes>) -> Response {
    probes.readiness.answer().await
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics_text(State(probes): State<Probes>) -> Response {
    let parts: Vec<String> = probes.metrics.iter().map(|source| source.openmetrics()).collect();
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], join_metrics(&parts))
        .into_response()
}

/// Several registries' text on one `/metrics`: OpenMetrics allows one
/// `# EOF`, at the end.
fn join_metrics(parts: &[String]) -> String {
    let mut out = String::new();
    for part in parts {
        out.push_str(part.trim_end().trim_end_matches("# EOF").trim_end());
        out.push('\n');
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn joined_metrics_end_in_one_eof() {
        let joined = super::join_metrics(&["a 1\n# EOF\n".into(), "b 2\n# EOF\n".into()]);
        assert_eq!(joined, "a 1\nb 2\n# EOF\n");
    }
}
