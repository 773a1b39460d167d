//! Hold-out evaluation, for `orderstream bench forecast` and the
//! comparison with statsforecast (`bench/forecast/`): each series' last
//! `holdout` days are hidden, the method is chosen and fitted on the rest
//! exactly as a run would, and the forecasts are scored against what
//! happened: pooled WAPE (Σ|error| / Σ actual over every series and day),
//! the same for seasonal naive, and how often the actual fell inside the
//! 80% and 95% bands.

use std::collections::BTreeMap;
use std::time::Instant;

use schemas::forecast::Metric;

use crate::models::{Method, seasonal_naive};
use crate::run::fit_all_with;
use crate::series::DemandSeries;

/// One series: an id and its daily values, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedSeries {
    pub id: String,
    pub values: Vec<f64>,
}

/// One forecast day of one series, with what happened.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredDay {
    pub id: String,
    pub step: usize,
    pub actual: f64,
    pub forecast: f64,
    pub lo80: f64,
    pub hi80: f64,
    pub lo95: f64,
    pub hi95: f64,
    pub model: &'static str,
}

#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    pub series: usize,
    pub holdout: usize,
    pub wape: f64,
    pub seasonal_naive_wape: f64,
    pub coverage80: f64,
    pub coverage95: f64,
    pub seconds: f64,
    pub methods: BTreeMap<&'static str, usize>,
    pub days: Vec<ScoredDay>,
}

/// Scores `series` (each longer than `holdout`) on their last `holdout` days.
pub fn evaluate(series: &[NamedSeries], holdout: usize, threads: usize, method: Option<Method>) -> Evaluation {
    let usable: Vec<&NamedSeries> = series.iter().filter(|s| s.values.len() > holdout).collect();
    // fit_all takes demand series; the id rides in `key`, units are the values.
    let train: Vec<DemandSeries> = usable
        .iter()
        .map(|s| DemandSeries {
            scope: schemas::forecast::Scope::Product,
            key: s.id.clone(),
            currency: String::new(),
            first_day: chrono::NaiveDate::default(),
            units: s.values[..s.values.len() - holdout].to_vec(),
            revenue: Vec::new(),
        })
        .collect();
    let started = Instant::now();
    let fitted: Vec<_> = fit_all_with(&train, holdout, threads, None, method)
        .into_iter()
        .filter(|(_, metric, _)| *metric == Metric::Units)
        .collect();
    let seconds = started.elapsed().as_secs_f64();
    let mut e = Evaluation { series: usable.len(), holdout, seconds, ..Evaluation::default() };
    let (mut abs_error, mut naive_error, mut actual_sum, mut in80, mut in95, mut n) = (0.0, 0.0, 0.0, 0, 0, 0);
    for (i, _, choice) in fitted {
        let s = usable[i];
        let actual = &s.values[s.values.len() - holdout..];
        let naive = seasonal_naive(&train[i].units, holdout);
        *e.methods.entry(choice.method.name()).or_default() += 1;
        for h in 0..holdout {
            let y = actual[h];
            abs_error += (y - choice.point[h]).abs();
            naive_error += (y - naive[h].max(0.0)).abs();
            actual_sum += y;
            in80 += usize::from(choice.b80.lower[h] <= y && y <= choice.b80.upper[h]);
            in95 += usize::from(choice.b95.lower[h] <= y && y <= choice.b95.upper[h]);
            n += 1;
            e.days.push(ScoredDay {
                id: s.id.clone(),
                step: h + 1,
                actual: y,
                forecast: choice.point[h],
                lo80: choice.b80.lower[h],
                hi80: choice.b80.upper[h],
                lo95: choice.b95.lower[h],
                hi95: choice.b95.upper[h],
                model: choice.method.name(),
            });
        }
    }
    if actual_sum > 0.0 {
        e.wape = abs_error / actual_sum;
        e.seasonal_naive_wape = naive_error / actual_sum;
    }
    if n > 0 {
        e.coverage80 = in80 as f64 / n as f64;
        e.coverage95 = in95 as f64 / n as f64;
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeating_week_scores_perfectly_with_full_coverage() {
        let week = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let values: Vec<f64> = (0..200).map(|i| week[i % 7]).collect();
        let e = evaluate(&[NamedSeries { id: "w".into(), values }], 14, 1, None);
        assert_eq!((e.series, e.days.len()), (1, 14));
        assert_eq!(e.wape, 0.0);
        assert_eq!(e.coverage80, 1.0);
    }
}
