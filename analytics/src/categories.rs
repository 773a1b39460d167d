//! Each order line's category, which an order does not carry: read from
//! the `CATALOG` bucket the first time a product is seen, remembered after.
//! Without a catalog (a replay into a bare lake, a test) every line is
//! `uncategorized`.

use async_nats::jetstream;
use futures::StreamExt;
use schemas::Order;

use crate::rows::Categories;

#[derive(Default)]
pub struct CatalogCategories {
    catalog: Option<jetstream::Context>,
    /// The bucket, opened once it is first needed (opening is a round trip).
    bucket: Option<jetstream::kv::Store>,
    known: Categories,
}

impl From<jetstream::Context> for CatalogCategories {
    fn from(js: jetstream::Context) -> Self {
        CatalogCategories { catalog: Some(js), bucket: None, known: Categories::new() }
    }
}

impl CatalogCategories {
    /// Every product's category learned so far.
    pub fn known(&self) -> &Categories {
        &self.known
    }

    /// Looks up, in the `CATALOG` bucket, the products of `orders` not yet
    /// known; returns how many could not be read (NATS failed): their lines
    /// are written `uncategorized`, and they are asked again next time.
    pub async fn learn(&mut self, orders: &[(u64, Order)]) -> u64 {
        let Some(js) = &self.catalog else { return 0 };
        let mut misses = 0;
        let mut unknown: Vec<&str> = orders
            .iter()
            .flat_map(|(_, o)| o.items.iter().map(|i| i.product_id.as_str()))
            .filter(|p| !self.known.contains_key(*p))
            .collect();
        if unknown.is_empty() {
            return 0;
        }
        unknown.sort_unstable();
        unknown.dedup();
        let catalog = match &self.bucket {
            Some(bucket) => bucket.clone(),
            None => match js.get_key_value(broker::CATALOG_BUCKET).await {
                Ok(bucket) => self.bucket.insert(bucket).clone(),
                Err(error) => {
                    tracing::warn!(%error, products = unknown.len(), "cannot open the CATALOG bucket: these lines are written uncategorized");
                    return unknown.len() as u64;
                }
            },
        };
        // Many lookups in flight: a replay's first batch names thousands of
        // products, and one round trip at a time took seconds.
        let keys: Vec<String> = unknown.into_iter().map(broker::kv_key).collect();
        let lookups = futures::stream::iter(keys).map(|key| {
            let catalog = catalog.clone();
            async move { catalog.get(key).await }
        });
        let found: Vec<_> = lookups.buffer_unordered(64).collect().await;
        let mut failed = None;
        for lookup in found {
            match lookup {
                Ok(Some(value)) => match serde_json::from_slice::<schemas::Product>(&value) {
                    Ok(p) => {
                        self.known.insert(p.product_id, p.category);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "a CATALOG entry that does not decode: its lines are uncategorized")
                    }
                },
                // Not in the catalog: `uncategorized` is the truth.
                Ok(None) => {}
                Err(error) => {
                    misses += 1;
                    failed = Some(error);
                }
            }
        }
        if let Some(error) = failed {
            tracing::warn!(%error, "cannot read some products from the CATALOG bucket: their lines are written uncategorized");
        }
        misses
    }
}
