//! Reading orders (live view, timeline, a customer's list) and cancelling.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use server::http::{Path, Query};
use uuid::Uuid;

use broker::{ORDER_VIEW_BUCKET, kv_key, order_event_subject, order_view_key};
use schemas::{CancelReason, Order, OrderCommand, OrderEvent, OrderState, OrderStatus, OrderView};
use server::http::HttpError;

use access::Caller;

use super::{ApiState, unavailable};
use crate::commands::{Verdict, send_and_await};
use crate::runner::LEASE_KEY;
use schemas::records::LeaseValue;

pub(crate) fn parse_id(id: &str) -> Result<Uuid, HttpError> {
    Uuid::parse_str(id).map_err(|_| HttpError::bad_id("id"))
}

/// The order as accepted, and its ORDERS sequence.
pub(crate) async fn load_accepted(state: &ApiState, id: Uuid) -> Result<Option<(Order, u64)>, HttpError> {
    broker::accepted_order(&state.orders, id).await.map_err(unavailable)
}

/// The live view; an order the engine has not reached yet is shown as
/// accepted, with its place in line.
pub(crate) async fn load_view(state: &ApiState, id: Uuid) -> Result<Option<OrderView>, HttpError> {
    let Some((order, seq)) = load_accepted(state, id).await? else { return Ok(None) };
    Ok(Some(view_of(state, &order, seq).await?))
}

/// [`load_view`] of an order already read from ORDERS.
async fn view_of(state: &ApiState, order: &Order, seq: u64) -> Result<OrderView, HttpError> {
    if let Some(bytes) =
        state.views.get(order_view_key(&order.customer_id, order.order_id)).await.map_err(unavailable)?
    {
        let live: OrderState = serde_json::from_slice(&bytes).map_err(unavailable)?;
        return Ok(OrderView::from_state(&live));
    }
    let mut view = OrderView::new(order, seq);
    let position = match state.lease.get(LEASE_KEY).await {
        Ok(Some(bytes)) => serde_json::from_slice::<LeaseValue>(&bytes).map(|l| l.position).unwrap_or(0),
        _ => 0,
    };
    view.position_in_line = Some(seq.saturating_sub(position).max(1));
    Ok(view)
}

/// The order as accepted, if `caller` may see it: 404 when it does not
/// exist or, for a producer, is another's (not found rather than
/// forbidden, so ids cannot be probed). One read serves both checks.
pub(crate) async fn owned_order(state: &ApiState, caller: &Caller, id: Uuid) -> Result<(Order, u64), HttpError> {
    match load_accepted(state, id).await? {
        Some((order, seq)) if caller.may_touch_order(order.producer.as_deref()) => Ok((order, seq)),
        _ => Err(HttpError::not_found("order")),
    }
}

