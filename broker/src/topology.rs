//! Streams and buckets. Every role creates what is missing at start-up, so
//! any role can start first; none changes what exists, so a role started
//! with other flags (a CLI run without `--stream-replicas` against a
//! three-node cluster, say) cannot lower replicas, shorten retention or the
//! dedup window. A change is made on purpose: [`plan`] lists the
//! differences and [`apply`] makes them (`orderstream streams apply`).

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

use crate::BrokerError;

/// Submitted orders (`orders.submitted.{order_id}`) and commands (`orders.commands.…`).
pub const ORDERS_STREAM: &str = "ORDERS";
pub const ORDERS_SUBJECTS: &str = "orders.>";
/// Every submitted order (not the commands): the analytics job's and the
/// audit's filter.
pub const ORDERS_SUBMITTED_SUBJECTS: &str = "orders.submitted.>";
/// Every submitted order, for a plain (core NATS) subscriber.
pub const ORDERS_SUBMITTED_WILDCARD: &str = "orders.submitted.*";
const ORDERS_SUBMITTED_PREFIX: &str = "orders.submitted.";
const ORDER_COMMANDS_PREFIX: &str = "orders.commands.";
/// Status events emitted by the processor, one per state change.
pub const ORDER_EVENTS_STREAM: &str = "ORDER_EVENTS";
pub const ORDER_EVENTS_SUBJECTS: &str = "order_events.>";
/// Idempotency-Key → the order it created; lives far longer than the dedup window.
pub const IDEMPOTENCY_BUCKET: &str = "IDEMPOTENCY";
/// Stock audit events (adjustments, refused adjustments).
pub const STOCK_EVENTS_STREAM: &str = "STOCK_EVENTS";
pub const STOCK_EVENTS_SUBJECTS: &str = "stock_events.>";
/// Messages the processor could not use, with the reason, for inspection and retry.
pub const DLQ_STREAM: &str = "ORDERS_DLQ";
pub const DLQ_SUBJECTS: &str = "orders_dlq.>";
const DLQ_PREFIX: &str = "orders_dlq.";

/// `orders_dlq.{subject it came from}`.
pub fn dlq_subject(source: &str) -> String {
    format!("{DLQ_PREFIX}{source}")
}

/// The subject a dead letter came from.
pub fn dlq_source(subject: &str) -> &str {
    subject.strip_prefix(DLQ_PREFIX).unwrap_or(subject)
}
/// Stock commands (set, adjust) ride in ORDERS so they are ordered with orders.
pub const STOCK_COMMAND_SUBJECT: &str = "orders.stock";
/// The read model: `{customer}.{order_id}` → the order's live state. Keyed
/// by customer first so a customer's orders are one scan.
pub const ORDER_VIEW_BUCKET: &str = "ORDER_VIEW";
/// Product id → stock level, as the processor last committed it.
pub const STOCK_BUCKET: &str = "STOCK";
/// Product id → name, category, list price.
pub const CATALOG_BUCKET: &str = "CATALOG";
/// Who runs the order engine right now (an entry that expires unless renewed).
pub const LEASE_BUCKET: &str = "PROCESSOR_LEASE";
/// Every admin action (reviews, bulk actions, stock, DLQ retries, exports,
/// key changes): who, what, and the answer.
pub const ADMIN_AUDIT_STREAM: &str = "ADMIN_AUDIT";
pub const ADMIN_AUDIT_SUBJECTS: &str = "admin_audit.>";

/// `admin_audit.{action}`.
pub fn admin_audit_subject(action: &str) -> String {
    format!("admin_audit.{action}")
}

/// API keys (hashed) with their roles, and the tracking links' secret.
pub const API_KEYS_BUCKET: &str = "API_KEYS";
/// Request counts per key and per customer per minute, shared by every
/// ingest instance; entries expire after two minutes.
pub const RATE_LIMIT_BUCKET: &str = "RATE_LIMITS";
/// The order engine's snapshots: its state at a stream sequence.
pub const SNAPSHOT_BUCKET: &str = "PROCESSOR_SNAPSHOTS";

