use std::collections::{HashMap, HashSet};

use chrono::{TimeDelta, Utc};
use proptest::prelude::*;
use schemas::{Currency, MinorUnits, NewOrder, OrderItem, StockChange, TaxRate};

use super::*;

struct Log {
    engine: Engine,
    seq: u64,
    start: DateTime<Utc>,
    fx: Effects,
}

impl Log {
    fn new() -> Log {
        Log { engine: Engine::new(EngineConfig::default()), seq: 0, start: Utc::now(), fx: Effects::default() }
    }

    fn at(&self) -> DateTime<Utc> {
        self.start + TimeDelta::milliseconds(self.seq as i64)
    }

    fn push(&mut self, input: Input) -> u64 {
        self.seq += 1;
        let at = self.at();
        self.engine.apply(self.seq, at, input, &mut self.fx);
        self.seq
    }

    fn set_stock(&mut self, product: &str, quantity: u64, list_price: Option<ListPrice>) {
        self.push(Input::Stock(StockCommand {
            request_id: format!("r{}", self.seq),
            product_id: product.into(),
            change: StockChange::Set { quantity },
            reason: None,
            issued_at: Utc::now(),
            list_price,
        }));
    }

    fn stock(&mut self, product: &str, quantity: u64) {
        self.set_stock(product, quantity, None);
    }

    /// A catalog import's command: stock and the list price.
    fn list(&mut self, product: &str, quantity: u64, unit_price: i64, currency: Currency) {
        self.set_stock(product, quantity, Some(ListPrice { unit_price: MinorUnits(unit_price), currency }));
    }

    fn order(&mut self, customer: &str, items: &[(&str, u32)]) -> Uuid {
        self.order_priced(customer, items, MinorUnits(1000))
    }

    fn order_priced(&mut self, customer: &str, items: &[(&str, u32)], unit_price: MinorUnits) -> Uuid {
        self.order_taxed(customer, items, unit_price, TaxRate(0))
    }

    fn order_taxed(&mut self, customer: &str, items: &[(&str, u32)], unit_price: MinorUnits, tax: TaxRate) -> Uuid {
        let new = NewOrder {
            customer_id: customer.into(),
            items: items.iter().map(|(p, q)| OrderItem { product_id: (*p).into(), quantity: *q, unit_price }).collect(),
            currency: Currency::USD,
            shipping_address: None,
            payment_method: None,
            client_ip: None,
            placed_at: None,
        };
        let order = Order::accept(new, Uuid::now_v7(), Utc::now(), tax, None);
        let id = order.order_id;
        self.push(Input::Order(Box::new(order)));
        id
    }

    fn command(&mut self, order_id: Uuid, command: OrderCommand) {
        self.push(Input::Command(OrderCommandEnvelope { order_id, issued_at: Utc::now(), command }));
    }

    fn pay(&mut self, order_id: Uuid, approved: bool) {
        self.command(order_id, OrderCommand::Payment { approved, charge_id: format!("ch-{order_id}") });
    }

    fn status(&self, id: Uuid) -> OrderStatus {
        self.fx.views[&id].status
    }
}

/// The first event out of `pending` for `id`.
fn first_move(log: &Log, id: Uuid) -> &OrderEvent {
    log.fx.events.iter().find(|e| e.order_id == id).expect("an event")
}

#[test]
fn the_catalog_prices_its_products_and_rejects_a_price_off_by_more_than_the_tolerance() {
    let mut log = Log::new();
    log.engine.reconfigure(EngineConfig { price_tolerance: 5, ..EngineConfig::default() });
    log.list("lamp", 10, 4950, Currency::USD);
    log.stock("loose", 10); // stocked, but never priced by the catalog

    // $49.50 in the catalog, ordered at $0.01: cancelled, nothing reserved.
    let cheap = log.order_priced("c1", &[("lamp", 1)], MinorUnits(1));
    assert_eq!(log.status(cheap), OrderStatus::Cancelled);
    assert_eq!(log.fx.views[&cheap].cancel_reason, Some(CancelReason::PriceMismatch));
    assert_eq!(log.engine.inventory().level("lamp").available, 10);
    let EventPayload::StatusChanged { prices, reason, risk_score, .. } = &first_move(&log, cheap).payload else {
        panic!("a status event")
    };
    assert_eq!(*reason, Some(CancelReason::PriceMismatch));
    assert_eq!(risk_score, &None, "refused before the screen");
    assert_eq!(
        prices,
        &vec![LinePrice { product_id: "lamp".into(), unit_price: MinorUnits(4950), submitted: Some(MinorUnits(1)) }]
    );

    // Within the tolerance: the catalog's price is charged.
    let close = log.order_priced("c2", &[("lamp", 2), ("loose", 1)], MinorUnits(4953));
    assert_eq!(log.status(close), OrderStatus::Reserved);
    let order = &log.fx.views[&close].order;
    assert_eq!(order.items[0].unit_price, MinorUnits(4950));
    assert_eq!(order.items[1].unit_price, MinorUnits(4953), "not in the catalog: the client's price");
    assert_eq!(order.subtotal, MinorUnits(2 * 4950 + 4953));
    assert_eq!(first_move(&log, close).order_total, Some(order.total), "the event carries the total charged");

    // Another currency cannot be compared: refused.
    log.list("mug", 10, 450, Currency::from_code("EUR").expect("a currency"));
    let foreign = log.order_priced("c3", &[("mug", 1)], MinorUnits(450));
    assert_eq!(log.fx.views[&foreign].cancel_reason, Some(CancelReason::PriceMismatch));
}

