//! The fraud model file and scoring with it.
//!
//! A model is a logistic regression over the standardised features of
//! [`crate::features`]: `p = σ(b + Σ wᵢ·(xᵢ − μᵢ)/sᵢ)`. The score is `p`
//! (a probability calibrated on the data it was fitted on) × 100, rounded;
//! the reasons are the features that raised the log-odds the most, in words.
//! Everything is a fixed sequence of `f64` operations in feature order, so a
//! model version gives the same score for the same inputs on every run.
//!
//! The file is JSON: `format` (this build reads [`MODEL_FORMAT`]), a
//! `version` naming the fit, the feature names (checked against this
//! build's), their means and scales, weights, intercept, the decision
//! threshold and what it was trained on.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::FraudError;
use crate::features::{FEATURE_COUNT, Feature, Observed};

/// The model file format this build reads and writes.
pub const MODEL_FORMAT: u32 = 1;
/// A feature is a reason when it raises the log-odds by at least this much
/// (the odds of fraud at least ×e).
const REASON_MIN_LOG_ODDS: f64 = 1.0;
const MAX_REASONS: usize = 3;

/// The built-in model: fitted by `orderstream fraud train` on the seed's
/// labelled history (see docs/fraud.md for how it was made).
const BUILTIN: &str = include_str!("../models/default.json");

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FraudModel {
    pub format: u32,
    pub version: String,
    pub features: Vec<String>,
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    pub weights: Vec<f64>,
    pub intercept: f64,
    /// Orders scoring above this are flagged for review.
    pub threshold: u8,
    #[serde(default)]
    pub trained_on: Option<TrainingSummary>,
}

/// Where a model came from and how it did on its own data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    pub data: String,
    pub orders: u64,
    pub fraud: u64,
    /// Orders whose label came from a review (the rest from `fraud_labels`).
    pub reviewed: u64,
    pub precision: f64,
    pub recall: f64,
}

/// A score, its reasons and the model that gave them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    pub score: u8,
    pub reasons: Vec<String>,
    pub model: String,
}

impl FraudModel {
    /// The model every build carries (what `--fraud-model` replaces).
    pub fn builtin() -> Result<FraudModel, FraudError> {
        FraudModel::parse(BUILTIN.as_bytes(), "the built-in model")
    }

    pub fn load(path: &Path) -> Result<FraudModel, FraudError> {
        let bytes = std::fs::read(path).map_err(|e| FraudError::Model(format!("{}: {e}", path.display())))?;
        FraudModel::parse(&bytes, &path.display().to_string())
    }

    pub fn parse(bytes: &[u8], source: &str) -> Result<FraudModel, FraudError> {
        #[derive(Deserialize)]
        struct Format {
            format: u32,
        }
        let format: Format =
            serde_json::from_slice(bytes).map_err(|e| FraudError::Model(format!("{source}: not a model file: {e}")))?;
        if format.format != MODEL_FORMAT {
            return Err(FraudError::Model(format!(
                "{source}: model format {} is not supported (this build reads format {MODEL_FORMAT})",
                format.format
            )));
        }
        let model: FraudModel =
            serde_json::from_slice(bytes).map_err(|e| FraudError::Model(format!("{source}: {e}")))?;
        model.check().map_err(|why| FraudError::Model(format!("{source}: {why}")))?;
        Ok(model)
    }

    pub fn to_json(&self) -> Result<String, FraudError> {
        serde_json::to_string_pretty(self).map_err(|e| FraudError::Model(e.to_string()))
    }

    fn check(&self) -> Result<(), String> {
        let expected: Vec<&str> = Feature::ALL.iter().map(|f| f.name()).collect();
        if self.features != expected {
            return Err(format!(
                "its features {:?} are not this build's {expected:?}: retrain it with `orderstream fraud train`",
                self.features
            ));
        }
        for (name, values) in [("mean", &self.mean), ("scale", &self.scale), ("weights", &self.weights)] {
            if values.len() != FEATURE_COUNT {
                return Err(format!("{name} has {} values, the model has {FEATURE_COUNT} features", values.len()));
            }
            if values.iter().any(|v| !v.is_finite()) {
                return Err(format!("{name} holds a value that is not a finite number"));
            }
        }
        if self.scale.iter().any(|s| *s <= 0.0) {
            return Err("every scale must be positive".into());
        }
        if !self.intercept.is_finite() {
            return Err("the intercept is not a finite number".into());
        }
        if self.threshold > 100 || self.version.trim().is_empty() {
            return Err("the threshold must be 0-100 and the version named".into());
        }
        Ok(())
    }

    /// Each feature's push on the log-odds.
    fn contributions(&self, x: &[f64; FEATURE_COUNT]) -> [f64; FEATURE_COUNT] {
        let mut c = [0.0; FEATURE_COUNT];
        for (i, ci) in c.iter_mut().enumerate() {
            *ci = self.weights[i] * (x[i] - self.mean[i]) / self.scale[i];
        }
        c
    }

    /// The probability of fraud, 0–1.
    pub fn probability(&self, x: &[f64; FEATURE_COUNT]) -> f64 {
        let z = self.contributions(x).iter().fold(self.intercept, |sum, c| sum + c);
        1.0 / (1.0 + (-z).exp())
    }

    pub fn assess(&self, observed: &Observed) -> Assessment {
        let x = observed.features();
        let score = (self.probability(&x) * 100.0).round().clamp(0.0, 100.0) as u8;
        let contributions = self.contributions(&x);
        let mut ranked: Vec<(usize, f64)> = contributions.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut reasons: Vec<String> = ranked
            .iter()
            .take(MAX_REASONS)
            .filter(|(_, c)| *c >= REASON_MIN_LOG_ODDS)
            .map(|(i, _)| Feature::ALL[*i].reason(observed))
            .collect();
        if reasons.is_empty()
            && score > self.threshold
            && let Some((i, _)) = ranked.first()
        {
            reasons.push(Feature::ALL[*i].reason(observed));
        }
        Assessment { score, reasons, model: self.version.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_model_loads_and_round_trips() {
        let model = FraudModel::builtin().unwrap_or_else(|e| panic!("{e}"));
        let json = model.to_json().unwrap_or_default();
        assert_eq!(FraudModel::parse(json.as_bytes(), "round trip").ok(), Some(model));
    }

    #[test]
    fn an_unknown_format_or_foreign_features_are_clear_errors() {
        let model = FraudModel::builtin().unwrap_or_else(|e| panic!("{e}"));
        let mut json: serde_json::Value = serde_json::to_value(&model).unwrap_or_default();
        json["format"] = 2.into();
        let err = FraudModel::parse(json.to_string().as_bytes(), "m.json").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("fraud model: m.json: model format 2 is not supported (this build reads format 1)")
        );
        json["format"] = 1.into();
        json["features"][0] = "shoe_size".into();
        let err = FraudModel::parse(json.to_string().as_bytes(), "m.json").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("retrain it")));
        let err = FraudModel::parse(b"{\"format\":1}", "m.json").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("missing field")));
    }

    #[test]
    fn an_ordinary_order_has_no_reasons() {
        let model = FraudModel::builtin().unwrap_or_else(|e| panic!("{e}"));
        let observed = Observed {
            amount: 60.0,
            account_age_days: 200.0,
            usual_amount: 70.0,
            customer_orders_24h: 0,
            ..Observed::default()
        };
        let a = model.assess(&observed);
        assert!(a.score < model.threshold, "{a:?}");
        assert!(a.reasons.is_empty(), "{a:?}");
        assert_eq!(a.model, model.version);
    }
}
