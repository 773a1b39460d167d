//! Accepting an order: validate, claim the idempotency key, publish to
//! JetStream and wait for its PubAck. Shared by the single and batch routes.
//!
//! Exactly-once with an `Idempotency-Key`:
//! 1. `create` the key's record (the whole order, with its new id) in the
//!    IDEMPOTENCY bucket. `create` is a compare-and-set: one request wins.
//! 2. Publish the order with `Nats-Msg-Id = order_id`.
//!
//! Anyone who loses step 1 (a retry, a concurrent duplicate, a retry after a
//! crash between 1 and 2) reads the record and finds the order by its subject;
//! if it is not in the stream yet they publish the *recorded* order with the
//! same message id, which JetStream deduplicates. So the key always maps to
//! one order id and at most one message.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv, message::PublishMessage};
use bytes::Bytes;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;
use uuid::Uuid;

use broker::order_submitted_subject;
use schemas::{CreateOrderRequest, FieldError, Order, OrderAccepted, validate_order};

use crate::metrics::Metrics;

#[derive(Debug, Error)]
pub enum IntakeError {
    #[error(transparent)]
    Invalid(FieldError),
    #[error("idempotency key reused with a different body")]
    KeyReused,
    /// Not stored: the order never reached JetStream, or JetStream refused it.
    #[error("{0}")]
    Unavailable(String),
    /// Sent, but no acknowledgement came: it may be stored.
    #[error("{why}")]
    Unknown { order_id: Uuid, why: String },
}

/// What the IDEMPOTENCY bucket stores per key.
#[derive(Deserialize)]
struct IdempotencyRecord {
    request_sha256: String,
    /// `content-v1`: the hash is of the validated content ([`content_sha256`]);
    /// absent in records written before, which hashed the request as sent.
    #[serde(default)]
    hash: Option<String>,
    order: Order,
}

/// The same record, borrowed for writing.
#[derive(Serialize)]
struct RecordRef<'a> {
    request_sha256: &'a str,
    hash: &'static str,
    order: &'a Order,
}

const CONTENT_HASH: &str = "content-v1";

/// "The same body" for an `Idempotency-Key`: the order's content as
/// validated, so a price sent as `1.00` or `"1.00"`, the key repeated in the
/// body, or the batch route instead of the single one are the same request.
fn content_sha256(req: &CreateOrderRequest) -> Result<String, IntakeError> {
    // `placed_at` was checked against the clock in `prepare`; here any
    // valid time passes.
    let far_future = chrono::TimeZone::with_ymd_and_hms(&Utc, 9000, 1, 1, 0, 0, 0).single().unwrap_or_default();
    let new = validate_order(req, far_future).map_err(IntakeError::Invalid)?;
    Ok(sha256_hex(&serde_json::to_vec(&new).map_err(|e| IntakeError::Unavailable(e.to_string()))?))
}

pub struct Accepted {
    pub response: OrderAccepted,
    /// True when the key had been seen: answer 200 with `Idempotent-Replayed`.
    pub replayed: bool,
}

/// The NATS handles and settings that accepting an order needs.
pub struct Intake {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub orders: jetstream::stream::Stream<()>,
    pub idempotency: kv::Store,
    pub publish_timeout: Duration,
    pub tax_rate: schemas::TaxRate,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a failed acknowledgement means JetStream stored nothing: it
/// answered with an error (no stream, a limit reached), as opposed to not
/// answering (a timeout, a dropped connection), which leaves it unknown.
fn stored_nothing(err: &jetstream::context::PublishError) -> bool {
    use jetstream::context::PublishErrorKind as Kind;
    matches!(
        err.kind(),
        Kind::StreamNotFound
            | Kind::WrongLastMessageId
            | Kind::WrongLastSequence
            | Kind::MaxPayloadExceeded
            | Kind::Other
    )
}

/// Whether this request claimed its Idempotency-Key or found it taken.
pub enum Claim {
    /// First use of the key: the caller publishes its order.
    Won,
    /// The key names an earlier order with the same body: answer with that one.
    Taken(Box<Order>),
}

impl Intake {
    /// `producer` is the id of the API key submitting it, if any.
    pub async fn accept(
        &self,
        req: &CreateOrderRequest,
        key: Option<&str>,
        producer: Option<&str>,
        metrics: &Metrics,
    ) -> Result<Accepted, IntakeError> {
        let mut order = self.prepare(req, key)?;
        order.producer = producer.map(str::to_string);
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err(IntakeError::Unavailable("NATS is not connected".into()));
        }
        if let Some(key) = key
            && let Claim::Taken(recorded) = self.claim_key(key, req, &order).await?
        {
            return self.replay(recorded, metrics).await;
        }
        let seq = self.publish(&order, metrics).await?;
        metrics.orders_accepted.inc();
        Ok(Accepted { response: OrderAccepted::new(&order, seq), replayed: false })
    }

    /// Validates the request and builds the order of record (new id, now).
    pub fn prepare(&self, req: &CreateOrderRequest, key: Option<&str>) -> Result<Order, IntakeError> {
        let now = Utc::now();
        let new = validate_order(req, now).map_err(IntakeError::Invalid)?;
        Ok(Order::accept(new, Uuid::now_v7(), now, self.tax_rate, key.map(str::to_string)))
    }

