//! `orderstream up` for the tests that drive the whole binary: its own
//! nats-server on a free port, a temporary data dir, a small catalog.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use broker::server::free_port;
use tokio::process::{Child, Command};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub const BIN: &str = env!("CARGO_BIN_EXE_orderstream");

/// An HTTP client that sends `Authorization: Bearer <key>` on every request.
pub fn bearer_client(key: &str) -> Result<reqwest::Client, Box<dyn std::error::Error>> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {key}").parse()?);
    Ok(reqwest::Client::builder().default_headers(headers).build()?)
}

pub struct Up {
    pub child: Child,
    pub base: String,
    pub nats_url: String,
    pub data: tempfile::TempDir,
}

/// Starts `orderstream up` with `env` and waits until it is ready; its log
/// goes to `<data>/up.log`.
pub async fn start(env: &[(&str, &str)]) -> Result<Up, Box<dyn std::error::Error>> {
    let data = tempfile::tempdir()?;
    let (nats_port, http_port) = (free_port()?, free_port()?);
    let base = format!("http://127.0.0.1:{http_port}");
    let nats_url = format!("nats://127.0.0.1:{nats_port}");
    let log = std::fs::File::create(data.path().join("up.log"))?;
    let child = Command::new(BIN)
        .arg("up")
        .env("ORDERSTREAM_NATS_URL", &nats_url)
        .env("ORDERSTREAM_LISTEN", format!("127.0.0.1:{http_port}"))
        .env("ORDERSTREAM_DATA_DIR", data.path())
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let mut up = Up { child, base, nats_url, data };
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(res) = http.get(format!("{}/readyz", up.base)).send().await
            && res.status() == 200
        {
            return Ok(up);
        }
        if let Some(status) = up.child.try_wait()? {
            return Err(format!("orderstream up exited early: {status}\n{}", up.log_tail()).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("orderstream up never became ready".into())
}

impl Up {
    /// Imports `csv` (with the catalog header) through the real CLI.
    pub async fn import_catalog(&self, csv: &str) -> TestResult {
        let file = self.data.path().join("catalog.csv");
        std::fs::write(&file, csv)?;
        let out = Command::new(BIN)
            .args(["catalog", "import"])
            .arg(&file)
            .env("ORDERSTREAM_NATS_URL", &self.nats_url)
            .output()
            .await?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
        }
        Ok(())
    }

    /// Creates an API key through the real CLI; returns the key.
    pub async fn create_key(
        &self,
        role: &str,
        name: &str,
        extra: &[&str],
    ) -> Result<String, Box<dyn std::error::Error>> {
        let out = Command::new(BIN)
            .args(["keys", "create", "--role", role, "--name", name])
            .args(extra)
            .env("ORDERSTREAM_NATS_URL", &self.nats_url)
            .output()
            .await?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }

    /// Runs `orderstream keys ARGS` against this NATS; returns stdout.
    pub async fn keys(&self, args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
        let out = Command::new(BIN).arg("keys").args(args).env("ORDERSTREAM_NATS_URL", &self.nats_url).output().await?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.data.path().join("up.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(40).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// SIGTERM, and a clean exit within 30 s.
    pub async fn stop(mut self) -> TestResult {
        let pid = self.child.id().ok_or("no pid")?;
        Command::new("kill").args(["-TERM", &pid.to_string()]).status().await?;
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await??;
        if !status.success() {
            return Err(format!("orderstream up exited with {status}").into());
        }
        Ok(())
    }
}
