//! Runs the engine against NATS: one active instance at a time (a lease in
//! the PROCESSOR_LEASE bucket), reading ORDERS in order from the last
//! snapshot, publishing each batch's effects, then snapshotting.
//!
//! The order of the steps is the exactly-once argument:
//! 1. apply a batch of inputs in memory;
//! 2. publish its events (with deterministic ids) and write its read models;
//! 3. only then, now and then, snapshot the engine with its last sequence
//!    and how far each output stream had come.
//!
//! A crash anywhere re-applies the inputs after the last snapshot. They give
//! the same events with the same ids and the same read-model values. Before
//! re-applying, the new leader reads the ids published after the snapshot's
//! output positions ([`crate::resume`]) and does not publish those again, so
//! no event is stored twice whatever the length of the outage (JetStream's
//! own dedup window, two minutes, covers only the race with a deposed
//! leader that keeps running for a moment: it produces the same bytes, and
//! finds out at its next lease renewal and stops).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, kv, message::PublishMessage, object_store};
use bytes::Bytes;
use futures::{FutureExt, StreamExt, TryStreamExt};
use serde::Serialize;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use broker::{
    CATALOG_BUCKET, LEASE_BUCKET, ORDER_VIEW_BUCKET, ORDERS_STREAM, SNAPSHOT_BUCKET, STOCK_BUCKET, kv_key,
    order_event_subject, order_view_key,
};

use crate::ProcessorError;
use crate::dlq;
use crate::engine::{Effects, Engine, EngineConfig, Input};
use crate::metrics::Metrics;
use crate::resume::{Outputs, Since};
use schemas::records::{LeaseValue, StockEntry};

pub const LEASE_KEY: &str = "engine";
const SNAPSHOT_OBJECT: &str = "engine";
const RENEW_EVERY: Duration = Duration::from_millis(1000);

#[derive(Clone, Debug)]
pub struct RunnerSettings {
    pub engine: EngineConfig,
    pub snapshot_every: Duration,
    pub max_batch: usize,
    /// This instance's name in the lease.
    pub instance: String,
}

impl RunnerSettings {
    /// How often the engine snapshots its state unless configured.
    pub const DEFAULT_SNAPSHOT_EVERY: Duration = Duration::from_secs(2);
}

pub struct Runner {
    pub(crate) js: jetstream::Context,
    pub(crate) settings: RunnerSettings,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) health: server::health::Health,
}

/// The name the engine reports its health under.
pub const HEALTH_NAME: &str = "engine";

struct Stores {
    lease: kv::Store,
    views: kv::Store,
    stock: kv::Store,
    snapshots: object_store::ObjectStore,
}

fn nats<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> ProcessorError {
    move |e| ProcessorError::Nats { what, message: e.to_string() }
}

impl Runner {
    async fn stores(&self) -> Result<Stores, ProcessorError> {
        let js = &self.js;
        // The catalog is not written here, but it must exist for the API.
        js.get_key_value(CATALOG_BUCKET).await.map_err(nats("open CATALOG"))?;
        Ok(Stores {
            lease: js.get_key_value(LEASE_BUCKET).await.map_err(nats("open PROCESSOR_LEASE"))?,
            views: js.get_key_value(ORDER_VIEW_BUCKET).await.map_err(nats("open ORDER_VIEW"))?,
            stock: js.get_key_value(STOCK_BUCKET).await.map_err(nats("open STOCK"))?,
            snapshots: js.get_object_store(SNAPSHOT_BUCKET).await.map_err(nats("open PROCESSOR_SNAPSHOTS"))?,
        })
    }

