//! Binding, serving until shutdown, and the shutdown signal: the same for
//! every role.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} (is another orderstream running there? choose another with --listen): {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// Takes the HTTP port before anything else starts: a busy port is an
/// error at once, not a server that says it is up and is not.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    use axum::serve::ListenerExt;
    // Small request/response exchanges on keep-alive connections must not
    // wait on Nagle's algorithm.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::warn!(%err, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await.map_err(ServeError::Serve)
}

/// [`serve`] until `stop` is set (the role's [`shutdown_flag`]).
pub async fn serve_until(listener: TcpListener, router: Router, stop: watch::Receiver<bool>) -> Result<(), ServeError> {
    serve(listener, router, flag_set(stop)).await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// A shutdown flag set by Ctrl-C or SIGTERM, for every part of a role.
pub fn shutdown_flag() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = tx.send(true);
    });
    rx
}

/// Resolves once `flag` is set (or its sender is gone).
async fn flag_set(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}
