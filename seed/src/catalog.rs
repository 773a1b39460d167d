//! The seeded catalog and customers: 2,000 products over 50 categories,
//! each with companions a basket buys with it, and the regular customers.

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use rand::Rng;
use rand_distr::{Distribution, LogNormal};
use schemas::{Currency, MinorUnits, Product};

use crate::calendar::*;

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

pub(crate) const ADJECTIVES: [&str; 12] =
    ["Classic", "Premium", "Compact", "Deluxe", "Eco", "Pro", "Smart", "Ultra", "Essential", "Vintage", "Mini", "Max"];
pub(crate) const NOUNS: [&str; 10] =
    ["Set", "Kit", "Pack", "Edition", "Bundle", "Model", "Series", "Collection", "Box", "Line"];
pub(crate) const CITIES: [(&str, &str); 16] = [
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

pub(crate) fn unreachable_distribution() -> LogNormal<f64> {
    // The parameters above are constants that LogNormal accepts.
    LogNormal::new(0.0, 1.0).unwrap_or_else(|_| std::process::abort())
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