pub fn order_command_subject(order_id: impl std::fmt::Display, command: &str) -> String {
    format!("{ORDER_COMMANDS_PREFIX}{order_id}.{command}")
}

/// What a message on `ORDERS` is, by its subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrdersSubject {
    /// `orders.submitted.{order_id}`: an accepted order.
    Submitted,
    /// `orders.commands.{order_id}.{command}`: a command on an order.
    Command,
    /// `orders.stock`: a stock change.
    Stock,
    /// Anything else under `orders.>`: nobody's message.
    Unknown,
}

impl OrdersSubject {
    pub fn of(subject: &str) -> OrdersSubject {
        if subject.starts_with(ORDERS_SUBMITTED_PREFIX) {
            OrdersSubject::Submitted
        } else if subject.starts_with(ORDER_COMMANDS_PREFIX) {
            OrdersSubject::Command
        } else if subject == STOCK_COMMAND_SUBJECT {
            OrdersSubject::Stock
        } else {
            OrdersSubject::Unknown
        }
    }
}

/// `order_events.{order_id}.{status|refund|rejected}`: one subject per order
/// and outcome, so an order's timeline is a handful of direct gets.
pub fn order_event_subject(order_id: impl std::fmt::Display, suffix: &str) -> String {
    format!("order_events.{order_id}.{suffix}")
}

/// `order_events.*.{suffix}`: every order's events of one kind (a status
/// reached, say), for a consumer that acts on that kind only.
pub fn order_events_with_suffix(suffix: &str) -> String {
    order_event_subject("*", suffix)
}

/// `KV_{bucket}`: the stream that holds a key-value bucket.
pub fn kv_stream_name(bucket: &str) -> String {
    format!("KV_{bucket}")
}

/// `$KV.{bucket}.`: the subject prefix of a key-value bucket's entries.
pub fn kv_subject_prefix(bucket: &str) -> String {
    format!("$KV.{bucket}.")
}

/// `stock_events.changed.{request}`: a stock change's outcome, one subject
/// per request id (the caller's `Idempotency-Key`), so a retried request
/// finds the outcome of the first with a direct get.
pub fn stock_event_subject(request_id: &str) -> String {
    format!("stock_events.changed.{}", kv_key(request_id))
}

/// The ORDER_VIEW key of an order.
pub fn order_view_key(customer_id: &str, order_id: impl std::fmt::Display) -> String {
    format!("{}.{order_id}", kv_key(customer_id))
}

/// A key-value key for any printable id: the id itself when it is already a
/// valid key, else `h_` and its SHA-256, so distinct ids never collide.
pub fn kv_key(id: &str) -> String {
    let safe = !id.is_empty()
        && id.len() <= 200
        && !id.starts_with(['.', 'h'])
        && !id.ends_with('.')
        && !id.contains("..")
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b));
    if safe {
        return id.to_string();
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id.as_bytes());
    format!("h_{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// One subject per order lets `GET /api/orders/{id}` and idempotent replays
/// find an order by id with a direct get, without a second write.
pub fn order_submitted_subject(order_id: impl std::fmt::Display) -> String {
    format!("{ORDERS_SUBMITTED_PREFIX}{order_id}")
}

/// Why an accepted order could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum AcceptedOrderError {
    #[error("cannot read the ORDERS stream: {0}")]
    Read(String),
    #[error("undecodable order at ORDERS sequence {seq}: {message}")]
    Undecodable { seq: u64, message: String },
}

