//! The accepted order: what ingest appends to the `ORDERS` stream and every
//! later stage reads. Amounts are integer minor units of `currency`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use uuid::Uuid;

use crate::{Currency, MinorUnits, TaxRate};

/// Bumped when a field is added; older messages decode through serde defaults.
pub const ORDER_SCHEMA_VERSION: u16 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    pub product_id: String,
    pub quantity: u32,
    pub unit_price: MinorUnits,
}

impl OrderItem {
    pub fn line_total(&self) -> MinorUnits {
        MinorUnits(self.unit_price.0 * i64::from(self.quantity))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, e.g. "US".
    pub country: String,
}

impl Address {
    /// A stable pseudonym of the place (XXH3-64 of its normalised lines,
    /// city, postal code and country): the same across releases, so fraud
    /// state in a snapshot and the `address_key` column of `orders` agree,
    /// and it reveals nothing of the address itself.
    pub fn key(&self) -> u64 {
        let mut text = String::with_capacity(96);
        for part in
            [Some(&self.line1), self.line2.as_ref(), Some(&self.city), Some(&self.postal_code), Some(&self.country)]
        {
            for word in part.map(|p| p.split_whitespace()).into_iter().flatten() {
                text.extend(word.chars().flat_map(char::to_lowercase));
                text.push(' ');
            }
            text.push('|');
        }
        twox_hash::XxHash3_64::oneshot(text.as_bytes())
    }

    /// [`Address::key`] as the `orders.address_key` column writes it.
    pub fn key_hex(&self) -> String {
        format!("{:016x}", self.key())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Card,
    Paypal,
    ApplePay,
    GooglePay,
    BankTransfer,
    GiftCard,
    CashOnDelivery,
}

impl PaymentMethod {
    pub const ALL: [PaymentMethod; 7] = [
        PaymentMethod::Card,
        PaymentMethod::Paypal,
        PaymentMethod::ApplePay,
        PaymentMethod::GooglePay,
        PaymentMethod::BankTransfer,
        PaymentMethod::GiftCard,
        PaymentMethod::CashOnDelivery,
    ];

    /// The serde name (`apple_pay`), without serializing.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Card => "card",
            PaymentMethod::Paypal => "paypal",
            PaymentMethod::ApplePay => "apple_pay",
            PaymentMethod::GooglePay => "google_pay",
            PaymentMethod::BankTransfer => "bank_transfer",
            PaymentMethod::GiftCard => "gift_card",
            PaymentMethod::CashOnDelivery => "cash_on_delivery",
        }
    }
}

/// A validated order request, before the server assigns id, time and totals.
/// Serialized, it is the request's content in one canonical form (prices in
/// minor units, defaults unapplied): what "the same body" means for an
/// `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewOrder {
    pub customer_id: String,
    pub items: Vec<OrderItem>,
    pub currency: Currency,
    pub shipping_address: Option<Address>,
    pub payment_method: Option<PaymentMethod>,
    pub client_ip: Option<IpAddr>,
    pub placed_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    #[serde(default = "default_schema_version")]
    pub schema_version: u16,
    pub order_id: Uuid,
    pub customer_id: String,
    pub items: Vec<OrderItem>,
    pub currency: Currency,
    pub subtotal: MinorUnits,
    pub tax: MinorUnits,
    pub total: MinorUnits,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<PaymentMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<IpAddr>,
    /// Event time: when the customer placed it (defaults to `received_at`).
    #[serde(deserialize_with = "crate::rfc3339::deserialize")]
    pub placed_at: DateTime<Utc>,
    /// Processing time: when ingest accepted it.
    #[serde(deserialize_with = "crate::rfc3339::deserialize")]
    pub received_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The id of the API key that submitted it (absent while access is
    /// open): a producer reads and cancels only its own orders, and its
    /// idempotency keys are its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<String>,
    /// The tax rate `tax` was computed with, so the engine can recompute it
    /// when it reprices a line from the catalog (absent in older orders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_rate: Option<TaxRate>,
}

/// How one line was priced from the catalog: the unit price used, and the
/// one the client sent when it differed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LinePrice {
    pub product_id: String,
    #[schema(value_type = i64)]
    pub unit_price: MinorUnits,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub submitted: Option<MinorUnits>,
}

fn default_schema_version() -> u16 {
    ORDER_SCHEMA_VERSION
}

