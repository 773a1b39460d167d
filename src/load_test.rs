//! `POST /api/admin/load-test`: the built-in open-loop generator
//! ([`crate::loadgen`]) run by `orderstream up` against itself, for the
//! dashboard's load-test page. Off unless `--load-test-max-rate` is set;
//! the rate and duration are bounded by the flags; one run at a time. The
//! orders it sends are real orders through the real API (with the caller's
//! key), so its figures are this instance's.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use server::http::{HttpError, json_body};

use crate::loadgen::{LoadgenArgs, Progress, Report, generate};

/// The bounds `up` was started with.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_rate: f64,
    pub max_duration: Duration,
    pub max_connections: usize,
}

#[derive(Clone)]
pub struct LoadTests {
    limits: Limits,
    target: String,
    run: Arc<Mutex<Option<Run>>>,
}

struct Run {
    id: String,
    started_at: DateTime<Utc>,
    started: Instant,
    rate: f64,
    duration: Duration,
    connections: usize,
    progress: Arc<Progress>,
    outcome: Arc<Mutex<Option<Result<Report, String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Start {
    rate: f64,
    duration_secs: f64,
    #[serde(default)]
    connections: Option<usize>,
}

fn invalid(field: &str, message: String) -> HttpError {
    HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", message).with_field(field)
}

impl LoadTests {
    /// `listen` is where this process serves; the run talks to it over
    /// loopback.
    pub fn new(limits: Limits, listen: SocketAddr) -> LoadTests {
        let port = listen.port();
        let host = if listen.ip().is_unspecified() || listen.ip().is_loopback() {
            "127.0.0.1".to_string()
        } else {
            listen.ip().to_string()
        };
        LoadTests { limits, target: format!("http://{host}:{port}"), run: Arc::default() }
    }

    pub fn routes(self) -> Router {
        Router::new().route("/api/admin/load-test", post(start).get(status).delete(stop)).with_state(self)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Run>> {
        self.run.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn enabled(&self) -> Result<(), HttpError> {
        if self.limits.max_rate > 0.0 {
            return Ok(());
        }
        Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "load_test_disabled",
            "load tests are off: start `orderstream up` with --load-test-max-rate RATE to allow them",
        ))
    }
}

/// `POST`: `{rate, duration_secs, connections?}` starts a run (202).
async fn start(
    State(tests): State<LoadTests>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), HttpError> {
    tests.enabled()?;
    let request: Start = json_body(&headers, body, 4096).await?;
    let limits = tests.limits;
    if !request.rate.is_finite() || request.rate <= 0.0 || request.rate > limits.max_rate {
        return Err(invalid("rate", format!("rate is more than 0 and at most {} orders/s", limits.max_rate)));
    }
    let max_secs = limits.max_duration.as_secs_f64();
    if !request.duration_secs.is_finite() || request.duration_secs < 0.1 || request.duration_secs > max_secs {
        return Err(invalid("duration_secs", format!("duration_secs is 0.1 to {max_secs}")));
    }
    let connections = request.connections.unwrap_or(16);
    if connections == 0 || connections > limits.max_connections {
        return Err(invalid("connections", format!("connections is 1 to {}", limits.max_connections)));
    }
    let progress = Arc::new(
        Progress::new().map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?,
    );
    let mut current = tests.lock();
    if current.as_ref().is_some_and(|run| run.outcome.lock().unwrap_or_else(PoisonError::into_inner).is_none()) {
        return Err(HttpError::conflict("load_test_running", "a load test is running: wait for it or stop it"));
    }
    // The caller's own key sends the orders (an admin may submit orders).
    let api_key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let duration = Duration::from_secs_f64(request.duration_secs);
    let args = LoadgenArgs {
        target: tests.target.clone(),
        rate: request.rate,
        duration,
        connections,
        duplicate_ratio: 0.0,
        invalid_ratio: 0.0,
        no_idempotency_keys: false,
        customers: 10_000,
        products: 1_000,
        flash_sale: None,
        seed: rand_seed(),
        json: true,
        unit_price: None,
        api_key,
    };
    let run = Run {
        id: uuid::Uuid::now_v7().to_string(),
        started_at: Utc::now(),
        started: Instant::now(),
        rate: request.rate,
        duration,
        connections,
        progress: progress.clone(),
        outcome: Arc::default(),
    };
    let outcome = run.outcome.clone();
    tokio::spawn(async move {
        let result = generate(args, Some(progress)).await.map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::warn!(error = %e, "the load test failed");
        }
        *outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
    });
    let answer = view(&run);
    *current = Some(run);
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
}

#[derive(Serialize)]
struct RunView<'a> {
    id: &'a str,
    status: &'static str,
    started_at: DateTime<Utc>,
    elapsed_s: f64,
    target_rate: f64,
    duration_s: f64,
    connections: usize,
    /// Requests answered per second so far.
    throughput_rps: f64,
    progress: crate::loadgen::ProgressView,
    report: Option<&'a Report>,
    error: Option<&'a str>,
}

fn view(run: &Run) -> Value {
    let outcome = run.outcome.lock().unwrap_or_else(PoisonError::into_inner);
    let progress = run.progress.view();
    let elapsed = run.started.elapsed().as_secs_f64().min(run.duration.as_secs_f64() + 60.0);
    let status = match outcome.as_ref() {
        None => "running",
        Some(Ok(_)) => "done",
        Some(Err(_)) => "failed",
    };
    let throughput = match outcome.as_ref() {
        Some(Ok(report)) => report.throughput_rps,
        _ if elapsed > 0.0 => progress.completed as f64 / elapsed,
        _ => 0.0,
    };
    serde_json::to_value(RunView {
        id: &run.id,
        status,
        started_at: run.started_at,
        elapsed_s: elapsed,
        target_rate: run.rate,
        duration_s: run.duration.as_secs_f64(),
        connections: run.connections,
        throughput_rps: throughput,
        progress,
        report: outcome.as_ref().and_then(|o| o.as_ref().ok()),
        error: outcome.as_ref().and_then(|o| o.as_ref().err()).map(String::as_str),
    })
    .unwrap_or_default()
}

/// `GET`: the current (or last) run, with its figures so far, and the limits.
async fn status(State(tests): State<LoadTests>) -> Json<Value> {
    let limits = json!({
        "enabled": tests.limits.max_rate > 0.0,
        "max_rate": tests.limits.max_rate,
        "max_duration_secs": tests.limits.max_duration.as_secs_f64(),
        "max_connections": tests.limits.max_connections,
    });
    let run = tests.lock().as_ref().map(view);
    Json(json!({"limits": limits, "run": run}))
}

/// `DELETE`: stops the running test (what was sent is kept).
async fn stop(State(tests): State<LoadTests>) -> Result<Json<Value>, HttpError> {
    tests.enabled()?;
    let current = tests.lock();
    let Some(run) = current.as_ref() else { return Err(HttpError::not_found("load test")) };
    run.progress.stop();
    Ok(Json(view(run)))
}
