//! `orderstream analytics`: one [`StreamJob`] per input stream, each fed by
//! a durable pull consumer (`analytics-orders`, `analytics-events`, so its
//! lag shows in NATS and on the dashboard). Micro-batches are bounded by
//! size and by time; a batch is acknowledged only after it is committed.
//! The checkpoint in the data store is the source of truth: at start the
//! consumer is re-created at the checkpoint's sequence.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::watch;

use crate::AnalyticsError;
use crate::job::{JobSettings, Source, StreamJob};
use crate::pipeline::PipelineSpec;
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
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            job: JobSettings::default(),
            batch_max: 10_000,
            batch_wait: Duration::from_millis(500),
            idle_after: Duration::from_secs(2),
            compact_every: Duration::from_secs(60),
        }
    }
}

/// Runs both stream jobs until `stop` is set.
pub async fn run(
    js: jetstream::Context,
    store: DataStore,
    pipelines: Vec<Arc<PipelineSpec>>,
    settings: LiveSettings,
    stop: watch::Receiver<bool>,
) -> Result<(), AnalyticsError> {
    let mut tasks = tokio::task::JoinSet::new();
    for source in Source::ALL {
        let job =
            StreamJob::open(store.clone(), source, &pipelines, settings.job.clone()).await?.with_catalog(js.clone());
        tasks.spawn(run_stream(js.clone(), job, settings.clone(), stop.clone()));
    }
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(AnalyticsError::nats("run a stream job", e)),
        }
    }
    Ok(())
}

async fn consumer_at(
    js: &jetstream::Context,
    source: Source,
    start_seq: u64,
    settings: &LiveSettings,
) -> Result<consumer::PullConsumer, AnalyticsError> {
    let stream = js.get_stream(source.stream()).await.map_err(|e| AnalyticsError::nats("open the stream", e))?;
    // The checkpoint decides where reading resumes, not the consumer's state.
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
    settings: LiveSettings,
    mut stop: watch::Receiver<bool>,
) -> Result<(), AnalyticsError> {
    let source = job.source;
    let mut last_seen = job.start_seq().saturating_sub(1);
    let mut last_message_at = Instant::now();
    let mut last_compaction = Instant::now();
    'connect: loop {
        let consumer = match consumer_at(&js, source, last_seen + 1, &settings).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(stream = source.stream(), error = %e, "analytics consumer unavailable; retrying");
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
            } else {
                // Committed before it is acknowledged: a live batch does
                // not wait for the next one to commit.
                job.process(std::mem::take(&mut batch)).await?;
                job.settle().await?;
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
