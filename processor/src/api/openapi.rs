//! The processor's routes in the OpenAPI document (`GET /api/openapi.json`
//! merges it with ingest's and the dashboard's).

use utoipa::OpenApi;

use super::{admin, live, orders, track};

#[derive(OpenApi)]
#[openapi(
    paths(
        orders::list, orders::get, orders::timeline, orders::cancel, live::sse, live::websocket,
        track::track, track::track_stream, admin::products, admin::review, admin::set_stock,
        admin::list_dlq, admin::retry_dlq, admin::audit_log,
    ),
    components(schemas(
        orders::OrderPage, orders::TimelineEntry, admin::ProductPage, admin::DeadLetterPage, admin::DeadLetterRetried,
        admin::AuditPage, admin::ReviewRequest, admin::StockRequest, schemas::ProductView, schemas::StockEvent,
        schemas::StockChange, schemas::StockLevel, schemas::ReviewDecision, schemas::audit::AdminAction,
        crate::dlq::DeadLetter,
    )),
    tags((name = "orders"), (name = "tracking"), (name = "catalog"), (name = "admin"))
)]
pub struct ProcessorApi;