impl Order {
    /// Turns a validated request into the order of record: the server decides
    /// the id, the receive time and the totals, never the client.
    pub fn accept(
        new: NewOrder,
        order_id: Uuid,
        received_at: DateTime<Utc>,
        tax_rate: TaxRate,
        idempotency_key: Option<String>,
    ) -> Order {
        let subtotal = MinorUnits(new.items.iter().map(|item| item.line_total().0).sum());
        let tax = tax_rate.tax_on(subtotal);
        Order {
            schema_version: ORDER_SCHEMA_VERSION,
            order_id,
            customer_id: new.customer_id,
            items: new.items,
            currency: new.currency,
            subtotal,
            tax,
            total: MinorUnits(subtotal.0 + tax.0),
            shipping_address: new.shipping_address,
            payment_method: new.payment_method,
            client_ip: new.client_ip,
            placed_at: new.placed_at.unwrap_or(received_at),
            received_at,
            idempotency_key,
            producer: None,
            tax_rate: Some(tax_rate),
        }
    }

    /// Sets the subtotal, tax and total from the items again (after a line
    /// was repriced): with the recorded tax rate, or, for an order from
    /// before rates were recorded, the tax scaled with the subtotal.
    pub fn recompute_totals(&mut self) {
        let subtotal = MinorUnits(self.items.iter().map(|item| item.line_total().0).sum());
        self.tax = match self.tax_rate {
            Some(rate) => rate.tax_on(subtotal),
            None if self.subtotal.0 != 0 => {
                MinorUnits((i128::from(self.tax.0) * i128::from(subtotal.0) / i128::from(self.subtotal.0)) as i64)
            }
            None => MinorUnits(0),
        };
        self.subtotal = subtotal;
        self.total = MinorUnits(subtotal.0 + self.tax.0);
    }

    pub fn unit_count(&self) -> u64 {
        self.items.iter().map(|item| u64::from(item.quantity)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_method_names_are_the_serde_names() {
        for method in PaymentMethod::ALL {
            assert_eq!(serde_json::to_string(&method).unwrap(), format!("\"{}\"", method.as_str()));
        }
    }

    fn new_order() -> NewOrder {
        NewOrder {
            customer_id: "c-1".into(),
            items: vec![
                OrderItem { product_id: "p-1".into(), quantity: 2, unit_price: MinorUnits(2999) },
                OrderItem { product_id: "p-2".into(), quantity: 1, unit_price: MinorUnits(1) },
            ],
            currency: Currency::USD,
            shipping_address: None,
            payment_method: Some(PaymentMethod::Card),
            client_ip: None,
            placed_at: None,
        }
    }

    #[test]
    fn accept_computes_totals_in_minor_units() {
        let at = Utc::now();
        let order = Order::accept(new_order(), Uuid::now_v7(), at, TaxRate(1000), None);
        assert_eq!(order.subtotal, MinorUnits(5999));
        assert_eq!(order.tax, MinorUnits(600));
        assert_eq!(order.total, MinorUnits(6599));
        assert_eq!(order.placed_at, at);
        assert_eq!(order.unit_count(), 3);
    }

    #[test]
    fn old_messages_without_schema_version_still_decode() {
        let order = Order::accept(new_order(), Uuid::now_v7(), Utc::now(), TaxRate(0), Some("k".into()));
        let mut json = serde_json::to_value(&order).unwrap();
        json.as_object_mut().unwrap().remove("schema_version");
        let decoded: Order = serde_json::from_value(json).unwrap();
        assert_eq!(decoded, order);
    }
}

/// One order's live state as the processor keeps it: the accepted order plus
/// where it is in the lifecycle and why. The read model stores this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    pub order: Order,
    /// The order's sequence in the ORDERS stream.
    pub stream_seq: u64,
    pub status: crate::OrderStatus,
    /// Every status reached, with when (log time), in order.
    pub history: Vec<(crate::OrderStatus, DateTime<Utc>)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<crate::CancelReason>,
    pub risk_score: u8,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub risk_reasons: Vec<String>,
    /// The fraud model version behind the score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_model: Option<String>,
    /// The lines the catalog priced (empty when none of its products is in
    /// the catalog, or under `--pricing trust`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub catalog_prices: Vec<LinePrice>,
    #[serde(default)]
    pub refunded: bool,
    /// The ORDERS sequence of the last input applied to this order.
    pub version: u64,
}
