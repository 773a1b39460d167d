//! The customer figures of one run, read once from its tables and kept
//! (see [`crate::customers_api`]): per currency, customers per segment,
//! each segment's most valuable customers and the lifetime value
//! distribution; the cohort matrix; new against returning per day.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use schemas::Amount;
use schemas::customers::{
    CHURN_AFTER_DAYS, CUSTOMER_COHORTS_TABLE, CUSTOMER_SEGMENTS_TABLE, CUSTOMERS_DAILY_TABLE, HIGH_VALUE_SHARE, Segment,
};
use schemas::forecast::AS_OF_COLUMN;
use serde::{Deserialize, Serialize};
use server::http::HttpError;

use crate::Dashboard;
use crate::sql_rows::typed_rows;

/// Customers listed per segment at most.
pub const LISTED: usize = 200;
/// The lifetime value buckets' lower edges, in the currency's units.
pub const CLV_EDGES: [u32; 12] = [0, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000];

#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct CustomerRow {
    pub customer_id: String,
    pub currency: String,
    pub orders: u64,
    pub lifetime_value: Amount,
    pub average_order_value: Amount,
    pub first_order_at: DateTime<Utc>,
    pub last_order_at: DateTime<Utc>,
    pub days_since_last_order: i64,
    pub segment: Segment,
}

#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct SegmentSummary {
    pub segment: Segment,
    pub customers: u64,
    /// Of the currency's customers.
    pub share: f64,
    pub orders: u64,
    pub lifetime_value: Amount,
    /// Lifetime value per customer.
    pub average_lifetime_value: Option<Amount>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SegmentsAnswer {
    pub as_of: NaiveDate,
    pub currency: String,
    pub customers: u64,
    /// What the segments mean (the first that applies).
    pub rules: String,
    pub segments: Vec<SegmentSummary>,
    /// The listed segment's customers, most valuable first.
    pub segment: Segment,
    pub list: Vec<CustomerRow>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ClvBucket {
    pub from: Amount,
    /// Null for the last, open bucket.
    pub to: Option<Amount>,
    pub customers: u64,
}

#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Clv {
    pub as_of: Option<NaiveDate>,
    pub currency: String,
    pub customers: u64,
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p75: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub buckets: Vec<ClvBucket>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Cohort {
    /// The first day of the cohort's month.
    pub cohort: NaiveDate,
    pub customers: u64,
    /// Customers ordering in month +0 (all of them), +1, ...
    pub active: Vec<u64>,
    pub retention: Vec<f64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Cohorts {
    pub as_of: NaiveDate,
    pub cohorts: Vec<Cohort>,
}

#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct DayCustomers {
    pub day: NaiveDate,
    pub new_customers: u64,
    pub returning_customers: u64,
    pub new_customer_orders: u64,
    pub returning_customer_orders: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewVsReturning {
    pub as_of: NaiveDate,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: Vec<DayCustomers>,
    pub new_customers: u64,
    pub returning_customers: u64,
}

pub struct Figures {
    pub as_of: NaiveDate,
    summaries: BTreeMap<String, Vec<SegmentSummary>>,
    lists: BTreeMap<(String, Segment), Vec<CustomerRow>>,
    clv: BTreeMap<String, Clv>,
    cohorts: Vec<Cohort>,
    days: Vec<DayCustomers>,
}

#[derive(Deserialize)]
struct SummaryRow {
    currency: String,
    segment: Segment,
    customers: u64,
    orders: u64,
    lifetime_value: Option<Amount>,
}

#[derive(Deserialize)]
struct ClvRow {
    currency: String,
    customers: u64,
    mean: Option<f64>,
    p50: Option<f64>,
    p75: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
}

#[derive(Deserialize)]
struct BucketRow {
    currency: String,
    bucket: usize,
    customers: u64,
}

#[derive(Deserialize)]
struct CohortRow {
    cohort: NaiveDate,
    month_offset: usize,
    customers: u64,
    active: u64,
    retention: f64,
}

/// The SQL of each figure, over `as_of`'s partition: the same text the
/// benchmark gives DuckDB.
pub fn queries(as_of: NaiveDate) -> [String; 6] {
    let on = format!("{AS_OF_COLUMN} = '{as_of}'");
    let value = "CAST(lifetime_value AS DOUBLE)";
    let percentile = |p: f64, name: &str| format!("percentile_cont({p}) WITHIN GROUP (ORDER BY {value}) AS {name}");
    let bucket = CLV_EDGES
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, edge)| format!("WHEN lifetime_value < {edge} THEN {}", i - 1))
        .collect::<Vec<_>>()
        .join(" ");
    [
        format!(
            "SELECT currency, segment, count(*) AS customers, sum(orders) AS orders, sum(lifetime_value) AS lifetime_value \
             FROM {CUSTOMER_SEGMENTS_TABLE} WHERE {on} GROUP BY currency, segment"
        ),
        format!(
            "SELECT customer_id, currency, orders, lifetime_value, average_order_value, first_order_at, last_order_at, \
             days_since_last_order, segment FROM (SELECT *, row_number() OVER (PARTITION BY currency, segment \
             ORDER BY lifetime_value DESC, customer_id) AS n FROM {CUSTOMER_SEGMENTS_TABLE} WHERE {on}) WHERE n <= {LISTED} \
             ORDER BY currency, segment, n"
        ),
        format!(
            "SELECT currency, count(*) AS customers, avg({value}) AS mean, {}, {}, {}, {} \
             FROM {CUSTOMER_SEGMENTS_TABLE} WHERE {on} GROUP BY currency",
            percentile(0.5, "p50"),
            percentile(0.75, "p75"),
            percentile(0.9, "p90"),
            percentile(0.99, "p99")
        ),
        format!(
            "SELECT currency, CASE {bucket} ELSE {} END AS bucket, count(*) AS customers \
             FROM {CUSTOMER_SEGMENTS_TABLE} WHERE {on} GROUP BY 1, 2",
            CLV_EDGES.len() - 1
        ),
        format!(
            "SELECT cohort, month_offset, customers, active, retention FROM {CUSTOMER_COHORTS_TABLE} WHERE {on} \
             ORDER BY cohort, month_offset"
        ),
        format!(
            "SELECT day, new_customers, returning_customers, new_customer_orders, returning_customer_orders \
             FROM {CUSTOMERS_DAILY_TABLE} WHERE {on} ORDER BY day"
        ),
    ]
}