#[test]
fn reprice_charges_the_catalog_and_trust_the_client() {
    let mut log = Log::new();
    log.engine.reconfigure(EngineConfig { pricing: Pricing::Reprice, ..EngineConfig::default() });
    log.list("lamp", 10, 4950, Currency::USD);
    let id = log.order_taxed("c1", &[("lamp", 2)], MinorUnits(1), TaxRate(1000));
    let charged = &log.fx.views[&id].order;
    assert_eq!(log.status(id), OrderStatus::Reserved);
    assert_eq!((charged.subtotal, charged.tax, charged.total), (MinorUnits(9900), MinorUnits(990), MinorUnits(10890)));

    log.engine.reconfigure(EngineConfig { pricing: Pricing::Trust, ..EngineConfig::default() });
    let trusted = log.order_priced("c2", &[("lamp", 1)], MinorUnits(1));
    assert_eq!(log.fx.views[&trusted].order.total, MinorUnits(1));
    assert!(log.fx.views[&trusted].catalog_prices.is_empty());
}

#[test]
fn flash_sale_confirms_exactly_the_first_hundred_in_stream_order() {
    let mut log = Log::new();
    log.stock("hot", 100);
    let buyers: Vec<Uuid> = (0..10_000).map(|i| log.order(&format!("c{i}"), &[("hot", 1)])).collect();
    for id in &buyers {
        if log.status(*id) == OrderStatus::Reserved {
            log.pay(*id, true);
        }
    }
    let confirmed: Vec<Uuid> = buyers.iter().copied().filter(|id| log.status(*id) == OrderStatus::Confirmed).collect();
    assert_eq!(confirmed, buyers[..100].to_vec(), "the winners are the first 100 in stream order");
    for id in &buyers[100..] {
        assert_eq!(log.fx.views[id].cancel_reason, Some(CancelReason::OutOfStock));
    }
    assert_eq!(log.engine.inventory().level("hot"), schemas::StockLevel { available: 0, reserved: 0, sold: 100 });
}

#[test]
fn declined_payment_and_customer_cancel_release_stock_once() {
    let mut log = Log::new();
    log.stock("a", 3);
    let declined = log.order("c1", &[("a", 2)]);
    log.pay(declined, false);
    assert_eq!(log.fx.views[&declined].cancel_reason, Some(CancelReason::PaymentDeclined));
    assert_eq!(log.engine.inventory().level("a").available, 3);
    // A duplicate answer changes nothing.
    log.pay(declined, false);
    assert_eq!(log.engine.inventory().level("a").available, 3);

    let paid = log.order("c2", &[("a", 2)]);
    log.pay(paid, true);
    log.command(paid, OrderCommand::Advance { to: OrderStatus::Processing });
    log.command(paid, OrderCommand::Cancel { reason: CancelReason::CustomerCancelled });
    assert_eq!(log.status(paid), OrderStatus::Cancelled);
    assert!(log.fx.views[&paid].refunded);
    assert_eq!(log.engine.inventory().level("a"), schemas::StockLevel { available: 3, reserved: 0, sold: 0 });
    let refunds = log.fx.events.iter().filter(|e| e.kind == schemas::EventKind::RefundIssued).count();
    assert_eq!(refunds, 1);
}

