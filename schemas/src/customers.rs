//! The customer and recommendation outputs `orderstream customers` writes
//! (crate `customers`), declared once for the writer, the dashboard and SQL.
//!
//! Every table is hive-partitioned by `as_of` (`as_of=YYYY-MM-DD/`): the
//! last day of orders a run read. A run replaces its partition's file.
//!
//! Definitions the tables share:
//! - A customer's **kept orders** are the orders they placed that were not
//!   cancelled (fraud rejections, declined payments, out of stock and
//!   customer cancellations do not count as buying).
//! - **Lifetime value** is the sum of the kept orders' totals (tax
//!   included), per currency.

use serde::{Deserialize, Serialize};

pub const PRODUCT_AFFINITY_TABLE: &str = "product_affinity";
pub const PRODUCT_POPULARITY_TABLE: &str = "product_popularity";
pub const CUSTOMER_SEGMENTS_TABLE: &str = "customer_segments";
pub const CUSTOMER_COHORTS_TABLE: &str = "customer_cohorts";
pub const CUSTOMERS_DAILY_TABLE: &str = "customers_daily";
pub const CUSTOMER_PRODUCTS_TABLE: &str = "customer_products";
pub const TABLES: [&str; 6] = [
    PRODUCT_AFFINITY_TABLE,
    PRODUCT_POPULARITY_TABLE,
    CUSTOMER_SEGMENTS_TABLE,
    CUSTOMER_COHORTS_TABLE,
    CUSTOMERS_DAILY_TABLE,
    CUSTOMER_PRODUCTS_TABLE,
];

/// Orders holding both products, at least, for a pair to be kept.
pub const DEFAULT_MIN_SUPPORT: u64 = 3;
/// Pairs kept per product (its best by cosine).
pub const AFFINITY_TOP_K: usize = 50;
/// A customer is at churn risk after this many days without an order.
pub const CHURN_AFTER_DAYS: i64 = 90;
/// The share of customers (by lifetime value, per currency) that is "high value".
pub const HIGH_VALUE_SHARE: f64 = 0.10;
/// Recommendations a request gets by default, and at most.
pub const DEFAULT_RECOMMENDATIONS: usize = 10;
pub const MAX_RECOMMENDATIONS: usize = 100;
/// Co-occurrence below this support is thin: the category's bestsellers
/// fill the rest of the list.
pub const THIN_SUPPORT: u64 = DEFAULT_MIN_SUPPORT;

/// One segment per customer: the first that applies, in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// No kept order in the last [`CHURN_AFTER_DAYS`] days.
    ChurnRisk,
    /// In the top [`HIGH_VALUE_SHARE`] by lifetime value.
    HighValue,
    /// Two or more kept orders.
    Returning,
    /// One kept order.
    New,
}

impl Segment {
    pub const ALL: [Segment; 4] = [Segment::ChurnRisk, Segment::HighValue, Segment::Returning, Segment::New];

    pub fn as_str(self) -> &'static str {
        match self {
            Segment::ChurnRisk => "churn_risk",
            Segment::HighValue => "high_value",
            Segment::Returning => "returning",
            Segment::New => "new",
        }
    }

    pub fn parse(s: &str) -> Option<Segment> {
        Segment::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The segment of a customer with `orders` kept orders, `days_since`
    /// their last, and whether they are among the top spenders.
    pub fn of(orders: u64, days_since: i64, high_value: bool) -> Segment {
        if days_since > CHURN_AFTER_DAYS {
            Segment::ChurnRisk
        } else if high_value {
            Segment::HighValue
        } else if orders >= 2 {
            Segment::Returning
        } else {
            Segment::New
        }
    }
}

/// Why a product is recommended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecommendationReason {
    /// Bought in the same orders (the affinity model).
    BoughtTogether,
    /// Co-occurrence was thin: a bestseller of the product's category.
    CategoryBestseller,
    /// Bought together with something the customer bought recently.
    BoughtWithYourRecentOrders,
    /// The customer's recent products have thin co-occurrence: a
    /// bestseller of a category they buy from.
    BestsellerInYourCategories,
}

#[cfg(feature = "arrow")]
pub use self::arrow_schemas::{
    customer_cohorts_schema, customer_products_schema, customer_segments_schema, customers_daily_schema,
    declared_schema, product_affinity_schema, product_popularity_schema,
};

