//! A whole pipeline for processor tests: a real nats-server, the real
//! ingest API, and processors, plus a tail of ORDER_EVENTS that tallies what
//! happened to every order.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use broker::{NatsServer, ORDER_EVENTS_STREAM, TopologySettings};
use futures::StreamExt;
use processor::{Processor, ProcessorConfig};
use schemas::{CancelReason, EventPayload, OrderEvent, OrderStatus};
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// An HTTP client that sends `Authorization: Bearer <key>` on every request.
pub fn bearer_client(key: &str) -> Result<reqwest::Client, Error> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {key}").parse()?);
    Ok(reqwest::Client::builder().default_headers(headers).build()?)
}

pub struct Pipeline {
    pub nats: NatsServer,
    pub topology: TopologySettings,
    pub js: jetstream::Context,
    pub base: String,
    pub http: reqwest::Client,
    _ingest_shutdown: oneshot::Sender<()>,
}

impl Pipeline {
    pub async fn start() -> Result<Pipeline, Error> {
        Pipeline::start_with(TopologySettings::default()).await
    }

    /// A pipeline whose streams are created with `topology` (a short dedup
    /// window, say).
    pub async fn start_with(topology: TopologySettings) -> Result<Pipeline, Error> {
        let nats = NatsServer::start_temporary().await?;
        let client = broker::connect(&nats.url(), "pipeline-test").await?;
        let state = ingest::build_state(client.clone(), ingest::IngestConfig::default(), &topology).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(server::serve(listener, ingest::router(state), async move {
            let _ = rx.await;
        }));
        Ok(Pipeline {
            nats,
            topology,
            js: jetstream::new(client),
            base,
            http: reqwest::Client::new(),
            _ingest_shutdown: tx,
        })
    }

    /// A processor instance; dropping the sender stops it.
    pub async fn processor(
        &self,
        name: &str,
        tune: impl FnOnce(&mut ProcessorConfig),
    ) -> Result<(Processor, watch::Sender<bool>), Error> {
        let client = broker::connect(&self.nats.url(), name).await?;
        let mut config = ProcessorConfig::new(name);
        config.workers.payment_latency = Duration::ZERO;
        config.workers.fulfilment_delays = None;
        config.workers.payment_failure_rate = 0.0;
        tune(&mut config);
        let (tx, rx) = watch::channel(false);
        let processor = Processor::start(client, config, &self.topology, rx).await?;
        Ok((processor, tx))
    }

    /// Serves the processor API on a free port behind the API keys (open
    /// while none exists); returns its base URL.
    pub async fn api(&self, processor: &Processor, settings: processor::ApiSettings) -> Result<String, Error> {
        self.api_with_admin_token(processor, settings, None).await
    }