/// The accepted order `order_id` and its ORDERS sequence, if it is in the
/// stream: one direct get of its own subject. Ingest answers `GET
/// /api/orders/{id}` and idempotent replays with it, the processor's API
/// its reads and commands.
pub async fn accepted_order<T: serde::de::DeserializeOwned, I>(
    orders: &jetstream::stream::Stream<I>,
    order_id: impl std::fmt::Display,
) -> Result<Option<(T, u64)>, AcceptedOrderError> {
    match orders.direct_get_last_for_subject(order_submitted_subject(order_id)).await {
        Ok(message) => {
            let order = serde_json::from_slice(&message.payload)
                .map_err(|e| AcceptedOrderError::Undecodable { seq: message.sequence, message: e.to_string() })?;
            Ok(Some((order, message.sequence)))
        }
        Err(e) if e.kind() == jetstream::stream::DirectGetErrorKind::NotFound => Ok(None),
        Err(e) => Err(AcceptedOrderError::Read(e.to_string())),
    }
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

pub fn stock_events_stream_config(s: &TopologySettings) -> stream::Config {
    stream_config(STOCK_EVENTS_STREAM, STOCK_EVENTS_SUBJECTS, "Stock adjustments, the audit trail of inventory", s)
}

pub fn dlq_stream_config(s: &TopologySettings) -> stream::Config {
    stream_config(DLQ_STREAM, DLQ_SUBJECTS, "Messages the processor could not use, with the reason", s)
}

fn bucket(name: &str, description: &str, history: i64, max_age: Duration, s: &TopologySettings) -> kv::Config {
    kv::Config {
        bucket: name.to_string(),
        description: description.to_string(),
        history,
        max_age,
        storage: stream::StorageType::File,
        num_replicas: s.replicas,
        ..Default::default()
    }
}

/// How long an engine lease lives without renewal: the failover time.
pub const LEASE_TTL: Duration = Duration::from_secs(3);

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

/// One setting of one stream or bucket that differs from what is wanted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// `stream ORDERS`, `bucket IDEMPOTENCY`.
    pub resource: String,
    pub setting: &'static str,
    pub current: String,
    pub wanted: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {} -> {}", self.resource, self.setting, self.current, self.wanted)
    }
}

pub fn admin_audit_stream_config(s: &TopologySettings) -> stream::Config {
    stream_config(ADMIN_AUDIT_STREAM, ADMIN_AUDIT_SUBJECTS, "Admin actions: who, what, the answer", s)
}

fn stream_configs(s: &TopologySettings) -> [stream::Config; 5] {
    [
        orders_stream_config(s),
        order_events_stream_config(s),
        stock_events_stream_config(s),
        dlq_stream_config(s),
        admin_audit_stream_config(s),
    ]
}

/// Counters that matter for a minute or two: in memory, expiring.
fn rate_limit_bucket_config(s: &TopologySettings) -> kv::Config {
    kv::Config {
        storage: stream::StorageType::Memory,
        ..bucket(RATE_LIMIT_BUCKET, "Requests per key and per customer per minute", 1, Duration::from_secs(120), s)
    }
}

fn bucket_configs(s: &TopologySettings) -> [kv::Config; 7] {
    [
        idempotency_bucket_config(s),
        bucket(ORDER_VIEW_BUCKET, "Customer and order id to live order state", 1, Duration::ZERO, s),
        bucket(STOCK_BUCKET, "Product id to stock level", 1, Duration::ZERO, s),
        bucket(CATALOG_BUCKET, "Product id to name, category and price", 1, Duration::ZERO, s),
        bucket(LEASE_BUCKET, "The order engine's leader lease", 1, LEASE_TTL, s),
        bucket(
            API_KEYS_BUCKET,
            "API key hash to name, role and grants; the tracking-link secret",
            5,
            Duration::ZERO,
            s,
        ),
        rate_limit_bucket_config(s),
    ]
}

