//! Payment and fulfilment: the steps that take time. Every instance runs
//! them, sharing durable pull consumers on ORDER_EVENTS. A worker's result
//! goes back into ORDERS as a command with a deterministic id, so the engine
//! applies it in log order, and a redelivered event or a worker killed
//! mid-step cannot produce a second charge or a second shipment.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, message::PublishMessage};
use chrono::Utc;
use futures::StreamExt;
use tokio::sync::{Semaphore, watch};

use broker::{ORDER_EVENTS_STREAM, order_command_subject};
use schemas::{OrderCommand, OrderCommandEnvelope, OrderEvent, OrderStatus};

use crate::ProcessorError;
use crate::dlq;
use crate::metrics::Metrics;
use crate::runner::wait_or_shutdown;

/// Deliveries of one event before it is dead-lettered.
const MAX_DELIVER: i64 = 10;

#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Share of payments the simulated provider declines (0.05 = 5%).
    pub payment_failure_rate: f64,
    pub payment_latency: Duration,
    /// Delays before processing, shipped and delivered; `None` stops orders
    /// at `confirmed` (fulfilment switched off).
    pub fulfilment_delays: Option<[Duration; 3]>,
    /// Seed of the simulated provider's decisions.
    pub seed: u64,
    /// Events handled at once per worker.
    pub concurrency: usize,
    /// How long a worker may hold an event before it is redelivered.
    pub ack_wait: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            payment_failure_rate: 0.05,
            payment_latency: Duration::from_millis(20),
            fulfilment_delays: Some([
                Duration::from_millis(500),
                Duration::from_millis(1500),
                Duration::from_millis(3000),
            ]),
            seed: 0,
            concurrency: 2048,
            ack_wait: Duration::from_secs(5),
        }
    }
}

/// splitmix64: a fast, well-mixed, stable hash of a u64, for decisions that
/// must be the same every time they are made (payment answers, load mixes).
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The simulated provider's answer: the same for an order every time, so a
/// retried charge is the same charge.
pub fn payment_approved(order_id: uuid::Uuid, seed: u64, failure_rate: f64) -> bool {
    let (hi, lo) = order_id.as_u64_pair();
    let draw = (splitmix64(hi ^ splitmix64(lo ^ seed)) >> 11) as f64 / (1u64 << 53) as f64;
    draw >= failure_rate
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Payments,
    Fulfilment,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Payments, Role::Fulfilment];

    /// The durable consumer's name on ORDER_EVENTS.
    pub fn durable(self) -> &'static str {
        match self {
            Role::Payments => "payments",
            Role::Fulfilment => "fulfilment",
        }
    }

    fn filters(self) -> Vec<String> {
        use schemas::OrderStatus::{Confirmed, Processing, Reserved, Shipped};
        let statuses: &[schemas::OrderStatus] = match self {
            Role::Payments => &[Reserved],
            Role::Fulfilment => &[Confirmed, Processing, Shipped],
        };
        statuses.iter().map(|s| broker::order_events_with_suffix(s.as_str())).collect()
    }
}

pub struct Worker {
    pub(crate) js: jetstream::Context,
    pub(crate) settings: WorkerSettings,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) role: Role,
}

