//! `orderstream seed`: realistic order history, deterministic for a given
//! `--seed` and `--end`. Customers, products in 50 categories (stock 70%
//! normal, 20% low, 10% out), order values lognormal around $75 with ~2.5
//! items, evening peaks (7–10 pm), weekly and holiday seasonality (a Black
//! Friday spike), the status mix of the saga, and ~2% fraud in three
//! patterns whose ground truth goes to `fraud_labels`.
//!
//! Each day is generated from its own RNG (seeded by `--seed` and the day),
//! so days are generated in parallel and still come out the same.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};
use bytes::Bytes;
use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, TimeZone, Utc, Weekday};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Poisson};
use schemas::tables::Table;
use schemas::{Address, Currency, MinorUnits, Order, OrderEvent, OrderItem, PaymentMethod, Product};

mod people;
pub mod verdict;

pub use verdict::{SeedScreen, settle};

use crate::AnalyticsError;
use crate::pipeline::PipelineSpec;
use crate::rollup::DayRollup;
use crate::rows::{Categories, money_value};

pub const CATEGORIES: [&str; 50] = [
    "Electronics",
    "Computers",
    "Phones",
    "Audio",
    "Cameras",
    "Gaming",
    "Smart Home",
    "Wearables",
    "TV & Video",
    "Office",
    "Books",
    "Music",
    "Movies",
    "Toys",
    "Baby",
    "Kids Clothing",
    "Women's Clothing",
    "Men's Clothing",
    "Shoes",
    "Jewelry",
    "Watches",
    "Handbags",
    "Beauty",
    "Skincare",
    "Fragrance",
    "Health",
    "Vitamins",
    "Grocery",
    "Beverages",
    "Pet Supplies",
    "Garden",
    "Tools",
    "Home Improvement",
    "Furniture",
    "Bedding",
    "Kitchen",
    "Appliances",
    "Lighting",
    "Home Decor",
    "Sports",
    "Outdoors",
    "Fitness",
    "Cycling",
    "Camping",
    "Automotive",
    "Arts & Crafts",
    "Party Supplies",
    "Luggage",
    "Stationery",
    "Industrial",
];

const ADJECTIVES: [&str; 12] =
    ["Classic", "Premium", "Compact", "Deluxe", "Eco", "Pro", "Smart", "Ultra", "Essential", "Vintage", "Mini", "Max"];
const NOUNS: [&str; 10] = ["Set", "Kit", "Pack", "Edition", "Bundle", "Model", "Series", "Collection", "Box", "Line"];
const CITIES: [(&str, &str); 16] = [
    ("New York", "US"),
    ("Los Angeles", "US"),
    ("Chicago", "US"),
    ("Houston", "US"),
    ("Phoenix", "US"),
    ("Seattle", "US"),
    ("Miami", "US"),
    ("Denver", "US"),
    ("Boston", "US"),
    ("Atlanta", "US"),
    ("Toronto", "CA"),
    ("Vancouver", "CA"),
    ("London", "GB"),
    ("Manchester", "GB"),
    ("Berlin", "DE"),
    ("Paris", "FR"),
];
/// Orders per hour of day (UTC), relative: a night low and a 7–10 pm peak.
const HOURLY: [f64; 24] = [
    0.30, 0.20, 0.15, 0.10, 0.10, 0.15, 0.30, 0.50, 0.70, 0.80, 0.90, 1.00, 1.10, 1.00, 0.90, 0.90, 1.00, 1.10, 1.30,
    1.80, 2.00, 1.90, 1.20, 0.60,
];

#[derive(Clone, Debug)]
pub struct SeedConfig {
    pub seed: u64,
    pub orders: u64,
    pub days: u32,
    /// The last day of history (inclusive).
    pub end: NaiveDate,
    pub products: usize,
    pub customers: usize,
}

impl SeedConfig {
    pub fn new(seed: u64, orders: u64, days: u32, end: NaiveDate) -> Self {
        SeedConfig {
            seed,
            orders,
            days: days.max(1),
            end,
            products: 2_000,
            customers: (orders / 4).clamp(100, 2_000_000) as usize,
        }
    }

    pub fn start(&self) -> NaiveDate {
        self.end - ChronoDuration::days(i64::from(self.days) - 1)
    }

    fn rng(&self, stream: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ stream)
    }
}

#[derive(Clone, Debug)]
pub struct SeedProduct {
    pub product: Product,
    pub initial_stock: u64,
    pub stock_level: &'static str,
}

