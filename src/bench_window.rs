//! `orderstream bench window`: the windowed-aggregation engine alone (the
//! pipelines' operator, DataFusion evaluation and Parquet output) over rows
//! already in Parquet — the input the PySpark Structured Streaming
//! comparison reads (docs/benchmarks.md). Reading and decoding the input
//! files is inside the timing, as it is for Spark.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use arrow::array::RecordBatch;
use clap::Args;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use schemas::tables::Table;

use analytics::AnalyticsError;
use analytics::job::{JobSettings, StreamJob};
use analytics::parquet_out::{FileLayout, sort_rows};
use analytics::pipeline::PipelineSpec;
use analytics::source::Source;
use analytics::store::DataStore;

#[derive(Args, Debug, Clone)]
pub struct BenchWindowArgs {
    /// Where the input table is (a directory or a store URL).
    #[arg(long)]
    pub input: String,
    /// Where the pipeline outputs go; must be empty.
    #[arg(long)]
    pub output: String,
    /// Pipeline directory (all reading one table); default: the shipped
    /// `revenue_by_category_1m`.
    #[arg(long)]
    pub pipelines: Option<PathBuf>,
    /// Times to run, each into its own `run-N` under `--output` when more
    /// than one; the median is printed last. A single run is at the mercy
    /// of whatever else the machine does just then (page cache, huge-page
    /// compaction after a JVM exits).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
}

pub async fn bench_window(args: BenchWindowArgs) -> Result<()> {
    let specs = match &args.pipelines {
        Some(_) => crate::analytics_cli::pipelines(&args.pipelines)?,
        None => {
            crate::analytics_cli::pipelines(&None)?.into_iter().filter(|p| p.name == "revenue_by_category_1m").collect()
        }
    };
    let input = DataStore::open(&args.input)?;
    let root = DataStore::open(&args.output)?;
    if !root.table_names().await?.is_empty() {
        anyhow::bail!("{} is not empty", root.url());
    }
    let mut rates = Vec::new();
    for run in 1..=args.runs {
        let output = match args.runs {
            1 => root.clone(),
            _ => DataStore::open(&format!("{}/run-{run}", args.output.trim_end_matches('/')))?,
        };
        let report = window_from_parquet(&input, &output, &specs).await?;
        let secs = report.elapsed.as_secs_f64();
        let rate = report.input_rows as f64 / secs.max(1e-9);
        rates.push(rate);
        println!(
            "window bench: {} rows from {} files through {} pipeline(s) in {:.2} s = {:.0} rows/s ({} windows, {} rows written)",
            report.input_rows,
            report.input_files,
            specs.len(),
            secs,
            rate,
            report.windows_emitted,
            report.rows_written
        );
    }
    if rates.len() > 1 {
        rates.sort_by(f64::total_cmp);
        let mid = rates.len() / 2;
        let median = if rates.len() % 2 == 1 { rates[mid] } else { (rates[mid - 1] + rates[mid]) / 2.0 };
        println!("window bench: median of {} runs = {median:.0} rows/s", rates.len());
    }
    Ok(())
}

#[derive(Clone, Debug, Default)]
pub struct WindowBenchReport {
    pub input_rows: u64,
    pub input_files: u64,
    pub windows_emitted: u64,
    pub rows_written: u64,
    pub elapsed: Duration,
}

