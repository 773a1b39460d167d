//! `orderstream analytics`: one [`StreamJob`] per input stream, each fed by
//! a durable pull consumer (`analytics-orders`, `analytics-events`, so its
//! lag shows in NATS and on the dashboard). Micro-batches are bounded by
//! size and by time; a batch is acknowledged only after it is committed.
//! The checkpoint in the data store is the source of truth: at start the
//! consumer is re-created at the checkpoint's sequence.
//!
//! One job runs per system: it holds the analytics lease
//! ([`broker::ANALYTICS_LEASE_KEY`]) and owns those consumers; another
//! instance stands by and never touches them. A stream job that fails (the
//! lake unwritable, NATS gone) is reported failing in [`Health`] and
//! restarted from its checkpoint with backoff until the cause clears.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use broker::{ANALYTICS_LEASE_KEY, LEASE_RENEW_EVERY, Lease, Taken};
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use server::health::Health;
use tokio::sync::watch;

use crate::AnalyticsError;
use crate::job::{JobSettings, StreamJob};
use crate::pipeline::PipelineSpec;
use crate::source::Source;
use crate::store::DataStore;

#[derive(Clone, Debug)]
pub struct LiveSettings {
    pub job: JobSettings,
    /// Most messages per micro-batch.
    pub batch_max: usize,
    /// Longest a micro-batch waits to fill once its first message arrived.
    pub batch_wait: Duration,
    /// No input this long: pipelines' event time moves on with the clock.
    pub idle_after: Duration,
    pub compact_every: Duration,
    /// First wait before a failed stream job starts again (doubling to `retry_max`).
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// Where each stream job reports its state.
    pub health: Health,
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            job: JobSettings::default(),
            batch_max: 10_000,
            batch_wait: Duration::from_millis(500),
            idle_after: Duration::from_secs(2),
            compact_every: Duration::from_secs(60),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
            health: Health::new(),
        }
    }
}

/// The name a stream job reports its health under.
pub fn health_name(source: Source) -> String {
    format!("analytics.{}", source.name())
}

/// Who holds the analytics lease: shown to the instances standing by.
#[derive(Serialize, Deserialize)]
struct Holder {
    pid: u32,
    lake: String,
}

/// Runs both stream jobs whenever this instance holds the analytics lease,
/// until `stop` is set.
pub async fn run(
    js: jetstream::Context,
    store: DataStore,
    pipelines: Vec<Arc<PipelineSpec>>,
    settings: LiveSettings,
    mut stop: watch::Receiver<bool>,
) -> Result<(), AnalyticsError> {
    let holder = Holder { pid: std::process::id(), lake: store.url().to_string() };
    let value = Bytes::from(serde_json::to_vec(&holder).unwrap_or_default());
    let report = |state: fn(&Health, &str, String), detail: String| {
        for source in Source::ALL {
            state(&settings.health, &health_name(source), detail.clone());
        }
    };
    report(Health::standby_owned, "waiting for the analytics lease".into());
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        match Lease::take(&js, ANALYTICS_LEASE_KEY, value.clone()).await {
            Ok(Taken::Held(lease)) => {
                tracing::info!(lake = %holder.lake, "leading the analytics job");
                lead(&js, &store, &pipelines, &settings, lease, &stop).await;
            }
            Ok(Taken::ByOther(other)) => {
                let other = serde_json::from_slice::<Holder>(&other)
                    .map(|h| format!("process {} writing {}", h.pid, h.lake))
                    .unwrap_or_else(|_| "another instance".into());
                report(Health::standby_owned, format!("{other} runs the analytics job; standing by"));
            }
            Err(e) => report(Health::failing_owned, format!("{e}; retrying")),
        }
        tokio::select! {
            () = tokio::time::sleep(LEASE_RENEW_EVERY) => {}
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
    }
}

/// Both stream jobs while the lease holds: renewed every second; lost, the
/// jobs stop (checkpointing) and this instance stands by again.
async fn lead(
    js: &jetstream::Context,
    store: &DataStore,
    pipelines: &[Arc<PipelineSpec>],
    settings: &LiveSettings,
    mut lease: Box<Lease>,
    stop: &watch::Receiver<bool>,
) {
    let (lead_tx, lead_stop) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for source in Source::ALL {
        let (js, store, pipelines, settings) = (js.clone(), store.clone(), pipelines.to_vec(), settings.clone());
        tasks.spawn(supervise(js, store, source, pipelines, settings, lead_stop.clone()));
    }
    let mut outer = stop.clone();
    let mut renew = tokio::time::interval(LEASE_RENEW_EVERY);
    let mut lost = false;
    loop {
        tokio::select! {
            _ = renew.tick() => {
                if let Err(e) = lease.renew().await {
                    tracing::warn!(error = %e, "analytics lease lost; stopping the jobs");
                    lost = true;
                    let _ = lead_tx.send(true);
                    break;
                }
            }
            () = async { let _ = outer.wait_for(|s| *s).await; } => {
                let _ = lead_tx.send(true);
                break;
            }
            None = tasks.join_next() => break,
        }
    }
    // The jobs checkpoint as they stop; renew meanwhile so nobody else
    // starts on the same consumers.
    loop {
        tokio::select! {
            done = tasks.join_next() => if done.is_none() { break },
            _ = renew.tick(), if !lost => lost = lease.renew().await.is_err(),
        }
    }
    if !lost {
        lease.release().await;
    }
}

