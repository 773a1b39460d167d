//! What is happening now, from NATS: orders/s (every `orders.submitted.*`
//! JetStream stores), status events/s, the time from an order's receipt to
//! its confirmation (p50/p95/p99 over the last minute; the receipt time is
//! the UUIDv7 order id's own timestamp), and the newest orders. Once a
//! second the sampler publishes a snapshot that requests read and every
//! WebSocket client is sent; `consumer_lag` reads each
//! durable consumer's backlog from JetStream.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket};
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use server::http::WebSocketUpgrade;
use tokio::sync::watch;

use crate::{Dashboard, DashboardError};

/// Seconds of per-second counts kept (the charts' span).
const HISTORY_SECS: usize = 120;
const RECENT_ORDERS: usize = 20;

/// The counters, owned by the sampling task alone: a message costs a count
/// (and, for the newest orders, keeping its bytes), never a lock or a
/// decode; only confirmations are decoded, for their latency.
#[derive(Default)]
struct Sampler {
    orders_this_second: u64,
    events_this_second: u64,
    /// (unix second, orders, events), oldest first.
    history: VecDeque<(i64, u64, u64)>,
    /// The newest submitted orders as published, newest first.
    recent: VecDeque<Bytes>,
    /// Receipt → confirmed latencies of the current and previous minute.
    latency: Option<Histogram<u64>>,
    latency_prev: Option<Histogram<u64>>,
    latency_minute: i64,
}

/// The latest snapshot, published once a second by the sampler.
pub struct Live {
    latest: watch::Sender<Value>,
}

fn histogram() -> Option<Histogram<u64>> {
    Histogram::new_with_bounds(1, 3_600_000, 2).ok()
}

/// The millisecond timestamp a UUIDv7 carries.
fn uuid_millis(id: &uuid::Uuid) -> Option<i64> {
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    Some(secs as i64 * 1000 + i64::from(nanos / 1_000_000))
}

impl Live {
    pub fn new() -> Arc<Live> {
        let (latest, _) = watch::channel(Sampler::default().snapshot());
        Arc::new(Live { latest })
    }

    /// Subscribes to submissions and status events, and publishes a
    /// snapshot every second, until `stop`.
    pub async fn start(
        client: async_nats::Client,
        mut stop: watch::Receiver<bool>,
    ) -> Result<Arc<Live>, DashboardError> {
        let live = Live::new();
        let mut orders = client.subscribe(broker::ORDERS_SUBMITTED_WILDCARD).await.map_err(DashboardError::nats)?;
        let mut events = client.subscribe(broker::ORDER_EVENTS_SUBJECTS).await.map_err(DashboardError::nats)?;
        let me = live.clone();
        tokio::spawn(async move {
            let mut sampler = Sampler::default();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    Some(message) = orders.next() => sampler.on_order(message.payload),
                    Some(message) = events.next() => sampler.on_event(message.subject.as_str(), &message.payload),
                    _ = tick.tick() => {
                        sampler.tick(Utc::now());
                        let mut snapshot = sampler.snapshot();
                        let connected = client.connection_state() == async_nats::connection::State::Connected;
                        // Without NATS the figures are not zero but unknown.
                        snapshot["nats"] = json!(if connected { "connected" } else { "unavailable" });
                        me.latest.send_replace(snapshot);
                    }
                }
            }
        });
        Ok(live)
    }

    /// Rates, latency percentiles, the per-second history and the newest orders.
    pub fn snapshot(&self) -> Value {
        self.latest.borrow().clone()
    }
}

impl Sampler {
    fn on_order(&mut self, payload: Bytes) {
        self.orders_this_second += 1;
        self.recent.push_front(payload);
        self.recent.truncate(RECENT_ORDERS);
    }

    fn on_event(&mut self, subject: &str, payload: &[u8]) {
        self.events_this_second += 1;
        if !subject.ends_with(".confirmed") {
            return;
        }
        let Ok(event) = serde_json::from_slice::<schemas::OrderEvent>(payload) else { return };
        if let Some(received) = uuid_millis(&event.order_id) {
            let latency = (event.occurred_at.timestamp_millis() - received).max(1) as u64;
            if self.latency.is_none() {
                self.latency = histogram();
            }
            if let Some(h) = self.latency.as_mut() {
                let _ = h.record(latency.min(3_600_000));
            }
        }
    }

    fn tick(&mut self, now: DateTime<Utc>) {
        let second = now.timestamp();
        self.history.push_back((second, self.orders_this_second, self.events_this_second));
        self.orders_this_second = 0;
        self.events_this_second = 0;
        while self.history.len() > HISTORY_SECS {
            self.history.pop_front();
        }
        let minute = second / 60;
        if minute != self.latency_minute {
            self.latency_prev = self.latency.take();
            self.latency_minute = minute;
        }
    }

