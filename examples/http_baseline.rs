//! Benchmark baseline: a bare axum endpoint that answers every
//! `POST /api/orders` with a fixed 202 JSON body, no parsing, no NATS. Run
//! `orderstream loadgen` against it to see what HTTP alone costs on this
//! machine (docs/benchmarks.md).
//!
//! cargo run --release --example http_baseline -- 127.0.0.1:18081

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18081".to_string());
    let app = Router::new().route(
        "/api/orders",
        post(|_body: axum::body::Bytes| async {
            (StatusCode::ACCEPTED, [("content-type", "application/json")], r#"{"accepted":true}"#)
        }),
    );
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    axum::serve(listener, app).await
}
