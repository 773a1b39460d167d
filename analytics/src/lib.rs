//! Analytics: the order streams as Parquet tables and windowed pipelines.
//!
//! - [`store`]: where tables live (a directory, S3, GCS, Azure, memory).
//! - [`rows`]: orders and events as Arrow batches of the `schemas::tables` schemas.
//! - [`parquet_out`]: sorted Parquet files with bloom filters and page indexes.
//! - [`window`] and [`pipeline`]: event-time windows, watermarks, lateness,
//!   and the declarative pipelines of `pipelines/`.
//! - [`decode`]: a micro-batch's JSON messages as orders or events;
//!   [`dedup`]: a message whose id was already seen is dropped.
//! - [`job`]: the exactly-once stream-to-Parquet job (`orderstream analytics`),
//!   also run over a fixed range by [`replay`].
//! - [`seed`]: realistic history, straight to Parquet or through JetStream;
//!   [`rollup`]: the pipeline outputs of seeded days.
//! - [`query`]: DataFusion over every table (`orderstream sql`), with
//!   [`bounded_functions`] accounting scalar results in the memory pool and
//!   [`yielding`] making joins stoppable;
//!   [`dated_table`]: day-partitioned tables list only the days a query reads.
//! - [`distinct_count`]: exact `COUNT(DISTINCT s)` over strings in one pass.
//! - [`bench`]: the windowed-aggregation engine alone, for `orderstream bench`.

pub mod bench;
pub mod bounded_functions;
pub mod builtin;
pub mod checkpoint;
pub mod compact;
pub mod dated_table;
pub mod decode;
pub mod dedup;
pub mod distinct_count;
pub mod file_cache;
pub mod job;
pub mod live;
pub mod parquet_out;
pub mod pipeline;
mod pipeline_run;
pub mod query;
pub mod replay;
pub mod rollup;
pub mod rows;
pub mod seed;
pub mod small_files;
pub mod store;
pub mod window;
pub mod yielding;

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
        AnalyticsError::Config { what, message: format!("a worker task failed: {error}") }
    }

    pub fn pipeline(pipeline: &str, message: impl Into<String>) -> Self {
        AnalyticsError::Pipeline { pipeline: pipeline.to_string(), message: message.into() }
    }
}
