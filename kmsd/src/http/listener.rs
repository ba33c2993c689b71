//! Accepts TCP connections for the AWS endpoint and serves HTTP/1.1 with
//! keep-alive on each, over TLS when the listener has a TLS configuration.
//! Bounded: connections per source address and in all, the time to finish
//! the TLS handshake, to send a request's headers and body, and the body's
//! size, so a slow or idle client holds one connection slot and nothing
//! else.

use super::handler::{self, Limits};
use crate::metrics::METRICS;
use crate::regions::Regions;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Largest request body read; larger ones are refused unread (413).
    pub max_body: usize,
    /// Time a client has to finish the TLS handshake, to send a request's
    /// headers (also between requests of a kept-alive connection) and,
    /// separately, its body.
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body: 256 << 10,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_connections_per_ip: 128,
        }
    }
}

/// Open connections, in all and per source address.
#[derive(Default)]
struct Census {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A connection's place in the census, given back on drop.
struct Seat {
    census: Arc<Mutex<Census>>,
    ip: IpAddr,
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut c = self.census.lock().unwrap_or_else(|p| p.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

fn take_seat(census: &Arc<Mutex<Census>>, ip: IpAddr, cfg: &HttpConfig) -> Option<Seat> {
    let mut c = census.lock().unwrap_or_else(|p| p.into_inner());
    let mine = c.per_ip.get(&ip).copied().unwrap_or(0);
    if c.total >= cfg.max_connections || mine >= cfg.max_connections_per_ip {
        return None;
    }
    c.total += 1;
    *c.per_ip.entry(ip).or_default() += 1;
    Some(Seat {
        census: census.clone(),
        ip,
    })
}

/// Serves `listener` until `shutdown` completes: HTTPS with `tls`, plain
/// HTTP without.
pub async fn serve_http(
    listener: TcpListener,
    service: Arc<Regions>,
    rates: Arc<crate::server::limits::Limits>,
    cfg: HttpConfig,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let census = Arc::new(Mutex::new(Census::default()));
    let limits = Arc::new(Limits {
        max_body: cfg.max_body,
        body_timeout: cfg.body_timeout,
        callers: Default::default(),
        signing_keys: Default::default(),
        rates,
    });
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let (stream, peer): (_, SocketAddr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "http accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(seat) = take_seat(&census, peer.ip(), &cfg) else {
            METRICS.http_refused.inc();
            tracing::warn!(peer = %peer, "http connection limit reached; closing");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (svc, limits, header_timeout) = (service.clone(), limits.clone(), cfg.header_timeout);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _seat = seat;
            let _open = METRICS.http_connections.hold();
            let Some(acceptor) = acceptor else {
                return serve_connection(stream, peer, svc, limits, header_timeout).await;
            };
            // The handshake has the headers' time; past it, or failed, the
            // connection is closed and its seat given back.
            match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve_connection(tls, peer, svc, limits, header_timeout).await,
                Ok(Err(e)) => tracing::debug!(
                    peer = %peer,
                    error = %kmsd_client::logsafe::escape(&e.to_string()),
                    "tls handshake failed"
                ),
                Err(_) => tracing::debug!(peer = %peer, "tls handshake timed out"),
            }
        });
    }
}

/// HTTP/1.1 with keep-alive on one connection, until the client closes it
/// or a timeout does.
async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    svc: Arc<Regions>,
    limits: Arc<Limits>,
    header_timeout: Duration,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let serve = service_fn(move |req| {
        let (svc, limits) = (svc.clone(), limits.clone());
        async move { Ok::<_, std::convert::Infallible>(handler::handle(&svc, &limits, peer, req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true)
        .max_buf_size(64 << 10)
        .serve_connection(TokioIo::new(io), serve);
    if let Err(e) = conn.await {
        tracing::debug!(peer = %peer, error = %e, "http connection ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_are_capped_per_address_and_in_all_and_given_back() {
        let cfg = HttpConfig {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..HttpConfig::default()
        };
        let census = Arc::new(Mutex::new(Census::default()));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let s1 = take_seat(&census, a, &cfg).expect("first");
        let _s2 = take_seat(&census, a, &cfg).expect("second");
        assert!(take_seat(&census, a, &cfg).is_none(), "per-address cap");
        let _s3 = take_seat(&census, b, &cfg).expect("another address");
        assert!(take_seat(&census, b, &cfg).is_none(), "global cap");
        drop(s1);
        assert!(take_seat(&census, a, &cfg).is_some(), "a seat given back");
    }
}