    fn snapshot(&self) -> Value {
        let (orders_per_s, events_per_s) = {
            let window: Vec<_> = self.history.iter().rev().take(5).collect();
            let secs = window.len().max(1) as f64;
            (
                window.iter().map(|(_, o, _)| *o).sum::<u64>() as f64 / secs,
                window.iter().map(|(_, _, e)| *e).sum::<u64>() as f64 / secs,
            )
        };
        let mut merged = histogram();
        for h in [&self.latency, &self.latency_prev].into_iter().flatten() {
            if let Some(m) = merged.as_mut() {
                let _ = m.add(h);
            }
        }
        let latency = merged.filter(|h| !h.is_empty()).map(|h| {
            json!({"p50_ms": h.value_at_quantile(0.5), "p95_ms": h.value_at_quantile(0.95),
                   "p99_ms": h.value_at_quantile(0.99), "count": h.len()})
        });
        let recent: Vec<Value> = self
            .recent
            .iter()
            .filter_map(|payload| serde_json::from_slice::<schemas::Order>(payload).ok())
            .map(|order| {
                json!({
                    "order_id": order.order_id,
                    "customer_id": order.customer_id,
                    "total": schemas::money::format_decimal(order.total, order.currency.exponent()),
                    "currency": order.currency.code(),
                    "items": order.items.len(),
                    "received_at": order.received_at,
                })
            })
            .collect();
        json!({
            "at": Utc::now(),
            "orders_per_s": orders_per_s,
            "events_per_s": events_per_s,
            "confirm_latency": latency,
            "per_second": self.history.iter().map(|(s, o, e)| json!([s, o, e])).collect::<Vec<_>>(),
            "recent_orders": recent,
        })
    }
}

/// `GET /api/dashboard/ws`: a snapshot now, then each new one (every second).
#[utoipa::path(
    get, path = "/api/dashboard/ws", tag = "dashboard",
    responses((status = 101, description = "WebSocket: the live block now and every second"))
)]
pub async fn websocket(
    State(state): State<Dashboard>,
    caller: access::Caller,
    WebSocketUpgrade(upgrade): WebSocketUpgrade,
) -> Response {
    let latest = state.live.latest.subscribe();
    // Viewers and analysts see the flow, not whose orders they are.
    let redact = !caller.sees_customers();
    upgrade.on_upgrade(move |socket| push(socket, latest, redact))
}

/// The snapshot without customer ids.
fn without_customers(mut snapshot: Value) -> Value {
    if let Some(orders) = snapshot.get_mut("recent_orders").and_then(Value::as_array_mut) {
        for order in orders.iter_mut().filter_map(Value::as_object_mut) {
            order.remove("customer_id");
        }
    }
    snapshot
}

async fn push(mut socket: WebSocket, mut latest: watch::Receiver<Value>, redact: bool) {
    loop {
        // Copied only for a connection that must not see customers.
        let snapshot = if redact {
            without_customers(latest.borrow_and_update().clone()).to_string()
        } else {
            latest.borrow_and_update().to_string()
        };
        if socket.send(Message::Text(snapshot.into())).await.is_err() {
            return;
        }
        tokio::select! {
            changed = latest.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                // Anything else a client sends is ignored; wait for the next tick.
                Some(Ok(_)) => {
                    if latest.changed().await.is_err() {
                        return;
                    }
                }
            },
        }
    }
}

/// One durable consumer's backlog.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ConsumerLag {
    pub stream: &'static str,
    pub consumer: String,
    /// Messages not yet delivered.
    pub pending: u64,
    /// Delivered, not yet acknowledged.
    pub ack_pending: usize,
    pub redelivered: usize,
    pub delivered_stream_seq: u64,
}

/// Every durable consumer of the order streams and its backlog.
pub async fn consumer_lag(js: &jetstream::Context) -> Result<Vec<ConsumerLag>, DashboardError> {
    let mut out = Vec::new();
    for name in [broker::ORDERS_STREAM, broker::ORDER_EVENTS_STREAM] {
        let stream = js.get_stream_no_info(name).await.map_err(DashboardError::nats)?;
        let mut consumers = stream.consumers();
        while let Some(info) = consumers.next().await {
            let info = info.map_err(DashboardError::nats)?;
            // Ordered consumers (scans, replays) are not anyone's backlog.
            if info.config.durable_name.is_none() {
                continue;
            }
            out.push(ConsumerLag {
                stream: name,
                consumer: info.name.clone(),
                pending: info.num_pending,
                ack_pending: info.num_ack_pending,
                redelivered: info.num_redelivered,
                delivered_stream_seq: info.delivered.stream_sequence,
            });
        }
    }
    Ok(out)
}

pub async fn stream_messages(js: &jetstream::Context, name: &str) -> Result<u64, DashboardError> {
    let mut stream = js.get_stream(name).await.map_err(DashboardError::nats)?;
    Ok(stream.info().await.map_err(DashboardError::nats)?.state.messages)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rates_and_latencies_come_from_what_was_seen() {
        let mut sampler = Sampler::default();
        let order_id = uuid::Uuid::now_v7();
        let received = Utc::now();
        let order = json!({"order_id": order_id, "customer_id": "c1", "items": [], "currency": "USD",
            "subtotal": 1000, "tax": 100, "total": 1100, "placed_at": received, "received_at": received});
        sampler.on_order(Bytes::from(order.to_string()));
        let confirmed_at = DateTime::from_timestamp_millis(uuid_millis(&order_id).unwrap() + 250).unwrap();
        let event = schemas::OrderEvent::status_changed(
            order_id,
            Some(schemas::OrderStatus::Reserved),
            schemas::OrderStatus::Confirmed,
            None,
            confirmed_at,
        )
        .unwrap();
        let subject = broker::order_event_subject(order_id, event.subject_suffix());
        sampler.on_event(&subject, &serde_json::to_vec(&event).unwrap());
        sampler.tick(Utc::now());
        let snapshot = sampler.snapshot();
        assert_eq!(snapshot["orders_per_s"], 1.0);
        assert_eq!(snapshot["events_per_s"], 1.0);
        let p50 = snapshot["confirm_latency"]["p50_ms"].as_u64().unwrap();
        assert!((249..=251).contains(&p50), "{p50}");
        assert_eq!(snapshot["recent_orders"][0]["total"], "11.00");
    }
}
