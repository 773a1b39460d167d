//! Orders and events as Arrow record batches of the `schemas::tables`
//! schemas. Each row keeps the stream sequence it came from, which is what
//! makes the output files' names (and so the output) exactly-once.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Decimal128Builder, Int32Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use chrono::{DateTime, Utc};
use schemas::tables::{MONEY_SCALE, Table};
use schemas::{Currency, EventPayload, MinorUnits, Order, OrderEvent};

use crate::AnalyticsError;

/// The category of an item whose product the catalog does not know.
pub const UNCATEGORIZED: &str = "uncategorized";

/// product_id → category, from the catalog.
pub type Categories = HashMap<String, String>;

/// Minor units of `currency` as a `Decimal128(18, 4)` value.
pub fn money_value(amount: MinorUnits, currency: Currency) -> i128 {
    let exponent = i32::from(currency.exponent()).min(i32::from(MONEY_SCALE as u8));
    i128::from(amount.0) * 10_i128.pow((i32::from(MONEY_SCALE as u8) - exponent) as u32)
}

fn money_builder(capacity: usize) -> Decimal128Builder {
    Decimal128Builder::with_capacity(capacity).with_data_type(schemas::tables::money())
}

fn ts_builder(capacity: usize) -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC")
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn finish(table: Table, columns: Vec<ArrayRef>) -> Result<RecordBatch, AnalyticsError> {
    Ok(RecordBatch::try_new(table.schema(), columns)?)
}

/// The text form of an id, formatted without allocating (this runs once
/// per row of every base table).
fn uuid_text<'a>(id: &uuid::Uuid, buffer: &'a mut [u8; uuid::fmt::Hyphenated::LENGTH]) -> &'a str {
    id.hyphenated().encode_lower(buffer)
}

/// The `orders` rows for `(stream_seq, order)` pairs (owned or borrowed).
pub fn orders_batch<O: Borrow<Order>>(orders: &[(u64, O)]) -> Result<RecordBatch, AnalyticsError> {
    let n = orders.len();
    let mut order_id = StringBuilder::with_capacity(n, n * 36);
    let mut customer_id = StringBuilder::with_capacity(n, n * 12);
    let (mut placed_at, mut received_at) = (ts_builder(n), ts_builder(n));
    let mut currency = StringBuilder::with_capacity(n, n * 3);
    let (mut subtotal, mut tax, mut total) = (money_builder(n), money_builder(n), money_builder(n));
    let mut item_count = Int32Builder::with_capacity(n);
    let mut unit_count = Int64Builder::with_capacity(n);
    let mut payment_method = StringBuilder::new();
    let mut country = StringBuilder::new();
    let mut city = StringBuilder::new();
    let mut client_ip = StringBuilder::new();
    let mut stream_seq = Int64Builder::with_capacity(n);
    let mut address_key = StringBuilder::with_capacity(n, n * 16);
    let mut id_text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    for (seq, order) in orders {
        let order = order.borrow();
        order_id.append_value(uuid_text(&order.order_id, &mut id_text));
        customer_id.append_value(&order.customer_id);
        placed_at.append_value(micros(order.placed_at));
        received_at.append_value(micros(order.received_at));
        currency.append_value(order.currency.code());
        subtotal.append_value(money_value(order.subtotal, order.currency));
        tax.append_value(money_value(order.tax, order.currency));
        total.append_value(money_value(order.total, order.currency));
        item_count.append_value(order.items.len() as i32);
        unit_count.append_value(order.unit_count() as i64);
        payment_method.append_option(order.payment_method.map(|m| m.as_str()));
        country.append_option(order.shipping_address.as_ref().map(|a| a.country.as_str()));
        city.append_option(order.shipping_address.as_ref().map(|a| a.city.as_str()));
        client_ip.append_option(order.client_ip.map(|ip| ip.to_string()));
        stream_seq.append_value(*seq as i64);
        address_key.append_option(order.shipping_address.as_ref().map(|a| a.key_hex()));
    }
    finish(
        Table::Orders,
        vec![
            Arc::new(order_id.finish()),
            Arc::new(customer_id.finish()),
            Arc::new(placed_at.finish()),
            Arc::new(received_at.finish()),
            Arc::new(currency.finish()),
            Arc::new(subtotal.finish()),
            Arc::new(tax.finish()),
            Arc::new(total.finish()),
            Arc::new(item_count.finish()),
            Arc::new(unit_count.finish()),
            Arc::new(payment_method.finish()),
            Arc::new(country.finish()),
            Arc::new(city.finish()),
            Arc::new(client_ip.finish()),
            Arc::new(stream_seq.finish()),
            Arc::new(address_key.finish()),
        ],
    )
}

