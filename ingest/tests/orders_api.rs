//! The ingest API against a real nats-server: acceptance, idempotency,
//! validation, batches, and NATS outages.

mod common;

use std::time::Duration;

use common::{TestIngest, TestResult, order};
use futures::future::join_all;
use serde_json::{Value, json};

#[tokio::test]
async fn accepted_order_is_stored_with_server_computed_totals() -> TestResult {
    let t = TestIngest::start().await?;
    let res = t.post(&order("c-1"), None).await?;
    assert_eq!(res.status(), 202);
    let location = res.headers().get("location").ok_or("no Location")?.to_str()?.to_string();
    let body: Value = res.json().await?;
    assert_eq!(body["status"], "pending");
    assert_eq!(body["subtotal"], "45.48");
    assert_eq!(body["tax"], "4.55");
    assert_eq!(body["total"], "50.03");
    assert_eq!(body["currency"], "USD");
    assert_eq!(body["stream_seq"], 1);
    assert_eq!(t.stored_orders().await?, 1);

    let fetched: Value = t.http.get(t.url(&location)).send().await?.json().await?;
    assert_eq!(fetched["order_id"], body["order_id"]);
    assert_eq!(fetched["customer_id"], "c-1");
    assert_eq!(fetched["items"][0]["line_total"], "39.98");
    assert_eq!(fetched["client_ip"], "203.0.113.7");
    Ok(())
}

#[tokio::test]
async fn same_key_same_body_replays_and_different_body_conflicts() -> TestResult {
    let t = TestIngest::start().await?;
    let first = t.post(&order("c-1"), Some("key-1")).await?;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await?;

    let again = t.post(&order("c-1"), Some("key-1")).await?;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers().get("idempotent-replayed").map(|v| v.as_bytes()), Some(&b"true"[..]));
    let again: Value = again.json().await?;
    assert_eq!(again, first, "a replay returns the original response");

    let conflict = t.post(&order("c-2"), Some("key-1")).await?;
    assert_eq!(conflict.status(), 409);
    let conflict: Value = conflict.json().await?;
    assert_eq!(conflict["error"], "idempotency_key_reused");
    assert_eq!(conflict["field"], "Idempotency-Key");
    assert_eq!(t.stored_orders().await?, 1);
    Ok(())
}

#[tokio::test]
async fn fifty_concurrent_requests_with_one_key_make_one_order() -> TestResult {
    let t = TestIngest::start().await?;
    let body = order("c-race");
    let responses = join_all((0..50).map(|_| t.post(&body, Some("race-key")))).await;
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for res in responses {
        let res = res?;
        match res.status().as_u16() {
            202 => created += 1,
            200 => {}
            other => return Err(format!("unexpected status {other}").into()),
        }
        let body: Value = res.json().await?;
        ids.insert(body["order_id"].as_str().ok_or("no order_id")?.to_string());
    }
    assert_eq!(created, 1, "exactly one request creates the order");
    assert_eq!(ids.len(), 1, "every response names the same order");
    assert_eq!(t.stored_orders().await?, 1);
    Ok(())
}

#[tokio::test]
async fn a_crash_between_recording_the_key_and_publishing_loses_nothing() -> TestResult {
    let t = TestIngest::start().await?;
    let body = order("c-crash");
    let req: schemas::CreateOrderRequest = serde_json::from_value(body.clone())?;
    // The first attempt records the key and "dies" before publishing.
    let orphan = t.state.intake.prepare(&req, Some("crash-key"))?;
    assert!(matches!(t.state.intake.claim_key("crash-key", &req, &orphan).await?, ingest::Claim::Won));
    assert_eq!(t.stored_orders().await?, 0);

    // The producer's retry completes the recorded order, under its recorded id.
    let retry = t.post(&body, Some("crash-key")).await?;
    assert_eq!(retry.status(), 200);
    let retry: Value = retry.json().await?;
    assert_eq!(retry["order_id"], orphan.order_id.to_string());
    assert_eq!(t.stored_orders().await?, 1);
    let again: Value = t.post(&body, Some("crash-key")).await?.json().await?;
    assert_eq!(again["stream_seq"], retry["stream_seq"]);
    assert_eq!(t.stored_orders().await?, 1);
    Ok(())
}

