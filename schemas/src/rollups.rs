//! The figures the dashboard draws from a pipeline's closed windows, and
//! what a pipeline must write to serve one. A pipeline says which figure it
//! serves in its manifest (`serves = "revenue_by_category"`); the dashboard
//! finds the table there, by figure and window size, never by a table name,
//! so a `--pipelines DIR` of one's own cannot silently break a page: a
//! figure no pipeline serves is computed from the base tables, and a
//! pipeline that claims a figure without its columns is refused at start.

use crate::tables::Table;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rollup {
    /// Revenue and units per category per window (Sales, Overview).
    RevenueByCategory,
    /// Revenue and units per product per window (top products).
    RevenueByProduct,
    /// Orders screened, flagged, rejected and approved per window (Fraud).
    FraudRates,
    /// Orders and flags per risk reason per window (Fraud).
    FraudReasons,
    /// The flagged orders and their reviews (the review queue).
    FraudReviews,
}

impl Rollup {
    pub const ALL: [Rollup; 5] = [
        Rollup::RevenueByCategory,
        Rollup::RevenueByProduct,
        Rollup::FraudRates,
        Rollup::FraudReasons,
        Rollup::FraudReviews,
    ];

    /// The manifest's `serves` value.
    pub fn name(self) -> &'static str {
        match self {
            Rollup::RevenueByCategory => "revenue_by_category",
            Rollup::RevenueByProduct => "revenue_by_product",
            Rollup::FraudRates => "fraud_rates",
            Rollup::FraudReasons => "fraud_reasons",
            Rollup::FraudReviews => "fraud_reviews",
        }
    }

    pub fn parse(name: &str) -> Option<Rollup> {
        Rollup::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The base table the figure is computed from where no pipeline
    /// covers a window, and the one its pipeline must read.
    pub fn source(self) -> Table {
        match self {
            Rollup::RevenueByCategory | Rollup::RevenueByProduct => Table::OrderItems,
            Rollup::FraudRates | Rollup::FraudReasons | Rollup::FraudReviews => Table::OrderEvents,
        }
    }

    /// The output columns the dashboard reads (besides every pipeline's
    /// `window_start`, `window_version`, `is_final` and `date`).
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Rollup::RevenueByCategory => &["category", "currency", "revenue", "units"],
            Rollup::RevenueByProduct => &["product_id", "currency", "revenue", "units"],
            Rollup::FraudRates => &["screened", "flagged", "rejected", "approved"],
            Rollup::FraudReasons => &["reason", "orders", "flagged"],
            Rollup::FraudReviews => &[
                "order_id",
                "customer_id",
                "status",
                "from_status",
                "risk_score",
                "risk_reasons",
                "order_total",
                "currency",
                "occurred_at",
            ],
        }
    }
}

impl std::fmt::Display for Rollup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for rollup in Rollup::ALL {
            assert_eq!(Rollup::parse(rollup.name()), Some(rollup));
        }
        assert_eq!(Rollup::parse("revenue"), None);
    }
}
