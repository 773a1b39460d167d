//! The real binary: `orderstream up` starts its own nats-server when none is
//! reachable, accepts orders into JetStream, survives a loadgen run with
//! duplicates and invalid requests, and shuts down cleanly on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use broker::server::free_port;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BIN: &str = env!("CARGO_BIN_EXE_orderstream");

async fn wait_ready(http: &reqwest::Client, base: &str, child: &mut Child) -> TestResult {
    for _ in 0..200 {
        if let Ok(res) = http.get(format!("{base}/readyz")).send().await
            && res.status() == 200
        {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            return Err(format!("orderstream up exited early: {status}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("orderstream up never became ready".into())
}

#[tokio::test]
async fn up_serves_orders_into_jetstream_and_loadgen_reports() -> TestResult {
    let data = tempfile::tempdir()?;
    let nats_port = free_port()?;
    let http_port = free_port()?;
    let base = format!("http://127.0.0.1:{http_port}");
    let nats_url = format!("nats://127.0.0.1:{nats_port}");
    let mut up = Command::new(BIN)
        .arg("up")
        .env("ORDERSTREAM_NATS_URL", &nats_url)
        .env("ORDERSTREAM_LISTEN", format!("127.0.0.1:{http_port}"))
        .env("ORDERSTREAM_DATA_DIR", data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let http = reqwest::Client::new();
    wait_ready(&http, &base, &mut up).await?;
    assert!(data.path().join("nats").is_dir(), "the embedded server keeps its data in the data dir");

    // One OpenAPI document for everything `up` serves, money typed as strings.
    let doc: Value = http.get(format!("{base}/api/openapi.json")).send().await?.json().await?;
    for path in ["/api/orders", "/api/orders/{id}/cancel", "/api/admin/dlq", "/api/dashboard/revenue", "/api/sql"] {
        assert!(doc["paths"][path].is_object(), "{path} in the OpenAPI document");
    }
    assert_eq!(doc["components"]["schemas"]["Amount"]["type"], "string", "{}", doc["components"]["schemas"]["Amount"]);

    let order = json!({"customer_id": "c-1", "items": [{"product_id": "p-1", "quantity": 1, "unit_price": "9.99"}]});
    let res = http.post(format!("{base}/api/orders")).json(&order).send().await?;
    assert_eq!(res.status(), 202);
    let accepted: Value = res.json().await?;

    let client = broker::connect(&nats_url, "up-test").await?;
    let js = async_nats::jetstream::new(client);
    let orders = js.get_stream(broker::ORDERS_STREAM).await?;
    let stored = orders
        .direct_get_last_for_subject(broker::order_submitted_subject(accepted["order_id"].as_str().ok_or("id")?))
        .await?;
    let stored: schemas::Order = serde_json::from_slice(&stored.payload)?;
    assert_eq!(stored.total.0, 1099);

    let loadgen = Command::new(BIN)
        .args(["loadgen", "--target", &base, "--rate", "400", "--duration", "1s", "--connections", "8"])
        .args(["--duplicate-ratio", "0.1", "--invalid-ratio", "0.1", "--json"])
        .output()
        .await?;
    assert!(loadgen.status.success(), "{}", String::from_utf8_lossy(&loadgen.stderr));
    let report: Value = serde_json::from_slice(&loadgen.stdout)?;
    assert_eq!(report["completed"], 400);
    assert_eq!(report["unexpected"], 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    let created = report["statuses"]["202"].as_u64().ok_or("no 202s")?;
    let invalid = report["statuses"]["422"].as_u64().unwrap_or(0);
    assert!(invalid > 10, "{report}");
    // Every 202 is one stored order; duplicates and invalid requests add none.
    let mut orders = js.get_stream(broker::ORDERS_STREAM).await?;
    assert_eq!(orders.info().await?.state.messages, 1 + created);

    let pid = up.id().ok_or("no pid")?;
    Command::new("kill").args(["-TERM", &pid.to_string()]).status().await?;
    let status = tokio::time::timeout(Duration::from_secs(15), up.wait()).await??;
    assert!(status.success(), "{status}");
    // The embedded nats-server went down with it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", nats_port)).await.is_err());
    Ok(())
}
