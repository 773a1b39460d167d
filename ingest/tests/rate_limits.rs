//! Rate limits shared by two ingest instances over one real nats-server:
//! a customer's orders per minute, and a producer key's requests per
//! minute, each counted in NATS so the second instance knows what the first
//! allowed. Over the limit: `429` JSON with `Retry-After` and `RateLimit-*`.

use std::time::Duration;

use broker::{NatsServer, TopologySettings};
use ingest::IngestConfig;
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// An ingest instance behind the API keys, on its own port; returns its URL.
async fn instance(nats: &NatsServer, config: IngestConfig) -> Result<String, Box<dyn std::error::Error>> {
    let client = broker::connect(&nats.url(), "rate-limit-test").await?;
    let js = async_nats::jetstream::new(client.clone());
    let state = ingest::build_state(client, config, &TopologySettings::default()).await?;
    let keyring = access::Keyring::open(&js, None, state.health.clone()).await?;
    let gate = access::Gate { keyring, limiter: Some(access::RateLimiter::open(&js).await?), audit: None };
    let router = access::protect(ingest::router(state), gate, &[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(server::serve(listener, router, std::future::pending()));
    Ok(base)
}

fn order(customer: &str) -> Value {
    json!({"customer_id": customer, "items": [{"product_id": "sku-1", "quantity": 1, "unit_price": "5.00"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_across_two_instances() -> TestResult {
    let nats = NatsServer::start_temporary().await?;
    let config = IngestConfig { customer_rate_limit: Some(3), ..IngestConfig::default() };
    let (a, b) = (instance(&nats, config.clone()).await?, instance(&nats, config).await?);
    let http = reqwest::Client::new();

    // Three checkout attempts per customer per minute, wherever they land.
    for (n, base) in [&a, &b, &a].into_iter().enumerate() {
        let res = http.post(format!("{base}/api/orders")).json(&order("alice")).send().await?;
        assert_eq!(res.status(), 202, "attempt {}", n + 1);
    }
    let refused = http.post(format!("{b}/api/orders")).json(&order("alice")).send().await?;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(refused.headers()["ratelimit-limit"], "3");
    assert_eq!(refused.headers()["ratelimit-remaining"], "0");
    let body: Value = refused.json().await?;
    assert_eq!((body["error"].as_str(), body["field"].as_str()), (Some("rate_limited"), Some("customer_id")));
    // Another customer is not limited; in a batch the limit is per order.
    assert_eq!(http.post(format!("{b}/api/orders")).json(&order("bob")).send().await?.status(), 202);
    let batch = json!({"orders": [order("alice"), order("carol")]});
    let batch: Value = http.post(format!("{a}/api/orders/batch")).json(&batch).send().await?.json().await?;
    assert_eq!(
        (batch["results"][0]["status"].as_u64(), batch["results"][1]["status"].as_u64()),
        (Some(429), Some(202))
    );

    // A producer key with its own limit of 4 a minute, across both.
    let js = async_nats::jetstream::new(broker::connect(&nats.url(), "keys").await?);
    let keys = js.get_key_value(broker::API_KEYS_BUCKET).await?;
    let shop = access::create_key(&keys, Some("shop"), access::Role::Producer, vec![], Some(4)).await?.secret;
    let post = |base: &str, customer: String| {
        http.post(format!("{base}/api/orders")).bearer_auth(&shop).json(&order(&customer)).send()
    };
    // The instances follow the bucket: wait until they know the key.
    for _ in 0..100 {
        if http.post(format!("{a}/api/orders")).json(&order("x")).send().await?.status() == 401
            && http.post(format!("{b}/api/orders")).json(&order("x")).send().await?.status() == 401
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for n in 0..4 {
        let res = post(if n % 2 == 0 { &a } else { &b }, format!("k{n}")).await?;
        assert_eq!(res.status(), 202, "request {}", n + 1);
        // (Less when the window straddles a minute: the previous one weighs in.)
        let remaining: u32 = res.headers()["ratelimit-remaining"].to_str()?.parse()?;
        assert!(remaining <= 3 - n, "{remaining} left after {}", n + 1);
    }
    let over = post(&b, "k5".into()).await?;
    assert_eq!(over.status(), 429);
    assert!(over.headers().contains_key("retry-after"));
    assert_eq!(over.json::<Value>().await?["field"], "Authorization");
    Ok(())
}
