//! The dashboard: an HTTP API over the analytics tables (DataFusion on the
//! Parquet the analytics job writes) and the web dashboard that uses it.
//!
//! - [`sandbox`] and [`sql_api`]: `POST /api/sql`, read-only and bounded.
//! - [`views`]: the endpoints the web page draws (summary, revenue windows,
//!   heatmap, top products, funnel, fraud queue, health).
//! - [`rollups`]: revenue windows and best sellers, closed windows from the
//!   pipelines' output.
//! - [`search`]: admin order search with keyset pagination; the
//!   statuses of a page come from [`status_index`], the files holding an id
//!   from [`bloom_index`], both kept per file by `analytics::query::file_cache`.
//! - [`bulk`] and [`export`]: bulk commands through JetStream; CSV exports,
//!   streamed or as background jobs.
//! - [`live`]: rates and latencies sampled from NATS, pushed over WebSocket.
//! - [`assets`]: the web page, built into the binary.

pub mod assets;
pub mod bloom_index;
pub mod bulk;
pub mod coverage_cache;
pub mod customer_figures;
pub mod customers_api;
pub mod export;
pub mod forecast_api;
pub mod fraud_api;
pub mod inventory_api;
pub mod lake;
pub mod live;
pub mod openapi;
pub mod operations_api;
pub mod params;
pub mod rollups;
pub mod sales;
pub mod sandbox;
pub mod search;
pub mod sql_api;
pub mod sql_rows;
pub mod status_index;
pub mod views;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use datafusion::error::DataFusionError;
use server::http::HttpError;
use thiserror::Error;

pub use lake::Lake;

#[derive(Debug, Error)]
pub enum DashboardError {
    #[error(transparent)]
    Analytics(#[from] analytics::AnalyticsError),
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
    #[error("the query ran past its {0:?} time limit")]
    Timeout(Duration),
    #[error("NATS: {0}")]
    Nats(String),
    #[error("export: {0}")]
    Export(String),
    #[error("encoding the answer: {0}")]
    Encode(String),
    /// A query or model task panicked or was cancelled.
    #[error("{what} failed: {source}")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    /// Forecasting failed other than in its query (a model, a table).
    #[error(transparent)]
    Forecast(forecast::ForecastError),
    /// The customers model failed other than in its query.
    #[error(transparent)]
    Customers(customers::CustomersError),
    #[error("{0}")]
    Internal(String),
}

/// Forecasting's query errors keep their meaning (a planning error, the
/// memory pool); the rest are internal.
impl From<forecast::ForecastError> for DashboardError {
    fn from(e: forecast::ForecastError) -> Self {
        match e {
            forecast::ForecastError::DataFusion(e) => DashboardError::DataFusion(e),
            forecast::ForecastError::Analytics(e) => DashboardError::Analytics(e),
            other => DashboardError::Forecast(other),
        }
    }
}

impl DashboardError {
    pub fn nats(e: impl std::fmt::Display) -> Self {
        DashboardError::Nats(e.to_string())
    }
}

/// Every dashboard error as the JSON answer the API promises.
impl From<DashboardError> for HttpError {
    fn from(err: DashboardError) -> Self {
        match err {
            DashboardError::Timeout(limit) => HttpError {
                retry_after_secs: Some(1),
                ..HttpError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "query_timeout",
                    format!("the query ran past the {} ms time limit and was stopped", limit.as_millis()),
                )
            },
            DashboardError::DataFusion(e) => datafusion_error(&e),
            DashboardError::Analytics(analytics::AnalyticsError::DataFusion(e)) => datafusion_error(&e),
            DashboardError::Nats(message) => HttpError::unavailable(format!("NATS: {message}"), 1),
            other => {
                tracing::error!(error = %other, "dashboard request failed");
                HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", other.to_string())
            }
        }
    }
}

/// Planning errors are the caller's (400), running out of the memory pool is
/// a 503, an execution error (a bad cast, a division by zero) is a 422.
fn datafusion_error(e: &DataFusionError) -> HttpError {
    let message = e.to_string();
    match e.find_root() {
        DataFusionError::ResourcesExhausted(_) => HttpError {
            retry_after_secs: Some(5),
            ..HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "memory_limit",
                format!("the query needs more memory than the dashboard's query pool allows: {message}"),
            )
        },
        DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::SQL(..)
        | DataFusionError::NotImplemented(_) => {
            HttpError::new(StatusCode::BAD_REQUEST, "sql_invalid", message).with_field("sql")
        }
        DataFusionError::Execution(_) | DataFusionError::ArrowError(..) => {
            HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, "query_failed", message).with_field("sql")
        }
        _ => {
            tracing::error!(error = %message, "query failed");
            HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
        }
    }
}

