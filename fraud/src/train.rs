//! Fitting a model: a logistic regression from linfa (L-BFGS with an L2
//! penalty) on standardised features, then the threshold that best balances
//! precision and recall on the same data.

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};

use crate::FraudError;
use crate::features::{FEATURE_COUNT, Feature};
use crate::model::{FraudModel, MODEL_FORMAT, TrainingSummary};

/// One labelled order's features.
#[derive(Clone, Debug)]
pub struct Sample {
    pub features: [f64; FEATURE_COUNT],
    pub fraud: bool,
    /// The label came from a review rather than the ground-truth table.
    pub reviewed: bool,
}

/// The L2 penalty: small, the features being few and the data many.
const ALPHA: f64 = 1e-3;
const MAX_ITERATIONS: u64 = 300;
/// Honest orders are fitted on a sample of at most this many per fraud
/// order (case-control sampling); the intercept is then corrected by the
/// log of the sampling rate, so probabilities stay calibrated to the whole.
const HONEST_PER_FRAUD: usize = 10;

pub fn fit(samples: &[Sample], version: &str, data: &str) -> Result<FraudModel, FraudError> {
    let fraud = samples.iter().filter(|s| s.fraud).count();
    if fraud == 0 || fraud == samples.len() {
        return Err(FraudError::Training(format!(
            "{} orders of which {fraud} fraud: training needs both honest and fraudulent orders",
            samples.len()
        )));
    }
    let n = samples.len() as f64;
    let mut mean = vec![0.0; FEATURE_COUNT];
    for s in samples {
        for (m, x) in mean.iter_mut().zip(s.features) {
            *m += x / n;
        }
    }
    let mut scale = [0.0; FEATURE_COUNT];
    for s in samples {
        for ((v, x), m) in scale.iter_mut().zip(s.features).zip(&mean) {
            *v += (x - m) * (x - m) / n;
        }
    }
    // A feature constant in the data gets scale 1: it contributes nothing.
    let scale: Vec<f64> = scale.iter().map(|v| if *v > 1e-12 { v.sqrt() } else { 1.0 }).collect();
    // Every fraud order and every k-th honest one, in order (deterministic).
    let honest = samples.len() - fraud;
    let every = honest.div_ceil(HONEST_PER_FRAUD * fraud).max(1);
    let fitted_on: Vec<&Sample> = samples
        .iter()
        .scan(0usize, |seen, s| {
            if s.fraud {
                return Some(Some(s));
            }
            *seen += 1;
            Some((*seen % every == 0).then_some(s))
        })
        .flatten()
        .collect();
    let mut x = Array2::<f64>::zeros((fitted_on.len(), FEATURE_COUNT));
    for (row, s) in fitted_on.iter().enumerate() {
        for j in 0..FEATURE_COUNT {
            x[[row, j]] = (s.features[j] - mean[j]) / scale[j];
        }
    }
    let y: Array1<bool> = fitted_on.iter().map(|s| s.fraud).collect();
    let fitted = LogisticRegression::default()
        .alpha(ALPHA)
        .max_iterations(MAX_ITERATIONS)
        .fit(&Dataset::new(x, y))
        .map_err(|e| FraudError::Training(e.to_string()))?;
    // linfa's probability is of its "positive" class, the larger one
    // (honest here): turn the model around so it gives P(fraud).
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    let mut model = FraudModel {
        format: MODEL_FORMAT,
        version: version.to_string(),
        features: Feature::ALL.iter().map(|f| f.name().to_string()).collect(),
        mean,
        scale,
        weights: fitted.params().iter().map(|w| sign * w).collect(),
        // Honest orders were 1 in `every`: their odds were `every` times too low.
        intercept: sign * fitted.intercept() - (every as f64).ln(),
        threshold: 50,
        trained_on: None,
    };
    let scores: Vec<(u8, bool)> =
        samples.iter().map(|s| ((model.probability(&s.features) * 100.0).round() as u8, s.fraud)).collect();
    let (threshold, precision, recall) = best_threshold(&scores);
    model.threshold = threshold;
    model.trained_on = Some(TrainingSummary {
        data: data.to_string(),
        orders: samples.len() as u64,
        fraud: fraud as u64,
        reviewed: samples.iter().filter(|s| s.reviewed).count() as u64,
        precision,
        recall,
    });
    Ok(model)
}

/// The precision a chosen threshold must keep on the training data: at
/// least four flags in five are fraud, so reviewers trust the queue.
pub const MIN_PRECISION: f64 = 0.85;

/// The lowest threshold (the most fraud caught) whose precision is at
/// least [`MIN_PRECISION`]; when none is, the one with the best F1. With
/// its precision and recall.
pub fn best_threshold(scores: &[(u8, bool)]) -> (u8, f64, f64) {
    let mut best_f1 = (50, 0.0, 0.0, -1.0);
    for threshold in 1..100u8 {
        let c = crate::evaluate::Counts::at(scores.iter().copied(), threshold);
        if c.precision() >= MIN_PRECISION {
            return (threshold, c.precision(), c.recall());
        }
        if c.f1() > best_f1.3 {
            best_f1 = (threshold, c.precision(), c.recall(), c.f1());
        }
    }
    (best_f1.0, best_f1.1, best_f1.2)
}
