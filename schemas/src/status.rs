//! The order lifecycle: the one state machine every crate consults.
//!
//! ```text
//! pending ──► reserved ──► confirmed ──► processing ──► shipped ──► delivered
//!    │  ▲         │             │              │
//!    ▼  │(review) ▼             ▼              ▼
//! flagged ──────► cancelled ◄───┴──────────────┘   (reason says why)
//! ```
//! `reserved` is the "stock held, awaiting payment" state of the saga.

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Accepted and durable in JetStream; not yet screened.
    Pending,
    /// Risk score above the threshold: held for a human review.
    Flagged,
    /// Every item's stock is held; awaiting payment.
    #[serde(alias = "awaiting_payment")]
    Reserved,
    /// Paid; stock sold.
    Confirmed,
    /// Being picked and packed.
    Processing,
    Shipped,
    Delivered,
    Cancelled,
}

/// Why an order ended `cancelled`. Each reason is only possible from some states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    OutOfStock,
    PaymentDeclined,
    FraudRejected,
    CustomerCancelled,
    /// A line's unit price differs from the catalog's beyond the tolerance
    /// (or is in another currency), under `--pricing reject`.
    PriceMismatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TransitionError {
    #[error("{from} is terminal; no transition to {to}")]
    FromTerminal { from: OrderStatus, to: OrderStatus },
    #[error("no transition from {from} to {to}")]
    NotAllowed { from: OrderStatus, to: OrderStatus },
    #[error("cancelling from {from} needs a reason")]
    MissingReason { from: OrderStatus },
    #[error("{reason:?} cannot cancel an order that is {from}")]
    ReasonNotAllowed { from: OrderStatus, reason: CancelReason },
    #[error("only a cancellation carries a reason (got {reason:?} for {to})")]
    UnexpectedReason { to: OrderStatus, reason: CancelReason },
}

use OrderStatus::*;

impl OrderStatus {
    pub const ALL: [OrderStatus; 8] =
        [Pending, Flagged, Reserved, Confirmed, Processing, Shipped, Delivered, Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Pending => "pending",
            Flagged => "flagged",
            Reserved => "reserved",
            Confirmed => "confirmed",
            Processing => "processing",
            Shipped => "shipped",
            Delivered => "delivered",
            Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Delivered | Cancelled)
    }

    /// The states this one may move to.
    pub fn next_states(self) -> &'static [OrderStatus] {
        match self {
            Pending => &[Flagged, Reserved, Cancelled],
            Flagged => &[Reserved, Cancelled],
            Reserved => &[Confirmed, Cancelled],
            Confirmed => &[Processing, Cancelled],
            Processing => &[Shipped, Cancelled],
            Shipped => &[Delivered],
            Delivered | Cancelled => &[],
        }
    }

    /// Whether stock is held or sold for an order in this state, i.e. whether
    /// leaving it for `cancelled` must release stock.
    pub fn holds_stock(self) -> bool {
        matches!(self, Reserved | Confirmed | Processing | Shipped | Delivered)
    }

    /// Whether the customer has been charged in this state (cancel ⇒ refund).
    pub fn is_paid(self) -> bool {
        matches!(self, Confirmed | Processing | Shipped | Delivered)
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for OrderStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "awaiting_payment" => Ok(Reserved),
            _ => OrderStatus::ALL
                .into_iter()
                .find(|status| status.as_str() == s)
                .ok_or_else(|| format!("unknown order status {s:?}")),
        }
    }
}

impl CancelReason {
    /// The states from which this reason may cancel an order.
    pub fn allowed_from(self) -> &'static [OrderStatus] {
        match self {
            // Reservation is attempted from pending, or from flagged once approved.
            CancelReason::OutOfStock => &[Pending, Flagged],
            CancelReason::PaymentDeclined => &[Reserved],
            CancelReason::FraudRejected => &[Flagged],
            // "Before shipping": anything not yet shipped or terminal.
            CancelReason::CustomerCancelled => &[Pending, Flagged, Reserved, Confirmed, Processing],
            // Prices are checked when the order is submitted, before anything else.
            CancelReason::PriceMismatch => &[Pending],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::OutOfStock => "out_of_stock",
            CancelReason::PaymentDeclined => "payment_declined",
            CancelReason::FraudRejected => "fraud_rejected",
            CancelReason::CustomerCancelled => "customer_cancelled",
            CancelReason::PriceMismatch => "price_mismatch",
        }
    }
}

