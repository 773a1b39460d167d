//! What the scorer knows of an order, in event time: sliding windows per
//! customer, per IP and per shipping address over `placed_at`, so the same
//! order stream gives the same features live, on a replay and on a backfill
//! posted with its historical times.
//!
//! Features are computed from what came *before* the order (in stream
//! order, within the window of its own `placed_at`), then the order is
//! recorded. State is keyed by stable hashes (XXH3-64), never by a hasher
//! whose algorithm may change between Rust releases, so a snapshot taken by
//! one build resumes identically in the next.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use schemas::Order;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Customers idle (in event time) this long are forgotten.
const FORGET_CUSTOMER_MS: i64 = 180 * DAY_MS;
/// Addresses and IPs remembered per customer (the most recently used).
const KNOWN_PER_CUSTOMER: usize = 6;
/// At most this many recent orders per key are kept for the velocity windows.
const RECENT_CAP: usize = 256;
const SWEEP_EVERY: u64 = 100_000;
/// How long an address remembers who shipped there: drop addresses of
/// fraud rings are reused for days.
const ADDRESS_WINDOW_MS: i64 = 7 * DAY_MS;

/// The features, in model order. Their names are the model file's contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    Amount,
    FirstOrder,
    AccountAgeDays,
    AmountVsUsual,
    NewIp,
    NewAddress,
    NewIpAndAddress,
    Takeover,
    CustomerOrders10m,
    CustomerOrders24h,
    CustomerAddresses24h,
    CustomerIps24h,
    IpOrders10m,
    IpCustomers1h,
    AddressCustomers7d,
    FirstOrderAmount,
    UnfamiliarIpBurst,
    NewAddressHopping,
    UnfamiliarSharedAddress,
}

pub const FEATURE_COUNT: usize = 19;