/// The `order_items` rows: one per line, with the product's category.
pub fn order_items_batch<O: Borrow<Order>>(
    orders: &[(u64, O)],
    categories: &Categories,
) -> Result<RecordBatch, AnalyticsError> {
    let n: usize = orders.iter().map(|(_, o)| o.borrow().items.len()).sum();
    let mut order_id = StringBuilder::with_capacity(n, n * 36);
    let mut line_no = Int32Builder::with_capacity(n);
    let mut customer_id = StringBuilder::with_capacity(n, n * 12);
    let mut placed_at = ts_builder(n);
    let mut product_id = StringBuilder::with_capacity(n, n * 10);
    let mut category = StringBuilder::with_capacity(n, n * 12);
    let mut quantity = Int32Builder::with_capacity(n);
    let (mut unit_price, mut line_total) = (money_builder(n), money_builder(n));
    let mut currency = StringBuilder::with_capacity(n, n * 3);
    let mut stream_seq = Int64Builder::with_capacity(n);
    let mut id_text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    for (seq, order) in orders {
        let order = order.borrow();
        let id = uuid_text(&order.order_id, &mut id_text);
        for (i, item) in order.items.iter().enumerate() {
            order_id.append_value(id);
            line_no.append_value(i as i32 + 1);
            customer_id.append_value(&order.customer_id);
            placed_at.append_value(micros(order.placed_at));
            product_id.append_value(&item.product_id);
            category.append_value(categories.get(&item.product_id).map_or(UNCATEGORIZED, String::as_str));
            quantity.append_value(item.quantity as i32);
            unit_price.append_value(money_value(item.unit_price, order.currency));
            line_total.append_value(money_value(item.line_total(), order.currency));
            currency.append_value(order.currency.code());
            stream_seq.append_value(*seq as i64);
        }
    }
    finish(
        Table::OrderItems,
        vec![
            Arc::new(order_id.finish()),
            Arc::new(line_no.finish()),
            Arc::new(customer_id.finish()),
            Arc::new(placed_at.finish()),
            Arc::new(product_id.finish()),
            Arc::new(category.finish()),
            Arc::new(quantity.finish()),
            Arc::new(unit_price.finish()),
            Arc::new(line_total.finish()),
            Arc::new(currency.finish()),
            Arc::new(stream_seq.finish()),
        ],
    )
}

