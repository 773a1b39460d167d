//! Commands: everything that changes an order or stock after submission.
//! They travel through the ORDERS stream with the orders themselves, so one
//! totally ordered log decides every race (a cancel against a shipment, a
//! flash-sale buyer against the next).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{CancelReason, OrderStatus};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    Approve,
    Reject,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum OrderCommand {
    /// The payment provider's answer for a reserved order.
    Payment { approved: bool, charge_id: String },
    /// A fulfilment step: processing, shipped or delivered.
    Advance { to: OrderStatus },
    /// A cancellation requested from outside (the customer, an admin).
    Cancel { reason: CancelReason },
    /// A human decision on a flagged order.
    Review {
        decision: ReviewDecision,
        /// Who decided, and why: the fraud review's audit trail.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reviewer: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
}

impl OrderCommand {
    /// The subject token and dedup-id part naming this command.
    pub fn name(&self) -> &'static str {
        match self {
            OrderCommand::Payment { .. } => "payment",
            OrderCommand::Advance { to: OrderStatus::Processing } => "processing",
            OrderCommand::Advance { to: OrderStatus::Shipped } => "shipped",
            OrderCommand::Advance { to: OrderStatus::Delivered } => "delivered",
            OrderCommand::Advance { .. } => "advance",
            OrderCommand::Cancel { .. } => "cancel",
            OrderCommand::Review { .. } => "review",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCommandEnvelope {
    pub order_id: Uuid,
    pub issued_at: DateTime<Utc>,
    #[serde(flatten)]
    pub command: OrderCommand,
}

impl OrderCommandEnvelope {
    /// Each command happens at most once per order, so its id is derived
    /// from the order and the command: retries deduplicate in JetStream.
    pub fn dedup_id(&self) -> String {
        format!("{}:cmd:{}", self.order_id, self.command.name())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum StockChange {
    /// Make `quantity` units available (receiving counted stock).
    Set { quantity: u64 },
    /// Add (or, negative, remove) available units.
    Adjust { delta: i64 },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockCommand {
    /// The caller's request id; also the JetStream dedup id.
    pub request_id: String,
    pub product_id: String,
    pub change: StockChange,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub issued_at: DateTime<Utc>,
    /// The catalog's list price from this point of the log on (a catalog
    /// import sends it): the engine prices orders of this product with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_price: Option<ListPrice>,
}

/// A product's price in the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPrice {
    pub unit_price: crate::MinorUnits,
    pub currency: crate::Currency,
}

/// The most units of one product the system holds (available, reserved and
/// sold together): far beyond any store, far below where `u64` arithmetic
/// could wrap. A stock change past it is refused.
pub const MAX_STOCK_UNITS: u64 = 1_000_000_000_000;

/// One product's units: `received = available + reserved + sold` always.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StockLevel {
    pub available: u64,
    pub reserved: u64,
    pub sold: u64,
}

impl StockLevel {
    /// Every unit received: available, reserved and sold (saturating; the
    /// engine keeps it at most [`MAX_STOCK_UNITS`]).
    pub fn on_hand(&self) -> u64 {
        self.available.saturating_add(self.reserved).saturating_add(self.sold)
    }

    /// Whether the level is within [`MAX_STOCK_UNITS`].
    pub fn in_bounds(&self) -> bool {
        u128::from(self.available) + u128::from(self.reserved) + u128::from(self.sold) <= u128::from(MAX_STOCK_UNITS)
    }
}

/// The id of the stock event a stock command with `request_id` makes.
pub fn stock_event_id(request_id: &str) -> String {
    format!("stock:{request_id}")
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StockEvent {
    pub event_id: String,
    pub product_id: String,
    pub occurred_at: DateTime<Utc>,
    pub change: StockChange,
    pub before: StockLevel,
    pub after: StockLevel,
    /// Set when the change was refused (it would make stock negative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl StockEvent {
    /// The request id it answers (its event id without the `stock:` prefix).
    pub fn request_id(&self) -> &str {
        self.event_id.strip_prefix("stock:").unwrap_or(&self.event_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_ids_are_stable_per_order_and_command() {
        let order_id = Uuid::now_v7();
        let at = Utc::now();
        let pay = OrderCommandEnvelope {
            order_id,
            issued_at: at,
            command: OrderCommand::Payment { approved: true, charge_id: "c".into() },
        };
        assert_eq!(pay.dedup_id(), format!("{order_id}:cmd:payment"));
        let ship = OrderCommandEnvelope {
            order_id,
            issued_at: at,
            command: OrderCommand::Advance { to: OrderStatus::Shipped },
        };
        assert_eq!(ship.dedup_id(), format!("{order_id}:cmd:shipped"));
        let json = serde_json::to_value(&ship).unwrap();
        assert_eq!(json["command"], "advance");
        assert_eq!(serde_json::from_value::<OrderCommandEnvelope>(json).unwrap(), ship);
    }
}
