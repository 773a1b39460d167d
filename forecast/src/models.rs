//! The candidate methods. AutoETS and MSTL (STL decomposition at the weekly,
//! and once two years exist the yearly, period, with AutoETS on the
//! deseasonalised series) come from Grafana's augurs, with their analytic
//! prediction intervals. Seasonal naive, the mean, and the two
//! intermittent-demand methods (Croston with the Syntetos–Boylan
//! approximation, and Teunter–Syntetos–Babai) are a few lines each and
//! augurs has none of them, so they are here; they give no intervals, and
//! the caller puts empirical ones from their backtest residuals around them.

use augurs::ets::AutoETS;
use augurs::ets::trend::AutoETSTrendModel;
use augurs::mstl::MSTLModel;
use augurs::{Fit, Forecast, Predict};

/// A week, in days: the seasonal period every daily demand series has.
pub const WEEK: usize = 7;
/// A year, in days: MSTL's second period once two years of history exist.
pub const YEAR: usize = 365;
/// The smoothing constant of Croston/SBA and TSB: statsforecast's default,
/// and the value the intermittent-demand literature recommends (0.05–0.2).
const INTERMITTENT_ALPHA: f64 = 0.1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// The mean of the history: only when there is less than a week of it.
    Mean,
    SeasonalNaive,
    AutoEts,
    Mstl,
    CrostonSba,
    Tsb,
    /// The mean of AutoETS and MSTL (points and bands).
    EtsMstl,
    /// The mean of seasonal naive, AutoETS and MSTL.
    NaiveEtsMstl,
}

impl Method {
    pub const ALL: [Method; 8] = [
        Method::Mean,
        Method::SeasonalNaive,
        Method::AutoEts,
        Method::Mstl,
        Method::CrostonSba,
        Method::Tsb,
        Method::EtsMstl,
        Method::NaiveEtsMstl,
    ];

    /// The methods a combination averages; empty for a single method.
    pub fn members(self) -> &'static [Method] {
        match self {
            Method::EtsMstl => &[Method::AutoEts, Method::Mstl],
            Method::NaiveEtsMstl => &[Method::SeasonalNaive, Method::AutoEts, Method::Mstl],
            _ => &[],
        }
    }

    pub fn parse(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Mean => "mean",
            Method::SeasonalNaive => "seasonal_naive",
            Method::AutoEts => "auto_ets",
            Method::Mstl => "mstl",
            Method::CrostonSba => "croston_sba",
            Method::Tsb => "tsb",
            Method::EtsMstl => "ets_mstl_mean",
            Method::NaiveEtsMstl => "naive_ets_mstl_mean",
        }
    }
}

/// One interval level's bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

/// Point forecasts, and the model's own 80% and 95% bands when it has them.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub point: Vec<f64>,
    pub bands: Option<(Band, Band)>,
}

#[derive(Debug, thiserror::Error)]
#[error("{method}: {message}")]
pub struct ModelError {
    pub method: &'static str,
    pub message: String,
}

fn failed(method: Method, error: impl std::fmt::Display) -> ModelError {
    ModelError { method: method.name(), message: error.to_string() }
}

