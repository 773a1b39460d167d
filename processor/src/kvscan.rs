//! Reading many key-value entries at once: an ordered consumer over the
//! bucket's stream delivering the last value per key, instead of a get per key.

use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures::StreamExt;

use crate::ProcessorError;

/// Latest (key, value) of every key in `bucket` matching `filter` (a subject
/// pattern over keys: `>` for all, `cust.*` for one customer's entries).
pub async fn latest(
    js: &jetstream::Context,
    bucket: &str,
    filter: &str,
) -> Result<Vec<(String, Bytes)>, ProcessorError> {
    let err = |what: &'static str| move |e: String| ProcessorError::Nats { what, message: e };
    let stream =
        js.get_stream_no_info(broker::kv_stream_name(bucket)).await.map_err(|e| err("open a bucket")(e.to_string()))?;
    let prefix = broker::kv_subject_prefix(bucket);
    let mut consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: format!("{prefix}{filter}"),
            deliver_policy: consumer::DeliverPolicy::LastPerSubject,
            ..Default::default()
        })
        .await
        .map_err(|e| err("scan a bucket")(e.to_string()))?;
    let pending = consumer.info().await.map_err(|e| err("scan a bucket")(e.to_string()))?.num_pending;
    let mut out = Vec::with_capacity(pending as usize);
    if pending == 0 {
        return Ok(out);
    }
    let mut messages = consumer.messages().await.map_err(|e| err("scan a bucket")(e.to_string()))?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| err("scan a bucket")(e.to_string()))?;
        let remaining = message.info().map(|i| i.pending).unwrap_or(0);
        // Deleted or purged keys carry an operation header and no value.
        let deleted = message.headers.as_ref().and_then(|h| h.get("KV-Operation")).is_some();
        if !deleted && let Some(key) = message.subject.as_str().strip_prefix(&prefix) {
            out.push((key.to_string(), message.payload.clone()));
        }
        if remaining == 0 {
            break;
        }
    }
    Ok(out)
}
