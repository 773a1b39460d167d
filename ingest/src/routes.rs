//! The producer-facing HTTP routes.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use server::http::Path;
use uuid::Uuid;

use schemas::{
    ApiError, BatchItemResult, BatchRequest, BatchResponse, CreateOrderRequest, OrderAccepted, OrderView, decode_json,
    validate_idempotency_key,
};

use access::Caller;

use crate::IngestConfig;
use crate::error::{HttpError, from_intake};
use crate::intake::{Accepted, Intake};
use crate::metrics::Metrics;
use server::http::read_json_body;

#[derive(Clone)]
pub struct AppState {
    /// Signs the tracking link each accepted order's answer carries.
    pub tracking: Option<access::TrackingLinks>,
    /// Counts orders per customer when `customer_rate_limit` is set.
    pub limiter: Option<access::RateLimiter>,
    pub intake: Arc<Intake>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<IngestConfig>,
    /// The process's long-running parts (in `up`: the engine and the
    /// analytics job too); `/readyz` is not ready while one is failing.
    pub health: server::Health,
}

const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Orders of one batch published at once.
const BATCH_IN_FLIGHT: usize = 64;
const REPLAYED: &str = "idempotent-replayed";

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, HttpError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else { return Ok(None) };
    let key = value.to_str().map_err(|_| {
        HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "must be printable ASCII")
            .with_field("Idempotency-Key")
    })?;
    validate_idempotency_key(key).map_err(HttpError::invalid)?;
    Ok(Some(key.to_string()))
}

/// The customer's limit: `Some` refused verdict when over it.
async fn over_customer_limit(state: &AppState, customer_id: &str) -> Option<access::Verdict> {
    let (Some(limiter), Some(limit)) = (&state.limiter, state.config.customer_rate_limit) else { return None };
    let checked = limiter.check(&format!("customer:{customer_id}"), limit, chrono::Utc::now()).await;
    Some(access::allowed_on_error(checked, limit)).filter(|verdict| !verdict.allowed)
}

/// Adds the customer's tracking link to an accepted order's answer.
fn with_tracking(mut accepted: Accepted, tracking: Option<&access::TrackingLinks>) -> Accepted {
    if let Some(links) = tracking {
        let (token, expires_at) = links.issue(accepted.response.order_id, chrono::Utc::now());
        accepted.response.tracking_url = Some(access::TrackingLinks::path(&token));
        accepted.response.tracking_expires_at = Some(expires_at);
    }
    accepted
}

fn accepted_response(accepted: Accepted) -> Response {
    let status = if accepted.replayed { StatusCode::OK } else { StatusCode::ACCEPTED };
    let location = format!("/api/orders/{}", accepted.response.order_id);
    let mut response = (status, Json(accepted.response)).into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, location);
    }
    if accepted.replayed {
        headers.insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// Submit an order. `202` once JetStream has stored it.
#[utoipa::path(
    post, path = "/api/orders", tag = "orders",
    request_body = CreateOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 printable ASCII characters; the same key returns the same order for 24 h")),
    responses(
        (status = 202, description = "Stored in JetStream", body = OrderAccepted),
        (status = 200, description = "Replay of an earlier request with this Idempotency-Key (header Idempotent-Replayed: true)", body = OrderAccepted),
        (status = 400, description = "Malformed JSON", body = ApiError),
        (status = 409, description = "Idempotency-Key reused with a different body", body = ApiError),
        (status = 413, description = "Body too large", body = ApiError),
        (status = 415, description = "Not application/json", body = ApiError),
        (status = 401, description = "No API key, or not a valid one (once keys exist)", body = ApiError),
        (status = 403, description = "The key's role may not submit orders", body = ApiError),
        (status = 422, description = "Validation failed; `field` names the culprit", body = ApiError),
        (status = 429, description = "Over the customer's or the key's rate limit; retry after Retry-After seconds (RateLimit-* headers)", body = ApiError),
        (status = 503, description = "Not stored (JetStream unavailable or refusing); retry after Retry-After seconds", body = ApiError),
        (status = 504, description = "Sent, but JetStream did not confirm it in time: it may be stored. `order_id` in the body; GET /api/orders/{order_id} resolves it, and a retry with the same Idempotency-Key returns this order", body = ApiError),
    )
)]
pub async fn post_order(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let bytes = read_json_body(&headers, body, state.config.max_body_bytes).await?;
    let header_key = idempotency_key(&headers)?;
    let req: CreateOrderRequest = decode_json(&bytes)?;
    let key = match (header_key, req.idempotency_key.clone()) {
        (Some(h), Some(b)) if h != b => {
            return Err(HttpError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "differs from the Idempotency-Key header",
            )
            .with_field("idempotency_key"));
        }
        (h, b) => h.or(b),
    };
    if let Some(refused) = over_customer_limit(&state, &req.customer_id).await {
        return Ok(refused.refusal(&format!("customer {:?}", req.customer_id), "customer_id"));
    }
    let accepted = state
        .intake
        .accept(&req, key.as_deref(), caller.key_id(), &state.metrics)
        .await
        .map_err(|e| from_intake(e, state.config.retry_after_secs))?;
    Ok(accepted_response(with_tracking(accepted, state.tracking.as_ref())))
}

