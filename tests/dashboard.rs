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

    // Delivered from shipped (one step) and from confirmed (three); a
    // cancelled order refuses it and stays cancelled.
    let res = bulk(json!({"action": "mark_delivered", "order_ids": [ids[1], ids[3], ids[2]]})).await?;
    let delivered: Value = res.json().await?;
    assert_eq!(delivered["applied"], 2, "{delivered}");
    assert_eq!(status(&http, &base, &ids[1]).await?, "delivered");
    assert_eq!(status(&http, &base, &ids[3]).await?, "delivered");
    assert_eq!(status(&http, &base, &ids[2]).await?, "cancelled");
    let contract: Value = http.get(format!("{base}/api/dashboard/statuses")).send().await?.json().await?;
    assert_eq!(contract["actions"]["mark_delivered"], json!(["confirmed", "processing", "shipped"]), "{contract}");
    up.stop().await
}

/// The dashboard's load test: off by default (403), bounded by the flags
/// (422 naming the field), one at a time (409), and a run's orders are real
/// orders, each answered and counted.
#[tokio::test]
async fn load_tests_are_opt_in_bounded_and_real() -> TestResult {
    let off = common::start(&[]).await?;
    let res = reqwest::Client::new()
        .post(format!("{}/api/admin/load-test", off.base))
        .json(&json!({"rate": 10, "duration_secs": 1}))
        .send()
        .await?;
    assert_eq!(res.status(), 403);
    assert_eq!(res.json::<Value>().await?["error"], "load_test_disabled");
    off.stop().await?;

    let up = common::start(&[
        ("ORDERSTREAM_LOAD_TEST_MAX_RATE", "200"),
        ("ORDERSTREAM_LOAD_TEST_MAX_SECS", "5"),
        ("ORDERSTREAM_ADMIN_TOKEN", "admin-sekret"),
    ])
    .await?;
    let http = common::bearer_client("admin-sekret")?;
    let url = format!("{}/api/admin/load-test", up.base);
    let anonymous = reqwest::Client::new().post(&url).json(&json!({"rate": 10, "duration_secs": 1})).send().await?;
    assert_eq!(anonymous.status(), 401, "admins only");
    for (body, field) in [
        (json!({"rate": 500, "duration_secs": 1}), "rate"),
        (json!({"rate": 10, "duration_secs": 60}), "duration_secs"),
        (json!({"rate": 10, "duration_secs": 1, "connections": 0}), "connections"),
    ] {
        let res = http.post(&url).json(&body).send().await?;
        assert_eq!(res.status(), 422, "{body}");
        assert_eq!(res.json::<Value>().await?["field"], field, "{body}");
    }
    let res = http.post(&url).json(&json!({"rate": 100, "duration_secs": 2, "connections": 4})).send().await?;
    assert_eq!(res.status(), 202);
    let again = http.post(&url).json(&json!({"rate": 10, "duration_secs": 1})).send().await?;
    assert_eq!(again.status(), 409, "one run at a time");
    let mut run = Value::Null;
    for _ in 0..100 {
        run = http.get(&url).send().await?.json::<Value>().await?["run"].clone();
        if run["status"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(run["status"], "done", "{run}");
    let report = &run["report"];
    assert_eq!(report["completed"], 200, "{run}");
    assert_eq!(report["orders_created"], 200, "every order accepted once: {run}");
    assert_eq!(report["errors"], 0, "{run}");
    assert!(report["latency_ms"]["p99"].as_f64().is_some_and(|p| p > 0.0), "{run}");
    assert_eq!(run["progress"]["completed"], 200, "{run}");
    up.stop().await
}