#[utoipa::path(
    get, path = "/api/orders/{id}", tag = "orders",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "The order as the processor sees it now", body = OrderView),
        (status = 400, body = schemas::ApiError), (status = 404, description = "Unknown, or another producer's", body = schemas::ApiError))
)]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, HttpError> {
    let id = parse_id(&id)?;
    let (order, seq) = owned_order(&state, &caller, id).await?;
    Ok(Json(view_of(&state, &order, seq).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    /// The stream the entry comes from: `ORDERS` (accepted) or `ORDER_EVENTS`.
    pub stream: &'static str,
    pub seq: u64,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub event: OrderEvent,
}

/// Every step of the order in the order it happened: its acceptance
/// (pending, from ORDERS), then the processor's events.
#[utoipa::path(
    get, path = "/api/orders/{id}/events", tag = "orders",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<TimelineEntry>), (status = 404, body = schemas::ApiError))
)]
pub async fn timeline(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<TimelineEntry>>, HttpError> {
    let id = parse_id(&id)?;
    let (order, order_seq) = owned_order(&state, &caller, id).await?;
    let suffixes = OrderEvent::subject_suffixes();
    let lookups =
        suffixes.iter().map(|suffix| state.events.direct_get_last_for_subject(order_event_subject(id, suffix)));
    let mut entries = Vec::new();
    for found in futures::future::join_all(lookups).await {
        match found {
            Ok(message) => {
                let event: OrderEvent = serde_json::from_slice(&message.payload).map_err(unavailable)?;
                entries.push(TimelineEntry { stream: broker::ORDER_EVENTS_STREAM, seq: message.sequence, event });
            }
            Err(e) if e.kind() == async_nats::jetstream::stream::DirectGetErrorKind::NotFound => {}
            Err(e) => return Err(unavailable(e)),
        }
    }
    entries.sort_by_key(|e| e.seq);
    let accepted = OrderEvent::status_changed(id, None, OrderStatus::Pending, None, order.received_at)
        .map_err(unavailable)?
        .for_order(&order);
    entries.insert(0, TimelineEntry { stream: broker::ORDERS_STREAM, seq: order_seq, event: accepted });
    Ok(Json(entries))
}

#[derive(Deserialize)]
pub struct ListQuery {
    customer_id: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OrderPage {
    orders: Vec<OrderView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// A customer's processed orders, newest first (order ids are UUIDv7:
/// time-ordered), optionally by status; keyset pagination by order id.
#[utoipa::path(
    get, path = "/api/orders", tag = "orders",
    params(("customer_id" = String, Query), ("status" = Option<String>, Query), ("limit" = Option<usize>, Query, description = "1 to 100, default 20"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = OrderPage), (status = 400, body = schemas::ApiError))
)]
pub async fn list(State(state): State<ApiState>, Query(q): Query<ListQuery>) -> Result<Json<OrderPage>, HttpError> {
    let customer = q.customer_id.filter(|c| !c.is_empty()).ok_or_else(|| {
        HttpError::new(StatusCode::BAD_REQUEST, "missing_parameter", "customer_id is required")
            .with_field("customer_id")
    })?;
    let status = q
        .status
        .map(|s| s.parse::<OrderStatus>())
        .transpose()
        .map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, "invalid_parameter", e).with_field("status"))?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(
            HttpError::new(StatusCode::BAD_REQUEST, "invalid_parameter", "limit must be 1 to 100").with_field("limit")
        );
    }
    let cursor = q.cursor.map(|c| parse_id(&c).map_err(|e| e.with_field("cursor"))).transpose()?;
    // One scan of the customer's views (keys `{customer}.{order_id}`).
    let entries = crate::kvscan::latest(&state.js, ORDER_VIEW_BUCKET, &format!("{}.*", kv_key(&customer)))
        .await
        .map_err(unavailable)?;
    let mut views: Vec<OrderState> = entries.iter().filter_map(|(_, v)| serde_json::from_slice(v).ok()).collect();
    views.sort_unstable_by_key(|v| std::cmp::Reverse(v.order.order_id));
    let mut matching = views
        .iter()
        .filter(|v| cursor.is_none_or(|c| v.order.order_id < c))
        .filter(|v| status.is_none_or(|s| v.status == s))
        .peekable();
    let orders: Vec<OrderView> = matching.by_ref().take(limit).map(OrderView::from_state).collect();
    let next_cursor = match matching.peek() {
        Some(_) => orders.last().map(|o| o.accepted.order_id.to_string()),
        None => None,
    };
    Ok(Json(OrderPage { orders, next_cursor }))
}

/// Sends a command and waits (bounded) for the engine's verdict on it
/// ([`crate::commands::send_and_await`]); a refusal is a 409 naming the
/// order's status.
pub(crate) async fn command_verdict(
    state: &ApiState,
    id: Uuid,
    command: OrderCommand,
    answers: &[OrderStatus],
) -> Result<Verdict, HttpError> {
    let verdict = send_and_await(&state.client, &state.js, id, &[command], answers, state.settings.command_timeout)
        .await
        .map_err(unavailable)?;
    if let Verdict::Rejected { status, message } = &verdict {
        return Err(
            HttpError::conflict("not_allowed", format!("the order is {status}: {message}")).with_field("status")
        );
    }
    Ok(verdict)
}

/// Reads the view again until it reflects the verdict (views follow events).
pub(crate) async fn settled_view(
    state: &ApiState,
    id: Uuid,
    status: OrderStatus,
) -> Result<Option<OrderView>, HttpError> {
    for _ in 0..50 {
        if let Some(view) = load_view(state, id).await?
            && view.accepted.status == status
        {
            return Ok(Some(view));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    load_view(state, id).await
}

/// Cancel before shipping: stock released once, a refund if paid. 409 once shipped.
#[utoipa::path(
    post, path = "/api/orders/{id}/cancel", tag = "orders",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "Cancelled: the order as it stands", body = OrderView), (status = 202, description = "Durable, the verdict on its way"),
        (status = 404, body = schemas::ApiError), (status = 409, description = "Already shipped or finished", body = schemas::ApiError))
)]
pub async fn cancel(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    let id = parse_id(&id)?;
    let (order, seq) = owned_order(&state, &caller, id).await?;
    let view = view_of(&state, &order, seq).await?;
    let status = view.accepted.status;
    if status.is_terminal() || status == OrderStatus::Shipped {
        return Err(HttpError::conflict(
            "not_allowed",
            format!("the order is {status}; only orders not yet shipped can be cancelled"),
        )
        .with_field("status"));
    }
    let cancel = OrderCommand::Cancel { reason: CancelReason::CustomerCancelled };
    if let Verdict::Applied(_) = command_verdict(&state, id, cancel, &[OrderStatus::Cancelled]).await? {
        let view =
            settled_view(&state, id, OrderStatus::Cancelled).await?.ok_or_else(|| HttpError::not_found("order"))?;
        return Ok(Json(view).into_response());
    }
    // Durable in the log and applied in order; the verdict is on its way.
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({"order_id": id, "status": "cancel_requested"}))).into_response())
}
