//! `POST /api/sql {sql, export?}`: a sandboxed query over the analytics
//! tables. JSON by default; CSV, Arrow IPC stream or Parquet by `Accept`.
//! A query answers at most `row_limit` rows (flagged `truncated`), unless it
//! is an export (`"export": true` with a non-JSON `Accept`), which streams
//! every row, batch by batch, within the export time limit; memory stays
//! within the pool whatever the table size.

use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::value::RawValue;
use server::http::{HttpError, json_body};

use crate::{Dashboard, DashboardError, sandbox};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    sql: String,
    #[serde(default)]
    export: bool,
}

/// What the caller asked for in `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Arrow,
    Parquet,
}

impl Format {
    pub fn from_accept(headers: &HeaderMap) -> Result<Format, HttpError> {
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
        for part in accept.split(',') {
            let media = part.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            let format = match media.as_str() {
                "application/json" | "*/*" | "application/*" | "" => Format::Json,
                "text/csv" => Format::Csv,
                "application/vnd.apache.arrow.stream" => Format::Arrow,
                "application/vnd.apache.parquet" | "application/x-parquet" => Format::Parquet,
                _ => continue,
            };
            return Ok(format);
        }
        Err(HttpError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            format!(
                "Accept {accept:?} is not served: use application/json, text/csv, \
                 application/vnd.apache.arrow.stream or application/vnd.apache.parquet"
            ),
        )
        .with_field("Accept"))
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Arrow => "application/vnd.apache.arrow.stream",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// Incremental encoders: each batch's bytes can go out as soon as it is read.
pub enum Encoder {
    Csv { header: bool },
    Arrow(Box<arrow::ipc::writer::StreamWriter<Vec<u8>>>),
    Parquet(Box<parquet::arrow::ArrowWriter<Vec<u8>>>),
}

impl Encoder {
    pub fn new(format: Format, schema: &SchemaRef) -> Result<Encoder, DashboardError> {
        let arrow = |e: arrow::error::ArrowError| DashboardError::Encode(e.to_string());
        Ok(match format {
            Format::Csv | Format::Json => Encoder::Csv { header: true },
            Format::Arrow => {
                Encoder::Arrow(Box::new(arrow::ipc::writer::StreamWriter::try_new(Vec::new(), schema).map_err(arrow)?))
            }
            Format::Parquet => Encoder::Parquet(Box::new(
                parquet::arrow::ArrowWriter::try_new(Vec::new(), schema.clone(), None)
                    .map_err(|e| DashboardError::Encode(e.to_string()))?,
            )),
        })
    }

    /// The bytes for `batch` (may be empty while Parquet fills a row group).
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, DashboardError> {
        let fail = |e: &dyn std::fmt::Display| DashboardError::Encode(e.to_string());
        match self {
            Encoder::Csv { header } => {
                let mut out = Vec::new();
                let mut writer = arrow::csv::WriterBuilder::new().with_header(*header).build(&mut out);
                writer.write(batch).map_err(|e| fail(&e))?;
                drop(writer);
                *header = false;
                Ok(out)
            }
            Encoder::Arrow(writer) => {
                writer.write(batch).map_err(|e| fail(&e))?;
                Ok(std::mem::take(writer.get_mut()))
            }
            Encoder::Parquet(writer) => {
                writer.write(batch).map_err(|e| fail(&e))?;
                Ok(std::mem::take(writer.inner_mut()))
            }
        }
    }

