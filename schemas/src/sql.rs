//! The domain's values as SQL literals, for queries over the lake's tables
//! (`status = 'flagged'`): built from the one declaration of each status,
//! reason and event kind, so no query spells one by hand.

use crate::{CancelReason, EventKind, OrderStatus};

/// A value the tables store as its snake_case name.
pub trait SqlLiteral {
    /// `'name'`, quoted for SQL.
    fn sql(self) -> String;
}

impl SqlLiteral for OrderStatus {
    fn sql(self) -> String {
        format!("'{}'", self.as_str())
    }
}

impl SqlLiteral for CancelReason {
    fn sql(self) -> String {
        format!("'{}'", self.as_str())
    }
}

impl SqlLiteral for EventKind {
    fn sql(self) -> String {
        format!("'{}'", self.as_str())
    }
}

/// `('a', 'b')`: a list for `IN`.
pub fn list<T: SqlLiteral>(values: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = values.into_iter().map(SqlLiteral::sql).collect();
    format!("({})", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_the_stored_names() {
        assert_eq!(OrderStatus::Flagged.sql(), "'flagged'");
        assert_eq!(CancelReason::FraudRejected.sql(), "'fraud_rejected'");
        assert_eq!(EventKind::RefundIssued.sql(), "'refund_issued'");
        assert_eq!(list([OrderStatus::Pending, OrderStatus::Flagged]), "('pending', 'flagged')");
    }
}