#[test]
fn shipped_orders_reject_cancellation_with_an_event() {
    let mut log = Log::new();
    log.stock("a", 1);
    let id = log.order("c", &[("a", 1)]);
    log.pay(id, true);
    for to in [OrderStatus::Processing, OrderStatus::Shipped] {
        log.command(id, OrderCommand::Advance { to });
    }
    log.command(id, OrderCommand::Cancel { reason: CancelReason::CustomerCancelled });
    assert_eq!(log.status(id), OrderStatus::Shipped);
    let last = log.fx.events.last().unwrap();
    assert_eq!(last.kind, schemas::EventKind::CommandRejected);
    log.command(id, OrderCommand::Advance { to: OrderStatus::Delivered });
    assert_eq!(log.status(id), OrderStatus::Delivered);
    assert_eq!(log.engine.inventory().level("a").sold, 1);
}

#[test]
fn payment_arriving_after_a_cancel_is_refunded_once() {
    let mut log = Log::new();
    log.stock("a", 1);
    let id = log.order("c", &[("a", 1)]);
    log.command(id, OrderCommand::Cancel { reason: CancelReason::CustomerCancelled });
    log.pay(id, true);
    log.pay(id, true);
    let refunds: Vec<_> = log.fx.events.iter().filter(|e| e.kind == schemas::EventKind::RefundIssued).collect();
    assert_eq!(refunds.len(), 1);
    assert_eq!(log.engine.inventory().level("a").available, 1);
}

#[test]
fn flagged_orders_wait_for_review() {
    let mut log = Log::new();
    // A model that only minds how big a first order is: σ(ln(1 + 600) − 5)
    // = 0.80 for a first order of 600, scored 80, above the threshold 50.
    let model = single_feature_model("test-first-order", fraud::features::Feature::FirstOrderAmount, 1.0);
    log.engine.reconfigure(EngineConfig { fraud_model: Arc::new(model), ..EngineConfig::default() });
    log.stock("a", 5);
    let id = log.order_priced("big", &[("a", 1)], MinorUnits(60_000));
    assert_eq!(log.status(id), OrderStatus::Flagged);
    let view = &log.fx.views[&id];
    assert_eq!((view.risk_score, view.risk_model.as_deref()), (80, Some("test-first-order")));
    assert_eq!(view.risk_reasons, ["first_order_amount: a first order of 600.00"]);
    assert_eq!(log.engine.inventory().level("a").available, 5, "nothing held while flagged");
    let review = OrderCommand::Review {
        decision: ReviewDecision::Approve,
        reviewer: Some("ana".into()),
        note: Some("called the customer".into()),
    };
    log.command(id, review);
    assert_eq!(log.status(id), OrderStatus::Reserved);
    let approved =
        log.fx.events.iter().rev().find(|e| e.order_id == id && e.new_status() == Some(OrderStatus::Reserved));
    assert!(
        matches!(approved.map(|e| &e.payload), Some(EventPayload::StatusChanged { reviewer: Some(r), review_note: Some(n), .. }) if r == "ana" && n == "called the customer"),
        "{approved:?}"
    );
    // A second order by the same customer is not a first order: passed.
    let second = log.order_priced("big", &[("a", 1)], MinorUnits(60_000));
    assert_eq!(log.status(second), OrderStatus::Reserved);

    let other = log.order("c2", &[("a", 1)]);
    log.command(other, OrderCommand::Review { decision: ReviewDecision::Reject, reviewer: None, note: None });
    assert_eq!(log.status(other), OrderStatus::Reserved, "only flagged orders are reviewed");
}

