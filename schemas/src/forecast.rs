//! The forecasting outputs: what a demand series is keyed by, and the
//! tables `orderstream forecast` writes (`demand_forecast`,
//! `inventory_plan`), declared once for the writer, the dashboard and SQL.
//!
//! Both tables are hive-partitioned by `as_of` (`as_of=YYYY-MM-DD/`): the
//! last day of history a run used. The partition column is in the path, not
//! in the files; a run replaces its partition's files.

use serde::{Deserialize, Serialize};

pub const DEMAND_FORECAST_TABLE: &str = "demand_forecast";
pub const INVENTORY_PLAN_TABLE: &str = "inventory_plan";
/// Each series' last [`HISTORY_DAYS`] days as of the run, written beside
/// its forecast so an answer reads both by key instead of aggregating items.
pub const DEMAND_HISTORY_TABLE: &str = "demand_history";
/// Days of history an answer shows before the forecast.
pub const HISTORY_DAYS: usize = 90;
/// The partition column of both tables.
pub const AS_OF_COLUMN: &str = "as_of";
/// The forecast's default horizon in days, and the most a request may ask.
pub const DEFAULT_HORIZON_DAYS: u32 = 90;
pub const MAX_HORIZON_DAYS: u32 = 365;
/// Available units below which a product is low on stock in the plan.
pub const LOW_STOCK_UNITS: u64 = 10;

/// What a demand series aggregates: one product, one category, or all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Product,
    Category,
    Total,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Product, Scope::Category, Scope::Total];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Product => "product",
            Scope::Category => "category",
            Scope::Total => "total",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s)
    }
}

/// What a demand series counts: units ordered or revenue ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Units,
    Revenue,
}

impl Metric {
    pub const ALL: [Metric; 2] = [Metric::Units, Metric::Revenue];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Units => "units",
            Metric::Revenue => "revenue",
        }
    }

    pub fn parse(s: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|metric| metric.as_str() == s)
    }
}

/// The key of the total's series (scope `total` has one per currency).
pub const TOTAL_KEY: &str = "all";

#[cfg(feature = "arrow")]
pub use self::arrow_schemas::{declared_schema, demand_forecast_schema, demand_history_schema, inventory_plan_schema};

#[cfg(feature = "arrow")]
mod arrow_schemas {
    use std::sync::Arc;

    use arrow_schema::{DataType, Field, Schema, SchemaRef};

    fn f64(name: &str, nullable: bool) -> Field {
        Field::new(name, DataType::Float64, nullable)
    }

    fn utf8(name: &str, nullable: bool) -> Field {
        Field::new(name, DataType::Utf8, nullable)
    }

    /// The file schema of a forecasting table, by name.
    pub fn declared_schema(table: &str) -> Option<SchemaRef> {
        match table {
            super::DEMAND_FORECAST_TABLE => Some(demand_forecast_schema()),
            super::INVENTORY_PLAN_TABLE => Some(inventory_plan_schema()),
            super::DEMAND_HISTORY_TABLE => Some(demand_history_schema()),
            _ => None,
        }
    }

    /// One row per series and forecast day. Forecasts and bounds are never
    /// negative and nested: `lo95 <= lo80 <= forecast <= hi80 <= hi95`.
    /// The backtest errors are null where undefined (no demand in the
    /// backtest folds, or a constant history).
    pub fn demand_forecast_schema() -> SchemaRef {
        let mut fields = series_day_fields();
        fields.extend([
            f64("forecast", false),
            f64("lo80", false),
            f64("hi80", false),
            f64("lo95", false),
            f64("hi95", false),
            utf8("model", false),
            f64("backtest_wape", true),
            f64("backtest_mase", true),
        ]);
        Arc::new(Schema::new(fields))
    }

    /// One row per series and day of its last 90 days (from its first day
    /// with demand, zeros included).
    pub fn demand_history_schema() -> SchemaRef {
        let mut fields = series_day_fields();
        fields.push(f64("value", false));
        Arc::new(Schema::new(fields))
    }

    /// Which series and which day: the leading columns of both tables.
    fn series_day_fields() -> Vec<Field> {
        vec![
            utf8("scope", false),
            utf8("key", false),
            utf8("currency", false),
            utf8("metric", false),
            Field::new("date", DataType::Date32, false),
        ]
    }

    /// One row per product: stock, demand, cover and the reorder suggestion
    /// at the run's default lead time and service level.
    pub fn inventory_plan_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            utf8("product_id", false),
            utf8("name", true),
            utf8("category", true),
            Field::new("available", DataType::Int64, false),
            Field::new("reserved", DataType::Int64, false),
            f64("avg_daily_demand_30d", false),
            f64("days_of_cover", true),
            Field::new("stockout_date", DataType::Date32, true),
            Field::new("lead_time_days", DataType::Int32, false),
            f64("service_level", false),
            f64("lead_time_demand", false),
            f64("safety_stock", false),
            f64("reorder_point", false),
            Field::new("suggested_order_qty", DataType::Int64, false),
            Field::new("low_stock", DataType::Boolean, false),
            Field::new("overstock", DataType::Boolean, false),
            f64("turnover_30d", true),
            f64("turnover_90d", true),
            Field::new("stockout_incidents_90d", DataType::Int64, false),
            utf8("model", true),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
        for metric in Metric::ALL {
            assert_eq!(Metric::parse(metric.as_str()), Some(metric));
        }
        assert_eq!(Scope::parse("all"), None);
    }
}