impl Feature {
    pub const ALL: [Feature; FEATURE_COUNT] = [
        Feature::Amount,
        Feature::FirstOrder,
        Feature::AccountAgeDays,
        Feature::AmountVsUsual,
        Feature::NewIp,
        Feature::NewAddress,
        Feature::NewIpAndAddress,
        Feature::Takeover,
        Feature::CustomerOrders10m,
        Feature::CustomerOrders24h,
        Feature::CustomerAddresses24h,
        Feature::CustomerIps24h,
        Feature::IpOrders10m,
        Feature::IpCustomers1h,
        Feature::AddressCustomers7d,
        Feature::FirstOrderAmount,
        Feature::UnfamiliarIpBurst,
        Feature::NewAddressHopping,
        Feature::UnfamiliarSharedAddress,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Feature::Amount => "amount",
            Feature::FirstOrder => "first_order",
            Feature::AccountAgeDays => "account_age_days",
            Feature::AmountVsUsual => "amount_vs_usual",
            Feature::NewIp => "new_ip",
            Feature::NewAddress => "new_address",
            Feature::NewIpAndAddress => "new_ip_and_address",
            Feature::Takeover => "takeover",
            Feature::CustomerOrders10m => "customer_orders_10m",
            Feature::CustomerOrders24h => "customer_orders_24h",
            Feature::CustomerAddresses24h => "customer_addresses_24h",
            Feature::CustomerIps24h => "customer_ips_24h",
            Feature::IpOrders10m => "ip_orders_10m",
            Feature::IpCustomers1h => "ip_customers_1h",
            Feature::AddressCustomers7d => "address_customers_7d",
            Feature::FirstOrderAmount => "first_order_amount",
            Feature::UnfamiliarIpBurst => "unfamiliar_ip_burst",
            Feature::NewAddressHopping => "new_address_hopping",
            Feature::UnfamiliarSharedAddress => "unfamiliar_shared_address",
        }
    }

    /// The feature as a reason, in words, with what was observed.
    pub fn reason(self, raw: &Observed) -> String {
        let words = match self {
            Feature::Amount => format!("an order of {:.2}", raw.amount),
            Feature::FirstOrder => "the customer's first order".to_string(),
            Feature::AccountAgeDays => format!("the customer was first seen {:.1} days ago", raw.account_age_days),
            Feature::AmountVsUsual => {
                format!(
                    "{:.1}x the customer's usual order of {:.2}",
                    raw.amount / raw.usual_amount.max(0.01),
                    raw.usual_amount
                )
            }
            Feature::NewIp => "an IP address this customer never used".to_string(),
            Feature::NewAddress => "a shipping address this customer never used".to_string(),
            Feature::NewIpAndAddress => "a known customer from a new IP to a new address".to_string(),
            Feature::Takeover => format!(
                "a known customer from a new IP to a new address, {:.1}x their usual order",
                raw.amount / raw.usual_amount.max(0.01)
            ),
            Feature::CustomerOrders10m => {
                format!("{} earlier orders by this customer in 10 min", raw.customer_orders_10m)
            }
            Feature::CustomerOrders24h => {
                format!("{} earlier orders by this customer in 24 h", raw.customer_orders_24h)
            }
            Feature::CustomerAddresses24h => {
                format!("{} other shipping addresses by this customer in 24 h", raw.customer_addresses_24h)
            }
            Feature::CustomerIps24h => format!("{} other IP addresses by this customer in 24 h", raw.customer_ips_24h),
            Feature::IpOrders10m => format!("{} earlier orders from this IP in 10 min", raw.ip_orders_10m),
            Feature::IpCustomers1h => format!("{} other customers from this IP in 1 h", raw.ip_customers_1h),
            Feature::AddressCustomers7d => {
                format!("{} other customers shipping to this address in 7 days", raw.address_customers_7d)
            }
            Feature::FirstOrderAmount => format!("a first order of {:.2}", raw.amount),
            Feature::UnfamiliarIpBurst => format!(
                "{} earlier orders from this IP in 10 min, to an address new to the customer",
                raw.ip_orders_10m
            ),
            Feature::NewAddressHopping => {
                format!("a new shipping address after {} others in 24 h", raw.customer_addresses_24h)
            }
            Feature::UnfamiliarSharedAddress => format!(
                "an address new to the customer that {} other customers shipped to in 7 days",
                raw.address_customers_7d
            ),
        };
        format!("{}: {words}", self.name())
    }
}

/// What was observed of one order, before it is turned into features.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// The order's total in major units (any currency: amounts are compared
    /// with the same customer's, and scale by `ln`).
    pub amount: f64,
    pub first_order: bool,
    pub account_age_days: f64,
    /// The customer's average order so far (0 on a first order).
    pub usual_amount: f64,
    pub new_ip: bool,
    pub new_address: bool,
    pub customer_orders_10m: usize,
    pub customer_orders_24h: usize,
    pub customer_addresses_24h: usize,
    pub customer_ips_24h: usize,
    pub ip_orders_10m: usize,
    pub ip_customers_1h: usize,
    pub address_customers_7d: usize,
}

impl Observed {
    /// The model's inputs: counts and amounts on a log scale.
    pub fn features(&self) -> [f64; FEATURE_COUNT] {
        let ln1p = |n: usize| (n as f64).ln_1p();
        let amount = self.amount.max(0.0).ln_1p();
        let first = f64::from(u8::from(self.first_order));
        let vs_usual = if self.first_order || self.usual_amount <= 0.0 {
            0.0
        } else {
            (self.amount.max(0.01) / self.usual_amount).ln().clamp(-4.0, 6.0)
        };
        let (new_ip, new_address) = (f64::from(u8::from(self.new_ip)), f64::from(u8::from(self.new_address)));
        // An address the customer is not known at: a first order, or new.
        let unfamiliar = f64::from(u8::from(self.first_order || self.new_address));
        [
            amount,
            first,
            self.account_age_days.max(0.0).ln_1p(),
            vs_usual,
            new_ip,
            new_address,
            new_ip * new_address,
            new_ip * new_address * vs_usual.max(0.0),
            ln1p(self.customer_orders_10m),
            ln1p(self.customer_orders_24h),
            ln1p(self.customer_addresses_24h),
            ln1p(self.customer_ips_24h),
            ln1p(self.ip_orders_10m),
            ln1p(self.ip_customers_1h),
            ln1p(self.address_customers_7d),
            first * amount,
            unfamiliar * ln1p(self.ip_orders_10m),
            new_address * ln1p(self.customer_addresses_24h),
            unfamiliar * ln1p(self.address_customers_7d),
        ]
    }
}