/// The catalog: 2,000 products over 50 categories, prices lognormal.
pub fn products(config: &SeedConfig) -> Vec<SeedProduct> {
    let mut rng = config.rng(u64::MAX);
    let price = LogNormal::new(22.0_f64.ln(), 0.8).unwrap_or_else(|_| unreachable_distribution());
    (0..config.products)
        .map(|i| {
            let category = CATEGORIES[i % CATEGORIES.len()];
            let cents = (price.sample(&mut rng) * 100.0).clamp(99.0, 250_000.0) as i64 / 100 * 100 + 99;
            let roll: f64 = rng.random();
            let (initial_stock, stock_level) = if roll < 0.7 {
                (rng.random_range(50..500), "normal")
            } else if roll < 0.9 {
                (rng.random_range(1..10), "low")
            } else {
                (0, "out")
            };
            let name = format!(
                "{} {} {}",
                ADJECTIVES[rng.random_range(0..ADJECTIVES.len())],
                category,
                NOUNS[rng.random_range(0..NOUNS.len())]
            );
            SeedProduct {
                product: Product {
                    product_id: format!("p-{i:05}"),
                    name,
                    category: category.to_string(),
                    unit_price: MinorUnits(cents),
                    currency: Currency::USD,
                },
                initial_stock,
                stock_level,
            }
        })
        .collect()
}

/// How often a further line of an honest basket is a companion of its
/// first product.
pub const COMPANION_SHARE: f64 = 0.6;

/// What goes with catalog product `i` (of `n`) in a seeded basket: two
/// more of its own category (a same-category bundle) and two from its
/// paired category (accessories: Electronics with Computers, Phones with
/// Audio, ... — categories `2k` and `2k + 1`). Product `i` is in category
/// `i % 50`, so its category's products are `i % 50 + 50 j`.
pub fn companions(i: usize, n: usize) -> [usize; 4] {
    let categories = CATEGORIES.len();
    let category = i % categories;
    let paired = if (category ^ 1) < categories && (category ^ 1) < n { category ^ 1 } else { category };
    // Products of a category `c`: c, c + 50, ... below n.
    let members = |c: usize| n.saturating_sub(c).div_ceil(categories).max(1);
    let nth = |c: usize, k: usize| (c + categories * (k % members(c))).min(n.saturating_sub(1));
    let g = i / categories;
    [nth(category, g + 1), nth(category, g + 5), nth(paired, g), nth(paired, g + 3)]
}

fn unreachable_distribution() -> LogNormal<f64> {
    // The parameters above are constants that LogNormal accepts.
    LogNormal::new(0.0, 1.0).unwrap_or_else(|_| std::process::abort())
}

/// Relative order volume of a day: weekly shape, holidays, a yearly swell,
/// a slow trend. Each product gets its share of a day through a skewed
/// pick, so the few popular products have smooth daily demand and the long
/// tail intermittent demand (most days zero), as in a real catalog.
pub fn day_weight(day: NaiveDate, index: u32, days: u32) -> f64 {
    let weekly = match day.weekday() {
        Weekday::Mon | Weekday::Tue => 0.9,
        Weekday::Wed => 0.95,
        Weekday::Thu => 1.0,
        Weekday::Fri => 1.05,
        Weekday::Sat => 1.2,
        Weekday::Sun => 1.15,
    };
    let black_friday = black_friday(day.year());
    let holiday = if day == black_friday {
        4.0
    } else if day == black_friday + ChronoDuration::days(3) {
        3.0 // Cyber Monday
    } else if day > black_friday && day < black_friday + ChronoDuration::days(3) {
        2.0
    } else if day.month() == 12 && day.day() == 25 {
        0.5
    } else if day.month() == 12 && day.day() <= 20 {
        1.4
    } else {
        1.0
    };
    let trend = 1.0 + 0.3 * f64::from(index) / f64::from(days.max(1));
    // A yearly swell: highest in mid-November, lowest in mid-May (±12%),
    // under the holidays, so a forecaster with two years of history has a
    // yearly season to find.
    let season = 2.0 * std::f64::consts::PI * (f64::from(day.ordinal()) - 319.0) / 365.25;
    let yearly = 1.0 + 0.12 * season.cos();
    weekly * holiday * trend * yearly
}

/// The fourth Friday of November.
pub fn black_friday(year: i32) -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(year, 11, 1).unwrap_or_default();
    let offset = (Weekday::Fri.num_days_from_monday() + 7 - first.weekday().num_days_from_monday()) % 7;
    first + ChronoDuration::days(i64::from(offset) + 21)
}

