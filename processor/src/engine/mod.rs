//! The order engine: a deterministic state machine over the ORDERS stream.
//!
//! It applies orders, commands and stock changes one at a time in stream
//! order and records what must happen as [`Effects`]: status events, read-
//! model updates, stock levels. The same inputs from the same snapshot always
//! give the same effects, byte for byte (times are the log's, not the
//! clock's). That is what makes a crash safe: the runner snapshots the engine
//! after its effects are durable, and after a crash re-applies the inputs
//! since the snapshot, re-publishing identical events under identical ids,
//! which JetStream deduplicates.

pub mod inventory;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use schemas::{
    CancelReason, EventPayload, LinePrice, ListPrice, Order, OrderCommand, OrderCommandEnvelope, OrderEvent,
    OrderState, OrderStatus, ReviewDecision, StockCommand, StockEvent, check_transition,
};

use fraud::{FeatureState, FraudModel, OrderFacts};
use inventory::{Inventory, StockError};

/// Terminal orders are remembered this long (log time), so a late duplicate
/// of an order or a payment answer after a cancel is recognised.
const REMEMBER_TERMINAL_MS: i64 = 15 * 60 * 1000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Orders scoring above this are flagged for review; `None`: the
    /// model's own threshold.
    #[serde(default)]
    pub fraud_threshold: Option<u8>,
    /// The fraud model (configuration, not state: never snapshotted).
    #[serde(skip, default = "builtin_fraud_model")]
    pub fraud_model: Arc<FraudModel>,
    /// What a submitted unit price that differs from the catalog's does.
    #[serde(default)]
    pub pricing: Pricing,
    /// How far (minor units per unit) a submitted price may be from the
    /// catalog's and still count as the same (the catalog's is charged).
    #[serde(default)]
    pub price_tolerance: i64,
}

/// `--pricing`: the catalog is authoritative for the products it lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pricing {
    /// Cancel the order (`price_mismatch`) when a line's price is off.
    #[default]
    Reject,
    /// Charge the catalog's price whatever the client sent.
    Reprice,
    /// Charge what the client sent (before the catalog was authoritative).
    Trust,
}

/// The model compiled into the binary; a unit test of the fraud crate
/// proves it parses, so failing here is a broken build, not an input.
fn builtin_fraud_model() -> Arc<FraudModel> {
    Arc::new(FraudModel::builtin().unwrap_or_else(|e| panic!("{e}")))
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            fraud_threshold: None,
            fraud_model: builtin_fraud_model(),
            pricing: Pricing::default(),
            price_tolerance: 0,
        }
    }
}

impl EngineConfig {
    pub fn flag_above(&self) -> u8 {
        self.fraud_threshold.unwrap_or(self.fraud_model.threshold)
    }
}

/// One message of the ORDERS stream, decoded.
#[derive(Clone, Debug)]
pub enum Input {
    Order(Box<Order>),
    Command(OrderCommandEnvelope),
    Stock(StockCommand),
}

/// A message the engine cannot use; it goes to the dead-letter stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Poison {
    pub seq: u64,
    pub reason: String,
}

