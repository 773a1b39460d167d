//! Composing the roles' routes into one server: `up` serves ingest and the
//! processor and the dashboard on one port; `processor` serves its API with
//! operations routes.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::keys_cli::Guard;

/// Prometheus text for several registries on one `/metrics`: OpenMetrics
/// allows one `# EOF`, at the end.
fn join_metrics(parts: &[String]) -> String {
    let mut out = String::new();
    for part in parts {
        out.push_str(part.trim_end().trim_end_matches("# EOF").trim_end());
        out.push('\n');
    }
    out.push_str("# EOF\n");
    out
}

fn metrics_route(encode: impl Fn() -> String + Clone + Send + Sync + 'static) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let encode = encode.clone();
            async move {
                ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], encode())
                    .into_response()
            }
        }),
    )
}

fn finish(router: Router, ingest_metrics: Arc<ingest::Metrics>, guard: &Guard) -> Router {
    guard
        .protect(
            router
                .fallback(schemas::http::not_found_route)
                .method_not_allowed_fallback(schemas::http::method_not_allowed),
        )
        .layer(axum::middleware::from_fn_with_state(ingest_metrics, ingest::track))
}

/// One OpenAPI document for everything `up` serves: ingest's routes, the
/// processor's and the dashboard's.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    let mut doc = ingest::ApiDoc::openapi();
    doc.merge(processor::api::openapi::ProcessorApi::openapi());
    doc.merge(dashboard::openapi::DashboardApi::openapi());
    doc.info.description = Some(
        "orderstream: durable, idempotent order intake, the order saga's API, and the dashboard over the lake".into(),
    );
    doc
}

/// Everything on one port: submit (ingest), read/cancel/admin/live (processor).
pub fn up_router(
    ingest_state: ingest::AppState,
    api: processor::ApiState,
    processor_metrics: Arc<processor::Metrics>,
    dashboard: Router,
    guard: &Guard,
) -> Router {
    let ingest_metrics = ingest_state.metrics.clone();
    let for_metrics = ingest_metrics.clone();
    let health = ingest_state.health.clone();
    let router = Router::new()
        .merge(ingest::producer_routes(ingest_state.clone()))
        .merge(ingest::health_routes(ingest_state))
        .merge(processor::routes(api))
        .merge(dashboard)
        .merge(metrics_route(move || {
            join_metrics(&[health.encode_metrics(), for_metrics.encode(), processor_metrics.encode()])
        }))
        .route("/api/openapi.json", get(|| async { axum::Json(openapi()) }));
    finish(router, ingest_metrics, guard)
}

/// `/healthz`, `/readyz` and `/metrics` for a process without ingest:
/// ready when every long-running part is, and, if `needs_nats`, NATS is
/// connected.
fn operations_routes(
    client: async_nats::Client,
    health: schemas::health::Health,
    needs_nats: bool,
    http_metrics: Arc<ingest::Metrics>,
    metrics: Arc<processor::Metrics>,
) -> Router {
    let for_ready = health.clone();
    let ready = move || {
        let connected = client.connection_state() == async_nats::connection::State::Connected;
        let health = for_ready.clone();
        async move {
            let mut problems: Vec<String> = Vec::new();
            if needs_nats && !connected {
                problems.push("NATS not connected".into());
            }
            problems.extend(health.failing_parts().into_iter().map(|(name, why)| format!("{name}: {why}")));
            ingest::readiness(problems, connected, &health, 1)
        }
    };
    Router::new()
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .merge(metrics_route(move || join_metrics(&[health.encode_metrics(), http_metrics.encode(), metrics.encode()])))
}

/// The processor on its own (or beside the dashboard, for `dashboard`).
pub fn processor_router(
    api: processor::ApiState,
    client: async_nats::Client,
    metrics: Arc<processor::Metrics>,
    health: schemas::health::Health,
    extra: Option<Router>,
    guard: &Guard,
) -> Router {
    let http_metrics = ingest::Metrics::new();
    let router = Router::new().merge(processor::routes(api)).merge(extra.unwrap_or_default()).merge(operations_routes(
        client,
        health,
        true,
        http_metrics.clone(),
        metrics,
    ));
    finish(router, http_metrics, guard)
}

/// The dashboard on its own: the tables' routes at once, the processor's
/// routes (in `order_api`) once they are attached; until then those answer
/// 503. Ready when the tables are (NATS is reported, not required).
pub fn lake_router(
    dashboard: Router,
    client: async_nats::Client,
    metrics: Arc<processor::Metrics>,
    health: schemas::health::Health,
    order_api: Arc<std::sync::OnceLock<Router>>,
    guard: &Guard,
) -> Router {
    let http_metrics = ingest::Metrics::new();
    let attached = move |request: axum::extract::Request| {
        let order_api = order_api.clone();
        async move {
            use tower::ServiceExt;
            match order_api.get() {
                Some(router) => router.clone().oneshot(request).await.into_response(),
                None if request.uri().path().starts_with("/api/") => schemas::http::HttpError::unavailable(
                    "the order API needs NATS, which does not answer yet; the tables (/api/sql, /api/dashboard/*) do",
                    2,
                )
                .into_response(),
                None => schemas::http::not_found_route().await.into_response(),
            }
        }
    };
    let router = Router::new()
        .merge(dashboard)
        .merge(operations_routes(client, health, false, http_metrics.clone(), metrics))
        .fallback(attached)
        .method_not_allowed_fallback(schemas::http::method_not_allowed);
    guard.protect(router).layer(axum::middleware::from_fn_with_state(http_metrics, ingest::track))
}

#[cfg(test)]
mod tests {
    #[test]
    fn joined_metrics_end_in_one_eof() {
        let joined = super::join_metrics(&["a 1\n# EOF\n".into(), "b 2\n# EOF\n".into()]);
        assert_eq!(joined, "a 1\nb 2\n# EOF\n");
    }
}