#[test]
fn replaying_from_a_snapshot_gives_identical_effects() {
    // Build a log of inputs once, then apply it straight through, and again
    // with a snapshot taken halfway and the second half re-applied twice.
    let mut recorder = Log::new();
    recorder.stock("a", 10);
    recorder.stock("b", 3);
    let mut inputs: Vec<(u64, DateTime<Utc>, Input)> = Vec::new();
    let start = Utc::now();
    let mut ids = Vec::new();
    for i in 0..40_u64 {
        let order = Order::accept(
            NewOrder {
                customer_id: format!("c{}", i % 7),
                items: vec![OrderItem {
                    product_id: if i % 3 == 0 { "b" } else { "a" }.into(),
                    quantity: 1,
                    unit_price: MinorUnits(500),
                }],
                currency: Currency::USD,
                shipping_address: None,
                payment_method: None,
                client_ip: None,
                placed_at: None,
            },
            Uuid::now_v7(),
            start,
            TaxRate(0),
            None,
        );
        ids.push(order.order_id);
        inputs.push((0, start, Input::Order(Box::new(order))));
        if i % 2 == 1 {
            inputs.push((
                0,
                start,
                Input::Command(OrderCommandEnvelope {
                    order_id: ids[(i / 2) as usize],
                    issued_at: start,
                    command: OrderCommand::Payment { approved: i % 4 != 1, charge_id: "x".into() },
                }),
            ));
        }
    }
    let inputs: Vec<_> = inputs
        .into_iter()
        .enumerate()
        .map(|(i, (_, at, input))| (i as u64 + 3, at + TimeDelta::seconds(i as i64), input))
        .collect();

    let run = |engine: &mut Engine, range: &[(u64, DateTime<Utc>, Input)], fx: &mut Effects| {
        for (seq, at, input) in range {
            engine.apply(*seq, *at, input.clone(), fx);
        }
    };
    let base = recorder.engine.clone();
    let mut straight = base.clone();
    let mut straight_fx = Effects::default();
    run(&mut straight, &inputs, &mut straight_fx);

    let mut first = base.clone();
    let mut fx1 = Effects::default();
    let half = inputs.len() / 2;
    run(&mut first, &inputs[..half], &mut fx1);
    let snapshot = serde_json::to_vec(&first).unwrap();
    // The process "crashes" after publishing some effects of the second half.
    let mut lost = Effects::default();
    run(&mut first, &inputs[half..half + 5], &mut lost);
    let mut resumed: Engine = serde_json::from_slice(&snapshot).unwrap();
    let mut fx2 = Effects::default();
    run(&mut resumed, &inputs[half..], &mut fx2);

    let json = |events: &[OrderEvent]| events.iter().map(|e| serde_json::to_string(e).unwrap()).collect::<Vec<_>>();
    let mut joined = json(&fx1.events);
    joined.extend(json(&fx2.events));
    assert_eq!(joined, json(&straight_fx.events), "same events, same ids, same bytes");
    // What was published before the crash is a prefix of what the resumed run publishes.
    assert_eq!(json(&lost.events), json(&fx2.events)[..lost.events.len()].to_vec());
    assert_eq!(resumed.inventory(), straight.inventory());
}

#[derive(Debug, Clone)]
enum Step {
    Order(u8, Vec<(u8, u32)>),
    Pay(usize, bool),
    Advance(usize, u8),
    Cancel(usize),
    Review(usize, bool),
    Restock(u8, u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0_u8..20, prop::collection::vec((0_u8..3, 1_u32..4), 1..3)).prop_map(|(c, items)| Step::Order(c, items)),
        2 => (0_usize..100, prop::bool::weighted(0.8)).prop_map(|(i, ok)| Step::Pay(i, ok)),
        2 => (0_usize..100, 0_u8..3).prop_map(|(i, s)| Step::Advance(i, s)),
        1 => (0_usize..100).prop_map(Step::Cancel),
        1 => (0_usize..100, any::<bool>()).prop_map(|(i, ok)| Step::Review(i, ok)),
        1 => (0_u8..3, 0_u64..20).prop_map(|(p, q)| Step::Restock(p, q)),
    ]
}

