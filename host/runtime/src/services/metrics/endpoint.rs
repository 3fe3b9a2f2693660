//! The metrics endpoint: Prometheus text at `GET /metrics` (and `/`), the two questions an
//! orchestrator asks: `/healthz` (the process is alive: 200 while it serves) and `/readyz`
//! (200 when every check of its [`Health`] passes, else 503; the body lists each check), and the
//! pages added with [`Metrics::add_page`] (the graph picture at `/graph`), on hyper's HTTP/1
//! server. Unknown paths get 404, other methods 405, requests that are not HTTP hyper's own 400,
//! and a client that sends no request head within [`HEADER_TIMEOUT`] is disconnected.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use wasmflow_transport::health::Health;

use super::Metrics;

/// How long a connection may take to send its request head before it is closed.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The OpenMetrics text content type `render` writes.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

impl Metrics {
    /// Serves the registry on `addr` from the current tokio runtime until the process exits;
    /// returns the bound address (port 0 picks a free one).
    pub async fn serve(self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        self.serve_with(addr, HEADER_TIMEOUT, Health::default()).await
    }

    /// As [`Metrics::serve`], with `/readyz` answering from `health`.
    pub async fn serve_with_health(self, addr: SocketAddr, health: Health) -> std::io::Result<SocketAddr> {
        self.serve_with(addr, HEADER_TIMEOUT, health).await
    }

    async fn serve_with(
        self,
        addr: SocketAddr,
        header_timeout: Duration,
        health: Health,
    ) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot serve metrics on {addr}: {e}")))?;
        let local = listener.local_addr()?;
        tokio::spawn(async move {
            loop {
                let (stream, _) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("metrics endpoint: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (metrics, health) = (self.clone(), health.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (metrics, health) = (metrics.clone(), health.clone());
                        async move { Ok::<_, Infallible>(respond(&metrics, &health, &req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(header_timeout)
                        .serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = conn.await {
                        tracing::debug!("metrics endpoint: connection ended: {e}");
                    }
                });
            }
        });
        Ok(local)
    }
}

/// The body of every 404: where the endpoint's pages are.
const NOT_FOUND: &[u8] = b"not found: the metrics are at /metrics, health at /healthz and /readyz\n";

async fn respond(metrics: &Metrics, health: &Health, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let status = |code: StatusCode, text: Bytes| {
        let mut r = Response::new(Full::new(text));
        *r.status_mut() = code;
        r
    };
    let get = matches!(req.method(), &Method::GET | &Method::HEAD);
    match (req.method(), req.uri().path()) {
        (_, "/healthz") if get => status(StatusCode::OK, Bytes::from_static(b"ok\n")),
        (_, "/readyz") if get => {
            let report = health.report().await;
            let code = if report.ready() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            status(code, Bytes::from(report.to_string()))
        }
        (&Method::GET | &Method::HEAD, "/metrics" | "/") => {
            let mut r = Response::new(Full::new(Bytes::from(metrics.render())));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(CONTENT_TYPE),
            );
            r
        }
        (_, "/metrics" | "/" | "/healthz" | "/readyz") => {
            status(StatusCode::METHOD_NOT_ALLOWED, Bytes::from_static(b"only GET\n"))
        }
        (&Method::GET | &Method::HEAD, path) => match metrics.page(path) {
            Some((content_type, body)) => {
                let mut r = Response::new(Full::new(Bytes::from(body)));
                r.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static(content_type),
                );
                r
            }
            None => status(StatusCode::NOT_FOUND, Bytes::from_static(NOT_FOUND)),
        },
        _ => status(StatusCode::NOT_FOUND, Bytes::from_static(NOT_FOUND)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn serves_metrics_404s_unknown_paths_and_400s_garbage() {
        let metrics = Metrics::new();
        let who = crate::identity::OpIdentity {
            graph: "g".into(),
            operation: "module-temperature/map".into(),
        };
        metrics
            .nodes
            .messages_in
            .get_or_create(&Metrics::node_labels(&who))
            .inc();
        metrics.add_page("/page", "text/plain", std::sync::Arc::new(|| "a page\n".to_owned()));
        let addr = metrics.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let ok = exchange(addr, b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(
            ok.contains("wasmflow_messages_in_total{graph=\"g\",operation=\"module-temperature/map\"} 1"),
            "{ok}"
        );
        let page = exchange(addr, b"GET /page HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
        assert!(
            page.starts_with("HTTP/1.1 200") && page.contains("content-type: text/plain") && page.ends_with("a page\n"),
            "{page}"
        );
        let missing = exchange(addr, b"GET /nope HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        let garbage = exchange(addr, b"\x16\x03\x01 not http at all\r\n\r\n").await;
        assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    }

    #[tokio::test]
    async fn a_client_that_sends_nothing_is_disconnected() {
        let addr = Metrics::new()
            .serve_with(
                "127.0.0.1:0".parse().unwrap(),
                Duration::from_millis(300),
                Health::default(),
            )
            .await
            .unwrap();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut out = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
        assert!(closed.is_ok(), "an idle client is closed after the header timeout");
    }

    #[tokio::test]
    async fn healthz_answers_and_readyz_follows_the_checks() {
        let health = Health::default();
        let broker = health.flag("mqtt source mqtt://127.0.0.1:1883");
        let addr = Metrics::new()
            .serve_with_health("127.0.0.1:0".parse().unwrap(), health)
            .await
            .unwrap();
        let ask = |path: &str| format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        let live = exchange(addr, ask("/healthz").as_bytes()).await;
        assert!(live.starts_with("HTTP/1.1 200") && live.ends_with("ok\n"), "{live}");
        let not_ready = exchange(addr, ask("/readyz").as_bytes()).await;
        assert!(not_ready.starts_with("HTTP/1.1 503"), "{not_ready}");
        assert!(
            not_ready.contains("failing mqtt source mqtt://127.0.0.1:1883: not connected yet"),
            "{not_ready}"
        );
        broker.up();
        let ready = exchange(addr, ask("/readyz").as_bytes()).await;
        assert!(
            ready.starts_with("HTTP/1.1 200") && ready.contains("ok mqtt source"),
            "{ready}"
        );
        let post = exchange(
            addr,
            b"POST /readyz HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    }
}