/// The parts of an order the features read: from an [`Order`] live, or
/// from a row of the `orders` table when training.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderFacts<'a> {
    pub customer_id: &'a str,
    pub placed_at_ms: i64,
    /// The total in hundredths of a major unit (cents for USD).
    pub amount_cents: i64,
    pub ip: Option<IpAddr>,
    /// [`schemas::Address::key`] of the shipping address.
    pub address_key: Option<u64>,
}

impl<'a> OrderFacts<'a> {
    pub fn of(order: &'a Order) -> OrderFacts<'a> {
        let exponent = order.currency.exponent();
        let amount_cents = match exponent {
            0 => order.total.0.saturating_mul(100),
            1 => order.total.0.saturating_mul(10),
            2 => order.total.0,
            e => order.total.0 / 10_i64.pow(u32::from(e) - 2),
        };
        OrderFacts {
            customer_id: &order.customer_id,
            placed_at_ms: order.placed_at.timestamp_millis(),
            amount_cents,
            ip: order.client_ip,
            address_key: order.shipping_address.as_ref().map(schemas::Address::key),
        }
    }
}

pub fn stable_key(text: &str) -> u64 {
    twox_hash::XxHash3_64::oneshot(text.as_bytes())
}

fn ip_key(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => twox_hash::XxHash3_64::oneshot(&v4.octets()),
        IpAddr::V6(v6) => twox_hash::XxHash3_64::oneshot(&v6.octets()),
    }
}

/// An address or IP a customer used: when first and last (event time).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Used {
    key: u64,
    last_ms: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Customer {
    first_ms: i64,
    last_ms: i64,
    orders: u32,
    spent_cents: i64,
    /// `placed_at` of recent orders (the last 24 h of this customer's time).
    recent: Vec<i64>,
    addresses: Vec<Used>,
    ips: Vec<Used>,
}

/// Orders seen from one IP or to one address: (placed_at, customer key).
type Visits = Vec<(i64, u64)>;

/// The scorer's memory. Serialised in the engine's snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureState {
    customers: HashMap<u64, Customer>,
    ips: HashMap<u64, Visits>,
    addresses: HashMap<u64, Visits>,
    /// The latest `placed_at` seen: what "idle" is measured against.
    watermark_ms: i64,
    since_sweep: u64,
}

/// Entries in `(at - window, at]`: earlier orders of the window, whatever
/// order they arrived in.
fn in_window(at: i64, window: i64) -> impl Fn(&i64) -> bool {
    move |t| *t > at - window && *t <= at
}

