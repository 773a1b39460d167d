//! Ingest's own metrics for `/metrics` (the HTTP series are the shared
//! [`server::HttpMetrics`]): publish latency, orders accepted, idempotent
//! replays, and PubAcks that never came.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use server::metrics::latency_histogram;

pub struct Metrics {
    registry: Registry,
    pub publish_seconds: Histogram,
    pub idempotent_replays: Counter,
    pub orders_accepted: Counter,
    pub acks_unknown: Counter,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("orderstream_ingest");
        let publish_seconds = latency_histogram();
        let idempotent_replays = Counter::default();
        let orders_accepted = Counter::default();
        let acks_unknown = Counter::default();
        registry.register(
            "jetstream_publish_duration_seconds",
            "Time from publishing an order to JetStream's PubAck",
            publish_seconds.clone(),
        );
        registry.register(
            "idempotent_replays",
            "Requests answered from an earlier Idempotency-Key",
            idempotent_replays.clone(),
        );
        registry.register("orders_accepted", "Orders durably stored in JetStream", orders_accepted.clone());
        registry.register(
            "acks_unknown",
            "Orders sent whose storage JetStream did not confirm in time (answered 504 with the order id)",
            acks_unknown.clone(),
        );
        Arc::new(Metrics { registry, publish_seconds, idempotent_replays, orders_accepted, acks_unknown })
    }

    pub fn encode(&self) -> String {
        server::metrics::encode(&self.registry)
    }
}

impl server::MetricsSource for Metrics {
    fn openmetrics(&self) -> String {
        self.encode()
    }
}
