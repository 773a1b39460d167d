//! Declarative windowed pipelines: [`manifest`] loads a pipeline directory,
//! [`operator`] decides which windows are due, [`eval`] runs their SQL.

pub mod eval;
pub mod manifest;
pub mod operator;

pub use eval::Evaluator;
pub use manifest::{PipelineSpec, Windowing, load_pipelines, parse_pipeline};
pub use operator::{Emission, LateRow, Operator, OperatorState, WindowKey};
