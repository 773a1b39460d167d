//! `orderstream replay`: rebuilds the base tables and every pipeline's
//! output from JetStream history into a fresh location. Batches are cut by
//! count alone and every window is closed at the end of the range, so two
//! replays of one range write identical rows (and identical file names).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use broker::{ReaderOptions, StreamReader};
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::AnalyticsError;
use crate::decode::{DecodedBatch, decode_batch};
use crate::job::{JobSettings, StreamJob};
use crate::pipeline::PipelineSpec;
use crate::source::Source;
use crate::store::DataStore;

#[derive(Clone, Debug)]
pub enum ReplayStart {
    Seq(u64),
    Time(DateTime<Utc>),
}

#[derive(Clone, Debug)]
pub struct ReplaySettings {
    pub start: ReplayStart,
    /// Inclusive; default: the stream's last sequence when the replay starts.
    pub to_seq: Option<u64>,
    pub batch_size: usize,
    pub progress: bool,
    /// TLS and credentials for the readers' own connections.
    pub auth: broker::NatsAuth,
}

#[derive(Clone, Debug, Default)]
pub struct ReplayReport {
    pub stream: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub messages: u64,
    pub rows_written: u64,
    pub windows_emitted: u64,
    pub late_rows: u64,
    pub elapsed: Duration,
}

/// Replays both streams into `store`, side by side: they share nothing
/// (each has its own tables, pipelines and checkpoint), so each gets a core.
/// `js` serves the catalog and creates the consumers; the messages arrive
/// through a [`StreamReader`] per stream, connected to `nats_urls`.
pub async fn replay(
    js: &jetstream::Context,
    nats_urls: &str,
    store: &DataStore,
    pipelines: &[Arc<PipelineSpec>],
    settings: &ReplaySettings,
) -> Result<Vec<ReplayReport>, AnalyticsError> {
    let bars = settings.progress.then(indicatif::MultiProgress::new);
    let mut runs: Vec<_> = Source::ALL
        .into_iter()
        .map(|source| {
            let (js, store, pipelines, settings) = (js.clone(), store.clone(), pipelines.to_vec(), settings.clone());
            let (bars, urls) = (bars.clone(), nats_urls.to_string());
            tokio::spawn(async move {
                replay_stream(&js, &urls, &store, &pipelines, source, &settings, bars.as_ref()).await
            })
        })
        .collect();
    let mut reports = Vec::new();
    for i in 0..runs.len() {
        match (&mut runs[i]).await.map_err(|e| AnalyticsError::task("replay a stream", e)).and_then(|r| r) {
            Ok(report) => reports.push(report),
            Err(e) => {
                // The other stream stops too: the replay as a whole failed.
                runs[i + 1..].iter().for_each(|other| other.abort());
                return Err(e);
            }
        }
    }
    Ok(reports)
}