impl Worker {
    /// The command this event calls for, and when it is due.
    fn next_step(&self, event: &OrderEvent) -> Option<(OrderCommand, Duration)> {
        let to = event.new_status()?;
        let s = &self.settings;
        match (self.role, to) {
            (Role::Payments, OrderStatus::Reserved) => {
                let approved = payment_approved(event.order_id, s.seed, s.payment_failure_rate);
                let charge_id = format!("ch_{}", event.order_id.simple());
                Some((OrderCommand::Payment { approved, charge_id }, s.payment_latency))
            }
            (Role::Fulfilment, from) => {
                let delays = s.fulfilment_delays?;
                let (next, delay) = match from {
                    OrderStatus::Confirmed => (OrderStatus::Processing, delays[0]),
                    OrderStatus::Processing => (OrderStatus::Shipped, delays[1]),
                    OrderStatus::Shipped => (OrderStatus::Delivered, delays[2]),
                    _ => return None,
                };
                Some((OrderCommand::Advance { to: next }, delay))
            }
            _ => None,
        }
    }

    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), ProcessorError> {
        let this = Arc::new(self);
        let permits = Arc::new(Semaphore::new(this.settings.concurrency));
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            match this.consume(&permits, &mut shutdown).await {
                Ok(()) => return Ok(()),
                Err(err) => {
                    tracing::warn!(%err, worker = this.role.durable(), "worker consumer failed; restarting");
                    if wait_or_shutdown(&mut shutdown, Duration::from_millis(500)).await {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn consume(
        self: &Arc<Self>,
        permits: &Arc<Semaphore>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), ProcessorError> {
        let err = |what| move |e: async_nats::Error| ProcessorError::Nats { what, message: e.to_string() };
        let stream =
            self.js.get_stream_no_info(ORDER_EVENTS_STREAM).await.map_err(|e| err("open ORDER_EVENTS")(e.into()))?;
        let config = consumer::pull::Config {
            durable_name: Some(self.role.durable().to_string()),
            filter_subjects: self.role.filters(),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.settings.ack_wait,
            max_ack_pending: (self.settings.concurrency * 4) as i64,
            ..Default::default()
        };
        let consumer = stream
            .get_or_create_consumer(self.role.durable(), config)
            .await
            .map_err(|e| err("create a worker consumer")(e.into()))?;
        let mut messages = consumer.messages().await.map_err(|e| err("read ORDER_EVENTS")(e.into()))?;
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                _ = shutdown.changed() => return Ok(()),
            };
            let message = match next {
                Some(Ok(message)) => message,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "worker pull interrupted");
                    continue;
                }
                None => {
                    return Err(ProcessorError::ConsumerEnded(broker::ORDER_EVENTS_STREAM));
                }
            };
            let permit = permits.clone().acquire_owned().await.map_err(|e| err("worker permits")(e.into()))?;
            let this = self.clone();
            tokio::spawn(async move {
                this.handle(message).await;
                drop(permit);
            });
        }
    }

    async fn handle(&self, message: jetstream::Message) {
        let (delivered, stream_seq) = message.info().map(|i| (i.delivered, i.stream_sequence)).unwrap_or((1, 0));
        if delivered > 1 {
            self.metrics.redeliveries.inc();
        }
        let event: OrderEvent = match serde_json::from_slice(&message.payload) {
            Ok(event) => event,
            Err(e) => return self.dead_letter(&message, stream_seq, &format!("undecodable event: {e}")).await,
        };
        let Some((command, delay)) = self.next_step(&event) else {
            let _ = message.ack().await;
            return;
        };
        // Due relative to when the event happened, so a redelivery after a
        // crash does not wait the whole delay again.
        let due = event.occurred_at + chrono::TimeDelta::from_std(delay).unwrap_or_default();
        if let Ok(wait) = (due - Utc::now()).to_std() {
            tokio::time::sleep(wait).await;
        }
        let envelope = OrderCommandEnvelope { order_id: event.order_id, issued_at: Utc::now(), command };
        let result = async {
            let payload = serde_json::to_vec(&envelope)?;
            let publish = PublishMessage::build().payload(payload.into()).message_id(envelope.dedup_id());
            let subject = order_command_subject(envelope.order_id, envelope.command.name());
            self.js.send_publish(subject, publish).await?.await?;
            Ok::<_, async_nats::Error>(())
        }
        .await;
        match result {
            Ok(()) => {
                let _ = message.ack().await;
            }
            Err(e) if delivered >= MAX_DELIVER => {
                self.dead_letter(&message, stream_seq, &format!("gave up after {delivered} deliveries: {e}")).await;
            }
            Err(e) => {
                tracing::debug!(error = %e, order_id = %event.order_id, "step failed; will retry");
                let backoff = Duration::from_millis(100 * (1 << delivered.clamp(1, 6)));
                let _ = message.ack_with(AckKind::Nak(Some(backoff))).await;
            }
        }
    }

    async fn dead_letter(&self, message: &jetstream::Message, seq: u64, reason: &str) {
        match dlq::send(&self.js, self.role.durable(), message, seq, reason).await {
            Ok(ack) => {
                if ack.await.is_ok() {
                    self.metrics.dead_lettered.inc();
                    let _ = message.ack_with(AckKind::Term).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot dead-letter; will be redelivered"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_decisions_are_stable_and_follow_the_rate() {
        let ids: Vec<uuid::Uuid> = (0..20_000).map(|_| uuid::Uuid::now_v7()).collect();
        let declined = ids.iter().filter(|id| !payment_approved(**id, 7, 0.3)).count();
        assert!((5_600..6_400).contains(&declined), "{declined}");
        for id in ids.iter().take(100) {
            assert_eq!(payment_approved(*id, 7, 0.3), payment_approved(*id, 7, 0.3));
        }
        assert!(ids.iter().all(|id| payment_approved(*id, 7, 0.0)));
    }
}
