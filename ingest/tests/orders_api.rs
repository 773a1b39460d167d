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

    // The same content in another form is the same request: the key also
    // in the body, prices as strings instead of numbers, the batch route.
    let mut same = order("c-1");
    same["idempotency_key"] = json!("key-1");
    same["items"][0]["unit_price"] = json!("19.99");
    same["items"][1]["unit_price"] = json!(5.5);
    let resend = t.post(&same, Some("key-1")).await?;
    assert_eq!(resend.status(), 200);
    assert_eq!(resend.json::<Value>().await?["order_id"], first["order_id"]);
    let batch = t.http.post(t.url("/api/orders/batch")).json(&json!({"orders": [same]})).send().await?;
    let batch: Value = batch.json().await?;
    assert_eq!(batch["results"][0]["status"], 200, "{batch}");
    assert_eq!(batch["results"][0]["order"]["order_id"], first["order_id"]);

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
        (item("product_id", json!("sku\u{200B}-1")), "items[0].product_id"),
        (with("customer_id", json!("c-1\u{202E}")), "customer_id"),
        (item("unit_price", json!(" 19.99")), "items[0].unit_price"),
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
    let res = t.post(&order("c-1"), Some("tab\there")).await?;
    assert_eq!(res.status(), 422);
    assert_eq!(res.json::<Value>().await?["field"], "Idempotency-Key");
    let res = t
        .http
        .post(t.url("/api/orders"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(order("c-1").to_string())
        .send()
        .await?;
    assert_eq!(res.status(), 415, "a body said to be gzip is not read as plain JSON");
    assert_eq!(res.json::<Value>().await?["field"], "Content-Encoding");

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
        metrics.contains(
            "orderstream_http_requests_total{role=\"ingest\",method=\"POST\",route=\"/api/orders\",status=\"202\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("orderstream_ingest_jetstream_publish_duration_seconds_count 1"));
    assert!(metrics.contains("orderstream_ingest_orders_accepted_total 1"));
    let openapi: Value = t.http.get(t.url("/api/openapi.json")).send().await?.json().await?;
    assert!(openapi["paths"]["/api/orders"]["post"].is_object());
    assert!(openapi["components"]["schemas"]["OrderAccepted"].is_object());
    Ok(())
}

/// Every order of a stream's messages, by customer id.
async fn stored_customers(
    t: &TestIngest,
) -> Result<std::collections::HashMap<String, String>, Box<dyn std::error::Error>> {
    use futures::StreamExt;
    let stream = t.js.get_stream(broker::ORDERS_STREAM).await?;
    let consumer = stream.create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default()).await?;
    let total = t.stored_orders().await?;
    let mut messages = consumer.messages().await?;
    let mut out = std::collections::HashMap::new();
    while (out.len() as u64) < total {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next()).await?.ok_or("ended")??;
        let order: Value = serde_json::from_slice(&message.payload)?;
        out.insert(
            order["customer_id"].as_str().unwrap_or("").to_string(),
            order["order_id"].as_str().unwrap_or("").to_string(),
        );
    }
    Ok(out)
}

/// A 503 means "not stored": large batches flow through a healthy
/// JetStream without one, and when JetStream stalls mid-batch (its process
/// stopped with SIGSTOP, then continued), an order answered 503 is never in
/// the stream, and one whose acknowledgement never came is answered 504
/// with its id, which `GET /api/orders/{id}` then resolves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_is_only_for_orders_not_stored_even_when_jetstream_stalls() -> TestResult {
    let t = TestIngest::start().await?;
    let batch =
        |tag: &str| -> Value { json!({"orders": (0..1000).map(|i| order(&format!("{tag}-{i}"))).collect::<Vec<_>>()}) };
    let res = t.http.post(t.url("/api/orders/batch")).json(&batch("calm")).send().await?;
    let body: Value = res.json().await?;
    assert_eq!(body["accepted"], 1000, "a healthy JetStream stores a whole batch: {}", body["results"][0]);

    let pid = t.nats.pid().ok_or("no nats-server pid")?.to_string();
    let post = t.http.post(t.url("/api/orders/batch")).json(&batch("stall")).send();
    let stall = async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        tokio::process::Command::new("kill").args(["-STOP", &pid]).status().await?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        tokio::process::Command::new("kill").args(["-CONT", &pid]).status().await?;
        Ok::<_, std::io::Error>(())
    };
    let (res, stalled) = tokio::join!(post, stall);
    stalled?;
    let body: Value = res?.json().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stored = stored_customers(&t).await?;
    let mut counts = std::collections::BTreeMap::<u64, usize>::new();
    for (i, result) in body["results"].as_array().ok_or("results")?.iter().enumerate() {
        let status = result["status"].as_u64().ok_or("status")?;
        *counts.entry(status).or_default() += 1;
        let customer = format!("stall-{i}");
        match status {
            202 => assert!(stored.contains_key(&customer), "{customer} answered 202 but is not stored"),
            503 => assert!(!stored.contains_key(&customer), "{customer} answered 503 but is stored: {result}"),
            504 => {
                assert_eq!(result["error"]["error"], "ack_unknown", "{result}");
                let id = result["error"]["order_id"].as_str().ok_or("a 504 names its order")?;
                let found = t.http.get(t.url(&format!("/api/orders/{id}"))).send().await?.status().as_u16();
                let expected = if stored.get(&customer).map(String::as_str) == Some(id) { 200 } else { 404 };
                assert_eq!(found, expected, "GET /api/orders/{id} resolves {customer}");
            }
            other => return Err(format!("{customer}: unexpected status {other}: {result}").into()),
        }
    }
    eprintln!("stalled batch: {counts:?}");
    assert!(counts.get(&504).copied().unwrap_or(0) + counts.get(&503).copied().unwrap_or(0) > 0, "the stall was felt");
    Ok(())
}
