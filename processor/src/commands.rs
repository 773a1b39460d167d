//! Putting commands into the ORDERS log, where the engine applies them in
//! order with everything else. Shared by the HTTP API, the CLI and tests.

use async_nats::jetstream::{self, message::PublishMessage};
use chrono::Utc;
use uuid::Uuid;

use broker::{STOCK_COMMAND_SUBJECT, order_command_subject};
use schemas::{OrderCommand, OrderCommandEnvelope, StockChange, StockCommand};

use crate::ProcessorError;

fn publish_error(e: impl std::fmt::Display) -> ProcessorError {
    ProcessorError::Nats { what: "publish a command", message: e.to_string() }
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
