//! The binary against a NATS that requires TLS and credentials (a real
//! `nats-server`, its certificates generated in the test): wrong
//! credentials stop a role at start-up with a clear error; history seeded
//! through JetStream over TLS replays over TLS (the replay's own wire
//! reader) into the same tables.

mod common;

use std::time::Duration;

use broker::server::SecuredServer;
use serde_json::Value;
use tokio::process::Command;

use common::{BIN, TestResult};

#[tokio::test]
async fn roles_and_the_replay_work_over_tls_with_credentials() -> TestResult {
    let nats = SecuredServer::start().await?;
    let url = nats.url();
    let ca = nats.dir().join("ca.pem");
    let secured = |command: &mut Command, password: &str| {
        command
            .env("ORDERSTREAM_NATS_URL", &url)
            .env("ORDERSTREAM_NATS_CA", &ca)
            .env("ORDERSTREAM_NATS_USER", "orders")
            .env("ORDERSTREAM_NATS_PASSWORD", password)
            .env("ORDERSTREAM_LOG", "warn");
    };

    // Wrong credentials: a clear error at once, not a retry loop.
    let port = broker::server::free_port()?;
    let mut ingest = Command::new(BIN);
    ingest.args(["ingest", "--listen", &format!("127.0.0.1:{port}")]);
    secured(&mut ingest, "guess");
    let out = tokio::time::timeout(Duration::from_secs(20), ingest.output()).await??;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");

    // Seeded through JetStream over TLS, replayed over TLS.
    let work = tempfile::tempdir()?;
    let (side, replayed) = (work.path().join("side"), work.path().join("replayed"));
    let mut seed = Command::new(BIN);
    seed.args(["seed", "--publish", "--orders", "300", "--days", "2", "--end", "2026-11-20", "--no-progress"])
        .args(["--rate", "100000", "--output"])
        .arg(&side);
    secured(&mut seed, "s3cret");
    let out = tokio::time::timeout(Duration::from_secs(120), seed.output()).await??;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut replay = Command::new(BIN);
    replay.args(["replay", "--from-seq", "1", "--no-progress", "--output"]).arg(&replayed);
    secured(&mut replay, "s3cret");
    let out = tokio::time::timeout(Duration::from_secs(120), replay.output()).await??;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(BIN)
        .args(["sql", "SELECT count(*) AS n FROM orders", "--format", "json", "--data"])
        .arg(&replayed)
        .output()
        .await?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(rows[0]["n"], 300, "{rows}");
    Ok(())
}