/// How many orders each day gets; sums to exactly `config.orders`.
pub fn orders_per_day(config: &SeedConfig) -> Vec<u64> {
    let start = config.start();
    let weights: Vec<f64> =
        (0..config.days).map(|i| day_weight(start + ChronoDuration::days(i64::from(i)), i, config.days)).collect();
    let total: f64 = weights.iter().sum();
    let mut counts: Vec<u64> = weights.iter().map(|w| (config.orders as f64 * w / total).floor() as u64).collect();
    let mut short = config.orders - counts.iter().sum::<u64>();
    let mut i = 0;
    while short > 0 {
        let n = counts.len();
        counts[i % n] += 1;
        short -= 1;
        i += 1;
    }
    counts
}

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

struct DayGen<'a> {
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

/// The first instant after the seeded history: later status steps have
/// not happened yet.
pub fn end_of_history(config: &SeedConfig) -> DateTime<Utc> {
    Utc.from_utc_datetime(&(config.end + ChronoDuration::days(1)).and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// Late November to Christmas Eve: when loyal customers buy big.
fn holiday_season(day: NaiveDate) -> bool {
    let bf = black_friday(day.year());
    (day >= bf - ChronoDuration::days(7) && day.month() == 11) || (day.month() == 12 && day.day() <= 24)
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

/// The base tables of one day, as record batches: orders, order_items,
/// order_events, fraud_labels and the day's new customers.
pub fn day_batches(day: &SeedDay, categories: &Categories) -> Result<Vec<(Table, RecordBatch)>, AnalyticsError> {
    // Borrowed, not cloned: the day's rows are built straight from it, in
    // generation order, then put in time order as columns. Reading the
    // events (and their strings) in time order instead jumped all over the
    // day's memory, a cache miss or more per event. Sorted once here, the
    // rows are in order for their files and for the rollups.
    let orders: Vec<(u64, &Order)> = day.orders.iter().map(|o| (0, &o.order)).collect();
    let events: Vec<(u64, &OrderEvent)> = day.orders.iter().flat_map(|o| o.events.iter().map(|e| (0, e))).collect();
    let time_sorted = |table: Table, rows: RecordBatch| {
        crate::parquet_out::sort_rows(&rows.schema(), &[rows], &crate::job::table_layout(table))
    };
    Ok(vec![
        (Table::Orders, time_sorted(Table::Orders, crate::rows::orders_batch(&orders)?)?),
        (Table::OrderItems, time_sorted(Table::OrderItems, crate::rows::order_items_batch(&orders, categories)?)?),
        (Table::OrderEvents, time_sorted(Table::OrderEvents, crate::rows::order_events_batch(&events)?)?),
        (Table::FraudLabels, fraud_labels_batch(day)?),
        (Table::Customers, customers_batch(&day.new_customers)?),
    ])
}

/// The day's ground truth: one row per seeded fraud order (`is_fraud`)
/// and per honest decoy (not fraud, but looks it).
pub fn fraud_labels_batch(day: &SeedDay) -> Result<RecordBatch, AnalyticsError> {
    let mut labels =
        (StringBuilder::new(), StringBuilder::new(), ts(), StringBuilder::new(), arrow::array::BooleanBuilder::new());
    for o in &day.orders {
        let Some(pattern) = o.fraud.or(o.decoy) else { continue };
        labels.0.append_value(o.order.order_id.to_string());
        labels.1.append_value(&o.order.customer_id);
        labels.2.append_value(o.order.placed_at.timestamp_micros());
        labels.3.append_value(pattern);
        labels.4.append_value(o.fraud.is_some());
    }
    Ok(RecordBatch::try_new(
        Table::FraudLabels.schema(),
        vec![
            Arc::new(labels.0.finish()),
            Arc::new(labels.1.finish()),
            Arc::new(labels.2.finish()),
            Arc::new(labels.3.finish()),
            Arc::new(labels.4.finish()),
        ],
    )?)
}

fn ts() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone("UTC")
}

/// The regular customers, signed up over the two years before the start.
pub fn base_customers(config: &SeedConfig) -> Vec<(String, DateTime<Utc>, usize)> {
    let mut rng = config.rng(u64::MAX - 1);
    let start = Utc.from_utc_datetime(&config.start().and_hms_opt(0, 0, 0).unwrap_or_default());
    (0..config.customers)
        .map(|i| {
            let days_before = rng.random_range(1..730);
            let at = start - ChronoDuration::days(days_before) + ChronoDuration::seconds(rng.random_range(0..86_400));
            (format!("c-{i:08}"), at, i)
        })
        .collect()
}

pub fn customers_batch(customers: &[(String, DateTime<Utc>, usize)]) -> Result<RecordBatch, AnalyticsError> {
    let (mut id, mut at, mut country, mut city) =
        (StringBuilder::new(), ts(), StringBuilder::new(), StringBuilder::new());
    for (customer, signed_up, c) in customers {
        let (name, code) = CITIES[c % CITIES.len()];
        id.append_value(customer);
        at.append_value(signed_up.timestamp_micros());
        country.append_value(code);
        city.append_value(name);
    }
    let columns: Vec<ArrayRef> =
        vec![Arc::new(id.finish()), Arc::new(at.finish()), Arc::new(country.finish()), Arc::new(city.finish())];
    Ok(RecordBatch::try_new(Table::Customers.schema(), columns)?)
}

pub fn products_batch(catalog: &[SeedProduct], listed_at: DateTime<Utc>) -> Result<RecordBatch, AnalyticsError> {
    let mut b = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        arrow::array::Decimal128Builder::new().with_data_type(schemas::tables::money()),
        StringBuilder::new(),
        Int64Builder::new(),
        StringBuilder::new(),
        ts(),
    );
    for p in catalog {
        b.0.append_value(&p.product.product_id);
        b.1.append_value(&p.product.name);
        b.2.append_value(&p.product.category);
        b.3.append_value(money_value(p.product.unit_price, p.product.currency));
        b.4.append_value(p.product.currency.code());
        b.5.append_value(p.initial_stock as i64);
        b.6.append_value(p.stock_level);
        b.7.append_value(listed_at.timestamp_micros());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(b.0.finish()),
        Arc::new(b.1.finish()),
        Arc::new(b.2.finish()),
        Arc::new(b.3.finish()),
        Arc::new(b.4.finish()),
        Arc::new(b.5.finish()),
        Arc::new(b.6.finish()),
        Arc::new(b.7.finish()),
    ];
    Ok(RecordBatch::try_new(Table::Products.schema(), columns)?)
}

pub fn categories_of(catalog: &[SeedProduct]) -> Categories {
    catalog.iter().map(|p| (p.product.product_id.clone(), p.product.category.clone())).collect()
}

/// A seed file's name: not `part-…`, so no stream job ever treats it as its own.
pub fn seed_file_name(seed: u64, date: &str) -> String {
    format!("seed-{seed}-{date}.parquet")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SeedConfig {
        SeedConfig::new(42, 20_000, 30, NaiveDate::from_ymd_opt(2025, 12, 10).unwrap())
    }

    #[test]
    fn black_friday_is_the_fourth_friday_of_november() {
        assert_eq!(black_friday(2025), NaiveDate::from_ymd_opt(2025, 11, 28).unwrap());
        assert_eq!(black_friday(2026), NaiveDate::from_ymd_opt(2026, 11, 27).unwrap());
    }

    #[test]
    fn baskets_hold_companions_of_their_first_product() {
        let n = 2_000;
        for i in [0, 1, 49, 50, 777, 1_999] {
            let with = companions(i, n);
            assert!(with.iter().all(|&q| q < n && q != i), "{i}: {with:?}");
            assert_eq!(with[0] % 50, i % 50, "a bundle is of the product's category");
            assert_eq!(with[2] % 50, (i % 50) ^ 1, "an accessory is of the paired category");
        }
        let config = config();
        let catalog = products(&config);
        let day = generate_day(&config, &catalog, 3, 2_000);
        let index = |id: &str| id.trim_start_matches("p-").parse::<usize>().unwrap();
        let (mut pairs, mut with_companion) = (0, 0);
        for o in day.orders.iter().filter(|o| o.fraud.is_none() && o.order.items.len() >= 2) {
            let first = index(&o.order.items[0].product_id);
            for item in &o.order.items[1..] {
                pairs += 1;
                with_companion += usize::from(companions(first, catalog.len()).contains(&index(&item.product_id)));
            }
        }
        let share = with_companion as f64 / pairs as f64;
        assert!(pairs > 500 && (0.5..0.7).contains(&share), "{with_companion} of {pairs} lines are companions");
    }

    #[test]
    fn a_seed_is_deterministic_and_has_the_asked_shape() {
        let config = config();
        let catalog = products(&config);
        let counts = orders_per_day(&config);
        assert_eq!(counts.iter().sum::<u64>(), 20_000);
        let bf = (black_friday(2025) - config.start()).num_days() as usize;
        assert!(counts[bf] as f64 > 3.0 * counts[bf - 7] as f64, "Black Friday spikes");
        let a = generate_day(&config, &catalog, 3, counts[3]);
        let b = generate_day(&config, &catalog, 3, counts[3]);
        assert_eq!(
            a.orders.iter().map(|o| o.order.order_id).collect::<Vec<_>>(),
            b.orders.iter().map(|o| o.order.order_id).collect::<Vec<_>>()
        );
        let mut screen = SeedScreen::builtin().unwrap();
        let days: Vec<SeedDay> = (0..config.days)
            .map(|d| {
                let mut day = generate_day(&config, &catalog, d, counts[d as usize]);
                settle(&config, d, &mut day, &mut screen);
                day
            })
            .collect();
        let orders: Vec<&SeedOrder> = days.iter().flat_map(|d| &d.orders).collect();
        let n = orders.len() as f64;
        let items: usize = orders.iter().map(|o| o.order.items.len()).sum();
        assert!((2.2..2.8).contains(&(items as f64 / n)), "items per order {}", items as f64 / n);
        let mut totals: Vec<i64> = orders.iter().map(|o| o.order.total.0).collect();
        totals.sort_unstable();
        let median = totals[totals.len() / 2] as f64 / 100.0;
        assert!((45.0..110.0).contains(&median), "median order ${median}");
        let fraud = orders.iter().filter(|o| o.fraud.is_some()).count() as f64 / n;
        assert!((0.01..0.04).contains(&fraud), "fraud share {fraud}");
        let evening = orders.iter().filter(|o| (19..22).contains(&o.order.placed_at.hour_of_day())).count() as f64 / n;
        assert!(evening > 0.18, "7–10 pm share {evening}");
        let stock_out = catalog.iter().filter(|p| p.stock_level == "out").count() as f64 / catalog.len() as f64;
        assert!((0.07..0.13).contains(&stock_out));
        let cancelled = orders
            .iter()
            .filter(|o| o.events.last().and_then(|e| e.new_status()) == Some(schemas::OrderStatus::Cancelled))
            .count() as f64
            / n;
        assert!((0.05..0.2).contains(&cancelled), "cancelled share {cancelled}");
    }

    /// Every date's status events in one file, and every event written once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_are_one_file_per_date() {
        let store = crate::store::DataStore::open("memory:///seed-test").unwrap();
        let config = SeedConfig::new(7, 3_000, 12, NaiveDate::from_ymd_opt(2026, 3, 20).unwrap());
        let report = seed_to_parquet(&store, &config, SeedScreen::builtin().unwrap(), &[], 2, false).await.unwrap();
        let mut per_date: BTreeMap<String, usize> = BTreeMap::new();
        let mut rows = 0u64;
        for meta in store.list(&store.path("order_events")).await.unwrap() {
            let dir = meta.location.as_ref().rsplit_once('/').unwrap().0.to_string();
            *per_date.entry(dir).or_default() += 1;
            let bytes = store.get(&meta.location).await.unwrap().unwrap();
            let file = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
            rows += file.metadata().file_metadata().num_rows() as u64;
        }
        assert!(per_date.len() >= 12, "events fall on every generated day and after: {per_date:?}");
        assert!(per_date.values().all(|n| *n == 1), "{per_date:?}");
        assert_eq!(rows, report.events);
    }

    /// The seeded pipeline outputs are final, version 1, and each window's
    /// revenue equals the sum over the items it covers, to the cent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn seeded_rollups_equal_the_items_they_summarise() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::DataStore::open(dir.path().to_str().unwrap()).unwrap();
        // This seed's third day ends in a burst of orders that runs past
        // midnight into the fourth: those rows belong to the fourth day's
        // windows alone.
        let config = SeedConfig::new(5, 12_000, 4, NaiveDate::from_ymd_opt(2026, 3, 23).unwrap());
        let specs: Vec<Arc<PipelineSpec>> =
            crate::builtin::builtin_pipelines().unwrap().into_iter().map(Arc::new).collect();
        seed_to_parquet(&store, &config, SeedScreen::builtin().unwrap(), &specs, 2, false).await.unwrap();
        let limits = crate::query::QueryLimits { memory_bytes: 256 << 20, target_partitions: 2 };
        let (ctx, _) = crate::query::session(&store, &limits).await.unwrap();
        for (table, interval) in [("revenue_by_category_1h", "1 hour"), ("revenue_by_category_1d", "1 day")] {
            let sql = format!(
                "WITH raw AS (SELECT date_bin(INTERVAL '{interval}', placed_at, TIMESTAMP '1970-01-01T00:00:00Z') AS window_start, \
                        category, currency, sum(line_total) AS revenue, count(DISTINCT order_id) AS orders FROM order_items GROUP BY 1, 2, 3) \
                 SELECT (SELECT count(*) FROM raw) AS raw_rows, (SELECT count(*) FROM {table}) AS rollup_rows, \
                        (SELECT count(*) FROM {table} WHERE NOT is_final OR window_version <> 1 OR late_count <> 0) AS odd, \
                        count(*) FILTER (WHERE r.revenue IS NULL OR r.revenue <> raw.revenue OR r.orders <> raw.orders) \
                 FROM raw LEFT JOIN {table} r USING (window_start, category, currency)"
            );
            let batches = crate::query::run(&ctx, &sql).await.unwrap();
            let row: Vec<i64> = (0..4)
                .map(|c| batches[0].column(c).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().value(0))
                .collect();
            assert!(row[0] > 4, "{table}: windows × categories over 4 days, got {}", row[0]);
            assert_eq!(row[1], row[0], "{table}: one row per window, category and currency");
            assert_eq!(row[2..], [0, 0], "{table}: every row final, version 1, no late rows, equal to the items");
        }
        // The fraud review rows are exactly the events in and out of review,
        // each in its own day's window.
        let sql = "WITH raw AS (SELECT order_id, status, from_status, occurred_at FROM order_events \
                               WHERE status = 'flagged' OR from_status = 'flagged') \
                   SELECT (SELECT count(*) FROM raw WHERE status = 'flagged') AS flagged, \
                          (SELECT count(*) FROM raw) AS raw_rows, (SELECT count(*) FROM fraud_reviews_1d) AS rollup_rows, \
                          (SELECT count(*) FROM fraud_reviews_1d WHERE NOT is_final OR window_version <> 1 \
                             OR window_start <> date_bin(INTERVAL '1 day', occurred_at, TIMESTAMP '1970-01-01T00:00:00Z')) AS odd, \
                          (SELECT count(*) FROM (SELECT order_id, status, from_status, occurred_at FROM raw \
                             EXCEPT SELECT order_id, status, from_status, occurred_at FROM fraud_reviews_1d)) AS missing";
        let batches = crate::query::run(&ctx, sql).await.unwrap();
        let row: Vec<i64> = (0..5)
            .map(|c| batches[0].column(c).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().value(0))
            .collect();
        assert!(row[0] > 10, "about 2% of 12,000 orders are flagged, got {}", row[0]);
        assert!(row[1] > row[0], "most flagged orders are reviewed: {row:?}");
        assert_eq!(row[2], row[1], "one rollup row per event in or out of review");
        assert_eq!(row[3..], [0, 0], "final, version 1, in its day's window, and none missing");
    }

    trait Hour {
        fn hour_of_day(&self) -> u32;
    }
    impl Hour for DateTime<Utc> {
        fn hour_of_day(&self) -> u32 {
            chrono::Timelike::hour(self)
        }
    }
}

