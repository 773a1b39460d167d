//! The fraud screen: a 0–100 risk score with its reasons, from the order and
//! what this customer and IP did recently. Time is the log's time, so a
//! replay of the stream scores every order exactly as the first run did.
//!
//! | rule | points |
//! | --- | --- |
//! | customer velocity: ≥ 3 / ≥ 5 orders in 10 min | 20 / 40 |
//! | IP velocity: ≥ 5 / ≥ 10 orders in 10 min | 20 / 40 |
//! | new customer, order ≥ 500 (major units) | 35 |
//! | ≥ 3 earlier orders, and this one > 5× their average | 30 |
//! | ≥ 3 distinct shipping addresses in 24 h | 30 |

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use schemas::Order;
use schemas::money::minor_per_major;

const VELOCITY_WINDOW_MS: i64 = 10 * 60 * 1000;
const ADDRESS_WINDOW_MS: i64 = 24 * 3600 * 1000;
/// Customers idle this long are forgotten, so memory follows activity.
const FORGET_AFTER_MS: i64 = 7 * 24 * 3600 * 1000;
const HIGH_VALUE_MAJOR: i64 = 500;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct CustomerHistory {
    orders: u64,
    spent_minor: i64,
    recent_ms: VecDeque<i64>,
    /// (when, hash of the address) in the address window.
    addresses: VecDeque<(i64, u64)>,
    last_seen_ms: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FraudScreen {
    customers: HashMap<String, CustomerHistory>,
    ips: HashMap<IpAddr, VecDeque<i64>>,
    inputs_since_sweep: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    pub score: u8,
    pub reasons: Vec<String>,
}

fn prune(times: &mut VecDeque<i64>, now: i64, window: i64) {
    while times.front().is_some_and(|t| now - t > window) {
        times.pop_front();
    }
}

fn address_hash(order: &Order) -> Option<u64> {
    let address = order.shipping_address.as_ref()?;
    // DefaultHasher::new() has fixed keys: stable within a build, and the
    // hash is only compared within one engine's memory.
    let mut hasher = DefaultHasher::new();
    (&address.line1, &address.line2, &address.city, &address.postal_code, &address.country).hash(&mut hasher);
    Some(hasher.finish())
}

impl FraudScreen {
    /// Scores `order` at log time `at` and records it in the histories.
    pub fn assess(&mut self, order: &Order, at: DateTime<Utc>) -> Assessment {
        let now = at.timestamp_millis();
        self.sweep(now);
        let mut score: u32 = 0;
        let mut reasons = Vec::new();
        let major = minor_per_major(order.currency.exponent());

        let customer = self.customers.entry(order.customer_id.clone()).or_default();
        prune(&mut customer.recent_ms, now, VELOCITY_WINDOW_MS);
        customer.recent_ms.push_back(now);
        let recent = customer.recent_ms.len();
        if recent >= 5 {
            score += 40;
            reasons.push(format!("customer_velocity: {recent} orders in 10 min"));
        } else if recent >= 3 {
            score += 20;
            reasons.push(format!("customer_velocity: {recent} orders in 10 min"));
        }
        if customer.orders == 0 && order.total.0 >= HIGH_VALUE_MAJOR * major {
            score += 35;
            reasons.push(format!("new_customer_high_value: first order of {}", order.total.0 / major));
        }
        if customer.orders >= 3 {
            let average = customer.spent_minor / customer.orders as i64;
            if average > 0 && order.total.0 > 5 * average {
                score += 30;
                reasons.push(format!("amount_vs_history: {}x the customer's average", order.total.0 / average));
            }
        }
        if let Some(hash) = address_hash(order) {
            while customer.addresses.front().is_some_and(|(t, _)| now - t > ADDRESS_WINDOW_MS) {
                customer.addresses.pop_front();
            }
            if !customer.addresses.iter().any(|(_, h)| *h == hash) {
                customer.addresses.push_back((now, hash));
            }
            let distinct = customer.addresses.len();
            if distinct >= 3 {
                score += 30;
                reasons.push(format!("address_hopping: {distinct} addresses in 24 h"));
            }
        }
        customer.orders += 1;
        customer.spent_minor = customer.spent_minor.saturating_add(order.total.0);
        customer.last_seen_ms = now;

        if let Some(ip) = order.client_ip {
            let times = self.ips.entry(ip).or_default();
            prune(times, now, VELOCITY_WINDOW_MS);
            times.push_back(now);
            let n = times.len();
            if n >= 10 {
                score += 40;
                reasons.push(format!("ip_velocity: {n} orders from {ip} in 10 min"));
            } else if n >= 5 {
                score += 20;
                reasons.push(format!("ip_velocity: {n} orders from {ip} in 10 min"));
            }
        }
        Assessment { score: score.min(100) as u8, reasons }
    }

    /// Every 100k orders, forget customers idle for a week and idle IPs.
    fn sweep(&mut self, now: i64) {
        self.inputs_since_sweep += 1;
        if self.inputs_since_sweep < 100_000 {
            return;
        }
        self.inputs_since_sweep = 0;
        self.customers.retain(|_, c| now - c.last_seen_ms <= FORGET_AFTER_MS);
        self.ips.retain(|_, times| {
            prune(times, now, VELOCITY_WINDOW_MS);
            !times.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use schemas::{Address, Currency, MinorUnits, OrderItem, TaxRate};
    use uuid::Uuid;

    fn order(customer: &str, total_major: i64, ip: Option<&str>, street: Option<&str>) -> Order {
        let new = schemas::NewOrder {
            customer_id: customer.into(),
            items: vec![OrderItem { product_id: "p".into(), quantity: 1, unit_price: MinorUnits(total_major * 100) }],
            currency: Currency::USD,
            shipping_address: street.map(|s| Address {
                line1: s.into(),
                line2: None,
                city: "X".into(),
                region: None,
                postal_code: "1".into(),
                country: "US".into(),
            }),
            payment_method: None,
            client_ip: ip.map(|ip| ip.parse().unwrap()),
            placed_at: None,
        };
        Order::accept(new, Uuid::now_v7(), Utc::now(), TaxRate(0), None)
    }

    #[test]
    fn an_ordinary_order_scores_zero() {
        let mut screen = FraudScreen::default();
        let a = screen.assess(&order("c", 40, Some("1.2.3.4"), Some("1 Main")), Utc::now());
        assert_eq!(a, Assessment { score: 0, reasons: vec![] });
    }

    #[test]
    fn a_new_account_bursting_from_one_ip_across_addresses_is_flagged() {
        let mut screen = FraudScreen::default();
        let start = Utc::now();
        for i in 0..9 {
            screen.assess(&order(&format!("other-{i}"), 20, Some("9.9.9.9"), None), start);
        }
        let mut last = None;
        for (i, street) in ["1 A", "2 B", "3 C"].iter().enumerate() {
            let at = start + TimeDelta::seconds(i as i64);
            last = Some(screen.assess(&order("fraudster", 900, Some("9.9.9.9"), Some(street)), at));
        }
        let a = last.unwrap();
        assert!(a.score > 80, "{a:?}");
        assert!(a.reasons.iter().any(|r| r.starts_with("ip_velocity")));
        assert!(a.reasons.iter().any(|r| r.starts_with("address_hopping")));
        assert!(a.reasons.iter().any(|r| r.starts_with("customer_velocity")));
    }

    #[test]
    fn windows_slide_with_log_time_and_big_spikes_are_noticed() {
        let mut screen = FraudScreen::default();
        let start = Utc::now();
        for i in 0..4 {
            let a = screen.assess(&order("c", 50, None, None), start + TimeDelta::minutes(20 * i));
            assert_eq!(a.score, 0, "spread out orders are not velocity");
        }
        let spike = screen.assess(&order("c", 400, None, None), start + TimeDelta::minutes(100));
        assert!(spike.reasons.iter().any(|r| r.starts_with("amount_vs_history")), "{spike:?}");
        let first_big = FraudScreen::default().assess(&order("new", 600, None, None), start);
        assert_eq!(first_big.score, 35);
    }

    #[test]
    fn same_inputs_same_scores() {
        let orders: Vec<Order> =
            (0..50).map(|i| order(&format!("c{}", i % 3), 100 + i, Some("5.5.5.5"), None)).collect();
        let start = Utc::now();
        let run = || {
            let mut screen = FraudScreen::default();
            orders
                .iter()
                .enumerate()
                .map(|(i, o)| screen.assess(o, start + TimeDelta::seconds(i as i64)).score)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}