    /// The closing bytes (CSV's header when there were no rows; the IPC
    /// end marker; Parquet's footer).
    pub fn finish(self, schema: &SchemaRef) -> Result<Vec<u8>, DashboardError> {
        let fail = |e: &dyn std::fmt::Display| DashboardError::Encode(e.to_string());
        match self {
            Encoder::Csv { header: true } => {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                Ok(format!("{}\n", names.join(",")).into_bytes())
            }
            Encoder::Csv { header: false } => Ok(Vec::new()),
            Encoder::Arrow(mut writer) => {
                writer.finish().map_err(|e| fail(&e))?;
                Ok(std::mem::take(writer.get_mut()))
            }
            Encoder::Parquet(writer) => writer.into_inner().map_err(|e| fail(&e)),
        }
    }
}

/// Batches as one JSON array of row objects (`[]` for none).
pub fn json_array(batches: &[RecordBatch]) -> Result<Vec<u8>, DashboardError> {
    let mut out = Vec::new();
    let mut writer = arrow::json::ArrayWriter::new(&mut out);
    for batch in batches {
        writer.write(batch).map_err(|e| DashboardError::Encode(e.to_string()))?;
    }
    writer.finish().map_err(|e| DashboardError::Encode(e.to_string()))?;
    if out.is_empty() {
        out.extend_from_slice(b"[]");
    }
    Ok(out)
}

/// Says whether PII columns were masked (NULL) in the answer.
const PII_MASKED: &str = "x-pii-masked";

fn refusal(refusal: sandbox::Refusal) -> HttpError {
    HttpError::new(StatusCode::BAD_REQUEST, refusal.code(), refusal.to_string()).with_field("sql")
}

#[utoipa::path(
    post, path = "/api/sql", tag = "sql",
    responses((status = 200, description = "rows as JSON, CSV, NDJSON, Arrow IPC or Parquet by Accept (docs/dashboard.md)"), (status = 400, body = schemas::ApiError), (status = 422, body = schemas::ApiError), (status = 503, body = schemas::ApiError))
)]
pub async fn run(
    State(state): State<Dashboard>,
    caller: access::Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let sees_pii = caller.sees_pii();
    let format = Format::from_accept(&headers)?;
    let request: SqlRequest = json_body(&headers, body, state.settings.max_body_bytes).await?;
    state.lake.check(&request.sql).await.map_err(refusal)?;
    if request.export {
        if format == Format::Json {
            return Err(HttpError::new(
                StatusCode::BAD_REQUEST,
                "export_format",
                "an export streams CSV, Arrow or Parquet: set Accept accordingly",
            )
            .with_field("Accept"));
        }
        let mut response = export_stream(&state, &request.sql, format, sees_pii).await?;
        response.headers_mut().insert(PII_MASKED, HeaderValue::from_static(if sees_pii { "false" } else { "true" }));
        return Ok(response);
    }
    let limit = state.settings.row_limit;
    let collected = state.lake.collect_as(&request.sql, limit, state.settings.query_timeout, sees_pii).await?;
    let truncated = HeaderValue::from_static(if collected.truncated { "true" } else { "false" });
    let masked = HeaderValue::from_static(if sees_pii { "false" } else { "true" });
    if format == Format::Json {
        let rows = json_array(&collected.batches)?;
        let rows = RawValue::from_string(String::from_utf8_lossy(&rows).into_owned())
            .map_err(|e| DashboardError::Encode(e.to_string()))?;
        let columns: Vec<serde_json::Value> = collected
            .schema
            .fields()
            .iter()
            .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string()}))
            .collect();
        let mut response = Json(serde_json::json!({
            "columns": columns,
            "rows": rows,
            "row_count": collected.rows,
            "truncated": collected.truncated,
            "row_limit": limit,
            "pii_masked": !sees_pii,
            "elapsed_ms": collected.elapsed.as_secs_f64() * 1000.0,
        }))
        .into_response();
        response.headers_mut().insert("x-truncated", truncated);
        response.headers_mut().insert(PII_MASKED, masked);
        return Ok(response);
    }
    let mut encoder = Encoder::new(format, &collected.schema)?;
    let mut out = Vec::new();
    for batch in &collected.batches {
        out.extend(encoder.batch(batch)?);
    }
    out.extend(encoder.finish(&collected.schema)?);
    let mut response = ([(header::CONTENT_TYPE, format.content_type())], out).into_response();
    response.headers_mut().insert("x-truncated", truncated);
    response.headers_mut().insert(PII_MASKED, masked);
    response.headers_mut().insert("x-row-count", HeaderValue::from(collected.rows));
    Ok(response)
}

