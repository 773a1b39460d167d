//! "Bought together": for every pair of products, how many orders hold
//! both (support), and what that says beside how often each sells:
//! confidence (P(other | product)), lift (how much more often than chance)
//! and cosine (support / √(orders of each), symmetric and scaled 0..1).
//!
//! Counted in memory rather than by a SQL self-join: an order's lines are
//! all on its day's partition, so the lines are read a day at a time, each
//! day's orders become baskets of interned product numbers, and every pair
//! in a basket bumps one counter. A self-join of 25M lines on `order_id`
//! builds a hash table of the whole table; this holds one day's lines and
//! the pair counts (at most products² of them).

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use hashbrown::HashMap as FastMap;

use crate::{CustomersError, Interned, utf8};

/// One ordered pair: customers who bought `product_id` also bought
/// `other_id`. Both directions of a pair are listed.
#[derive(Clone, Debug, PartialEq)]
pub struct Affinity {
    pub product_id: String,
    pub other_id: String,
    /// Orders holding both.
    pub support: u64,
    /// Orders holding `product_id`, and `other_id`.
    pub product_orders: u64,
    pub other_orders: u64,
    /// support / product_orders.
    pub confidence: f64,
    /// support × orders / (product_orders × other_orders).
    pub lift: f64,
    /// support / √(product_orders × other_orders).
    pub cosine: f64,
}

/// How many orders hold a product.
#[derive(Clone, Debug, PartialEq)]
pub struct ProductOrders {
    pub product_id: String,
    pub category: String,
    pub orders: u64,
}

/// The counted model: the pairs at or above the minimum support (each
/// product's best, when asked), every product's orders, and the orders read.
#[derive(Debug, Default)]
pub struct AffinityModel {
    pub pairs: Vec<Affinity>,
    /// Pairs at or above the minimum support, both directions, before any cut.
    pub all_pairs: usize,
    pub products: Vec<ProductOrders>,
    pub orders: u64,
}

/// Every pair of products bought in the same order over the lake's
/// `order_items`, keeping the pairs bought together in at least
/// `min_support` orders. Sorted by product, then by cosine (highest
/// first), then by the other product.
pub async fn bought_together(ctx: &SessionContext, min_support: u64) -> Result<Vec<Affinity>, CustomersError> {
    Ok(count(ctx, min_support, None, None).await?.pairs)
}

/// Interned products, with each one's category and orders holding it.
#[derive(Default)]
struct Products {
    ids: Interned,
    categories: Vec<String>,
    orders: Vec<u64>,
}

impl Products {
    fn intern(&mut self, product: &str, category: &str) -> u32 {
        let (n, new) = self.ids.number(product);
        if new {
            self.categories.push(category.to_string());
            self.orders.push(0);
        }
        n
    }
}

/// The model over the days up to `up_to` (all days when `None`), keeping
/// each product's best `keep` pairs (all when `None`), in [`bought_together`]'s order.
pub async fn count(
    ctx: &SessionContext,
    min_support: u64,
    up_to: Option<NaiveDate>,
    keep: Option<usize>,
) -> Result<AffinityModel, CustomersError> {
    let mut products = Products::default();
    // A pair (a < b) packed into one key.
    let mut pairs: FastMap<u64, u64> = FastMap::new();
    let mut orders: u64 = 0;
    let until = up_to.map(|d| format!(" WHERE date <= '{d}'")).unwrap_or_default();
    let days = ctx.sql(&format!("SELECT DISTINCT date FROM order_items{until} ORDER BY date")).await?.collect().await?;
    for batch in days {
        let dates = utf8(batch.column(0))?;
        let dates = dates.as_string_opt::<i32>().ok_or(CustomersError::Shape("order_items date"))?;
        for day in dates.iter().flatten() {
            let day = day.replace('\'', "''");
            let sql = format!("SELECT order_id, product_id, category FROM order_items WHERE date = '{day}'");
            let lines = ctx.sql(&sql).await?.collect().await?;
            orders += count_day(&lines, &mut products, &mut pairs)?;
        }
    }
    // Scoring and sorting millions of pairs: off the async workers, which
    // the stream job in the same process shares.
    tokio::task::spawn_blocking(move || score(products, pairs, orders, min_support, keep))
        .await
        .map_err(|e| CustomersError::Worker(e.to_string()))
}