/// The `order_events` rows for `(stream_seq, event)` pairs (owned or borrowed).
pub fn order_events_batch<E: Borrow<OrderEvent>>(events: &[(u64, E)]) -> Result<RecordBatch, AnalyticsError> {
    let n = events.len();
    let mut event_id = StringBuilder::with_capacity(n, n * 48);
    let mut order_id = StringBuilder::with_capacity(n, n * 36);
    let mut customer_id = StringBuilder::with_capacity(n, n * 12);
    let mut kind = StringBuilder::with_capacity(n, n * 14);
    let (mut from_status, mut status, mut reason) = (StringBuilder::new(), StringBuilder::new(), StringBuilder::new());
    let mut risk_score = Int32Builder::with_capacity(n);
    let mut risk_reasons = ListBuilder::new(StringBuilder::new());
    let (mut risk_model, mut reviewer, mut review_note) =
        (StringBuilder::new(), StringBuilder::new(), StringBuilder::new());
    let (mut order_total, mut refund_amount) = (money_builder(n), money_builder(n));
    let mut currency = StringBuilder::new();
    let (mut command, mut message) = (StringBuilder::new(), StringBuilder::new());
    let mut occurred_at = ts_builder(n);
    let mut stream_seq = Int64Builder::with_capacity(n);
    let mut id_text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    for (seq, event) in events {
        let event = event.borrow();
        event_id.append_value(&event.event_id);
        order_id.append_value(uuid_text(&event.order_id, &mut id_text));
        customer_id.append_option(event.customer_id.as_deref());
        kind.append_value(event.kind.as_str());
        let money = |amount: Option<MinorUnits>| Some(money_value(amount?, event.currency?));
        order_total.append_option(money(event.order_total));
        currency.append_option(event.currency.map(|c| c.code()));
        match &event.payload {
            EventPayload::StatusChanged {
                from,
                to,
                reason: why,
                risk_score: score,
                risk_reasons: reasons,
                risk_model: model,
                reviewer: who,
                review_note: note,
                ..
            } => {
                risk_model.append_option(model.as_deref());
                reviewer.append_option(who.as_deref());
                review_note.append_option(note.as_deref());
                from_status.append_option(from.map(|s| s.as_str()));
                status.append_value(to.as_str());
                reason.append_option(why.map(|r| r.as_str()));
                risk_score.append_option(score.map(i32::from));
                if reasons.is_empty() {
                    risk_reasons.append_null();
                } else {
                    for r in reasons {
                        risk_reasons.values().append_value(r);
                    }
                    risk_reasons.append(true);
                }
                refund_amount.append_null();
                command.append_null();
                message.append_null();
            }
            EventPayload::RefundIssued { amount } => {
                from_status.append_null();
                status.append_null();
                reason.append_null();
                risk_score.append_null();
                risk_reasons.append_null();
                risk_model.append_null();
                reviewer.append_null();
                review_note.append_null();
                refund_amount.append_option(money(Some(*amount)));
                command.append_null();
                message.append_null();
            }
            EventPayload::CommandRejected { command: name, status: at, message: text } => {
                from_status.append_null();
                status.append_value(at.as_str());
                reason.append_null();
                risk_score.append_null();
                risk_reasons.append_null();
                risk_model.append_null();
                reviewer.append_null();
                review_note.append_null();
                refund_amount.append_null();
                command.append_value(name);
                message.append_value(text);
            }
        }
        occurred_at.append_value(micros(event.occurred_at));
        stream_seq.append_value(*seq as i64);
    }
    finish(
        Table::OrderEvents,
        vec![
            Arc::new(event_id.finish()),
            Arc::new(order_id.finish()),
            Arc::new(customer_id.finish()),
            Arc::new(kind.finish()),
            Arc::new(from_status.finish()),
            Arc::new(status.finish()),
            Arc::new(reason.finish()),
            Arc::new(risk_score.finish()),
            Arc::new(risk_reasons.finish()),
            Arc::new(order_total.finish()),
            Arc::new(refund_amount.finish()),
            Arc::new(currency.finish()),
            Arc::new(command.finish()),
            Arc::new(message.finish()),
            Arc::new(occurred_at.finish()),
            Arc::new(stream_seq.finish()),
            Arc::new(risk_model.finish()),
            Arc::new(reviewer.finish()),
            Arc::new(review_note.finish()),
        ],
    )
}

