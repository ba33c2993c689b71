//! The accept loop (mini-redis style): a semaphore bounds connections, a
//! broadcast tells connections to stop, and a dropped mpsc sender tells the
//! loop when the last one has finished its in-flight requests.

use super::audit::Auditor;
use super::connection::Connection;
use super::peer::peer_caller;
use crate::service::KeyService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::{Semaphore, broadcast, mpsc};

#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Connections served at once; more are told so and closed.
    pub max_connections: usize,
    /// Requests in flight on one connection before reading pauses.
    pub max_in_flight: usize,
    /// Time a new connection has to send its hello.
    pub handshake_timeout: Duration,
    /// Time a started frame has to arrive completely.
    pub frame_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 1024,
            max_in_flight: 128,
            handshake_timeout: Duration::from_secs(10),
            frame_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves until `shutdown` completes, then waits for in-flight requests.
pub async fn serve(
    listener: UnixListener,
    service: Arc<KeyService>,
    auditor: Arc<Auditor>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let limit = Arc::new(Semaphore::new(config.max_connections));
    let (notify, _) = broadcast::channel::<()>(1);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let caller = match peer_caller(&stream) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read peer credentials; closing");
                continue;
            }
        };
        let permit = limit.clone().try_acquire_owned().ok();
        let conn = Connection::new(
            stream,
            caller,
            service.clone(),
            auditor.clone(),
            config.clone(),
            notify.subscribe(),
            done_tx.clone(),
        );
        tokio::spawn(async move {
            match permit {
                Some(p) => {
                    conn.run().await;
                    drop(p);
                }
                None => conn.refuse_busy().await,
            }
        });
    }
    tracing::info!("shutting down: finishing in-flight requests");
    drop(notify);
    drop(done_tx);
    let _ = done_rx.recv().await;
}
