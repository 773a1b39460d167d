//! Per series, the method with the least absolute error over a
//! rolling-origin backtest, refitted on the whole history; and the
//! series' final bands: the model's own where it has them, else empirical
//! (split-conformal) ones from its backtest residuals, taken relative to
//! each fold's forecast level and scaled to the forecast's.
//!
//! Candidates follow the Syntetos–Boylan classification: a series whose
//! average interval between demands (ADI) exceeds 1.32 days is intermittent
//! and is offered Croston/SBA (the default), seasonal naive and TSB; a
//! smooth one is offered the mean of AutoETS and MSTL (the default),
//! seasonal naive, AutoETS and MSTL. Another candidate replaces the default
//! only when its backtest error is lower by more than [`SWITCH_MARGIN`].

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
        vec![Method::CrostonSba, Method::SeasonalNaive, Method::Tsb]
    } else {
        vec![Method::EtsMstl, Method::SeasonalNaive, Method::AutoEts, Method::Mstl]
    }
}

/// How much less backtest error another candidate needs than the default
/// (the first) to replace it. Three folds rank methods noisily; without a
/// margin, selection chased that noise and did worse out of sample than
/// the default alone (docs/forecasting.md has the figures).
pub const SWITCH_MARGIN: f64 = 0.10;

/// The least error; the earlier of equals.
fn least<'a>(items: impl Iterator<Item = &'a Scored>) -> Option<&'a Scored> {
    items.fold(None::<&Scored>, |best, s| match best {
        Some(b) if b.abs_error <= s.abs_error => Some(b),
        _ => Some(s),
    })
}

/// The default unless another candidate's error is lower by more than
/// [`SWITCH_MARGIN`]; among those, the least error (the earlier of equals).
fn pick(scored: &[Scored], default: Method) -> Option<&Scored> {
    let Some(first) = scored.iter().find(|s| s.method == default) else {
        return least(scored.iter());
    };
    match least(scored.iter().filter(|s| s.method != default)) {
        Some(other) if other.abs_error < first.abs_error * (1.0 - SWITCH_MARGIN) => Some(other),
        _ => Some(first),
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
    /// (actual − forecast) / the fold's mean forecast, every fold and day.
    residuals: Vec<f64>,
}

/// Forecasts `horizon` days after `history` with the method its backtest
/// picks.
pub fn forecast(history: &[f64], horizon: usize) -> Choice {
    forecast_among(history, horizon, &candidates(history))
}

/// [`forecast`] among the given candidates (the bench scores one method
/// alone this way).
pub fn forecast_among(history: &[f64], horizon: usize, candidates: &[Method]) -> Choice {
    let candidates = if candidates.is_empty() { vec![Method::Mean] } else { candidates.to_vec() };
    let fold = fold_days(history.len(), horizon);
    let scored: Vec<Scored> = match fold {
        Some(days) => {
            let mut folds = FoldCache::default();
            candidates.iter().filter_map(|m| backtest(*m, history, days, &mut folds)).collect()
        }
        None => Vec::new(),
    };
    let best = pick(&scored, candidates[0]);
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
        // Too short to backtest: the default, with in-sample seasonal
        // differences standing in for its residuals.
        _ => {
            let method = candidates[0];
            (method, in_sample_residuals(history), Backtest::default())
        }
    };
    // The chosen method refitted on everything; should that fit fail, the
    // simplest methods in turn, named as what they are.
    let (method, prediction) = [method, Method::SeasonalNaive, Method::Mean]
        .into_iter()
        .find_map(|m| models::predict(m, history, horizon, true).ok().map(|p| (m, p)))
        .unwrap_or((Method::Mean, Prediction { point: vec![0.0; horizon], bands: None }));
    // Residuals are relative to their fold's forecast level (normalised
    // conformal): scaled to this forecast's level, bands follow demand up a
    // trend or into a season instead of keeping the width of a quieter past.
    let level =
        models::mean(&prediction.point.iter().map(|p| p.max(0.0)).collect::<Vec<_>>()).max(level_floor(history));
    let residuals: Vec<f64> = residuals.iter().map(|r| r * level).collect();
    finish(method, prediction, &residuals, backtest)
}