/// Submit up to `max_batch` orders; each gets its own result.
#[utoipa::path(
    post, path = "/api/orders/batch", tag = "orders",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "One result per order, in order: status 202/200 with the order, or an error (503: not stored; 504: may be stored, with its order_id)", body = BatchResponse),
        (status = 400, description = "Malformed JSON", body = ApiError),
        (status = 422, description = "Not a batch, or too many orders", body = ApiError),
    )
)]
pub async fn post_batch(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let limit = state.config.max_body_bytes.saturating_mul(state.config.max_batch.min(64));
    let bytes = read_json_body(&headers, body, limit).await?;
    let batch: BatchRequest = decode_json(&bytes)?;
    if batch.orders.is_empty() || batch.orders.len() > state.config.max_batch {
        return Err(HttpError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("must contain 1 to {} orders", state.config.max_batch),
        )
        .with_field("orders"));
    }
    let retry_after = state.config.retry_after_secs;
    // A bounded number of orders in flight at once: each waits for its
    // acknowledgement only from when it is sent, so a large batch cannot
    // time its own tail out queueing behind its head.
    let orders: Vec<(usize, Box<serde_json::value::RawValue>)> = batch.orders.into_iter().enumerate().collect();
    let results: Vec<BatchItemResult> = futures::stream::iter(orders)
        .map(|(index, raw)| accept_one(state.clone(), caller.key_id(), index, raw, retry_after))
        .buffered(BATCH_IN_FLIGHT)
        .collect()
        .await;
    let accepted = results.iter().filter(|r| r.order.is_some()).count();
    let rejected = results.len() - accepted;
    Ok(Json(BatchResponse { accepted, rejected, results }).into_response())
}

/// One order of a batch, with its index in the batch.
async fn accept_one(
    state: AppState,
    producer: Option<&str>,
    index: usize,
    raw: Box<serde_json::value::RawValue>,
    retry_after: u32,
) -> BatchItemResult {
    let outcome = match decode_json::<CreateOrderRequest>(raw.get().as_bytes()) {
        Err(e) => Err(HttpError::from(e)),
        Ok(req) if let Some(refused) = over_customer_limit(&state, &req.customer_id).await => {
            Err(refused.error(&format!("customer {:?}", req.customer_id), "customer_id"))
        }
        Ok(req) => state
            .intake
            .accept(&req, req.idempotency_key.as_deref(), producer, &state.metrics)
            .await
            .map(|accepted| with_tracking(accepted, state.tracking.as_ref()))
            .map_err(|e| from_intake(e, retry_after)),
    };
    match outcome {
        Ok(accepted) => {
            let status = if accepted.replayed { 200 } else { 202 };
            BatchItemResult { index, status, order: Some(accepted.response), error: None }
        }
        Err(mut e) => {
            if let Some(field) = e.body.field.take() {
                e.body.field = Some(format!("orders[{index}].{field}"));
            }
            BatchItemResult { index, status: e.status.as_u16(), order: None, error: Some(e.body) }
        }
    }
}

/// The order as accepted.
#[utoipa::path(
    get, path = "/api/orders/{id}", tag = "orders",
    params(("id" = Uuid, Path, description = "order id")),
    responses(
        (status = 200, body = OrderView),
        (status = 400, description = "Not a UUID", body = ApiError),
        (status = 404, body = ApiError),
        (status = 503, body = ApiError),
    )
)]
pub async fn get_order(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, HttpError> {
    let order_id = Uuid::parse_str(&id)
        .map_err(|_| HttpError::new(StatusCode::BAD_REQUEST, "invalid_id", "order ids are UUIDs").with_field("id"))?;
    match state.intake.find(order_id).await {
        // Another producer's order is not found, not forbidden: its existence is not theirs to learn.
        Ok(Some((order, _))) if !caller.may_touch_order(order.producer.as_deref()) => {
            Err(HttpError::not_found("order"))
        }
        Ok(Some((order, seq))) => Ok(Json(OrderView::new(&order, seq))),
        Ok(None) => Err(HttpError::not_found("order")),
        Err(e) => Err(from_intake(e, state.config.retry_after_secs)),
    }
}
