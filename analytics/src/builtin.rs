//! The pipelines shipped in `analytics/pipelines/`, built into the binary so `up`
//! works from any directory. A `--pipelines DIR` replaces them.

use crate::AnalyticsError;
use crate::pipeline::{PipelineSpec, parse_pipeline};

pub const BUILTIN: &[(&str, &str, &str)] = &[
    (
        "customer_sessions",
        include_str!("../pipelines/customer_sessions.toml"),
        include_str!("../pipelines/customer_sessions.sql"),
    ),
    (
        "fraud_rates_1d",
        include_str!("../pipelines/fraud_rates_1d.toml"),
        include_str!("../pipelines/fraud_rates_1d.sql"),
    ),
    (
        "fraud_rates_1h",
        include_str!("../pipelines/fraud_rates_1h.toml"),
        include_str!("../pipelines/fraud_rates_1h.sql"),
    ),
    (
        "fraud_reasons_1d",
        include_str!("../pipelines/fraud_reasons_1d.toml"),
        include_str!("../pipelines/fraud_reasons_1d.sql"),
    ),
    (
        "fraud_reviews_1d",
        include_str!("../pipelines/fraud_reviews_1d.toml"),
        include_str!("../pipelines/fraud_reviews_1d.sql"),
    ),
    (
        "orders_by_status_1d",
        include_str!("../pipelines/orders_by_status_1d.toml"),
        include_str!("../pipelines/orders_by_status_1d.sql"),
    ),
    (
        "orders_by_status_1h",
        include_str!("../pipelines/orders_by_status_1h.toml"),
        include_str!("../pipelines/orders_by_status_1h.sql"),
    ),
    (
        "orders_by_status_1m",
        include_str!("../pipelines/orders_by_status_1m.toml"),
        include_str!("../pipelines/orders_by_status_1m.sql"),
    ),
    (
        "revenue_by_category_1d",
        include_str!("../pipelines/revenue_by_category_1d.toml"),
        include_str!("../pipelines/revenue_by_category_1d.sql"),
    ),
    (
        "revenue_by_category_1h",
        include_str!("../pipelines/revenue_by_category_1h.toml"),
        include_str!("../pipelines/revenue_by_category_1h.sql"),
    ),
    (
        "revenue_by_category_1m",
        include_str!("../pipelines/revenue_by_category_1m.toml"),
        include_str!("../pipelines/revenue_by_category_1m.sql"),
    ),
    (
        "revenue_by_product_1d",
        include_str!("../pipelines/revenue_by_product_1d.toml"),
        include_str!("../pipelines/revenue_by_product_1d.sql"),
    ),
    (
        "revenue_hopping_1h_every_5m",
        include_str!("../pipelines/revenue_hopping_1h_every_5m.toml"),
        include_str!("../pipelines/revenue_hopping_1h_every_5m.sql"),
    ),
    (
        "revenue_to_date_daily",
        include_str!("../pipelines/revenue_to_date_daily.toml"),
        include_str!("../pipelines/revenue_to_date_daily.sql"),
    ),
];

pub fn builtin_pipelines() -> Result<Vec<PipelineSpec>, AnalyticsError> {
    BUILTIN.iter().map(|(name, manifest, sql)| parse_pipeline(name, manifest, sql)).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_builtin_set_is_the_pipelines_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
        let on_disk = crate::pipeline::load_pipelines(&dir).unwrap();
        let builtin = super::builtin_pipelines().unwrap();
        let names =
            |v: &[crate::pipeline::PipelineSpec]| v.iter().map(|s| (s.name.clone(), s.sql.clone())).collect::<Vec<_>>();
        assert_eq!(names(&on_disk), names(&builtin), "add the new file to analytics/src/builtin.rs");
    }
}
