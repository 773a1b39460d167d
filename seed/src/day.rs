//! One seeded day's orders with their lifecycles.

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson};
use schemas::{Address, Currency, MinorUnits, Order, OrderEvent, OrderItem, PaymentMethod};

use crate::calendar::*;
use crate::catalog::*;
use crate::people;

/// One generated order with its lifecycle.
#[derive(Clone, Debug)]
pub struct SeedOrder {
    pub order: Order,
    pub events: Vec<OrderEvent>,
    /// The fraud pattern, for seeded fraud.
    pub fraud: Option<&'static str>,
    /// The honest pattern that looks like fraud, for seeded decoys.
    pub decoy: Option<&'static str>,
}

/// One day of history.
#[derive(Clone, Debug, Default)]
pub struct SeedDay {
    pub date: String,
    pub orders: Vec<SeedOrder>,
    /// Accounts opened that day for the "new account, high value" pattern.
    pub new_customers: Vec<(String, DateTime<Utc>, usize)>,
}

pub(crate) struct DayGen<'a> {
    config: &'a SeedConfig,
    catalog: &'a [SeedProduct],
    rng: ChaCha8Rng,
    day_start_ms: i64,
}

impl DayGen<'_> {
    fn time_of_day_ms(&mut self) -> i64 {
        let total: f64 = HOURLY.iter().sum();
        let mut roll = self.rng.random::<f64>() * total;
        let mut hour = 23;
        for (h, w) in HOURLY.iter().enumerate() {
            if roll < *w {
                hour = h;
                break;
            }
            roll -= w;
        }
        hour as i64 * 3_600_000 + self.rng.random_range(0..3_600_000)
    }

    /// Popular things are bought more: a skewed pick from `0..n`.
    fn skewed(&mut self, n: usize) -> usize {
        let u: f64 = self.rng.random();
        ((u * u * u) * n as f64) as usize % n.max(1)
    }

    /// An order's lines. An honest basket has structure: after the first
    /// product, each further line is one of its [`companions`] with
    /// probability [`COMPANION_SHARE`], otherwise another popular product.
    /// Fraud's pricey picks (`expensive`) have none.
    fn items(&mut self, count: usize, expensive: bool) -> Vec<OrderItem> {
        let mut picked: Vec<usize> = Vec::with_capacity(count);
        for _ in 0..count {
            let mut p = self.skewed(self.catalog.len());
            if expensive {
                // The priciest of a few picks.
                for _ in 0..4 {
                    let q = self.rng.random_range(0..self.catalog.len());
                    if self.catalog[q].product.unit_price > self.catalog[p].product.unit_price {
                        p = q;
                    }
                }
            } else if let Some(&anchor) = picked.first()
                && self.rng.random::<f64>() < COMPANION_SHARE
            {
                let with = companions(anchor, self.catalog.len());
                let q = with[self.rng.random_range(0..with.len())];
                if !picked.contains(&q) {
                    p = q;
                }
            }
            picked.push(p);
        }
        picked
            .into_iter()
            .map(|p| {
                let product = &self.catalog[p].product;
                let quantity = if self.rng.random::<f64>() < 0.85 { 1 } else { self.rng.random_range(2..4) };
                OrderItem { product_id: product.product_id.clone(), quantity, unit_price: product.unit_price }
            })
            .collect()
    }

    fn order(
        &mut self,
        customer_id: String,
        placed_ms: i64,
        items: Vec<OrderItem>,
        address: Address,
        ip: std::net::IpAddr,
    ) -> Order {
        let mut random = [0u8; 10];
        self.rng.fill(&mut random);
        let order_id = uuid::Builder::from_unix_timestamp_millis(placed_ms as u64, &random).into_uuid();
        let placed_at = Utc.timestamp_millis_opt(placed_ms).single().unwrap_or_default();
        let subtotal = MinorUnits(items.iter().map(|i| i.line_total().0).sum());
        let tax = schemas::TaxRate(1000).tax_on(subtotal);
        let method = PaymentMethod::ALL[self.skewed(PaymentMethod::ALL.len())];
        Order {
            schema_version: schemas::order::ORDER_SCHEMA_VERSION,
            order_id,
            customer_id,
            items,
            currency: Currency::USD,
            subtotal,
            tax,
            total: MinorUnits(subtotal.0 + tax.0),
            shipping_address: Some(address),
            payment_method: Some(method),
            client_ip: Some(ip),
            placed_at,
            received_at: placed_at + ChronoDuration::milliseconds(self.rng.random_range(5..80)),
            idempotency_key: None,
            producer: None,
            tax_rate: Some(schemas::TaxRate(1000)),
        }
    }

    fn random_ip(&mut self) -> std::net::IpAddr {
        people::random_ip(&mut self.rng)
    }

    fn random_address(&mut self, city: usize) -> Address {
        people::random_address(&mut self.rng, city)
    }

    fn push(&mut self, day: &mut SeedDay, order: Order, fraud: Option<&'static str>, decoy: Option<&'static str>) {
        day.orders.push(SeedOrder { order, events: Vec::new(), fraud, decoy });
    }
}

