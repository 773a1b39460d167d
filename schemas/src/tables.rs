//! The Arrow schema of every analytics table, in one place: the analytics
//! writer builds batches against these, and `orderstream sql`, the
//! dashboard and the notebooks read them. Windowed pipeline outputs are the
//! exception: their columns are whatever the pipeline's SQL selects, plus
//! the [`window_meta_fields`] the engine appends.
//!
//! Money is `Decimal128(18, 4)`: exact for every ISO 4217 exponent (0–4), so
//! a sum is right to the cent and an analyst never divides minor units.
//! Times are UTC microseconds. Every table is hive-partitioned by `date`
//! (`date=YYYY-MM-DD/`, from the row's event time); the partition column is
//! in the path, not in the file.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

pub use crate::money::{MONEY_PRECISION, MONEY_SCALE};

/// The hive partition column of every table.
pub const PARTITION_COLUMN: &str = "date";

pub fn money() -> DataType {
    DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE)
}

pub fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

/// The base and side tables, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    Orders,
    OrderItems,
    OrderEvents,
    LateEvents,
    Products,
    Customers,
    FraudLabels,
}

impl Table {
    pub const ALL: [Table; 7] = [
        Table::Orders,
        Table::OrderItems,
        Table::OrderEvents,
        Table::LateEvents,
        Table::Products,
        Table::Customers,
        Table::FraudLabels,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Orders => "orders",
            Table::OrderItems => "order_items",
            Table::OrderEvents => "order_events",
            Table::LateEvents => "late_events",
            Table::Products => "products",
            Table::Customers => "customers",
            Table::FraudLabels => "fraud_labels",
        }
    }

    /// The column whose date names the row's partition.
    pub fn time_column(self) -> &'static str {
        match self {
            Table::Orders | Table::OrderItems => "placed_at",
            Table::OrderEvents => "occurred_at",
            Table::LateEvents => "event_time",
            Table::Products => "listed_at",
            Table::Customers => "signed_up_at",
            Table::FraudLabels => "placed_at",
        }
    }

    /// Columns that identify a person or a place (PII): masked (NULL) for
    /// an analyst key without the `pii` grant. Customer ids are
    /// pseudonyms, and addresses are only ever stored as `address_key`.
    pub fn pii_columns(self) -> &'static [&'static str] {
        match self {
            Table::Orders => &["client_ip", "city"],
            Table::Customers => &["city"],
            _ => &[],
        }
    }

    pub fn schema(self) -> SchemaRef {
        let fields = match self {
            Table::Orders => vec![
                utf8("order_id", false),
                utf8("customer_id", false),
                Field::new("placed_at", timestamp(), false),
                Field::new("received_at", timestamp(), false),
                utf8("currency", false),
                Field::new("subtotal", money(), false),
                Field::new("tax", money(), false),
                Field::new("total", money(), false),
                Field::new("item_count", DataType::Int32, false),
                Field::new("unit_count", DataType::Int64, false),
                utf8("payment_method", true),
                utf8("country", true),
                utf8("city", true),
                utf8("client_ip", true),
                Field::new("stream_seq", DataType::Int64, false),
                // `Address::key` of the shipping address, in hex: which
                // orders went to the same place, without the address.
                utf8("address_key", true),
            ],
            Table::OrderItems => vec![
                utf8("order_id", false),
                Field::new("line_no", DataType::Int32, false),
                utf8("customer_id", false),
                Field::new("placed_at", timestamp(), false),
                utf8("product_id", false),
                utf8("category", false),
                Field::new("quantity", DataType::Int32, false),
                Field::new("unit_price", money(), false),
                Field::new("line_total", money(), false),
                utf8("currency", false),
                Field::new("stream_seq", DataType::Int64, false),
            ],
            Table::OrderEvents => vec![
                utf8("event_id", false),
                utf8("order_id", false),
                utf8("customer_id", true),
                utf8("kind", false),
                utf8("from_status", true),
                utf8("status", true),
                utf8("reason", true),
                Field::new("risk_score", DataType::Int32, true),
                Field::new("risk_reasons", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
                Field::new("order_total", money(), true),
                Field::new("refund_amount", money(), true),
                utf8("currency", true),
                utf8("command", true),
                utf8("message", true),
                Field::new("occurred_at", timestamp(), false),
                Field::new("stream_seq", DataType::Int64, false),
                // The fraud model behind `risk_score`; who decided a review.
                utf8("risk_model", true),
                utf8("reviewer", true),
                utf8("review_note", true),
            ],
            // Partitioned `pipeline=NAME/date=YYYY-MM-DD/`: each pipeline
            // commits its own late rows.
            Table::LateEvents => vec![
                utf8("source_table", false),
                utf8("record_id", false),
                Field::new("event_time", timestamp(), false),
                Field::new("window_start", timestamp(), false),
                Field::new("window_end", timestamp(), false),
                Field::new("watermark", timestamp(), false),
                Field::new("stream_seq", DataType::Int64, false),
            ],
            Table::Products => vec![
                utf8("product_id", false),
                utf8("name", false),
                utf8("category", false),
                Field::new("unit_price", money(), false),
                utf8("currency", false),
                Field::new("initial_stock", DataType::Int64, false),
                utf8("stock_level", false),
                Field::new("listed_at", timestamp(), false),
            ],
            Table::Customers => vec![
                utf8("customer_id", false),
                Field::new("signed_up_at", timestamp(), false),
                utf8("country", false),
                utf8("city", false),
            ],
            Table::FraudLabels => vec![
                utf8("order_id", false),
                utf8("customer_id", false),
                Field::new("placed_at", timestamp(), false),
                utf8("pattern", false),
                // False for an honest decoy (absent in older seeds: fraud).
                Field::new("is_fraud", DataType::Boolean, true),
            ],
        };
        Arc::new(Schema::new(fields))
    }
}

/// What the windowed engine appends to a pipeline's SQL output: which
/// window, which version of it, the watermark when it was emitted, how many
/// late rows it absorbed, and whether it is final or an early result.
pub fn window_meta_fields() -> Vec<Field> {
    vec![
        Field::new("window_version", DataType::Int32, false),
        Field::new("watermark_at_emit", timestamp(), false),
        Field::new("late_count", DataType::Int64, false),
        Field::new("is_final", DataType::Boolean, false),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_partitions_on_a_timestamp_column_it_has() {
        for table in Table::ALL {
            let schema = table.schema();
            let field = schema.field_with_name(table.time_column()).unwrap();
            assert_eq!(field.data_type(), &timestamp(), "{}", table.name());
            assert!(schema.field_with_name(PARTITION_COLUMN).is_err(), "the partition is in the path");
        }
    }
}