/// Forecasts `horizon` days after `history` with `method`; `bands` asks for
/// the model's intervals (skipped in backtests, which need only points).
pub fn predict(method: Method, history: &[f64], horizon: usize, bands: bool) -> Result<Prediction, ModelError> {
    if history.is_empty() {
        return Err(failed(method, "no history"));
    }
    match method {
        Method::Mean => Ok(points(vec![mean(history); horizon])),
        Method::SeasonalNaive => Ok(points(seasonal_naive(history, horizon))),
        Method::CrostonSba => Ok(points(vec![croston_sba(history); horizon])),
        Method::Tsb => Ok(points(vec![tsb(history); horizon])),
        Method::AutoEts => {
            let fitted = AutoETS::non_seasonal().fit(history).map_err(|e| failed(method, e))?;
            with_bands(method, &fitted, horizon, bands)
        }
        Method::EtsMstl | Method::NaiveEtsMstl => {
            let members =
                method.members().iter().map(|m| predict(*m, history, horizon, bands)).collect::<Result<Vec<_>, _>>()?;
            Ok(combine(&members))
        }
        Method::Mstl => {
            let mut periods = vec![WEEK];
            if history.len() >= 2 * YEAR {
                periods.push(YEAR);
            }
            if history.len() < 2 * WEEK {
                return Err(failed(method, "needs two weeks of history"));
            }
            let model = MSTLModel::new(periods, AutoETSTrendModel::from(AutoETS::non_seasonal()));
            let fitted = model.fit(history).map_err(|e| failed(method, e))?;
            with_bands(method, &fitted, horizon, bands)
        }
    }
}

/// The mean of predictions: points, and bands when every member has them.
pub fn combine(members: &[Prediction]) -> Prediction {
    let n = members.len().max(1) as f64;
    let horizon = members.first().map_or(0, |m| m.point.len());
    let mean_of = |pick: &dyn Fn(&Prediction) -> Option<&Vec<f64>>| -> Option<Vec<f64>> {
        let columns: Option<Vec<&Vec<f64>>> = members.iter().map(pick).collect();
        columns.map(|cols| (0..horizon).map(|h| cols.iter().map(|c| c[h]).sum::<f64>() / n).collect())
    };
    let point = mean_of(&|m| Some(&m.point)).unwrap_or_default();
    let bands = (|| {
        let b80 = Band {
            lower: mean_of(&|m| m.bands.as_ref().map(|b| &b.0.lower))?,
            upper: mean_of(&|m| m.bands.as_ref().map(|b| &b.0.upper))?,
        };
        let b95 = Band {
            lower: mean_of(&|m| m.bands.as_ref().map(|b| &b.1.lower))?,
            upper: mean_of(&|m| m.bands.as_ref().map(|b| &b.1.upper))?,
        };
        Some((b80, b95))
    })();
    Prediction { point, bands }
}

fn points(point: Vec<f64>) -> Prediction {
    Prediction { point, bands: None }
}

fn with_bands<P: Predict>(method: Method, fitted: &P, horizon: usize, bands: bool) -> Result<Prediction, ModelError> {
    if !bands {
        let forecast = fitted.predict(horizon, None).map_err(|e| failed(method, e))?;
        return finite(method, Prediction { point: forecast.point, bands: None });
    }
    let at = |level: f64| -> Result<(Vec<f64>, Band), ModelError> {
        let Forecast { point, intervals } = fitted.predict(horizon, level).map_err(|e| failed(method, e))?;
        let intervals = intervals.ok_or_else(|| failed(method, "no intervals"))?;
        Ok((point, Band { lower: intervals.lower, upper: intervals.upper }))
    };
    let (point, b80) = at(0.80)?;
    let (_, b95) = at(0.95)?;
    finite(method, Prediction { point, bands: Some((b80, b95)) })
}

/// A model that diverged (NaN or infinite values) is a failed candidate.
fn finite(method: Method, prediction: Prediction) -> Result<Prediction, ModelError> {
    let bands = prediction.bands.iter().flat_map(|(a, b)| [&a.lower, &a.upper, &b.lower, &b.upper]);
    let all = std::iter::once(&prediction.point).chain(bands);
    if all.flat_map(|v| v.iter()).all(|x| x.is_finite()) {
        Ok(prediction)
    } else {
        Err(failed(method, "the fit diverged"))
    }
}

pub fn mean(history: &[f64]) -> f64 {
    history.iter().sum::<f64>() / history.len().max(1) as f64
}

/// The same weekday last week, repeated.
pub fn seasonal_naive(history: &[f64], horizon: usize) -> Vec<f64> {
    let n = history.len();
    if n < WEEK {
        return vec![mean(history); horizon];
    }
    (0..horizon).map(|h| history[n - WEEK + h % WEEK]).collect()
}