    /// Stands by until it holds the lease, leads until it loses it or is
    /// told to stop, and stands by again.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), ProcessorError> {
        self.health.standby(HEALTH_NAME, "opening the engine's buckets");
        let stores = loop {
            match self.stores().await {
                Ok(stores) => break stores,
                Err(err) => {
                    tracing::warn!(%err, "engine cannot open its stores yet");
                    self.health.failing(HEALTH_NAME, format!("cannot open its stores: {err}"));
                    if wait_or_shutdown(&mut shutdown, Duration::from_millis(500)).await {
                        return Ok(());
                    }
                }
            }
        };
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            match stores.lease.create(LEASE_KEY, self.lease_value(0)).await {
                Ok(revision) => {
                    tracing::info!(instance = %self.settings.instance, "leading the order engine");
                    self.metrics.engine_leader.set(1);
                    let result = self.lead(&stores, revision, &mut shutdown).await;
                    self.metrics.engine_leader.set(0);
                    match result {
                        Ok(()) => return Ok(()),
                        Err(ProcessorError::LeaseLost(why)) => {
                            tracing::warn!(%why, "engine lost its lease; standing by");
                            self.health.standby(HEALTH_NAME, format!("lost the lease ({why}); standing by"));
                        }
                        Err(err) => {
                            // Stood down: it retries once the lease expires,
                            // from the last snapshot, and nothing is lost or
                            // published twice meanwhile.
                            tracing::error!(%err, "engine stopped leading; retrying");
                            self.metrics.engine_failures.inc();
                            self.health.failing(HEALTH_NAME, format!("stopped leading: {err}; retrying"));
                        }
                    }
                }
                Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => {
                    if !self.failing() {
                        let leader = self.current_leader(&stores).await;
                        self.health.standby(HEALTH_NAME, format!("{leader} leads the engine; standing by"));
                    }
                }
                Err(err) => {
                    tracing::debug!(%err, "cannot take the engine lease");
                    self.health.failing(HEALTH_NAME, format!("cannot take the engine lease: {err}"));
                }
            }
            if wait_or_shutdown(&mut shutdown, Duration::from_millis(250)).await {
                return Ok(());
            }
        }
    }

    fn failing(&self) -> bool {
        self.health.parts().get(HEALTH_NAME).is_some_and(|c| c.state == server::health::ComponentState::Failing)
    }

    async fn current_leader(&self, stores: &Stores) -> String {
        match stores.lease.get(LEASE_KEY).await {
            Ok(Some(bytes)) => serde_json::from_slice::<LeaseValue>(&bytes)
                .map(|l| format!("instance {}", l.instance))
                .unwrap_or_else(|_| "another instance".into()),
            _ => "another instance".into(),
        }
    }

    /// The engine as last snapshotted (or new), and where its outputs stood.
    async fn load_snapshot(&self, stores: &Stores) -> Result<(Engine, Since), ProcessorError> {
        let config = self.settings.engine.clone();
        match stores.snapshots.get(SNAPSHOT_OBJECT).await {
            Ok(mut object) => {
                let mut bytes = Vec::new();
                object.read_to_end(&mut bytes).await.map_err(nats("read the engine snapshot"))?;
                let mut engine: Engine = serde_json::from_slice(&bytes)
                    .map_err(|e| ProcessorError::Snapshot(format!("undecodable snapshot: {e}")))?;
                engine.reconfigure(config);
                tracing::info!(last_seq = engine.last_seq, live = engine.live_orders(), "engine resumed from snapshot");
                let since = match engine.outputs {
                    Some(positions) => Since::Positions(positions),
                    // Written before positions were kept: what was published
                    // from a while before the snapshot was stored.
                    None => {
                        let stored = object.info.modified.map_or(0, |t| t.timestamp());
                        let at = chrono::DateTime::from_timestamp(stored - 120, 0).unwrap_or_default();
                        Since::Time(at)
                    }
                };
                Ok((engine, since))
            }
            Err(err) if err.kind() == object_store::GetErrorKind::NotFound => {
                Ok((Engine::new(config), Since::Beginning))
            }
            Err(err) => Err(nats("read the engine snapshot")(err)),
        }
    }

    /// Reads what the last leader published after the snapshot.
    async fn resume_outputs(&self, since: Since) -> Result<Outputs, ProcessorError> {
        let mut orders = self.js.get_stream(ORDERS_STREAM).await.map_err(nats("open ORDERS"))?;
        let orders_last = orders.info().await.map_err(nats("read ORDERS' state"))?.state.last_sequence;
        let outputs = Outputs::resume(&self.js, since, orders_last).await?;
        if outputs.pending() > 0 {
            tracing::info!(
                already_published = outputs.pending(),
                until_seq = orders_last,
                "events published after the snapshot will not be published again"
            );
        }
        Ok(outputs)
    }

    async fn lead(
        &self,
        stores: &Stores,
        mut revision: u64,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), ProcessorError> {
        let (mut engine, since) = self.load_snapshot(stores).await?;
        let mut outputs = self.resume_outputs(since).await?;
        let deliver_policy = match engine.last_seq {
            0 => consumer::DeliverPolicy::All,
            seq => consumer::DeliverPolicy::ByStartSequence { start_sequence: seq + 1 },
        };
        let orders = self.js.get_stream_no_info(ORDERS_STREAM).await.map_err(nats("open ORDERS"))?;
        let consumer = orders
            .create_consumer(consumer::pull::OrderedConfig { deliver_policy, ..Default::default() })
            .await
            .map_err(nats("create the engine's ordered consumer"))?;
        let mut messages = consumer.messages().await.map_err(nats("read ORDERS"))?;
        let mut renewed = Instant::now();
        let mut snapshotted = Instant::now();
        let mut snapshot_seq = engine.last_seq;
        let mut healthy = false;
        loop {
            if renewed.elapsed() >= RENEW_EVERY {
                revision = self.renew(stores, revision, engine.last_seq).await?;
                renewed = Instant::now();
            }
            let first = tokio::select! {
                next = tokio::time::timeout(Duration::from_millis(200), messages.next()) => next,
                _ = shutdown.changed() => {
                    // A last snapshot and the lease back, if NATS answers in
                    // time; if not, the next leader simply replays a little more.
                    let farewell = async {
                        self.snapshot(stores, &mut engine, &mut outputs).await?;
                        let _ = stores.lease.delete(LEASE_KEY).await;
                        Ok::<(), ProcessorError>(())
                    };
                    match tokio::time::timeout(Duration::from_secs(3), farewell).await {
                        Ok(Err(err)) => tracing::warn!(%err, "no final snapshot"),
                        Err(_) => tracing::warn!("no final snapshot: NATS did not answer in time"),
                        Ok(Ok(())) => {}
                    }
                    return Ok(());
                }
            };
            let mut fx = Effects::default();
            // Messages applied, and the few the engine could not use (kept
            // for the dead-letter stream).
            let mut applied = 0_usize;
            let mut poisoned: HashMap<u64, jetstream::Message> = HashMap::new();
            let started = Instant::now();
            if let Ok(next) = first {
                let mut next = next;
                loop {
                    match next {
                        Some(Ok(message)) => {
                            self.apply(&mut engine, message, &mut fx, &mut poisoned);
                            applied += 1;
                        }
                        Some(Err(err)) => return Err(nats("read ORDERS")(err)),
                        None => return Err(ProcessorError::ConsumerEnded(broker::ORDERS_STREAM)),
                    }
                    if applied >= self.settings.max_batch {
                        break;
                    }
                    match messages.next().now_or_never() {
                        Some(more) => next = more,
                        None => break,
                    }
                }
            }
            if !fx.is_empty() {
                self.commit(stores, &engine, &fx, &poisoned, &mut outputs).await?;
                self.metrics.record_batch(&fx, applied, started.elapsed());
            }
            if snapshotted.elapsed() >= self.settings.snapshot_every && engine.last_seq > snapshot_seq {
                // Renewing first proves we still lead: no stale snapshot
                // from a deposed leader.
                revision = self.renew(stores, revision, engine.last_seq).await?;
                renewed = Instant::now();
                self.snapshot(stores, &mut engine, &mut outputs).await?;
                snapshotted = Instant::now();
                snapshot_seq = engine.last_seq;
            }
            self.metrics.engine_position.set(engine.last_seq as i64);
            if !healthy {
                self.health.ok(HEALTH_NAME, format!("leading ({})", self.settings.instance));
                healthy = true;
            }
        }
    }

    fn lease_value(&self, position: u64) -> Bytes {
        let value = LeaseValue { instance: self.settings.instance.clone(), position };
        serde_json::to_vec(&value).map(Bytes::from).unwrap_or_default()
    }

    async fn renew(&self, stores: &Stores, revision: u64, position: u64) -> Result<u64, ProcessorError> {
        stores
            .lease
            .update(LEASE_KEY, self.lease_value(position), revision)
            .await
            .map_err(|e| ProcessorError::LeaseLost(e.to_string()))
    }

    async fn snapshot(
        &self,
        stores: &Stores,
        engine: &mut Engine,
        outputs: &mut Outputs,
    ) -> Result<(), ProcessorError> {
        engine.outputs = Some(outputs.positions(engine.last_seq));
        let bytes =
            serde_json::to_vec(engine).map_err(|source| ProcessorError::Encode { what: "a snapshot", source })?;
        stores
            .snapshots
            .put(SNAPSHOT_OBJECT, &mut bytes.as_slice())
            .await
            .map_err(nats("write the engine snapshot"))?;
        tracing::debug!(last_seq = engine.last_seq, bytes = bytes.len(), "engine snapshot written");
        Ok(())
    }

    fn apply(
        &self,
        engine: &mut Engine,
        message: jetstream::Message,
        fx: &mut Effects,
        poisoned: &mut HashMap<u64, jetstream::Message>,
    ) {
        let Ok(info) = message.info() else {
            tracing::error!(subject = %message.subject, "ORDERS message without JetStream metadata");
            return;
        };
        let (seq, at) = (info.stream_sequence, info.published);
        let poison_before = fx.poison.len();
        match decode(&message.subject, &message.payload) {
            Ok(input) => engine.apply(seq, at, input, fx),
            Err(reason) => engine.skip(seq, reason, fx),
        }
        if fx.poison.len() > poison_before {
            poisoned.insert(seq, message);
        }
    }

    /// Makes a batch's effects durable: events first (the record of what
    /// happened), then the read models that summarise them. Effects a
    /// previous leader already published are not published again.
    async fn commit(
        &self,
        stores: &Stores,
        engine: &Engine,
        fx: &Effects,
        poisoned: &HashMap<u64, jetstream::Message>,
        outputs: &mut Outputs,
    ) -> Result<(), ProcessorError> {
        let mut acks = Vec::with_capacity(fx.events.len() + fx.stock_events.len());
        for event in &fx.events {
            if outputs.already_published(&event.event_id) {
                continue;
            }
            let subject = order_event_subject(event.order_id, event.subject_suffix());
            acks.push(self.publish_json(subject, &event.event_id, event).await?);
        }
        for event in &fx.stock_events {
            if outputs.already_published(&event.event_id) {
                continue;
            }
            let subject = broker::stock_event_subject(event.request_id());
            acks.push(self.publish_json(subject, &event.event_id, event).await?);
        }
        for poison in &fx.poison {
            if let Some(message) = poisoned.get(&poison.seq) {
                if outputs.already_published(&dlq::message_id("engine", message.subject.as_str(), poison.seq)) {
                    continue;
                }
                acks.push(dlq::send(&self.js, "engine", message, poison.seq, &poison.reason).await?);
                self.metrics.dead_lettered.inc();
            }
        }
        let acked = futures::future::try_join_all(acks.into_iter().map(|ack| ack.into_future()))
            .await
            .map_err(nats("confirm published events"))?;
        for ack in &acked {
            outputs.acked(&ack.stream, ack.sequence);
        }
        self.metrics.resume_skipped.set(outputs.skipped as i64);

        let mut writes = Vec::new();
        for (id, state) in &fx.views {
            let value =
                serde_json::to_vec(state).map_err(|source| ProcessorError::Encode { what: "an order view", source })?;
            writes.push(stores.views.put(order_view_key(&state.order.customer_id, id), value.into()).boxed());
        }
        for product_id in &fx.stock {
            let entry = StockEntry { product_id: product_id.clone(), level: engine.inventory().level(product_id) };
            let value = serde_json::to_vec(&entry)
                .map_err(|source| ProcessorError::Encode { what: "a stock level", source })?;
            writes.push(stores.stock.put(kv_key(product_id), value.into()).boxed());
        }
        futures::stream::iter(writes)
            .buffer_unordered(512)
            .try_collect::<Vec<u64>>()
            .await
            .map_err(nats("write the read models"))?;
        Ok(())
    }
}

