//! Request decoding and validation: the single place that decides whether an
//! order request is acceptable, and if not, which field is wrong and why.

use std::collections::HashSet;
use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use thiserror::Error;

use crate::money::{MAX_ORDER_TOTAL_MAJOR, MAX_UNIT_PRICE_MAJOR, minor_per_major, parse_decimal};
use crate::{Address, CreateOrderRequest, Currency, MinorUnits, NewOrder, OrderItem, PaymentMethod};

pub const MAX_ITEMS: usize = 500;
pub const MAX_QUANTITY: i64 = 10_000;
pub const MAX_ID_LEN: usize = 128;
pub const MAX_TEXT_LEN: usize = 200;
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// Clock skew tolerated on a client's `placed_at` in the future.
pub const MAX_FUTURE_SKEW: TimeDelta = TimeDelta::minutes(5);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Not JSON at all (syntax, truncated): a 400.
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// JSON of the wrong shape (missing or unknown field, wrong type): a 422.
    #[error(transparent)]
    Invalid(FieldError),
}

/// Decodes a JSON body, telling malformed JSON apart from a wrong shape and
/// naming the path of the offending field for the latter.
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        classify(err.into_inner(), path)
    })?;
    de.end().map_err(|err| classify(err, String::new()))?;
    Ok(value)
}

fn classify(err: serde_json::Error, path: String) -> DecodeError {
    use serde_json::error::Category;
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => DecodeError::Malformed(err.to_string()),
        Category::Data => {
            // serde's message ends in " at line L column C"; the path says more.
            let full = err.to_string();
            let message = full.rsplit_once(" at line ").map_or(full.as_str(), |(m, _)| m).to_string();
            let mut field = if path == "." { String::new() } else { path };
            if let Some(missing) = message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
                field = if field.is_empty() { missing.to_string() } else { format!("{field}.{missing}") };
            }
            DecodeError::Invalid(FieldError { field, message })
        }
    }
}

/// Invisible characters that change how text reads without showing: bidi
/// controls, zero-width spaces and joiners, the byte order mark, soft
/// hyphens. In an id they make two ids that look alike differ.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// An id: text that has no invisible characters and no surrounding spaces.
fn check_id(field: &str, value: &str) -> Result<(), FieldError> {
    check_text(field, value, MAX_ID_LEN)?;
    if value.chars().any(is_invisible_format) {
        return Err(FieldError::new(
            field,
            "must not contain invisible formatting characters (bidi controls, zero-width spaces)",
        ));
    }
    if value.trim() != value {
        return Err(FieldError::new(field, "must not start or end with spaces"));
    }
    Ok(())
}

