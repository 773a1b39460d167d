//! Recommendations and customer analytics, answered from the tables
//! `orderstream customers` writes (`schemas::customers`). Each run's tables
//! are immutable, so what an answer needs is read once per run (`as_of`)
//! and kept: the bought-together model with product names, and the
//! customer figures (segments, CLV, cohorts, new vs returning).
//!
//! - `GET /api/recommendations?product_id&limit`
//! - `GET /api/recommendations/personalized?customer_id&limit`
//! - `GET /api/analytics/customers/{segments,clv,cohorts,new-vs-returning}`

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use customers::recommend::{Pick, Recommender};
use schemas::ProductView;
use schemas::customers::{
    CUSTOMER_COHORTS_TABLE, CUSTOMER_PRODUCTS_TABLE, CUSTOMER_SEGMENTS_TABLE, CUSTOMERS_DAILY_TABLE,
    DEFAULT_RECOMMENDATIONS, MAX_RECOMMENDATIONS, PRODUCT_AFFINITY_TABLE, PRODUCT_POPULARITY_TABLE,
    RecommendationReason, Segment,
};
use schemas::forecast::AS_OF_COLUMN;
use serde::{Deserialize, Serialize};
use server::http::HttpError;

use crate::bloom_index::DateScope;
use crate::params::{self, Days, Q, invalid, number, unprocessable};
use crate::sql_rows::{has, typed_rows};
use crate::{Dashboard, DashboardError};

/// A kept model is read again after this long even when no new run came
/// (the live catalog's names may have changed).
pub const KEEP_FOR: Duration = Duration::from_secs(300);

/// One value per run of the customers job, loaded once by whoever asks
/// first (the others wait for it rather than load it again).
pub struct PerRun<T> {
    slot: tokio::sync::Mutex<Option<(NaiveDate, Instant, Arc<T>)>>,
}

impl<T> Default for PerRun<T> {
    fn default() -> Self {
        PerRun { slot: tokio::sync::Mutex::new(None) }
    }
}

impl<T> PerRun<T> {
    pub async fn get<F, Fut>(&self, as_of: NaiveDate, load: F) -> Result<Arc<T>, HttpError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, HttpError>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some((day, at, value)) = slot.as_ref()
            && *day == as_of
            && at.elapsed() < KEEP_FOR
        {
            return Ok(value.clone());
        }
        let value = Arc::new(load().await?);
        *slot = Some((as_of, Instant::now(), value.clone()));
        Ok(value)
    }
}

/// What the customer endpoints keep per run.
#[derive(Default)]
pub struct CustomersCache {
    pub model: PerRun<NamedModel>,
    pub figures: PerRun<crate::customer_figures::Figures>,
}

/// The latest run that wrote `table`, or a 503 saying none has.
pub async fn latest_run(state: &Dashboard, table: &str) -> Result<NaiveDate, HttpError> {
    let runs = customers::table::partitions(state.lake.store(), table).await.map_err(DashboardError::from)?;
    match runs.last() {
        Some(day) if has(state, &[table]).await => Ok(*day),
        _ => Err(HttpError {
            retry_after_secs: Some(60),
            ..HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "model_not_built",
                format!(
                    "no {table} yet: `orderstream customers` builds it (`up` and `analytics` run it at start and hourly)"
                ),
            )
        }),
    }
}

impl From<customers::CustomersError> for DashboardError {
    fn from(e: customers::CustomersError) -> Self {
        match e {
            customers::CustomersError::DataFusion(e) => DashboardError::DataFusion(e),
            customers::CustomersError::Analytics(e) => DashboardError::Analytics(e),
            other => DashboardError::Customers(other),
        }
    }
}

/// Rows of a model read at most (`AFFINITY_TOP_K` pairs for 1M products).
const MODEL_ROWS: usize = 50_000_000;

/// The model and what to call its products.
pub struct NamedModel {
    pub model: Recommender,
    /// Product id → (name, category): the live catalog over the lake's
    /// `products` table.
    pub names: HashMap<String, (String, String)>,
}

