//! A micro-batch's JSON messages decoded into orders or events. Decoding
//! needs nothing of the job's state, so a replay decodes the next batch
//! while the job applies this one ([`crate::replay`]).

use bytes::Bytes;
use schemas::{Order, OrderEvent};

use crate::AnalyticsError;
use crate::job::Source;

/// One micro-batch (ascending sequences), decoded.
pub struct DecodedBatch {
    /// The batch's first and last sequence (undecodable messages included).
    pub first: u64,
    pub last: u64,
    pub messages: u64,
    pub rows: DecodedRows,
    /// Messages that did not decode: skipped, and counted by the job.
    pub undecodable: Vec<(u64, serde_json::Error)>,
}

pub enum DecodedRows {
    Orders(Vec<(u64, Order)>),
    Events(Vec<(u64, OrderEvent)>),
}

/// Decodes a batch of `(stream_seq, payload)` messages of `source`;
/// `None` for an empty batch.
pub async fn decode_batch(source: Source, messages: &[(u64, Bytes)]) -> Result<Option<DecodedBatch>, AnalyticsError> {
    let (Some(first), Some(last)) = (messages.first().map(|m| m.0), messages.last().map(|m| m.0)) else {
        return Ok(None);
    };
    let mut undecodable = Vec::new();
    let rows = match source {
        Source::Orders => DecodedRows::Orders(split_undecodable(decode_json(messages).await?, &mut undecodable)),
        Source::Events => DecodedRows::Events(split_undecodable(decode_json(messages).await?, &mut undecodable)),
    };
    Ok(Some(DecodedBatch { first, last, messages: messages.len() as u64, rows, undecodable }))
}

type Decoded<T> = Vec<(u64, Result<T, serde_json::Error>)>;

/// The messages that decoded; the others go to `undecodable`.
fn split_undecodable<T>(decoded: Decoded<T>, undecodable: &mut Vec<(u64, serde_json::Error)>) -> Vec<(u64, T)> {
    let mut rows = Vec::with_capacity(decoded.len());
    for (seq, value) in decoded {
        match value {
            Ok(value) => rows.push((seq, value)),
            Err(e) => undecodable.push((seq, e)),
        }
    }
    rows
}

/// Decodes JSON payloads on the blocking pool, a chunk per core, keeping
/// their order: decoding is most of a micro-batch's CPU time.
async fn decode_json<T>(messages: &[(u64, Bytes)]) -> Result<Decoded<T>, AnalyticsError>
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    let decode = |chunk: &[(u64, Bytes)]| -> Decoded<T> {
        chunk.iter().map(|(seq, payload)| (*seq, serde_json::from_slice::<T>(payload))).collect()
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 || messages.len() < 1024 {
        return Ok(decode(messages));
    }
    let chunk_len = messages.len().div_ceil(cores);
    let tasks: Vec<_> = messages
        .chunks(chunk_len)
        .map(|chunk| {
            let chunk = chunk.to_vec();
            tokio::task::spawn_blocking(move || decode(&chunk))
        })
        .collect();
    let mut decoded = Vec::with_capacity(messages.len());
    for task in futures::future::join_all(tasks).await {
        decoded.extend(task.map_err(|e| AnalyticsError::task("decoding", e))?);
    }
    Ok(decoded)
}