/// The `late_events` rows of one pipeline (partitioned by pipeline in the path).
pub fn late_events_batch(
    spec: &crate::pipeline::PipelineSpec,
    late: &[crate::pipeline::LateRow],
) -> Result<RecordBatch, AnalyticsError> {
    let n = late.len();
    let mut source_table = StringBuilder::with_capacity(n, n * 12);
    let mut record_id = StringBuilder::with_capacity(n, n * 40);
    let (mut event_time, mut window_start, mut window_end, mut watermark) =
        (ts_builder(n), ts_builder(n), ts_builder(n), ts_builder(n));
    let mut stream_seq = Int64Builder::with_capacity(n);
    for row in late {
        source_table.append_value(spec.source.name());
        record_id.append_value(&row.record_id);
        event_time.append_value(row.event_ms * 1000);
        window_start.append_value(row.window.start_ms * 1000);
        window_end.append_value(row.window.end_ms * 1000);
        watermark.append_value(row.watermark_ms.saturating_mul(1000));
        stream_seq.append_value(row.stream_seq as i64);
    }
    finish(
        Table::LateEvents,
        vec![
            Arc::new(source_table.finish()),
            Arc::new(record_id.finish()),
            Arc::new(event_time.finish()),
            Arc::new(window_start.finish()),
            Arc::new(window_end.finish()),
            Arc::new(watermark.finish()),
            Arc::new(stream_seq.finish()),
        ],
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Decimal128Type;
    use schemas::{OrderItem, TaxRate};
    use uuid::Uuid;

    pub(crate) fn order(customer: &str, items: &[(&str, u32, i64)], currency: &str) -> Order {
        let new = schemas::NewOrder {
            customer_id: customer.into(),
            items: items
                .iter()
                .map(|(p, q, price)| OrderItem {
                    product_id: p.to_string(),
                    quantity: *q,
                    unit_price: MinorUnits(*price),
                })
                .collect(),
            currency: Currency::from_code(currency).unwrap(),
            shipping_address: None,
            payment_method: Some(schemas::PaymentMethod::ApplePay),
            client_ip: None,
            placed_at: None,
        };
        Order::accept(new, Uuid::now_v7(), Utc::now(), TaxRate(1000), None)
    }

    #[test]
    fn money_is_exact_whatever_the_exponent() {
        assert_eq!(money_value(MinorUnits(1999), Currency::USD), 199_900);
        assert_eq!(money_value(MinorUnits(500), Currency::from_code("JPY").unwrap()), 5_000_000);
        assert_eq!(money_value(MinorUnits(1234), Currency::from_code("KWD").unwrap()), 12_340);
    }

    #[test]
    fn items_carry_category_and_line_totals() {
        let o = order("c1", &[("p1", 2, 1050), ("p2", 1, 1)], "USD");
        let categories = Categories::from([("p1".to_string(), "toys".to_string())]);
        let batch = order_items_batch(&[(7, o.clone())], &categories).unwrap();
        assert_eq!(batch.num_rows(), 2);
        let category = batch.column_by_name("category").unwrap().as_string::<i32>();
        assert_eq!(category.value(0), "toys");
        assert_eq!(category.value(1), UNCATEGORIZED);
        let totals = batch.column_by_name("line_total").unwrap().as_primitive::<Decimal128Type>();
        assert_eq!(totals.value(0), 210_000);
        let orders = orders_batch(&[(7, o)]).unwrap();
        assert_eq!(orders.column_by_name("payment_method").unwrap().as_string::<i32>().value(0), "apple_pay");
        assert_eq!(orders.schema(), Table::Orders.schema());
    }

    #[test]
    fn events_flatten_each_payload() {
        let o = order("c1", &[("p1", 1, 100)], "USD");
        let placed = OrderEvent::status_changed(o.order_id, None, schemas::OrderStatus::Pending, None, Utc::now())
            .unwrap()
            .for_order(&o);
        let refund = OrderEvent::refund_issued(o.order_id, MinorUnits(110), Utc::now()).for_order(&o);
        let batch = order_events_batch(&[(1, placed), (2, refund)]).unwrap();
        let status = batch.column_by_name("status").unwrap().as_string::<i32>();
        assert_eq!(status.value(0), "pending");
        assert!(status.is_null(1));
        let refund = batch.column_by_name("refund_amount").unwrap().as_primitive::<Decimal128Type>();
        assert_eq!(refund.value(1), 11_000);
    }
}
