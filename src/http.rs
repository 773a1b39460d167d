//! Composing the roles' routes into one server: `up` serves ingest and the
//! processor and the dashboard on one port; `processor` serves its API with
//! operations routes.

use std::sync::Arc;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use server::health::Health;
use server::probes::Readiness;
use server::{HttpMetrics, MetricsSource};

use crate::keys_cli::Guard;

fn finish(router: Router, http_metrics: Arc<HttpMetrics>, guard: &Guard) -> Router {
    guard
        .protect(
            router
                .fallback(server::http::not_found_route)
                .method_not_allowed_fallback(server::http::method_not_allowed),
        )
        .layer(axum::middleware::from_fn_with_state(http_metrics, server::metrics::track))
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
    let http = HttpMetrics::new("up");
    let metrics: Vec<Arc<dyn MetricsSource>> =
        vec![Arc::new(ingest_state.health.clone()), http.clone(), ingest_state.metrics.clone(), processor_metrics];
    let router = Router::new()
        .merge(server::probes::routes(ingest::readiness(&ingest_state), metrics))
        .merge(ingest::producer_routes(ingest_state))
        .merge(processor::routes(api))
        .merge(dashboard)
        .route("/api/openapi.json", get(|| async { axum::Json(openapi()) }));
    finish(router, http, guard)
}

/// `/healthz`, `/readyz` and `/metrics` for a process without ingest.
fn probes(
    client: async_nats::Client,
    health: Health,
    nats_required: bool,
    http: Arc<HttpMetrics>,
    metrics: Arc<processor::Metrics>,
) -> Router {
    let sources: Vec<Arc<dyn MetricsSource>> = vec![Arc::new(health.clone()), http, metrics];
    server::probes::routes(Readiness::new(client, health, nats_required, 1), sources)
}

/// The processor on its own (or beside the dashboard, for `dashboard`).
pub fn processor_router(
    api: processor::ApiState,
    client: async_nats::Client,
    metrics: Arc<processor::Metrics>,
    health: Health,
    extra: Option<Router>,
    guard: &Guard,
) -> Router {
    let http = HttpMetrics::new("processor");
    let router = Router::new().merge(processor::routes(api)).merge(extra.unwrap_or_default()).merge(probes(
        client,
        health,
        true,
        http.clone(),
        metrics,
    ));
    finish(router, http, guard)
}

/// The dashboard on its own: the tables' routes at once, the processor's
/// routes (in `order_api`) once they are attached; until then those answer
/// 503. Ready when the tables are (NATS is reported, not required).
pub fn lake_router(
    dashboard: Router,
    client: async_nats::Client,
    metrics: Arc<processor::Metrics>,
    health: Health,
    order_api: Arc<std::sync::OnceLock<Router>>,
    guard: &Guard,
) -> Router {
    let http = HttpMetrics::new("dashboard");
    let attached = move |request: axum::extract::Request| {
        let order_api = order_api.clone();
        async move {
            use tower::ServiceExt;
            match order_api.get() {
                Some(router) => router.clone().oneshot(request).await.into_response(),
                None if request.uri().path().starts_with("/api/") => server::http::HttpError::unavailable(
                    "the order API needs NATS, which does not answer yet; the tables (/api/sql, /api/dashboard/*) do",
                    2,
                )
                .into_response(),
                None => server::http::not_found_route().await.into_response(),
            }
        }
    };
    let router = Router::new()
        .merge(dashboard)
        .merge(probes(client, health, false, http.clone(), metrics))
        .fallback(attached)
        .method_not_allowed_fallback(server::http::method_not_allowed);
    guard.protect(router).layer(axum::middleware::from_fn_with_state(http, server::metrics::track))
}
