//! Composing the roles' routes into one server: `up` serves ingest and the
//! processor and the dashboard on one port; `processor` serves its API with
//! operations routes.

use std::sync::Arc;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use server::HttpMetrics;
use server::probes::{MetricsText, Readiness, join_metrics};

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
    let (health, ingest_metrics, for_metrics) =
        (ingest_state.health.clone(), ingest_state.metrics.clone(), http.clone());
    let metrics: MetricsText = Arc::new(move || {
        join_metrics(&[
            health.encode_metrics(),
            for_metrics.encode(),
            ingest_metrics.encode(),
            processor_metrics.encode(),
        ])
    });
    let router = Router::new()
        .merge(server::probes::routes(ingest::readiness(&ingest_state), metrics))
        .merge(ingest::producer_routes(ingest_state))
        .merge(processor::routes(api))
        .merge(dashboard)
        .route("/api/openapi.json", get(|| async { axum::Json(openapi()) }));
    finish(router, http, guard)
}

/// `/healthz`, `/readyz` and `/metrics` for a process without ingest.
fn probes(readiness: Readiness, http: Arc<HttpMetrics>, metrics: Arc<processor::Metrics>) -> Router {
    let health = readiness.health.clone();
    let text: MetricsText = Arc::new(move || join_metrics(&[health.encode_metrics(), http.encode(), metrics.encode()]));
    server::probes::routes(readiness, text)
}

/// The processor on its own (or beside the dashboard, for `dashboard`).
pub fn processor_router(
    api: processor::ApiState,
    client: async_nats::Client,
    metrics: Arc<processor::Metrics>,
    health: server::health::Health,
    extra: Option<Router>,
    guard: &Guard,
) -> Router {
    let http = HttpMetrics::new("processor");
    let readiness = Readiness { client, health, nats_required: true, retry_after_secs: 1 };
    let router = Router::new().merge(processor::routes(api)).merge(extra.unwrap_or_default()).merge(probes(
        readiness,
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
    health: server::health::Health,
    order_api: Arc<std::sync::OnceLock<Router>>,
    guard: &Guard,
) -> Router {
    let http = HttpMetrics::new("dashboard");
    let readiness = Readiness { client, health, nats_required: false, retry_after_secs: 1 };
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
        .merge(probes(readiness, http.clone(), metrics))
        .fallback(attached)
        .method_not_allowed_fallback(server::http::method_not_allowed);
    guard.protect(router).layer(axum::middleware::from_fn_with_state(http, server::metrics::track))
}
