use std::time::Duration;

use schemas::TaxRate;

/// Ingest's tunables; the binary maps each to a flag and an env variable.
#[derive(Clone, Debug)]
pub struct IngestConfig {
    /// Largest request body accepted (413 above).
    pub max_body_bytes: usize,
    /// Longest a request waits for JetStream's PubAck before answering 503.
    pub publish_timeout: Duration,
    /// Tax applied to every order's subtotal.
    pub tax_rate: TaxRate,
    /// Most orders in one `POST /api/orders/batch`.
    pub max_batch: usize,
    /// `Retry-After` seconds sent with a 503.
    pub retry_after_secs: u32,
    /// How long the tracking link an accepted order carries stays valid.
    pub tracking_ttl: Duration,
    /// Orders a customer may submit a minute, across every instance (the
    /// brief's "3 checkout attempts per customer per minute"); none: no limit.
    pub customer_rate_limit: Option<u32>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_body_bytes: 256 * 1024,
            publish_timeout: Duration::from_secs(2),
            tax_rate: TaxRate(1000),
            max_batch: 1000,
            retry_after_secs: 1,
            tracking_ttl: access::DEFAULT_TRACKING_TTL,
            customer_rate_limit: None,
        }
    }
}