    /// [`Pipeline::api`] with an `--admin-token` (which turns keys on).
    pub async fn api_with_admin_token(
        &self,
        processor: &Processor,
        settings: processor::ApiSettings,
        admin_token: Option<&str>,
    ) -> Result<String, Error> {
        let client = broker::connect(&self.nats.url(), "api-test").await?;
        let js = jetstream::new(client.clone());
        let keyring = access::Keyring::open(&js, admin_token, server::health::Health::new()).await?;
        let state = processor::ApiState::open(client, settings, processor.metrics.clone()).await?;
        let gate = access::Gate { keyring, limiter: None, audit: None };
        let router = access::protect(processor::routes(state).fallback(server::http::not_found_route), gate, &[]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(base)
    }

    pub async fn set_stock(&self, product: &str, quantity: u64) -> Result<u64, Error> {
        Ok(processor::commands::send_stock_command(
            &self.js,
            product,
            schemas::StockChange::Set { quantity },
            &format!("init-{product}-{quantity}"),
            None,
            None,
        )
        .await?)
    }

    /// POSTs an order at 10.00 a unit; returns (order id, stream seq).
    pub async fn order(&self, customer: &str, items: &[(&str, u32)]) -> Result<(Uuid, u64), Error> {
        self.order_priced(customer, items, "10.00").await
    }

    pub async fn order_priced(
        &self,
        customer: &str,
        items: &[(&str, u32)],
        unit_price: &str,
    ) -> Result<(Uuid, u64), Error> {
        let items: Vec<_> = items
            .iter()
            .map(|(p, q)| serde_json::json!({"product_id": p, "quantity": q, "unit_price": unit_price}))
            .collect();
        let body = serde_json::json!({"customer_id": customer, "items": items});
        let res = self.http.post(format!("{}/api/orders", self.base)).json(&body).send().await?;
        if res.status() != 202 {
            return Err(format!("order not accepted: {}", res.status()).into());
        }
        let accepted: schemas::OrderAccepted = res.json().await?;
        Ok((accepted.order_id, accepted.stream_seq))
    }
}

/// What ORDER_EVENTS says happened to each order, counting every message.
#[derive(Default)]
pub struct Tally {
    pub statuses: HashMap<Uuid, Vec<OrderStatus>>,
    pub reasons: HashMap<Uuid, CancelReason>,
    pub event_counts: HashMap<String, u32>,
    pub refunds: HashMap<Uuid, u32>,
}

impl Tally {
    pub fn last(&self, id: &Uuid) -> Option<OrderStatus> {
        self.statuses.get(id).and_then(|s| s.last().copied())
    }

    pub fn terminal(&self) -> usize {
        self.statuses.values().filter(|s| s.last().is_some_and(|s| s.is_terminal())).count()
    }

    pub fn duplicates(&self) -> Vec<(&String, &u32)> {
        self.event_counts.iter().filter(|(_, n)| **n > 1).collect()
    }
}

/// Reads every ORDER_EVENTS message (an ordered consumer from the start)
/// into a shared tally, in the background.
pub async fn tail_events(js: &jetstream::Context) -> Result<Arc<Mutex<Tally>>, Error> {
    let stream = js.get_stream(ORDER_EVENTS_STREAM).await?;
    let consumer = stream.create_consumer(consumer::pull::OrderedConfig::default()).await?;
    let mut messages = consumer.messages().await?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let shared = tally.clone();
    tokio::spawn(async move {
        while let Some(Ok(message)) = messages.next().await {
            let Ok(event) = serde_json::from_slice::<OrderEvent>(&message.payload) else { continue };
            let mut t = shared.lock().unwrap_or_else(|e| e.into_inner());
            *t.event_counts.entry(event.event_id.clone()).or_default() += 1;
            match event.payload {
                EventPayload::StatusChanged { to, reason, .. } => {
                    t.statuses.entry(event.order_id).or_default().push(to);
                    if let Some(reason) = reason {
                        t.reasons.insert(event.order_id, reason);
                    }
                }
                EventPayload::RefundIssued { .. } => *t.refunds.entry(event.order_id).or_default() += 1,
                EventPayload::CommandRejected { .. } => {}
            }
        }
    });
    Ok(tally)
}

/// Polls until `done` holds for the tally, or fails after `limit`.
pub async fn wait_for(
    tally: &Arc<Mutex<Tally>>,
    limit: Duration,
    what: &str,
    done: impl Fn(&Tally) -> bool,
) -> Result<Duration, Error> {
    let started = Instant::now();
    loop {
        if done(&tally.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            let t = tally.lock().unwrap_or_else(|e| e.into_inner());
            return Err(format!(
                "timed out waiting for {what}: {} orders seen, {} terminal",
                t.statuses.len(),
                t.terminal()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The STOCK bucket's level for a product.
pub async fn stock_level(js: &jetstream::Context, product: &str) -> Result<schemas::StockLevel, Error> {
    let kv = js.get_key_value(broker::STOCK_BUCKET).await?;
    let entry = kv.get(broker::kv_key(product)).await?.ok_or("no stock entry")?;
    let entry: schemas::records::StockEntry = serde_json::from_slice(&entry)?;
    Ok(entry.level)
}