    /// Step 1 of the module comment: record `key → order` unless the key is
    /// taken; a taken key with a different body is `KeyReused`. Keys are
    /// the order's producer's own: two storefronts may both send `k-1`.
    pub async fn claim_key(&self, key: &str, req: &CreateOrderRequest, order: &Order) -> Result<Claim, IntakeError> {
        let request_sha256 = content_sha256(req)?;
        // KV keys allow only [-/_=.a-zA-Z0-9]; any printable key hashes to one.
        // Without a producer (access open) the key alone, as before keys existed.
        let kv_key = match &order.producer {
            None => sha256_hex(key.as_bytes()),
            Some(producer) => sha256_hex(format!("{producer}\n{key}").as_bytes()),
        };
        let record = RecordRef { request_sha256: &request_sha256, hash: CONTENT_HASH, order };
        let value = Bytes::from(serde_json::to_vec(&record).map_err(|e| IntakeError::Unavailable(e.to_string()))?);
        let created = tokio::time::timeout(self.publish_timeout, self.idempotency.create(&kv_key, value))
            .await
            .map_err(|_| IntakeError::Unavailable("timed out recording the Idempotency-Key".into()))?;
        match created {
            Ok(_) => Ok(Claim::Won),
            Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => {
                let recorded = self.read_record(&kv_key).await?;
                let same = match recorded.hash.as_deref() {
                    Some(CONTENT_HASH) => recorded.request_sha256 == request_sha256,
                    // A record from before: the request as it was sent then.
                    _ => {
                        let sent = serde_json::to_vec(req).map_err(|e| IntakeError::Unavailable(e.to_string()))?;
                        recorded.request_sha256 == sha256_hex(&sent)
                    }
                };
                if !same {
                    return Err(IntakeError::KeyReused);
                }
                Ok(Claim::Taken(Box::new(recorded.order)))
            }
            Err(err) => Err(IntakeError::Unavailable(format!("cannot record the Idempotency-Key: {err}"))),
        }
    }

    async fn read_record(&self, kv_key: &str) -> Result<IdempotencyRecord, IntakeError> {
        let entry = tokio::time::timeout(self.publish_timeout, self.idempotency.get(kv_key))
            .await
            .map_err(|_| IntakeError::Unavailable("timed out reading the Idempotency-Key".into()))?
            .map_err(|e| IntakeError::Unavailable(format!("cannot read the Idempotency-Key: {e}")))?
            .ok_or_else(|| IntakeError::Unavailable("the Idempotency-Key record expired while in use".into()))?;
        serde_json::from_slice(&entry)
            .map_err(|e| IntakeError::Unavailable(format!("unreadable Idempotency-Key record: {e}")))
    }

    async fn replay(&self, recorded: Box<Order>, metrics: &Metrics) -> Result<Accepted, IntakeError> {
        metrics.idempotent_replays.inc();
        let seq = match self.find(recorded.order_id).await? {
            Some((_, seq)) => seq,
            // Recorded but not (yet) in the stream: the first request is in
            // flight or died before publishing. Same id, so at most one copy.
            None => self.publish(&recorded, metrics).await?,
        };
        Ok(Accepted { response: OrderAccepted::new(&recorded, seq), replayed: true })
    }

    /// Step 2: publishes with `Nats-Msg-Id = order_id`, waits for the PubAck.
    /// A failure before the order left, or JetStream's refusal, is
    /// `Unavailable` (not stored). A missing acknowledgement is resolved by
    /// looking the order up; still unseen, it is `Unknown`: never a 503
    /// for an order that may be stored.
    pub async fn publish(&self, order: &Order, metrics: &Metrics) -> Result<u64, IntakeError> {
        let payload = serde_json::to_vec(order).map_err(|e| IntakeError::Unavailable(e.to_string()))?;
        let started = Instant::now();
        let deadline = started + self.publish_timeout;
        let publish = PublishMessage::build().payload(payload.into()).message_id(order.order_id.to_string());
        let sent = tokio::time::timeout_at(
            deadline.into(),
            self.js.send_publish(order_submitted_subject(order.order_id), publish),
        )
        .await;
        let ack = match sent {
            Err(_) => return Err(IntakeError::Unavailable("timed out handing the order to NATS".into())),
            Ok(Err(err)) => return Err(IntakeError::Unavailable(format!("cannot send to JetStream: {err}"))),
            Ok(Ok(ack)) => ack,
        };
        let acked = tokio::time::timeout_at(deadline.into(), ack.into_future()).await;
        metrics.publish_seconds.observe(started.elapsed().as_secs_f64());
        let why = match acked {
            Ok(Ok(ack)) => return Ok(ack.sequence),
            Ok(Err(err)) if stored_nothing(&err) => {
                return Err(IntakeError::Unavailable(format!("JetStream refused the order: {err}")));
            }
            Ok(Err(err)) => err.to_string(),
            Err(_) => "timed out waiting for JetStream's acknowledgement".to_string(),
        };
        match self.find(order.order_id).await {
            Ok(Some((_, seq))) => Ok(seq),
            _ => {
                metrics.acks_unknown.inc();
                Err(IntakeError::Unknown { order_id: order.order_id, why })
            }
        }
    }

    /// The accepted order and its stream sequence, if it is in the stream.
    pub async fn find(&self, order_id: Uuid) -> Result<Option<(Order, u64)>, IntakeError> {
        match tokio::time::timeout(self.publish_timeout, broker::accepted_order(&self.orders, order_id)).await {
            Err(_) => Err(IntakeError::Unavailable("timed out reading the ORDERS stream".into())),
            Ok(found) => found.map_err(|e| IntakeError::Unavailable(e.to_string())),
        }
    }
}
