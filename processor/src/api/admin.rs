//! Admin: fraud review, stock, the catalog with stock levels, the DLQ.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use server::http::{Path, Query};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use broker::kv_key;
use schemas::{OrderCommand, OrderStatus, ProductView, ReviewDecision, StockChange, StockEvent};
use server::http::{HttpError, json_body};

use super::orders::{command_verdict, load_view, parse_id, settled_view};
use super::{ApiState, unavailable};
use crate::commands::Verdict;
use crate::dlq::{self, DeadLetter};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    decision: ReviewDecision,
    /// Who decides (kept in the review's audit trail).
    reviewer: Option<String>,
    /// Why, in a sentence.
    note: Option<String>,
}

const MAX_REVIEWER_CHARS: usize = 100;
const MAX_NOTE_CHARS: usize = 1_000;

/// A reviewer or note as given, trimmed; empty is none; too long or
/// holding control characters is a 422 naming the field.
fn review_text(value: Option<String>, field: &str, max: usize) -> Result<Option<String>, HttpError> {
    let Some(text) = value.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) else { return Ok(None) };
    if text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(HttpError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("{field} must be at most {max} characters, without control characters"),
        )
        .with_field(field));
    }
    Ok(Some(text))
}

/// Approve (resume the saga) or reject (cancel as fraud) a flagged order.
#[utoipa::path(
    post, path = "/api/admin/orders/{id}/review", tag = "admin",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = ReviewRequest, description = "decision approve|reject, optional reviewer and note"),
    responses(
        (status = 200, description = "Decided: the order as it stands", body = schemas::OrderView),
        (status = 202, description = "Durable, the verdict on its way"),
        (status = 404, body = schemas::ApiError), (status = 409, description = "Not flagged", body = schemas::ApiError),
        (status = 422, body = schemas::ApiError),
    )
)]
pub async fn review(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let id = parse_id(&id)?;
    let request: ReviewRequest = json_body(&headers, body, state.settings.max_body_bytes).await?;
    let reviewer = review_text(request.reviewer, "reviewer", MAX_REVIEWER_CHARS)?;
    let note = review_text(request.note, "note", MAX_NOTE_CHARS)?;
    let view = load_view(&state, id).await?.ok_or_else(|| HttpError::not_found("order"))?;
    if view.accepted.status != OrderStatus::Flagged {
        return Err(HttpError::conflict(
            "not_flagged",
            format!("the order is {}; only flagged orders are reviewed", view.accepted.status),
        )
        .with_field("status"));
    }
    // An approved order may still be cancelled (its stock gone meanwhile).
    let answers: &[OrderStatus] = match request.decision {
        ReviewDecision::Approve => &[OrderStatus::Reserved, OrderStatus::Cancelled],
        ReviewDecision::Reject => &[OrderStatus::Cancelled],
    };
    let review = OrderCommand::Review { decision: request.decision, reviewer, note };
    if let Verdict::Applied(reached) = command_verdict(&state, id, review, answers).await? {
        let view = settled_view(&state, id, reached).await?.ok_or_else(|| HttpError::not_found("order"))?;
        return Ok(Json(view).into_response());
    }
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({"order_id": id, "status": "review_requested"}))).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockRequest {
    /// Make exactly this many units available…
    quantity: Option<u64>,
    /// …or add (negative: remove) this many.
    delta: Option<i64>,
    reason: Option<String>,
}

