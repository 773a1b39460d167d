//! Live updates: every status event pushed as it is published, over a
//! WebSocket (all orders, one order, or one customer's) or SSE (one order).

use std::convert::Infallible;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use server::http::WebSocketUpgrade;
use server::http::{Path, Query};

use broker::order_event_subject;
use schemas::OrderEvent;
use server::http::HttpError;

use super::orders::parse_id;
use super::{ApiState, unavailable};

#[derive(Deserialize)]
pub struct LiveQuery {
    order_id: Option<String>,
    customer_id: Option<String>,
}

/// `GET /api/ws/orders[?order_id=…|customer_id=…]`: status events as JSON text frames.
#[utoipa::path(
    get, path = "/api/ws/orders", tag = "orders",
    params(("order_id" = Option<uuid::Uuid>, Query), ("customer_id" = Option<String>, Query)),
    responses((status = 101, description = "WebSocket: each order event as a JSON text frame"), (status = 400, body = schemas::ApiError))
)]
pub async fn websocket(
    State(state): State<ApiState>,
    Query(q): Query<LiveQuery>,
    WebSocketUpgrade(upgrade): WebSocketUpgrade,
) -> Result<Response, HttpError> {
    let subject = match &q.order_id {
        Some(id) => order_event_subject(parse_id(id).map_err(|e| e.with_field("order_id"))?, "*"),
        None => broker::ORDER_EVENTS_SUBJECTS.to_string(),
    };
    let subscription = state.client.subscribe(subject).await.map_err(unavailable)?;
    let customer = q.customer_id;
    Ok(upgrade.on_upgrade(move |socket| forward(socket, subscription, customer)).into_response())
}

async fn forward(mut socket: WebSocket, mut events: async_nats::Subscriber, customer: Option<String>) {
    loop {
        tokio::select! {
            event = events.next() => {
                let Some(message) = event else { break };
                if let Some(customer) = &customer {
                    let matches = serde_json::from_slice::<OrderEvent>(&message.payload)
                        .is_ok_and(|e| e.customer_id.as_deref() == Some(customer.as_str()));
                    if !matches {
                        continue;
                    }
                }
                let text = String::from_utf8_lossy(&message.payload).into_owned();
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => {
                // The client hung up (or sent close): stop forwarding.
                if !matches!(incoming, Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Text(_) | Message::Binary(_)))) {
                    break;
                }
            }
        }
    }
    let _ = events.unsubscribe().await;
}

/// `GET /api/orders/{id}/stream`: the order's status events as server-sent events.
#[utoipa::path(
    get, path = "/api/orders/{id}/stream", tag = "orders",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "Server-sent events, one per order event, named by kind", content_type = "text/event-stream"),
        (status = 404, body = schemas::ApiError))
)]
pub async fn sse(
    State(state): State<ApiState>,
    caller: access::Caller,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, HttpError> {
    let id = parse_id(&id)?;
    // Subscribed before the check, so an event between the two is not lost.
    let subscription = state.client.subscribe(order_event_subject(id, "*")).await.map_err(unavailable)?;
    super::orders::owned_order(&state, &caller, id).await?;
    let stream = subscription.map(|message| {
        let kind = message.subject.as_str().rsplit('.').next().unwrap_or("event").to_string();
        Ok(Event::default().event(kind).data(String::from_utf8_lossy(&message.payload)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
