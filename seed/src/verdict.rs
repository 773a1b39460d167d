//! The seeded orders judged by the real fraud scorer, in `placed_at` order
//! across days, and their status events written from its verdict: what the
//! processor would have done, so the seeded fraud review, fraud rates and
//! model training see the product's own decisions, not the labels.

use std::sync::Arc;

use chrono::Duration as ChronoDuration;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schemas::{CancelReason, EventPayload, Order, OrderEvent, OrderStatus};

use fraud::{Assessment, FeatureState, FraudModel, OrderFacts};

use crate::{SeedConfig, SeedDay};

/// The scorer's memory across the seeded days, with its model.
pub struct SeedScreen {
    state: FeatureState,
    model: Arc<FraudModel>,
    flag_above: u8,
}

/// Who reviews the seeded flags.
pub const SEED_REVIEWER: &str = "seed-reviewer";

impl SeedScreen {
    pub fn new(model: Arc<FraudModel>, threshold: Option<u8>) -> SeedScreen {
        let flag_above = threshold.unwrap_or(model.threshold);
        SeedScreen { state: FeatureState::default(), model, flag_above }
    }

    pub fn builtin() -> Result<SeedScreen, fraud::FraudError> {
        Ok(SeedScreen::new(Arc::new(FraudModel::builtin()?), None))
    }
}

/// Scores day `index`'s orders (in `placed_at` order) and writes each
/// order's status events. Days must be settled in order.
pub fn settle(config: &SeedConfig, index: u32, day: &mut SeedDay, screen: &mut SeedScreen) {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed.wrapping_mul(0xA076_1D64_78BD_642F) ^ u64::from(index));
    day.orders.sort_by_key(|o| (o.order.placed_at, o.order.order_id));
    let now = super::end_of_history(config);
    for seeded in &mut day.orders {
        let assessment = fraud::screen(&mut screen.state, &screen.model, &OrderFacts::of(&seeded.order));
        let flagged = assessment.score > screen.flag_above;
        seeded.events = lifecycle(&mut rng, &seeded.order, &assessment, flagged, seeded.fraud.is_some(), now);
    }
}

/// The status path: flagged orders wait for a review (fraud is mostly
/// rejected, honest mostly approved); the rest take the saga's mix; recent
/// orders are still on their way.
fn lifecycle(
    rng: &mut ChaCha8Rng,
    order: &Order,
    assessment: &Assessment,
    flagged: bool,
    fraud: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<OrderEvent> {
    use OrderStatus::*;
    let mut path: Vec<(OrderStatus, Option<CancelReason>, i64)> = Vec::new();
    let mut reviewed = false;
    if flagged {
        path.push((Flagged, None, 300));
        let reject = if fraud { rng.random::<f64>() < 0.92 } else { rng.random::<f64>() < 0.05 };
        let review_ms = rng.random_range(600_000..14_400_000);
        reviewed = true;
        if reject {
            path.push((Cancelled, Some(CancelReason::FraudRejected), review_ms));
        } else {
            path.push((Reserved, None, review_ms));
            path.push((Confirmed, None, 4_000));
        }
    } else {
        let roll: f64 = rng.random();
        if roll < 0.03 {
            path.push((Cancelled, Some(CancelReason::OutOfStock), 300));
        } else {
            path.push((Reserved, None, 300));
            if roll < 0.08 {
                path.push((Cancelled, Some(CancelReason::PaymentDeclined), 3_000));
            } else {
                path.push((Confirmed, None, 3_000));
                if roll < 0.12 {
                    path.push((Cancelled, Some(CancelReason::CustomerCancelled), 1_800_000));
                }
            }
        }
    }
    if path.last().is_some_and(|(s, _, _)| *s == Confirmed) {
        path.push((Processing, None, rng.random_range(3_600_000..43_200_000)));
        path.push((Shipped, None, rng.random_range(43_200_000..172_800_000)));
        path.push((Delivered, None, rng.random_range(86_400_000..432_000_000)));
    }
    let mut at = order.received_at;
    let mut from = Pending;
    let mut events = Vec::with_capacity(path.len());
    for (i, (to, reason, delay_ms)) in path.into_iter().enumerate() {
        at += ChronoDuration::milliseconds(delay_ms);
        if at > now {
            break; // not there yet
        }
        let Ok(mut event) = OrderEvent::status_changed(order.order_id, Some(from), to, reason, at) else { break };
        if let EventPayload::StatusChanged { risk_score, risk_reasons, risk_model, reviewer, review_note, .. } =
            &mut event.payload
        {
            if i == 0 {
                *risk_score = Some(assessment.score);
                risk_reasons.clone_from(&assessment.reasons);
                *risk_model = Some(assessment.model.clone());
            } else if i == 1 && reviewed {
                *reviewer = Some(SEED_REVIEWER.to_string());
                *review_note = Some(if to == Cancelled { "rejected as fraud" } else { "looks genuine" }.to_string());
            }
        }
        events.push(event.for_order(order));
        from = to;
    }
    events
}
