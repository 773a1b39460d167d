//! The dead-letter stream: messages a consumer could not use, kept with the
//! reason, the original subject and sequence, for inspection and retry.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ProcessorError;

pub const REASON: &str = "Orderstream-Dlq-Reason";
pub const SUBJECT: &str = "Orderstream-Dlq-Subject";
pub const SOURCE_SEQ: &str = "Orderstream-Dlq-Source-Seq";

/// The dedup id of the dead letter of the message at `seq` of `subject`.
pub fn message_id(source: &str, subject: &str, seq: u64) -> String {
    format!("dlq:{source}:{subject}:{seq}")
}

/// Dead-letters `message` (at `seq` of its stream) from consumer `source`.
pub async fn send(
    js: &jetstream::Context,
    source: &str,
    message: &jetstream::Message,
    seq: u64,
    reason: &str,
) -> Result<PublishAckFuture, ProcessorError> {
    let mut headers = HeaderMap::new();
    headers.insert(REASON, reason.chars().filter(|c| !c.is_control()).take(500).collect::<String>().as_str());
    headers.insert(SUBJECT, message.subject.as_str());
    headers.insert(SOURCE_SEQ, seq.to_string().as_str());
    let publish = PublishMessage::build().payload(message.payload.clone()).headers(headers).message_id(message_id(
        source,
        message.subject.as_str(),
        seq,
    ));
    js.send_publish(broker::dlq_subject(source), publish)
        .await
        .map_err(|e| ProcessorError::Nats { what: "dead-letter a message", message: e.to_string() })
}

/// `GET /api/admin/dlq` item.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub seq: u64,
    pub source: String,
    pub original_subject: String,
    pub original_seq: Option<u64>,
    pub reason: String,
    pub dead_lettered_at: DateTime<Utc>,
    /// The message as it was, if it is text.
    pub payload: String,
}
