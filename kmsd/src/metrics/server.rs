//! `GET /metrics` over plain HTTP/1.1 (`--metrics-listen`). One request
//! per connection; bounded like the AWS endpoint: the time to send the
//! request's headers, the size of what is buffered, the whole
//! connection's time, and the connections served at once (more are
//! closed unanswered). Any other path is 404, any other method 405, and
//! a malformed request gets hyper's 400; no request body is read.

use super::render::CONTENT_TYPE;
use super::{METRICS, render, scrape};
use crate::regions::Regions;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

#[derive(Clone, Debug)]
pub struct MetricsConfig {
    /// Time a client has to send the request's headers.
    pub header_timeout: Duration,
    /// Time a connection may stay open in all, answer included.
    pub connection_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            header_timeout: Duration::from_secs(10),
            connection_timeout: Duration::from_secs(30),
            max_connections: 16,
        }
    }
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    NotFound,
    MethodNotAllowed,
}

fn route(method: &Method, path: &str) -> Route {
    if path != "/metrics" {
        Route::NotFound
    } else if method == Method::GET || method == Method::HEAD {
        Route::Metrics
    } else {
        Route::MethodNotAllowed
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

async fn answer<B>(req: Request<B>, regions: Arc<Regions>) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    match route(req.method(), req.uri().path()) {
        Route::NotFound => text(
            StatusCode::NOT_FOUND,
            PLAIN,
            "kmsd serves its metrics at /metrics only\n".into(),
        ),
        Route::MethodNotAllowed => {
            let mut r = text(
                StatusCode::METHOD_NOT_ALLOWED,
                PLAIN,
                "/metrics answers GET and HEAD only\n".into(),
            );
            r.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("GET, HEAD"),
            );
            r
        }
        Route::Metrics => {
            // The scrape takes each region's read lock: off the runtime.
            match tokio::task::spawn_blocking(move || render(&METRICS, &scrape(&regions))).await {
                Ok(body) => text(StatusCode::OK, CONTENT_TYPE, body),
                Err(e) => {
                    tracing::error!(error = %e, "rendering the metrics failed");
                    text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        PLAIN,
                        "the metrics could not be rendered\n".into(),
                    )
                }
            }
        }
    }
}

/// Serves `listener` until `shutdown` completes.
pub async fn serve_metrics(
    listener: TcpListener,
    regions: Arc<Regions>,
    cfg: MetricsConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let (stream, peer): (_, SocketAddr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(peer = %peer, "metrics connection limit reached; closing");
            continue;
        };
        let (regions, cfg) = (regions.clone(), cfg.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |req| {
                let regions = regions.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(req, regions).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(cfg.header_timeout)
                .keep_alive(false)
                .max_buf_size(16 << 10)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(cfg.connection_timeout, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "metrics connection ended"),
                Err(_) => tracing::debug!(peer = %peer, "metrics connection timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_and_head_of_metrics_are_served() {
        assert_eq!(route(&Method::GET, "/metrics"), Route::Metrics);
        assert_eq!(route(&Method::HEAD, "/metrics"), Route::Metrics);
        assert_eq!(route(&Method::POST, "/metrics"), Route::MethodNotAllowed);
        assert_eq!(route(&Method::DELETE, "/metrics"), Route::MethodNotAllowed);
        assert_eq!(route(&Method::GET, "/"), Route::NotFound);
        assert_eq!(route(&Method::GET, "/metrics/"), Route::NotFound);
        assert_eq!(route(&Method::POST, "/other"), Route::NotFound);
    }
}
