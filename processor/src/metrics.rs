//! Processor metrics: outcomes per second, saga latency, queue depth,
//! redeliveries, dead letters, and the engine's position and leadership.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use schemas::EventPayload;

use crate::engine::Effects;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The status reached, or `refund` / `rejected`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    pub consumer: String,
}

pub struct Metrics {
    registry: Registry,
    pub outcomes: Family<OutcomeLabels, Counter>,
    pub saga_seconds: Histogram,
    pub batch_seconds: Histogram,
    pub inputs: Counter,
    pub engine_position: Gauge,
    pub engine_leader: Gauge,
    pub redeliveries: Counter,
    pub dead_lettered: Counter,
    pub consumer_pending: Family<ConsumerLabels, Gauge>,
    pub consumer_ack_pending: Family<ConsumerLabels, Gauge>,
    pub dlq_messages: Gauge,
    pub engine_lag: Gauge,
    pub resume_skipped: Gauge,
    pub engine_failures: Counter,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("orderstream_processor");
        let m = Metrics {
            outcomes: Family::default(),
            saga_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 18)),
            batch_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            inputs: Counter::default(),
            engine_position: Gauge::default(),
            engine_leader: Gauge::default(),
            redeliveries: Counter::default(),
            dead_lettered: Counter::default(),
            consumer_pending: Family::default(),
            consumer_ack_pending: Family::default(),
            dlq_messages: Gauge::default(),
            engine_lag: Gauge::default(),
            resume_skipped: Gauge::default(),
            engine_failures: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("outcomes", "Order events by outcome (status reached, refund, rejected)", m.outcomes.clone());
        registry.register(
            "saga_duration_seconds",
            "Accepted to terminal (delivered or cancelled)",
            m.saga_seconds.clone(),
        );
        registry.register(
            "engine_batch_duration_seconds",
            "Applying and committing one engine batch",
            m.batch_seconds.clone(),
        );
        registry.register("engine_inputs", "ORDERS messages applied by the engine", m.inputs.clone());
        registry.register("engine_position", "ORDERS sequence the engine has applied up to", m.engine_position.clone());
        registry.register("engine_leader", "1 when this instance runs the engine", m.engine_leader.clone());
        registry.register("redeliveries", "Worker messages delivered more than once", m.redeliveries.clone());
        registry.register("dead_lettered", "Messages sent to ORDERS_DLQ", m.dead_lettered.clone());
        registry.register(
            "consumer_pending",
            "Messages not yet delivered, per consumer (queue depth)",
            m.consumer_pending.clone(),
        );
        registry.register(
            "consumer_ack_pending",
            "Messages delivered, not yet acknowledged, per consumer",
            m.consumer_ack_pending.clone(),
        );
        registry.register("dlq_messages", "Messages in ORDERS_DLQ", m.dlq_messages.clone());
        registry.register(
            "engine_lag",
            "ORDERS messages not yet applied by the engine (queue depth)",
            m.engine_lag.clone(),
        );
        registry.register(
            "engine_resume_skipped",
            "Effects a resumed engine did not publish again because an earlier leader had (since this leader started)",
            m.resume_skipped.clone(),
        );
        registry.register(
            "engine_failures",
            "Times the engine stopped leading on an error (it retries from its snapshot)",
            m.engine_failures.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    pub fn encode(&self) -> String {
        server::metrics::encode(&self.registry)
    }

    pub fn record_batch(&self, fx: &Effects, inputs: usize, took: Duration) {
        self.inputs.inc_by(inputs as u64);
        self.batch_seconds.observe(took.as_secs_f64());
        for event in &fx.events {
            let outcome = match &event.payload {
                EventPayload::StatusChanged { to, reason: Some(reason), .. } => format!("{to}_{}", reason.as_str()),
                _ => event.subject_suffix().to_string(),
            };
            self.outcomes.get_or_create(&OutcomeLabels { outcome }).inc();
        }
        // Wall clock, not the events' log time (which is the input's).
        let now = chrono::Utc::now();
        for state in fx.views.values() {
            if state.status.is_terminal()
                && let Ok(took) = (now - state.order.received_at).to_std()
            {
                self.saga_seconds.observe(took.as_secs_f64());
            }
        }
    }
}

impl server::MetricsSource for Metrics {
    fn openmetrics(&self) -> String {
        self.encode()
    }
}