async fn load_model(state: &Dashboard, as_of: NaiveDate) -> Result<NamedModel, HttpError> {
    let [popularity, pairs] = Recommender::queries(as_of);
    let timeout = state.settings.query_timeout;
    let (popularity, pairs) = tokio::try_join!(
        state.lake.collect(&popularity, MODEL_ROWS, timeout),
        state.lake.collect(&pairs, MODEL_ROWS, timeout)
    )?;
    if popularity.truncated || pairs.truncated {
        return Err(DashboardError::Internal(format!("the model has more than {MODEL_ROWS} rows")).into());
    }
    let model = Recommender::from_batches(as_of, &popularity.batches, &pairs.batches).map_err(DashboardError::from)?;
    let mut names = HashMap::new();
    if has(state, &["products"]).await {
        #[derive(Deserialize)]
        struct Named {
            product_id: String,
            name: String,
            category: String,
        }
        let sql = "SELECT product_id, name, category FROM products";
        for p in typed_rows::<Named>(state, sql).await.unwrap_or_default() {
            names.insert(p.product_id, (p.name, p.category));
        }
    }
    match processor::catalog::product_views(&state.js, state.settings.low_stock_threshold).await {
        Ok(catalog) => {
            for ProductView { product_id, name, category, .. } in catalog {
                names.insert(product_id, (name, category));
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the catalog to name recommendations"),
    }
    Ok(NamedModel { model, names })
}

/// The latest run's model; its tables are checked for only when a new run
/// is read, not on every request.
async fn model(state: &Dashboard) -> Result<Arc<NamedModel>, HttpError> {
    let as_of = latest_run(state, PRODUCT_AFFINITY_TABLE).await?;
    state
        .customers
        .model
        .get(as_of, || async move {
            latest_run(state, PRODUCT_POPULARITY_TABLE).await?;
            load_model(state, as_of).await
        })
        .await
}

#[derive(Deserialize)]
pub struct RecommendationsQuery {
    product_id: Option<String>,
    customer_id: Option<String>,
    limit: Option<String>,
}

fn limit(value: Option<&str>) -> Result<usize, HttpError> {
    number(
        "limit",
        value,
        DEFAULT_RECOMMENDATIONS,
        1..=MAX_RECOMMENDATIONS,
        &format!("limit is 1 to {MAX_RECOMMENDATIONS}"),
    )
}

fn required_id(field: &str, value: Option<&str>) -> Result<String, HttpError> {
    match value {
        None | Some("") => Err(invalid(field, format!("{field} is required"))),
        Some(v) => params::id(field, Some(v))
            .map_err(unprocessable)?
            .ok_or_else(|| invalid(field, format!("{field} is required"))),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Recommendation {
    pub product_id: String,
    pub name: Option<String>,
    pub category: Option<String>,
    pub score: f64,
    /// Orders holding both (0 when the reason is a bestseller).
    pub support: u64,
    pub reason: RecommendationReason,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Recommendations {
    pub product_id: String,
    /// The model's run: the last day of orders it counted.
    pub as_of: Option<NaiveDate>,
    pub recommendations: Vec<Recommendation>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PersonalizedRecommendations {
    pub customer_id: String,
    pub as_of: Option<NaiveDate>,
    /// The customer's products the picks start from, most recent first.
    pub based_on: Vec<String>,
    /// How many products the customer has bought (none is recommended).
    pub bought: usize,
    pub recommendations: Vec<Recommendation>,
}

fn named(model: &NamedModel, picks: Vec<Pick>) -> Vec<Recommendation> {
    picks
        .into_iter()
        .map(|p| {
            let (name, category) = match model.names.get(&p.product_id) {
                Some((n, c)) => (Some(n.clone()), Some(c.clone())),
                None => (None, model.model.category_of(&p.product_id).map(str::to_string)),
            };
            Recommendation {
                product_id: p.product_id,
                name,
                category,
                score: p.score,
                support: p.support,
                reason: p.reason,
            }
        })
        .collect()
}

/// `GET /api/recommendations`: bought together with a product.
#[utoipa::path(
    get, path = "/api/recommendations", tag = "customers",
    params(("product_id" = String, Query), ("limit" = Option<usize>, Query, description = "1 to 100, default 10")),
    responses((status = 200, body = Recommendations), (status = 404, body = schemas::ApiError),
        (status = 422, body = schemas::ApiError), (status = 503, body = schemas::ApiError))
)]
pub async fn recommendations(
    State(state): State<Dashboard>,
    Q(q): Q<RecommendationsQuery>,
) -> Result<Json<Recommendations>, HttpError> {
    let product_id = required_id("product_id", q.product_id.as_deref())?;
    let limit = limit(q.limit.as_deref())?;
    let model = model(&state).await?;
    let category = model.names.get(&product_id).map(|(_, c)| c.as_str());
    if category.is_none() && !model.model.knows(&product_id) {
        return Err(HttpError::not_found("product").with_field("product_id"));
    }
    let picks = model.model.for_product(&product_id, category, limit);
    Ok(Json(Recommendations { product_id, as_of: model.model.as_of, recommendations: named(&model, picks) }))
}

/// The customer's products, most recently bought first: from the latest
/// customers run's `customer_products` (one row group read), and the order
/// lines of the days after it (the files that may hold the customer, by
/// their bloom filters); from the order lines alone when no run has it.
async fn bought_by(state: &Dashboard, customer_id: &str) -> Result<Vec<String>, HttpError> {
    if !has(state, &["order_items"]).await {
        return Ok(Vec::new());
    }
    #[derive(Deserialize)]
    struct Bought {
        product_id: String,
    }
    let registered = has(state, &[CUSTOMER_PRODUCTS_TABLE]).await;
    let run = customers::table::partitions(state.lake.store(), CUSTOMER_PRODUCTS_TABLE)
        .await
        .map_err(DashboardError::from)?
        .last()
        .copied()
        .filter(|_| registered);
    let scope = match run {
        Some(as_of) => DateScope::Between(as_of.succ_opt(), None),
        None => DateScope::Between(None, None),
    };
    let days = state
        .blooms
        .dates_that_may_hold(state.lake.store(), "order_items", &["customer_id"], scope, &[customer_id])
        .await?;
    let recent = async {
        if days.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT product_id, max(placed_at) AS last FROM order_items WHERE {} AND customer_id = '{customer_id}' \
             GROUP BY product_id ORDER BY last DESC, product_id",
            Days::Only(days.clone()).predicate("date", 0)
        );
        typed_rows::<Bought>(state, &sql).await
    };
    let earlier = async {
        let Some(as_of) = run else { return Ok(Vec::new()) };
        let sql = format!(
            "SELECT product_id FROM {CUSTOMER_PRODUCTS_TABLE} WHERE {AS_OF_COLUMN} = '{as_of}' \
             AND customer_id = '{customer_id}' ORDER BY last_bought DESC, product_id"
        );
        typed_rows::<Bought>(state, &sql).await
    };
    let (recent, earlier) = tokio::try_join!(recent, earlier)?;
    let mut seen = HashSet::new();
    Ok(recent.into_iter().chain(earlier).map(|b| b.product_id).filter(|p| seen.insert(p.clone())).collect())
}

/// Products a customer's recent baskets start from.
const RECENT_PRODUCTS: usize = 20;

/// `GET /api/recommendations/personalized`: for a customer, from their
/// recent orders, none of what they bought.
#[utoipa::path(
    get, path = "/api/recommendations/personalized", tag = "customers",
    params(("customer_id" = String, Query), ("limit" = Option<usize>, Query, description = "1 to 100, default 10")),
    responses((status = 200, body = PersonalizedRecommendations), (status = 404, body = schemas::ApiError),
        (status = 422, body = schemas::ApiError), (status = 503, body = schemas::ApiError))
)]
pub async fn personalized(
    State(state): State<Dashboard>,
    Q(q): Q<RecommendationsQuery>,
) -> Result<Json<PersonalizedRecommendations>, HttpError> {
    let customer_id = required_id("customer_id", q.customer_id.as_deref())?;
    let limit = limit(q.limit.as_deref())?;
    let model = model(&state).await?;
    let bought = bought_by(&state, &customer_id).await?;
    if bought.is_empty() {
        return Err(HttpError::new(StatusCode::NOT_FOUND, "not_found", "no order history for this customer")
            .with_field("customer_id"));
    }
    let recent: Vec<String> = bought.iter().take(RECENT_PRODUCTS).cloned().collect();
    let exclude: HashSet<String> = bought.iter().cloned().collect();
    let picks = model.model.for_customer(&recent, &exclude, limit);
    Ok(Json(PersonalizedRecommendations {
        customer_id,
        as_of: model.model.as_of,
        based_on: recent,
        bought: bought.len(),
        recommendations: named(&model, picks),
    }))
}

/// Reads each new run's model and figures ahead of the requests (and
/// again before they are kept too long), so no visitor waits for them; a
/// failure (no run yet) is only logged.
pub async fn warm(state: Dashboard) {
    loop {
        if let Err(e) = model(&state).await {
            tracing::debug!(error = ?e.body, "no recommendation model to read ahead");
        }
        if let Err(e) = figures(&state).await {
            tracing::debug!(error = ?e.body, "no customer figures to read ahead");
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}

/// The run the customer figures come from; they load once per run.
pub async fn figures(state: &Dashboard) -> Result<Arc<crate::customer_figures::Figures>, HttpError> {
    let as_of = latest_run(state, CUSTOMER_SEGMENTS_TABLE).await?;
    state
        .customers
        .figures
        .get(as_of, || async move {
            for table in [CUSTOMER_COHORTS_TABLE, CUSTOMERS_DAILY_TABLE] {
                latest_run(state, table).await?;
            }
            crate::customer_figures::load(state, as_of).await
        })
        .await
}

#[derive(Deserialize)]
pub struct SegmentsQuery {
    currency: Option<String>,
    segment: Option<String>,
    limit: Option<String>,
}

/// `GET /api/analytics/customers/segments`: customers per segment, and the
/// most valuable customers of one segment (churn risk by default).
#[utoipa::path(
    get, path = "/api/analytics/customers/segments", tag = "customers",
    params(("currency" = Option<String>, Query), ("segment" = Option<String>, Query, description = "churn_risk (default), high_value, returning or new"),
        ("limit" = Option<usize>, Query, description = "customers listed, 1 to 200, default 50")),
    responses((status = 200, body = crate::customer_figures::SegmentsAnswer), (status = 422, body = schemas::ApiError), (status = 503, body = schemas::ApiError))
)]
pub async fn segments(
    State(state): State<Dashboard>,
    Q(q): Q<SegmentsQuery>,
) -> Result<Json<crate::customer_figures::SegmentsAnswer>, HttpError> {
    let currency = params::currency(q.currency.as_deref()).map_err(unprocessable)?;
    let segment = match q.segment.as_deref() {
        None | Some("") => Segment::ChurnRisk,
        Some(s) => Segment::parse(s)
            .ok_or_else(|| invalid("segment", "segment is churn_risk, high_value, returning or new"))?,
    };
    let listed = crate::customer_figures::LISTED;
    let limit = number("limit", q.limit.as_deref(), 50, 1..=listed, &format!("limit is 1 to {listed}"))?;
    let figures = figures(&state).await?;
    Ok(Json(figures.segments(&currency, segment, limit)))
}

#[derive(Deserialize)]
pub struct CurrencyQuery {
    currency: Option<String>,
}

/// `GET /api/analytics/customers/clv`: the lifetime value distribution.
#[utoipa::path(
    get, path = "/api/analytics/customers/clv", tag = "customers",
    params(("currency" = Option<String>, Query)),
    responses((status = 200, body = crate::customer_figures::Clv), (status = 422, body = schemas::ApiError), (status = 503, body = schemas::ApiError))
)]
pub async fn clv(
    State(state): State<Dashboard>,
    Q(q): Q<CurrencyQuery>,
) -> Result<Json<crate::customer_figures::Clv>, HttpError> {
    let currency = params::currency(q.currency.as_deref()).map_err(unprocessable)?;
    let figures = figures(&state).await?;
    Ok(Json(figures.clv(&currency)))
}

