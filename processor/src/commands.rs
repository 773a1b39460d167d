//! Putting commands into the ORDERS log, where the engine applies them in
//! order with everything else, and the one protocol for waiting on the
//! engine's verdict ([`send_and_await`]). Shared by the HTTP API, the
//! dashboard's bulk actions, the CLI and tests.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use chrono::Utc;
use futures::StreamExt;
use uuid::Uuid;

use broker::{STOCK_COMMAND_SUBJECT, order_command_subject, order_event_subject};
use schemas::{EventPayload, OrderCommand, OrderCommandEnvelope, OrderEvent, OrderStatus, StockChange, StockCommand};

use crate::ProcessorError;

fn publish_error(e: impl std::fmt::Display) -> ProcessorError {
    ProcessorError::Nats { what: "publish a command", message: e.to_string() }
}

/// The engine's answer to commands sent with [`send_and_await`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The order reached one of the awaited statuses.
    Applied(OrderStatus),
    /// The engine refused the last command: the order's status, and why.
    Rejected { status: OrderStatus, message: String },
    /// JetStream already held every command (a retried request): the engine
    /// decided them the first time, and nothing new will happen.
    Duplicate,
    /// Durable in the log, applied in order; no verdict within the wait.
    Queued,
}

/// Sends `commands` for one order, in order, and waits up to `wait` for the
/// engine's verdict: the order reaching one of `answers`, or the last
/// command refused (a refusal names its command; an earlier step refused,
/// an order already past it, is not the verdict).
pub async fn send_and_await(
    client: &async_nats::Client,
    js: &jetstream::Context,
    order_id: Uuid,
    commands: &[OrderCommand],
    answers: &[OrderStatus],
    wait: Duration,
) -> Result<Verdict, ProcessorError> {
    let verdict_of = commands.last().map(OrderCommand::name);
    // Subscribe before sending, so the verdict cannot slip past.
    let mut events = client
        .subscribe(order_event_subject(order_id, "*"))
        .await
        .map_err(|e| ProcessorError::Nats { what: "subscribe to an order's events", message: e.to_string() })?;
    let mut all_duplicates = true;
    for command in commands {
        all_duplicates &= send_order_command_acked(js, order_id, command.clone()).await?.duplicate;
    }
    if all_duplicates {
        return Ok(Verdict::Duplicate);
    }
    let verdict = async {
        while let Some(message) = events.next().await {
            let Ok(event) = serde_json::from_slice::<OrderEvent>(&message.payload) else { continue };
            match event.payload {
                EventPayload::StatusChanged { to, .. } if answers.contains(&to) => return Verdict::Applied(to),
                EventPayload::CommandRejected { command, status, message } if Some(command.as_str()) == verdict_of => {
                    return Verdict::Rejected { status, message };
                }
                _ => {}
            }
        }
        Verdict::Queued
    };
    Ok(tokio::time::timeout(wait, verdict).await.unwrap_or(Verdict::Queued))
}

/// Appends `command` for `order_id`; returns its ORDERS sequence. The id is
/// derived from the order and the command, so a retry is the same command.
pub async fn send_order_command(
    js: &jetstream::Context,
    order_id: Uuid,
    command: OrderCommand,
) -> Result<u64, ProcessorError> {
    Ok(send_order_command_acked(js, order_id, command).await?.sequence)
}

/// [`send_order_command`], with JetStream's whole answer: `duplicate` says
/// the same command was already in the log (within the dedup window).
pub async fn send_order_command_acked(
    js: &jetstream::Context,
    order_id: Uuid,
    command: OrderCommand,
) -> Result<async_nats::jetstream::publish::PublishAck, ProcessorError> {
    let envelope = OrderCommandEnvelope { order_id, issued_at: Utc::now(), command };
    let payload = serde_json::to_vec(&envelope).map_err(publish_error)?;
    let publish = PublishMessage::build().payload(payload.into()).message_id(envelope.dedup_id());
    let ack = js
        .send_publish(order_command_subject(order_id, envelope.command.name()), publish)
        .await
        .map_err(publish_error)?
        .await
        .map_err(publish_error)?;
    Ok(ack)
}

/// Appends a stock change (with the catalog's list price, from an import);
/// `request_id` makes a retried request one change.
pub async fn send_stock_command(
    js: &jetstream::Context,
    product_id: &str,
    change: StockChange,
    request_id: &str,
    reason: Option<String>,
    list_price: Option<schemas::ListPrice>,
) -> Result<u64, ProcessorError> {
    let command = StockCommand {
        request_id: request_id.to_string(),
        product_id: product_id.to_string(),
        change,
        reason,
        issued_at: Utc::now(),
        list_price,
    };
    let payload = serde_json::to_vec(&command).map_err(publish_error)?;
    let publish = PublishMessage::build().payload(payload.into()).message_id(schemas::stock_event_id(request_id));
    let ack =
        js.send_publish(STOCK_COMMAND_SUBJECT, publish).await.map_err(publish_error)?.await.map_err(publish_error)?;
    Ok(ack.sequence)
}
