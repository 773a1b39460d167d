//! Runs `nats-server` as a child process: the embedded default of
//! `orderstream up`, and the real server behind every integration test (a
//! free port, a temporary store, restart and stop for fault tests, and a
//! three-node cluster).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use thiserror::Error;
use tokio::process::{Child, Command};

/// Oldest server whose JetStream and KV calls async-nats supports.
const MIN_VERSION: (u32, u32) = (2, 10);

#[derive(Debug, Error)]
pub enum ServerError {
    #[error(
        "no nats-server >= 2.10 found (looked at $ORDERSTREAM_NATS_SERVER, .tools/venv/bin and $PATH); run scripts/bootstrap"
    )]
    NotFound,
    #[error("cannot start nats-server: {0}")]
    Io(#[from] std::io::Error),
    #[error("nats-server on port {port} did not accept connections within {waited:?}; log: {log}")]
    NotReady { port: u16, waited: Duration, log: String },
}

/// Finds a usable `nats-server`: `$ORDERSTREAM_NATS_SERVER`, then the one
/// `scripts/bootstrap` installs under `.tools/venv/bin` (looked for from the
/// working directory and the running executable upwards), then `$PATH`.
/// Servers older than 2.10 (Debian ships 2.9) are skipped.
pub fn find_nats_server() -> Result<PathBuf, ServerError> {
    let mut candidates = Vec::new();
    if let Some(explicit) = std::env::var_os("ORDERSTREAM_NATS_SERVER") {
        candidates.push(PathBuf::from(explicit));
    }
    let roots = [std::env::current_dir().ok(), std::env::current_exe().ok()];
    for root in roots.iter().flatten() {
        for dir in root.ancestors() {
            candidates.push(dir.join(".tools/venv/bin/nats-server"));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|dir| dir.join("nats-server")));
    }
    candidates.into_iter().find(|c| c.is_file() && version_ok(c)).ok_or(ServerError::NotFound)
}

fn version_ok(binary: &Path) -> bool {
    let Ok(output) = std::process::Command::new(binary).arg("--version").output() else {
        return false;
    };
    // "nats-server: v2.15.1"
    let text = String::from_utf8_lossy(&output.stdout);
    let mut parts = text.trim().rsplit('v').next().unwrap_or("").split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    version >= MIN_VERSION
}

/// `setpriv --pdeathsig KILL --`, when this machine's util-linux has it:
/// a child started through it is killed by the kernel when its parent
/// dies, even by SIGKILL, so an embedded nats-server never outlives `up`.
/// (The signal follows the thread that started the child; every caller
/// starts servers from a runtime or test thread, which live as long as the
/// process.)
fn parent_death_wrapper() -> Option<&'static Path> {
    static WRAPPER: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    WRAPPER
        .get_or_init(|| {
            let candidate =
                ["/usr/bin/setpriv", "/bin/setpriv"].into_iter().map(PathBuf::from).find(|p| p.is_file())?;
            let works = std::process::Command::new(&candidate)
                .args(["--pdeathsig", "KILL", "--", "true"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            works.then_some(candidate)
        })
        .as_deref()
}

/// A port nobody listens on right now (the OS picks it).
pub fn free_port() -> Result<u16, ServerError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub port: u16,
    pub store_dir: PathBuf,
    pub server_name: String,
    /// `(cluster_port, routes)` when part of a cluster.
    pub cluster: Option<(u16, Vec<String>)>,
    /// A server configuration file (TLS, accounts), given with `-c`.
    pub config_file: Option<PathBuf>,
}

/// A running `nats-server` child. Killed when dropped.
pub struct NatsServer {
    options: ServerOptions,
    binary: PathBuf,
    child: Option<Child>,
    _temp: Option<TempDir>,
}

