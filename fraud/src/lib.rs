//! Fraud scoring: event-time features of an order ([`features`]), a
//! logistic model that turns them into a calibrated 0–100 score with its
//! reasons ([`model`]), fitting that model on labelled orders ([`train`])
//! and judging it against labels ([`evaluate`]).
//!
//! The processor scores live orders with it, the seed scores its history
//! with it, and `orderstream fraud train|evaluate` fit and judge it over the
//! lake: one scorer, so a seeded verdict is the one the live screen gives.

pub mod evaluate;
pub mod features;
pub mod model;
pub mod train;

pub use features::{FeatureState, Observed, OrderFacts};
pub use model::{Assessment, FraudModel};

#[derive(Debug, thiserror::Error)]
pub enum FraudError {
    #[error("fraud model: {0}")]
    Model(String),
    #[error("fraud training: {0}")]
    Training(String),
}

/// Scores `order` with `model` against what `state` remembers, then
/// records it in `state`.
pub fn screen(state: &mut FeatureState, model: &FraudModel, order: &OrderFacts<'_>) -> Assessment {
    let observed = state.observe(order);
    model.assess(&observed)
}
