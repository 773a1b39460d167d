//! `GET /api/analytics/demand-forecast`: one series' history and forecast
//! with its bands, from the `demand_forecast` table when the run for that
//! `as_of` has it, computed on request otherwise (same code, same answer).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{Duration, NaiveDate};
use datafusion::prelude::SessionContext;
use forecast::select::{self, Choice};
use forecast::series::{self, DemandSeries, Selection, literal};
use schemas::forecast::{
    DEMAND_FORECAST_TABLE, DEMAND_HISTORY_TABLE, HISTORY_DAYS, MAX_HORIZON_DAYS, Metric, Scope, TOTAL_KEY,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use server::http::HttpError;

use crate::params::{Q, invalid};
use crate::{Dashboard, DashboardError};

const DEFAULT_HORIZON: usize = 30;

#[derive(Deserialize)]
pub struct ForecastQuery {
    product_id: Option<String>,
    category: Option<String>,
    metric: Option<String>,
    currency: Option<String>,
    horizon: Option<String>,
    as_of: Option<String>,
}

fn key_text(field: &str, value: &str) -> Result<String, HttpError> {
    if !value.is_empty() && value.chars().count() <= 128 && !value.chars().any(char::is_control) {
        Ok(value.to_string())
    } else {
        Err(invalid(field, "1 to 128 printable characters"))
    }
}

/// What a request asks for, checked.
pub struct SeriesRequest {
    pub scope: Scope,
    pub key: String,
    pub metric: Metric,
    pub currency: String,
    pub horizon: usize,
    pub as_of: Option<NaiveDate>,
}

impl SeriesRequest {
    fn parse(q: &ForecastQuery) -> Result<SeriesRequest, HttpError> {
        let (scope, key) = match (q.product_id.as_deref(), q.category.as_deref()) {
            (Some(_), Some(_)) => return Err(invalid("category", "give product_id or category, not both")),
            (Some(p), None) => (Scope::Product, key_text("product_id", p)?),
            (None, Some(c)) => (Scope::Category, key_text("category", c)?),
            (None, None) => (Scope::Total, TOTAL_KEY.to_string()),
        };
        let metric = match q.metric.as_deref() {
            None => Metric::Units,
            Some(m) => Metric::parse(m).ok_or_else(|| invalid("metric", "metric is units or revenue"))?,
        };
        let currency = match q.currency.as_deref() {
            None => "USD".to_string(),
            Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()) => c.to_ascii_uppercase(),
            Some(_) => return Err(invalid("currency", "a currency is an ISO 4217 code such as USD")),
        };
        let horizon = match q.horizon.as_deref() {
            None => DEFAULT_HORIZON,
            Some(h) => h
                .parse::<usize>()
                .ok()
                .filter(|h| (1..=MAX_HORIZON_DAYS as usize).contains(h))
                .ok_or_else(|| invalid("horizon", format!("horizon is 1 to {MAX_HORIZON_DAYS} days")))?,
        };
        let as_of = q
            .as_of
            .as_deref()
            .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| invalid("as_of", "as_of is YYYY-MM-DD")))
            .transpose()?;
        Ok(SeriesRequest { scope, key, metric, currency, horizon, as_of })
    }

    fn filter(&self) -> String {
        format!(
            "scope = {} AND key = {} AND currency = {} AND metric = {}",
            literal(self.scope.as_str()),
            literal(&self.key),
            literal(&self.currency),
            literal(self.metric.as_str())
        )
    }
}

#[utoipa::path(
    get, path = "/api/analytics/demand-forecast", tag = "analytics",
    responses((status = 200, body = DemandForecast), (status = 404, body = schemas::ApiError), (status = 422, body = schemas::ApiError))
)]
pub async fn demand_forecast(
    State(state): State<Dashboard>,
    Q(q): Q<ForecastQuery>,
) -> Result<Json<DemandForecast>, HttpError> {
    let request = SeriesRequest::parse(&q)?;
    let today = chrono::Utc::now().date_naive();
    let as_of = match request.as_of {
        Some(day) => day,
        None => forecast::run::default_as_of(
            forecast::run::latest_day(state.lake.store()).await.map_err(DashboardError::from)?,
            today,
        ),
    };
    let stored_table = crate::sql_rows::has(&state, &[DEMAND_FORECAST_TABLE]).await;
    let history_table = crate::sql_rows::has(&state, &[DEMAND_HISTORY_TABLE]).await;
    let timeout = state.settings.query_timeout;
    let answer = state
        .lake
        .run(timeout, move |ctx| async move { answer(&ctx, request, as_of, stored_table, history_table).await })
        .await?;
    answer.map(Json)
}