impl NatsServer {
    /// A JetStream server on a free port with a temporary store, for tests.
    pub async fn start_temporary() -> Result<NatsServer, ServerError> {
        let temp = tempfile::Builder::new().prefix("orderstream-nats-").tempdir()?;
        // The free port can be taken between our probe and the server's bind:
        // try a few ports before giving up.
        let mut last_error = None;
        for _ in 0..5 {
            let options = ServerOptions {
                port: free_port()?,
                store_dir: temp.path().to_path_buf(),
                server_name: "orderstream-test".to_string(),
                cluster: None,
                config_file: None,
            };
            match NatsServer::start(options).await {
                Ok(mut server) => {
                    server._temp = Some(temp);
                    return Ok(server);
                }
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or(ServerError::NotFound))
    }

    /// Starts a server with these options and waits until it accepts clients.
    pub async fn start(options: ServerOptions) -> Result<NatsServer, ServerError> {
        let binary = find_nats_server()?;
        std::fs::create_dir_all(&options.store_dir)?;
        let mut server = NatsServer { options, binary, child: None, _temp: None };
        server.spawn().await?;
        Ok(server)
    }

    fn log_path(&self) -> PathBuf {
        self.options.store_dir.join(format!("{}.log", self.options.server_name))
    }

    async fn spawn(&mut self) -> Result<(), ServerError> {
        let o = &self.options;
        let mut cmd = match parent_death_wrapper() {
            Some(wrapper) => {
                let mut cmd = Command::new(wrapper);
                cmd.args(["--pdeathsig", "KILL", "--"]).arg(&self.binary);
                cmd
            }
            None => Command::new(&self.binary),
        };
        cmd.arg("-js")
            .args(["-a", "127.0.0.1", "-p", &o.port.to_string()])
            .args(["-sd", &o.store_dir.to_string_lossy()])
            .args(["-n", &o.server_name])
            .args(["-l", &self.log_path().to_string_lossy()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(config) = &o.config_file {
            cmd.arg("-c").arg(config);
        }
        if let Some((cluster_port, routes)) = &o.cluster {
            cmd.args(["--cluster_name", "orderstream", "--cluster", &format!("nats://127.0.0.1:{cluster_port}")]);
            cmd.args(["--routes", &routes.join(",")]);
        }
        let mut child = cmd.spawn()?;
        let started = Instant::now();
        let waited = Duration::from_secs(15);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", o.port)).await.is_ok() {
                break;
            }
            let exited = child.try_wait()?.is_some();
            if exited || started.elapsed() > waited {
                let _ = child.start_kill();
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
                return Err(ServerError::NotReady { port: o.port, waited: started.elapsed(), log: tail });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.child = Some(child);
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.options.port
    }

    /// The server process's id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.options.port)
    }

    pub fn store_dir(&self) -> &Path {
        &self.options.store_dir
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL: the server dies at whatever instruction it was at.
    pub async fn kill(&mut self) -> Result<(), ServerError> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// SIGTERM and wait (falling back to SIGKILL after 10 s): a clean shutdown
    /// that flushes JetStream state.
    pub async fn stop(&mut self) -> Result<(), ServerError> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        if let Some(pid) = child.id() {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        }
        if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Starts again on the same port with the same store, as after a crash or
    /// an upgrade; streams and messages survive.
    pub async fn restart(&mut self) -> Result<(), ServerError> {
        self.stop().await?;
        self.spawn().await
    }

    /// Starts a stopped server again (after `stop` or `kill`).
    pub async fn start_again(&mut self) -> Result<(), ServerError> {
        if self.child.is_none() {
            self.spawn().await?;
        }
        Ok(())
    }
}

/// A three-node (or n-node) JetStream cluster on free ports, each node with
/// its own temporary store, for replicated-stream and failover tests.
pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
    _temp: TempDir,
}

impl NatsCluster {
    pub async fn start(size: usize) -> Result<NatsCluster, ServerError> {
        let temp = tempfile::Builder::new().prefix("orderstream-cluster-").tempdir()?;
        let ports: Vec<(u16, u16)> =
            (0..size).map(|_| Ok((free_port()?, free_port()?))).collect::<Result<_, ServerError>>()?;
        let routes: Vec<String> = ports.iter().map(|(_, cp)| format!("nats://127.0.0.1:{cp}")).collect();
        // Spawn every node before waiting on any: JetStream needs a quorum.
        let mut pending = Vec::new();
        for (i, (port, cluster_port)) in ports.iter().enumerate() {
            let options = ServerOptions {
                port: *port,
                store_dir: temp.path().join(format!("node-{i}")),
                server_name: format!("node-{i}"),
                cluster: Some((*cluster_port, routes.clone())),
                config_file: None,
            };
            pending.push(tokio::spawn(NatsServer::start(options)));
        }
        let mut nodes = Vec::new();
        for handle in pending {
            let node = handle.await.map_err(|e| ServerError::Io(std::io::Error::other(e)))??;
            nodes.push(node);
        }
        Ok(NatsCluster { nodes, _temp: temp })
    }

    /// Client URLs of every node, comma-separated, as async-nats accepts them.
    pub fn urls(&self) -> String {
        self.nodes.iter().map(NatsServer::url).collect::<Vec<_>>().join(",")
    }
}

/// A temporary `nats-server` that requires TLS (a CA and a server
/// certificate for 127.0.0.1 generated on the spot) and credentials (an
/// account `SHOP` with JetStream, a password user `orders`/`s3cret` and an
/// NKey user): for the tests of secure connections in every crate.
#[cfg(feature = "test-tls")]
pub struct SecuredServer {
    pub server: NatsServer,
    /// The NKey user's seed.
    pub nkey_seed: String,
    dir: TempDir,
}

#[cfg(feature = "test-tls")]
impl SecuredServer {
    pub async fn start() -> Result<SecuredServer, ServerError> {
        let dir = tempfile::tempdir()?;
        let cert = |e: rcgen::Error| ServerError::Io(std::io::Error::other(e));
        let ca_key = rcgen::KeyPair::generate().map_err(cert)?;
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(cert)?;
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "orderstream test CA");
        let ca_cert = ca.self_signed(&ca_key).map_err(cert)?;
        let server_key = rcgen::KeyPair::generate().map_err(cert)?;
        let server =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).map_err(cert)?;
        let server_cert = server.signed_by(&server_key, &ca_cert, &ca_key).map_err(cert)?;
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem())?;
        std::fs::write(dir.path().join("server.pem"), server_cert.pem())?;
        std::fs::write(dir.path().join("server-key.pem"), server_key.serialize_pem())?;
        // Another CA, which signed nothing the server shows.
        let other_key = rcgen::KeyPair::generate().map_err(cert)?;
        let mut other = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(cert)?;
        other.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        std::fs::write(dir.path().join("other-ca.pem"), other.self_signed(&other_key).map_err(cert)?.pem())?;
        let user = nkeys::KeyPair::new_user();
        let seed = user.seed().map_err(|e| ServerError::Io(std::io::Error::other(e)))?;
        let config = format!(
            r#"
tls {{
  cert_file: "{dir}/server.pem"
  key_file: "{dir}/server-key.pem"
  timeout: 2
}}
accounts {{
  SHOP {{
    jetstream: enabled
    users: [
      {{user: "orders", password: "s3cret"}}
      {{nkey: "{nkey}"}}
    ]
  }}
}}
"#,
            dir = dir.path().display(),
            nkey = user.public_key()
        );
        let config_file = dir.path().join("nats.conf");
        std::fs::write(&config_file, config)?;
        let options = ServerOptions {
            port: free_port()?,
            store_dir: dir.path().join("store"),
            server_name: "secure".into(),
            cluster: None,
            config_file: Some(config_file),
        };
        let server = NatsServer::start(options).await?;
        Ok(SecuredServer { server, nkey_seed: seed, dir })
    }

    /// Where the certificates are (`ca.pem`, `other-ca.pem`, ...).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The `tls://` URL.
    pub fn url(&self) -> String {
        self.server.url().replace("nats://", "tls://")
    }

    /// TLS with the right CA, as the password user.
    pub fn auth(&self) -> crate::NatsAuth {
        crate::NatsAuth {
            ca_file: Some(self.dir.path().join("ca.pem")),
            user: Some("orders".into()),
            password: Some("s3cret".into()),
            ..crate::NatsAuth::default()
        }
    }
}
