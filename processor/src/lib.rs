//! The order processor: every order's saga exactly once. A deterministic
//! engine applies the ORDERS log in order (fraud screen, reservation, payment
//! answers, fulfilment steps, cancellations, reviews, stock changes), workers
//! on every instance do the slow steps, and an HTTP API serves live status.

pub mod api;
pub mod audit;
pub mod catalog;
pub mod commands;
pub mod dlq;
pub mod engine;
pub mod kvscan;
pub mod metrics;
pub mod resume;
pub mod runner;
pub mod workers;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinSet;

use broker::{BrokerError, TopologySettings, ensure_topology};

pub use api::{ApiSettings, ApiState, routes};
pub use engine::{EngineConfig, Pricing};
pub use metrics::Metrics;
pub use runner::RunnerSettings;
pub use workers::{Role, WorkerSettings};

#[derive(Debug, Error)]
pub enum ProcessorError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("cannot {what}: {message}")]
    Nats { what: &'static str, message: String },
    /// A stored snapshot that cannot be read back.
    #[error("engine snapshot: {0}")]
    Snapshot(String),
    /// A value that cannot be written as JSON (an event, a view, a snapshot).
    #[error("cannot encode {what} as JSON: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The ORDERS consumer stopped delivering without an error.
    #[error("the {0} consumer ended")]
    ConsumerEnded(&'static str),
    /// One of the processor's tasks panicked or was cancelled.
    #[error("a processor task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("lost the engine lease: {0}")]
    LeaseLost(String),
}

#[derive(Clone, Debug)]
pub struct ProcessorConfig {
    pub runner: RunnerSettings,
    pub workers: WorkerSettings,
    /// Where the engine reports whether it leads, stands by or fails.
    pub health: server::health::Health,
}

impl ProcessorConfig {
    pub fn new(instance: impl Into<String>) -> Self {
        ProcessorConfig {
            runner: RunnerSettings {
                engine: EngineConfig::default(),
                snapshot_every: RunnerSettings::DEFAULT_SNAPSHOT_EVERY,
                max_batch: 2000,
                instance: instance.into(),
            },
            workers: WorkerSettings::default(),
            health: server::health::Health::new(),
        }
    }
}

/// A running processor: the engine runner (leading or standing by) and the
/// payment and fulfilment workers, until `shutdown` turns true.
pub struct Processor {
    pub metrics: Arc<Metrics>,
    pub health: server::health::Health,
    tasks: JoinSet<Result<(), ProcessorError>>,
}

impl Processor {
    pub async fn start(
        client: async_nats::Client,
        config: ProcessorConfig,
        topology: &TopologySettings,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Processor, ProcessorError> {
        let js = jetstream::new(client);
        ensure_topology(&js, topology).await?;
        let metrics = Metrics::new();
        let mut tasks = JoinSet::new();
        let runner = runner::Runner {
            js: js.clone(),
            settings: config.runner.clone(),
            metrics: metrics.clone(),
            health: config.health.clone(),
        };
        tasks.spawn(runner.run(shutdown.clone()));
        for role in Role::ALL {
            let worker =
                workers::Worker { js: js.clone(), settings: config.workers.clone(), metrics: metrics.clone(), role };
            tasks.spawn(worker.run(shutdown.clone()));
        }
        tasks.spawn(sample_queues(js, metrics.clone(), shutdown));
        Ok(Processor { metrics, health: config.health, tasks })
    }

    /// Waits for every task to finish (after shutdown), returning the first error.
    pub async fn join(mut self) -> Result<(), ProcessorError> {
        let mut first = Ok(());
        while let Some(done) = self.tasks.join_next().await {
            let result = done.unwrap_or_else(|e| Err(ProcessorError::Task(e)));
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}

/// Every two seconds: queue depth per consumer, the engine's lag, DLQ size.
async fn sample_queues(
    js: jetstream::Context,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ProcessorError> {
    use async_nats::jetstream::consumer::pull;
    loop {
        if runner::wait_or_shutdown(&mut shutdown, Duration::from_secs(2)).await {
            return Ok(());
        }
        if let Ok(events) = js.get_stream_no_info(broker::ORDER_EVENTS_STREAM).await {
            for role in Role::ALL {
                let name = role.durable();
                if let Ok(mut consumer) = events.get_consumer::<pull::Config>(name).await
                    && let Ok(info) = consumer.info().await
                {
                    let labels = metrics::ConsumerLabels { consumer: name.to_string() };
                    metrics.consumer_pending.get_or_create(&labels).set(info.num_pending as i64);
                    metrics.consumer_ack_pending.get_or_create(&labels).set(info.num_ack_pending as i64);
                }
            }
        }
        if let Ok(mut dlq) = js.get_stream(broker::DLQ_STREAM).await
            && let Ok(info) = dlq.info().await
        {
            metrics.dlq_messages.set(info.state.messages as i64);
        }
        let position = match js.get_key_value(broker::LEASE_BUCKET).await {
            Ok(lease) => match lease.get(runner::LEASE_KEY).await {
                Ok(Some(bytes)) => {
                    serde_json::from_slice::<schemas::records::LeaseValue>(&bytes).map(|l| l.position).ok()
                }
                _ => None,
            },
            Err(_) => None,
        };
        if let (Some(position), Ok(mut orders)) = (position, js.get_stream(broker::ORDERS_STREAM).await)
            && let Ok(info) = orders.info().await
        {
            let lag = info.state.last_sequence.saturating_sub(position);
            metrics.engine_lag.set(lag as i64);
            let labels = metrics::ConsumerLabels { consumer: "engine".to_string() };
            metrics.consumer_pending.get_or_create(&labels).set(lag as i64);
        }
    }
}
