//! No request can crash, hang or answer outside the contract: every route
//! of `orderstream up` (ingest, processor, dashboard) is sent generated
//! path segments and query strings (unicode, percent-encoded bytes that
//! are not UTF-8, control characters, huge numbers). Every answer must be
//! a status below 500 (or 503) with a JSON body naming the error, within
//! a few seconds; a panic would drop the connection.

mod common;

use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

use common::TestResult;

/// A value for a path segment or a query parameter, percent-encoded or raw.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>().prop_map(|s| percent(&s)),
        "[a-zA-Z0-9._~:-]{0,40}",
        Just("%FF%FE".to_string()),
        Just("a%C3%A9b".to_string()),
        Just("%C3%28".to_string()),
        Just("18446744073709551616".to_string()),
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("%00%01%1F".to_string()),
        Just("0195f3a1-7b52-7c2d-9a4f-4c3f1b2a8e11".to_string()),
        Just("2026-13-45".to_string()),
        Just("true".to_string()),
        "[0-9a-f]{2,64}",
        Just("x".repeat(5_000)),
    ]
}

fn percent(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// GET routes with the parameters each takes; `{}` is a path segment.
const GETS: &[(&str, &[&str])] = &[
    ("/api/orders/{}", &[]),
    ("/api/orders/{}/events", &[]),
    ("/api/orders/{}/stream", &[]),
    ("/api/orders", &["customer_id", "status", "limit", "cursor"]),
    ("/api/products", &["category", "low_stock", "page", "page_size"]),
    ("/api/admin/dlq", &["limit"]),
    ("/api/ws/orders", &["order_id", "customer_id"]),
    (
        "/api/admin/orders",
        &[
            "status",
            "from",
            "to",
            "min_total",
            "max_total",
            "customer_id",
            "product_id",
            "q",
            "sort",
            "page_size",
            "cursor",
        ],
    ),
    ("/api/admin/orders/export", &["status", "from", "to", "sort", "cursor"]),
    ("/api/admin/orders/{}/detail", &[]),
    ("/api/admin/exports/{}", &[]),
    ("/api/admin/exports/{}/download", &[]),
    ("/api/dashboard/summary", &["date", "currency"]),
    ("/api/dashboard/revenue", &["from", "to", "window", "currency", "category", "limit"]),
    ("/api/dashboard/heatmap", &["from", "to", "window", "currency"]),
    ("/api/dashboard/top-products", &["from", "to", "limit", "currency", "category"]),
    ("/api/dashboard/funnel", &["from", "to"]),
    ("/api/dashboard/fraud-queue", &["days", "limit"]),
    ("/api/dashboard/low-stock", &["limit"]),
    ("/api/dashboard/ws", &[]),
    ("/api/sql/tables", &[]),
];

/// POST routes (with an empty JSON object body) that take a path segment.
const POSTS: &[&str] = &["/api/orders/{}/cancel", "/api/admin/orders/{}/review", "/api/admin/dlq/{}/retry"];

async fn check(http: &reqwest::Client, method: reqwest::Method, url: &str) -> Result<(), String> {
    let request = http.request(method.clone(), url).header("content-type", "application/json").body("{}");
    let res = tokio::time::timeout(Duration::from_secs(15), request.send())
        .await
        .map_err(|_| format!("{method} {url}: no answer within 15 s"))?
        .map_err(|e| format!("{method} {url}: {e} (a panic drops the connection)"))?;
    let status = res.status().as_u16();
    let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    if content_type.starts_with("text/event-stream") {
        return Err(format!("{method} {url}: streams events for an order that does not exist"));
    }
    let body = tokio::time::timeout(Duration::from_secs(15), res.bytes())
        .await
        .map_err(|_| format!("{method} {url}: the body never ended"))?
        .map_err(|e| format!("{method} {url}: {e}"))?;
    if status >= 500 && status != 503 {
        return Err(format!("{method} {url}: {status} {}", String::from_utf8_lossy(&body)));
    }
    if status >= 400 {
        let json: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
            format!("{method} {url}: {status} with a body that is not JSON: {:?}", String::from_utf8_lossy(&body))
        })?;
        if !json["error"].is_string() || !json["message"].is_string() {
            return Err(format!("{method} {url}: {status} JSON without error and message: {json}"));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_generated_input_with_json_and_no_5xx() -> TestResult {
    let cases: u32 = std::env::var("ROBUSTNESS_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let up = common::start(&[]).await?;
    up.import_catalog("product_id,name,category,unit_price,stock\nsku-1,One,cat,9.99,5\n").await?;
    let http = reqwest::Client::new();
    let mut runner = TestRunner::new(Config { cases, ..Config::default() });
    let values = prop::collection::vec((0usize..12, value()), 0..5);
    let mut failures = Vec::new();
    for _ in 0..cases {
        let segment = value().new_tree(&mut runner).map_err(|e| e.to_string())?.current();
        let params = values.new_tree(&mut runner).map_err(|e| e.to_string())?.current();
        for (template, names) in GETS {
            let mut url = format!("{}{}", up.base, template.replace("{}", &segment));
            let query: Vec<String> = params
                .iter()
                .filter(|_| !names.is_empty())
                .map(|(i, v)| format!("{}={v}", names[i % names.len()]))
                .collect();
            if !query.is_empty() {
                url = format!("{url}?{}", query.join("&"));
            }
            if let Err(e) = check(&http, reqwest::Method::GET, &url).await {
                failures.push(e);
            }
        }
        for template in POSTS {
            let url = format!("{}{}", up.base, template.replace("{}", &segment));
            if let Err(e) = check(&http, reqwest::Method::POST, &url).await {
                failures.push(e);
            }
        }
    }
    failures.sort();
    failures.dedup();
    let alive = http.get(format!("{}/healthz", up.base)).send().await?.status();
    assert_eq!(alive, 200, "the process survived");
    assert!(
        failures.is_empty(),
        "{} failures, e.g.:\n{}\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n"),
        up.log_tail()
    );
    up.stop().await
}
