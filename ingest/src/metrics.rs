//! Prometheus metrics for `/metrics`: requests by route and status, request
//! and publish latency histograms, in-flight requests, replays.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Family<RouteLabels, Histogram>,
    pub in_flight: Gauge,
    pub publish_seconds: Histogram,
    pub idempotent_replays: Counter,
    pub orders_accepted: Counter,
    pub acks_unknown: Counter,
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~13 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("orderstream_ingest");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let in_flight = Gauge::default();
        let publish_seconds = latency_histogram();
        let idempotent_replays = Counter::default();
        let orders_accepted = Counter::default();
        let acks_unknown = Counter::default();
        registry.register("http_requests", "HTTP requests by method, route and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route", request_seconds.clone());
        registry.register("http_requests_in_flight", "HTTP requests being served", in_flight.clone());
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
        Arc::new(Metrics {
            registry,
            requests,
            request_seconds,
            in_flight,
            publish_seconds,
            idempotent_replays,
            orders_accepted,
            acks_unknown,
        })
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Counts and times every request under its route template (never the raw
/// path, so ids do not explode the label set).
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_string();
    let method = request.method().to_string();
    metrics.in_flight.inc();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.in_flight.dec();
    metrics
        .request_seconds
        .get_or_create(&RouteLabels { route: route.clone() })
        .observe(started.elapsed().as_secs_f64());
    metrics.requests.get_or_create(&RequestLabels { method, route, status: response.status().as_u16() }).inc();
    response
}
