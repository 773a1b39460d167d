//! One run: the bought-together model and the customer tables of a lake as
//! of a day, written as the five `schemas::customers` tables.

use std::time::Instant;

use analytics::query::QueryLimits;
use analytics::store::DataStore;
use chrono::NaiveDate;
use schemas::customers::{
    AFFINITY_TOP_K, CUSTOMER_COHORTS_TABLE, CUSTOMER_PRODUCTS_TABLE, CUSTOMER_SEGMENTS_TABLE, CUSTOMERS_DAILY_TABLE,
    DEFAULT_MIN_SUPPORT, PRODUCT_AFFINITY_TABLE, PRODUCT_POPULARITY_TABLE,
};
use schemas::tables::{PARTITION_COLUMN, Table};

use crate::{CustomersError, affinity, segments, table};

#[derive(Clone, Debug)]
pub struct CustomersOptions {
    /// The last day of orders read (default: the lake's latest).
    pub as_of: Option<NaiveDate>,
    /// Orders holding both products, at least, for a pair to be kept.
    pub min_support: u64,
    pub limits: QueryLimits,
    /// Which tables to build.
    pub parts: Parts,
}

/// The bought-together model, the customer tables, or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Parts {
    #[default]
    All,
    /// `product_affinity` and `product_popularity`.
    Affinity,
    /// `customer_segments`, `customer_cohorts` and `customers_daily`.
    Customers,
}

impl Default for CustomersOptions {
    fn default() -> Self {
        CustomersOptions {
            as_of: None,
            min_support: DEFAULT_MIN_SUPPORT,
            limits: QueryLimits::default(),
            parts: Parts::All,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct CustomersReport {
    pub as_of: Option<NaiveDate>,
    /// Orders read by the affinity model.
    pub orders: u64,
    pub products: usize,
    /// Pairs at or above the minimum support (both directions).
    pub pairs: usize,
    pub affinity_rows: usize,
    pub customers: usize,
    pub cohort_cells: usize,
    pub days: usize,
    /// Rows of `customer_products`.
    pub customer_products: usize,
    pub affinity_seconds: f64,
    pub customers_seconds: f64,
    pub bytes: usize,
}

/// The latest day the lake has order lines on.
pub async fn latest_day(store: &DataStore) -> Result<Option<NaiveDate>, CustomersError> {
    Ok(store.partition_days(Table::OrderItems.name(), PARTITION_COLUMN).await?.pop())
}

/// Builds every table from scratch as of `options.as_of`; `None` when the
/// lake has no orders yet.
pub async fn build(store: &DataStore, options: &CustomersOptions) -> Result<CustomersReport, CustomersError> {
    let as_of = match options.as_of {
        Some(day) => day,
        None => match latest_day(store).await? {
            Some(day) => day,
            None => return Ok(CustomersReport::default()),
        },
    };
    let (ctx, _) = analytics::query::session(store, &options.limits).await?;
    if !ctx.table_exist(Table::OrderItems.name())? || !ctx.table_exist(Table::Orders.name())? {
        return Ok(CustomersReport::default());
    }
    let mut report = CustomersReport { as_of: Some(as_of), ..CustomersReport::default() };

    if options.parts != Parts::Customers {
        let started = Instant::now();
        let model = affinity::count(&ctx, options.min_support, Some(as_of), Some(AFFINITY_TOP_K)).await?;
        let affinity = table::affinity_batch(&model)?;
        let popularity = table::popularity_batch(&model)?;
        report.affinity_seconds = started.elapsed().as_secs_f64();
        (report.orders, report.products, report.pairs) = (model.orders, model.products.len(), model.all_pairs);
        report.affinity_rows = affinity.num_rows();
        drop(model);
        report.bytes += table::write(store, PRODUCT_AFFINITY_TABLE, as_of, affinity).await?;
        report.bytes += table::write(store, PRODUCT_POPULARITY_TABLE, as_of, popularity).await?;
    }
    if options.parts != Parts::Affinity {
        let started = Instant::now();
        let customers = segments::customer_tables(&ctx, as_of).await?;
        (report.customers, report.cohort_cells, report.days) =
            (customers.segments.num_rows(), customers.cohorts.num_rows(), customers.daily.num_rows());
        for (name, batch) in [
            (CUSTOMER_SEGMENTS_TABLE, customers.segments),
            (CUSTOMER_COHORTS_TABLE, customers.cohorts),
            (CUSTOMERS_DAILY_TABLE, customers.daily),
        ] {
            report.bytes += table::write(store, name, as_of, batch).await?;
        }
        let bought = crate::customer_products::customer_products(&ctx, as_of).await?;
        report.customer_products = bought.num_rows();
        report.bytes += table::write(store, CUSTOMER_PRODUCTS_TABLE, as_of, bought).await?;
        report.customers_seconds = started.elapsed().as_secs_f64();
    }
    Ok(report)
}