/// Generates day `index` (0 = the first day) with `count` orders.
///
/// The orders come without status events: [`settle`] scores them with the
/// real fraud screen, in order across days, and writes their events.
pub fn generate_day(config: &SeedConfig, catalog: &[SeedProduct], index: u32, count: u64) -> SeedDay {
    let date = config.start() + ChronoDuration::days(i64::from(index));
    let day_start = Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default());
    let mut g =
        DayGen { config, catalog, rng: config.rng(u64::from(index)), day_start_ms: day_start.timestamp_millis() };
    let items_per_order =
        Poisson::new(1.5).unwrap_or_else(|_| Poisson::new(1.0).unwrap_or_else(|_| std::process::abort()));
    let holidays = holiday_season(date);
    // This week's drop addresses (reshipping mules), where fraud ships.
    let drops = people::drop_addresses(config, index / 7);
    let mut day = SeedDay { date: date.format("%Y-%m-%d").to_string(), ..SeedDay::default() };
    let mut made = 0u64;
    while made < count {
        // Per draw: 0.12% card-testing bursts of ~8, 0.4% new accounts,
        // 0.1% hops of ~4, 0.3% takeovers: about 2% of orders are fraud.
        // And 0.15% office lunches of ~4 colleagues (honest).
        let roll: f64 = g.rng.random();
        let left = count - made;
        if roll < 0.0012 && left >= 5 {
            // Card testing: one IP, several accounts, minutes apart, pricey
            // goods to addresses none of them used.
            let ip = g.random_ip();
            let at = g.day_start_ms + g.time_of_day_ms();
            let n = g.rng.random_range(5..12).min(left);
            for k in 0..n {
                // Stolen accounts of regular customers.
                let customer = format!("c-{:08}", g.rng.random_range(0..g.config.customers / 10));
                let r = g.rng.random_range(1..4);
                let items = g.items(r, true);
                let city = g.rng.random_range(0..CITIES.len());
                let address = g.random_address(city);
                let r = g.rng.random_range(5_000..60_000);
                let order = g.order(customer, at + k as i64 * r, items, address, ip);
                g.push(&mut day, order, Some("ip_burst"), None);
            }
            made += n;
        } else if roll < 0.0052 {
            // A new account placing a large order within hours of signing up.
            let at = g.day_start_ms + g.time_of_day_ms();
            let customer = format!("c-new-{}-{:06}", day.date, day.new_customers.len());
            let signed_up =
                Utc.timestamp_millis_opt(at - g.rng.random_range(60_000..7_200_000)).single().unwrap_or_default();
            let city = g.rng.random_range(0..CITIES.len());
            day.new_customers.push((customer.clone(), signed_up, city));
            let r = g.rng.random_range(5..12);
            let items = g.items(r, true);
            // Shipped to one of the day's drop addresses (a reshipping mule).
            let address = drops[g.rng.random_range(0..drops.len())].clone();
            let ip = g.random_ip();
            let order = g.order(customer, at, items, address, ip);
            g.push(&mut day, order, Some("new_account_high_value"), None);
            made += 1;
        } else if roll < 0.0062 && left >= 3 {
            // One customer shipping to a different city every few hours.
            let customer = format!("c-{:08}", g.rng.random_range(0..g.config.customers / 10));
            let n = g.rng.random_range(3..6).min(left);
            let at = g.day_start_ms + g.rng.random_range(0..43_200_000);
            let first_drop = g.rng.random_range(0..drops.len());
            for k in 0..n {
                let r = g.rng.random_range(1..3);
                let items = g.items(r, false);
                // Each hop to another of the week's drops, in other cities.
                let address = drops[(first_drop + k as usize) % drops.len()].clone();
                let ip = g.random_ip();
                let r = g.rng.random_range(600_000..7_200_000);
                let order = g.order(customer.clone(), at + k as i64 * r, items, address, ip);
                g.push(&mut day, order, Some("address_hopping"), None);
            }
            made += n;
        } else if roll < 0.0092 {
            // Account takeover: a known customer's account, from a new IP,
            // to a new address in another city, far above their usual.
            let customer_index = g.rng.random_range(0..g.config.customers / 20);
            let at = g.day_start_ms + g.time_of_day_ms();
            let r = g.rng.random_range(3..7);
            let items = g.items(r, true);
            let city = customer_index + g.rng.random_range(1..CITIES.len());
            let address = g.random_address(city);
            let ip = g.random_ip();
            let order = g.order(format!("c-{customer_index:08}"), at, items, address, ip);
            g.push(&mut day, order, Some("account_takeover"), None);
            made += 1;
        } else if roll < 0.0107 && left >= 3 {
            // An office lunch: colleagues behind one office IP ordering
            // ordinary things to their homes within half an hour.
            let office = g.rng.random_range(0..people::OFFICES);
            let ip = people::office_ip(g.config, office);
            let at = g.day_start_ms + 11 * 3_600_000 + g.rng.random_range(0..7_200_000);
            let n = g.rng.random_range(3..7).min(left);
            for _ in 0..n {
                // A colleague: a customer whose office this is.
                let mut customer_index = g.skewed(g.config.customers);
                for _ in 0..64 {
                    if people::office_of(customer_index) == office {
                        break;
                    }
                    customer_index = g.rng.random_range(0..g.config.customers);
                }
                let placed = at + g.rng.random_range(0..1_800_000);
                let profile = people::profile(g.config, customer_index);
                let address = profile.home_at(placed).0.clone();
                let r = 1 + items_per_order.sample(&mut g.rng) as usize;
                let items = g.items(r.min(4), false);
                let order = g.order(format!("c-{customer_index:08}"), placed, items, address, ip);
                g.push(&mut day, order, None, Some("office_colleagues"));
            }
            made += n;
        } else {
            let customer_index = g.skewed(g.config.customers);
            let customer = format!("c-{customer_index:08}");
            let at = g.day_start_ms + g.time_of_day_ms();
            let profile = people::profile(g.config, customer_index);
            let (home, home_ip, just_moved) = profile.home_at(at);
            // Mostly from home, sometimes the phone or the office, now and
            // then somewhere new (travel, a café); now and then a gift.
            let where_from: f64 = g.rng.random();
            let ip = match where_from {
                x if x < 0.70 => home_ip,
                x if x < 0.90 => profile.mobile_ip,
                x if x < 0.96 => profile.office_ip,
                _ => g.random_ip(),
            };
            let gift = g.rng.random::<f64>() < 0.03;
            let address = if gift { g.random_address(customer_index + 3) } else { home.clone() };
            // Loyal customers buy big for the holidays.
            let big = holidays && customer_index < g.config.customers / 50 && g.rng.random::<f64>() < 0.1;
            let n = if big { g.rng.random_range(5..11) } else { 1 + items_per_order.sample(&mut g.rng) as usize };
            let items = g.items(n.min(12), big);
            let order = g.order(customer, at, items, address, ip);
            let decoy = if big {
                Some("holiday_big_order")
            } else if just_moved {
                Some("moved_house")
            } else {
                None
            };
            g.push(&mut day, order, None, decoy);
            made += 1;
        }
    }
    day
}
