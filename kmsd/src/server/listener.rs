//! The accept loop (mini-redis style): [`Limits`] bounds connections (in
//! all, per uid, with a reserve for the administrator), a broadcast tells
//! connections to stop, and a dropped mpsc sender tells the loop when the
//! last one has finished its in-flight requests.
//!
//! The loop itself only accepts, reads the peer's uid (`SO_PEERCRED`, one
//! system call) and admits or refuses: name and group lookups (NSS, which
//! may be slow) run on the blocking pool inside the connection's task, so
//! one slow lookup cannot stall new connections.

use super::connection::{Connection, refuse};
use super::limits::{Limits, throttle_event};
use super::peer::peer_caller;
use crate::metrics::METRICS;
use crate::service::KeyService;
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::{broadcast, mpsc};

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
    /// Connections one uid may hold (root and the admin uid: no cap).
    pub max_connections_per_uid: usize,
    /// Connections of `max_connections` only root and the admin uid may use.
    pub admin_reserved_connections: usize,
    /// A connection with no request for this long after its hello is
    /// closed (with a goodbye); `None` = never.
    pub idle_timeout: Option<Duration>,
    /// Requests per second per uid (token bucket; 0 = unlimited). Root
    /// and the admin uid are exempt.
    pub requests_per_sec: u32,
    /// Requests a uid may send at once above its rate.
    pub request_burst: u32,
    /// Audit bytes per second per uid, charged before a request runs (see
    /// `limits::audit_cost`; 0 = unlimited).
    pub audit_bytes_per_sec: u64,
    pub audit_burst_bytes: u64,
    /// How often one `RequestsThrottled` record per throttled uid is
    /// written.
    pub throttle_report_interval: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 1024,
            max_in_flight: 128,
            handshake_timeout: Duration::from_secs(10),
            frame_timeout: Duration::from_secs(30),
            max_connections_per_uid: 64,
            admin_reserved_connections: 16,
            idle_timeout: Some(Duration::from_secs(300)),
            requests_per_sec: 5000,
            request_burst: 10_000,
            audit_bytes_per_sec: 8 << 20,
            audit_burst_bytes: 32 << 20,
            throttle_report_interval: Duration::from_secs(10),
        }
    }
}

/// Serves until `shutdown` completes, then waits for in-flight requests.
/// `limits` (made from `config`) may be shared with the AWS endpoint, so a
/// uid's requests draw on one rate whichever way they come.
pub async fn serve(
    listener: UnixListener,
    service: Arc<KeyService>,
    limits: Arc<Limits>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let (notify, _) = broadcast::channel::<()>(1);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let reporter = tokio::spawn(report_throttled(
        limits.clone(),
        service.clone(),
        config.throttle_report_interval,
    ));
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
        let uid = match getsockopt(&stream, PeerCredentials) {
            Ok(c) => c.uid(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read peer credentials; closing");
                continue;
            }
        };
        let slot = match limits.admit(uid) {
            Ok(s) => s,
            Err(refusal) => {
                METRICS.socket_refused.inc();
                tracing::warn!(uid, "connection limit reached; refusing");
                tokio::spawn(refuse(stream, refusal.error()));
                continue;
            }
        };
        let (service, config) = (service.clone(), config.clone());
        let (shutdown_rx, done) = (notify.subscribe(), done_tx.clone());
        tokio::spawn(async move {
            let _open = METRICS.socket_connections.hold();
            // NSS lookups (names, groups) and /proc reads off the runtime.
            let conn = tokio::task::spawn_blocking(move || {
                let caller = peer_caller(&stream)?;
                Ok::<_, std::io::Error>(Connection::new(
                    stream,
                    caller,
                    service,
                    config,
                    slot,
                    shutdown_rx,
                    done,
                ))
            })
            .await;
            match conn {
                Ok(Ok(c)) => c.run().await,
                Ok(Err(e)) => {
                    tracing::warn!(uid, error = %e, "cannot read peer credentials; closing")
                }
                Err(e) => tracing::warn!(uid, error = %e, "identifying the peer failed"),
            }
        });
    }
    tracing::info!("shutting down: finishing in-flight requests");
    drop(notify);
    drop(done_tx);
    let _ = done_rx.recv().await;
    reporter.abort();
    write_throttle_reports(&limits, &service, config.throttle_report_interval).await;
}

/// Writes one `RequestsThrottled` record per throttled uid every interval.
async fn report_throttled(limits: Arc<Limits>, service: Arc<KeyService>, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.tick().await;
    loop {
        tick.tick().await;
        write_throttle_reports(&limits, &service, every).await;
    }
}

async fn write_throttle_reports(limits: &Limits, service: &KeyService, every: Duration) {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    for (uid, tally) in limits.drain_throttled() {
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ev = throttle_event(uid, &tally, every, n);
        let ticket = service.auditor().submit(&ev);
        tracing::warn!(uid, count = tally.count, "requests throttled");
        if let Err(e) = ticket.await {
            tracing::error!(uid, error = %e, "the throttle report could not be written");
        }
    }
}