fn distinct_other(visits: &Visits, at: i64, window: i64, me: u64) -> usize {
    let mut seen: Vec<u64> =
        visits.iter().filter(|(t, c)| in_window(at, window)(t) && *c != me).map(|(_, c)| *c).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

/// Keeps what a window ending at the newest entry can still need.
fn trim(visits: &mut Visits, keep_ms: i64) {
    let newest = visits.iter().map(|(t, _)| *t).max().unwrap_or(i64::MIN);
    visits.retain(|(t, _)| *t > newest - keep_ms);
    if visits.len() > RECENT_CAP {
        let excess = visits.len() - RECENT_CAP;
        visits.drain(..excess);
    }
}

fn remember(used: &mut Vec<Used>, key: u64, at: i64) {
    if let Some(u) = used.iter_mut().find(|u| u.key == key) {
        u.last_ms = u.last_ms.max(at);
        return;
    }
    if used.len() >= KNOWN_PER_CUSTOMER
        && let Some(oldest) = used.iter().enumerate().min_by_key(|(_, u)| (u.last_ms, u.key)).map(|(i, _)| i)
    {
        used.swap_remove(oldest);
    }
    used.push(Used { key, last_ms: at });
}

fn others_in_day(used: &[Used], at: i64, me: Option<u64>) -> usize {
    used.iter().filter(|u| Some(u.key) != me && u.last_ms > at - DAY_MS && u.last_ms <= at).count()
}

impl FeatureState {
    /// Observes `order` against what came before it, then records it.
    pub fn observe(&mut self, order: &OrderFacts<'_>) -> Observed {
        let at = order.placed_at_ms;
        self.watermark_ms = self.watermark_ms.max(at);
        self.sweep();
        let me = stable_key(order.customer_id);
        let ip = order.ip.map(ip_key);
        let mut observed = Observed { amount: order.amount_cents as f64 / 100.0, ..Observed::default() };

        let customer = self.customers.entry(me).or_default();
        observed.first_order = customer.orders == 0;
        if !observed.first_order {
            observed.account_age_days = (at - customer.first_ms).max(0) as f64 / DAY_MS as f64;
            observed.usual_amount = customer.spent_cents as f64 / 100.0 / f64::from(customer.orders);
            observed.new_ip = ip.is_some_and(|k| !customer.ips.iter().any(|u| u.key == k));
            observed.new_address = order.address_key.is_some_and(|k| !customer.addresses.iter().any(|u| u.key == k));
        }
        observed.customer_orders_10m = customer.recent.iter().filter(|t| in_window(at, 10 * MINUTE_MS)(t)).count();
        observed.customer_orders_24h = customer.recent.iter().filter(|t| in_window(at, DAY_MS)(t)).count();
        observed.customer_addresses_24h = others_in_day(&customer.addresses, at, order.address_key);
        observed.customer_ips_24h = others_in_day(&customer.ips, at, ip);

        customer.first_ms = if customer.orders == 0 { at } else { customer.first_ms.min(at) };
        customer.last_ms = customer.last_ms.max(at);
        customer.orders = customer.orders.saturating_add(1);
        customer.spent_cents = customer.spent_cents.saturating_add(order.amount_cents);
        customer.recent.push(at);
        let newest = customer.last_ms;
        customer.recent.retain(|t| *t > newest - DAY_MS);
        if customer.recent.len() > RECENT_CAP {
            let excess = customer.recent.len() - RECENT_CAP;
            customer.recent.drain(..excess);
        }
        if let Some(k) = order.address_key {
            remember(&mut customer.addresses, k, at);
        }
        if let Some(k) = ip {
            remember(&mut customer.ips, k, at);
        }

        if let Some(k) = ip {
            let visits = self.ips.entry(k).or_default();
            observed.ip_orders_10m = visits.iter().filter(|(t, _)| in_window(at, 10 * MINUTE_MS)(t)).count();
            observed.ip_customers_1h = distinct_other(visits, at, HOUR_MS, me);
            visits.push((at, me));
            trim(visits, HOUR_MS);
        }
        if let Some(k) = order.address_key {
            let visits = self.addresses.entry(k).or_default();
            observed.address_customers_7d = distinct_other(visits, at, ADDRESS_WINDOW_MS, me);
            visits.push((at, me));
            trim(visits, ADDRESS_WINDOW_MS);
        }
        observed
    }

    /// Every so often, forgets idle customers and windows that have closed.
    fn sweep(&mut self) {
        self.since_sweep += 1;
        if self.since_sweep < SWEEP_EVERY {
            return;
        }
        self.since_sweep = 0;
        let now = self.watermark_ms;
        self.customers.retain(|_, c| now - c.last_ms <= FORGET_CUSTOMER_MS);
        self.ips.retain(|_, v| v.iter().any(|(t, _)| *t > now - HOUR_MS));
        self.addresses.retain(|_, v| v.iter().any(|(t, _)| *t > now - ADDRESS_WINDOW_MS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(customer: &str, at_min: i64, cents: i64, ip: &str, address: u64) -> OrderFacts<'static> {
        let customer: &'static str = Box::leak(customer.to_string().into_boxed_str());
        OrderFacts {
            customer_id: customer,
            placed_at_ms: 1_700_000_000_000 + at_min * MINUTE_MS,
            amount_cents: cents,
            ip: ip.parse().ok(),
            address_key: Some(address),
        }
    }

    #[test]
    fn a_first_order_is_new_and_the_next_one_is_known() {
        let mut state = FeatureState::default();
        let first = state.observe(&facts("c", 0, 5_000, "1.1.1.1", 7));
        assert!(first.first_order && !first.new_ip && !first.new_address);
        let again = state.observe(&facts("c", 60 * 24 * 3, 10_000, "1.1.1.1", 7));
        assert!(!again.first_order && !again.new_ip && !again.new_address);
        assert_eq!(again.usual_amount, 50.0);
        assert!((again.account_age_days - 3.0).abs() < 1e-9);
        let moved = state.observe(&facts("c", 60 * 24 * 4, 10_000, "2.2.2.2", 8));
        assert!(moved.new_ip && moved.new_address);
        assert_eq!(moved.customer_addresses_24h, 0, "the old address was last used 24 h ago");
    }

    #[test]
    fn windows_are_in_event_time_whatever_the_arrival_order() {
        let mut state = FeatureState::default();
        // Arriving late: an order placed before the others still counts
        // only what was placed before it.
        state.observe(&facts("a", 30, 100, "9.9.9.9", 1));
        state.observe(&facts("b", 31, 100, "9.9.9.9", 2));
        let late = state.observe(&facts("c", 5, 100, "9.9.9.9", 3));
        assert_eq!(late.ip_orders_10m, 0);
        let next = state.observe(&facts("d", 32, 100, "9.9.9.9", 4));
        assert_eq!(next.ip_orders_10m, 2);
        assert_eq!(next.ip_customers_1h, 3);
    }

    #[test]
    fn distinct_customers_per_address_and_ip_exclude_the_customer_itself() {
        let mut state = FeatureState::default();
        for i in 0..3 {
            state.observe(&facts("same", i, 100, "5.5.5.5", 42));
        }
        let o = state.observe(&facts("same", 4, 100, "5.5.5.5", 42));
        assert_eq!((o.ip_customers_1h, o.address_customers_7d, o.customer_orders_10m), (0, 0, 3));
        let other = state.observe(&facts("other", 5, 100, "5.5.5.5", 42));
        assert_eq!((other.ip_customers_1h, other.address_customers_7d), (1, 1));
    }

    #[test]
    fn the_state_round_trips_through_a_snapshot() {
        let mut state = FeatureState::default();
        for i in 0..50 {
            state.observe(&facts(&format!("c{}", i % 7), i, 1_000 + i, "3.3.3.3", (i % 5) as u64));
        }
        let json = serde_json::to_vec(&state).unwrap_or_default();
        let mut back: FeatureState = serde_json::from_slice(&json).unwrap_or_default();
        assert_eq!(back, state);
        let probe = facts("c3", 60, 99_999, "4.4.4.4", 9);
        assert_eq!(back.observe(&probe), state.observe(&probe));
    }

    #[test]
    fn the_address_key_is_stable_across_releases() {
        // Pinned: a changed key would reset every customer's known addresses.
        let address = schemas::Address {
            line1: "1  Main St".into(),
            line2: None,
            city: "Springfield".into(),
            region: None,
            postal_code: "12345".into(),
            country: "US".into(),
        };
        let mut shouting = address.clone();
        shouting.line1 = "1 MAIN ST".into();
        assert_eq!(address.key(), shouting.key());
        assert_eq!(stable_key("c-1"), twox_hash::XxHash3_64::oneshot(b"c-1"));
    }
}
