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
use crate::runner::StockEntry;

/// One status step as an event recorded it: (from, to, reason).
type Step = (Option<OrderStatus>, OrderStatus, Option<schemas::CancelReason>);

#[derive(Debug, Default, Serialize)]
pub struct AuditReport {
    pub orders: usize,
    pub terminal: usize,
    pub by_status: BTreeMap<String, usize>,
    pub events: usize,
    /// Orders with no terminal state yet.
    pub unfinished: Vec<Uuid>,
    /// Event ids found more than once in ORDER_EVENTS.
    pub duplicate_events: Vec<String>,
    /// Orders whose events do not follow the state machine.
    pub invalid_paths: Vec<Uuid>,
    /// Accepted orders the processor never emitted `pending` for.
    pub never_processed: Vec<Uuid>,
    /// Products whose stock does not add up: (product, expected, found).
    pub stock_mismatches: Vec<(String, StockLevel, StockLevel)>,
}

impl AuditReport {
    /// True when every guarantee holds (unfinished orders allowed or not).
    pub fn is_clean(&self, allow_unfinished: bool) -> bool {
        (allow_unfinished || self.unfinished.is_empty())
            && self.duplicate_events.is_empty()
            && self.invalid_paths.is_empty()
            && self.never_processed.is_empty()
            && self.stock_mismatches.is_empty()
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
    let orders: HashMap<Uuid, Order> = read_all(js, ORDERS_STREAM, "orders.submitted.>")
        .await?
        .iter()
        .filter_map(|m| serde_json::from_slice::<Order>(&m.payload).ok())
        .map(|o| (o.order_id, o))
        .collect();
    report.orders = orders.len();

    let mut paths: HashMap<Uuid, Vec<Step>> = HashMap::new();
    let mut seen: HashMap<String, u32> = HashMap::new();
    for message in read_all(js, ORDER_EVENTS_STREAM, ">").await? {
        let Ok(event) = serde_json::from_slice::<OrderEvent>(&message.payload) else { continue };
        report.events += 1;
        *seen.entry(event.event_id.clone()).or_default() += 1;
        if let EventPayload::StatusChanged { from, to, reason, .. } = event.payload {
            paths.entry(event.order_id).or_default().push((from, to, reason));
        }
    }
    report.duplicate_events = seen.into_iter().filter(|(_, n)| *n > 1).map(|(id, _)| id).collect();

    let mut final_status: HashMap<Uuid, OrderStatus> = HashMap::new();
    for (id, steps) in &paths {
        let mut current = None;
        let mut valid = true;
        for (from, to, reason) in steps {
            let ok = match (current, from) {
                (None, None) => *to == OrderStatus::Pending,
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
        let want = expected.get(product).copied().unwrap_or_default();
        let want = StockLevel { available: received.saturating_sub(want.sold + want.reserved), ..want };
        if found != want || found.on_hand() != *received {
            report.stock_mismatches.push((product.clone(), want, found));
        }
    }
    Ok(report)
}
