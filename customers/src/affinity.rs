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

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use hashbrown::HashMap as FastMap;

use crate::CustomersError;

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

/// The counted model: every pair at or above the minimum support, every
/// product's orders, and the orders read.
#[derive(Debug, Default)]
pub struct AffinityModel {
    pub pairs: Vec<Affinity>,
    pub products: Vec<ProductOrders>,
    pub orders: u64,
}

/// A text column as plain UTF-8, however the reader encoded it (views,
/// dictionaries for partition values).
fn text(column: &ArrayRef) -> Result<ArrayRef, CustomersError> {
    Ok(arrow::compute::cast(column, &DataType::Utf8).map_err(datafusion::error::DataFusionError::from)?)
}

/// Every pair of products bought in the same order over the lake's
/// `order_items`, keeping the pairs bought together in at least
/// `min_support` orders. Sorted by product, then by cosine (highest
/// first), then by the other product.
pub async fn bought_together(ctx: &SessionContext, min_support: u64) -> Result<Vec<Affinity>, CustomersError> {
    Ok(count(ctx, min_support, None).await?.pairs)
}

/// Interned products: number ↔ id, category and orders holding it.
#[derive(Default)]
struct Products {
    ids: HashMap<String, u32>,
    names: Vec<String>,
    categories: Vec<String>,
    orders: Vec<u64>,
}

impl Products {
    fn intern(&mut self, product: &str, category: &str) -> u32 {
        if let Some(id) = self.ids.get(product) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(product.to_string(), id);
        self.names.push(product.to_string());
        self.categories.push(category.to_string());
        self.orders.push(0);
        id
    }
}

/// The model over the days up to `up_to` (all days when `None`).
pub async fn count(
    ctx: &SessionContext,
    min_support: u64,
    up_to: Option<NaiveDate>,
) -> Result<AffinityModel, CustomersError> {
    let mut products = Products::default();
    // A pair (a < b) packed into one key.
    let mut pairs: FastMap<u64, u64> = FastMap::new();
    let mut orders: u64 = 0;
    let until = up_to.map(|d| format!(" WHERE date <= '{d}'")).unwrap_or_default();
    let days = ctx.sql(&format!("SELECT DISTINCT date FROM order_items{until} ORDER BY date")).await?.collect().await?;
    for batch in days {
        let dates = text(batch.column(0))?;
        let dates = dates.as_string_opt::<i32>().ok_or(CustomersError::Shape("order_items date"))?;
        for day in dates.iter().flatten() {
            let day = day.replace('\'', "''");
            let sql = format!("SELECT order_id, product_id, category FROM order_items WHERE date = '{day}'");
            let lines = ctx.sql(&sql).await?.collect().await?;
            orders += count_day(&lines, &mut products, &mut pairs)?;
        }
    }
    let mut out = Vec::new();
    for (key, support) in pairs {
        if support < min_support.max(1) {
            continue;
        }
        let (a, b) = ((key >> 32) as u32, key as u32);
        for (p, o) in [(a, b), (b, a)] {
            let (np, no) = (products.orders[p as usize], products.orders[o as usize]);
            out.push(Affinity {
                product_id: products.names[p as usize].clone(),
                other_id: products.names[o as usize].clone(),
                support,
                product_orders: np,
                other_orders: no,
                confidence: support as f64 / np as f64,
                lift: support as f64 * orders as f64 / (np as f64 * no as f64),
                cosine: support as f64 / ((np as f64) * (no as f64)).sqrt(),
            });
        }
    }
    out.sort_by(|x, y| {
        x.product_id.cmp(&y.product_id).then(y.cosine.total_cmp(&x.cosine)).then_with(|| x.other_id.cmp(&y.other_id))
    });
    let Products { names, categories, orders: counts, .. } = products;
    let mut per_product: Vec<ProductOrders> = names
        .into_iter()
        .zip(categories)
        .zip(counts)
        .map(|((product_id, category), orders)| ProductOrders { product_id, category, orders })
        .collect();
    per_product.sort_by(|x, y| x.product_id.cmp(&y.product_id));
    Ok(AffinityModel { pairs: out, products: per_product, orders })
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
        .map(|b| Ok((text(b.column(0))?, text(b.column(1))?, text(b.column(2))?)))
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