/// Checks one step of the lifecycle. A move to `cancelled` must name a reason
/// that is possible from `from`; every other move must not name one.
pub fn check_transition(
    from: OrderStatus,
    to: OrderStatus,
    reason: Option<CancelReason>,
) -> Result<(), TransitionError> {
    if from.is_terminal() {
        return Err(TransitionError::FromTerminal { from, to });
    }
    if !from.next_states().contains(&to) {
        return Err(TransitionError::NotAllowed { from, to });
    }
    match (to, reason) {
        (Cancelled, None) => Err(TransitionError::MissingReason { from }),
        (Cancelled, Some(reason)) if !reason.allowed_from().contains(&from) => {
            Err(TransitionError::ReasonNotAllowed { from, reason })
        }
        (Cancelled, Some(_)) => Ok(()),
        (to, Some(reason)) => Err(TransitionError::UnexpectedReason { to, reason }),
        (_, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REASONS: [CancelReason; 5] = [
        CancelReason::OutOfStock,
        CancelReason::PaymentDeclined,
        CancelReason::FraudRejected,
        CancelReason::CustomerCancelled,
        CancelReason::PriceMismatch,
    ];

    #[test]
    fn reason_names_are_the_serde_names() {
        for reason in REASONS {
            assert_eq!(serde_json::to_string(&reason).unwrap(), format!("\"{}\"", reason.as_str()));
        }
    }

    fn any_status() -> impl Strategy<Value = OrderStatus> {
        prop::sample::select(OrderStatus::ALL.to_vec())
    }
    fn any_reason() -> impl Strategy<Value = Option<CancelReason>> {
        prop::option::of(prop::sample::select(REASONS.to_vec()))
    }

    /// A valid step from `from`, chosen by `pick`, or None at a terminal state.
    fn step(from: OrderStatus, pick: usize) -> Option<(OrderStatus, Option<CancelReason>)> {
        let mut options = Vec::new();
        for &to in from.next_states() {
            if to == Cancelled {
                options.extend(REASONS.iter().filter(|r| r.allowed_from().contains(&from)).map(|r| (to, Some(*r))));
            } else {
                options.push((to, None));
            }
        }
        (!options.is_empty()).then(|| options[pick % options.len()])
    }

    #[test]
    fn every_state_is_reachable_from_pending() {
        let mut seen = vec![Pending];
        let mut frontier = vec![Pending];
        while let Some(s) = frontier.pop() {
            for &n in s.next_states() {
                if !seen.contains(&n) {
                    seen.push(n);
                    frontier.push(n);
                }
            }
        }
        assert_eq!(seen.len(), OrderStatus::ALL.len());
    }

    #[test]
    fn shipped_orders_cannot_be_cancelled() {
        assert!(check_transition(Shipped, Cancelled, Some(CancelReason::CustomerCancelled)).is_err());
        assert!(check_transition(Processing, Cancelled, Some(CancelReason::CustomerCancelled)).is_ok());
    }

    #[test]
    fn status_names_round_trip_and_accept_the_saga_alias() {
        for s in OrderStatus::ALL {
            assert_eq!(s.as_str().parse::<OrderStatus>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert_eq!("awaiting_payment".parse::<OrderStatus>(), Ok(Reserved));
        assert_eq!(serde_json::from_str::<OrderStatus>("\"awaiting_payment\"").unwrap(), Reserved);
    }

    proptest! {
        /// The checker and the edge table agree on every (from, to, reason).
        #[test]
        fn check_agrees_with_the_table(from in any_status(), to in any_status(), reason in any_reason()) {
            let expected = !from.is_terminal()
                && from.next_states().contains(&to)
                && match (to, reason) {
                    (Cancelled, Some(r)) => r.allowed_from().contains(&from),
                    (Cancelled, None) => false,
                    (_, r) => r.is_none(),
                };
            prop_assert_eq!(check_transition(from, to, reason).is_ok(), expected);
        }

        /// Any walk of valid steps from pending ends terminal within 6 steps,
        /// never revisits a state, and reaches delivered only through shipped.
        #[test]
        fn walks_terminate_without_cycles(picks in prop::collection::vec(0_usize..16, 8)) {
            let mut state = Pending;
            let mut path = vec![state];
            for pick in picks {
                match step(state, pick) {
                    Some((next, reason)) => {
                        prop_assert!(check_transition(state, next, reason).is_ok());
                        prop_assert!(!path.contains(&next), "cycle at {next} in {path:?}");
                        state = next;
                        path.push(state);
                    }
                    None => break,
                }
            }
            prop_assert!(state.is_terminal(), "stuck at {state} after {path:?}");
            prop_assert!(path.len() <= 7);
            if state == Delivered {
                prop_assert!(path.contains(&Shipped) && path.contains(&Confirmed));
            }
        }

        /// Cancellation from a paid state is exactly the customer's, and
        /// holds_stock/is_paid never go backwards along a walk.
        #[test]
        fn paid_orders_cancel_only_by_customer(from in any_status(), reason in any_reason()) {
            if from.is_paid() && check_transition(from, Cancelled, reason).is_ok() {
                prop_assert_eq!(reason, Some(CancelReason::CustomerCancelled));
            }
            for &to in from.next_states() {
                if to != Cancelled {
                    prop_assert!(!from.holds_stock() || to.holds_stock());
                    prop_assert!(!from.is_paid() || to.is_paid());
                }
            }
        }
    }
}
