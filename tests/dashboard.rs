//! Bulk actions and exports through the real `orderstream up`: the
//! dashboard sends each bulk action as commands through JetStream and
//! reports the engine's verdict per order; a retried bulk request changes
//! nothing twice.

mod common;

use std::time::Duration;

use common::TestResult;
use serde_json::{Value, json};

async fn post_order(http: &reqwest::Client, base: &str, customer: &str) -> Result<String, Box<dyn std::error::Error>> {
    let order =
        json!({"customer_id": customer, "items": [{"product_id": "p-1", "quantity": 1, "unit_price": "10.00"}]});
    let res = http.post(format!("{base}/api/orders")).json(&order).send().await?;
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await?;
    Ok(body["order_id"].as_str().ok_or("no id")?.to_string())
}

async fn status(http: &reqwest::Client, base: &str, id: &str) -> Result<String, Box<dyn std::error::Error>> {
    let view: Value = http.get(format!("{base}/api/orders/{id}")).send().await?.json().await?;
    Ok(view["status"].as_str().unwrap_or("").to_string())
}

#[tokio::test]
async fn bulk_actions_go_through_the_engine_with_a_result_per_order() -> TestResult {
    let up = common::start(&[
        ("ORDERSTREAM_FULFILMENT_DELAYS_MS", "disabled"),
        ("ORDERSTREAM_PAYMENT_FAILURE_RATE", "0"),
        ("ORDERSTREAM_ADMIN_TOKEN", "admin-sekret"),
    ])
    .await?;
    up.import_catalog("product_id,name,category,unit_price,stock\np-1,Mug,home,10.00,100\n").await?;
    // The admin token turns key checks on for every route: this client sends it.
    let http = common::bearer_client("admin-sekret")?;
    let base = up.base.clone();
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(post_order(&http, &base, &format!("bulk-{i}")).await?);
    }
    for id in &ids {
        for _ in 0..100 {
            if status(&http, &base, id).await? == "confirmed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(status(&http, &base, id).await?, "confirmed");
    }
    let bulk = |body: Value| {
        let http = http.clone();
        let base = base.clone();
        async move {
            http.post(format!("{base}/api/admin/orders/bulk")).bearer_auth("admin-sekret").json(&body).send().await
        }
    };
    let unauthorized = reqwest::Client::new()
        .post(format!("{base}/api/admin/orders/bulk"))
        .json(&json!({"action": "cancel", "order_ids": [ids[0]]}))
        .send()
        .await?;
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(status(&http, &base, &ids[0]).await?, "confirmed", "a refused request changes nothing");

    let res = bulk(json!({"action": "mark_shipped", "order_ids": [ids[0], ids[1]]})).await?;
    assert_eq!(res.status(), 200);
    let shipped: Value = res.json().await?;
    assert_eq!(shipped["applied"], 2, "{shipped}");
    assert!(shipped["results"].as_array().ok_or("results")?.iter().all(|r| r["status"] == "shipped"));

    // Shipped orders cannot be cancelled; a confirmed one can.
    let res = bulk(json!({"action": "cancel", "order_ids": [ids[0], ids[2]]})).await?;
    let cancelled: Value = res.json().await?;
    let result_of =
        |id: &str| cancelled["results"].as_array().and_then(|r| r.iter().find(|x| x["order_id"] == id)).cloned();
    assert_eq!(result_of(&ids[0]).ok_or("result")?["result"], "rejected", "{cancelled}");
    assert_eq!(result_of(&ids[2]).ok_or("result")?["result"], "applied", "{cancelled}");
    assert_eq!(status(&http, &base, &ids[0]).await?, "shipped");
    assert_eq!(status(&http, &base, &ids[2]).await?, "cancelled");
    assert_eq!(status(&http, &base, &ids[3]).await?, "confirmed", "untouched");

    // The same bulk request again sends nothing new: JetStream drops the
    // repeated command ids, so there is no second event.
    let res = bulk(json!({"action": "mark_shipped", "order_ids": [ids[1]]})).await?;
    let again: Value = res.json().await?;
    assert_eq!(again["duplicate"], 1, "{again}");
    let res = http.get(format!("{base}/api/orders/{}", ids[1])).send().await?;
    let view: Value = res.json().await?;
    let history = view["history"].as_array().ok_or("history")?;
    assert_eq!(history.iter().filter(|h| h["status"] == "shipped").count(), 1, "shipped once: {view}");
    up.stop().await
}