#[tokio::test]
async fn every_validation_class_is_a_4xx_and_stores_nothing() -> TestResult {
    let t = TestIngest::start().await?;
    let with = |key: &str, value: Value| {
        let mut body = order("c-1");
        body[key] = value;
        body
    };
    let item = |key: &str, value: Value| {
        let mut body = order("c-1");
        body["items"][0][key] = value;
        body
    };
    let many: Vec<Value> =
        (0..501).map(|i| json!({"product_id": format!("p{i}"), "quantity": 1, "unit_price": 1})).collect();
    let cases: Vec<(Value, &str)> = vec![
        (with("items", json!([])), "items"),
        (with("items", json!(many)), "items"),
        (with("customer_id", json!("")), "customer_id"),
        (with("customer_id", json!("x".repeat(200))), "customer_id"),
        (with("customer_id", json!("bad\u{0000}id")), "customer_id"),
        (with("currency", json!("ZZZ")), "currency"),
        (with("placed_at", json!("not-a-time")), "placed_at"),
        (with("client_ip", json!("10.0.0.300")), "client_ip"),
        (with("surprise", json!(true)), "surprise"),
        (item("quantity", json!(0)), "items[0].quantity"),
        (item("quantity", json!(10_001)), "items[0].quantity"),
        (item("unit_price", json!(-5)), "items[0].unit_price"),
        (item("unit_price", json!(1.001)), "items[0].unit_price"),
        (item("unit_price", json!("NaN")), "items[0].unit_price"),
        (item("unit_price", json!(5e9)), "items[0].unit_price"),
        (item("product_id", json!("")), "items[0].product_id"),
    ];
    for (body, field) in cases {
        let res = t.post(&body, None).await?;
        assert_eq!(res.status(), 422, "{body}");
        let err: Value = res.json().await?;
        assert_eq!(err["error"], "validation_failed");
        assert_eq!(err["field"], field, "{body}");
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    let raw = |body: &'static str, content_type: &'static str| {
        t.http.post(t.url("/api/orders")).header("content-type", content_type).body(body).send()
    };
    let res = raw("{\"customer_id\": ", "application/json").await?;
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await?["error"], "malformed_json");
    let res = raw("{}", "text/plain").await?;
    assert_eq!(res.status(), 415);
    assert_eq!(res.json::<Value>().await?["field"], "Content-Type");
    let huge = json!({"customer_id": "c", "items": [], "pad": "x".repeat(300 * 1024)});
    let res = t.post(&huge, None).await?;
    assert_eq!(res.status(), 413);
    assert_eq!(res.json::<Value>().await?["error"], "payload_too_large");
    let res = t.post(&order("c-1"), Some(&"k".repeat(256))).await?;
    assert_eq!(res.status(), 422);
    assert_eq!(res.json::<Value>().await?["field"], "Idempotency-Key");

    let res = t.http.get(t.url("/api/orders/not-a-uuid")).send().await?;
    assert_eq!(res.status(), 400);
    let res = t.http.get(t.url("/api/orders/0190a000-0000-7000-8000-000000000000")).send().await?;
    assert_eq!(res.status(), 404);
    let res = t.http.get(t.url("/api/nothing-here")).send().await?;
    assert_eq!(res.status(), 404);
    assert_eq!(res.json::<Value>().await?["error"], "not_found");
    let res = t.http.delete(t.url("/api/orders")).send().await?;
    assert_eq!(res.status(), 405);
    assert_eq!(res.json::<Value>().await?["error"], "method_not_allowed");

    assert_eq!(t.stored_orders().await?, 0, "nothing is stored for a rejected request");
    Ok(())
}