/// Streams every row of `sql` as it is read. The export time limit
/// covers it all; a failure or the limit mid-stream aborts the response,
/// so a client never mistakes a cut file for a whole one; a client that
/// goes away stops the query at once (its plan is dropped, which cancels
/// every task it spawned).
pub async fn export_stream(
    state: &Dashboard,
    sql: &str,
    format: Format,
    sees_pii: bool,
) -> Result<Response, HttpError> {
    let deadline = Instant::now() + state.settings.export_timeout;
    let running = state.lake.running();
    // Planned and started on the query runtime, so the tasks the plan
    // spawns run there too.
    let lake = state.lake.clone();
    let text = sql.to_string();
    let started = state.lake.spawn(async move { lake.stream_as(&text, sees_pii).await });
    let mut stream = match tokio::time::timeout(state.settings.query_timeout, started).await {
        Ok(Ok(stream)) => stream?,
        Ok(Err(source)) => return Err(DashboardError::Task { what: "the query", source }.into()),
        Err(_) => return Err(DashboardError::Timeout(state.settings.query_timeout).into()),
    };
    let schema = stream.schema();
    let mut encoder = Some(Encoder::new(format, &schema)?);
    let timeout = state.settings.export_timeout;
    let body = async_stream(&state.lake, move |tx| async move {
        let _running = running;
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout_at(deadline.into(), stream.next()) => next,
                () = tx.closed() => return, // the client went away: stop the query
            };
            let chunk = match next {
                Err(_) => Err(DashboardError::Timeout(timeout)),
                Ok(None) => match encoder.take() {
                    Some(enc) => enc.finish(&schema).map(Some),
                    None => Ok(None),
                },
                Ok(Some(Err(e))) => Err(e.into()),
                Ok(Some(Ok(batch))) => match encoder.as_mut() {
                    Some(enc) => enc.batch(&batch).map(Some),
                    None => Ok(None),
                },
            };
            match chunk {
                Ok(Some(bytes)) => {
                    let done = encoder.is_none();
                    if !bytes.is_empty() && tx.send(Ok(bytes::Bytes::from(bytes))).await.is_err() {
                        return; // the client went away: stop reading
                    }
                    if done {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "export aborted");
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            }
        }
    });
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

/// A body fed by a task on the query runtime through a small channel:
/// back-pressure keeps at most a few encoded batches in memory.
pub fn async_stream<F, Fut>(lake: &crate::Lake, produce: F) -> Body
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    lake.spawn(produce(tx));
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Body::from_stream(stream)
}

/// `GET /api/sql/tables`: every registered table and its columns.
#[utoipa::path(
    get, path = "/api/sql/tables", tag = "sql",
    responses((status = 200, body = TableList))
)]
pub async fn tables(State(state): State<Dashboard>) -> Result<Json<TableList>, HttpError> {
    let _ = state.lake.refresh().await;
    let mut out = Vec::new();
    for name in state.lake.tables().await.iter() {
        let frame =
            state.lake.plan(&format!("SELECT * FROM \"{name}\" LIMIT 0")).await.map_err(DashboardError::from)?;
        let columns = frame
            .schema()
            .fields()
            .iter()
            .map(|f| ColumnInfo { name: f.name().clone(), data_type: f.data_type().to_string() })
            .collect();
        out.push(TableInfo { name: name.clone(), columns });
    }
    Ok(Json(TableList { tables: out }))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ColumnInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TableInfo {
    pub name: String,
    pub columns: Vec<ColumnInfo>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TableList {
    pub tables: Vec<TableInfo>,
}
