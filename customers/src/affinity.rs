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

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

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

/// A text column as plain UTF-8, however the reader encoded it (views,
/// dictionaries for partition values).
fn text(column: &ArrayRef) -> Result<ArrayRef, CustomersError> {
    Ok(arrow::compute::cast(column, &DataType::Utf8).map_err(datafusion::error::DataFusionError::from)?)
}

/// Counts every pair of products bought in the same order over the lake's
/// `order_items`, keeping the pairs bought together in at least
/// `min_support` orders. Sorted by product, then by cosine (highest
/// first), then by the other product.
pub async fn bought_together(ctx: &SessionContext, min_support: u64) -> Result<Vec<Affinity>, CustomersError> {
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut product_orders: Vec<u64> = Vec::new();
    let mut pairs: HashMap<(u32, u32), u64> = HashMap::new();
    let mut orders: u64 = 0;
    let days = ctx.sql("SELECT DISTINCT date FROM order_items ORDER BY date").await?.collect().await?;
    for batch in days {
        let dates = text(batch.column(0))?;
        let dates = dates.as_string_opt::<i32>().ok_or(CustomersError::Shape("order_items date"))?;
        for day in dates.iter().flatten() {
            let day = day.replace('\'', "''");
            let sql = format!("SELECT order_id, product_id FROM order_items WHERE date = '{day}'");
            let mut baskets: HashMap<String, Vec<u32>> = HashMap::new();
            let mut stream = ctx.sql(&sql).await?.execute_stream().await?;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                let shape = || CustomersError::Shape("order_items order_id, product_id");
                let (order_ids, products) = (text(batch.column(0))?, text(batch.column(1))?);
                let order_ids = order_ids.as_string_opt::<i32>().ok_or_else(shape)?;
                let products = products.as_string_opt::<i32>().ok_or_else(shape)?;
                for row in 0..batch.num_rows() {
                    if order_ids.is_null(row) || products.is_null(row) {
                        continue;
                    }
                    let product = products.value(row);
                    let id = match ids.get(product) {
                        Some(id) => *id,
                        None => {
                            let id = names.len() as u32;
                            ids.insert(product.to_string(), id);
                            names.push(product.to_string());
                            product_orders.push(0);
                            id
                        }
                    };
                    baskets.entry(order_ids.value(row).to_string()).or_default().push(id);
                }
            }
            for (_, mut basket) in baskets {
                // A product on two lines of one order is one purchase.
                basket.sort_unstable();
                basket.dedup();
                orders += 1;
                for (i, a) in basket.iter().enumerate() {
                    product_orders[*a as usize] += 1;
                    for b in &basket[i + 1..] {
                        *pairs.entry((*a, *b)).or_default() += 1;
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for ((a, b), support) in pairs {
        if support < min_support.max(1) {
            continue;
        }
        for (p, o) in [(a, b), (b, a)] {
            let (np, no) = (product_orders[p as usize], product_orders[o as usize]);
            out.push(Affinity {
                product_id: names[p as usize].clone(),
                other_id: names[o as usize].clone(),
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
    Ok(out)
}
