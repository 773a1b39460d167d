//! Each customer's products: what they bought, when last and in how many
//! orders, the rows a customer's picks start from and exclude. Looking a
//! customer up in `order_items` reads every file holding them: for the
//! busiest customer of the 10M-order seed, every row group of all 365
//! days (0.6 s); this table holds them in one place, sorted by customer
//! with a bloom filter, so a lookup reads one row group.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::DataType;
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use hashbrown::HashMap as FastMap;
use schemas::customers::customer_products_schema;

use crate::{CustomersError, Interned, utf8};

/// The table's rows as of `as_of`: per customer (in id order), their
/// products, most recently bought first.
pub async fn customer_products(ctx: &SessionContext, as_of: NaiveDate) -> Result<RecordBatch, CustomersError> {
    let sql = format!("SELECT customer_id, product_id, date FROM order_items WHERE date <= '{as_of}'");
    let (mut customers, mut products) = (Interned::default(), Interned::default());
    // (customer, product) → (last day, order lines).
    let mut bought: FastMap<u64, (i32, u32)> = FastMap::new();
    let mut stream = ctx.sql(&sql).await?.execute_stream().await?;
    let shape = || CustomersError::Shape("order_items customer_id, product_id, date");
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let (who, what) = (utf8(batch.column(0))?, utf8(batch.column(1))?);
        let day = arrow::compute::cast(batch.column(2), &DataType::Date32)?;
        let who = who.as_string_opt::<i32>().ok_or_else(shape)?;
        let what = what.as_string_opt::<i32>().ok_or_else(shape)?;
        let day = day.as_primitive_opt::<arrow::datatypes::Date32Type>().ok_or_else(shape)?;
        for i in 0..batch.num_rows() {
            if who.is_null(i) || what.is_null(i) || day.is_null(i) {
                continue;
            }
            let key = (u64::from(customers.number(who.value(i)).0) << 32) | u64::from(products.number(what.value(i)).0);
            let entry = bought.entry(key).or_insert((day.value(i), 0));
            entry.0 = entry.0.max(day.value(i));
            entry.1 += 1;
        }
    }
    tokio::task::spawn_blocking(move || rows(&customers, &products, bought))
        .await
        .map_err(|e| CustomersError::Worker(e.to_string()))?
}

fn rows(
    customers: &Interned,
    products: &Interned,
    bought: FastMap<u64, (i32, u32)>,
) -> Result<RecordBatch, CustomersError> {
    // Customers by id; within one, most recent first, then product id.
    let mut rank = vec![0u32; customers.names.len()];
    let mut by_name: Vec<u32> = (0..customers.names.len() as u32).collect();
    by_name.sort_by(|a, b| customers.names[*a as usize].cmp(&customers.names[*b as usize]));
    for (r, c) in by_name.into_iter().enumerate() {
        rank[c as usize] = r as u32;
    }
    let mut entries: Vec<(u64, (i32, u32))> = bought.into_iter().collect();
    entries.sort_by(|(x, (dx, _)), (y, (dy, _))| {
        let (cx, cy) = (rank[(x >> 32) as usize], rank[(y >> 32) as usize]);
        let (px, py) = (&products.names[(*x as u32) as usize], &products.names[(*y as u32) as usize]);
        cx.cmp(&cy).then(dy.cmp(dx)).then_with(|| px.cmp(py))
    });
    let customer = |k: u64| customers.names[(k >> 32) as usize].as_str();
    let product = |k: u64| products.names[(k as u32) as usize].as_str();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(entries.iter().map(|(k, _)| Some(customer(*k))).collect::<StringArray>()),
        Arc::new(entries.iter().map(|(k, _)| Some(product(*k))).collect::<StringArray>()),
        Arc::new(Date32Array::from(entries.iter().map(|(_, (d, _))| *d).collect::<Vec<i32>>())),
        Arc::new(entries.iter().map(|(_, (_, n))| i64::from(*n)).collect::<Int64Array>()),
    ];
    Ok(RecordBatch::try_new(customer_products_schema(), columns)?)
}
