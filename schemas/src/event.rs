//! Status events: one per state change, published once with a deterministic
//! id so JetStream's dedup and every consumer's dedup agree on identity.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{CancelReason, Currency, MinorUnits, Order, OrderStatus, TransitionError, check_transition};

mod payload_decoding;

pub const EVENT_SCHEMA_VERSION: u16 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The order moved to a new status (payload: `StatusChanged`).
    StatusChanged,
    /// Money went back to the customer after a paid order was cancelled.
    RefundIssued,
    /// A command that the order's state did not allow (e.g. cancel after shipping).
    CommandRejected,
}

impl EventKind {
    pub const ALL: [EventKind; 3] = [EventKind::StatusChanged, EventKind::RefundIssued, EventKind::CommandRejected];

    /// The serde name (`status_changed`), without serializing.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::StatusChanged => "status_changed",
            EventKind::RefundIssued => "refund_issued",
            EventKind::CommandRejected => "command_rejected",
        }
    }
}

/// The subject token of a refund event (`order_events.{order_id}.refund`).
pub const REFUND_SUFFIX: &str = "refund";
/// The subject token of a refused command (`order_events.{order_id}.rejected`).
pub const REJECTED_SUFFIX: &str = "rejected";

/// Written with its `type` first (serde's internally tagged form); decoded
/// by `payload_decoding`, which reads that form without buffering.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventPayload {
    StatusChanged {
        from: Option<OrderStatus>,
        to: OrderStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<CancelReason>,
        /// Fraud risk 0–100 and its reasons, when the screen ran.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        risk_score: Option<u8>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        risk_reasons: Vec<String>,
        /// The version of the fraud model that gave the score.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        risk_model: Option<String>,
        /// Who decided a fraud review, and their note (review moves only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reviewer: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        review_note: Option<String>,
        /// The lines the catalog priced, with the price used (first move
        /// out of `pending` only).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        prices: Vec<crate::LinePrice>,
    },
    RefundIssued {
        amount: MinorUnits,
    },
    CommandRejected {
        command: String,
        status: OrderStatus,
        message: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub event_id: String,
    pub order_id: Uuid,
    /// Whose order (absent in events written before schema version 1 had it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// The order's total and currency, so a consumer can sum revenue by
    /// status from the events alone (absent in events written before them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_total: Option<MinorUnits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    pub kind: EventKind,
    #[serde(deserialize_with = "crate::rfc3339::deserialize")]
    pub occurred_at: DateTime<Utc>,
    #[serde(default = "default_version")]
    pub schema_version: u16,
    pub payload: EventPayload,
}

fn default_version() -> u16 {
    EVENT_SCHEMA_VERSION
}

/// `{order_id}:{status}`: the same transition always has the same id, so a
/// redelivered or re-run step can only ever publish it once.
pub fn status_event_id(order_id: Uuid, status: OrderStatus) -> String {
    // Written directly, not through `format!`: the seed makes ~5 per order.
    let status = status.as_str();
    let mut id = String::with_capacity(uuid::fmt::Hyphenated::LENGTH + 1 + status.len());
    id.push_str(order_id.hyphenated().encode_lower(&mut Uuid::encode_buffer()));
    id.push(':');
    id.push_str(status);
    id
}

impl OrderEvent {
    /// The event for one lifecycle step; refuses steps the state machine forbids.
    /// `from` is `None` only for the first event, the order entering `pending`.
    pub fn status_changed(
        order_id: Uuid,
        from: Option<OrderStatus>,
        to: OrderStatus,
        reason: Option<CancelReason>,
        occurred_at: DateTime<Utc>,
    ) -> Result<OrderEvent, TransitionError> {
        match from {
            Some(from) => check_transition(from, to, reason)?,
            None if to != OrderStatus::Pending => {
                return Err(TransitionError::NotAllowed { from: OrderStatus::Pending, to });
            }
            None => {}
        }
        Ok(OrderEvent {
            event_id: status_event_id(order_id, to),
            order_id,
            customer_id: None,
            order_total: None,
            currency: None,
            kind: EventKind::StatusChanged,
            occurred_at,
            schema_version: EVENT_SCHEMA_VERSION,
            payload: EventPayload::StatusChanged {
                from,
                to,
                reason,
                risk_score: None,
                risk_reasons: Vec::new(),
                risk_model: None,
                reviewer: None,
                review_note: None,
                prices: Vec::new(),
            },
        })
    }