/// The products and the regular customers.
pub async fn write_side_tables(
    store: &crate::store::DataStore,
    config: &SeedConfig,
    catalog: &[SeedProduct],
) -> Result<SeedReport, AnalyticsError> {
    let start = Utc.from_utc_datetime(&config.start().and_hms_opt(0, 0, 0).unwrap_or_default());
    let mut report = SeedReport::default();
    for (table, rows) in [
        (Table::Products, products_batch(catalog, start)?),
        (Table::Customers, customers_batch(&base_customers(config))?),
    ] {
        report.bytes += write_seed_rows(store, config.seed, table, &rows, "").await?;
        report.files += 1;
    }
    Ok(report)
}

/// Writes one table's rows under the seed's file names, split by date.
pub async fn write_seed_rows(
    store: &crate::store::DataStore,
    seed: u64,
    table: Table,
    rows: &RecordBatch,
    suffix: &str,
) -> Result<u64, AnalyticsError> {
    let mut bytes_written = 0;
    for (date, part) in crate::parquet_out::split_by_date(rows, table.time_column())? {
        let bytes = crate::parquet_out::encode(&part.schema(), &[part], &crate::job::table_layout(table))?;
        bytes_written += bytes.len() as u64;
        let name = seed_file_name(seed, &format!("{date}{suffix}"));
        store.put(&store.path(&format!("{}/date={date}/{name}", table.name())), bytes).await?;
    }
    Ok(bytes_written)
}