pub async fn load(state: &Dashboard, as_of: NaiveDate) -> Result<Figures, HttpError> {
    let [summary, lists, clv, buckets, cohorts, days] = queries(as_of);
    let (summary, lists, clv, buckets, cohorts, days) = tokio::try_join!(
        typed_rows::<SummaryRow>(state, &summary),
        typed_rows::<CustomerRow>(state, &lists),
        typed_rows::<ClvRow>(state, &clv),
        typed_rows::<BucketRow>(state, &buckets),
        typed_rows::<CohortRow>(state, &cohorts),
        typed_rows::<DayCustomers>(state, &days),
    )?;
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for row in &summary {
        *totals.entry(row.currency.clone()).or_default() += row.customers;
    }
    let mut summaries: BTreeMap<String, Vec<SegmentSummary>> = BTreeMap::new();
    for row in summary {
        let value = row.lifetime_value.unwrap_or_default();
        let all = totals.get(&row.currency).copied().unwrap_or(0).max(1);
        summaries.entry(row.currency).or_default().push(SegmentSummary {
            segment: row.segment,
            customers: row.customers,
            share: row.customers as f64 / all as f64,
            orders: row.orders,
            lifetime_value: value,
            average_lifetime_value: value.mean_over(row.customers),
        });
    }
    for list in summaries.values_mut() {
        list.sort_by_key(|s| s.segment);
    }
    let mut by_segment: BTreeMap<(String, Segment), Vec<CustomerRow>> = BTreeMap::new();
    for row in lists {
        by_segment.entry((row.currency.clone(), row.segment)).or_default().push(row);
    }
    let mut distributions: BTreeMap<String, Clv> = BTreeMap::new();
    for row in clv {
        distributions.insert(
            row.currency.clone(),
            Clv {
                as_of: Some(as_of),
                currency: row.currency,
                customers: row.customers,
                mean: row.mean,
                p50: row.p50,
                p75: row.p75,
                p90: row.p90,
                p99: row.p99,
                buckets: empty_buckets(),
            },
        );
    }
    for row in buckets {
        if let Some(b) = distributions.get_mut(&row.currency).and_then(|d| d.buckets.get_mut(row.bucket)) {
            b.customers = row.customers;
        }
    }
    let mut matrix: Vec<Cohort> = Vec::new();
    for row in cohorts {
        if matrix.last().is_none_or(|c| c.cohort != row.cohort) {
            matrix.push(Cohort {
                cohort: row.cohort,
                customers: row.customers,
                active: Vec::new(),
                retention: Vec::new(),
            });
        }
        if let Some(c) = matrix.last_mut()
            && c.active.len() == row.month_offset
        {
            c.active.push(row.active);
            c.retention.push(row.retention);
        }
    }
    Ok(Figures { as_of, summaries, lists: by_segment, clv: distributions, cohorts: matrix, days })
}