#[tokio::test]
async fn batch_answers_per_order() -> TestResult {
    let t = TestIngest::start().await?;
    let mut keyed = order("c-3");
    keyed["idempotency_key"] = json!("batch-key");
    let batch = json!({"orders": [order("c-1"), {"customer_id": "c-2", "items": []}, keyed, "not an order"]});
    let res = t.http.post(t.url("/api/orders/batch")).json(&batch).send().await?;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await?;
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["rejected"], 2);
    let statuses: Vec<u64> =
        body["results"].as_array().ok_or("results")?.iter().filter_map(|r| r["status"].as_u64()).collect();
    assert_eq!(statuses, vec![202, 422, 202, 422]);
    assert_eq!(body["results"][1]["error"]["field"], "orders[1].items");
    assert_eq!(t.stored_orders().await?, 2);

    let too_many: Vec<Value> = (0..1001).map(|i| order(&format!("c-{i}"))).collect();
    let res = t.http.post(t.url("/api/orders/batch")).json(&json!({"orders": too_many})).send().await?;
    assert_eq!(res.status(), 422);
    assert_eq!(res.json::<Value>().await?["field"], "orders");
    assert_eq!(t.stored_orders().await?, 2);
    Ok(())
}

#[tokio::test]
async fn nats_down_is_503_with_retry_after_and_ingest_recovers_by_itself() -> TestResult {
    let mut t = TestIngest::start().await?;
    assert_eq!(t.post(&order("c-1"), Some("before")).await?.status(), 202);

    t.nats.stop().await?;
    let res = t.post(&order("c-2"), Some("during")).await?;
    assert_eq!(res.status(), 503);
    assert!(res.headers().get("retry-after").is_some());
    assert_eq!(res.json::<Value>().await?["error"], "unavailable");
    assert_eq!(t.http.get(t.url("/readyz")).send().await?.status(), 503);

    t.nats.start_again().await?;
    // No restart of ingest: the client reconnects and requests succeed again.
    let mut status = 0;
    for _ in 0..100 {
        status = t.post(&order("c-2"), Some("during")).await?.status().as_u16();
        if status == 202 || status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(status == 202 || status == 200, "ingest did not recover: {status}");
    assert_eq!(t.http.get(t.url("/readyz")).send().await?.status(), 200);
    // The order from before the outage survived, and the retried one is there once.
    assert_eq!(t.stored_orders().await?, 2);

    t.nats.restart().await?;
    let mut status = 0;
    for _ in 0..100 {
        status = t.post(&order("c-3"), Some("after-restart")).await?.status().as_u16();
        if status == 202 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 202);
    assert_eq!(t.stored_orders().await?, 3);
    Ok(())
}

#[tokio::test]
async fn operations_endpoints_report() -> TestResult {
    let t = TestIngest::start().await?;
    assert_eq!(t.post(&order("c-1"), None).await?.status(), 202);
    assert_eq!(t.http.get(t.url("/healthz")).send().await?.status(), 200);
    let ready: Value = t.http.get(t.url("/readyz")).send().await?.json().await?;
    assert_eq!(ready["status"], "ready");
    let metrics = t.http.get(t.url("/metrics")).send().await?.text().await?;
    assert!(
        metrics
            .contains("orderstream_ingest_http_requests_total{method=\"POST\",route=\"/api/orders\",status=\"202\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("orderstream_ingest_jetstream_publish_duration_seconds_count 1"));
    assert!(metrics.contains("orderstream_ingest_orders_accepted_total 1"));
    let openapi: Value = t.http.get(t.url("/api/openapi.json")).send().await?.json().await?;
    assert!(openapi["paths"]["/api/orders"]["post"].is_object());
    assert!(openapi["components"]["schemas"]["OrderAccepted"].is_object());
    Ok(())
}
