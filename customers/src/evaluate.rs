//! Leave-one-out hit rate on a time split: the model is counted on the
//! orders up to `train_end`; every later order with two or more products
//! holds out its last product and asks for the recommendations of its
//! first; a hit is the held-out product among the first `k`. The
//! popularity baseline answers every question with the `k` best sellers
//! (never the asked product). Both use [`Recommender`], the code that
//! answers `GET /api/recommendations`.

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use crate::CustomersError;
use crate::affinity::count;
use crate::recommend::Recommender;

#[derive(Clone, Debug, Default)]
pub struct HitRate {
    pub train_orders: u64,
    pub test_baskets: u64,
    pub model_hits: u64,
    pub popular_hits: u64,
}

impl HitRate {
    pub fn model(&self) -> f64 {
        self.model_hits as f64 / self.test_baskets.max(1) as f64
    }

    pub fn popular(&self) -> f64 {
        self.popular_hits as f64 / self.test_baskets.max(1) as f64
    }
}

/// Scores the model trained up to `train_end` on at most `max_baskets`
/// baskets after it.
pub async fn hit_rate(
    ctx: &SessionContext,
    train_end: NaiveDate,
    min_support: u64,
    k: usize,
    max_baskets: u64,
) -> Result<HitRate, CustomersError> {
    let model = count(ctx, min_support, Some(train_end), Some(schemas::customers::AFFINITY_TOP_K)).await?;
    let recommender = Recommender::from_model(&model, train_end);
    let mut rate = HitRate { train_orders: model.orders, ..HitRate::default() };
    drop(model);
    // Lines in order of their order and line: a basket is a run of lines.
    let sql = format!(
        "SELECT order_id, product_id FROM order_items WHERE date > '{train_end}' ORDER BY date, order_id, line_no"
    );
    let mut stream = ctx.sql(&sql).await?.execute_stream().await?;
    let mut basket: Vec<String> = Vec::new();
    let mut current = String::new();
    let score = |basket: &mut Vec<String>, rate: &mut HitRate| {
        let mut distinct: Vec<String> = Vec::new();
        for p in basket.drain(..) {
            if !distinct.contains(&p) {
                distinct.push(p);
            }
        }
        if distinct.len() < 2 || rate.test_baskets >= max_baskets {
            return;
        }
        let (query, held_out) = (&distinct[0], &distinct[distinct.len() - 1]);
        rate.test_baskets += 1;
        if recommender.for_product(query, None, k).iter().any(|p| &p.product_id == held_out) {
            rate.model_hits += 1;
        }
        if recommender.popular(query, k).iter().any(|p| p == held_out) {
            rate.popular_hits += 1;
        }
    };
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let orders = arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
        let products = arrow::compute::cast(batch.column(1), &DataType::Utf8)?;
        let shape = || CustomersError::Shape("order_items order_id, product_id");
        let (orders, products) =
            (orders.as_string_opt::<i32>().ok_or_else(shape)?, products.as_string_opt::<i32>().ok_or_else(shape)?);
        for i in 0..orders.len() {
            if orders.is_null(i) || products.is_null(i) {
                continue;
            }
            if orders.value(i) != current {
                score(&mut basket, &mut rate);
                current = orders.value(i).to_string();
            }
            basket.push(products.value(i).to_string());
        }
        if rate.test_baskets >= max_baskets {
            break;
        }
    }
    score(&mut basket, &mut rate);
    Ok(rate)
}