async fn replay_stream(
    js: &jetstream::Context,
    nats_urls: &str,
    store: &DataStore,
    pipelines: &[Arc<PipelineSpec>],
    source: Source,
    settings: &ReplaySettings,
    bars: Option<&indicatif::MultiProgress>,
) -> Result<ReplayReport, AnalyticsError> {
    let started = Instant::now();
    let mut stream = js.get_stream(source.stream()).await.map_err(|e| AnalyticsError::nats("open the stream", e))?;
    let info = stream.info().await.map_err(|e| AnalyticsError::nats("read the stream's state", e))?;
    let last_in_stream = info.state.last_sequence;
    let to_seq = settings.to_seq.unwrap_or(last_in_stream).min(last_in_stream);
    let mut job =
        StreamJob::open(store.clone(), source, pipelines, JobSettings::fixed_range()).await?.with_catalog(js.clone());
    let mut report = ReplayReport { stream: source.stream().to_string(), ..ReplayReport::default() };
    let deliver_policy = match &settings.start {
        ReplayStart::Seq(seq) => {
            consumer::DeliverPolicy::ByStartSequence { start_sequence: (*seq).max(job.start_seq()) }
        }
        ReplayStart::Time(_) if job.start_seq() > 1 => {
            consumer::DeliverPolicy::ByStartSequence { start_sequence: job.start_seq() }
        }
        ReplayStart::Time(at) => consumer::DeliverPolicy::ByStartTime { start_time: *at },
    };
    let options = ReaderOptions {
        auth: settings.auth.clone(),
        ..ReaderOptions::new(source.stream(), source.filter_subject(), deliver_policy)
    };
    let reader = StreamReader::open(js.clone(), nats_urls, options)
        .await
        .map_err(|e| AnalyticsError::nats("open the replay's stream reader", e))?;
    let pending = reader.pending();
    let bar = progress_bar(settings.progress, pending, source.stream()).map(|bar| match bars {
        Some(bars) => bars.add(bar),
        None => bar,
    });
    if pending > 0 {
        // Three stages, each a batch ahead of the next: reading (its own
        // task), decoding (a task per batch), and the job. JetStream I/O and
        // JSON decoding overlap windowing and Parquet encoding.
        let (batches, mut ready) = tokio::sync::mpsc::channel::<ReadBatch>(2);
        let reader = tokio::spawn(read_batches(reader, to_seq, settings.batch_size, batches));
        let mut decoding = None;
        while let Some(read) = ready.recv().await {
            if report.first_seq == 0 {
                report.first_seq = read.messages.first().map_or(0, |m| m.0);
            }
            report.last_seq = read.messages.last().map_or(report.last_seq, |m| m.0);
            let next = tokio::spawn(async move {
                Ok::<_, AnalyticsError>((decode_batch(source, read.messages).await?, read.remaining))
            });
            if let Some(previous) = decoding.replace(next) {
                apply_decoded(&mut job, previous, bar.as_ref(), pending).await?;
            }
        }
        if let Some(last) = decoding {
            apply_decoded(&mut job, last, bar.as_ref(), pending).await?;
        }
        reader.await.map_err(|e| AnalyticsError::task("read the stream", e))??.close().await;
    } else {
        reader.close().await;
    }
    job.finish().await?;
    if let Some(bar) = bar {
        bar.finish();
    }
    report.messages = job.stats.messages;
    report.rows_written = job.stats.rows_written;
    report.windows_emitted = job.stats.windows_emitted;
    report.late_rows = job.stats.late_rows;
    report.elapsed = started.elapsed();
    Ok(report)
}

type Decoding = tokio::task::JoinHandle<Result<(Option<DecodedBatch>, u64), AnalyticsError>>;

/// Applies a batch once it is decoded; shows how many messages are left.
async fn apply_decoded(
    job: &mut StreamJob,
    decoding: Decoding,
    bar: Option<&indicatif::ProgressBar>,
    pending: u64,
) -> Result<(), AnalyticsError> {
    let (batch, remaining) = decoding.await.map_err(|e| AnalyticsError::task("decode a batch", e))??;
    if let Some(batch) = batch {
        job.process_decoded(batch).await?;
    }
    if let Some(bar) = bar {
        bar.set_position(pending.saturating_sub(remaining));
    }
    Ok(())
}

struct ReadBatch {
    messages: Vec<(u64, Bytes)>,
    /// Messages left in the stream after this batch.
    remaining: u64,
}

/// Reads `batch_size`-message batches up to `to_seq` into `out`; hands the
/// reader back to be closed.
async fn read_batches(
    mut reader: StreamReader,
    to_seq: u64,
    batch_size: usize,
    out: tokio::sync::mpsc::Sender<ReadBatch>,
) -> Result<StreamReader, AnalyticsError> {
    let mut batch = Vec::with_capacity(batch_size);
    let mut remaining;
    loop {
        let delivery = reader.next().await.map_err(|e| AnalyticsError::nats("read the stream", e))?;
        remaining = delivery.pending;
        let seq = delivery.stream_seq;
        if seq > to_seq {
            break;
        }
        batch.push((seq, delivery.payload));
        let end = remaining == 0 || seq == to_seq;
        if batch.len() >= batch_size || end {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
            if out.send(ReadBatch { messages: full, remaining }).await.is_err() {
                return Ok(reader); // processing stopped; its error is reported there
            }
        }
        if end {
            break;
        }
    }
    if !batch.is_empty() {
        let _ = out.send(ReadBatch { messages: batch, remaining }).await;
    }
    Ok(reader)
}

pub fn progress_bar(enabled: bool, total: u64, label: &str) -> Option<indicatif::ProgressBar> {
    if !enabled {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template("{msg:>14} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.set_message(label.to_string());
    Some(bar)
}