/// Each base method's fold forecasts, computed once: a combination is
/// scored from its members' without refitting them.
#[derive(Default)]
struct FoldCache(Vec<(Method, Option<Vec<Vec<f64>>>)>);

impl FoldCache {
    fn folds(&mut self, method: Method, history: &[f64], days: usize) -> Option<Vec<Vec<f64>>> {
        if let Some((_, cached)) = self.0.iter().find(|(m, _)| *m == method) {
            return cached.clone();
        }
        let n = history.len();
        let computed = (1..=FOLDS)
            .rev()
            .map(|fold| {
                let origin = n - fold * days;
                models::predict(method, &history[..origin], days, false).ok().map(|p| p.point)
            })
            .collect::<Option<Vec<_>>>();
        self.0.push((method, computed.clone()));
        computed
    }
}

fn backtest(method: Method, history: &[f64], days: usize, cache: &mut FoldCache) -> Option<Scored> {
    let members = method.members();
    let folds = if members.is_empty() {
        cache.folds(method, history, days)?
    } else {
        let each = members.iter().map(|m| cache.folds(*m, history, days)).collect::<Option<Vec<_>>>()?;
        (0..FOLDS)
            .map(|f| (0..days).map(|h| each.iter().map(|m| m[f][h]).sum::<f64>() / each.len() as f64).collect())
            .collect()
    };
    let n = history.len();
    let floor = level_floor(history);
    let mut abs_error = 0.0;
    let mut residuals = Vec::with_capacity(FOLDS * days);
    for (i, fold) in (1..=FOLDS).rev().enumerate() {
        let origin = n - fold * days;
        let level = models::mean(&folds[i].iter().map(|f| f.max(0.0)).collect::<Vec<_>>()).max(floor);
        for (forecast, actual) in folds[i].iter().zip(&history[origin..origin + days]) {
            let forecast = forecast.max(0.0);
            abs_error += (actual - forecast).abs();
            residuals.push((actual - forecast) / level);
        }
    }
    Some(Scored { method, abs_error, residuals })
}

/// The least level residuals are measured against: a tenth of the
/// history's mean (a fold forecasting nothing must not blow them up).
fn level_floor(history: &[f64]) -> f64 {
    (0.1 * models::mean(history)).max(1e-9)
}

fn weekly_scale(history: &[f64]) -> f64 {
    if history.len() <= WEEK {
        return 0.0;
    }
    let diffs = history.windows(WEEK + 1).map(|w| (w[WEEK] - w[0]).abs());
    diffs.sum::<f64>() / (history.len() - WEEK) as f64
}

/// Relative to the history's level, as the backtest's residuals are to
/// their folds'.
fn in_sample_residuals(history: &[f64]) -> Vec<f64> {
    let level = models::mean(history).max(level_floor(history));
    if history.len() > WEEK {
        history.windows(WEEK + 1).map(|w| (w[WEEK] - w[0]) / level).collect()
    } else {
        let m = models::mean(history);
        history.iter().map(|y| (y - m) / level).collect()
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
    let mut sorted: Vec<f64> = residuals.iter().copied().filter(|r| r.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let empirical = |level: f64| {
        let (low, high) = (quantile(&sorted, (1.0 - level) / 2.0), quantile(&sorted, (1.0 + level) / 2.0));
        Band { lower: point.iter().map(|p| p + low).collect(), upper: point.iter().map(|p| p + high).collect() }
    };
    // The model's bands assume the model is right; the backtest's residuals
    // say how wrong it was out of sample. Each band is the wider of the two
    // (the model's alone when there was no backtest).
    let union = |model: Band, level: f64| {
        if backtest.folds == 0 {
            return model;
        }
        let e = empirical(level);
        Band {
            lower: model.lower.iter().zip(&e.lower).map(|(m, e)| m.min(*e)).collect(),
            upper: model.upper.iter().zip(&e.upper).map(|(m, e)| m.max(*e)).collect(),
        }
    };
    let (b80, b95) = match bands {
        Some((m80, m95)) => (union(m80, 0.80), union(m95, 0.95)),
        None => (empirical(0.80), empirical(0.95)),
    };
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
            let row =
                [choice.b95.lower[h], choice.b80.lower[h], choice.point[h], choice.b80.upper[h], choice.b95.upper[h]];
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
