//! Order exports as CSV. `GET /api/admin/orders/export?<search filters>`
//! answers at once with up to 10,000 rows (`x-truncated` says when more
//! matched); `POST /api/admin/exports {<search filters>}` starts a
//! background job for any size, written a day at a time to
//! `<export dir>/<id>.csv` (a `.part` file until complete), polled at
//! `/api/admin/exports/{id}` and downloaded from its `download_url`.
//! Jobs live in memory; a finished file survives a restart.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;
use server::http::Path;
use server::http::{HttpError, json_body};
use tokio::io::AsyncWriteExt;

use crate::search::{ExportPlan, SearchQuery};
use crate::sql_api::{Encoder, Format};
use crate::{Dashboard, DashboardError};

/// Rows the immediate export answers at most.
pub const IMMEDIATE_ROWS: usize = 10_000;

/// Where a background export stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportState {
    Running,
    Done,
    Failed,
    /// Stopped while running.
    Cancelled,
    /// Its file removed after it finished.
    Deleted,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ExportJob {
    pub id: String,
    pub status: ExportState,
    pub rows: u64,
    pub bytes: u64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub download_url: Option<String>,
}

pub struct Exports {
    dir: PathBuf,
    jobs: Mutex<HashMap<String, ExportJob>>,
    /// The running jobs' tasks, to cancel them.
    tasks: Mutex<HashMap<String, tokio::task::AbortHandle>>,
}

impl Exports {
    pub fn new(dir: PathBuf) -> Exports {
        Exports { dir, jobs: Mutex::new(HashMap::new()), tasks: Mutex::new(HashMap::new()) }
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, HashMap<String, tokio::task::AbortHandle>> {
        self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ExportJob>> {
        self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.csv"))
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut ExportJob)) {
        if let Some(job) = self.lock().get_mut(id) {
            f(job);
        }
    }

    /// A job by id: in memory, or a finished file from before a restart.
    fn get(&self, id: &str) -> Option<ExportJob> {
        if let Some(job) = self.lock().get(id) {
            return Some(job.clone());
        }
        let meta = std::fs::metadata(self.file(id)).ok()?;
        let finished = meta.modified().ok().map(DateTime::<Utc>::from).unwrap_or_else(Utc::now);
        Some(ExportJob {
            id: id.to_string(),
            status: ExportState::Done,
            rows: 0,
            bytes: meta.len(),
            started_at: finished,
            finished_at: Some(finished),
            error: None,
            download_url: Some(download_url(id)),
        })
    }
}

fn download_url(id: &str) -> String {
    format!("/api/admin/exports/{id}/download")
}

/// `GET /api/admin/orders/export`: the first 10,000 matching rows as CSV.
#[utoipa::path(
    get, path = "/api/admin/orders/export", tag = "admin",
    responses((status = 200, description = "the first 10,000 matching orders as CSV (x-row-count, x-truncated)", content_type = "text/csv"), (status = 400, body = schemas::ApiError))
)]
pub async fn export_csv(
    State(state): State<Dashboard>,
    crate::params::Q(q): crate::params::Q<SearchQuery>,
) -> Result<Response, HttpError> {
    let plan = ExportPlan::parse(q)?;
    let mut encoder: Option<Encoder> = None;
    let mut out = Vec::new();
    let mut rows = 0usize;
    let mut truncated = false;
    let days = if plan.by_day() { plan.days(&state).await?.into_iter().map(Some).collect() } else { vec![None] };
    let mut schema = None;
    for day in days {
        let collected = state
            .lake
            .collect(
                &plan.sql(day, Some(IMMEDIATE_ROWS + 1 - rows)),
                IMMEDIATE_ROWS - rows,
                state.settings.query_timeout,
            )
            .await?;
        let enc = match encoder.as_mut() {
            Some(e) => e,
            None => encoder.insert(Encoder::new(Format::Csv, &collected.schema)?),
        };
        schema.get_or_insert(collected.schema.clone());
        for batch in &collected.batches {
            out.extend(enc.batch(batch)?);
        }
        rows += collected.rows;
        if collected.truncated || rows >= IMMEDIATE_ROWS {
            truncated = collected.truncated || rows >= IMMEDIATE_ROWS;
            break;
        }
    }
    if let (Some(enc), Some(schema)) = (encoder, schema) {
        out.extend(enc.finish(&schema)?);
    }
    let mut response = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"orders.csv\""));
    headers.insert("x-row-count", HeaderValue::from(rows));
    headers.insert("x-truncated", HeaderValue::from_static(if truncated { "true" } else { "false" }));
    Ok(response)
}

