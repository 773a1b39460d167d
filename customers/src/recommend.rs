//! Answering from the model: a product's "bought together" list, and a
//! customer's picks from their recent baskets. Loaded once per run of the
//! model (`as_of`) from `product_affinity` and `product_popularity`, and
//! held in memory: an answer is a lookup, not a query.

use std::collections::{HashMap, HashSet};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type};
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use schemas::customers::{PRODUCT_AFFINITY_TABLE, PRODUCT_POPULARITY_TABLE, RecommendationReason, THIN_SUPPORT};
use schemas::forecast::AS_OF_COLUMN;

use crate::{CustomersError, utf8};

/// One recommended product.
#[derive(Clone, Debug, PartialEq)]
pub struct Pick {
    pub product_id: String,
    /// Cosine for a pair (summed over a customer's products, weighted by
    /// recency); for a bestseller, its orders over its category's top
    /// seller's (0..1].
    pub score: f64,
    /// Orders holding both (0 for a bestseller).
    pub support: u64,
    pub reason: RecommendationReason,
}

struct Pair {
    other: String,
    support: u64,
    cosine: f64,
}

#[derive(Default)]
pub struct Recommender {
    pub as_of: Option<NaiveDate>,
    pairs: HashMap<String, Vec<Pair>>,
    category_of: HashMap<String, String>,
    /// Per category, its products by orders (best first).
    bestsellers: HashMap<String, Vec<(String, u64)>>,
}

impl Recommender {
    /// The SQL reading `as_of`'s popularity rows, then its pair rows, in
    /// the columns and order [`Recommender::from_batches`] reads.
    pub fn queries(as_of: NaiveDate) -> [String; 2] {
        let on = format!("{AS_OF_COLUMN} = '{as_of}'");
        [
            format!(
                "SELECT product_id, category, orders FROM {PRODUCT_POPULARITY_TABLE} WHERE {on} \
                 ORDER BY category, category_rank"
            ),
            format!(
                "SELECT product_id, other_id, support, cosine FROM {PRODUCT_AFFINITY_TABLE} WHERE {on} \
                 ORDER BY product_id, rank"
            ),
        ]
    }

    /// The model of `as_of` from the lake's tables.
    pub async fn load(ctx: &SessionContext, as_of: NaiveDate) -> Result<Recommender, CustomersError> {
        let [popularity, pairs] = Recommender::queries(as_of);
        let popularity = ctx.sql(&popularity).await?.collect().await?;
        let pairs = ctx.sql(&pairs).await?.collect().await?;
        Recommender::from_batches(as_of, &popularity, &pairs)
    }

    /// The model from the rows of [`Recommender::queries`].
    pub fn from_batches(
        as_of: NaiveDate,
        popularity: &[RecordBatch],
        pairs: &[RecordBatch],
    ) -> Result<Recommender, CustomersError> {
        let mut model = Recommender { as_of: Some(as_of), ..Recommender::default() };
        let shape = || CustomersError::Shape("product_popularity");
        for batch in popularity {
            let (ids, categories) = (utf8(batch.column(0))?, utf8(batch.column(1))?);
            let ids = ids.as_string_opt::<i32>().ok_or_else(shape)?;
            let categories = categories.as_string_opt::<i32>().ok_or_else(shape)?;
            let orders = batch.column(2).as_primitive_opt::<Int64Type>().ok_or_else(shape)?;
            for i in 0..batch.num_rows() {
                let (id, category) = (ids.value(i).to_string(), categories.value(i).to_string());
                model.category_of.insert(id.clone(), category.clone());
                model.bestsellers.entry(category).or_default().push((id, orders.value(i).max(0) as u64));
            }
        }
        let shape = || CustomersError::Shape("product_affinity");
        for batch in pairs {
            let (ids, others) = (utf8(batch.column(0))?, utf8(batch.column(1))?);
            let ids = ids.as_string_opt::<i32>().ok_or_else(shape)?;
            let others = others.as_string_opt::<i32>().ok_or_else(shape)?;
            let support = batch.column(2).as_primitive_opt::<Int64Type>().ok_or_else(shape)?;
            let cosine = batch.column(3).as_primitive_opt::<Float64Type>().ok_or_else(shape)?;
            for i in 0..batch.num_rows() {
                if ids.is_null(i) || others.is_null(i) {
                    continue;
                }
                model.pairs.entry(ids.value(i).to_string()).or_default().push(Pair {
                    other: others.value(i).to_string(),
                    support: support.value(i).max(0) as u64,
                    cosine: cosine.value(i),
                });
            }
        }
        Ok(model)
    }

    /// The model of a count not written yet (the same top pairs and
    /// bestseller order as the tables, for evaluating a time split).
    pub fn from_model(model: &crate::affinity::AffinityModel, as_of: NaiveDate) -> Recommender {
        let mut out = Recommender { as_of: Some(as_of), ..Recommender::default() };
        let ranks = crate::affinity::category_ranks(&model.products);
        let mut order: Vec<usize> = (0..model.products.len()).collect();
        order.sort_by_key(|&i| (model.products[i].category.clone(), ranks[i]));
        for i in order {
            let p = &model.products[i];
            out.category_of.insert(p.product_id.clone(), p.category.clone());
            out.bestsellers.entry(p.category.clone()).or_default().push((p.product_id.clone(), p.orders));
        }
        for (_, pair) in crate::affinity::top_k(&model.pairs, schemas::customers::AFFINITY_TOP_K) {
            out.pairs.entry(pair.product_id.clone()).or_default().push(Pair {
                other: pair.other_id.clone(),
                support: pair.support,
                cosine: crate::table::round6(pair.cosine),
            });
        }
        out
    }