fn check_text(field: &str, value: &str, max_len: usize) -> Result<(), FieldError> {
    if value.trim().is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if value.chars().count() > max_len {
        return Err(FieldError::new(field, format!("must be at most {max_len} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(field, "must not contain control characters"));
    }
    Ok(())
}

/// `Idempotency-Key`: 1–255 printable ASCII characters.
pub fn validate_idempotency_key(key: &str) -> Result<(), FieldError> {
    const FIELD: &str = "Idempotency-Key";
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(FieldError::new(FIELD, format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters")));
    }
    if !key.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(FieldError::new(FIELD, "must be printable ASCII"));
    }
    Ok(())
}

fn parse_price(field: &str, raw: &RawValue, currency: Currency) -> Result<MinorUnits, FieldError> {
    let text = raw.get();
    let decimal = if text.starts_with('"') {
        let decimal = serde_json::from_str::<String>(text).map_err(|e| FieldError::new(field, e.to_string()))?;
        if decimal.trim() != decimal {
            return Err(FieldError::new(field, "must be a decimal such as \"19.99\", without spaces"));
        }
        decimal
    } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        text.to_string()
    } else {
        return Err(FieldError::new(field, "must be a decimal number such as 19.99 or \"19.99\""));
    };
    parse_decimal(&decimal, currency.exponent(), MAX_UNIT_PRICE_MAJOR)
        .map_err(|e| FieldError::new(field, e.to_string()))
}

fn validate_address(address: &Address) -> Result<(), FieldError> {
    check_text("shipping_address.line1", &address.line1, MAX_TEXT_LEN)?;
    if let Some(line2) = &address.line2 {
        check_text("shipping_address.line2", line2, MAX_TEXT_LEN)?;
    }
    check_text("shipping_address.city", &address.city, MAX_TEXT_LEN)?;
    if let Some(region) = &address.region {
        check_text("shipping_address.region", region, MAX_TEXT_LEN)?;
    }
    check_text("shipping_address.postal_code", &address.postal_code, 32)?;
    if address.country.len() != 2 || !address.country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(FieldError::new("shipping_address.country", "must be an ISO 3166-1 alpha-2 code such as \"US\""));
    }
    Ok(())
}

fn parse_payment_method(value: &str) -> Result<PaymentMethod, FieldError> {
    PaymentMethod::ALL
        .into_iter()
        .find(|m| serde_json::to_value(m).ok().and_then(|v| v.as_str().map(|s| s == value)).unwrap_or(false))
        .ok_or_else(|| {
            FieldError::new(
                "payment_method",
                "must be one of card, paypal, apple_pay, google_pay, bank_transfer, gift_card, cash_on_delivery",
            )
        })
}

fn parse_placed_at(value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, FieldError> {
    const FIELD: &str = "placed_at";
    let at = DateTime::parse_from_rfc3339(value)
        .map_err(|_| FieldError::new(FIELD, "must be an RFC 3339 timestamp such as 2026-11-22T10:00:00Z"))?
        .with_timezone(&Utc);
    let earliest = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single().unwrap_or(DateTime::<Utc>::MIN_UTC);
    if at < earliest {
        return Err(FieldError::new(FIELD, "must not be before 2000-01-01"));
    }
    if at > now + MAX_FUTURE_SKEW {
        return Err(FieldError::new(FIELD, "must not be more than 5 minutes in the future"));
    }
    Ok(at)
}

/// Validates a decoded request against every rule; `now` bounds `placed_at`.
pub fn validate_order(req: &CreateOrderRequest, now: DateTime<Utc>) -> Result<NewOrder, FieldError> {
    check_id("customer_id", &req.customer_id)?;
    let currency = match &req.currency {
        None => Currency::USD,
        Some(code) => Currency::from_code(code)
            .ok_or_else(|| FieldError::new("currency", format!("{code:?} is not an ISO 4217 currency code")))?,
    };
    if req.items.is_empty() {
        return Err(FieldError::new("items", "must contain at least one item"));
    }
    if req.items.len() > MAX_ITEMS {
        return Err(FieldError::new("items", format!("must contain at most {MAX_ITEMS} items")));
    }
    let mut seen = HashSet::with_capacity(req.items.len());
    let mut items = Vec::with_capacity(req.items.len());
    let mut subtotal: i64 = 0;
    let max_total = MAX_ORDER_TOTAL_MAJOR * minor_per_major(currency.exponent());
    for (i, item) in req.items.iter().enumerate() {
        let field = |name: &str| format!("items[{i}].{name}");
        check_id(&field("product_id"), &item.product_id)?;
        if !seen.insert(item.product_id.as_str()) {
            return Err(FieldError::new(
                field("product_id"),
                "appears twice; give one line per product with the total quantity",
            ));
        }
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            return Err(FieldError::new(field("quantity"), format!("must be between 1 and {MAX_QUANTITY}")));
        }
        let unit_price = parse_price(&field("unit_price"), &item.unit_price, currency)?;
        let quantity = u32::try_from(item.quantity).map_err(|_| FieldError::new(field("quantity"), "out of range"))?;
        subtotal = subtotal.saturating_add(unit_price.0.saturating_mul(i64::from(quantity)));
        if subtotal > max_total {
            return Err(FieldError::new(
                "items",
                format!("order total exceeds the maximum of {MAX_ORDER_TOTAL_MAJOR}"),
            ));
        }
        items.push(OrderItem { product_id: item.product_id.clone(), quantity, unit_price });
    }
    if let Some(address) = &req.shipping_address {
        validate_address(address)?;
    }
    let payment_method = req.payment_method.as_deref().map(parse_payment_method).transpose()?;
    let client_ip = req
        .client_ip
        .as_deref()
        .map(|ip| ip.parse::<IpAddr>().map_err(|_| FieldError::new("client_ip", "must be an IPv4 or IPv6 address")))
        .transpose()?;
    let placed_at = req.placed_at.as_deref().map(|at| parse_placed_at(at, now)).transpose()?;
    if let Some(key) = &req.idempotency_key {
        validate_idempotency_key(key).map_err(|e| FieldError::new("idempotency_key", e.message))?;
    }
    Ok(NewOrder {
        customer_id: req.customer_id.clone(),
        items,
        currency,
        shipping_address: req.shipping_address.clone(),
        payment_method,
        client_ip,
        placed_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode(body: serde_json::Value) -> Result<NewOrder, String> {
        let req: CreateOrderRequest = decode_json(body.to_string().as_bytes()).map_err(|e| match e {
            DecodeError::Invalid(f) => f.field,
            DecodeError::Malformed(m) => format!("malformed: {m}"),
        })?;
        validate_order(&req, Utc::now()).map_err(|f| f.field)
    }

    fn valid() -> serde_json::Value {
        json!({"customer_id": "c-1", "items": [{"product_id": "p-1", "quantity": 2, "unit_price": 19.99}]})
    }

    fn with(path: &[&str], value: serde_json::Value) -> serde_json::Value {
        let mut body = valid();
        let mut cursor = &mut body;
        for (i, key) in path.iter().enumerate() {
            if i + 1 == path.len() {
                cursor[*key] = value.clone();
            } else if let Ok(index) = key.parse::<usize>() {
                cursor = &mut cursor[index];
            } else {
                cursor = &mut cursor[*key];
            }
        }
        body
    }

    #[test]
    fn accepts_a_valid_order_with_numeric_or_string_prices() {
        let order = decode(valid()).unwrap();
        assert_eq!(order.items[0].unit_price, MinorUnits(1999));
        assert_eq!(order.currency, Currency::USD);
        let order = decode(with(&["items", "0", "unit_price"], json!("5.5"))).unwrap();
        assert_eq!(order.items[0].unit_price, MinorUnits(550));
    }

    #[test]
    fn names_the_field_of_every_validation_class() {
        let cases = [
            (with(&["items"], json!([])), "items"),
            (with(&["customer_id"], json!("")), "customer_id"),
            (with(&["customer_id"], json!("x".repeat(129))), "customer_id"),
            (with(&["customer_id"], json!("a\u{0007}b")), "customer_id"),
            (with(&["customer_id"], json!(42)), "customer_id"),
            (with(&["currency"], json!("XYZ")), "currency"),
            (with(&["items", "0", "quantity"], json!(0)), "items[0].quantity"),
            (with(&["items", "0", "quantity"], json!(10_001)), "items[0].quantity"),
            (with(&["items", "0", "quantity"], json!(1.5)), "items[0].quantity"),
            (with(&["items", "0", "unit_price"], json!(-1)), "items[0].unit_price"),
            (with(&["items", "0", "unit_price"], json!(19.999)), "items[0].unit_price"),
            (with(&["items", "0", "unit_price"], json!("NaN")), "items[0].unit_price"),
            (with(&["items", "0", "unit_price"], json!(1e12)), "items[0].unit_price"),
            (with(&["items", "0", "unit_price"], json!(null)), "items[0].unit_price"),
            (with(&["items", "0", "product_id"], json!("")), "items[0].product_id"),
            (with(&["client_ip"], json!("999.1.1.1")), "client_ip"),
            (with(&["placed_at"], json!("yesterday")), "placed_at"),
            (with(&["placed_at"], json!("2999-01-01T00:00:00Z")), "placed_at"),
            (with(&["payment_method"], json!("bitcoin")), "payment_method"),
            (
                with(
                    &["shipping_address"],
                    json!({"line1": "1 Main", "city": "X", "postal_code": "1", "country": "usa"}),
                ),
                "shipping_address.country",
            ),
            (with(&["idempotency_key"], json!("")), "idempotency_key"),
            (with(&["colour"], json!("red")), "colour"),
            (json!({"items": []}), "customer_id"),
        ];
        for (body, field) in cases {
            assert_eq!(decode(body.clone()), Err(field.to_string()), "{body}");
        }
    }

    #[test]
    fn refuses_too_many_items_duplicates_and_absurd_totals() {
        let many: Vec<_> =
            (0..501).map(|i| json!({"product_id": format!("p{i}"), "quantity": 1, "unit_price": 1})).collect();
        assert_eq!(decode(with(&["items"], json!(many))), Err("items".into()));
        let twice = json!([{"product_id": "p", "quantity": 1, "unit_price": 1}, {"product_id": "p", "quantity": 1, "unit_price": 1}]);
        assert_eq!(decode(with(&["items"], twice)), Err("items[1].product_id".into()));
        let huge: Vec<_> = (0..200)
            .map(|i| json!({"product_id": format!("p{i}"), "quantity": 10_000, "unit_price": 1_000_000}))
            .collect();
        assert_eq!(decode(with(&["items"], json!(huge))), Err("items".into()));
    }

    #[test]
    fn refuses_invisible_characters_in_ids_and_spaces_around_prices() {
        for id in ["c\u{200B}1", "\u{202E}1-c", "c-1\u{FEFF}", " c-1", "c-1 "] {
            assert_eq!(decode(with(&["customer_id"], json!(id))), Err("customer_id".into()), "{id:?}");
            assert_eq!(decode(with(&["items", "0", "product_id"], json!(id))), Err("items[0].product_id".into()));
        }
        for price in [" 1.00", "1.00 ", "\t1"] {
            assert_eq!(decode(with(&["items", "0", "unit_price"], json!(price))), Err("items[0].unit_price".into()));
        }
        assert!(decode(with(&["customer_id"], json!("Zoë Müller-Ⅱ"))).is_ok(), "visible unicode is fine");
    }

    #[test]
    fn tells_malformed_json_from_invalid_json() {
        assert!(matches!(decode_json::<CreateOrderRequest>(b"{\"customer_id\": "), Err(DecodeError::Malformed(_))));
        assert!(matches!(decode_json::<CreateOrderRequest>(b""), Err(DecodeError::Malformed(_))));
        assert!(matches!(
            decode_json::<CreateOrderRequest>(br#"{"customer_id":"c","items":[]} trailing"#),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(decode_json::<CreateOrderRequest>(b"[]"), Err(DecodeError::Invalid(_))));
    }

    #[test]
    fn idempotency_keys_are_printable_and_bounded() {
        assert!(validate_idempotency_key("order-123 retry").is_ok());
        assert!(validate_idempotency_key("").is_err());
        assert!(validate_idempotency_key(&"k".repeat(256)).is_err());
        assert!(validate_idempotency_key("tab\there").is_err());
        assert!(validate_idempotency_key("ünï").is_err());
    }
}
