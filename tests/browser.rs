//! The web dashboard in a real browser: `orderstream up` (its own
//! nats-server, a small catalog, payments that all succeed, fulfilment held
//! at confirmed, a low fraud
//! threshold so a $900 first order is flagged) driven by
//! `tests/browser/dashboard.mjs` in Debian's headless Chromium through
//! playwright-core. `scripts/bootstrap` installs Chromium and the npm
//! package; screenshots land in `target/test-artifacts/browser/`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use broker::server::free_port;
use tokio::process::Command;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BIN: &str = env!("CARGO_BIN_EXE_orderstream");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn the_dashboard_works_in_a_real_browser() -> TestResult {
    let script_dir = root().join("tests/browser");
    if !script_dir.join("node_modules/playwright-core").is_dir() {
        return Err("tests/browser/node_modules is missing: run scripts/bootstrap".into());
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&chromium).exists() {
        return Err(format!("{chromium} is missing: run scripts/bootstrap (installs Debian's chromium)").into());
    }
    let data = tempfile::tempdir()?;
    let nats_port = free_port()?;
    let http_port = free_port()?;
    let base = format!("http://127.0.0.1:{http_port}");
    let nats_url = format!("nats://127.0.0.1:{nats_port}");
    let log = std::fs::File::create(data.path().join("up.log"))?;
    let mut up = Command::new(BIN)
        .arg("up")
        .env("ORDERSTREAM_NATS_URL", &nats_url)
        .env("ORDERSTREAM_LISTEN", format!("127.0.0.1:{http_port}"))
        .env("ORDERSTREAM_DATA_DIR", data.path())
        .env("ORDERSTREAM_FULFILMENT_DELAYS_MS", "disabled")
        .env("ORDERSTREAM_FRAUD_THRESHOLD", "30")
        .env("ORDERSTREAM_PAYMENT_FAILURE_RATE", "0")
        .env("ORDERSTREAM_ANALYTICS_BATCH_WAIT_MS", "200")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..300 {
        if let Ok(res) = http.get(format!("{base}/readyz")).send().await
            && res.status() == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "orderstream up never became ready");
    let catalog = data.path().join("catalog.csv");
    std::fs::write(
        &catalog,
        "product_id,name,category,unit_price,stock\np-1,Desk lamp,home,19.99,1000\np-2,Camera,electronics,900.00,50\np-3,Socks,apparel,4.99,5\n",
    )?;
    let import = Command::new(BIN)
        .args(["catalog", "import"])
        .arg(&catalog)
        .env("ORDERSTREAM_NATS_URL", &nats_url)
        .output()
        .await?;
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));

    let artifacts = root().join("target/test-artifacts/browser");
    let run = Command::new("node")
        .arg(script_dir.join("dashboard.mjs"))
        .arg(&base)
        .arg(&artifacts)
        .env("CHROMIUM", &chromium)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(240), run).await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let log = std::fs::read_to_string(data.path().join("up.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        return Err(format!(
            "browser test failed\n{stdout}\n{stderr}\n--- up.log (last lines) ---\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
        .into());
    }
    assert!(stdout.contains("browser test passed"), "{stdout}");
    for shot in
        ["overview.png", "orders.png", "fraud.png", "fraud-approved.png", "sales.png", "inventory.png", "system.png"]
    {
        assert!(artifacts.join(shot).is_file(), "{shot} kept");
    }
    let pid = up.id().ok_or("no pid")?;
    Command::new("kill").args(["-TERM", &pid.to_string()]).status().await?;
    let status = tokio::time::timeout(Duration::from_secs(30), up.wait()).await??;
    assert!(status.success(), "{status}");
    Ok(())
}
