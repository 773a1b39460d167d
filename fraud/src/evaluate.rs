//! How a model does against labels: the confusion matrix overall and per
//! seeded pattern (decoys included), precision, recall, flagged share.

use std::collections::BTreeMap;

use serde::Serialize;

/// A confusion matrix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub true_positive: u64,
    pub false_positive: u64,
    pub true_negative: u64,
    pub false_negative: u64,
}

impl Counts {
    /// Flagged means scoring above `threshold`.
    pub fn at(scores: impl Iterator<Item = (u8, bool)>, threshold: u8) -> Counts {
        let mut c = Counts::default();
        for (score, fraud) in scores {
            c.add(score > threshold, fraud);
        }
        c
    }

    pub fn add(&mut self, flagged: bool, fraud: bool) {
        match (flagged, fraud) {
            (true, true) => self.true_positive += 1,
            (true, false) => self.false_positive += 1,
            (false, false) => self.true_negative += 1,
            (false, true) => self.false_negative += 1,
        }
    }

    pub fn orders(&self) -> u64 {
        self.true_positive + self.false_positive + self.true_negative + self.false_negative
    }

    pub fn precision(&self) -> f64 {
        ratio(self.true_positive, self.true_positive + self.false_positive)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.true_positive, self.true_positive + self.false_negative)
    }

    pub fn flagged_share(&self) -> f64 {
        ratio(self.true_positive + self.false_positive, self.orders())
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Counts overall and per label (`honest` for unlabelled orders).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Evaluation {
    pub threshold: u8,
    pub overall: Counts,
    pub by_pattern: BTreeMap<String, Counts>,
}

impl Evaluation {
    pub fn new(threshold: u8) -> Evaluation {
        Evaluation { threshold, ..Evaluation::default() }
    }

    pub fn add(&mut self, score: u8, pattern: Option<&str>, fraud: bool) {
        let flagged = score > self.threshold;
        self.overall.add(flagged, fraud);
        self.by_pattern.entry(pattern.unwrap_or("honest").to_string()).or_default().add(flagged, fraud);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_recall_and_share_follow_the_matrix() {
        let scores = [(90, true), (85, false), (10, true), (5, false), (95, true)];
        let c = Counts::at(scores.into_iter(), 80);
        assert_eq!(c, Counts { true_positive: 2, false_positive: 1, true_negative: 1, false_negative: 1 });
        assert!((c.precision() - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.recall() - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.flagged_share() - 0.6).abs() < 1e-12);
        assert_eq!(Counts::default().precision(), 0.0);
    }
}