impl Runner {
    /// Sends one JSON message with its dedup id; the ack is awaited by the caller.
    async fn publish_json<T: Serialize>(
        &self,
        subject: String,
        id: &str,
        value: &T,
    ) -> Result<jetstream::context::PublishAckFuture, ProcessorError> {
        let payload =
            serde_json::to_vec(value).map_err(|source| ProcessorError::Encode { what: "an event", source })?;
        let publish = PublishMessage::build().payload(payload.into()).message_id(id);
        self.js.send_publish(subject, publish).await.map_err(nats("publish an event"))
    }
}

/// Decodes an ORDERS message by its subject.
fn decode(subject: &str, payload: &[u8]) -> Result<Input, String> {
    use broker::OrdersSubject;
    let parsed = match OrdersSubject::of(subject) {
        OrdersSubject::Submitted => serde_json::from_slice(payload).map(|o| Input::Order(Box::new(o))),
        OrdersSubject::Command => serde_json::from_slice(payload).map(Input::Command),
        OrdersSubject::Stock => serde_json::from_slice(payload).map(Input::Stock),
        OrdersSubject::Unknown => return Err(format!("no handler for subject {subject}")),
    };
    parsed.map_err(|e| format!("undecodable {subject}: {e}"))
}

/// Sleeps, returning true early if shutdown was requested.
pub(crate) async fn wait_or_shutdown(shutdown: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => *shutdown.borrow(),
        changed = shutdown.changed() => changed.is_err() || *shutdown.borrow(),
    }
}
