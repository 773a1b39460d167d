//! Auditing a running system against its guarantees, from its own streams:
//! every order has a valid path through the state machine, at most one
//! terminal state, every event id is in ORDER_EVENTS once, and every
//! product's stock is conserved and matches what the orders did.
//! `orderstream audit` runs it; the chaos test asserts on it.

use std::collections::{BTreeMap, HashMap};

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use serde::Serialize;
use uuid::Uuid;

use broker::{ORDER_EVENTS_STREAM, ORDERS_STREAM, STOCK_BUCKET, STOCK_EVENTS_STREAM};
use schemas::{EventPayload, Order, OrderEvent, OrderStatus, StockEvent, StockLevel, check_transition};

use crate::ProcessorError;
use schemas::records::StockEntry;

/// One status step as an event recorded it: (from, to, reason).
type Step = (Option<OrderStatus>, OrderStatus, Option<schemas::CancelReason>);

#[derive(Debug, Default, Serialize)]
pub struct AuditReport {
    pub orders: usize,
    pub terminal: usize,
    pub by_status: BTreeMap<String, usize>,
    pub events: usize,
    /// Orders with no terminal state yet (in flight).
    pub unfinished: Vec<Uuid>,
    /// Flagged orders held for a human decision: settled until reviewed.
    pub awaiting_review: Vec<Uuid>,
    /// Event ids found more than once in ORDER_EVENTS.
    pub duplicate_events: Vec<String>,
    /// Orders whose events do not follow the state machine.
    pub invalid_paths: Vec<Uuid>,
    /// Accepted orders the processor never moved (no event at all).
    pub never_processed: Vec<Uuid>,
    /// Products whose stock does not add up: (product, expected, found).
    pub stock_mismatches: Vec<(String, StockLevel, StockLevel)>,
    /// Products holding more units than any product may
    /// ([`schemas::MAX_STOCK_UNITS`]): a sign of arithmetic gone wrong.
    pub stock_out_of_bounds: Vec<(String, StockLevel)>,
    /// Accepted (ingest's receive time) → the customer's answer (reserved,
    /// flagged or cancelled) stored in ORDER_EVENTS, in ms.
    pub answer_latency_ms: Option<Percentiles>,
    /// Accepted → terminal (delivered or cancelled), in ms.
    pub saga_latency_ms: Option<Percentiles>,
    /// From the first order accepted to the last order answered, in ms.
    pub all_answered_after_ms: Option<i64>,
    /// From the first answer to the last: the engine's time for all of them
    /// when the orders were already waiting (a backlog).
    pub answer_span_ms: Option<i64>,
    /// Orders that reached a terminal state per second, first accept to last terminal.
    pub terminal_per_second: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(mut samples: Vec<i64>) -> Option<Percentiles> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize] as f64;
        Some(Percentiles { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: at(1.0) })
    }
}

impl AuditReport {
    /// True when every guarantee holds (unfinished orders allowed or not).
    pub fn is_clean(&self, allow_unfinished: bool) -> bool {
        (allow_unfinished || self.unfinished.is_empty())
            && self.duplicate_events.is_empty()
            && self.invalid_paths.is_empty()
            && self.never_processed.is_empty()
            && self.stock_mismatches.is_empty()
            && self.stock_out_of_bounds.is_empty()
    }
}

fn nats(e: impl std::fmt::Display) -> ProcessorError {
    ProcessorError::Nats { what: "audit", message: e.to_string() }
}

/// Every message of `stream` matching `filter`, from the first to the last
/// present when called.
async fn read_all(
    js: &jetstream::Context,
    stream: &str,
    filter: &str,
) -> Result<Vec<jetstream::Message>, ProcessorError> {
    let stream = js.get_stream_no_info(stream).await.map_err(nats)?;
    let mut consumer = stream
        .create_consumer(consumer::pull::OrderedConfig { filter_subject: filter.to_string(), ..Default::default() })
        .await
        .map_err(nats)?;
    let pending = consumer.info().await.map_err(nats)?.num_pending;
    let mut out = Vec::with_capacity(pending as usize);
    if pending == 0 {
        return Ok(out);
    }
    let mut messages = consumer.messages().await.map_err(nats)?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(nats)?;
        let remaining = message.info().map(|i| i.pending).unwrap_or(0);
        out.push(message);
        if remaining == 0 {
            break;
        }
    }
    Ok(out)
}

