//! Per series, the method with the least absolute error over a
//! rolling-origin backtest, refitted on the whole history; and the
//! series' final bands: the model's own where it has them, else empirical
//! (split-conformal) ones from its backtest residuals.
//!
//! Candidates follow the Syntetos–Boylan classification: a series whose
//! average interval between demands (ADI) exceeds 1.32 days is intermittent
//! and is offered seasonal naive, Croston/SBA and TSB; a smooth one is
//! offered seasonal naive, AutoETS and MSTL. Seasonal naive is always in,
//! first, so it wins ties and the chosen method never does worse than it
//! in the backtest.

use crate::models::{self, Band, Method, Prediction, WEEK};

/// Backtest folds, each as long as the horizon (shorter when the history
/// cannot hold three horizons after [`MIN_TRAIN_DAYS`]).
pub const FOLDS: usize = 3;
/// The least history a backtest fold trains on.
pub const MIN_TRAIN_DAYS: usize = 28;
/// Above this average interval between demands a series is intermittent.
pub const INTERMITTENT_ADI: f64 = 1.32;

/// A series' forecast: the chosen method, its points and nested,
/// non-negative bands, and its backtest errors.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub method: Method,
    pub point: Vec<f64>,
    pub b80: Band,
    pub b95: Band,
    pub backtest: Backtest,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Backtest {
    pub folds: usize,
    /// Days per fold.
    pub fold_days: usize,
    /// Σ|error| / Σ actual over the folds; `None` without demand in them.
    pub wape: Option<f64>,
    /// Mean |error| over the in-sample mean |y[t] − y[t−7]|; `None` when
    /// that scale is zero.
    pub mase: Option<f64>,
}

/// The candidates for a series, simplest first.
pub fn candidates(history: &[f64]) -> Vec<Method> {
    if history.len() < WEEK {
        return vec![Method::Mean];
    }
    if is_intermittent(history) {
        vec![Method::SeasonalNaive, Method::CrostonSba, Method::Tsb]
    } else {
        vec![Method::SeasonalNaive, Method::AutoEts, Method::Mstl]
    }
}

/// Average interval between days with demand above 1.32 (or no demand).
pub fn is_intermittent(history: &[f64]) -> bool {
    let demand_days = history.iter().filter(|y| **y > 0.0).count();
    demand_days == 0 || history.len() as f64 / demand_days as f64 > INTERMITTENT_ADI
}

/// The fold length for a history and horizon; `None` when not even
/// three weeks fit after the least training history.
pub fn fold_days(history_len: usize, horizon: usize) -> Option<usize> {
    let room = history_len.checked_sub(MIN_TRAIN_DAYS)? / FOLDS;
    let days = horizon.min(room);
    (days >= WEEK).then_some(days)
}

struct Scored {
    method: Method,
    abs_error: f64,
    /// actual − forecast, every fold and day.
    residuals: Vec<f64>,
}

/// Forecasts `horizon` days after `history` with the method its backtest
/// picks.
pub fn forecast(history: &[f64], horizon: usize) -> Choice {
    let candidates = candidates(history);
    let fold = fold_days(history.len(), horizon);
    let scored: Vec<Scored> = match fold {
        Some(days) => candidates.iter().filter_map(|m| backtest(*m, history, days)).collect(),
        None => Vec::new(),
    };
    // Least error; the first (simplest) of equals.
    let best = scored.iter().fold(None::<&Scored>, |best, s| match best {
        Some(b) if b.abs_error <= s.abs_error => Some(b),
        _ => Some(s),
    });
    let actual: f64 = fold.map(|days| history[history.len() - FOLDS * days..].iter().sum()).unwrap_or(0.0);
    let (method, residuals, backtest) = match (best, fold) {
        (Some(best), Some(days)) => {
            let count = best.residuals.len().max(1) as f64;
            let scale = weekly_scale(history);
            let backtest = Backtest {
                folds: FOLDS,
                fold_days: days,
                wape: (actual > 0.0).then(|| best.abs_error / actual),
                mase: (scale > 0.0).then(|| best.abs_error / count / scale),
            };
            (best.method, best.residuals.clone(), backtest)
        }
        // Too short to backtest: the simplest method, with in-sample
        // seasonal differences standing in for its residuals.
        _ => {
            let method = candidates[0];
            (method, in_sample_residuals(history), Backtest::default())
        }
    };
    let fitted = models::predict(method, history, horizon, true)
        .or_else(|_| models::predict(Method::SeasonalNaive, history, horizon, true));
    let (method, prediction) = match fitted {
        Ok(prediction) => (method, prediction),
        Err(_) => (Method::Mean, models::predict(Method::Mean, history, horizon, false).unwrap_or(Prediction {
            point: vec![0.0; horizon],
            bands: None,
        })),
    };
    finish(method, prediction, &residuals, backtest)
}