/// What applying inputs requires of the outside world, in order.
#[derive(Debug, Default)]
pub struct Effects {
    pub events: Vec<OrderEvent>,
    pub stock_events: Vec<StockEvent>,
    /// Latest state of every order that changed (the read model).
    pub views: BTreeMap<Uuid, OrderState>,
    /// Products whose stock level changed.
    pub stock: BTreeSet<String>,
    pub poison: Vec<Poison>,
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.stock_events.is_empty()
            && self.views.is_empty()
            && self.stock.is_empty()
            && self.poison.is_empty()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Finished {
    customer_id: String,
    status: OrderStatus,
    total: schemas::MinorUnits,
    /// Absent in snapshots taken before events carried the currency.
    #[serde(default)]
    currency: Option<schemas::Currency>,
    paid: bool,
    refunded: bool,
    at_ms: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Engine {
    /// Sequence of the last ORDERS message applied.
    pub last_seq: u64,
    inventory: Inventory,
    live: HashMap<Uuid, OrderState>,
    finished: HashMap<Uuid, Finished>,
    finished_order: VecDeque<Uuid>,
    /// The fraud screen's event-time windows (snapshots from before the
    /// learned model held another shape under `fraud`: they start afresh).
    #[serde(default)]
    fraud_features: FeatureState,
    /// Each catalog product's list price, as the log last set it.
    #[serde(default)]
    prices: BTreeMap<String, ListPrice>,
    config: EngineConfig,
    /// How far each output stream had come when this state was snapshotted
    /// (kept by the runner; absent in snapshots from before it was kept).
    #[serde(default)]
    pub outputs: Option<crate::resume::OutputPositions>,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        Engine {
            last_seq: 0,
            inventory: Inventory::default(),
            live: HashMap::new(),
            finished: HashMap::new(),
            finished_order: VecDeque::new(),
            fraud_features: FeatureState::default(),
            prices: BTreeMap::new(),
            config,
            outputs: None,
        }
    }

    /// Keeps the state but takes the configuration of this run.
    pub fn reconfigure(&mut self, config: EngineConfig) {
        self.config = config;
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    pub fn live_orders(&self) -> usize {
        self.live.len()
    }

    /// Applies the message at `seq` (log time `at`). Messages at or below
    /// `last_seq` were applied already and are skipped.
    pub fn apply(&mut self, seq: u64, at: DateTime<Utc>, input: Input, fx: &mut Effects) {
        if seq <= self.last_seq {
            return;
        }
        self.last_seq = seq;
        self.forget_old(at.timestamp_millis());
        let result = match input {
            Input::Order(order) => {
                self.submit(seq, at, *order, fx);
                Ok(())
            }
            Input::Command(command) => self.command(seq, at, command, fx),
            Input::Stock(command) => {
                self.stock(at, command, fx);
                Ok(())
            }
        };
        if let Err(err) = result {
            fx.poison.push(Poison { seq, reason: err.to_string() });
        }
    }

    /// A message that could not be decoded still advances the position.
    pub fn skip(&mut self, seq: u64, reason: String, fx: &mut Effects) {
        if seq > self.last_seq {
            self.last_seq = seq;
            fx.poison.push(Poison { seq, reason });
        }
    }

    fn submit(&mut self, seq: u64, at: DateTime<Utc>, order: Order, fx: &mut Effects) {
        let id = order.order_id;
        if self.live.contains_key(&id) || self.finished.contains_key(&id) {
            // A republish beyond JetStream's dedup window: the same order.
            return;
        }
        let mut state = OrderState {
            order,
            stream_seq: seq,
            status: OrderStatus::Pending,
            history: vec![(OrderStatus::Pending, at)],
            cancel_reason: None,
            risk_score: 0,
            risk_reasons: Vec::new(),
            risk_model: None,
            catalog_prices: Vec::new(),
            refunded: false,
            version: seq,
        };
        if !self.price(&mut state) {
            self.transition(&mut state, OrderStatus::Cancelled, Some(CancelReason::PriceMismatch), at, fx);
            self.store(state, at, fx);
            return;
        }
        // No event for `pending`: ingest put the order there, and its ORDERS
        // message is that record. ORDER_EVENTS holds the processor's moves.
        // Judged by when it was placed, not when it reached the log: a
        // backfill posted with its historical times scores as it did live.
        let model = &self.config.fraud_model;
        let assessment = fraud::screen(&mut self.fraud_features, model, &OrderFacts::of(&state.order));
        state.risk_score = assessment.score;
        state.risk_reasons = assessment.reasons;
        state.risk_model = Some(assessment.model);
        if state.risk_score > self.config.flag_above() {
            self.transition(&mut state, OrderStatus::Flagged, None, at, fx);
        } else {
            self.reserve(&mut state, at, fx);
        }
        self.store(state, at, fx);
    }

    /// Prices the lines whose product the catalog lists with its price, and
    /// says whether the order may go on: `false` when a submitted price is
    /// off by more than the tolerance (or in another currency) and the
    /// policy rejects. Unknown products keep the client's price (and will
    /// find no stock).
    fn price(&self, state: &mut OrderState) -> bool {
        if self.config.pricing == Pricing::Trust || self.prices.is_empty() {
            return true;
        }
        let currency = state.order.currency;
        let mut acceptable = true;
        let mut changed = false;
        for item in &mut state.order.items {
            let Some(list) = self.prices.get(&item.product_id) else { continue };
            let submitted = item.unit_price;
            let same_currency = list.currency == currency;
            let off = !same_currency || (submitted.0 - list.unit_price.0).abs() > self.config.price_tolerance;
            if off && (self.config.pricing == Pricing::Reject || !same_currency) {
                acceptable = false;
            }
            if same_currency && submitted != list.unit_price {
                item.unit_price = list.unit_price;
                changed = true;
            }
            state.catalog_prices.push(LinePrice {
                product_id: item.product_id.clone(),
                unit_price: list.unit_price,
                submitted: (submitted != list.unit_price).then_some(submitted),
            });
        }
        if changed && acceptable {
            state.order.recompute_totals();
        }
        acceptable
    }

    fn reserve(&mut self, state: &mut OrderState, at: DateTime<Utc>, fx: &mut Effects) {
        match self.inventory.reserve(&state.order.items) {
            Ok(()) => {
                fx.stock.extend(state.order.items.iter().map(|i| i.product_id.clone()));
                self.transition(state, OrderStatus::Reserved, None, at, fx);
            }
            Err(_) => self.transition(state, OrderStatus::Cancelled, Some(CancelReason::OutOfStock), at, fx),
        }
    }

    fn command(
        &mut self,
        seq: u64,
        at: DateTime<Utc>,
        cmd: OrderCommandEnvelope,
        fx: &mut Effects,
    ) -> Result<(), StockError> {
        let id = cmd.order_id;
        let Some(mut state) = self.live.remove(&id) else {
            self.command_on_finished(seq, at, &cmd, fx);
            return Ok(());
        };
        state.version = seq;
        let name = cmd.command.name();
        let outcome = self.run_command(&mut state, cmd.command, at, fx);
        if let Ok(Err(message)) = &outcome {
            let event = OrderEvent::command_rejected(id, name, state.status, message.clone(), seq, at);
            fx.events.push(event.for_order(&state.order));
        }
        // Whatever happened, the order stays known.
        self.store(state, at, fx);
        outcome.map(|_| ())
    }

    /// `Ok(Err(why))`: the order's state does not allow the command.
    /// `Err`: stock bookkeeping is broken (a bug; the input is dead-lettered).
    fn run_command(
        &mut self,
        state: &mut OrderState,
        command: OrderCommand,
        at: DateTime<Utc>,
        fx: &mut Effects,
    ) -> Result<Result<(), String>, StockError> {
        match command {
            OrderCommand::Payment { approved: true, .. } if state.status == OrderStatus::Reserved => {
                self.inventory.sell(&state.order.items)?;
                fx.stock.extend(state.order.items.iter().map(|i| i.product_id.clone()));
                self.transition(state, OrderStatus::Confirmed, None, at, fx);
            }
            OrderCommand::Payment { approved: false, .. } if state.status == OrderStatus::Reserved => {
                self.release_and_cancel(state, CancelReason::PaymentDeclined, at, fx)?;
            }
            OrderCommand::Advance { to } if check_transition(state.status, to, None).is_ok() => {
                self.transition(state, to, None, at, fx);
            }
            OrderCommand::Cancel { reason }
                if check_transition(state.status, OrderStatus::Cancelled, Some(reason)).is_ok() =>
            {
                self.release_and_cancel(state, reason, at, fx)?;
            }
            OrderCommand::Review { decision, reviewer, note } if state.status == OrderStatus::Flagged => {
                let first = fx.events.len();
                match decision {
                    ReviewDecision::Approve => self.reserve(state, at, fx),
                    ReviewDecision::Reject => {
                        self.transition(state, OrderStatus::Cancelled, Some(CancelReason::FraudRejected), at, fx);
                    }
                }
                // The move out of review carries who decided and why.
                if let Some(EventPayload::StatusChanged { reviewer: who, review_note, .. }) =
                    fx.events.get_mut(first).map(|e| &mut e.payload)
                {
                    *who = reviewer;
                    *review_note = note;
                }
            }
            _ => return Ok(Err(format!("not allowed while the order is {}", state.status))),
        }
        Ok(Ok(()))
    }

    /// Commands for orders already delivered or cancelled (or never seen).
    fn command_on_finished(&mut self, seq: u64, at: DateTime<Utc>, cmd: &OrderCommandEnvelope, fx: &mut Effects) {
        let id = cmd.order_id;
        if let (OrderCommand::Payment { approved: true, .. }, Some(done)) = (&cmd.command, self.finished.get_mut(&id))
            && done.status == OrderStatus::Cancelled
            && !done.paid
            && !done.refunded
        {
            // The customer cancelled while the payment was in flight and the
            // charge went through: give the money back, once.
            done.refunded = true;
            let mut refund = OrderEvent::refund_issued(id, done.total, at).for_customer(&done.customer_id);
            refund.order_total = Some(done.total);
            refund.currency = done.currency;
            fx.events.push(refund);
            return;
        }
        let status = self.finished.get(&id).map_or(OrderStatus::Pending, |d| d.status);
        let message = if self.finished.contains_key(&id) {
            format!("the order is already {status}")
        } else {
            "no such live order".to_string()
        };
        fx.events.push(OrderEvent::command_rejected(id, cmd.command.name(), status, message, seq, at));
    }

    fn release_and_cancel(
        &mut self,
        state: &mut OrderState,
        reason: CancelReason,
        at: DateTime<Utc>,
        fx: &mut Effects,
    ) -> Result<(), StockError> {
        let items = &state.order.items;
        if state.status.is_paid() {
            self.inventory.restock(items)?;
            state.refunded = true;
        } else if state.status.holds_stock() {
            self.inventory.release(items)?;
        }
        if state.status.holds_stock() {
            fx.stock.extend(items.iter().map(|i| i.product_id.clone()));
        }
        let paid = state.status.is_paid();
        self.transition(state, OrderStatus::Cancelled, Some(reason), at, fx);
        if paid {
            let refund = OrderEvent::refund_issued(state.order.order_id, state.order.total, at);
            fx.events.push(refund.for_order(&state.order));
        }
        Ok(())
    }

    fn transition(
        &mut self,
        state: &mut OrderState,
        to: OrderStatus,
        reason: Option<CancelReason>,
        at: DateTime<Utc>,
        fx: &mut Effects,
    ) {
        let from = state.status;
        push_event(fx, state, Some(from), to, reason, at);
        state.status = to;
        state.history.push((to, at));
        if reason.is_some() {
            state.cancel_reason = reason;
        }
    }

    /// Keeps a live order, or remembers a finished one, and records its view.
    fn store(&mut self, state: OrderState, at: DateTime<Utc>, fx: &mut Effects) {
        let id = state.order.order_id;
        fx.views.insert(id, state.clone());
        if state.status.is_terminal() {
            let paid = state.history.iter().any(|(s, _)| s.is_paid());
            self.finished.insert(
                id,
                Finished {
                    customer_id: state.order.customer_id.clone(),
                    status: state.status,
                    total: state.order.total,
                    currency: Some(state.order.currency),
                    paid,
                    refunded: state.refunded,
                    at_ms: at.timestamp_millis(),
                },
            );
            self.finished_order.push_back(id);
        } else {
            self.live.insert(id, state);
        }
    }

    fn forget_old(&mut self, now_ms: i64) {
        while let Some(id) = self.finished_order.front() {
            match self.finished.get(id) {
                Some(done) if now_ms - done.at_ms <= REMEMBER_TERMINAL_MS => break,
                _ => {
                    if let Some(id) = self.finished_order.pop_front() {
                        self.finished.remove(&id);
                    }
                }
            }
        }
    }

    fn stock(&mut self, at: DateTime<Utc>, cmd: StockCommand, fx: &mut Effects) {
        if let Some(price) = cmd.list_price {
            self.prices.insert(cmd.product_id.clone(), price);
        }
        let before = self.inventory.level(&cmd.product_id);
        let (after, rejected) = match self.inventory.change(&cmd.product_id, &cmd.change) {
            Ok((_, after)) => {
                fx.stock.insert(cmd.product_id.clone());
                (after, None)
            }
            Err(err) => (before, Some(err.to_string())),
        };
        fx.stock_events.push(StockEvent {
            event_id: schemas::stock_event_id(&cmd.request_id),
            product_id: cmd.product_id,
            occurred_at: at,
            change: cmd.change,
            before,
            after,
            rejected,
            reason: cmd.reason,
        });
    }
}

/// The status event for a step, carrying the risk assessment once screened.
fn push_event(
    fx: &mut Effects,
    state: &OrderState,
    from: Option<OrderStatus>,
    to: OrderStatus,
    reason: Option<CancelReason>,
    at: DateTime<Utc>,
) {
    let order_id = state.order.order_id;
    match OrderEvent::status_changed(order_id, from, to, reason, at) {
        Ok(mut event) => {
            if let EventPayload::StatusChanged { risk_score, risk_reasons, risk_model, prices, .. } = &mut event.payload
                && from == Some(OrderStatus::Pending)
            {
                // A price mismatch is refused before the screen runs.
                if state.risk_model.is_some() {
                    *risk_score = Some(state.risk_score);
                    risk_reasons.clone_from(&state.risk_reasons);
                    risk_model.clone_from(&state.risk_model);
                }
                prices.clone_from(&state.catalog_prices);
            }
            fx.events.push(event.for_order(&state.order));
        }
        Err(err) => fx.poison.push(Poison { seq: state.version, reason: format!("order {order_id}: {err}") }),
    }
}

#[cfg(test)]
mod tests;
