//! The real binary's lifecycle: a busy port is an error, the embedded
//! nats-server dies with `up` (even by SIGKILL) and a stale one is
//! replaced, streams change only through `orderstream streams apply`, the
//! dashboard serves its tables while NATS is down, and an analytics job
//! whose lake fails is reported and heals by itself.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use broker::server::free_port;
use serde_json::{Value, json};
use tokio::process::Command;

use common::{BIN, TestResult};

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ")
}

async fn wait_until(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) -> TestResult {
    let started = Instant::now();
    while !check().await {
        if started.elapsed() > limit {
            return Err(format!("timed out waiting until {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_port_is_an_error_and_the_embedded_server_dies_with_up() -> TestResult {
    let up = common::start(&[]).await?;
    let pid_file = up.data.path().join("nats/nats-server.pid");
    let nats_pid: u32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
    assert!(process_alive(nats_pid));

    // A second `up` on the same port says so and exits, touching nothing.
    let other = tempfile::tempdir()?;
    let listen = up.base.trim_start_matches("http://").to_string();
    let second = tokio::time::timeout(
        Duration::from_secs(20),
        Command::new(BIN)
            .arg("up")
            .env("ORDERSTREAM_LISTEN", &listen)
            .env("ORDERSTREAM_NATS_URL", &up.nats_url)
            .env("ORDERSTREAM_DATA_DIR", other.path())
            .output(),
    )
    .await??;
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert!(!String::from_utf8_lossy(&second.stdout).contains("orderstream is up"));

    // SIGKILL: nothing runs `up`'s shutdown, yet its nats-server goes too.
    let mut up = up;
    up.child.kill().await?;
    wait_until("the embedded nats-server is gone", Duration::from_secs(10), async || !process_alive(nats_pid)).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_embedded_server_is_stopped_and_replaced() -> TestResult {
    let data = tempfile::tempdir()?;
    let store = data.path().join("nats");
    std::fs::create_dir_all(&store)?;
    let nats_port = free_port()?;
    // What an `up` killed where its child could not follow it leaves: a
    // server on the store, and its pid in the file.
    let mut stale = Command::new(broker::find_nats_server()?)
        .args(["-js", "-a", "127.0.0.1", "-p", &nats_port.to_string(), "-sd"])
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stale_pid = stale.id().ok_or("no pid")?;
    std::fs::write(store.join("nats-server.pid"), format!("{stale_pid}\n"))?;
    wait_until("the stale server listens", Duration::from_secs(10), async || {
        tokio::net::TcpStream::connect(("127.0.0.1", nats_port)).await.is_ok()
    })
    .await?;

    let http_port = free_port()?;
    let log = std::fs::File::create(data.path().join("up.log"))?;
    let mut up = Command::new(BIN)
        .arg("up")
        .env("ORDERSTREAM_NATS_URL", format!("nats://127.0.0.1:{nats_port}"))
        .env("ORDERSTREAM_LISTEN", format!("127.0.0.1:{http_port}"))
        .env("ORDERSTREAM_DATA_DIR", data.path())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let http = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{http_port}/readyz");
    wait_until("up is ready", Duration::from_secs(30), async || {
        http.get(&ready).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await?;
    let _ = stale.try_wait();
    assert!(!process_alive(stale_pid), "the stale server was stopped");
    let own: u32 = std::fs::read_to_string(store.join("nats-server.pid"))?.trim().parse()?;
    assert_ne!(own, stale_pid);
    let log = std::fs::read_to_string(data.path().join("up.log"))?;
    assert!(log.contains("left running"), "{log}");
    up.kill().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_change_only_through_streams_apply() -> TestResult {
    let mut nats = broker::NatsServer::start_temporary().await?;
    let url = nats.url();
    let catalog = tempfile::NamedTempFile::new()?;
    std::fs::write(catalog.path(), "product_id,name,category,unit_price,stock\nsku-1,One,cat,1.00,5\n")?;
    let run = |args: &[&str]| {
        let mut command = Command::new(BIN);
        command.args(args).env("ORDERSTREAM_NATS_URL", &url).env("ORDERSTREAM_LOG", "warn");
        command.output()
    };
    let imported = run(&["catalog", "import", catalog.path().to_str().ok_or("path")?]).await?;
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    // Another role's flags change nothing.
    let again =
        run(&["catalog", "import", catalog.path().to_str().ok_or("path")?, "--duplicate-window-secs", "5"]).await?;
    assert!(again.status.success());
    let client = broker::connect(&url, "lifecycle-test").await?;
    let js = async_nats::jetstream::new(client);
    let window = |js: async_nats::jetstream::Context| async move {
        Ok::<_, Box<dyn std::error::Error>>(
            js.get_stream(broker::ORDERS_STREAM).await?.info().await?.config.duplicate_window,
        )
    };
    assert_eq!(window(js.clone()).await?, Duration::from_secs(120));

    let dry = run(&["streams", "apply", "--duplicate-window-secs", "300"]).await?;
    assert!(dry.status.success());
    let said = String::from_utf8_lossy(&dry.stdout);
    assert!(said.contains("stream ORDERS duplicate_window: 120s -> 300s"), "{said}");
    assert!(said.contains("--yes"), "{said}");
    assert_eq!(window(js.clone()).await?, Duration::from_secs(120), "nothing changes without --yes");

    let applied = run(&["streams", "apply", "--duplicate-window-secs", "300", "--yes"]).await?;
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    assert_eq!(window(js.clone()).await?, Duration::from_secs(300));
    nats.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_serves_its_tables_while_nats_is_down() -> TestResult {
    let work = tempfile::tempdir()?;
    let lake = work.path().join("lake");
    let seeded = Command::new(BIN)
        .args(["seed", "--orders", "500", "--days", "3", "--end", "2026-11-21", "--no-progress", "--output"])
        .arg(&lake)
        .output()
        .await?;
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));
    let (nats_port, http_port) = (free_port()?, free_port()?);
    let mut dashboard = Command::new(BIN)
        .arg("dashboard")
        .arg("--data")
        .arg(&lake)
        .env("ORDERSTREAM_NATS_URL", format!("nats://127.0.0.1:{nats_port}"))
        .env("ORDERSTREAM_LISTEN", format!("127.0.0.1:{http_port}"))
        .env("ORDERSTREAM_LOG", "warn")
        // The keys live in NATS: until it answers, only this locally
        // configured admin credential is known.
        .env("ORDERSTREAM_ADMIN_TOKEN", "lake-admin")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let base = format!("http://127.0.0.1:{http_port}");
    let http = common::bearer_client("lake-admin")?;
    wait_until("the dashboard answers", Duration::from_secs(20), async || {
        http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await?;
    let ready: Value = http.get(format!("{base}/readyz")).send().await?.json().await?;
    assert_eq!(ready["nats"], "disconnected");
    // Any other caller: whether keys exist is unknown, so refused, not open.
    let anonymous =
        reqwest::Client::new().post(format!("{base}/api/sql")).json(&json!({"sql": "SELECT 1"})).send().await?;
    assert_eq!(anonymous.status(), 503, "fail closed before the keys are read");
    let res =
        http.post(format!("{base}/api/sql")).json(&json!({"sql": "SELECT count(*) AS n FROM orders"})).send().await?;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await?["rows"][0]["n"], 500);
    let summary = http.get(format!("{base}/api/dashboard/summary?date=2026-11-21")).send().await?;
    assert_eq!(summary.status(), 200);
    let health: Value = http.get(format!("{base}/api/dashboard/health")).send().await?.json().await?;
    assert_eq!(health["nats"], "unavailable");
    let orders = http.get(format!("{base}/api/orders/0195f3a1-7b52-7c2d-9a4f-4c3f1b2a8e11")).send().await?;
    assert_eq!(orders.status(), 503, "the order API needs NATS");
    assert_eq!(orders.json::<Value>().await?["error"], "unavailable");

    // NATS comes up: the order API joins.
    let mut nats = broker::NatsServer::start(broker::ServerOptions {
        port: nats_port,
        store_dir: work.path().join("nats"),
        server_name: "lifecycle".into(),
        cluster: None,
        config_file: None,
    })
    .await?;
    let missing = format!("{base}/api/orders/0195f3a1-7b52-7c2d-9a4f-4c3f1b2a8e11");
    wait_until("the order API answers", Duration::from_secs(30), async || {
        http.get(&missing).send().await.is_ok_and(|r| r.status() == 404)
    })
    .await?;
    dashboard.kill().await?;
    nats.stop().await?;
    Ok(())
}

/// The lake made unwritable under a running `up` (a file where its
/// directory was): the analytics job is reported failing on `/readyz` and
/// in `/metrics`, ingest still accepts orders, and once the lake is back
/// the job resumes from its checkpoint and every order lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_analytics_job_is_reported_and_heals() -> TestResult {
    let up =
        common::start(&[("ORDERSTREAM_ANALYTICS_IDLE_AFTER_MS", "200"), ("ORDERSTREAM_ANALYTICS_BATCH_WAIT_MS", "50")])
            .await?;
    let http = reqwest::Client::new();
    let post = |i: usize| {
        let http = http.clone();
        let base = up.base.clone();
        async move {
            let body = json!({"customer_id": format!("c-{i}"), "items": [{"product_id": "p-1", "quantity": 1, "unit_price": "2.00"}]});
            http.post(format!("{base}/api/orders")).json(&body).send().await.map(|r| r.status().as_u16())
        }
    };
    let lake = up.data.path().join("lake");
    let sql = |http: reqwest::Client, lake: std::path::PathBuf| async move {
        let out = Command::new(BIN)
            .args(["sql", "--format", "csv", "SELECT count(*) AS n, count(DISTINCT order_id) AS d FROM orders"])
            .arg("--data")
            .arg(&lake)
            .output()
            .await
            .ok()?;
        let _ = http;
        String::from_utf8_lossy(&out.stdout).lines().nth(1).map(str::to_string)
    };
    for i in 0..5 {
        assert_eq!(post(i).await?, 202);
    }
    wait_until("the first orders are in the lake", Duration::from_secs(30), async || {
        sql(http.clone(), lake.clone()).await.as_deref() == Some("5,5")
    })
    .await?;

    let moved = up.data.path().join("lake-away");
    std::fs::rename(&lake, &moved)?;
    std::fs::write(&lake, "not a directory")?;
    for i in 5..10 {
        assert_eq!(post(i).await?, 202, "ingest keeps accepting");
    }
    wait_until("readyz reports the failing job", Duration::from_secs(30), async || {
        let Ok(res) = http.get(format!("{}/readyz", up.base)).send().await else { return false };
        let status = res.status();
        let body: Value = res.json().await.unwrap_or_default();
        status == 503 && body["message"].as_str().is_some_and(|m| m.contains("analytics"))
    })
    .await?;
    // Each stream's job fails when it next commits, in either order.
    wait_until("the metrics report the orders job failing", Duration::from_secs(30), async || {
        let Ok(res) = http.get(format!("{}/metrics", up.base)).send().await else { return false };
        let metrics = res.text().await.unwrap_or_default();
        metrics.contains("orderstream_component_state{component=\"analytics.orders\",state=\"failing\"} 1")
    })
    .await?;

    std::fs::remove_file(&lake)?;
    std::fs::rename(&moved, &lake)?;
    wait_until("the job resumed and caught up", Duration::from_secs(90), async || {
        sql(http.clone(), lake.clone()).await.as_deref() == Some("10,10")
    })
    .await?;
    wait_until("readyz is ready again", Duration::from_secs(30), async || {
        http.get(format!("{}/readyz", up.base)).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await?;
    up.stop().await
}
