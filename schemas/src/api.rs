//! HTTP request and response bodies. Requests are decoded loosely typed
//! (strings, raw numbers) so that validation, not serde, decides what is
//! wrong and names the field.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::money::format_decimal;
use crate::{Address, CancelReason, Currency, MinorUnits, Order, OrderState, OrderStatus, PaymentMethod};

/// `POST /api/orders` body.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderRequest {
    pub customer_id: String,
    pub items: Vec<OrderItemRequest>,
    /// ISO 4217; USD when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<PaymentMethod>)]
    pub payment_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// RFC 3339 event time; the receive time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placed_at: Option<String>,
    /// Only in batch requests; single requests use the `Idempotency-Key` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderItemRequest {
    pub product_id: String,
    pub quantity: i64,
    /// A JSON number with at most the currency's decimals, or a decimal string.
    #[schema(value_type = String, example = "19.99")]
    pub unit_price: Box<RawValue>,
}

/// `POST /api/orders/batch` body. Each order is decoded on its own so one bad
/// order gets its own error instead of failing the batch.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    #[schema(value_type = Vec<CreateOrderRequest>)]
    pub orders: Vec<Box<RawValue>>,
}

/// `202` body: the order is durable in JetStream at `stream_seq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderAccepted {
    pub order_id: Uuid,
    pub status: OrderStatus,
    #[schema(example = "59.98")]
    pub subtotal: String,
    pub tax: String,
    pub total: String,
    pub currency: Currency,
    pub placed_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// The order's sequence in the ORDERS stream: its place in line.
    pub stream_seq: u64,
    /// A link for the customer: the order's status and timeline without an
    /// API key, until `tracking_expires_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_expires_at: Option<DateTime<Utc>>,
}

impl OrderAccepted {
    pub fn new(order: &Order, stream_seq: u64) -> Self {
        let money = |amount: MinorUnits| format_decimal(amount, order.currency.exponent());
        OrderAccepted {
            order_id: order.order_id,
            status: OrderStatus::Pending,
            subtotal: money(order.subtotal),
            tax: money(order.tax),
            total: money(order.total),
            currency: order.currency,
            placed_at: order.placed_at,
            received_at: order.received_at,
            stream_seq,
            tracking_url: None,
            tracking_expires_at: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderItemView {
    pub product_id: String,
    pub quantity: u32,
    pub unit_price: String,
    pub line_total: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusTime {
    pub status: OrderStatus,
    pub at: DateTime<Utc>,
}

/// `GET /api/orders/{id}`: the order as accepted and, once the processor
/// has it, its live status, a time per status, why it was cancelled and its
/// fraud score. While it waits, `position_in_line` says how many orders are
/// ahead of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderView {
    #[serde(flatten)]
    pub accepted: OrderAccepted,
    pub customer_id: String,
    pub items: Vec<OrderItemView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<PaymentMethod>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<StatusTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<CancelReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_score: Option<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub risk_reasons: Vec<String>,
    /// The fraud model version that gave `risk_score`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_model: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refunded: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_in_line: Option<u64>,
}

impl OrderView {
    /// The live view of an order the processor has seen.
    pub fn from_state(state: &OrderState) -> Self {
        let mut view = OrderView::new(&state.order, state.stream_seq);
        view.accepted.status = state.status;
        view.history = state.history.iter().map(|(status, at)| StatusTime { status: *status, at: *at }).collect();
        view.cancel_reason = state.cancel_reason;
        view.risk_score = Some(state.risk_score);
        view.risk_reasons = state.risk_reasons.clone();
        view.risk_model = state.risk_model.clone();
        view.refunded = state.refunded;
        view
    }

    pub fn new(order: &Order, stream_seq: u64) -> Self {
        let exponent = order.currency.exponent();
        OrderView {
            accepted: OrderAccepted::new(order, stream_seq),
            customer_id: order.customer_id.clone(),
            items: order
                .items
                .iter()
                .map(|item| OrderItemView {
                    product_id: item.product_id.clone(),
                    quantity: item.quantity,
                    unit_price: format_decimal(item.unit_price, exponent),
                    line_total: format_decimal(item.line_total(), exponent),
                })
                .collect(),
            shipping_address: order.shipping_address.clone(),
            payment_method: order.payment_method,
            client_ip: order.client_ip.map(|ip| ip.to_string()),
            history: Vec::new(),
            cancel_reason: None,
            risk_score: None,
            risk_reasons: Vec::new(),
            risk_model: None,
            refunded: false,
            position_in_line: None,
        }
    }
}

/// Every HTTP error body: a stable code, a sentence, and the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiError {
    /// Stable machine-readable code, e.g. `validation_failed`.
    pub error: String,
    pub message: String,
    /// JSON path of the offending field, e.g. `items[2].unit_price`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// With `ack_unknown` (504): the order that may have been stored;
    /// `GET /api/orders/{order_id}` says whether it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<uuid::Uuid>,
}

/// One order's outcome in a batch: `202` with the order, or an error.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchItemResult {
    pub index: usize,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderAccepted>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchResponse {
    pub accepted: usize,
    pub rejected: usize,
    pub results: Vec<BatchItemResult>,
}