#[cfg(feature = "arrow")]
mod arrow_schemas {
    use std::sync::Arc;

    use arrow_schema::{DataType, Field, Schema, SchemaRef};

    use crate::tables::{money, timestamp};

    fn field(name: &str, data_type: DataType) -> Field {
        Field::new(name, data_type, false)
    }

    /// The file schema of a customers table, by name.
    pub fn declared_schema(table: &str) -> Option<SchemaRef> {
        match table {
            super::PRODUCT_AFFINITY_TABLE => Some(product_affinity_schema()),
            super::PRODUCT_POPULARITY_TABLE => Some(product_popularity_schema()),
            super::CUSTOMER_SEGMENTS_TABLE => Some(customer_segments_schema()),
            super::CUSTOMER_COHORTS_TABLE => Some(customer_cohorts_schema()),
            super::CUSTOMERS_DAILY_TABLE => Some(customers_daily_schema()),
            super::CUSTOMER_PRODUCTS_TABLE => Some(customer_products_schema()),
            _ => None,
        }
    }

    /// One row per ordered pair (both directions): "bought `product_id`,
    /// also bought `other_id`". `rank` is 1 for the product's best pair by
    /// cosine; at most `AFFINITY_TOP_K` per product.
    pub fn product_affinity_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            field("product_id", DataType::Utf8),
            field("rank", DataType::Int32),
            field("other_id", DataType::Utf8),
            field("support", DataType::Int64),
            field("product_orders", DataType::Int64),
            field("other_orders", DataType::Int64),
            field("confidence", DataType::Float64),
            field("lift", DataType::Float64),
            field("cosine", DataType::Float64),
        ]))
    }

    /// One row per product: the orders holding it, and its rank among its
    /// category's products by those orders (1 = bestseller).
    pub fn product_popularity_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            field("product_id", DataType::Utf8),
            field("category", DataType::Utf8),
            field("orders", DataType::Int64),
            field("category_rank", DataType::Int32),
        ]))
    }

    /// One row per customer and currency.
    pub fn customer_segments_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            field("customer_id", DataType::Utf8),
            field("currency", DataType::Utf8),
            field("orders", DataType::Int64),
            field("lifetime_value", money()),
            field("average_order_value", money()),
            field("first_order_at", timestamp()),
            field("last_order_at", timestamp()),
            field("days_since_last_order", DataType::Int32),
            field("high_value", DataType::Boolean),
            field("churn_risk", DataType::Boolean),
            field("segment", DataType::Utf8),
        ]))
    }

    /// One row per cohort (month of first kept order) and month after it:
    /// how many of the cohort ordered in that month (`month_offset` 0 is
    /// the cohort's own month, where `active` = `customers`).
    pub fn customer_cohorts_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            field("cohort", DataType::Date32),
            field("month_offset", DataType::Int32),
            field("customers", DataType::Int64),
            field("active", DataType::Int64),
            field("retention", DataType::Float64),
        ]))
    }

    /// One row per customer and product they bought (any order, cancelled
    /// or not): the last day they did and in how many order lines. Sorted
    /// by customer, most recent first.
    pub fn customer_products_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            field("customer_id", DataType::Utf8),
            field("product_id", DataType::Utf8),
            field("last_bought", DataType::Date32),
            field("lines", DataType::Int64),
        ]))
    }

    /// One row per day: customers ordering for the first time that day,
    /// and customers ordering again, with their orders.
    pub fn customers_daily_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            field("day", DataType::Date32),
            field("new_customers", DataType::Int64),
            field("returning_customers", DataType::Int64),
            field("new_customer_orders", DataType::Int64),
            field("returning_customer_orders", DataType::Int64),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip_and_take_the_first_that_applies() {
        for s in Segment::ALL {
            assert_eq!(Segment::parse(s.as_str()), Some(s));
        }
        assert_eq!(Segment::of(12, CHURN_AFTER_DAYS + 1, true), Segment::ChurnRisk);
        assert_eq!(Segment::of(12, CHURN_AFTER_DAYS, true), Segment::HighValue);
        assert_eq!(Segment::of(2, 0, false), Segment::Returning);
        assert_eq!(Segment::of(1, 0, false), Segment::New);
    }
}