proptest! {
    /// Any interleaving of orders and commands keeps stock conserved, moves
    /// every order only along the state machine, and never repeats an event id.
    #[test]
    fn any_interleaving_keeps_the_invariants(steps in prop::collection::vec(step(), 1..120)) {
        let mut log = Log::new();
        let mut received: HashMap<String, u64> = HashMap::new();
        for p in 0..3 {
            log.stock(&format!("p{p}"), 10);
            received.insert(format!("p{p}"), 10);
        }
        let mut orders: Vec<Uuid> = Vec::new();
        for s in steps {
            match s {
                Step::Order(c, items) => {
                    let mut lines: Vec<(String, u32)> = Vec::new();
                    for (p, q) in items {
                        if !lines.iter().any(|(x, _)| *x == format!("p{p}")) {
                            lines.push((format!("p{p}"), q));
                        }
                    }
                    let refs: Vec<(&str, u32)> = lines.iter().map(|(p, q)| (p.as_str(), *q)).collect();
                    orders.push(log.order(&format!("c{c}"), &refs));
                }
                _ if orders.is_empty() => {}
                Step::Pay(i, ok) => log.pay(orders[i % orders.len()], ok),
                Step::Advance(i, s) => {
                    let to = [OrderStatus::Processing, OrderStatus::Shipped, OrderStatus::Delivered][s as usize];
                    log.command(orders[i % orders.len()], OrderCommand::Advance { to });
                }
                Step::Cancel(i) => log.command(orders[i % orders.len()], OrderCommand::Cancel { reason: CancelReason::CustomerCancelled }),
                Step::Review(i, ok) => {
                    let decision = if ok { ReviewDecision::Approve } else { ReviewDecision::Reject };
                    log.command(orders[i % orders.len()], OrderCommand::Review { decision, reviewer: None, note: None });
                }
                Step::Restock(p, q) => {
                    let product = format!("p{p}");
                    let on_hand = log.engine.inventory().level(&product).on_hand();
                    let available = log.engine.inventory().level(&product).available;
                    log.stock(&product, q);
                    *received.get_mut(&product).unwrap() = on_hand - available + q;
                }
            }
            for (product, received) in &received {
                prop_assert_eq!(log.engine.inventory().level(product).on_hand(), *received);
            }
        }
        prop_assert!(log.fx.poison.is_empty(), "{:?}", log.fx.poison);
        let mut seen = HashSet::new();
        let mut last_status: HashMap<Uuid, OrderStatus> = HashMap::new();
        for event in &log.fx.events {
            prop_assert!(seen.insert(event.event_id.clone()), "duplicate event id {}", event.event_id);
            if let EventPayload::StatusChanged { from, to, reason, .. } = &event.payload {
                // Every order starts in pending (ingest's acceptance).
                let current = last_status.get(&event.order_id).copied().unwrap_or(OrderStatus::Pending);
                prop_assert_eq!(Some(current), *from);
                prop_assert!(check_transition(current, *to, *reason).is_ok());
                last_status.insert(event.order_id, *to);
            }
        }
        // Reserved units are exactly what live reserved/flagged-free orders hold.
        for p in 0..3 {
            let product = format!("p{p}");
            let held: u64 = log.fx.views.values()
                .filter(|v| v.status == OrderStatus::Reserved)
                .flat_map(|v| v.order.items.iter())
                .filter(|i| i.product_id == product)
                .map(|i| u64::from(i.quantity))
                .sum();
            prop_assert_eq!(log.engine.inventory().level(&product).reserved, held);
        }
    }
}

/// A model that minds one feature: `σ(weight · x − 5)`, flagging above 50.
fn single_feature_model(version: &str, feature: fraud::features::Feature, weight: f64) -> FraudModel {
    let mut model = FraudModel::builtin().unwrap_or_else(|e| panic!("{e}"));
    model.version = version.into();
    model.mean = vec![0.0; model.mean.len()];
    model.scale = vec![1.0; model.scale.len()];
    model.weights = fraud::features::Feature::ALL.iter().map(|f| if *f == feature { weight } else { 0.0 }).collect();
    model.intercept = -5.0;
    model.threshold = 50;
    model
}

#[test]
fn orders_are_screened_by_when_they_were_placed_not_when_they_arrived() {
    let mut log = Log::new();
    // Flags an order when another came from its IP in the 10 minutes before it was placed.
    let model = single_feature_model("test-ip-velocity", fraud::features::Feature::IpOrders10m, 10.0);
    log.engine.reconfigure(EngineConfig { fraud_model: Arc::new(model), ..EngineConfig::default() });
    log.stock("a", 100);
    let backfill = |customer: &str, placed: &str| {
        let new = NewOrder {
            customer_id: customer.into(),
            items: vec![OrderItem { product_id: "a".into(), quantity: 1, unit_price: MinorUnits(1000) }],
            currency: Currency::USD,
            shipping_address: None,
            payment_method: None,
            client_ip: Some("203.0.113.9".parse().unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]))),
            placed_at: placed.parse().ok(),
        };
        Order::accept(new, Uuid::now_v7(), Utc::now(), TaxRate(0), None)
    };
    // Arriving a millisecond apart, placed an hour apart in 2020: not a burst.
    for (customer, placed) in [("x", "2020-03-01T10:00:00Z"), ("y", "2020-03-01T11:00:00Z")] {
        let order = backfill(customer, placed);
        let id = order.order_id;
        log.push(Input::Order(Box::new(order)));
        assert_eq!(log.status(id), OrderStatus::Reserved, "{placed}");
    }
    // Placed a minute after the last: flagged, whatever the log time.
    let order = backfill("z", "2020-03-01T11:01:00Z");
    let id = order.order_id;
    log.push(Input::Order(Box::new(order)));
    assert_eq!(log.status(id), OrderStatus::Flagged);
    assert_eq!(log.fx.views[&id].risk_reasons, ["ip_orders_10m: 1 earlier orders from this IP in 10 min"]);
}
