//! Analytics, the streaming engine: the order streams as Parquet tables
//! and windowed pipelines, in parts that depend one way
//! (`scripts/check-cycles.py`):
//!
//! - how tables are written: [`store`] (a directory, S3, GCS, Azure,
//!   memory), [`rows`] (orders and events as Arrow batches of the
//!   `schemas::tables` schemas), [`parquet_out`] (sorted Parquet with bloom
//!   filters and page indexes), [`layout`] (each table's and pipeline
//!   output's files), [`checkpoint`] and [`compact`] (the commit protocol,
//!   compaction);
//! - reading the streams: [`source`] (which stream feeds which table),
//!   [`decode`] (a micro-batch's JSON), [`dedup`] (an id seen before is
//!   dropped);
//! - windows: [`window`] (event-time arithmetic, watermarks, lateness),
//!   [`pipeline`] (manifests, the window operator, the SQL evaluator),
//!   [`builtin`] (the shipped set, `analytics/pipelines/`);
//! - the job: [`job`] (exactly-once stream to Parquet, each line's
//!   category from the catalog by [`categories`]), run live by
//!   [`live`] and over a fixed range by [`replay`];
//! - [`query`]: DataFusion over every table (`orderstream sql`, the
//!   dashboard), with its helpers (day-partitioned tables, per-file caches,
//!   small files in memory, bounded functions, stoppable joins, one-pass
//!   distinct counts).
//!
//! Seeded history is the `seed` crate; what is learned from the lake
//! (`forecast`, `fraud`, `customers`) reads and writes Parquet beside it.

pub mod builtin;
pub mod categories;
pub mod checkpoint;
pub mod compact;
pub mod decode;
pub mod dedup;
pub mod job;
pub mod layout;
pub mod live;
pub mod parquet_out;
pub mod pipeline;
mod pipeline_run;
pub mod query;
pub mod replay;
pub mod rows;
pub mod source;
pub mod store;
pub mod window;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum AnalyticsError {
    #[error("{what}: {message}")]
    Config { what: &'static str, message: String },
    #[error("cannot {action} {path}: {source}")]
    Store {
        action: &'static str,
        path: String,
        #[source]
        source: object_store::Error,
    },
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("datafusion: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("pipeline {pipeline}: {message}")]
    Pipeline { pipeline: String, message: String },
    #[error("nats: cannot {what}: {message}")]
    Nats { what: &'static str, message: String },
    #[error(transparent)]
    Broker(#[from] broker::BrokerError),
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: String, message: String },
    /// A worker task (blocking pool or spawned) panicked or was cancelled.
    #[error("{what}: a worker task failed: {source}")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl AnalyticsError {
    pub fn store(action: &'static str, path: &object_store::path::Path, source: object_store::Error) -> Self {
        AnalyticsError::Store { action, path: path.to_string(), source }
    }

    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        AnalyticsError::Io { path: path.display().to_string(), source }
    }

    pub fn nats(what: &'static str, error: impl std::fmt::Display) -> Self {
        AnalyticsError::Nats { what, message: error.to_string() }
    }

    /// A worker task (blocking pool or spawned) panicked or was cancelled.
    pub fn task(what: &'static str, error: tokio::task::JoinError) -> Self {
        AnalyticsError::Task { what, source: error }
    }

    pub fn pipeline(pipeline: &str, message: impl Into<String>) -> Self {
        AnalyticsError::Pipeline { pipeline: pipeline.to_string(), message: message.into() }
    }
}
