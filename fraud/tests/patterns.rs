//! The built-in model against each fraud pattern and each honest decoy, in
//! isolation: the patterns score above its threshold, the decoys below.

use fraud::{FeatureState, FraudModel, OrderFacts, screen};

const DAY_MIN: i64 = 24 * 60;
const START_MS: i64 = 1_767_225_600_000; // 2026-01-01

struct World {
    state: FeatureState,
    model: FraudModel,
}

impl World {
    fn new() -> World {
        World { state: FeatureState::default(), model: FraudModel::builtin().unwrap_or_else(|e| panic!("{e}")) }
    }

    /// Scores one order placed `at_min` minutes after the start.
    fn order(&mut self, customer: &str, at_min: i64, dollars: i64, ip: &str, address: u64) -> (u8, Vec<String>) {
        let facts = OrderFacts {
            customer_id: customer,
            placed_at_ms: START_MS + at_min * 60_000,
            amount_cents: dollars * 100,
            ip: ip.parse().ok(),
            address_key: Some(address),
        };
        let a = screen(&mut self.state, &self.model, &facts);
        (a.score, a.reasons)
    }

    fn flagged(&self, score: u8) -> bool {
        score > self.model.threshold
    }

    /// A customer with a few ordinary orders from home over the past months.
    fn regular(&mut self, customer: &str, home_ip: &str, home: u64) {
        for k in 0..6 {
            self.order(customer, k * 20 * DAY_MIN, 60 + 5 * k, home_ip, home);
        }
    }
}

const NOW: i64 = 200 * DAY_MIN;

#[test]
fn a_new_account_s_large_first_order_is_flagged() {
    let mut w = World::new();
    let (score, reasons) = w.order("c-new-1", NOW, 1_400, "198.51.100.7", 1);
    assert!(w.flagged(score), "{score} {reasons:?}");
    assert!(!reasons.is_empty());
}

#[test]
fn card_testing_from_one_ip_is_flagged_after_its_first_orders() {
    let mut w = World::new();
    for (i, customer) in ["a", "b", "c", "d"].iter().enumerate() {
        w.regular(customer, &format!("10.0.0.{i}"), 100 + i as u64);
    }
    let mut flagged = Vec::new();
    for (k, customer) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().enumerate() {
        let (score, reasons) = w.order(customer, NOW + k as i64, 180, "198.51.100.66", 500 + k as u64);
        flagged.push((w.flagged(score), score, reasons));
    }
    assert!(flagged[2..].iter().all(|(f, _, _)| *f), "{flagged:?}");
    assert!(flagged[2].2.iter().any(|r| r.starts_with("ip_")), "{flagged:?}");
}

#[test]
fn address_hopping_is_flagged_by_its_third_address() {
    let mut w = World::new();
    w.regular("hopper", "10.1.1.1", 7);
    let mut last = (0, Vec::new());
    for k in 0..3 {
        last = w.order("hopper", NOW + k * 90, 45, &format!("198.51.100.{}", 20 + k), 70 + k as u64);
    }
    assert!(w.flagged(last.0), "{last:?}");
}

#[test]
fn an_account_takeover_is_flagged() {
    let mut w = World::new();
    w.regular("victim", "10.2.2.2", 9);
    let (score, reasons) = w.order("victim", NOW, 900, "198.51.100.200", 99);
    assert!(w.flagged(score), "{score} {reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("takeover") || r.starts_with("amount_vs_usual")), "{reasons:?}");
}

#[test]
fn colleagues_behind_one_office_ip_pass() {
    let mut w = World::new();
    let colleagues = ["o1", "o2", "o3", "o4", "o5"];
    for (i, c) in colleagues.iter().enumerate() {
        w.regular(c, &format!("10.3.3.{i}"), 300 + i as u64);
    }
    for (k, c) in colleagues.iter().enumerate() {
        let (score, reasons) = w.order(c, NOW + 6 * k as i64, 55, "203.0.113.50", 300 + k as u64);
        assert!(!w.flagged(score), "colleague {k}: {score} {reasons:?}");
    }
}

#[test]
fn a_loyal_customer_s_big_holiday_order_passes() {
    let mut w = World::new();
    w.regular("loyal", "10.4.4.4", 44);
    let (score, reasons) = w.order("loyal", NOW, 450, "10.4.4.4", 44);
    assert!(!w.flagged(score), "{score} {reasons:?}");
}

#[test]
fn a_customer_who_moved_house_passes() {
    let mut w = World::new();
    w.regular("mover", "10.5.5.5", 55);
    let (score, reasons) = w.order("mover", NOW, 70, "10.9.9.9", 56);
    assert!(!w.flagged(score), "{score} {reasons:?}");
    let (score, _) = w.order("mover", NOW + 3 * DAY_MIN, 80, "10.9.9.9", 56);
    assert!(!w.flagged(score));
}

#[test]
fn the_same_orders_give_the_same_scores() {
    let run = || {
        let mut w = World::new();
        (0..300)
            .map(|i| w.order(&format!("c{}", i % 17), i * 7, 20 + i % 300, "10.0.0.1", (i % 5) as u64))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}