async fn answer(
    ctx: &SessionContext,
    request: SeriesRequest,
    as_of: NaiveDate,
    stored_table: bool,
    history_table: bool,
) -> Result<Result<DemandForecast, HttpError>, DashboardError> {
    let selection = Selection::One { scope: request.scope, key: request.key.clone() };
    let stored = if stored_table { stored_points(ctx, &request, as_of).await? } else { None };
    // A run's forecast comes with the history it was made from.
    if let Some((model, points, wape, mase)) = &stored
        && history_table
        && let Some(history) = stored_history(ctx, &request, as_of).await?
    {
        let folds = if wape.is_some() || mase.is_some() { select::FOLDS } else { 0 };
        let backtest = BacktestErrors { wape: *wape, mase: *mase, folds, fold_days: None };
        return Ok(Ok(DemandForecast::of(&request, as_of, model.clone(), backtest, "table", history, points.clone())?));
    }
    // A stored forecast needs only the history the answer shows; one to
    // compute needs all of it.
    let days = if stored.is_some() { HISTORY_DAYS as i64 } else { series::MAX_HISTORY_DAYS };
    let found = series::load_days(ctx, as_of, days, &selection).await?;
    let found = found.into_iter().find(|s| s.currency == request.currency);
    // Stored, but nothing sold in the days shown: a flat zero history.
    let found = match (found, &stored) {
        (None, Some(_)) => Some(DemandSeries {
            scope: request.scope,
            key: request.key.clone(),
            currency: request.currency.clone(),
            first_day: as_of - Duration::days(HISTORY_DAYS as i64 - 1),
            units: vec![0.0; HISTORY_DAYS],
            revenue: vec![0.0; HISTORY_DAYS],
        }),
        (found, _) => found,
    };
    let Some(one) = found else {
        let what = match request.scope {
            Scope::Product => ("product_id", format!("product {}", request.key)),
            Scope::Category => ("category", format!("category {}", request.key)),
            Scope::Total => ("currency", "any order".to_string()),
        };
        return Ok(Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no demand history for {} in {} up to {as_of}", what.1, request.currency),
        )
        .with_field(what.0)));
    };
    let (source, model, points, backtest) = match stored {
        Some((model, points, wape, mase)) => {
            let folds = if wape.is_some() || mase.is_some() { select::FOLDS } else { 0 };
            ("table", model, points, BacktestErrors { wape, mase, folds, fold_days: None })
        }
        None => {
            let values = one.values(request.metric).to_vec();
            let horizon = request.horizon;
            let choice = tokio::task::spawn_blocking(move || select::forecast(&values, horizon))
                .await
                .map_err(|source| DashboardError::Task { what: "the forecast", source })?;
            let backtest = BacktestErrors {
                wape: choice.backtest.wape,
                mase: choice.backtest.mase,
                folds: choice.backtest.folds,
                fold_days: Some(choice.backtest.fold_days),
            };
            ("computed", choice.method.name().to_string(), points_of(&choice, as_of), backtest)
        }
    };
    let history = history(&one, request.metric, as_of);
    Ok(Ok(DemandForecast::of(&request, as_of, model, backtest, source, history, points)?))
}

/// How the chosen model did on the rolling-origin backtest.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BacktestErrors {
    pub wape: Option<f64>,
    pub mase: Option<f64>,
    pub folds: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fold_days: Option<usize>,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct HistoryPoint {
    pub date: NaiveDate,
    pub value: f64,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ForecastPoint {
    pub date: NaiveDate,
    pub forecast: f64,
    pub lo80: f64,
    pub hi80: f64,
    pub lo95: f64,
    pub hi95: f64,
}

/// A series' history and forecast with its intervals.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DemandForecast {
    pub scope: &'static str,
    pub key: String,
    pub metric: &'static str,
    pub currency: String,
    pub as_of: NaiveDate,
    pub horizon_days: usize,
    pub model: String,
    pub backtest: BacktestErrors,
    /// `table` (the daily run's) or `computed` (fitted for this request).
    pub source: &'static str,
    pub history: Vec<HistoryPoint>,
    pub points: Vec<ForecastPoint>,
}