/// What a seed run wrote.
#[derive(Clone, Debug, Default)]
pub struct SeedReport {
    pub orders: u64,
    pub items: u64,
    pub events: u64,
    pub fraud_orders: u64,
    pub files: u64,
    pub bytes: u64,
}

/// Writes the whole history to `store` as Parquet, `threads` days at a time.
///
/// Orders, items and fraud labels fall on the day they were generated for.
/// A day's status events run on for up to ~10 days, so they are held until
/// every day that can still add to their date has been generated, then
/// written as one file per date: a date's events in one file, not one per
/// generating day (each file a reader opens costs it a footer and a bloom
/// filter).
///
/// The outputs of the `pipelines` marked `seed_history` are written too,
/// date by date (see [`crate::rollup`]): over order items per generated
/// day, over status events per complete date.
pub async fn seed_to_parquet(
    store: &crate::store::DataStore,
    config: &SeedConfig,
    screen: SeedScreen,
    pipelines: &[Arc<PipelineSpec>],
    threads: usize,
    progress: bool,
) -> Result<SeedReport, AnalyticsError> {
    use futures::StreamExt;
    // Pipeline outputs of each day, on their own task beside generation.
    let rollups = DayRollup::for_pipelines(pipelines).await?;
    let rolls_events = rollups.iter().any(|r| r.source() == Table::OrderEvents);
    let (to_rollups, mut rollup_days) = tokio::sync::mpsc::channel::<RollupDay>(4);
    let seed = config.seed;
    let rolling = tokio::spawn(async move {
        let mut files = Vec::new();
        while let Some((date, source, rows)) = rollup_days.recv().await {
            for rollup in rollups.iter().filter(|r| r.source() == source) {
                files.extend(rollup.day_file(&rows, &date, &seed_file_name(seed, &date)).await?);
            }
        }
        Ok::<_, AnalyticsError>(files)
    });
    let catalog = Arc::new(products(config));
    let categories = Arc::new(categories_of(&catalog));
    let config = Arc::new(config.clone());
    let counts = orders_per_day(&config);
    let mut report = write_side_tables(store, &config, &catalog).await?;
    let bar = crate::replay::progress_bar(progress, config.orders, "orders");
    let generated = (0..config.days).map(|index| {
        let (config, catalog) = (Arc::clone(&config), Arc::clone(&catalog));
        let count = counts[index as usize];
        tokio::task::spawn_blocking(move || generate_day(&config, &catalog, index, count))
    });
    // Generated in parallel, judged by the fraud screen one day after the
    // other (its windows run across days), then encoded in parallel; in day
    // order, so a date's events are complete once its day is done.
    let mut screen = screen;
    let mut index = 0u32;
    let settled = futures::stream::iter(generated).buffered(threads.max(1)).map(|day| {
        let (config, categories) = (Arc::clone(&config), Arc::clone(&categories));
        let this = index;
        let day = day.map(|mut day| {
            settle(&config, this, &mut day, &mut screen);
            day
        });
        index += 1;
        tokio::task::spawn_blocking(move || {
            day.map_err(|e| AnalyticsError::task("seed", e))
                .and_then(|day| day_files(config.seed, this, &day, &categories))
        })
    });
    let mut done = settled.buffered(threads.max(1));
    let mut held: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
    let mut held_items: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
    let mut encoding = Vec::new();
    let mut index = 0i64;
    while let Some(result) = done.next().await {
        let day = result.map_err(|e| AnalyticsError::task("seed", e))??;
        for (date, part) in day.events {
            held.entry(date).or_default().push(part);
        }
        let date = (config.start() + ChronoDuration::days(index)).format("%Y-%m-%d").to_string();
        index += 1;
        let rest = held.split_off(&format!("{date}\u{1}"));
        let complete = std::mem::replace(&mut held, rest);
        if rolls_events {
            send_event_dates(&to_rollups, &complete).await;
        }
        if !complete.is_empty() {
            // Encoded beside the next days' generation, not in their way.
            encoding.push(tokio::task::spawn_blocking(move || encode_events(seed, complete)));
        }
        // A day's orders may fall just past its midnight (a burst that
        // started late): items go to the rollup of the date they were
        // placed on, once the days that can hold that date are generated,
        // so every window is rolled up once, from all its rows.
        for (placed, part) in crate::parquet_out::split_by_date(&day.items, Table::OrderItems.time_column())? {
            held_items.entry(placed).or_default().push(part);
        }
        let later = held_items.split_off(&date);
        for (complete, parts) in std::mem::replace(&mut held_items, later) {
            // A closed receiver means the rollup task failed: its error is below.
            let _ = to_rollups.send((complete, Table::OrderItems, parts)).await;
        }
        let mut files = day.files;
        // Write what has finished encoding; hold the rest (no waiting).
        let (finished, running): (Vec<_>, Vec<_>) = encoding.into_iter().partition(|t| t.is_finished());
        encoding = running;
        for task in finished {
            files.extend(task.await.map_err(|e| AnalyticsError::task("seed", e))??);
        }
        put_files(store, &mut report, files).await?;
        let stats = day.stats;
        report.orders += stats.0;
        report.items += stats.1;
        report.events += stats.2;
        report.fraud_orders += stats.3;
        if let Some(bar) = &bar {
            bar.inc(stats.0);
        }
    }
    for (date, parts) in std::mem::take(&mut held_items) {
        let _ = to_rollups.send((date, Table::OrderItems, parts)).await;
    }
    // Dates after the last day (events of its last orders).
    if rolls_events {
        send_event_dates(&to_rollups, &held).await;
    }
    encoding.push(tokio::task::spawn_blocking(move || encode_events(seed, held)));
    for task in encoding {
        put_files(store, &mut report, task.await.map_err(|e| AnalyticsError::task("seed", e))??).await?;
    }
    drop(to_rollups);
    put_files(store, &mut report, rolling.await.map_err(|e| AnalyticsError::task("seed", e))??).await?;
    if let Some(bar) = bar {
        bar.finish();
    }
    Ok(report)
}

