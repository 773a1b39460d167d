//! What every HTTP role (ingest, processor, dashboard, `up`) shares, so each
//! serves, reports and stops the same way:
//!
//! - [`http`]: every error as JSON `{error, message, field?}` with its
//!   status, and the checks every JSON-taking route applies to its body.
//! - [`health`]: the state of a process's long-running parts.
//! - [`probes`]: `/healthz`, `/readyz` (NATS, the streams, every part) and
//!   `/metrics`.
//! - [`metrics`]: requests, latency and in-flight requests per route,
//!   labelled with the role that serves them.
//! - [`serve`]: binding the port, serving until shutdown, and the shutdown
//!   signal.

pub mod health;
pub mod http;
pub mod metrics;
pub mod probes;
pub mod serve;

pub use health::Health;
pub use http::HttpError;
pub use metrics::{HttpMetrics, MetricsSource};
pub use serve::{ServeError, bind, serve, serve_until, shutdown_flag, shutdown_signal};
