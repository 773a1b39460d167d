//! The web dashboard in a real browser, signed in with API keys (an admin's,
//! then a viewer's, which sees only its pages): `orderstream up` (its own
//! nats-server, a small catalog, payments that all succeed, fulfilment held
//! at confirmed, the built-in fraud model, which flags a $3,000 first order,
//! sixty days of history seeded before the forecast page)
//! driven by `tests/browser/dashboard.mjs` in Debian's headless Chromium
//! through playwright-core. `scripts/bootstrap` installs Chromium and the
//! npm package; screenshots land in `target/test-artifacts/browser/`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::TestResult;
use tokio::process::Command;

#[tokio::test]
async fn the_dashboard_works_in_a_real_browser() -> TestResult {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script_dir = root.join("tests/browser");
    if !script_dir.join("node_modules/playwright-core").is_dir() {
        return Err("tests/browser/node_modules is missing: run scripts/bootstrap".into());
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&chromium).exists() {
        return Err(format!("{chromium} is missing: run scripts/bootstrap (installs Debian's chromium)").into());
    }
    let up = common::start(&[
        ("ORDERSTREAM_FULFILMENT_DELAYS_MS", "disabled"),
        ("ORDERSTREAM_PAYMENT_FAILURE_RATE", "0"),
        ("ORDERSTREAM_ANALYTICS_BATCH_WAIT_MS", "200"),
        ("ORDERSTREAM_LOAD_TEST_MAX_RATE", "100"),
    ])
    .await?;
    up.import_catalog(
        "product_id,name,category,unit_price,stock\np-1,Desk lamp,home,19.99,1000\np-2,Camera,electronics,3000.00,50\np-3,Socks,apparel,4.99,5\n",
    )
    .await?;

    let admin = up.create_key("admin", "browser-admin", &[]).await?;
    let producer = up.create_key("producer", "browser-shop", &[]).await?;
    let viewer = up.create_key("viewer", "browser-wall", &[]).await?;

    let artifacts = root.join("target/test-artifacts/browser");
    let run = Command::new("node")
        .arg(script_dir.join("dashboard.mjs"))
        .arg(&up.base)
        .arg(&artifacts)
        .arg(common::BIN)
        .arg(up.data.path().join("lake"))
        .env("CHROMIUM", &chromium)
        .env("ADMIN_KEY", &admin)
        .env("PRODUCER_KEY", &producer)
        .env("VIEWER_KEY", &viewer)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(240), run).await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("browser test failed\n{stdout}\n{stderr}\n--- up.log ---\n{}", up.log_tail()).into());
    }
    assert!(stdout.contains("browser test passed"), "{stdout}");
    for shot in [
        "overview.png",
        "orders.png",
        "fraud.png",
        "fraud-approved.png",
        "sales.png",
        "inventory.png",
        "system.png",
        "forecast.png",
        "viewer.png",
        "track.png",
        "narrow.png",
        "load-test.png",
    ] {
        assert!(artifacts.join(shot).is_file(), "{shot} kept");
    }
    up.stop().await
}