/// (date, source table, that date's rows of it), for the rollup task.
type RollupDay = (String, Table, Vec<RecordBatch>);

/// Complete dates of status events to the rollup task (the batches are
/// shared, not copied). A closed channel means the task failed; its error
/// surfaces when it is joined.
async fn send_event_dates(
    to_rollups: &tokio::sync::mpsc::Sender<RollupDay>,
    dates: &BTreeMap<String, Vec<RecordBatch>>,
) {
    for (date, parts) in dates {
        let _ = to_rollups.send((date.clone(), Table::OrderEvents, parts.clone())).await;
    }
}

/// Stores encoded files (paths relative to the store) and counts them.
async fn put_files(
    store: &crate::store::DataStore,
    report: &mut SeedReport,
    files: Vec<(String, Bytes)>,
) -> Result<(), AnalyticsError> {
    for (relative, bytes) in files {
        report.bytes += bytes.len() as u64;
        report.files += 1;
        store.put(&store.path(&relative), bytes).await?;
    }
    Ok(())
}

/// One generated day: its encoded files (all but events), its events split
/// by date, and its row counts (orders, items, events, fraud orders).
struct DayFiles {
    files: Vec<(String, Bytes)>,
    /// The day's order items, for the pipeline rollups.
    items: RecordBatch,
    events: Vec<(String, RecordBatch)>,
    stats: (u64, u64, u64, u64),
}