/// Sets or adjusts a product's available stock, audited as a stock event.
/// An `Idempotency-Key` makes a retried request one change.
#[utoipa::path(
    put, path = "/api/admin/products/{id}/stock", tag = "admin",
    params(("id" = String, Path, description = "product id"), ("Idempotency-Key" = Option<String>, Header)),
    request_body(content = StockRequest, description = "exactly one of quantity or delta, and a reason"),
    responses(
        (status = 200, description = "The stock event: before and after", body = schemas::StockEvent),
        (status = 202, description = "Durable, applied shortly"),
        (status = 404, body = schemas::ApiError), (status = 409, description = "Would go negative, or the key was used for another change", body = schemas::ApiError),
        (status = 422, body = schemas::ApiError),
    )
)]
pub async fn set_stock(
    State(state): State<ApiState>,
    Path(product_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let request: StockRequest = json_body(&headers, body, state.settings.max_body_bytes).await?;
    let too_many = |field: &str| {
        HttpError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("at most {} units", schemas::MAX_STOCK_UNITS),
        )
        .with_field(field)
    };
    let change = match (request.quantity, request.delta) {
        (Some(quantity), None) if quantity > schemas::MAX_STOCK_UNITS => return Err(too_many("quantity")),
        (None, Some(delta)) if delta.unsigned_abs() > schemas::MAX_STOCK_UNITS => return Err(too_many("delta")),
        (Some(quantity), None) => StockChange::Set { quantity },
        (None, Some(delta)) => StockChange::Adjust { delta },
        _ => {
            return Err(HttpError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "give exactly one of quantity or delta",
            )
            .with_field("quantity"));
        }
    };
    if state.catalog.get(kv_key(&product_id)).await.map_err(unavailable)?.is_none() {
        return Err(HttpError::not_found("product"));
    }
    let request_id = match headers.get("idempotency-key").map(|v| v.to_str()) {
        Some(Ok(key)) if schemas::validate_idempotency_key(key).is_ok() => key.to_string(),
        Some(_) => {
            return Err(HttpError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "must be 1 to 255 printable ASCII characters",
            )
            .with_field("Idempotency-Key"));
        }
        None => uuid::Uuid::now_v7().to_string(),
    };
    let subject = broker::stock_event_subject(&request_id);
    // A retried request answers with the first one's outcome, however late.
    let earlier = state.stock_events.direct_get_last_for_subject(&subject).await;
    let outcome = match earlier {
        Ok(message) => Some(serde_json::from_slice::<StockEvent>(&message.payload).map_err(unavailable)?),
        Err(e) if e.kind() == async_nats::jetstream::stream::DirectGetErrorKind::NotFound => None,
        Err(e) => return Err(unavailable(e)),
    };
    let outcome = match outcome {
        Some(event) => Some(event),
        None => {
            let mut events = state.client.subscribe(subject.clone()).await.map_err(unavailable)?;
            crate::commands::send_stock_command(
                &state.js,
                &product_id,
                change.clone(),
                &request_id,
                request.reason,
                None,
            )
            .await
            .map_err(unavailable)?;
            let wait = async {
                while let Some(message) = events.next().await {
                    if let Ok(event) = serde_json::from_slice::<StockEvent>(&message.payload) {
                        return Some(event);
                    }
                }
                None
            };
            match tokio::time::timeout(state.settings.command_timeout, wait).await.ok().flatten() {
                Some(event) => Some(event),
                // Published before we subscribed (a concurrent retry), or
                // slow: look once more before saying it is queued.
                None => state
                    .stock_events
                    .direct_get_last_for_subject(&subject)
                    .await
                    .ok()
                    .and_then(|m| serde_json::from_slice::<StockEvent>(&m.payload).ok()),
            }
        }
    };
    match outcome {
        Some(event) if event.product_id != product_id || event.change != change => Err(HttpError::conflict(
            "idempotency_key_reused",
            "this Idempotency-Key was used for another stock change; use a new key",
        )
        .with_field("Idempotency-Key")),
        Some(event) if event.rejected.is_some() => {
            Err(HttpError::conflict("stock_change_refused", event.rejected.unwrap_or_default()).with_field("delta"))
        }
        Some(event) => Ok(Json(event).into_response()),
        None => Ok((StatusCode::ACCEPTED, Json(serde_json::json!({"product_id": product_id, "status": "queued"})))
            .into_response()),
    }
}

#[derive(Deserialize)]
pub struct ProductQuery {
    category: Option<String>,
    page: Option<usize>,
    page_size: Option<usize>,
    low_stock: Option<bool>,
}