/// `POST /api/admin/exports`: starts a background export of every match.
#[utoipa::path(
    post, path = "/api/admin/exports", tag = "admin",
    responses((status = 202, description = "a background export of every match: its job and status_url", body = ExportJob), (status = 400, body = schemas::ApiError))
)]
pub async fn start(State(state): State<Dashboard>, headers: HeaderMap, body: Body) -> Result<Response, HttpError> {
    let q: SearchQuery = json_body(&headers, body, state.settings.max_body_bytes).await?;
    let plan = ExportPlan::parse(q)?;
    tokio::fs::create_dir_all(&state.exports.dir)
        .await
        .map_err(|e| DashboardError::Export(format!("cannot create {}: {e}", state.exports.dir.display())))?;
    let id = uuid::Uuid::now_v7().to_string();
    let job = ExportJob {
        id: id.clone(),
        status: ExportState::Running,
        rows: 0,
        bytes: 0,
        started_at: Utc::now(),
        finished_at: None,
        error: None,
        download_url: None,
    };
    state.exports.lock().insert(id.clone(), job.clone());
    let runner = state.clone();
    let job_id = id.clone();
    let running = state.lake.running();
    let task = state.lake.spawn(async move {
        let _running = running;
        let deadline = runner.settings.export_timeout;
        let result = tokio::time::timeout(deadline, run(&runner, &job_id, plan)).await;
        let outcome = match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("the export ran past its {} s limit", deadline.as_secs())),
        };
        let part = runner.exports.file(&job_id).with_extension("csv.part");
        let finished = match outcome {
            Ok(()) => tokio::fs::rename(&part, runner.exports.file(&job_id)).await.map_err(|e| e.to_string()),
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                Err(e)
            }
        };
        runner.exports.update(&job_id, |job| {
            job.finished_at = Some(Utc::now());
            match finished {
                Ok(()) => {
                    job.status = ExportState::Done;
                    job.download_url = Some(download_url(&job.id));
                }
                Err(e) => {
                    job.status = ExportState::Failed;
                    job.error = Some(e);
                }
            }
        });
        runner.exports.tasks().remove(&job_id);
    });
    state.exports.tasks().insert(id.clone(), task.abort_handle());
    let mut response = (
        StatusCode::ACCEPTED,
        Json(json!({
            "id": id,
            "status": ExportState::Running,
            "status_url": format!("/api/admin/exports/{id}"),
        })),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/admin/exports/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Writes every matching row, a day at a time, to the job's `.part` file.
async fn run(state: &Dashboard, id: &str, plan: ExportPlan) -> Result<(), DashboardError> {
    let io = |e: std::io::Error| DashboardError::Export(e.to_string());
    let part = state.exports.file(id).with_extension("csv.part");
    let mut file = tokio::io::BufWriter::new(tokio::fs::File::create(&part).await.map_err(io)?);
    let days = if plan.by_day() { plan.days(state).await?.into_iter().map(Some).collect() } else { vec![None] };
    let mut encoder: Option<Encoder> = None;
    let mut schema = None;
    for day in days {
        let mut stream = state.lake.stream(&plan.sql(day, None)).await?;
        let enc = match encoder.as_mut() {
            Some(e) => e,
            None => encoder.insert(Encoder::new(Format::Csv, &stream.schema())?),
        };
        schema.get_or_insert(stream.schema());
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            let bytes = enc.batch(&batch)?;
            file.write_all(&bytes).await.map_err(io)?;
            let (rows, len) = (batch.num_rows() as u64, bytes.len() as u64);
            state.exports.update(id, |job| {
                job.rows += rows;
                job.bytes += len;
            });
        }
    }
    if let (Some(enc), Some(schema)) = (encoder, schema) {
        let tail = enc.finish(&schema)?;
        file.write_all(&tail).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    file.into_inner().sync_all().await.map_err(io)?;
    Ok(())
}

fn checked_id(id: &str) -> Result<String, HttpError> {
    uuid::Uuid::parse_str(id).map(|u| u.to_string()).map_err(|_| HttpError::bad_id("id"))
}

#[utoipa::path(
    get, path = "/api/admin/exports/{id}", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 200, body = ExportJob), (status = 404, body = schemas::ApiError))
)]
pub async fn status(State(state): State<Dashboard>, Path(id): Path<String>) -> Result<Json<ExportJob>, HttpError> {
    let id = checked_id(&id)?;
    state.exports.get(&id).map(Json).ok_or_else(|| HttpError::not_found("export"))
}

