//! Tracking links: one order's status and timeline for whoever holds the
//! signed link ingest issued with its 202 (the customer), without a key,
//! until it expires; and its updates as server-sent events. What it shows
//! is the customer's own view: no client address, no fraud score.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use schemas::{OrderEvent, OrderView};
use server::http::{HttpError, Path};
use uuid::Uuid;

use broker::order_event_subject;

use super::{ApiState, unavailable};

/// The order a token names, or why not: 404 for a token that is not ours,
/// 410 for one that expired.
fn verified(state: &ApiState, token: &str) -> Result<Uuid, HttpError> {
    let Some(links) = &state.tracking else {
        return Err(HttpError::not_found("tracking link"));
    };
    match links.verify(token, chrono::Utc::now()) {
        Ok(token) => Ok(token.order_id),
        Err(access::TrackingError::Invalid) => Err(HttpError::not_found("tracking link")),
        Err(e @ access::TrackingError::Expired(_)) => {
            Err(HttpError::new(StatusCode::GONE, "link_expired", e.to_string()).with_field("token"))
        }
    }
}

/// What the customer sees: status, items, totals, the timeline.
fn customer_view(mut view: OrderView) -> OrderView {
    view.client_ip = None;
    view.shipping_address = None;
    view.risk_score = None;
    view.risk_reasons.clear();
    view.risk_model = None;
    view.position_in_line = view.position_in_line.filter(|_| view.history.is_empty());
    view
}

/// `GET /api/track/{token}`.
#[utoipa::path(
    get, path = "/api/track/{token}", tag = "tracking",
    params(("token" = String, Path, description = "the token of an order's tracking_url")),
    responses((status = 200, description = "The order without addresses, IPs or risk", body = OrderView),
        (status = 404, body = schemas::ApiError), (status = 410, description = "The link expired", body = schemas::ApiError))
)]
pub async fn track(State(state): State<ApiState>, Path(token): Path<String>) -> Result<Json<OrderView>, HttpError> {
    let id = verified(&state, &token)?;
    let view = super::orders::load_view(&state, id).await?.ok_or_else(|| HttpError::not_found("order"))?;
    Ok(Json(customer_view(view)))
}

/// `GET /api/track/{token}/stream`: `{status, at}` per status change.
#[utoipa::path(
    get, path = "/api/track/{token}/stream", tag = "tracking",
    params(("token" = String, Path)),
    responses((status = 200, description = "Server-sent events `status` with `{status, at}`", content_type = "text/event-stream"),
        (status = 404, body = schemas::ApiError), (status = 410, body = schemas::ApiError))
)]
pub async fn track_stream(
    State(state): State<ApiState>,
    Path(token): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, HttpError> {
    let id = verified(&state, &token)?;
    let subscription = state.client.subscribe(order_event_subject(id, "*")).await.map_err(unavailable)?;
    if super::orders::load_accepted(&state, id).await?.is_none() {
        return Err(HttpError::not_found("order"));
    }
    let stream = subscription.filter_map(|message| async move {
        let event: OrderEvent = serde_json::from_slice(&message.payload).ok()?;
        let status = event.new_status()?;
        let data = serde_json::json!({"status": status, "at": event.occurred_at});
        Some(Ok(Event::default().event("status").data(data.to_string())))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