/// The catalog with live stock, by category, a page at a time (pages from 1).
/// One page of the catalog with live stock.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProductPage {
    pub products: Vec<ProductView>,
    pub page: usize,
    pub page_size: usize,
    pub total: usize,
}

#[utoipa::path(
    get, path = "/api/products", tag = "catalog",
    params(
        ("category" = Option<String>, Query), ("low_stock" = Option<bool>, Query),
        ("page" = Option<usize>, Query, description = "from 1"), ("page_size" = Option<usize>, Query, description = "1 to 500, default 50"),
    ),
    responses((status = 200, body = ProductPage), (status = 400, body = schemas::ApiError), (status = 503, body = schemas::ApiError))
)]
pub async fn products(
    State(state): State<ApiState>,
    Query(q): Query<ProductQuery>,
) -> Result<Json<ProductPage>, HttpError> {
    let page = q.page.unwrap_or(1);
    let page_size = q.page_size.unwrap_or(50);
    if page == 0 || !(1..=500).contains(&page_size) {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "page starts at 1; page_size is 1 to 500",
        )
        .with_field("page"));
    }
    let threshold = state.settings.low_stock_threshold;
    let mut views: Vec<ProductView> = crate::catalog::product_views(&state.js, threshold)
        .await
        .map_err(unavailable)?
        .into_iter()
        .filter(|p| q.category.as_ref().is_none_or(|c| &p.category == c))
        .filter(|v| q.low_stock.is_none_or(|low| v.low_stock == low))
        .collect();
    views.sort_by(|a, b| a.product_id.cmp(&b.product_id));
    let total = views.len();
    let items: Vec<ProductView> = views.into_iter().skip((page - 1) * page_size).take(page_size).collect();
    Ok(Json(ProductPage { products: items, page, page_size, total }))
}

#[derive(Deserialize)]
pub struct DlqQuery {
    limit: Option<usize>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeadLetterPage {
    /// Dead letters in the DLQ now.
    pub total: u64,
    pub dead_letters: Vec<DeadLetter>,
}

/// The newest dead letters first.
#[utoipa::path(
    get, path = "/api/admin/dlq", tag = "admin",
    params(("limit" = Option<usize>, Query, description = "1 to 500, default 50")),
    responses((status = 200, body = DeadLetterPage), (status = 503, body = schemas::ApiError))
)]
pub async fn list_dlq(
    State(state): State<ApiState>,
    Query(q): Query<DlqQuery>,
) -> Result<Json<DeadLetterPage>, HttpError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let (count, messages) = newest_messages(&state, broker::DLQ_STREAM, limit).await?;
    let letters: Vec<DeadLetter> = messages.iter().map(dead_letter).collect();
    state.metrics.dlq_messages.set(count as i64);
    Ok(Json(DeadLetterPage { total: count, dead_letters: letters }))
}

/// The newest `limit` messages of `stream`, newest first, and how many it
/// holds (removed messages are skipped).
async fn newest_messages(
    state: &ApiState,
    stream: &str,
    limit: usize,
) -> Result<(u64, Vec<async_nats::jetstream::message::StreamMessage>), HttpError> {
    let mut stream = state.js.get_stream(stream).await.map_err(unavailable)?;
    let info = stream.info().await.map_err(unavailable)?;
    let (first, last, count) = (info.state.first_sequence, info.state.last_sequence, info.state.messages);
    let mut messages = Vec::new();
    let mut seq = last;
    while count > 0 && seq >= first && seq > 0 && messages.len() < limit {
        match stream.direct_get(seq).await {
            Ok(message) => messages.push(message),
            Err(e) if e.kind() == async_nats::jetstream::stream::DirectGetErrorKind::NotFound => {}
            Err(e) => return Err(unavailable(e)),
        }
        seq -= 1;
    }
    Ok((count, messages))
}

