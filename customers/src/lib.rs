//! Customer analytics and recommendations over the lake, beside (not in)
//! the streaming engine: it reads the Parquet tables the analytics job
//! writes and writes the `schemas::customers` tables.
//!
//! - [`affinity`]: the item-to-item "bought together" model (support,
//!   confidence, lift, cosine), counted a day at a time in memory.
//! - [`segments`]: segments and lifetime value, cohorts, new vs returning;
//!   [`customer_products`]: what each customer bought, for their picks.
//! - [`run`]: one run over a lake; [`schedule`]: runs inside `up`.
//! - [`table`]: the tables' files.
//! - [`recommend`]: answering from the model (item and personalized);
//!   [`evaluate`]: its hit rate on a time split against popularity.

pub mod affinity;
pub mod customer_products;
pub mod evaluate;
pub mod recommend;
pub mod run;
pub mod schedule;
pub mod segments;
pub mod table;

pub use run::{CustomersOptions, CustomersReport, Parts, build};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CustomersError {
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    #[error(transparent)]
    Analytics(#[from] analytics::AnalyticsError),
    #[error("the {0} columns are not what the model reads")]
    Shape(&'static str),
    #[error("a worker task failed: {0}")]
    Worker(String),
}

/// A text column as plain UTF-8, however the reader encoded it (views,
/// dictionaries for partition values).
pub(crate) fn utf8(column: &arrow::array::ArrayRef) -> Result<arrow::array::ArrayRef, CustomersError> {
    Ok(arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8)?)
}

/// Ids numbered in the order first seen, so the counts are kept by number
/// and each id's text is held once.
#[derive(Default)]
pub(crate) struct Interned {
    numbers: std::collections::HashMap<String, u32>,
    pub names: Vec<String>,
}

impl Interned {
    /// The id's number, and whether it is new.
    pub fn number(&mut self, id: &str) -> (u32, bool) {
        if let Some(n) = self.numbers.get(id) {
            return (*n, false);
        }
        let n = self.names.len() as u32;
        self.numbers.insert(id.to_string(), n);
        self.names.push(id.to_string());
        (n, true)
    }
}
