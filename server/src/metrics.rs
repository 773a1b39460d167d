//! HTTP metrics every role serves on `/metrics`: requests by route and
//! status, latency by route, requests in flight. Each series carries the
//! role that served it (`role="ingest"`, `"processor"`, `"dashboard"`,
//! `"up"`), so one dashboard query covers any deployment.

use std::borrow::Cow;
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

/// A latency histogram from 50 µs to about 13 s, for any timed step.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
}

/// Anything whose series `/metrics` shows: a role's registry, the HTTP
/// metrics, the process's health.
pub trait MetricsSource: Send + Sync {
    /// OpenMetrics text.
    fn openmetrics(&self) -> String;
}

pub struct HttpMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram>,
    in_flight: Gauge,
}

impl HttpMetrics {
    /// `orderstream_http_*{role}`.
    pub fn new(role: &'static str) -> Arc<HttpMetrics> {
        let mut registry =
            Registry::with_prefix_and_labels("orderstream", [(Cow::Borrowed("role"), Cow::Borrowed(role))].into_iter());
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let in_flight = Gauge::default();
        registry.register("http_requests", "HTTP requests by method, route and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route", request_seconds.clone());
        registry.register("http_requests_in_flight", "HTTP requests being served", in_flight.clone());
        Arc::new(HttpMetrics { registry, requests, request_seconds, in_flight })
    }

    pub fn encode(&self) -> String {
        encode(&self.registry)
    }
}

impl MetricsSource for HttpMetrics {
    fn openmetrics(&self) -> String {
        self.encode()
    }
}

/// OpenMetrics text of a registry.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// Counts and times every request under its route template (never the raw
/// path, so ids do not explode the label set).
pub async fn track(State(metrics): State<Arc<HttpMetrics>>, request: Request, next: Next) -> Response {
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

#[cfg(test)]
mod tests {
    #[test]
    fn series_carry_the_role() {
        let metrics = super::HttpMetrics::new("processor");
        metrics
            .requests
            .get_or_create(&super::RequestLabels { method: "GET".into(), route: "/x".into(), status: 200 })
            .inc();
        let text = metrics.encode();
        assert!(
            text.contains(
                "orderstream_http_requests_total{role=\"processor\",method=\"GET\",route=\"/x\",status=\"200\"} 1"
            ),
            "{text}"
        );
    }
}
