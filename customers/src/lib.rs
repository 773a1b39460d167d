//! Customer analytics and recommendations over the lake, beside (not in)
//! the streaming engine: it reads the Parquet tables the analytics job
//! writes. This first part is the item-to-item "bought together" model
//! ([`affinity`]).

pub mod affinity;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CustomersError {
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error(transparent)]
    Analytics(#[from] analytics::AnalyticsError),
    #[error("the {0} columns are not what the model reads")]
    Shape(&'static str),
}
