//! Importing a catalog: products into the CATALOG bucket, their stock as
//! `set` commands into ORDERS (so stock changes stay in log order with the
//! orders that use it). Re-importing the same file changes nothing twice:
//! each stock command's id is derived from the file's content.

use async_nats::jetstream;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use broker::{CATALOG_BUCKET, kv_key};
use schemas::money::{MAX_UNIT_PRICE_MAJOR, parse_decimal};
use schemas::{Currency, Product, StockChange};

use crate::ProcessorError;

#[derive(Debug, Error)]
pub enum ImportError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error("line {line}: {message}")]
    Row { line: usize, message: String },
    #[error(transparent)]
    Nats(#[from] ProcessorError),
}

#[derive(Deserialize)]
struct Row {
    product_id: String,
    name: String,
    category: String,
    unit_price: String,
    stock: u64,
    #[serde(default)]
    currency: Option<String>,
}

/// A validated catalog row with its initial stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub product: Product,
    pub stock: u64,
}

/// Parses CSV with a header `product_id,name,category,unit_price,stock[,currency]`;
/// every row is checked before anything is written.
pub fn parse_csv(text: &str) -> Result<Vec<CatalogEntry>, ImportError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let mut entries = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, row) in reader.deserialize::<Row>().enumerate() {
        let line = i + 2;
        let row = row.map_err(|e| ImportError::Row { line, message: e.to_string() })?;
        let bad = |message: String| ImportError::Row { line, message };
        if row.product_id.is_empty() || row.product_id.chars().any(char::is_control) || row.product_id.len() > 128 {
            return Err(bad("product_id must be 1 to 128 printable characters".into()));
        }
        if !seen.insert(row.product_id.clone()) {
            return Err(bad(format!("product {} appears twice", row.product_id)));
        }
        if row.name.is_empty() || row.category.is_empty() {
            return Err(bad("name and category must not be empty".into()));
        }
        let currency = match row.currency.as_deref() {
            None | Some("") => Currency::USD,
            Some(code) => Currency::from_code(code).ok_or_else(|| bad(format!("unknown currency {code}")))?,
        };
        if row.stock > schemas::MAX_STOCK_UNITS {
            return Err(bad(format!("stock is at most {} units", schemas::MAX_STOCK_UNITS)));
        }
        let unit_price = parse_decimal(&row.unit_price, currency.exponent(), MAX_UNIT_PRICE_MAJOR)
            .map_err(|e| bad(format!("unit_price {}", e)))?;
        entries.push(CatalogEntry {
            product: Product {
                product_id: row.product_id,
                name: row.name,
                category: row.category,
                unit_price,
                currency,
            },
            stock: row.stock,
        });
    }
    Ok(entries)
}

/// Writes the products and sends their stock. Returns how many were imported.
pub async fn import(js: &jetstream::Context, file_name: &str, entries: &[CatalogEntry]) -> Result<usize, ImportError> {
    let nats = |e: String| ImportError::Nats(ProcessorError::Nats { what: "import the catalog", message: e });
    let catalog = js.get_key_value(CATALOG_BUCKET).await.map_err(|e| nats(e.to_string()))?;
    let mut digest = Sha256::new();
    for entry in entries {
        digest.update(entry.product.product_id.as_bytes());
        digest.update(entry.stock.to_le_bytes());
        // A new price is a new import, even with the same stock.
        digest.update(entry.product.unit_price.0.to_le_bytes());
        digest.update(entry.product.currency.code().as_bytes());
    }
    let import_id: String = digest.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    for entry in entries {
        let value = serde_json::to_vec(&entry.product).map_err(|e| nats(e.to_string()))?;
        catalog.put(kv_key(&entry.product.product_id), value.into()).await.map_err(|e| nats(e.to_string()))?;
        crate::commands::send_stock_command(
            js,
            &entry.product.product_id,
            StockChange::Set { quantity: entry.stock },
            &format!("import-{import_id}-{}", kv_key(&entry.product.product_id)),
            Some(format!("catalog import of {file_name}")),
            Some(schemas::ListPrice { unit_price: entry.product.unit_price, currency: entry.product.currency }),
        )
        .await?;
    }
    Ok(entries.len())
}

/// Every catalog product with its live stock level, by product id.
pub async fn product_views(
    js: &jetstream::Context,
    low_stock_threshold: u64,
) -> Result<Vec<schemas::ProductView>, ProcessorError> {
    let (catalog, stock) = tokio::try_join!(
        crate::kvscan::latest(js, CATALOG_BUCKET, ">"),
        crate::kvscan::latest(js, broker::STOCK_BUCKET, ">"),
    )?;
    let levels: std::collections::HashMap<String, schemas::StockLevel> = stock
        .iter()
        .filter_map(|(_, v)| serde_json::from_slice::<schemas::records::StockEntry>(v).ok())
        .map(|e| (e.product_id, e.level))
        .collect();
    let mut views: Vec<schemas::ProductView> = catalog
        .iter()
        .filter_map(|(_, v)| serde_json::from_slice::<Product>(v).ok())
        .map(|p| {
            schemas::ProductView::new(&p, levels.get(&p.product_id).copied().unwrap_or_default(), low_stock_threshold)
        })
        .collect();
    views.sort_by(|a, b| a.product_id.cmp(&b.product_id));
    Ok(views)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates_rows() {
        let csv =
            "product_id,name,category,unit_price,stock\nsku-1,Kettle,Kitchen,29.99,100\nsku-2, Mug ,Kitchen,4,0\n";
        let entries = parse_csv(csv).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].product.unit_price.0, 2999);
        assert_eq!(entries[1].product.name, "Mug");
        assert!(matches!(
            parse_csv("product_id,name,category,unit_price,stock\na,b,c,1.999,1\n"),
            Err(ImportError::Row { line: 2, .. })
        ));
        assert!(matches!(
            parse_csv("product_id,name,category,unit_price,stock\na,b,c,1,1\na,b,c,1,1\n"),
            Err(ImportError::Row { line: 3, .. })
        ));
        assert!(matches!(
            parse_csv("product_id,name,category,unit_price,stock\na,b,c,1,-1\n"),
            Err(ImportError::Row { .. })
        ));
    }
}
