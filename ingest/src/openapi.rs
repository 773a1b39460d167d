use utoipa::OpenApi;

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "orderstream", description = "Order ingest API: durable, idempotent order intake on NATS JetStream"),
    paths(routes::post_order, routes::post_batch, routes::get_order, server::probes::healthz, server::probes::readyz, server::probes::metrics_text),
    components(schemas(
        schemas::CreateOrderRequest, schemas::OrderItemRequest, schemas::OrderAccepted, schemas::OrderView,
        schemas::OrderItemView, schemas::ApiError, schemas::BatchResponse, schemas::BatchItemResult,
        schemas::Address, schemas::PaymentMethod, schemas::OrderStatus, schemas::Currency,
    )),
    tags((name = "orders"), (name = "operations"))
)]
pub struct ApiDoc;

pub async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