fn backtest(method: Method, history: &[f64], days: usize) -> Option<Scored> {
    let n = history.len();
    let mut abs_error = 0.0;
    let mut residuals = Vec::with_capacity(FOLDS * days);
    for fold in (1..=FOLDS).rev() {
        let origin = n - fold * days;
        let prediction = models::predict(method, &history[..origin], days, false).ok()?;
        for (forecast, actual) in prediction.point.iter().zip(&history[origin..origin + days]) {
            let forecast = forecast.max(0.0);
            abs_error += (actual - forecast).abs();
            residuals.push(actual - forecast);
        }
    }
    Some(Scored { method, abs_error, residuals })
}

fn weekly_scale(history: &[f64]) -> f64 {
    if history.len() <= WEEK {
        return 0.0;
    }
    let diffs = history.windows(WEEK + 1).map(|w| (w[WEEK] - w[0]).abs());
    diffs.sum::<f64>() / (history.len() - WEEK) as f64
}

fn in_sample_residuals(history: &[f64]) -> Vec<f64> {
    if history.len() > WEEK {
        history.windows(WEEK + 1).map(|w| w[WEEK] - w[0]).collect()
    } else {
        let m = models::mean(history);
        history.iter().map(|y| y - m).collect()
    }
}

/// The empirical `q` quantile of sorted values (linear interpolation).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let at = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let (low, high) = (at.floor() as usize, at.ceil() as usize);
            sorted[low] + (sorted[high] - sorted[low]) * (at - low as f64)
        }
    }
}

/// Bands the model's own or empirical from the residuals; then every value
/// is made non-negative and the bands nested around the point.
fn finish(method: Method, prediction: Prediction, residuals: &[f64], backtest: Backtest) -> Choice {
    let Prediction { point, bands } = prediction;
    let (b80, b95) = bands.unwrap_or_else(|| {
        let mut sorted: Vec<f64> = residuals.iter().copied().filter(|r| r.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let band = |level: f64| {
            let (low, high) = (quantile(&sorted, (1.0 - level) / 2.0), quantile(&sorted, (1.0 + level) / 2.0));
            Band { lower: point.iter().map(|p| p + low).collect(), upper: point.iter().map(|p| p + high).collect() }
        };
        (band(0.80), band(0.95))
    });
    let mut choice = Choice { method, point, b80, b95, backtest };
    for h in 0..choice.point.len() {
        let p = choice.point[h].max(0.0);
        let lo80 = choice.b80.lower[h].clamp(0.0, p);
        let hi80 = choice.b80.upper[h].max(p);
        choice.point[h] = p;
        choice.b80.lower[h] = lo80;
        choice.b80.upper[h] = hi80;
        choice.b95.lower[h] = choice.b95.lower[h].clamp(0.0, lo80);
        choice.b95.upper[h] = choice.b95.upper[h].max(hi80);
    }
    choice
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(choice: &Choice) {
        for h in 0..choice.point.len() {
            let row = [choice.b95.lower[h], choice.b80.lower[h], choice.point[h], choice.b80.upper[h], choice.b95.upper[h]];
            assert!(row[0] >= 0.0, "{row:?}");
            assert!(row.windows(2).all(|w| w[0] <= w[1]), "{row:?}");
        }
    }

    #[test]
    fn a_pure_weekly_pattern_picks_seasonal_naive() {
        let week = [3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 2.0];
        let history: Vec<f64> = (0..364).map(|i| week[i % 7]).collect();
        let choice = forecast(&history, 28);
        assert_eq!(choice.method, Method::SeasonalNaive);
        assert_eq!(choice.point[..7], week);
        assert_eq!(choice.backtest.wape, Some(0.0));
        assert_eq!(choice.backtest.folds, 3);
        nested(&choice);
    }

    #[test]
    fn a_sparse_series_picks_an_intermittent_method() {
        // About one day in six has demand of one to three units, at random.
        let mut state = 7u64;
        let history: Vec<f64> = (0..400)
            .map(|_| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let r = (state >> 33) % 18;
                if r < 3 { (r + 1) as f64 } else { 0.0 }
            })
            .collect();
        assert!(is_intermittent(&history));
        let choice = forecast(&history, 30);
        assert!(matches!(choice.method, Method::CrostonSba | Method::Tsb), "{:?}", choice.method);
        nested(&choice);
        assert!(choice.b95.upper.iter().all(|u| *u > 0.0), "demand can happen any day");
    }

    #[test]
    fn short_and_empty_histories_still_forecast() {
        for history in [vec![], vec![0.0; 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], vec![0.0; 200]] {
            let choice = forecast(&history, 10);
            assert_eq!(choice.point.len(), 10);
            nested(&choice);
        }
    }

    #[test]
    fn folds_fit_the_history() {
        assert_eq!(fold_days(28 + 3 * 90, 90), Some(90));
        assert_eq!(fold_days(100, 90), Some(24));
        assert_eq!(fold_days(40, 90), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn bands_are_nested_and_non_negative(history in proptest::collection::vec(0.0f64..50.0, 0..120), horizon in 1usize..40) {
            let choice = forecast(&history, horizon);
            proptest::prop_assert_eq!(choice.point.len(), horizon);
            nested(&choice);
        }
    }
}