    /// The subject token after `order_events.{order_id}.`: the status reached,
    /// `refund`, or `rejected`.
    pub fn subject_suffix(&self) -> &'static str {
        match &self.payload {
            EventPayload::StatusChanged { to, .. } => to.as_str(),
            EventPayload::RefundIssued { .. } => REFUND_SUFFIX,
            EventPayload::CommandRejected { .. } => REJECTED_SUFFIX,
        }
    }

    /// Every subject token an order's events can carry: one per status,
    /// `refund` and `rejected`.
    pub fn subject_suffixes() -> Vec<&'static str> {
        OrderStatus::ALL.iter().map(|s| s.as_str()).chain([REFUND_SUFFIX, REJECTED_SUFFIX]).collect()
    }

    /// The order's status after this event, if it changed it.
    pub fn new_status(&self) -> Option<OrderStatus> {
        match &self.payload {
            EventPayload::StatusChanged { to, .. } => Some(*to),
            _ => None,
        }
    }

    /// `input_seq` makes each rejection its own event: a command rejected
    /// twice (sent twice) is two facts.
    pub fn command_rejected(
        order_id: Uuid,
        command: &str,
        status: OrderStatus,
        message: String,
        input_seq: u64,
        occurred_at: DateTime<Utc>,
    ) -> OrderEvent {
        OrderEvent {
            event_id: format!("{order_id}:rejected:{input_seq}"),
            order_id,
            customer_id: None,
            order_total: None,
            currency: None,
            kind: EventKind::CommandRejected,
            occurred_at,
            schema_version: EVENT_SCHEMA_VERSION,
            payload: EventPayload::CommandRejected { command: command.to_string(), status, message },
        }
    }

    pub fn for_customer(mut self, customer_id: &str) -> OrderEvent {
        self.customer_id = Some(customer_id.to_string());
        self
    }

    /// Stamps whose order it is and what it is worth.
    pub fn for_order(mut self, order: &Order) -> OrderEvent {
        self.customer_id = Some(order.customer_id.clone());
        self.order_total = Some(order.total);
        self.currency = Some(order.currency);
        self
    }

    pub fn refund_issued(order_id: Uuid, amount: MinorUnits, occurred_at: DateTime<Utc>) -> OrderEvent {
        OrderEvent {
            event_id: format!("{order_id}:refund"),
            order_id,
            customer_id: None,
            order_total: None,
            currency: None,
            kind: EventKind::RefundIssued,
            occurred_at,
            schema_version: EVENT_SCHEMA_VERSION,
            payload: EventPayload::RefundIssued { amount },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_the_serde_names() {
        for kind in EventKind::ALL {
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.as_str()));
        }
    }

    #[test]
    fn ids_are_deterministic_per_order_and_status() {
        let id = Uuid::now_v7();
        let at = Utc::now();
        let a = OrderEvent::status_changed(id, Some(OrderStatus::Pending), OrderStatus::Reserved, None, at).unwrap();
        let b = OrderEvent::status_changed(id, Some(OrderStatus::Pending), OrderStatus::Reserved, None, at).unwrap();
        assert_eq!(a.event_id, b.event_id);
        assert_eq!(a.event_id, format!("{id}:reserved"));
    }

    #[test]
    fn refuses_events_the_state_machine_forbids() {
        let id = Uuid::now_v7();
        let at = Utc::now();
        assert!(
            OrderEvent::status_changed(
                id,
                Some(OrderStatus::Shipped),
                OrderStatus::Cancelled,
                Some(CancelReason::CustomerCancelled),
                at
            )
            .is_err()
        );
        assert!(OrderEvent::status_changed(id, None, OrderStatus::Confirmed, None, at).is_err());
        assert!(OrderEvent::status_changed(id, None, OrderStatus::Pending, None, at).is_ok());
    }

    #[test]
    fn round_trips_and_decodes_version_less_events() {
        let event = OrderEvent::status_changed(
            Uuid::now_v7(),
            Some(OrderStatus::Reserved),
            OrderStatus::Cancelled,
            Some(CancelReason::PaymentDeclined),
            Utc::now(),
        )
        .unwrap();
        let mut json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["payload"]["type"], "status_changed");
        assert_eq!(json["payload"]["reason"], "payment_declined");
        json.as_object_mut().unwrap().remove("schema_version");
        assert_eq!(serde_json::from_value::<OrderEvent>(json).unwrap(), event);
    }
}