/// Croston's method with the Syntetos–Boylan bias correction: demand sizes
/// and intervals between demands smoothed separately, updated only on days
/// with demand; the forecast is `(1 - α/2) · size / interval`.
pub fn croston_sba(history: &[f64]) -> f64 {
    let mut size = None::<f64>;
    let mut interval = 0.0;
    let mut since = 0.0;
    for &y in history {
        since += 1.0;
        if y > 0.0 {
            match size {
                None => {
                    size = Some(y);
                    interval = since;
                }
                Some(z) => {
                    size = Some(z + INTERMITTENT_ALPHA * (y - z));
                    interval += INTERMITTENT_ALPHA * (since - interval);
                }
            }
            since = 0.0;
        }
    }
    match size {
        Some(z) if interval > 0.0 => (1.0 - INTERMITTENT_ALPHA / 2.0) * z / interval,
        _ => 0.0,
    }
}

/// Teunter–Syntetos–Babai: the probability of demand is smoothed every
/// day (so it decays through a long run of zeros, which Croston never
/// notices), the size on days with demand; the forecast is their product.
pub fn tsb(history: &[f64]) -> f64 {
    let nonzero: Vec<f64> = history.iter().copied().filter(|y| *y > 0.0).collect();
    if nonzero.is_empty() {
        return 0.0;
    }
    let mut probability = nonzero.len() as f64 / history.len() as f64;
    let mut size = mean(&nonzero);
    for &y in history {
        let occurred = if y > 0.0 { 1.0 } else { 0.0 };
        probability += INTERMITTENT_ALPHA * (occurred - probability);
        if y > 0.0 {
            size += INTERMITTENT_ALPHA * (y - size);
        }
    }
    probability * size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seasonal_naive_repeats_last_week() {
        let history: Vec<f64> = (0..14).map(f64::from).collect();
        assert_eq!(seasonal_naive(&history, 9), vec![7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 7.0, 8.0]);
        assert_eq!(seasonal_naive(&[2.0, 4.0], 2), vec![3.0, 3.0]);
    }

    #[test]
    fn croston_sba_is_size_over_interval_discounted() {
        // A demand of 4 every 4th day: size 4, interval 4, times 0.95.
        let history: Vec<f64> = (0..40).map(|i| if i % 4 == 3 { 4.0 } else { 0.0 }).collect();
        assert!((croston_sba(&history) - 0.95).abs() < 1e-9);
        assert_eq!(croston_sba(&[0.0; 10]), 0.0);
    }

    #[test]
    fn tsb_decays_after_demand_stops() {
        let mut history: Vec<f64> = (0..40).map(|i| if i % 2 == 0 { 2.0 } else { 0.0 }).collect();
        let before = tsb(&history);
        history.extend([0.0; 30]);
        let after = tsb(&history);
        assert!(after < before / 5.0, "{before} then {after}");
        assert!((croston_sba(&history) - croston_sba(&history[..40])).abs() < 1e-9, "Croston does not decay");
    }

    #[test]
    fn ets_and_mstl_give_nested_bands() {
        let history: Vec<f64> =
            (0..120).map(|i| 20.0 + 5.0 * ((i % 7) as f64) + 0.1 * f64::from(i) + f64::from(i * 37 % 5)).collect();
        for method in [Method::AutoEts, Method::Mstl] {
            let prediction = predict(method, &history, 14, true).unwrap();
            let (b80, b95) = prediction.bands.unwrap();
            for h in 0..14 {
                assert!(b95.lower[h] <= b80.lower[h] && b80.lower[h] <= prediction.point[h], "{method:?}");
                assert!(prediction.point[h] <= b80.upper[h] && b80.upper[h] <= b95.upper[h], "{method:?}");
            }
        }
    }
}