pub async fn audit(js: &jetstream::Context) -> Result<AuditReport, ProcessorError> {
    let mut report = AuditReport::default();
    let orders: HashMap<Uuid, Order> = read_all(js, ORDERS_STREAM, broker::ORDERS_SUBMITTED_SUBJECTS)
        .await?
        .iter()
        .filter_map(|m| serde_json::from_slice::<Order>(&m.payload).ok())
        .map(|o| (o.order_id, o))
        .collect();
    report.orders = orders.len();

    let mut paths: HashMap<Uuid, Vec<Step>> = HashMap::new();
    let mut seen: HashMap<String, u32> = HashMap::new();
    let (mut answered, mut finished) = (HashMap::new(), HashMap::new());
    for message in read_all(js, ORDER_EVENTS_STREAM, ">").await? {
        let Ok(event) = serde_json::from_slice::<OrderEvent>(&message.payload) else { continue };
        report.events += 1;
        *seen.entry(event.event_id.clone()).or_default() += 1;
        if let EventPayload::StatusChanged { from, to, reason, .. } = event.payload {
            paths.entry(event.order_id).or_default().push((from, to, reason));
            // When JetStream stored the event: real processing time. (The
            // event's own `occurred_at` is its input's log time, which keeps
            // replays byte-identical but says nothing about delay.)
            let at = message.info().map(|i| i.published.timestamp_millis()).unwrap_or(0);
            if from == Some(OrderStatus::Pending) {
                answered.entry(event.order_id).or_insert(at);
            }
            if to.is_terminal() {
                finished.entry(event.order_id).or_insert(at);
            }
        }
    }
    let received = |id: &Uuid| orders.get(id).map(|o| o.received_at.timestamp_millis());
    let since_accept = |times: &HashMap<Uuid, i64>| -> Vec<i64> {
        times.iter().filter_map(|(id, at)| Some(at - received(id)?)).collect()
    };
    report.answer_latency_ms = Percentiles::of(since_accept(&answered));
    report.saga_latency_ms = Percentiles::of(since_accept(&finished));
    let first_accept = orders.values().map(|o| o.received_at.timestamp_millis()).min();
    if let (Some(first), Some(last)) = (first_accept, answered.values().max()) {
        report.all_answered_after_ms = Some(last - first);
    }
    if let (Some(first), Some(last)) = (answered.values().min(), answered.values().max()) {
        report.answer_span_ms = Some(last - first);
    }
    if let (Some(first), Some(last)) = (first_accept, finished.values().max())
        && *last > first
    {
        report.terminal_per_second = Some(finished.len() as f64 * 1000.0 / (last - first) as f64);
    }
    report.duplicate_events = seen.into_iter().filter(|(_, n)| *n > 1).map(|(id, _)| id).collect();

    let mut final_status: HashMap<Uuid, OrderStatus> = HashMap::new();
    for (id, steps) in &paths {
        // Every order starts in pending: ingest's acceptance, in ORDERS.
        let mut current = Some(OrderStatus::Pending);
        let mut valid = true;
        for (from, to, reason) in steps {
            let ok = match (current, from) {
                (Some(cur), Some(from)) if cur == *from => check_transition(*from, *to, *reason).is_ok(),
                _ => false,
            };
            valid &= ok;
            current = Some(*to);
        }
        let terminal_count = steps.iter().filter(|(_, to, _)| to.is_terminal()).count();
        if !valid || terminal_count > 1 {
            report.invalid_paths.push(*id);
        }
        if let Some(status) = current {
            final_status.insert(*id, status);
            *report.by_status.entry(status.to_string()).or_default() += 1;
        }
    }
    for id in orders.keys() {
        match final_status.get(id) {
            None => report.never_processed.push(*id),
            Some(OrderStatus::Flagged) => report.awaiting_review.push(*id),
            Some(status) if !status.is_terminal() => report.unfinished.push(*id),
            Some(_) => report.terminal += 1,
        }
    }

    // Stock: received comes from the last accepted stock change; sold and
    // reserved from what the orders did.
    let mut received: HashMap<String, u64> = HashMap::new();
    for message in read_all(js, STOCK_EVENTS_STREAM, ">").await? {
        if let Ok(event) = serde_json::from_slice::<StockEvent>(&message.payload)
            && event.rejected.is_none()
        {
            received.insert(event.product_id.clone(), event.after.on_hand());
        }
    }
    let mut expected: HashMap<String, StockLevel> = HashMap::new();
    for (id, order) in &orders {
        let Some(status) = final_status.get(id) else { continue };
        for item in &order.items {
            let level = expected.entry(item.product_id.clone()).or_default();
            let n = u64::from(item.quantity);
            if status.is_paid() {
                level.sold += n;
            } else if status.holds_stock() {
                level.reserved += n;
            }
        }
    }
    let stock = js.get_key_value(STOCK_BUCKET).await.map_err(nats)?;
    for (product, received) in &received {
        let found = match stock.get(broker::kv_key(product)).await.map_err(nats)? {
            Some(bytes) => serde_json::from_slice::<StockEntry>(&bytes).map(|e| e.level).map_err(nats)?,
            None => StockLevel::default(),
        };
        if !found.in_bounds() {
            report.stock_out_of_bounds.push((product.clone(), found));
        }
        let want = expected.get(product).copied().unwrap_or_default();
        let want = StockLevel { available: received.saturating_sub(want.sold + want.reserved), ..want };
        if found != want || found.on_hand() != *received {
            report.stock_mismatches.push((product.clone(), want, found));
        }
    }
    Ok(report)
}
