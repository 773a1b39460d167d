//! Demand forecasting and inventory planning over the lake: it reads the
//! base tables' Parquet with DataFusion and writes `demand_forecast` and
//! `inventory_plan` Parquet (schemas in `schemas::forecast`). The
//! streaming engine (`analytics`) is not involved beyond its lake layout.
//!
//! - [`series`]: daily demand per product, category and total.
//! - [`models`]: the candidate methods (augurs' AutoETS and MSTL, and the
//!   simple and intermittent ones written here).
//! - [`select`]: rolling-origin backtests pick a method per series; bands.
//! - [`run`]: every series of a lake, in parallel, to the table.
//! - [`table`]: the table's files and rows.
//! - [`inventory`]: days of cover, stockout dates and reorder points.

pub mod evaluate;
pub mod inventory;
pub mod models;
pub mod run;
pub mod schedule;
pub mod select;
pub mod series;
pub mod table;

pub use run::{ForecastOptions, ForecastReport, forecast_lake, forecast_one};
pub use series::Selection;

#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    #[error(transparent)]
    Analytics(#[from] analytics::AnalyticsError),
    #[error("datafusion: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("unexpected shape of {0}")]
    Shape(String),
    #[error("a forecasting worker failed: {0}")]
    Worker(String),
}
