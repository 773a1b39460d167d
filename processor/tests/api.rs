//! The processor's HTTP API against the real pipeline.

mod common;

use std::time::{Duration, Instant};

use common::{Pipeline, TestResult};
use futures::StreamExt;
use serde_json::{Value, json};

async fn wait_status(http: &reqwest::Client, url: &str, status: &str) -> Result<Value, common::Error> {
    for _ in 0..250 {
        let view: Value = http.get(url).send().await?.json().await?;
        if view["status"] == status {
            return Ok(view);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("{url} never reached {status}").into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_status_timeline_customer_list_and_cancel() -> TestResult {
    let p = Pipeline::start().await?;
    let (proc1, _stop) = p.processor("p1", |c| c.workers.fulfilment_delays = None).await?;
    let api = p.api(&proc1, processor::ApiSettings::default()).await?;
    let http = &p.http;
    p.set_stock("kettle", 10).await?;

    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(p.order("alice", &[("kettle", 2)]).await?.0);
    }
    let url = format!("{api}/api/orders/{}", ids[0]);
    let view = wait_status(http, &url, "confirmed").await?;
    let history: Vec<&str> =
        view["history"].as_array().ok_or("history")?.iter().filter_map(|h| h["status"].as_str()).collect();
    assert_eq!(history, ["pending", "reserved", "confirmed"]);
    assert_eq!(view["risk_score"], 0);
    assert_eq!(view["customer_id"], "alice");

    let timeline: Value = http.get(format!("{url}/events")).send().await?.json().await?;
    let kinds: Vec<&str> =
        timeline.as_array().ok_or("timeline")?.iter().filter_map(|e| e["payload"]["to"].as_str()).collect();
    assert_eq!(kinds, ["pending", "reserved", "confirmed"]);

    for id in &ids {
        wait_status(http, &format!("{api}/api/orders/{id}"), "confirmed").await?;
    }
    let page: Value = http.get(format!("{api}/api/orders?customer_id=alice&limit=2")).send().await?.json().await?;
    let listed: Vec<&str> =
        page["orders"].as_array().ok_or("orders")?.iter().filter_map(|o| o["order_id"].as_str()).collect();
    assert_eq!(listed, [ids[2].to_string(), ids[1].to_string()], "newest first");
    let cursor = page["next_cursor"].as_str().ok_or("cursor")?;
    let rest: Value =
        http.get(format!("{api}/api/orders?customer_id=alice&limit=2&cursor={cursor}")).send().await?.json().await?;
    assert_eq!(rest["orders"][0]["order_id"], ids[0].to_string());
    assert!(rest["next_cursor"].is_null());
    let none: Value =
        http.get(format!("{api}/api/orders?customer_id=alice&status=cancelled")).send().await?.json().await?;
    assert_eq!(none["orders"].as_array().map(Vec::len), Some(0));
    for bad in [
        "/api/orders",
        "/api/orders?customer_id=a&limit=0",
        "/api/orders?customer_id=a&status=lost",
        "/api/orders/nope",
    ] {
        assert_eq!(http.get(format!("{api}{bad}")).send().await?.status(), 400, "{bad}");
    }
    assert_eq!(http.get(format!("{api}/api/orders/0190a000-0000-7000-8000-000000000000")).send().await?.status(), 404);

    // Cancel a paid order: refunded, stock back.
    let res = http.post(format!("{url}/cancel")).send().await?;
    assert_eq!(res.status(), 200);
    let cancelled: Value = res.json().await?;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancel_reason"], "customer_cancelled");
    assert_eq!(cancelled["refunded"], true);
    assert_eq!(common::stock_level(&p.js, "kettle").await?.available, 6);
    assert_eq!(http.post(format!("{url}/cancel")).send().await?.status(), 409);

    // A shipped order cannot be cancelled.
    for to in [schemas::OrderStatus::Processing, schemas::OrderStatus::Shipped] {
        processor::commands::send_order_command(&p.js, ids[1], schemas::OrderCommand::Advance { to }).await?;
    }
    wait_status(http, &format!("{api}/api/orders/{}", ids[1]), "shipped").await?;
    let res = http.post(format!("{api}/api/orders/{}/cancel", ids[1])).send().await?;
    assert_eq!(res.status(), 409);
    assert_eq!(res.json::<Value>().await?["error"], "not_allowed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fraud_review_products_stock_and_admin_token() -> TestResult {
    let p = Pipeline::start().await?;
    let (proc1, _stop) = p
        .processor("p1", |c| {
            c.workers.fulfilment_delays = None;
            // Approved orders stay `reserved` long enough to look at.
            c.workers.payment_latency = Duration::from_secs(2);
        })
        .await?;
    let api = p.api_with_admin_token(&proc1, processor::ApiSettings::default(), Some("s3cret")).await?;
    // The admin token turns keys on for every route: this client sends it.
    let http = &common::bearer_client("s3cret")?;
    let entries = processor::catalog::parse_csv(
        "product_id,name,category,unit_price,stock\ntv,Television,electronics,3000.00,3\nmug,Mug,kitchen,4.50,500\n",
    )?;
    processor::catalog::import(&p.js, "test.csv", &entries).await?;

    // A new customer's first order of 3,000: the built-in model holds it.
    let (id, _) = p.order_priced("newbie", &[("tv", 1)], "3000.00").await?;
    let flagged = wait_status(http, &format!("{api}/api/orders/{id}"), "flagged").await?;
    let reasons = flagged["risk_reasons"].as_array().cloned().unwrap_or_default();
    assert!(reasons.iter().any(|r| r.as_str().is_some_and(|r| r.starts_with("first_order_amount"))), "{flagged}");
    assert_eq!(flagged["risk_model"], fraud::FraudModel::builtin()?.version);
    let review = format!("{api}/api/admin/orders/{id}/review");
    assert_eq!(p.http.post(&review).json(&json!({"decision": "approve"})).send().await?.status(), 401);
    let admin = |r: reqwest::RequestBuilder| r.bearer_auth("s3cret");
    assert_eq!(admin(http.post(&review)).json(&json!({"decision": "maybe"})).send().await?.status(), 422);
    for (body, field) in [
        (json!({"decision": "approve", "reviewer": "x".repeat(101)}), "reviewer"),
        (json!({"decision": "approve", "note": "a\u{7}bell"}), "note"),
    ] {
        let res = admin(http.post(&review)).json(&body).send().await?;
        assert_eq!(res.status(), 422);
        assert_eq!(res.json::<Value>().await?["field"], field);
    }
    let res = admin(http.post(&review))
        .json(&json!({"decision": "approve", "reviewer": "ana", "note": "called the customer"}))
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await?["status"], "reserved");
    assert_eq!(admin(http.post(&review)).json(&json!({"decision": "reject"})).send().await?.status(), 409);

    let products: Value =
        admin(http.get(format!("{api}/api/products?category=electronics"))).send().await?.json().await?;
    assert_eq!(products["total"], 1);
    assert_eq!(products["products"][0]["unit_price"], "3000.00");
    assert_eq!(products["products"][0]["stock"]["reserved"], 1);
    assert_eq!(products["products"][0]["low_stock"], true);

    let stock = format!("{api}/api/admin/products/mug/stock");
    let res = admin(http.put(&stock))
        .header("idempotency-key", "restock-1")
        .json(&json!({"delta": 20, "reason": "delivery"}))
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let event: Value = res.json().await?;
    assert_eq!(event["before"]["available"], 500);
    assert_eq!(event["after"]["available"], 520);
    // The same request again: at once, the first one's outcome, applied once.
    let started = std::time::Instant::now();
    let again = admin(http.put(&stock))
        .header("idempotency-key", "restock-1")
        .json(&json!({"delta": 20, "reason": "delivery"}))
        .send()
        .await?;
    assert_eq!(again.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2), "answered from the first outcome, not after a wait");
    assert_eq!(again.json::<Value>().await?, event);
    let reused =
        admin(http.put(&stock)).header("idempotency-key", "restock-1").json(&json!({"delta": 5})).send().await?;
    assert_eq!(reused.status(), 409, "the key names another change");
    for absurd in [json!({"quantity": u64::MAX}), json!({"delta": i64::MIN}), json!({"quantity": 1_000_000_000_001u64})]
    {
        let res = admin(http.put(&stock)).json(&absurd).send().await?;
        assert_eq!(res.status(), 422, "{absurd}");
    }
    let refused = admin(http.put(&stock)).json(&json!({"delta": -1000})).send().await?;
    assert_eq!(refused.status(), 409);
    assert_eq!(admin(http.put(&stock)).json(&json!({})).send().await?.status(), 422);
    assert_eq!(admin(http.put(&stock)).json(&json!({"quantity": 1, "delta": 1})).send().await?.status(), 422);
    assert_eq!(
        admin(http.put(format!("{api}/api/admin/products/nope/stock")))
            .json(&json!({"quantity": 1}))
            .send()
            .await?
            .status(),
        404
    );
    assert_eq!(p.http.put(&stock).json(&json!({"quantity": 1})).send().await?.status(), 401);
    assert_eq!(common::stock_level(&p.js, "mug").await?.available, 520);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dlq_and_can_be_retried() -> TestResult {
    let p = Pipeline::start().await?;
    let (proc1, _stop) = p.processor("p1", |_| {}).await?;
    let api = p.api(&proc1, processor::ApiSettings::default()).await?;
    p.js.publish("orders.submitted.garbage", "{not json".into()).await?.await?;
    // The engine skips it and keeps going: a later order is still processed.
    p.set_stock("a", 1).await?;
    let (id, _) = p.order("c", &[("a", 1)]).await?;
    wait_status(&p.http, &format!("{api}/api/orders/{id}"), "confirmed").await?;

    let dlq: Value = p.http.get(format!("{api}/api/admin/dlq")).send().await?.json().await?;
    assert_eq!(dlq["total"], 1);
    let letter = &dlq["dead_letters"][0];
    assert_eq!(letter["original_subject"], "orders.submitted.garbage");
    assert!(letter["reason"].as_str().is_some_and(|r| r.contains("undecodable")));
    let seq = letter["seq"].as_u64().ok_or("seq")?;
    let retried = p.http.post(format!("{api}/api/admin/dlq/{seq}/retry")).send().await?;
    assert_eq!(retried.status(), 200);
    assert_eq!(p.http.post(format!("{api}/api/admin/dlq/{seq}/retry")).send().await?.status(), 404);
    // Still garbage: dead-lettered again, under a new DLQ sequence.
    let started = Instant::now();
    loop {
        let dlq: Value = p.http.get(format!("{api}/api/admin/dlq")).send().await?.json().await?;
        if dlq["total"] == 1 && dlq["dead_letters"][0]["seq"].as_u64() != Some(seq) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "retried message not dead-lettered again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_and_sse_push_status_events() -> TestResult {
    let p = Pipeline::start().await?;
    let (proc1, _stop) = p
        .processor("p1", |c| {
            c.workers.fulfilment_delays = Some([Duration::ZERO; 3]);
            // Orders wait half a second in `reserved`: time to subscribe and cancel.
            c.workers.payment_latency = Duration::from_millis(500);
        })
        .await?;
    let api = p.api(&proc1, processor::ApiSettings::default()).await?;
    p.set_stock("a", 5).await?;
    let ws_url = format!("{}/api/ws/orders?customer_id=watcher", api.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url).await?;
    // Another customer's events are filtered out.
    p.order("someone-else", &[("a", 1)]).await?;
    let (id, _) = p.order("watcher", &[("a", 1)]).await?;

    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.last().map(String::as_str) != Some("delivered") && Instant::now() < deadline {
        let Ok(Some(frame)) = tokio::time::timeout(Duration::from_secs(5), socket.next()).await else { break };
        let text = frame?.into_text()?;
        let event: Value = serde_json::from_str(&text)?;
        assert_eq!(event["customer_id"], "watcher");
        assert_eq!(event["order_id"], id.to_string());
        if let Some(to) = event["payload"]["to"].as_str() {
            seen.push(to.to_string());
        }
    }
    assert_eq!(seen, ["reserved", "confirmed", "processing", "shipped", "delivered"]);

    // SSE for one order: subscribe while it awaits payment, cancel it, see the event.
    let (id, _) = p.order("sse-user", &[("a", 1)]).await?;
    let mut sse = p.http.get(format!("{api}/api/orders/{id}/stream")).send().await?;
    assert_eq!(sse.headers()["content-type"], "text/event-stream");
    p.http.post(format!("{api}/api/orders/{id}/cancel")).send().await?;
    let mut text = String::new();
    while !text.contains("event: cancelled") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), sse.chunk()).await??.ok_or("SSE ended")?;
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    Ok(())
}

/// The catalog prices its products: an order of a $49.50 lamp at $0.01 is
/// cancelled `price_mismatch` (by default) with the prices in its event, or
/// charged $49.50 under `--pricing reprice`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_prices_are_authoritative() -> TestResult {
    let catalog =
        processor::catalog::parse_csv("product_id,name,category,unit_price,stock\nlamp,Lamp,home,49.50,10\n")?;
    for (pricing, want) in [(processor::Pricing::Reject, "cancelled"), (processor::Pricing::Reprice, "confirmed")] {
        let p = Pipeline::start().await?;
        let (proc1, _stop) = p.processor("p1", |c| c.runner.engine.pricing = pricing).await?;
        let api = p.api(&proc1, processor::ApiSettings::default()).await?;
        processor::catalog::import(&p.js, "lamps.csv", &catalog).await?;
        let (id, _) = p.order_priced("penny", &[("lamp", 2)], "0.01").await?;
        let view = wait_status(&p.http, &format!("{api}/api/orders/{id}"), want).await?;
        let timeline: Value = p.http.get(format!("{api}/api/orders/{id}/events")).send().await?.json().await?;
        let first = &timeline[1];
        let priced = json!([{"product_id": "lamp", "unit_price": 4950, "submitted": 1}]);
        assert_eq!(first["payload"]["prices"], priced, "{pricing:?}: {timeline}");
        match pricing {
            processor::Pricing::Reject => {
                assert_eq!(view["cancel_reason"], "price_mismatch", "{view}");
                assert_eq!(common::stock_level(&p.js, "lamp").await?.available, 10, "nothing reserved");
            }
            _ => {
                // 2 × 49.50 and 10% tax, charged and shown.
                assert_eq!((view["subtotal"].as_str(), view["total"].as_str()), (Some("99.00"), Some("108.90")));
                assert_eq!(first["order_total"], 10890, "{first}");
            }
        }
    }
    Ok(())
}