/// The counted pairs as scored rows, each product's best `keep`.
fn score(
    products: Products,
    pairs: FastMap<u64, u64>,
    orders: u64,
    min_support: u64,
    keep: Option<usize>,
) -> AffinityModel {
    // Each product's partners, then their scores; only the kept ones
    // become rows (a year of a 2,000-product shop has millions of pairs).
    let mut partners: Vec<Vec<(u32, u64)>> = vec![Vec::new(); products.ids.names.len()];
    let mut all_pairs = 0;
    for (key, support) in pairs {
        if support < min_support.max(1) {
            continue;
        }
        let (a, b) = ((key >> 32) as u32, key as u32);
        partners[a as usize].push((b, support));
        partners[b as usize].push((a, support));
        all_pairs += 2;
    }
    let names = &products.ids.names;
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&x, &y| names[x].cmp(&names[y]));
    let mut out = Vec::new();
    for p in order {
        let np = products.orders[p];
        let mut scored: Vec<Affinity> = partners[p]
            .iter()
            .map(|&(o, support)| {
                let no = products.orders[o as usize];
                Affinity {
                    product_id: String::new(),
                    other_id: names[o as usize].clone(),
                    support,
                    product_orders: np,
                    other_orders: no,
                    confidence: support as f64 / np as f64,
                    lift: support as f64 * orders as f64 / (np as f64 * no as f64),
                    cosine: support as f64 / ((np as f64) * (no as f64)).sqrt(),
                }
            })
            .collect();
        scored.sort_by(|x, y| y.cosine.total_cmp(&x.cosine).then_with(|| x.other_id.cmp(&y.other_id)));
        scored.truncate(keep.unwrap_or(usize::MAX));
        for mut a in scored {
            a.product_id.clone_from(&names[p]);
            out.push(a);
        }
    }
    let Products { ids, categories, orders: counts } = products;
    let names = ids.names;
    let mut per_product: Vec<ProductOrders> = names
        .into_iter()
        .zip(categories)
        .zip(counts)
        .map(|((product_id, category), orders)| ProductOrders { product_id, category, orders })
        .collect();
    per_product.sort_by(|x, y| x.product_id.cmp(&y.product_id));
    AffinityModel { pairs: out, all_pairs, products: per_product, orders }
}

/// One day's lines into baskets, and each basket's pairs into `pairs`;
/// returns the day's orders. The baskets borrow the day's order ids.
fn count_day(
    lines: &[RecordBatch],
    products: &mut Products,
    pairs: &mut FastMap<u64, u64>,
) -> Result<u64, CustomersError> {
    let shape = || CustomersError::Shape("order_items order_id, product_id, category");
    let columns: Vec<(ArrayRef, ArrayRef, ArrayRef)> = lines
        .iter()
        .map(|b| Ok((utf8(b.column(0))?, utf8(b.column(1))?, utf8(b.column(2))?)))
        .collect::<Result<_, CustomersError>>()?;
    let mut baskets: FastMap<&str, Vec<u32>> = FastMap::new();
    for (order_ids, product_ids, categories) in &columns {
        let order_ids = order_ids.as_string_opt::<i32>().ok_or_else(shape)?;
        let product_ids = product_ids.as_string_opt::<i32>().ok_or_else(shape)?;
        let categories = categories.as_string_opt::<i32>().ok_or_else(shape)?;
        for row in 0..order_ids.len() {
            if order_ids.is_null(row) || product_ids.is_null(row) {
                continue;
            }
            let category = if categories.is_null(row) { "" } else { categories.value(row) };
            let id = products.intern(product_ids.value(row), category);
            baskets.entry(order_ids.value(row)).or_default().push(id);
        }
    }
    let orders = baskets.len() as u64;
    for (_, mut basket) in baskets {
        // A product on two lines of one order is one purchase.
        basket.sort_unstable();
        basket.dedup();
        for (i, a) in basket.iter().enumerate() {
            products.orders[*a as usize] += 1;
            for b in &basket[i + 1..] {
                *pairs.entry((u64::from(*a) << 32) | u64::from(*b)).or_default() += 1;
            }
        }
    }
    Ok(orders)
}

/// Each product's best `k` pairs of `pairs` (sorted as [`count`] sorts
/// them), with their rank (1 = best).
pub fn top_k(pairs: &[Affinity], k: usize) -> Vec<(u32, &Affinity)> {
    let mut out = Vec::new();
    let mut rank = 0u32;
    let mut current: Option<&str> = None;
    for pair in pairs {
        if current != Some(pair.product_id.as_str()) {
            current = Some(pair.product_id.as_str());
            rank = 0;
        }
        rank += 1;
        if rank as usize <= k {
            out.push((rank, pair));
        }
    }
    out
}

/// Each product's rank among its category's by orders (1 = bestseller;
/// ties broken by product id).
pub fn category_ranks(products: &[ProductOrders]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..products.len()).collect();
    order.sort_by(|&x, &y| {
        let (a, b) = (&products[x], &products[y]);
        a.category.cmp(&b.category).then(b.orders.cmp(&a.orders)).then_with(|| a.product_id.cmp(&b.product_id))
    });
    let mut ranks = vec![0u32; products.len()];
    let mut rank = 0;
    let mut current: Option<&str> = None;
    for i in order {
        if current != Some(products[i].category.as_str()) {
            current = Some(products[i].category.as_str());
            rank = 0;
        }
        rank += 1;
        ranks[i] = rank;
    }
    ranks
}
