//! The `fraud_scores` table: every screened order's score, its reasons, the
//! model version, the decision, and later its review. It is a view over
//! `order_events` (the screen's verdict is the event out of `pending`; a
//! review is the event out of `flagged`), so it never disagrees with them.

/// The view's name in every SQL session over the lake.
pub const FRAUD_SCORES_VIEW: &str = "fraud_scores";

/// The view's definition (its columns are [`arrow::fraud_scores_schema`]).
pub const FRAUD_SCORES_SQL: &str = "\
SELECT s.order_id, s.customer_id, s.occurred_at AS scored_at, s.risk_score AS score, \
       s.risk_reasons AS reasons, s.risk_model AS model_version, \
       CASE WHEN s.status = 'flagged' THEN 'flagged' ELSE 'passed' END AS decision, \
       r.review, r.reviewer, r.review_note, r.reviewed_at, s.order_total, s.currency, s.date \
FROM order_events s \
LEFT JOIN (SELECT order_id, \
                  CASE WHEN reason = 'fraud_rejected' THEN 'rejected' ELSE 'approved' END AS review, \
                  reviewer, review_note, occurred_at AS reviewed_at \
           FROM order_events WHERE kind = 'status_changed' AND from_status = 'flagged') r \
       ON r.order_id = s.order_id \
WHERE s.kind = 'status_changed' AND s.from_status = 'pending'";

#[cfg(feature = "arrow")]
pub mod arrow {
    use std::sync::Arc;

    use arrow_schema::{DataType, Field, Schema, SchemaRef};

    use crate::tables::{money, timestamp};

    pub fn fraud_scores_schema() -> SchemaRef {
        let utf8 = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
        Arc::new(Schema::new(vec![
            utf8("order_id", false),
            utf8("customer_id", true),
            Field::new("scored_at", timestamp(), false),
            Field::new("score", DataType::Int32, true),
            Field::new("reasons", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
            utf8("model_version", true),
            utf8("decision", false),
            utf8("review", true),
            utf8("reviewer", true),
            utf8("review_note", true),
            Field::new("reviewed_at", timestamp(), true),
            Field::new("order_total", money(), true),
            utf8("currency", true),
            utf8("date", false),
        ]))
    }
}