#[derive(Deserialize)]
pub struct CohortsQuery {
    months: Option<String>,
}

/// `GET /api/analytics/customers/cohorts`: retention by month of first order.
#[utoipa::path(
    get, path = "/api/analytics/customers/cohorts", tag = "customers",
    params(("months" = Option<usize>, Query, description = "the latest cohorts shown, 1 to 120, default 12")),
    responses((status = 200, body = crate::customer_figures::Cohorts), (status = 422, body = schemas::ApiError), (status = 503, body = schemas::ApiError))
)]
pub async fn cohorts(
    State(state): State<Dashboard>,
    Q(q): Q<CohortsQuery>,
) -> Result<Json<crate::customer_figures::Cohorts>, HttpError> {
    let months = number("months", q.months.as_deref(), 12, 1..=120, "months is 1 to 120")?;
    let figures = figures(&state).await?;
    Ok(Json(figures.cohorts(months)))
}

#[derive(Deserialize)]
pub struct DaysQuery {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /api/analytics/customers/new-vs-returning`: per day.
#[utoipa::path(
    get, path = "/api/analytics/customers/new-vs-returning", tag = "customers",
    params(("from" = Option<String>, Query, description = "YYYY-MM-DD, default 89 days before to"),
        ("to" = Option<String>, Query, description = "YYYY-MM-DD, default the run's as_of")),
    responses((status = 200, body = crate::customer_figures::NewVsReturning), (status = 422, body = schemas::ApiError), (status = 503, body = schemas::ApiError))
)]
pub async fn new_vs_returning(
    State(state): State<Dashboard>,
    Q(q): Q<DaysQuery>,
) -> Result<Json<crate::customer_figures::NewVsReturning>, HttpError> {
    let date = |field: &str, v: Option<&str>| params::date(field, v).map_err(unprocessable);
    let (from, to) = (date("from", q.from.as_deref())?, date("to", q.to.as_deref())?);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(invalid("from", "from is on or before to"));
    }
    let figures = figures(&state).await?;
    Ok(Json(figures.new_vs_returning(from, to)))
}
