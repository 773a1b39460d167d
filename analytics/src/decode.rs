//! A micro-batch's JSON messages decoded into orders or events. Decoding
//! needs nothing of the job's state, so a replay decodes the next batch
//! while the job applies this one ([`crate::replay`]).

use bytes::Bytes;
use schemas::{Order, OrderEvent};

use crate::AnalyticsError;
use crate::source::Source;

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
pub async fn decode_batch(source: Source, messages: Vec<(u64, Bytes)>) -> Result<Option<DecodedBatch>, AnalyticsError> {
    let (Some(first), Some(last)) = (messages.first().map(|m| m.0), messages.last().map(|m| m.0)) else {
        return Ok(None);
    };
    let count = messages.len() as u64;
    let (rows, undecodable) = match source {
        Source::Orders => {
            let (orders, undecodable) = decode_json(messages).await?;
            (DecodedRows::Orders(orders), undecodable)
        }
        Source::Events => {
            let (events, undecodable) = decode_json(messages).await?;
            (DecodedRows::Events(events), undecodable)
        }
    };
    Ok(Some(DecodedBatch { first, last, messages: count, rows, undecodable }))
}

type Undecodable = Vec<(u64, serde_json::Error)>;

/// Decodes JSON payloads on the blocking pool, a chunk per core, keeping
/// their order: decoding is most of a micro-batch's CPU time. Returns what
/// decoded and, apart, what did not.
async fn decode_json<T>(mut messages: Vec<(u64, Bytes)>) -> Result<(Vec<(u64, T)>, Undecodable), AnalyticsError>
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    let decode = |chunk: Vec<(u64, Bytes)>| {
        let (mut rows, mut undecodable) = (Vec::with_capacity(chunk.len()), Vec::new());
        for (seq, payload) in chunk {
            match serde_json::from_slice::<T>(&payload) {
                Ok(value) => rows.push((seq, value)),
                Err(e) => undecodable.push((seq, e)),
            }
        }
        (rows, undecodable)
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 || messages.len() < 1024 {
        return Ok(decode(messages));
    }
    let (total, chunk_len) = (messages.len(), messages.len().div_ceil(cores));
    // Whole chunks handed over (from the back, so nothing is moved twice).
    let mut tasks = Vec::with_capacity(cores);
    while !messages.is_empty() {
        let chunk = messages.split_off((messages.len() - 1) / chunk_len * chunk_len);
        tasks.push(tokio::task::spawn_blocking(move || decode(chunk)));
    }
    tasks.reverse();
    let (mut rows, mut undecodable) = (Vec::with_capacity(total), Vec::new());
    for task in futures::future::join_all(tasks).await {
        let (chunk_rows, chunk_undecodable) = task.map_err(|e| AnalyticsError::task("decoding", e))?;
        rows.extend(chunk_rows);
        undecodable.extend(chunk_undecodable);
    }
    Ok((rows, undecodable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chunks_decode_in_stream_order_and_undecodable_messages_are_set_apart() {
        let messages: Vec<(u64, Bytes)> = (1..=5000u64)
            .map(|seq| {
                let payload = if seq % 1000 == 7 { "not json".to_string() } else { format!("[{seq}]") };
                (seq, Bytes::from(payload))
            })
            .collect();
        let (rows, undecodable) = decode_json::<[u64; 1]>(messages).await.unwrap();
        let expected: Vec<(u64, [u64; 1])> = (1..=5000).filter(|s| s % 1000 != 7).map(|s| (s, [s])).collect();
        assert_eq!(rows, expected);
        assert_eq!(undecodable.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), vec![7, 1007, 2007, 3007, 4007]);
    }
}