/// Feeds `input`'s table (the pipelines' source) to the pipelines in
/// stream order — one batch per micro-batch file name, as the job wrote
/// them — and writes their outputs to `output`.
pub async fn window_from_parquet(
    input: &DataStore,
    output: &DataStore,
    specs: &[Arc<PipelineSpec>],
) -> Result<WindowBenchReport, AnalyticsError> {
    let config = |message: String| AnalyticsError::Config { what: "bench window", message };
    let table = match specs.first().map(|s| s.source) {
        Some(t) if specs.iter().all(|s| s.source == t) => t,
        Some(_) => return Err(config("every pipeline must read the same table".into())),
        None => return Err(config("no pipeline to run".into())),
    };
    let source = match table {
        Table::Orders | Table::OrderItems => Source::Orders,
        Table::OrderEvents => Source::Events,
        other => return Err(config(format!("pipelines cannot read {}", other.name()))),
    };
    // A micro-batch file's name is its sequence range, the same in every
    // date partition: grouping by name restores the stream's batches.
    let mut batches: BTreeMap<String, Vec<object_store::path::Path>> = BTreeMap::new();
    for meta in input.list(&input.path(table.name())).await? {
        if let Some(name) = meta.location.filename().filter(|n| n.ends_with(".parquet")) {
            batches.entry(name.to_string()).or_default().push(meta.location.clone());
        }
    }
    if batches.is_empty() {
        return Err(config(format!("no Parquet files under {}", input.table_url(table.name()))));
    }
    let mut job = StreamJob::open(output.clone(), source, specs, JobSettings::fixed_range()).await?;
    // Only the columns the pipelines keep are decoded (Spark prunes its
    // Parquet reads to the query's columns too).
    let columns = job.pipeline_columns(table);
    let views = job.pipeline_view_columns(table);
    let mut report = WindowBenchReport::default();
    let started = Instant::now();
    // Reading and decoding run one batch ahead on their own task, as the
    // live job's JetStream reader does, so both cores work.
    let (to_job, mut batches_in) = tokio::sync::mpsc::channel(1);
    let reader_store = input.clone();
    let reader = tokio::spawn(async move {
        for mut files in batches.into_values() {
            // Date order: a time-ordered stream's parts then need no sort.
            files.sort();
            let mut blobs = Vec::new();
            for path in &files {
                blobs.extend(reader_store.get(path).await?);
            }
            let (columns, views) = (columns.clone(), views.clone());
            let decoded = tokio::task::spawn_blocking(move || decode_batch(&blobs, &columns, &views))
                .await
                .map_err(|e| AnalyticsError::task("bench reader", e))??;
            if to_job.send(decoded).await.is_err() {
                break; // the job stopped on an error of its own
            }
        }
        Ok::<_, AnalyticsError>(())
    });
    while let Some((files, rows)) = batches_in.recv().await {
        report.input_files += files;
        let Some((first, last)) = seq_range(&rows) else { continue };
        if first == 0 {
            // Seeded files carry no stream position: windows would have no
            // order to close in, and the job would skip them as replayed.
            return Err(config("rows without a stream_seq: use a table the analytics job or a replay wrote".into()));
        }
        report.input_rows += rows.num_rows() as u64;
        job.process_rows(first, last, &[(table, rows)]).await?;
    }
    reader.await.map_err(|e| AnalyticsError::task("bench reader", e))??;
    job.finish().await?;
    report.elapsed = started.elapsed();
    report.windows_emitted = job.stats.windows_emitted;
    report.rows_written = job.stats.rows_written;
    Ok(report)
}

/// One micro-batch's files (one per date partition), decoded to the
/// pipelines' columns (`views` among them as string views) and put back in
/// stream order.
fn decode_batch(
    files: &[bytes::Bytes],
    columns: &[String],
    views: &[String],
) -> Result<(u64, RecordBatch), AnalyticsError> {
    let mut parts = Vec::new();
    for bytes in files {
        // The footer is parsed once; the schema hint only retypes columns.
        let stored = ArrowReaderMetadata::load(bytes, ArrowReaderOptions::new())?;
        let fields: Vec<arrow::datatypes::Field> = stored
            .schema()
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                arrow::datatypes::DataType::Utf8 if views.contains(f.name()) => {
                    f.as_ref().clone().with_data_type(arrow::datatypes::DataType::Utf8View)
                }
                _ => f.as_ref().clone(),
            })
            .collect();
        let options = ArrowReaderOptions::new().with_schema(Arc::new(arrow::datatypes::Schema::new(fields)));
        let hinted = ArrowReaderMetadata::try_new(Arc::clone(stored.metadata()), options)?;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes.clone(), hinted);
        let roots: Vec<usize> = reader
            .schema()
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| columns.contains(f.name()))
            .map(|(i, _)| i)
            .collect();
        let mask = ProjectionMask::roots(reader.parquet_schema(), roots);
        // The whole file as one batch: the reader's default 1,024-row
        // batches would each be copied again to put the file together.
        let rows = usize::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0).max(1);
        for batch in reader.with_projection(mask).with_batch_size(rows).build()? {
            parts.push(batch?);
        }
    }
    let schema = match parts.first() {
        Some(part) => part.schema(),
        None => Arc::new(arrow::datatypes::Schema::empty()),
    };
    let rows = sort_rows(&schema, &parts, &FileLayout::new(&["stream_seq"], &[]))?;
    Ok((files.len() as u64, rows))
}

fn seq_range(rows: &RecordBatch) -> Option<(u64, u64)> {
    use arrow::array::AsArray;
    let seqs = rows.column_by_name("stream_seq")?.as_primitive_opt::<arrow::datatypes::Int64Type>()?;
    let min = arrow::compute::min(seqs)?;
    let max = arrow::compute::max(seqs)?;
    Some((min as u64, max as u64))
}
