//! What the key-value buckets hold, where more than one part reads a
//! bucket its writer fills (the buckets themselves: `broker::topology`).
//! `ORDER_VIEW` holds an [`OrderState`](crate::OrderState) per order and
//! `CATALOG` a [`Product`](crate::Product); these are the rest.

use serde::{Deserialize, Serialize};

use crate::StockLevel;

/// The lease's value: who leads, and how far it has applied ORDERS (which
/// tells a waiting order its place in line).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LeaseValue {
    pub instance: String,
    pub position: u64,
}

/// What the STOCK bucket holds per product.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StockEntry {
    pub product_id: String,
    #[serde(flatten)]
    pub level: StockLevel,
}
