//! The catalog: what can be bought, in which category, at what list price.

use serde::{Deserialize, Serialize};

use crate::money::format_decimal;
use crate::{Currency, MinorUnits, StockLevel};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub product_id: String,
    pub name: String,
    pub category: String,
    pub unit_price: MinorUnits,
    pub currency: Currency,
}

/// `GET /api/products` item: the product, its stock, and whether it is low.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductView {
    pub product_id: String,
    pub name: String,
    pub category: String,
    pub unit_price: String,
    pub currency: Currency,
    pub stock: StockLevel,
    pub low_stock: bool,
}

impl ProductView {
    pub fn new(product: &Product, stock: StockLevel, low_stock_threshold: u64) -> Self {
        ProductView {
            product_id: product.product_id.clone(),
            name: product.name.clone(),
            category: product.category.clone(),
            unit_price: format_decimal(product.unit_price, product.currency.exponent()),
            currency: product.currency,
            stock,
            low_stock: stock.available <= low_stock_threshold,
        }
    }
}