    /// Whether the model has seen the product sold.
    pub fn knows(&self, product_id: &str) -> bool {
        self.category_of.contains_key(product_id)
    }

    pub fn category_of(&self, product_id: &str) -> Option<&str> {
        self.category_of.get(product_id).map(String::as_str)
    }

    /// Up to `limit` products bought with `product_id`, best first; when
    /// its pairs are thin (support below [`THIN_SUPPORT`]) or few, its
    /// category's bestsellers fill the list (`category` names it for a
    /// product the model has not seen sold). Never the product itself.
    pub fn for_product(&self, product_id: &str, category: Option<&str>, limit: usize) -> Vec<Pick> {
        let mut picks: Vec<Pick> = self
            .pairs
            .get(product_id)
            .into_iter()
            .flatten()
            .filter(|p| p.support >= THIN_SUPPORT && p.other != product_id)
            .take(limit)
            .map(|p| Pick {
                product_id: p.other.clone(),
                score: p.cosine,
                support: p.support,
                reason: RecommendationReason::BoughtTogether,
            })
            .collect();
        let category = self.category_of(product_id).or(category);
        if let Some(category) = category {
            let mut seen: HashSet<String> = picks.iter().map(|p| p.product_id.clone()).collect();
            seen.insert(product_id.to_string());
            self.fill(&mut picks, &[category], &seen, limit, RecommendationReason::CategoryBestseller);
        }
        picks
    }

    /// Up to `limit` products for a customer whose recent products are
    /// `recent` (most recent first), none of `bought`: each product's pairs
    /// scored by cosine, weighted by how recent the product is (halving
    /// every five products back), summed over the products; then the
    /// bestsellers of the customer's categories.
    pub fn for_customer(&self, recent: &[String], bought: &HashSet<String>, limit: usize) -> Vec<Pick> {
        let mut scores: HashMap<&str, (f64, u64)> = HashMap::new();
        for (k, product) in recent.iter().enumerate() {
            let weight = 0.5f64.powf(k as f64 / 5.0);
            for p in self.pairs.get(product).into_iter().flatten().filter(|p| p.support >= THIN_SUPPORT) {
                if bought.contains(&p.other) {
                    continue;
                }
                let entry = scores.entry(p.other.as_str()).or_default();
                entry.0 += weight * p.cosine;
                entry.1 = entry.1.max(p.support);
            }
        }
        let mut ranked: Vec<(&str, (f64, u64))> = scores.into_iter().collect();
        ranked.sort_by(|a, b| b.1.0.total_cmp(&a.1.0).then_with(|| a.0.cmp(b.0)));
        let mut picks: Vec<Pick> = ranked
            .into_iter()
            .take(limit)
            .map(|(id, (score, support))| Pick {
                product_id: id.to_string(),
                score: (score * 1e6).round() / 1e6,
                support,
                reason: RecommendationReason::BoughtWithYourRecentOrders,
            })
            .collect();
        // The customer's categories, most bought first.
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for product in recent {
            if let Some(c) = self.category_of(product) {
                *counts.entry(c).or_default() += 1;
            }
        }
        let mut categories: Vec<(&str, usize)> = counts.into_iter().collect();
        categories.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let categories: Vec<&str> = categories.into_iter().map(|(c, _)| c).collect();
        let mut seen: HashSet<String> = bought.clone();
        seen.extend(picks.iter().map(|p| p.product_id.clone()));
        self.fill(&mut picks, &categories, &seen, limit, RecommendationReason::BestsellerInYourCategories);
        picks
    }

    /// Tops `picks` up to `limit` with the bestsellers of `categories`
    /// (taken in turn), skipping `seen`.
    fn fill(
        &self,
        picks: &mut Vec<Pick>,
        categories: &[&str],
        seen: &HashSet<String>,
        limit: usize,
        reason: RecommendationReason,
    ) {
        let lists: Vec<&Vec<(String, u64)>> = categories.iter().filter_map(|c| self.bestsellers.get(*c)).collect();
        let mut cursors = vec![0usize; lists.len()];
        let mut taken: HashSet<&str> = HashSet::new();
        while picks.len() < limit {
            let mut progressed = false;
            for (list, cursor) in lists.iter().zip(cursors.iter_mut()) {
                while let Some((id, orders)) = list.get(*cursor) {
                    *cursor += 1;
                    if seen.contains(id) || !taken.insert(id.as_str()) {
                        continue;
                    }
                    let top = list.first().map_or(1, |(_, n)| (*n).max(1));
                    picks.push(Pick {
                        product_id: id.clone(),
                        score: ((*orders as f64 / top as f64) * 1e6).round() / 1e6,
                        support: 0,
                        reason,
                    });
                    progressed = true;
                    break;
                }
                if picks.len() >= limit {
                    break;
                }
            }
            if !progressed {
                break;
            }
        }
    }

    /// The `limit` best-selling products overall, none of `except`: the
    /// popularity baseline.
    pub fn popular(&self, except: &str, limit: usize) -> Vec<String> {
        let mut all: Vec<(&str, u64)> = self.bestsellers.values().flatten().map(|(id, n)| (id.as_str(), *n)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        all.into_iter().filter(|(id, _)| *id != except).take(limit).map(|(id, _)| id.to_string()).collect()
    }
}