/// Whether looking a stream up failed because it does not exist.
fn missing(e: &jetstream::context::GetStreamError) -> bool {
    matches!(
        e.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(inner)
            if inner.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

fn seconds(d: Duration) -> String {
    if d.is_zero() { "forever".into() } else { format!("{}s", d.as_secs()) }
}

/// The settings a role's flags control, as they differ between `current`
/// and `wanted`.
fn stream_differences(current: &stream::Config, wanted: &stream::Config) -> Vec<Difference> {
    let resource = format!("stream {}", wanted.name);
    let mut out = Vec::new();
    let mut differ = |setting, current: String, wanted: String| {
        if current != wanted {
            out.push(Difference { resource: resource.clone(), setting, current, wanted });
        }
    };
    differ("replicas", current.num_replicas.to_string(), wanted.num_replicas.to_string());
    differ("max_age", seconds(current.max_age), seconds(wanted.max_age));
    differ("max_bytes", current.max_bytes.to_string(), wanted.max_bytes.to_string());
    differ("duplicate_window", seconds(current.duplicate_window), seconds(wanted.duplicate_window));
    out
}

/// What differs between the streams and buckets on the server and `s`
/// (what is missing is not a difference: any role creates it).
pub async fn plan(js: &jetstream::Context, s: &TopologySettings) -> Result<Vec<Difference>, BrokerError> {
    let mut out = Vec::new();
    for wanted in stream_configs(s) {
        let name = wanted.name.clone();
        match js.get_stream(&name).await {
            Ok(mut stream) => {
                let info = stream
                    .info()
                    .await
                    .map_err(|e| BrokerError::Inspect { name: name.clone(), message: e.to_string() })?;
                out.extend(stream_differences(&info.config, &wanted));
            }
            Err(e) if missing(&e) => {}
            Err(e) => return Err(BrokerError::Inspect { name, message: e.to_string() }),
        }
    }
    for wanted in bucket_configs(s) {
        let name = wanted.bucket.clone();
        let Ok(mut stream) = js.get_stream(format!("KV_{name}")).await else { continue };
        let info =
            stream.info().await.map_err(|e| BrokerError::Inspect { name: name.clone(), message: e.to_string() })?;
        let resource = format!("bucket {name}");
        let current = &info.config;
        for (setting, now, want) in [
            ("replicas", current.num_replicas.to_string(), wanted.num_replicas.to_string()),
            ("max_age", seconds(current.max_age), seconds(wanted.max_age)),
        ] {
            if now != want {
                out.push(Difference { resource: resource.clone(), setting, current: now, wanted: want });
            }
        }
    }
    Ok(out)
}

/// Makes the streams and buckets match `s`: the explicit change behind
/// `orderstream streams apply --yes`.
pub async fn apply(js: &jetstream::Context, s: &TopologySettings) -> Result<(), BrokerError> {
    for config in stream_configs(s) {
        let name = config.name.clone();
        js.create_or_update_stream(config).await.map_err(|source| BrokerError::Stream { name, source })?;
    }
    for config in bucket_configs(s) {
        let name = config.bucket.clone();
        js.create_or_update_key_value(config).await.map_err(|source| BrokerError::KeyValue { name, source })?;
    }
    ensure_topology(js, s).await
}

/// Creates every stream and bucket that is missing and leaves the rest as
/// it is, warning when its settings differ from this role's flags; safe to
/// call from every role at every start.
pub async fn ensure_topology(js: &jetstream::Context, s: &TopologySettings) -> Result<(), BrokerError> {
    for config in stream_configs(s) {
        let name = config.name.clone();
        match js.get_stream(&name).await {
            Ok(_) => {}
            Err(e) if missing(&e) => {
                js.get_or_create_stream(config).await.map_err(|source| BrokerError::Stream { name, source })?;
            }
            Err(e) => return Err(BrokerError::Inspect { name, message: e.to_string() }),
        }
    }
    for config in bucket_configs(s) {
        let name = config.bucket.clone();
        if js.get_key_value(&name).await.is_err() {
            js.create_key_value(config).await.map_err(|source| BrokerError::KeyValue { name, source })?;
        }
    }
    let snapshots = jetstream::object_store::Config {
        bucket: SNAPSHOT_BUCKET.to_string(),
        description: Some("Order engine snapshots".to_string()),
        storage: stream::StorageType::File,
        num_replicas: s.replicas,
        ..Default::default()
    };
    if js.get_object_store(SNAPSHOT_BUCKET).await.is_err() {
        js.create_object_store(snapshots)
            .await
            .map_err(|e| BrokerError::ObjectStore { name: SNAPSHOT_BUCKET.to_string(), message: e.to_string() })?;
    }
    if let Ok(differences) = plan(js, s).await
        && !differences.is_empty()
    {
        let list: Vec<String> = differences.iter().map(ToString::to_string).collect();
        tracing::warn!(
            differences = %list.join("; "),
            "the streams differ from this role's flags and are left as they are; `orderstream streams apply` changes them"
        );
    }
    Ok(())
}
