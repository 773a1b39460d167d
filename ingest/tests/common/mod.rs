//! Runs the real ingest router against a real, temporary `nats-server`.

use std::time::Duration;

use async_nats::jetstream;
use broker::{NatsServer, ORDERS_STREAM, TopologySettings};
use ingest::{AppState, IngestConfig};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub struct TestIngest {
    pub nats: NatsServer,
    pub base: String,
    pub http: reqwest::Client,
    pub js: jetstream::Context,
    pub state: AppState,
    _shutdown: oneshot::Sender<()>,
}

impl TestIngest {
    pub async fn start() -> Result<TestIngest, Box<dyn std::error::Error>> {
        let nats = NatsServer::start_temporary().await?;
        let client = broker::connect(&nats.url(), "ingest-test").await?;
        let config = IngestConfig { publish_timeout: Duration::from_millis(500), ..IngestConfig::default() };
        let state = ingest::build_state(client.clone(), config, &TopologySettings::default()).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = oneshot::channel::<()>();
        let router = ingest::router(state.clone());
        tokio::spawn(server::serve(listener, router, async move {
            let _ = rx.await;
        }));
        Ok(TestIngest { nats, base, http: reqwest::Client::new(), js: jetstream::new(client), state, _shutdown: tx })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, body: &Value, key: Option<&str>) -> reqwest::Result<reqwest::Response> {
        let mut request = self.http.post(self.url("/api/orders")).json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await
    }

    /// Messages in the ORDERS stream: what was really stored.
    pub async fn stored_orders(&self) -> Result<u64, Box<dyn std::error::Error>> {
        Ok(self.js.get_stream(ORDERS_STREAM).await?.info().await?.state.messages)
    }
}

pub fn order(customer: &str) -> Value {
    json!({
        "customer_id": customer,
        "items": [
            {"product_id": "sku-1", "quantity": 2, "unit_price": 19.99},
            {"product_id": "sku-2", "quantity": 1, "unit_price": "5.50"}
        ],
        "currency": "USD",
        "payment_method": "card",
        "client_ip": "203.0.113.7"
    })
}