fn day_files(seed: u64, index: u32, day: &SeedDay, categories: &Categories) -> Result<DayFiles, AnalyticsError> {
    let mut out = DayFiles {
        files: Vec::new(),
        items: RecordBatch::new_empty(Table::OrderItems.schema()),
        events: Vec::new(),
        stats: (0, 0, 0, 0),
    };
    for (table, rows) in day_batches(day, categories)? {
        let n = rows.num_rows() as u64;
        match table {
            Table::Orders => out.stats.0 = n,
            Table::OrderItems => {
                out.stats.1 = n;
                out.items = rows.clone();
            }
            Table::OrderEvents => out.stats.2 = n,
            Table::FraudLabels => out.stats.3 = day.orders.iter().filter(|o| o.fraud.is_some()).count() as u64,
            _ => {}
        }
        // New accounts may fall on a later date than the order.
        for (date, part) in crate::parquet_out::split_by_date(&rows, table.time_column())? {
            if part.num_rows() == 0 {
                continue;
            }
            if table == Table::OrderEvents {
                out.events.push((date, part));
                continue;
            }
            let bytes = crate::parquet_out::encode(&part.schema(), &[part], &crate::job::table_layout(table))?;
            let name = seed_file_name(seed, &format!("{date}-d{index:05}"));
            out.files.push((format!("{}/date={date}/{name}", table.name()), bytes));
        }
    }
    Ok(out)
}

/// One file per date of held status events, sorted by time.
fn encode_events(seed: u64, dates: BTreeMap<String, Vec<RecordBatch>>) -> Result<Vec<(String, Bytes)>, AnalyticsError> {
    let table = Table::OrderEvents;
    let layout = crate::job::table_layout(table);
    dates
        .into_iter()
        .map(|(date, parts)| {
            let bytes = crate::parquet_out::encode(&table.schema(), &parts, &layout)?;
            Ok((format!("{}/date={date}/{}", table.name(), seed_file_name(seed, &date)), bytes))
        })
        .collect()
}