/// `DELETE /api/admin/exports/{id}`: stops a running export (its query
/// with it) or removes a finished one's file.
#[utoipa::path(
    delete, path = "/api/admin/exports/{id}", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 200, body = ExportJob), (status = 404, body = schemas::ApiError))
)]
pub async fn cancel(State(state): State<Dashboard>, Path(id): Path<String>) -> Result<Json<ExportJob>, HttpError> {
    let id = checked_id(&id)?;
    let mut job = state.exports.get(&id).ok_or_else(|| HttpError::not_found("export"))?;
    if let Some(task) = state.exports.tasks().remove(&id) {
        task.abort();
    }
    let part = state.exports.file(&id).with_extension("csv.part");
    let _ = tokio::fs::remove_file(&part).await;
    let _ = tokio::fs::remove_file(state.exports.file(&id)).await;
    job.status = if job.status == ExportState::Running { ExportState::Cancelled } else { ExportState::Deleted };
    job.finished_at.get_or_insert_with(Utc::now);
    job.download_url = None;
    state.exports.lock().insert(id, job.clone());
    Ok(Json(job))
}

#[utoipa::path(
    get, path = "/api/admin/exports", tag = "admin",
    responses((status = 200, body = ExportList))
)]
pub async fn list(State(state): State<Dashboard>) -> Json<ExportList> {
    let mut exports: Vec<ExportJob> = state.exports.lock().values().cloned().collect();
    exports.sort_by_key(|job| std::cmp::Reverse(job.started_at));
    Json(ExportList { exports })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ExportList {
    pub exports: Vec<ExportJob>,
}

/// Streams a finished export from disk.
#[utoipa::path(
    get, path = "/api/admin/exports/{id}/download", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 200, description = "the finished export", content_type = "text/csv"), (status = 404, body = schemas::ApiError))
)]
pub async fn download(State(state): State<Dashboard>, Path(id): Path<String>) -> Result<Response, HttpError> {
    let id = checked_id(&id)?;
    let job = state.exports.get(&id).ok_or_else(|| HttpError::not_found("export"))?;
    if job.status != ExportState::Done {
        return Err(HttpError::conflict(
            "export_not_ready",
            format!("the export is {}", format!("{:?}", job.status).to_lowercase()),
        ));
    }
    let path = state.exports.file(&id);
    let file = tokio::fs::File::open(&path).await.map_err(|_| HttpError::not_found("export"))?;
    let stream = futures::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let mut response = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], Body::from_stream(stream)).into_response();
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"orders-{id}.csv\"")) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}
