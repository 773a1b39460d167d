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
    #[error("{0}")]
    Unavailable(String),
}

/// What the IDEMPOTENCY bucket stores per key.
#[derive(Deserialize)]
struct IdempotencyRecord {
    request_sha256: String,
    order: Order,
}

/// The same record, borrowed for writing.
#[derive(Serialize)]
struct RecordRef<'a> {
    request_sha256: &'a str,
    order: &'a Order,
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

/// Whether this request claimed its Idempotency-Key or found it taken.
pub enum Claim {
    /// First use of the key: the caller publishes its order.
    Won,
    /// The key names an earlier order with the same body: answer with that one.
    Taken(Box<Order>),
}

impl Intake {
    pub async fn accept(
        &self,
        req: &CreateOrderRequest,
        key: Option<&str>,
        metrics: &Metrics,
    ) -> Result<Accepted, IntakeError> {
        let order = self.prepare(req, key)?;
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
    /// taken; a taken key with a different body is `KeyReused`.
    pub async fn claim_key(&self, key: &str, req: &CreateOrderRequest, order: &Order) -> Result<Claim, IntakeError> {
        // The request as sent (not the defaulted order) decides "same body".
        let request_sha256 = sha256_hex(&serde_json::to_vec(req).map_err(|e| IntakeError::Unavailable(e.to_string()))?);
        // KV keys allow only [-/_=.a-zA-Z0-9]; any printable key hashes to one.
        let kv_key = sha256_hex(key.as_bytes());
        let record = RecordRef { request_sha256: &request_sha256, order };
        let value = Bytes::from(serde_json::to_vec(&record).map_err(|e| IntakeError::Unavailable(e.to_string()))?);
        let created = tokio::time::timeout(self.publish_timeout, self.idempotency.create(&kv_key, value))
            .await
            .map_err(|_| IntakeError::Unavailable("timed out recording the Idempotency-Key".into()))?;
        match created {
            Ok(_) => Ok(Claim::Won),
            Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => {
                let recorded = self.read_record(&kv_key).await?;
                if recorded.request_sha256 != request_sha256 {
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
    pub async fn publish(&self, order: &Order, metrics: &Metrics) -> Result<u64, IntakeError> {
        let payload = serde_json::to_vec(order).map_err(|e| IntakeError::Unavailable(e.to_string()))?;
        let started = Instant::now();
        let publish = PublishMessage::build().payload(payload.into()).message_id(order.order_id.to_string());
        let acked = tokio::time::timeout(self.publish_timeout, async {
            self.js.send_publish(order_submitted_subject(order.order_id), publish).await?.await
        })
        .await;
        metrics.publish_seconds.observe(started.elapsed().as_secs_f64());
        match acked {
            Ok(Ok(ack)) => Ok(ack.sequence),
            Ok(Err(err)) => Err(IntakeError::Unavailable(format!("JetStream refused the order: {err}"))),
            Err(_) => Err(IntakeError::Unavailable("timed out waiting for JetStream".into())),
        }
    }

    /// The accepted order and its stream sequence, if it is in the stream.
    pub async fn find(&self, order_id: Uuid) -> Result<Option<(Order, u64)>, IntakeError> {
        let lookup = self.orders.direct_get_last_for_subject(order_submitted_subject(order_id));
        match tokio::time::timeout(self.publish_timeout, lookup).await {
            Err(_) => Err(IntakeError::Unavailable("timed out reading the ORDERS stream".into())),
            Ok(Err(err)) if err.kind() == jetstream::stream::DirectGetErrorKind::NotFound => Ok(None),
            Ok(Err(err)) => Err(IntakeError::Unavailable(format!("cannot read the ORDERS stream: {err}"))),
            Ok(Ok(message)) => {
                let order = serde_json::from_slice(&message.payload)
                    .map_err(|e| IntakeError::Unavailable(format!("undecodable order in stream: {e}")))?;
                Ok(Some((order, message.sequence)))
            }
        }
    }
}
