//! Who may do what, on the real binary (`orderstream up` with its own
//! nats-server) and keys made by the real `orderstream keys` CLI: open until
//! the first key, then every role's allowed and refused routes, producers'
//! own orders and idempotency keys, tracking links that expire, PII masked
//! for an analyst without the grant, and a revoked key refused everywhere.

mod common;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::TestResult;

/// The tracking links of this test live this long.
const TRACKING_TTL_SECS: u64 = 4;

struct Keys {
    admin: String,
    shop_a: String,
    shop_b: String,
    analyst: String,
    analyst_pii: String,
    viewer: String,
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    key: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<(StatusCode, Value), Box<dyn std::error::Error>> {
    let mut request = http.request(method, format!("{base}{path}"));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let res = request.send().await?;
    let status = res.status();
    let text = res.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

fn order(customer: &str) -> Value {
    json!({
        "customer_id": customer,
        "items": [{"product_id": "p-1", "quantity": 1, "unit_price": "19.99"}],
        "client_ip": "203.0.113.7",
        "shipping_address": {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"},
    })
}

/// Waits until `check` holds (the keys' watch, the lake's commits).
async fn until<F, Fut>(what: &str, mut check: F) -> TestResult
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, Box<dyn std::error::Error>>>,
{
    for _ in 0..200 {
        if check().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("timed out waiting for {what}").into())
}

#[tokio::test]
async fn keys_roles_scope_tracking_and_pii() -> TestResult {
    let ttl = TRACKING_TTL_SECS.to_string();
    let up = common::start(&[
        ("ORDERSTREAM_FULFILMENT_DELAYS_MS", "disabled"),
        ("ORDERSTREAM_PAYMENT_FAILURE_RATE", "0"),
        ("ORDERSTREAM_ANALYTICS_BATCH_WAIT_MS", "200"),
        ("ORDERSTREAM_TRACKING_TTL_SECS", &ttl),
    ])
    .await?;
    up.import_catalog("product_id,name,category,unit_price,stock\np-1,Desk lamp,home,19.99,1000\n").await?;
    let (http, base) = (reqwest::Client::new(), up.base.as_str());

    // Open until the first key, and it says so.
    let (_, ready) = call(&http, base, None, Method::GET, "/readyz", None).await?;
    let access = ready["components"]["access"]["detail"].as_str().unwrap_or_default();
    assert!(access.starts_with("OPEN"), "{ready}");
    let (status, me) = call(&http, base, None, Method::GET, "/api/whoami", None).await?;
    assert_eq!((status, me["open"].as_bool()), (StatusCode::OK, Some(true)), "{me}");
    let (status, _) = call(&http, base, None, Method::POST, "/api/orders", Some(order("before-keys"))).await?;
    assert_eq!(status, StatusCode::ACCEPTED);

    let keys = Keys {
        admin: up.create_key("admin", "ops", &[]).await?,
        shop_a: up.create_key("producer", "shop-a", &[]).await?,
        shop_b: up.create_key("producer", "shop-b", &[]).await?,
        analyst: up.create_key("analyst", "ana", &[]).await?,
        analyst_pii: up.create_key("analyst", "ana-pii", &["--grant", "pii"]).await?,
        viewer: up.create_key("viewer", "wall", &[]).await?,
    };
    assert!(keys.admin.starts_with("osk_") && keys.admin.len() == 68, "{}", keys.admin);
    let duplicate = up.create_key("viewer", "wall", &[]).await;
    assert!(duplicate.is_err_and(|e| e.to_string().contains("exists")), "names are unique");
    // The running server follows the bucket: no restart.
    until("enforcement", || async {
        Ok(call(&http, base, None, Method::GET, "/api/dashboard/summary", None).await?.0 == StatusCode::UNAUTHORIZED)
    })
    .await?;
    let (_, ready) = call(&http, base, None, Method::GET, "/readyz", None).await?;
    assert!(ready["components"]["access"]["detail"].as_str().unwrap_or_default().starts_with("enforced"), "{ready}");

    // Unknown and missing keys: 401, JSON, naming the header.
    for key in [None, Some("osk_0000"), Some("")] {
        let (status, body) = call(&http, base, key, Method::GET, "/api/products", None).await?;
        assert_eq!((status, body["field"].as_str()), (StatusCode::UNAUTHORIZED, Some("Authorization")), "{body}");
    }
    // Public without a key.
    for path in ["/healthz", "/readyz", "/metrics", "/", "/assets/app.js", "/api/openapi.json"] {
        let res = http.get(format!("{base}{path}")).send().await?;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(res.headers()["x-frame-options"], "DENY", "{path}");
        assert!(res.headers()["content-security-policy"].to_str()?.contains("script-src 'self'"), "{path}");
    }

    // Shop A's order, with its tracking link.
    let (status, placed) =
        call(&http, base, Some(&keys.shop_a), Method::POST, "/api/orders", Some(order("cust-a"))).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{placed}");
    let a_order = placed["order_id"].as_str().ok_or("order_id")?.to_string();
    let tracking = placed["tracking_url"].as_str().ok_or("tracking_url")?.to_string();
    let (status, tracked) = call(&http, base, None, Method::GET, &tracking, None).await?;
    assert_eq!(status, StatusCode::OK, "{tracked}");
    assert_eq!(tracked["order_id"], a_order.as_str());
    assert!(tracked.get("client_ip").is_none() && tracked.get("shipping_address").is_none(), "{tracked}");
    assert!(tracked.get("risk_score").is_none(), "{tracked}");
    let forged = format!("{}0", &tracking[..tracking.len() - 1]);
    let forged = if forged == tracking { format!("{}1", &tracking[..tracking.len() - 1]) } else { forged };
    assert_eq!(call(&http, base, None, Method::GET, &forged, None).await?.0, StatusCode::NOT_FOUND);
    let stream = http.get(format!("{base}{tracking}/stream")).header("accept", "text/event-stream").send().await?;
    assert_eq!(stream.status(), StatusCode::OK);
    drop(stream);

    // The matrix: each role, each kind of route. Allowed means neither 401
    // nor 403; refused means 403 `forbidden`.
    let order_path = format!("/api/orders/{a_order}");
    let routes: Vec<(Method, String, Option<Value>, [bool; 6])> = vec![
        //                                                         admin  shopA  shopB  analyst pii   viewer
        (Method::POST, "/api/orders".into(), Some(order("m")), [true, true, true, false, false, false]),
        (Method::GET, order_path.clone(), None, [true, true, true, false, false, false]),
        (Method::GET, format!("{order_path}/events"), None, [true, true, true, false, false, false]),
        (Method::GET, "/api/orders?customer_id=cust-a".into(), None, [true, false, false, false, false, false]),
        (Method::GET, "/api/products".into(), None, [true, true, true, true, true, true]),
        (Method::GET, "/api/whoami".into(), None, [true, true, true, true, true, true]),
        (
            Method::POST,
            "/api/sql".into(),
            Some(json!({"sql": "SELECT 1 AS one"})),
            [true, false, false, true, true, false],
        ),
        (Method::GET, "/api/sql/tables".into(), None, [true, false, false, true, true, false]),
        (Method::GET, "/api/dashboard/summary".into(), None, [true, false, false, true, true, true]),
        (Method::GET, "/api/analytics/inventory".into(), None, [true, false, false, true, true, true]),
        (Method::GET, "/api/dashboard/fraud-queue".into(), None, [true, false, false, false, false, false]),
        (Method::GET, "/api/admin/dlq".into(), None, [true, false, false, false, false, false]),
        (Method::GET, "/api/admin/orders".into(), None, [true, false, false, false, false, false]),
        (
            Method::PUT,
            "/api/admin/products/p-1/stock".into(),
            Some(json!({"delta": 0})),
            [true, false, false, false, false, false],
        ),
    ];
    let roles = [&keys.admin, &keys.shop_a, &keys.shop_b, &keys.analyst, &keys.analyst_pii, &keys.viewer];
    for (method, path, body, allowed) in &routes {
        for (key, allowed) in roles.iter().zip(allowed) {
            let (status, answer) = call(&http, base, Some(key), method.clone(), path, body.clone()).await?;
            if *allowed {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{method} {path} with {}: {status} {answer}",
                    &key[..8]
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
                assert_eq!(answer["error"], "forbidden");
            }
        }
    }

    // Scope: another producer's order is not found, for reading and cancelling.
    let (status, _) = call(&http, base, Some(&keys.shop_b), Method::GET, &order_path, None).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let cancel = format!("{order_path}/cancel");
    assert_eq!(call(&http, base, Some(&keys.shop_b), Method::POST, &cancel, None).await?.0, StatusCode::NOT_FOUND);
    let (status, own) = call(&http, base, Some(&keys.shop_a), Method::GET, &order_path, None).await?;
    assert_eq!((status, own["order_id"].as_str()), (StatusCode::OK, Some(a_order.as_str())));

    // Idempotency keys are each producer's own.
    let idem = |key: &str, customer: &str| {
        http.post(format!("{base}/api/orders"))
            .bearer_auth(key)
            .header("idempotency-key", "checkout-1")
            .json(&order(customer))
            .send()
    };
    let a1 = idem(&keys.shop_a, "idem-a").await?;
    let b1 = idem(&keys.shop_b, "idem-b").await?;
    assert_eq!((a1.status(), b1.status()), (StatusCode::ACCEPTED, StatusCode::ACCEPTED), "no collision");
    let (a1, b1): (Value, Value) = (a1.json().await?, b1.json().await?);
    assert_ne!(a1["order_id"], b1["order_id"]);
    let a2 = idem(&keys.shop_a, "idem-a").await?;
    assert_eq!(a2.status(), StatusCode::OK);
    assert_eq!(a2.json::<Value>().await?["order_id"], a1["order_id"], "the same producer replays its order");
    assert_eq!(idem(&keys.shop_a, "someone-else").await?.status(), StatusCode::CONFLICT, "its own key, reused");

    // The tracking link expires.
    tokio::time::sleep(Duration::from_secs(TRACKING_TTL_SECS + 1)).await;
    let (status, gone) = call(&http, base, None, Method::GET, &tracking, None).await?;
    assert_eq!((status, gone["error"].as_str()), (StatusCode::GONE, Some("link_expired")), "{gone}");

    // PII: masked for the analyst, shown with the grant (and to admins).
    let count = json!({"sql": "SELECT count(*) AS n, count(client_ip) AS ips, count(city) AS cities FROM orders"});
    until("the orders in the lake", || async {
        let (status, got) = call(&http, base, Some(&keys.admin), Method::POST, "/api/sql", Some(count.clone())).await?;
        Ok(status == StatusCode::OK && got["rows"][0]["ips"].as_i64().unwrap_or(0) >= 3)
    })
    .await?;
    let (_, masked) = call(&http, base, Some(&keys.analyst), Method::POST, "/api/sql", Some(count.clone())).await?;
    let row = &masked["rows"][0];
    assert!(row["n"].as_i64().unwrap_or(0) >= 3, "{masked}");
    assert_eq!((row["ips"].as_i64(), row["cities"].as_i64()), (Some(0), Some(0)), "{masked}");
    assert_eq!(masked["pii_masked"], true);
    let (_, shown) = call(&http, base, Some(&keys.analyst_pii), Method::POST, "/api/sql", Some(count.clone())).await?;
    assert!(shown["rows"][0]["ips"].as_i64().unwrap_or(0) >= 3, "{shown}");
    assert_eq!(shown["pii_masked"], false);
    let select = json!({"sql": "SELECT client_ip FROM orders WHERE client_ip = '203.0.113.7'"});
    let (_, filtered) = call(&http, base, Some(&keys.analyst), Method::POST, "/api/sql", Some(select)).await?;
    assert_eq!(filtered["row_count"], 0, "a filter cannot recover a masked value: {filtered}");

    // Admin actions are recorded with the key that made them, and only
    // admins read the record; key changes from the CLI too.
    let (status, audit) = call(&http, base, Some(&keys.admin), Method::GET, "/api/admin/audit", None).await?;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let actions = audit["actions"].as_array().ok_or("actions")?;
    let stock = actions.iter().find(|a| a["action"] == "stock").ok_or_else(|| format!("no stock action: {audit}"))?;
    assert!(stock["actor"].as_str().unwrap_or_default().starts_with("ops ("), "{stock}");
    assert_eq!(stock["target"], "PUT /api/admin/products/p-1/stock");
    assert!(actions.iter().any(|a| a["action"] == "key_create" && a["actor"] == "cli"), "{audit}");
    assert!(
        actions.iter().all(|a| a["actor"].as_str().is_some_and(|actor| !actor.starts_with("ana"))),
        "refused requests change nothing and are not actions"
    );
    let (status, _) = call(&http, base, Some(&keys.viewer), Method::GET, "/api/admin/audit", None).await?;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Revoked: refused everywhere, within the watch's delay.
    let listed = up.keys(&["list"]).await?;
    assert!(listed.contains("wall") && listed.contains("viewer"), "{listed}");
    up.keys(&["revoke", "wall"]).await?;
    until("the revocation", || async {
        Ok(call(&http, base, Some(&keys.viewer), Method::GET, "/api/dashboard/summary", None).await?.0
            == StatusCode::UNAUTHORIZED)
    })
    .await?;
    assert!(up.keys(&["revoke", "wall"]).await.is_err(), "already revoked");

    // `orderstream sql` reads the files (no key), read-only unless asked.
    let lake = up.data.path().join("lake");
    let sql = |args: &[&str]| {
        let mut command = tokio::process::Command::new(common::BIN);
        command.arg("sql").args(args).arg("--data").arg(&lake);
        command.output()
    };
    let write = "CREATE EXTERNAL TABLE leak STORED AS CSV LOCATION '/etc/hostname'";
    let refused = sql(&[write]).await?;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--allow-writes"), "{refused:?}");
    assert!(sql(&[write, "--allow-writes"]).await?.status.success(), "the operator may");
    let read = sql(&["SELECT count(client_ip) AS ips FROM orders", "--format", "json"]).await?;
    assert!(read.status.success(), "{read:?}");
    up.stop().await
}