impl DemandForecast {
    fn of(
        request: &SeriesRequest,
        as_of: NaiveDate,
        model: String,
        backtest: BacktestErrors,
        source: &'static str,
        history: Vec<Value>,
        points: Vec<Value>,
    ) -> Result<DemandForecast, DashboardError> {
        let typed = |what: &str, e: serde_json::Error| DashboardError::Encode(format!("a forecast's {what}: {e}"));
        Ok(DemandForecast {
            scope: request.scope.as_str(),
            key: request.key.clone(),
            metric: request.metric.as_str(),
            currency: request.currency.clone(),
            as_of,
            horizon_days: request.horizon,
            model,
            backtest,
            source,
            history: history
                .into_iter()
                .map(serde_json::from_value)
                .collect::<Result<_, _>>()
                .map_err(|e| typed("history", e))?,
            points: points
                .into_iter()
                .map(serde_json::from_value)
                .collect::<Result<_, _>>()
                .map_err(|e| typed("points", e))?,
        })
    }
}

fn history(series: &DemandSeries, metric: Metric, as_of: NaiveDate) -> Vec<Value> {
    let values = series.values(metric);
    let start = values.len().saturating_sub(HISTORY_DAYS);
    let first = as_of - Duration::days((values.len() - start) as i64 - 1);
    values[start..]
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"date": first + Duration::days(i as i64), "value": v}))
        .collect()
}

fn points_of(choice: &Choice, as_of: NaiveDate) -> Vec<Value> {
    (0..choice.point.len())
        .map(|h| {
            json!({
                "date": as_of + Duration::days(h as i64 + 1),
                "forecast": choice.point[h], "lo80": choice.b80.lower[h], "hi80": choice.b80.upper[h],
                "lo95": choice.b95.lower[h], "hi95": choice.b95.upper[h],
            })
        })
        .collect()
}

type Stored = (String, Vec<Value>, Option<f64>, Option<f64>);

/// The run's history rows for the series, `None` when it has none.
async fn stored_history(
    ctx: &SessionContext,
    request: &SeriesRequest,
    as_of: NaiveDate,
) -> Result<Option<Vec<Value>>, DashboardError> {
    let sql = format!(
        "SELECT CAST(date AS VARCHAR) AS date, value FROM {DEMAND_HISTORY_TABLE} \
         WHERE as_of = '{as_of}' AND {} ORDER BY date",
        request.filter()
    );
    let batches = ctx.sql(&sql).await?.collect().await?;
    let rows = crate::sql_rows::json_rows(&batches).map_err(|e| DashboardError::Encode(e.body.message))?;
    Ok((!rows.is_empty()).then_some(rows))
}

/// The run's rows for the series when they cover the horizon.
async fn stored_points(
    ctx: &SessionContext,
    request: &SeriesRequest,
    as_of: NaiveDate,
) -> Result<Option<Stored>, DashboardError> {
    let sql = format!(
        "SELECT CAST(date AS VARCHAR) AS date, forecast, lo80, hi80, lo95, hi95, model, backtest_wape, backtest_mase \
         FROM {DEMAND_FORECAST_TABLE} WHERE as_of = '{as_of}' AND {} ORDER BY date LIMIT {}",
        request.filter(),
        request.horizon
    );
    let batches = ctx.sql(&sql).await?.collect().await?;
    let rows = crate::sql_rows::json_rows(&batches).map_err(|e| DashboardError::Encode(e.body.message))?;
    if rows.len() < request.horizon {
        return Ok(None);
    }
    let first = &rows[0];
    let model = first.get("model").and_then(Value::as_str).unwrap_or_default().to_string();
    let (wape, mase) =
        (first.get("backtest_wape").and_then(Value::as_f64), first.get("backtest_mase").and_then(Value::as_f64));
    let points = rows
        .into_iter()
        .map(|mut row| {
            if let Some(object) = row.as_object_mut() {
                for column in ["model", "backtest_wape", "backtest_mase"] {
                    object.remove(column);
                }
            }
            row
        })
        .collect();
    Ok(Some((model, points, wape, mase)))
}
