//! Streams and buckets, created or updated idempotently at start-up so every
//! role can start first and a changed limit is applied on the next start.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

use crate::BrokerError;

/// Submitted orders (`orders.submitted.{order_id}`) and commands (`orders.commands.…`).
pub const ORDERS_STREAM: &str = "ORDERS";
pub const ORDERS_SUBJECTS: &str = "orders.>";
/// Status events emitted by the processor, one per state change.
pub const ORDER_EVENTS_STREAM: &str = "ORDER_EVENTS";
pub const ORDER_EVENTS_SUBJECTS: &str = "order_events.>";
/// Idempotency-Key → the order it created; lives far longer than the dedup window.
pub const IDEMPOTENCY_BUCKET: &str = "IDEMPOTENCY";

/// One subject per order lets `GET /api/orders/{id}` and idempotent replays
/// find an order by id with a direct get, without a second write.
pub fn order_submitted_subject(order_id: impl std::fmt::Display) -> String {
    format!("orders.submitted.{order_id}")
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologySettings {
    /// JetStream's `Nats-Msg-Id` dedup window.
    pub duplicate_window: Duration,
    /// How long orders and events are kept (zero: forever). Replays and
    /// backfills can reach back this far.
    pub max_age: Duration,
    /// Size cap per stream in bytes (-1: none). At the cap new publishes are
    /// refused (a 503 to the producer), never old orders silently dropped.
    pub max_bytes: i64,
    /// Copies per stream: 1 on one server, 3 on a cluster.
    pub replicas: usize,
    /// How long an `Idempotency-Key` keeps returning its order.
    pub idempotency_ttl: Duration,
}

impl Default for TopologySettings {
    fn default() -> Self {
        TopologySettings {
            duplicate_window: Duration::from_secs(120),
            max_age: Duration::ZERO,
            max_bytes: -1,
            replicas: 1,
            idempotency_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

fn stream_config(name: &str, subjects: &str, description: &str, s: &TopologySettings) -> stream::Config {
    stream::Config {
        name: name.to_string(),
        description: Some(description.to_string()),
        subjects: vec![subjects.to_string()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::New,
        duplicate_window: s.duplicate_window,
        max_age: s.max_age,
        max_bytes: s.max_bytes,
        num_replicas: s.replicas,
        allow_direct: true,
        ..Default::default()
    }
}

pub fn orders_stream_config(s: &TopologySettings) -> stream::Config {
    stream_config(ORDERS_STREAM, ORDERS_SUBJECTS, "Accepted orders and order commands", s)
}

pub fn order_events_stream_config(s: &TopologySettings) -> stream::Config {
    stream_config(ORDER_EVENTS_STREAM, ORDER_EVENTS_SUBJECTS, "Order status events, one per state change", s)
}

pub fn idempotency_bucket_config(s: &TopologySettings) -> kv::Config {
    kv::Config {
        bucket: IDEMPOTENCY_BUCKET.to_string(),
        description: "Idempotency-Key to order id and request hash".to_string(),
        history: 1,
        max_age: s.idempotency_ttl,
        storage: stream::StorageType::File,
        num_replicas: s.replicas,
        ..Default::default()
    }
}

/// Creates or updates every stream and bucket; safe to call from every role
/// at every start.
pub async fn ensure_topology(js: &jetstream::Context, s: &TopologySettings) -> Result<(), BrokerError> {
    for config in [orders_stream_config(s), order_events_stream_config(s)] {
        let name = config.name.clone();
        js.create_or_update_stream(config).await.map_err(|source| BrokerError::Stream { name, source })?;
    }
    js.create_or_update_key_value(idempotency_bucket_config(s))
        .await
        .map_err(|source| BrokerError::KeyValue { name: IDEMPOTENCY_BUCKET.to_string(), source })?;
    Ok(())
}