fn empty_buckets() -> Vec<ClvBucket> {
    let amount =
        |units: u32| Amount(i128::from(units) * 10_i128.pow(schemas::tables::MONEY_SCALE.unsigned_abs().into()));
    CLV_EDGES
        .iter()
        .enumerate()
        .map(|(i, from)| ClvBucket {
            from: amount(*from),
            to: CLV_EDGES.get(i + 1).map(|to| amount(*to)),
            customers: 0,
        })
        .collect()
}

impl Figures {
    pub fn segments(&self, currency: &str, segment: Segment, limit: usize) -> SegmentsAnswer {
        let segments = self.summaries.get(currency).cloned().unwrap_or_default();
        let list = self.lists.get(&(currency.to_string(), segment)).map(|l| l.iter().take(limit).cloned().collect());
        SegmentsAnswer {
            as_of: self.as_of,
            currency: currency.to_string(),
            customers: segments.iter().map(|s| s.customers).sum(),
            rules: format!(
                "one segment per customer, the first that applies: churn_risk (no order in {CHURN_AFTER_DAYS} days), \
                 high_value (top {:.0}% by lifetime value), returning (2+ orders), new (1 order); \
                 cancelled orders do not count",
                HIGH_VALUE_SHARE * 100.0
            ),
            segments,
            segment,
            list: list.unwrap_or_default(),
        }
    }

    pub fn clv(&self, currency: &str) -> Clv {
        self.clv.get(currency).cloned().unwrap_or_else(|| Clv {
            as_of: Some(self.as_of),
            currency: currency.to_string(),
            buckets: empty_buckets(),
            ..Clv::default()
        })
    }

    pub fn cohorts(&self, months: usize) -> Cohorts {
        let skip = self.cohorts.len().saturating_sub(months);
        Cohorts { as_of: self.as_of, cohorts: self.cohorts[skip..].to_vec() }
    }

    pub fn new_vs_returning(&self, from: Option<NaiveDate>, to: Option<NaiveDate>) -> NewVsReturning {
        let to = to.unwrap_or(self.as_of);
        let from = from.unwrap_or(to - Duration::days(89));
        let days: Vec<DayCustomers> = self.days.iter().filter(|d| d.day >= from && d.day <= to).cloned().collect();
        NewVsReturning {
            as_of: self.as_of,
            from,
            to,
            new_customers: days.iter().map(|d| d.new_customers).sum(),
            returning_customers: days.iter().map(|d| d.returning_customers).sum(),
            days,
        }
    }
}