/// One stream job, restarted from its checkpoint with backoff after every
/// failure until `stop` is set.
async fn supervise(
    js: jetstream::Context,
    store: DataStore,
    source: Source,
    pipelines: Vec<Arc<PipelineSpec>>,
    settings: LiveSettings,
    mut stop: watch::Receiver<bool>,
) {
    let name = health_name(source);
    let mut backoff = settings.retry_min;
    loop {
        if *stop.borrow() {
            return;
        }
        let started = Instant::now();
        let opened = StreamJob::open(store.clone(), source, &pipelines, settings.job.clone()).await;
        let result = match opened {
            Ok(job) => run_stream(js.clone(), job.with_catalog(js.clone()), &settings, stop.clone()).await,
            Err(e) => Err(e),
        };
        let error = match result {
            Ok(()) => return,
            Err(e) => e,
        };
        if started.elapsed() > settings.retry_max {
            backoff = settings.retry_min; // it had been working: a new episode
        }
        tracing::error!(stream = source.stream(), error = %error, retry_in = ?backoff, "analytics job failed; restarting from its checkpoint");
        settings.health.failing(&name, format!("{error}; restarting from the checkpoint in {} s", backoff.as_secs()));
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        backoff = (backoff * 2).min(settings.retry_max);
    }
}

async fn consumer_at(
    js: &jetstream::Context,
    source: Source,
    start_seq: u64,
    settings: &LiveSettings,
) -> Result<consumer::PullConsumer, AnalyticsError> {
    let stream = js.get_stream(source.stream()).await.map_err(|e| AnalyticsError::nats("open the stream", e))?;
    // Only the lease holder gets here: the consumer is its own, and the
    // checkpoint decides where reading resumes, not the consumer's state.
    let _ = stream.delete_consumer(source.consumer()).await;
    let config = consumer::pull::Config {
        durable_name: Some(source.consumer().to_string()),
        filter_subject: source.filter_subject().to_string(),
        deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: start_seq.max(1) },
        ack_policy: consumer::AckPolicy::All,
        ack_wait: Duration::from_secs(300),
        max_ack_pending: (settings.batch_max * 4) as i64,
        ..Default::default()
    };
    stream.create_consumer(config).await.map_err(|e| AnalyticsError::nats("create the analytics consumer", e))
}

async fn run_stream(
    js: jetstream::Context,
    mut job: StreamJob,
    settings: &LiveSettings,
    mut stop: watch::Receiver<bool>,
) -> Result<(), AnalyticsError> {
    let source = job.source;
    let name = health_name(source);
    let mut last_seen = job.start_seq().saturating_sub(1);
    let mut last_message_at = Instant::now();
    let mut last_compaction = Instant::now();
    'connect: loop {
        let consumer = match consumer_at(&js, source, last_seen + 1, settings).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(stream = source.stream(), error = %e, "analytics consumer unavailable; retrying");
                settings.health.failing(&name, format!("{e}; retrying"));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue 'connect,
                    _ = stop.wait_for(|s| *s) => break 'connect,
                }
            }
        };
        let mut messages = match consumer.messages().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(stream = source.stream(), error = %e, "cannot read; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue 'connect;
            }
        };
        loop {
            let mut batch: Vec<(u64, Bytes)> = Vec::new();
            let mut last_message = None;
            let mut deadline = tokio::time::Instant::now() + settings.idle_after;
            while batch.len() < settings.batch_max {
                let next = tokio::select! {
                    next = tokio::time::timeout_at(deadline, messages.next()) => next,
                    _ = stop.wait_for(|s| *s) => break,
                };
                match next {
                    Err(_elapsed) => break,
                    Ok(None) => continue 'connect,
                    Ok(Some(Err(e))) => {
                        tracing::warn!(stream = source.stream(), error = %e, "consumer error; reconnecting");
                        if !batch.is_empty() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue 'connect;
                    }
                    Ok(Some(Ok(message))) => {
                        let Ok(seq) = message.info().map(|i| i.stream_sequence) else { continue };
                        if seq <= last_seen {
                            continue; // a redelivery of what is already applied
                        }
                        last_seen = seq;
                        if batch.is_empty() {
                            deadline = tokio::time::Instant::now() + settings.batch_wait;
                        }
                        batch.push((seq, message.payload.clone()));
                        last_message = Some(message);
                    }
                }
            }
            if *stop.borrow() {
                if !batch.is_empty() {
                    job.process(std::mem::take(&mut batch)).await?;
                }
                job.checkpoint_now().await?;
                return Ok(());
            }
            if batch.is_empty() {
                job.idle(last_message_at.elapsed()).await?;
                settings.health.ok(&name, "up to date");
            } else {
                // Committed before it is acknowledged: a live batch does
                // not wait for the next one to commit.
                job.process(std::mem::take(&mut batch)).await?;
                job.settle().await?;
                settings.health.ok(&name, format!("committed through sequence {}", job.committed_seq()));
                last_message_at = Instant::now();
                if let Some(message) = last_message
                    && let Err(e) = message.ack().await
                {
                    // The checkpoint already holds the batch; a redelivery is skipped.
                    tracing::debug!(error = %e, "ack failed");
                }
            }
            if last_compaction.elapsed() >= settings.compact_every {
                let merged = job.compact().await?;
                if merged > 0 {
                    tracing::info!(stream = source.stream(), merged, "compacted small files");
                }
                last_compaction = Instant::now();
            }
        }
    }
    job.checkpoint_now().await
}