fn dead_letter(message: &async_nats::jetstream::message::StreamMessage) -> DeadLetter {
    let header = |name: &str| message.headers.get(name).map(|v| v.to_string()).unwrap_or_default();
    DeadLetter {
        seq: message.sequence,
        source: broker::dlq_source(message.subject.as_str()).to_string(),
        original_subject: header(dlq::SUBJECT),
        original_seq: header(dlq::SOURCE_SEQ).parse().ok(),
        reason: header(dlq::REASON),
        dead_lettered_at: message.time,
        payload: String::from_utf8_lossy(&message.payload).into_owned(),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeadLetterRetried {
    /// The dead letter's sequence in the DLQ (now deleted there).
    pub retried: u64,
    pub subject: String,
    /// Its sequence on the original subject's stream.
    pub new_seq: u64,
}

/// Puts a dead letter back on its original subject and removes it from the DLQ.
#[utoipa::path(
    post, path = "/api/admin/dlq/{seq}/retry", tag = "admin",
    params(("seq" = u64, Path)),
    responses(
        (status = 200, body = DeadLetterRetried), (status = 400, body = schemas::ApiError),
        (status = 404, body = schemas::ApiError), (status = 409, description = "Not retryable", body = schemas::ApiError),
    )
)]
pub async fn retry_dlq(
    State(state): State<ApiState>,
    Path(seq): Path<String>,
) -> Result<Json<DeadLetterRetried>, HttpError> {
    let seq: u64 = seq.parse().ok().filter(|seq| *seq > 0).ok_or_else(|| {
        HttpError::new(StatusCode::BAD_REQUEST, "invalid_id", "seq is a dead letter's sequence: 1 or more")
            .with_field("seq")
    })?;
    let message = match state.dlq.direct_get(seq).await {
        Ok(message) => message,
        Err(e) if e.kind() == async_nats::jetstream::stream::DirectGetErrorKind::NotFound => {
            return Err(HttpError::not_found("dead letter"));
        }
        Err(e) => return Err(unavailable(e)),
    };
    let letter = dead_letter(&message);
    if letter.original_subject.is_empty() {
        return Err(HttpError::conflict("not_retryable", "the dead letter does not say where it came from"));
    }
    let publish = async_nats::jetstream::message::PublishMessage::build()
        .payload(message.payload.clone())
        .message_id(format!("retry:{seq}"));
    let ack = state
        .js
        .send_publish(letter.original_subject.clone(), publish)
        .await
        .map_err(unavailable)?
        .await
        .map_err(unavailable)?;
    let stream = state.js.get_stream(broker::DLQ_STREAM).await.map_err(unavailable)?;
    stream.delete_message(seq).await.map_err(unavailable)?;
    Ok(Json(DeadLetterRetried { retried: seq, subject: letter.original_subject, new_seq: ack.sequence }))
}

#[derive(serde::Deserialize)]
pub struct AuditQuery {
    limit: Option<usize>,
}

/// `GET /api/admin/audit?limit=`: the newest admin actions first (who,
/// what, the answer), from `ADMIN_AUDIT`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub total: u64,
    pub actions: Vec<schemas::audit::AdminAction>,
}

#[utoipa::path(
    get, path = "/api/admin/audit", tag = "admin",
    params(("limit" = Option<usize>, Query, description = "1 to 500, default 100")),
    responses((status = 200, body = AuditPage), (status = 400, body = schemas::ApiError))
)]
pub async fn audit_log(
    State(state): State<ApiState>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, HttpError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(
            HttpError::new(StatusCode::BAD_REQUEST, "invalid_parameter", "limit must be 1 to 500").with_field("limit")
        );
    }
    let (count, messages) = newest_messages(&state, broker::ADMIN_AUDIT_STREAM, limit).await?;
    let actions: Vec<schemas::audit::AdminAction> =
        messages.iter().filter_map(|message| serde_json::from_slice(&message.payload).ok()).collect();
    Ok(Json(AuditPage { total: count, actions }))
}