#[derive(Clone, Debug)]
pub struct DashboardSettings {
    /// Rows a JSON answer (or a non-export query) returns at most.
    pub row_limit: usize,
    pub query_timeout: Duration,
    /// How long a streamed or background export may run (it stops sooner
    /// when its client goes away or it is cancelled).
    pub export_timeout: Duration,
    pub max_body_bytes: usize,
    /// Where background exports are written.
    pub export_dir: PathBuf,
    /// How long bulk actions wait for the engine's verdict per order.
    pub command_timeout: Duration,
    /// Products at or below this many available units are "low stock".
    pub low_stock_threshold: u64,
    /// Which pipeline output serves which figure (from the manifests).
    pub rollups: rollups::RollupTables,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        DashboardSettings {
            row_limit: 10_000,
            query_timeout: Duration::from_secs(10),
            export_timeout: Duration::from_secs(10 * 60),
            max_body_bytes: 64 * 1024,
            export_dir: std::env::temp_dir().join("orderstream-exports"),
            command_timeout: Duration::from_secs(5),
            low_stock_threshold: 10,
            rollups: rollups::RollupTables::builtin(),
        }
    }
}

#[derive(Clone)]
pub struct Dashboard {
    pub lake: Arc<Lake>,
    pub js: async_nats::jetstream::Context,
    pub client: async_nats::Client,
    pub live: Arc<live::Live>,
    pub exports: Arc<export::Exports>,
    pub settings: Arc<DashboardSettings>,
    pub coverage: Arc<coverage_cache::CoverageCache>,
    pub blooms: Arc<bloom_index::BloomIndex>,
    pub statuses: Arc<status_index::StatusIndex>,
    pub plan_inputs: Arc<inventory_api::PlanInputsCache>,
    pub customers: Arc<customers_api::CustomersCache>,
    pub operations: Arc<operations_api::OperationsCache>,
}

impl Dashboard {
    pub fn new(
        lake: Arc<Lake>,
        client: async_nats::Client,
        live: Arc<live::Live>,
        settings: DashboardSettings,
    ) -> Self {
        let exports = Arc::new(export::Exports::new(settings.export_dir.clone()));
        Dashboard {
            lake,
            js: async_nats::jetstream::new(client.clone()),
            client,
            live,
            exports,
            settings: Arc::new(settings),
            coverage: Arc::default(),
            blooms: Arc::default(),
            statuses: Arc::default(),
            plan_inputs: Arc::default(),
            customers: Arc::default(),
            operations: Arc::default(),
        }
    }
}

/// The dashboard's routes: the API and the web page.
pub fn routes(state: Dashboard) -> Router {
    let admin = Router::new()
        .route("/api/admin/orders", get(search::search))
        .route("/api/admin/orders/bulk", post(bulk::bulk))
        .route("/api/admin/orders/export", get(export::export_csv))
        .route("/api/admin/orders/{id}/detail", get(views::order_detail))
        .route("/api/admin/exports", post(export::start).get(export::list))
        .route("/api/admin/exports/{id}", get(export::status).delete(export::cancel))
        .route("/api/admin/exports/{id}/download", get(export::download));
    Router::new()
        .route("/api/sql", post(sql_api::run))
        .route("/api/sql/tables", get(sql_api::tables))
        .route("/api/dashboard/summary", get(sales::summary))
        .route("/api/dashboard/statuses", get(bulk::statuses))
        .route("/api/dashboard/revenue", get(sales::revenue))
        .route("/api/dashboard/heatmap", get(views::heatmap))
        .route("/api/dashboard/top-products", get(sales::top_products))
        .route("/api/dashboard/funnel", get(views::funnel))
        .route("/api/dashboard/fraud-queue", get(views::fraud_queue))
        .route("/api/dashboard/fraud-stats", get(fraud_api::fraud_stats))
        .route("/api/dashboard/fraud-audit", get(fraud_api::fraud_audit))
        .route("/api/dashboard/fraud-context/{order_id}", get(fraud_api::fraud_context))
        .route("/api/dashboard/low-stock", get(views::low_stock))
        .route("/api/dashboard/health", get(views::health))
        .route("/api/dashboard/ws", get(live::websocket))
        .route("/api/analytics/demand-forecast", get(forecast_api::demand_forecast))
        .route("/api/analytics/inventory", get(inventory_api::inventory))
        .route("/api/analytics/operations", get(operations_api::operations))
        .route("/api/analytics/customers/segments", get(customers_api::segments))
        .route("/api/analytics/customers/clv", get(customers_api::clv))
        .route("/api/analytics/customers/cohorts", get(customers_api::cohorts))
        .route("/api/analytics/customers/new-vs-returning", get(customers_api::new_vs_returning))
        .route("/api/recommendations", get(customers_api::recommendations))
        .route("/api/recommendations/personalized", get(customers_api::personalized))
        .merge(admin)
        .with_state(state)
        .merge(assets::routes())
}

/// Keeps the table list current until `stop`.
pub fn spawn_refresh(lake: Arc<Lake>, mut stop: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                () = tokio::time::sleep(Duration::from_secs(3)) => {}
            }
            if let Err(e) = lake.refresh().await {
                tracing::warn!(error = %e, "cannot refresh the table list");
            }
        }
    })
}
