//! The two streams the analytics job reads, and the tables each feeds.

use schemas::tables::Table;

/// Which stream a job reads, and what it writes from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `ORDERS`, `orders.submitted.*`: the `orders` and `order_items` tables.
    Orders,
    /// `ORDER_EVENTS`: the `order_events` table.
    Events,
}

impl Source {
    pub const ALL: [Source; 2] = [Source::Orders, Source::Events];

    pub fn stream(self) -> &'static str {
        match self {
            Source::Orders => broker::ORDERS_STREAM,
            Source::Events => broker::ORDER_EVENTS_STREAM,
        }
    }

    pub fn filter_subject(self) -> &'static str {
        match self {
            Source::Orders => broker::ORDERS_SUBMITTED_SUBJECTS,
            Source::Events => broker::ORDER_EVENTS_SUBJECTS,
        }
    }

    /// The durable consumer's name (its lag is the job's lag).
    pub fn consumer(self) -> &'static str {
        match self {
            Source::Orders => "analytics-orders",
            Source::Events => "analytics-events",
        }
    }

    /// The checkpoint's name.
    pub fn name(self) -> &'static str {
        match self {
            Source::Orders => "orders",
            Source::Events => "order_events",
        }
    }

    pub fn tables(self) -> &'static [Table] {
        match self {
            Source::Orders => &[Table::Orders, Table::OrderItems],
            Source::Events => &[Table::OrderEvents],
        }
    }

    pub fn feeds(self, table: Table) -> bool {
        self.tables().contains(&table)
    }
}
